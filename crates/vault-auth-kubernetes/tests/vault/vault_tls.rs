//! TLS towards a real OpenBao serving HTTPS (`bao server -dev -dev-tls`): verification is on by
//! default, a CA file makes the server trusted, and skipping verification takes an explicit flag
//! (and warns once: `vault_logs.rs`).

use crate::support::{settings, tls_bao};
use vault_auth_kubernetes::Error;
use vault_auth_kubernetes::metrics::Metrics;
use vault_auth_kubernetes::vault::VaultClient;

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
            .contains("vault_requests_total{operation=\"login\",code=\"error\"} 1"),
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
