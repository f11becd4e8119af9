//! TLS towards a real OpenBao serving HTTPS (`bao server -dev -dev-tls`): verification is on by
//! default, a CA file makes the server trusted, and skipping verification takes an explicit flag.

use serde_json::json;
use testkit::{AppRoleCredentials, OpenBao, README_POLICY};
use vault_auth_kubernetes::Error;
use vault_auth_kubernetes::metrics::Metrics;
use vault_auth_kubernetes::secret::Secret;
use vault_auth_kubernetes::vault::{VaultClient, VaultSettings};

async fn tls_bao() -> (OpenBao, AppRoleCredentials) {
    let bao = OpenBao::start_tls().await;
    assert!(bao.addr().starts_with("https://"), "{}", bao.addr());
    bao.write_policy(None, "vak", README_POLICY).await;
    let creds = bao
        .approle(None, "vak", json!({"token_policies": ["vak"]}))
        .await;
    (bao, creds)
}

fn settings(bao: &OpenBao, creds: &AppRoleCredentials) -> VaultSettings {
    VaultSettings::new(
        bao.addr(),
        &creds.role_id,
        Secret::new(creds.secret_id.clone()),
    )
}

#[tokio::test]
async fn the_ca_file_makes_the_server_trusted() {
    let (bao, creds) = tls_bao().await;
    let mut s = settings(&bao, &creds);
    s.ca_cert_file = bao.ca_cert_path();
    let client = VaultClient::new(s, Metrics::new()).expect("client");
    client.login().await.expect("login over verified TLS");
    let token = client.auth_mount("token").await.expect("sys/auth over TLS");
    assert_eq!(token.expect("token auth is always mounted").kind, "token");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_with_the_fix_in_the_message() {
    let (bao, creds) = tls_bao().await;
    let metrics = Metrics::new();
    let client = VaultClient::new(settings(&bao, &creds), metrics.clone()).expect("client");
    let err = client
        .login()
        .await
        .expect_err("a dev CA is not in the system store");
    let text = err.to_string();
    assert!(matches!(err, Error::VaultTls { .. }), "{text}");
    assert!(text.contains("login"), "{text}");
    assert!(text.contains("certificate"), "{text}");
    assert!(text.contains("--vault-ca-cert"), "{text}");
    assert!(text.contains("--vault-skip-verify"), "{text}");
    assert!(!client.token_status().valid);
    assert!(
        metrics
            .encode()
            .contains("vault_requests_total{operation=\"login\",status=\"error\"} 1"),
        "{}",
        metrics.encode()
    );

    // A CA file with another CA: still refused (only the file's roots are trusted).
    let other = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(other.path(), testkit::CA_CERT_PEM).expect("write CA");
    let mut s = settings(&bao, &creds);
    s.ca_cert_file = Some(other.path().to_path_buf());
    let client = VaultClient::new(s, Metrics::new()).expect("client");
    let err = client.login().await.expect_err("wrong CA");
    assert!(matches!(err, Error::VaultTls { .. }), "{err}");
}

#[tokio::test]
async fn skipping_verification_works_and_warns_loudly_once() {
    let (bao, creds) = tls_bao().await;
    let logs = testkit::SharedBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut s = settings(&bao, &creds);
    s.skip_tls_verify = true;
    let client = VaultClient::new(s, Metrics::new()).expect("client");
    client.login().await.expect("login without verification");
    for _ in 0..3 {
        client.auth_mount("token").await.expect("sys/auth");
    }
    let text = logs.contents();
    let warnings = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("VERIFICATION OF VAULT IS DISABLED"))
        .count();
    assert_eq!(warnings, 1, "{text}");
}
