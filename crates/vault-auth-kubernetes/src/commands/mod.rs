//! The operator commands: `validate` (offline), `plan`, `sync --once` and `cleanup`.
//!
//! Each command's logic and rendering are pure functions tested without servers; the `run`
//! functions only read (or, for `sync` and `cleanup`, write), print and return an exit status.
//!
//! - [`manifest`]: the `vault-auth-roles` ConfigMaps of YAML manifests, with key lines.
//! - [`validate`]: `validate FILE...`.
//! - [`plan`]: `plan`: observes like a sync, renders the plan as text or JSON.
//! - [`proposed`]: the ConfigMap `plan -f FILE` plans instead of the cluster's.
//! - [`sync_once`]: `sync --once`.
//! - [`cleanup`]: `cleanup`: lists what the tool made, asks, removes.
//! - [`help`]: the long help texts and examples of the subcommands.
//! - [`style`]: colours for terminals, the confirmation prompt.

pub mod cleanup;
pub mod help;
pub mod manifest;
pub mod plan;
pub mod proposed;
pub mod style;
pub mod sync_once;
pub mod validate;

/// Exit statuses shared by the commands.
pub mod status {
    /// Success; for `plan`: nothing would change.
    pub const SUCCESS: u8 = 0;
    /// Failure: invalid entries (`validate`, `plan`), an error, a failed step or a refusal.
    pub const FAILURE: u8 = 1;
    /// `validate`: a file could not be read; `sync` without `--once` (usage errors).
    pub const USAGE: u8 = 2;
    /// `plan`: changes are pending (as `terraform plan -detailed-exitcode`).
    pub const CHANGES_PENDING: u8 = 2;
}
