//! Test harness shared by the workspace's integration tests.
//!
//! Tests never mock Vault or Kubernetes: [`TestVault`] starts a real dev server (OpenBao, or
//! HashiCorp Vault with `VAK_TEST_VAULT=vault`) on a free loopback port, and [`TestCluster`]
//! a Kubernetes API server (the in-repo emulator, or with `VAK_TEST_CLUSTER=real` etcd,
//! kube-apiserver and kube-controller-manager built from their Go modules). Both are installed,
//! pinned, by `scripts/tools.sh`, and stopped on drop.
#![forbid(unsafe_code)]

mod approle;
mod capture;
mod cluster;
mod fixtures;
pub mod objects;
mod poll;
pub mod real_cluster;
mod tools;
mod vault;

pub use approle::{AppRoleCredentials, README_APPROLE, README_POLICY};
pub use capture::SharedBuffer;
pub use cluster::{ClusterKind, TestCluster};
pub use fixtures::CA_CERT_PEM;
pub use objects::{api_error, create_namespace, labels, token_request};
pub use poll::wait_for;
pub use real_cluster::RealCluster;
pub use tools::{bao_bin, kubectl_bin, tool_bin, vault_bin, workspace_root};
pub use vault::{BaoResponse, TestVault, VaultKind, free_port};
