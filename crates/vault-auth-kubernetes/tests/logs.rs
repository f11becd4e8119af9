//! What the Vault client logs: no secret in errors or logs, and one loud warning when TLS
//! verification is off. One test in a binary of its own: it captures logs with a thread-local
//! tracing subscriber, which tests running in parallel in the same process can disturb (tracing
//! caches per-callsite interest across threads).

#[path = "vault/support.rs"]
mod support;

use serde_json::json;
use support::{MOUNT, client, readme_approle, server, settings, tls_bao};
use testkit::AppRoleCredentials;
use vault_auth_kubernetes::metrics::Metrics;
use vault_auth_kubernetes::secret::Secret;
use vault_auth_kubernetes::vault::VaultClient;

#[tokio::test]
async fn logs() {
    secrets_never_appear_in_errors_or_logs().await;
    skipping_verification_warns_loudly_once().await;
}

/// Captures this thread's logs up to `level` until the guard is dropped.
fn capture_logs(
    level: tracing::Level,
) -> (testkit::SharedBuffer, tracing::subscriber::DefaultGuard) {
    let logs = testkit::SharedBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

async fn secrets_never_appear_in_errors_or_logs() {
    let bao = server().await;
    let creds = readme_approle(&bao, "vak", json!({})).await;
    let (logs, _guard) = capture_logs(tracing::Level::TRACE);

    // A wrong secret-id: the login fails, and neither it nor the right one is printed.
    let wrong = AppRoleCredentials {
        role_id: creds.role_id.clone(),
        secret_id: "0d5a1bc9-wrong-secret-id-value".to_string(),
    };
    let (bad_client, _) = client(&bao, &wrong);
    let err = bad_client.login().await.expect_err("wrong secret-id");
    let shown = format!("{err} | {err:?} | {bad_client:?}");
    assert!(shown.contains("login"), "{shown}");
    assert!(shown.contains("invalid role or secret ID"), "{shown}");
    assert!(!shown.contains(&wrong.secret_id), "{shown}");
    assert!(!bad_client.token_status().valid);

    // A good session: login, a write carrying a JWT, a renewal.
    let (good, _) = client(&bao, &creds);
    good.login().await.expect("login");
    let jwt = "eyJhbGciOiJSUzI1NiJ9.reviewer-jwt-payload.signature";
    good.write_kubernetes_config(
        MOUNT,
        &vault_auth_kubernetes::vault::KubernetesConfigWrite {
            kubernetes_host: "https://kubernetes.example:6443".into(),
            kubernetes_ca_cert: testkit::CA_CERT_PEM.into(),
            token_reviewer_jwt: Secret::new(jwt),
            disable_local_ca_jwt: false,
        },
    )
    .await
    .expect("write config");
    let text = logs.contents();
    assert!(
        text.contains("operation=\"login\"") || text.contains("operation=login"),
        "{text}"
    );
    assert!(text.contains("duration_ms"), "{text}");
    assert!(text.contains("auth/kubernetes/prod/eu1/config"), "{text}");
    for secret in [creds.secret_id.as_str(), wrong.secret_id.as_str(), jwt] {
        assert!(
            !text.contains(secret),
            "a secret leaked into the logs:\n{text}"
        );
    }
    assert_eq!(
        find_token(&text),
        None,
        "a Vault token leaked into the logs:\n{text}"
    );
    assert_eq!(
        find_token("x s.KX7rD1wHTr9UCI787C6UITfd y"),
        Some("s.KX7rD1wHTr9UCI787C6UITfd")
    );
}

async fn skipping_verification_warns_loudly_once() {
    let (bao, creds) = tls_bao().await;
    let (logs, _guard) = capture_logs(tracing::Level::INFO);

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

/// The first OpenBao service token (`s.` and 24 letters or digits) in `text`.
fn find_token(text: &str) -> Option<&str> {
    text.match_indices("s.").find_map(|(at, _)| {
        let tail = &text[at + 2..];
        let len = tail.chars().take_while(char::is_ascii_alphanumeric).count();
        (len == 24).then(|| &text[at..at + 26])
    })
}
