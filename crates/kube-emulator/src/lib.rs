//! A local Kubernetes API server for tests, benchmarks and the demo.
//!
//! [`start`] serves the Kubernetes API (the kinds in `kinds`) over HTTPS on 127.0.0.1 with a
//! fresh CA, authenticates every request by bearer token (the admin token or a ServiceAccount
//! token), optionally authorizes with RBAC, and emulates the controllers clients rely on
//! (default ServiceAccounts, token Secrets, namespace deletion). See the crate README for what
//! is and is not supported.
#![forbid(unsafe_code)]

mod admin;
pub mod auth;
mod context;
mod controllers;
mod counters;
mod discovery;
mod emulator;
mod error;
mod faults;
mod handlers;
mod impersonation;
mod kinds;
pub mod kubeconfig;
mod meta;
mod openapi;
mod ops;
mod patch;
pub mod pki;
mod protobuf;
mod request;
mod schema;
mod selectors;
mod server;
mod status;
mod store;
mod strategy;
mod table;
mod validation;

pub use counters::Counters;
pub use emulator::{Emulator, ISSUER, Options, start};
pub use error::Error;
pub use faults::Faults;
/// Cutting a real apiserver's OpenAPI documents to what the emulator serves (for the test that
/// regenerates and checks the committed documents).
pub use openapi::snapshot as openapi_snapshot;
