//! vault-auth-kubernetes: keeps the Kubernetes auth method of Vault/OpenBao in sync with a cluster.
//!
//! Layout (each module does one job):
//! - [`roles`]: parse, validate and normalise the role entries of the `vault-auth-roles` ConfigMap
//!   (pure; the same code backs the controller and the offline `validate` command).
//! - [`desired`]: the ServiceAccounts the roles ask for, given the cluster's namespaces (pure).
//! - [`plan`]: the difference between desired and observed state as a list of actions (pure).
//! - [`role_names`]: the shared, sorted set of role names a ServiceAccount records.
//! - [`reviewer_plan`]: what a pass does to the token reviewer's Kubernetes objects (pure).
//! - [`vault`]: the Vault/OpenBao HTTP client and the AppRole session.
//! - [`k8s`]: Kubernetes side: reviewer ServiceAccount and token, managed ServiceAccounts, Events.
//! - [`names`]: the fixed names, labels and annotations shared with the original tool.
//! - [`commands`]: the operator commands `validate`, `plan`, `sync --once` and `cleanup`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod backoff;
pub mod bounded;
pub mod cli;
pub mod commands;
pub mod context;
pub mod controller;
pub mod desired;
pub mod error;
pub mod health;
pub mod k8s;
pub mod metrics;
pub mod mount;
pub mod names;
pub mod plan;
pub mod process_metrics;
pub mod reviewer_plan;
pub mod role_names;
pub use vak_roles as roles;
pub mod secret;
pub mod settings;
pub mod small_map;
pub mod sync;
pub mod telemetry;
pub mod vault;

pub use error::{Error, Result};
