//! Helpers shared by the Vault client tests: a real OpenBao with a Kubernetes auth method and
//! the README's policy, AppRoles holding it, and request counts from the client's metrics.
#![allow(dead_code)] // each test binary uses a different part

use serde_json::json;
use testkit::{AppRoleCredentials, README_POLICY, TestVault};
use vault_auth_kubernetes::metrics::Metrics;
use vault_auth_kubernetes::secret::Secret;
use vault_auth_kubernetes::vault::{VaultClient, VaultSettings};

pub const MOUNT: &str = "kubernetes/prod/eu1";

pub fn client(bao: &TestVault, creds: &AppRoleCredentials) -> (VaultClient, Metrics) {
    let metrics = Metrics::new();
    let settings = VaultSettings::new(
        bao.addr(),
        &creds.role_id,
        Secret::new(creds.secret_id.clone()),
    );
    let client = VaultClient::new(settings, metrics.clone()).expect("vault client");
    (client, metrics)
}

/// Sum of `vault_requests_total` for `operation` (and `status`, when given).
pub fn requests(metrics: &Metrics, operation: &str, status: Option<&str>) -> u64 {
    let label = format!("operation=\"{operation}\"");
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("vault_auth_kubernetes_vault_requests_total{"))
        .filter(|l| l.contains(&label))
        .filter(|l| status.is_none_or(|s| l.contains(&format!("code=\"{s}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// OpenBao with a Kubernetes auth method at [`MOUNT`] and the README's policy.
pub async fn server() -> TestVault {
    let bao = TestVault::start().await;
    bao.cli(&["auth", "enable", "-path=kubernetes/prod/eu1", "kubernetes"]);
    bao.write_policy(None, "vault-auth-kubernetes", README_POLICY)
        .await;
    bao
}

/// AppRole `name` holding only the README's policy, with extra role parameters.
pub async fn readme_approle(
    bao: &TestVault,
    name: &str,
    extra: serde_json::Value,
) -> AppRoleCredentials {
    let mut params = json!({"token_policies": ["vault-auth-kubernetes"]});
    params
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    bao.approle(None, name, params).await
}

/// OpenBao serving HTTPS with its own CA, and an AppRole holding the README's policy.
pub async fn tls_bao() -> (TestVault, AppRoleCredentials) {
    let bao = TestVault::start_tls().await;
    assert!(bao.addr().starts_with("https://"), "{}", bao.addr());
    bao.write_policy(None, "vak", README_POLICY).await;
    let creds = bao
        .approle(None, "vak", json!({"token_policies": ["vak"]}))
        .await;
    (bao, creds)
}

pub fn settings(bao: &TestVault, creds: &AppRoleCredentials) -> VaultSettings {
    VaultSettings::new(
        bao.addr(),
        &creds.role_id,
        Secret::new(creds.secret_id.clone()),
    )
}
