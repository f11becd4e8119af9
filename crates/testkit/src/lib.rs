//! Test harness shared by the workspace's integration tests.
//!
//! Tests never mock Vault: [`OpenBao`] starts the real OpenBao server (`bao server -dev`,
//! installed pinned from PyPI by `scripts/tools.sh`) on a free loopback port and stops it on drop.
#![forbid(unsafe_code)]

mod approle;
mod capture;
mod fixtures;
mod openbao;
mod tools;

pub use approle::{AppRoleCredentials, README_POLICY};
pub use capture::SharedBuffer;
pub use fixtures::CA_CERT_PEM;
pub use openbao::{BaoResponse, OpenBao};
pub use tools::{bao_bin, kubectl_bin, workspace_root};
