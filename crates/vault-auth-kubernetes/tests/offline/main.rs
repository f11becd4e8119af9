//! Tests that need no server: parsing, validation and planning of role entries, and snapshots
//! of the command line's output.

mod chart_schema;
mod cli_snapshots;
mod roles_desired;
mod roles_parse;
mod roles_plan;
mod roles_properties;
