//! The AppRole session against a real OpenBao: one login for many calls, renewal and re-login
//! around short TTLs without a failed call, recovery from a revoked token, no re-login for a
//! policy denial, and no secret in errors or logs.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{AppRoleCredentials, OpenBao, README_POLICY};
use tokio_util::sync::CancellationToken;
use vault_auth_kubernetes::Error;
use vault_auth_kubernetes::metrics::Metrics;
use vault_auth_kubernetes::secret::Secret;
use vault_auth_kubernetes::vault::{VaultClient, VaultSettings};

const MOUNT: &str = "kubernetes/prod/eu1";

fn client(bao: &OpenBao, creds: &AppRoleCredentials) -> (VaultClient, Metrics) {
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
fn requests(metrics: &Metrics, operation: &str, status: Option<&str>) -> u64 {
    let label = format!("operation=\"{operation}\"");
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("vault_auth_kubernetes_vault_requests_total{"))
        .filter(|l| l.contains(&label))
        .filter(|l| status.is_none_or(|s| l.contains(&format!("status=\"{s}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// OpenBao with a Kubernetes auth method at [`MOUNT`] and the README's policy.
async fn server() -> OpenBao {
    let bao = OpenBao::start().await;
    bao.cli(&["auth", "enable", "-path=kubernetes/prod/eu1", "kubernetes"]);
    bao.write_policy(None, "vault-auth-kubernetes", README_POLICY)
        .await;
    bao
}

/// AppRole `name` holding only the README's policy, with extra role parameters.
async fn readme_approle(bao: &OpenBao, name: &str, extra: serde_json::Value) -> AppRoleCredentials {
    let mut params = json!({"token_policies": ["vault-auth-kubernetes"]});
    params
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    bao.approle(None, name, params).await
}

#[tokio::test]
async fn fifty_calls_cost_exactly_one_login() {
    let bao = server().await;
    let creds = readme_approle(&bao, "vak", json!({"token_ttl": "1h"})).await;
    let (client, metrics) = client(&bao, &creds);
    let tokens_before = bao.token_count().await;
    assert!(!client.token_status().valid);

    // 25 concurrent first calls find no token: they must share one login, not race to 25.
    let first = futures::future::join_all((0..25).map(|_| client.list_roles(MOUNT))).await;
    for result in first {
        assert_eq!(result.expect("list roles"), Vec::<String>::new());
    }
    for i in 0..25 {
        match i % 3 {
            0 => assert!(client.auth_mount(MOUNT).await.unwrap().is_some()),
            1 => assert_eq!(client.read_role(MOUNT, "nope").await.unwrap(), None),
            _ => assert!(client.list_roles(MOUNT).await.unwrap().is_empty()),
        }
    }

    assert_eq!(requests(&metrics, "login", None), 1, "{}", metrics.encode());
    assert_eq!(
        bao.token_count().await - tokens_before,
        1,
        "tokens created in Vault"
    );
    let data_calls = requests(&metrics, "list_roles", Some("404"))
        + requests(&metrics, "read_role", Some("404"))
        + requests(&metrics, "read_auth_mounts", Some("200"));
    assert_eq!(data_calls, 50, "{}", metrics.encode());
    let status = client.token_status();
    assert!(status.valid && status.renewable, "{status:?}");
    let ttl = status.ttl.expect("an AppRole token expires");
    assert!(
        ttl > Duration::from_secs(3500) && ttl <= Duration::from_secs(3600),
        "{ttl:?}"
    );
    assert!(
        metrics
            .encode()
            .contains("vault_auth_kubernetes_vault_token_ttl_seconds 3")
    );
}

struct Run {
    calls: u64,
    failures: Vec<String>,
}

/// Calls Vault back to back for `length` while the session runs in the background.
async fn call_continuously(client: VaultClient, length: Duration) -> Run {
    let shutdown = CancellationToken::new();
    let session = tokio::spawn({
        let client = client.clone();
        let shutdown = shutdown.clone();
        async move { client.run_session(shutdown).await }
    });
    let started = Instant::now();
    let mut run = Run {
        calls: 0,
        failures: Vec::new(),
    };
    while started.elapsed() < length {
        if let Err(e) = client.list_roles(MOUNT).await {
            run.failures
                .push(format!("{:.1}s: {e}", started.elapsed().as_secs_f64()));
        }
        run.calls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    session.await.expect("session task");
    run
}

#[tokio::test]
async fn five_second_tokens_do_not_interrupt_continuous_calls() {
    let bao = server().await;
    let fixed = readme_approle(
        &bao,
        "fixed",
        json!({"token_ttl": "5s", "token_max_ttl": "5s"}),
    )
    .await;
    let renewable = readme_approle(
        &bao,
        "renewable",
        json!({"token_ttl": "5s", "token_max_ttl": "12s"}),
    )
    .await;
    let (fixed_client, fixed_metrics) = client(&bao, &fixed);
    let (renew_client, renew_metrics) = client(&bao, &renewable);

    let length = Duration::from_secs(20);
    let (fixed_run, renew_run) = tokio::join!(
        call_continuously(fixed_client, length),
        call_continuously(renew_client, length)
    );

    for (name, run, metrics) in [
        ("max TTL 5s", &fixed_run, &fixed_metrics),
        ("renewable to 12s", &renew_run, &renew_metrics),
    ] {
        println!(
            "{name}: {} calls, {} logins, {} renewals, {} answered 403",
            run.calls,
            requests(metrics, "login", Some("200")),
            requests(metrics, "renew", Some("200")),
            requests(metrics, "list_roles", Some("403")),
        );
        assert!(
            run.failures.is_empty(),
            "{name}: failed calls: {:?}",
            run.failures
        );
        assert!(run.calls > 200, "{name}: only {} calls", run.calls);
        // Tokens are replaced before they expire, not after Vault refuses them.
        assert_eq!(requests(metrics, "list_roles", Some("403")), 0, "{name}");
    }
    // Not renewable beyond 5 s: a new login about every 3.3 s (two thirds of the TTL).
    let fixed_logins = requests(&fixed_metrics, "login", Some("200"));
    assert!(
        (5..=8).contains(&fixed_logins),
        "fixed: {fixed_logins} logins"
    );
    // Renewable up to 12 s: renewals, and a login only when the max TTL is reached (~10 s).
    let logins = requests(&renew_metrics, "login", Some("200"));
    let renewals = requests(&renew_metrics, "renew", Some("200"));
    assert!((2..=3).contains(&logins), "renewable: {logins} logins");
    assert!(renewals >= 4, "renewable: {renewals} renewals");
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_and_the_call_retried() {
    let bao = server().await;
    let creds = readme_approle(&bao, "vak", json!({})).await;
    let (client, metrics) = client(&bao, &creds);
    client.login().await.expect("login");
    client.login().await.expect("a held token is reused");
    assert_eq!(requests(&metrics, "login", None), 1);

    // Revoke every token issued by AppRole, as an operator (or a Vault restore) would.
    let revoke = bao
        .request("POST", "sys/leases/revoke-prefix/auth/approle", None)
        .await;
    assert_eq!(revoke.status, 204, "{:?}", revoke.body);

    assert_eq!(
        client.list_roles(MOUNT).await.expect("retried call"),
        Vec::<String>::new()
    );
    assert_eq!(requests(&metrics, "list_roles", Some("403")), 1);
    assert_eq!(requests(&metrics, "lookup_self", Some("403")), 1);
    assert_eq!(requests(&metrics, "login", Some("200")), 2);
    assert_eq!(requests(&metrics, "list_roles", Some("404")), 1);
}

#[tokio::test]
async fn a_policy_denial_is_reported_without_logging_in_again() {
    let bao = server().await;
    let creds = readme_approle(&bao, "vak", json!({})).await;
    let (client, metrics) = client(&bao, &creds);

    // The README's policy covers two-segment mounts only.
    let err = client
        .enable_auth("kubernetes/prod/eu1/extra", "kubernetes", "d", "8760h")
        .await
        .expect_err("three segments are outside the policy");
    let text = err.to_string();
    assert!(
        matches!(err, Error::VaultStatus { status: 403, .. }),
        "{text}"
    );
    assert!(
        text.contains("enable_auth") && text.contains("permission denied"),
        "{text}"
    );
    assert_eq!(
        requests(&metrics, "login", None),
        1,
        "no second login for a denial"
    );
    assert_eq!(requests(&metrics, "lookup_self", Some("200")), 1);
    assert_eq!(
        requests(&metrics, "enable_auth", Some("403")),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_errors_or_logs() {
    let bao = server().await;
    let creds = readme_approle(&bao, "vak", json!({})).await;
    let logs = testkit::SharedBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

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

/// The first OpenBao service token (`s.` and 24 letters or digits) in `text`.
fn find_token(text: &str) -> Option<&str> {
    text.match_indices("s.").find_map(|(at, _)| {
        let tail = &text[at + 2..];
        let len = tail.chars().take_while(char::is_ascii_alphanumeric).count();
        (len == 24).then(|| &text[at..at + 26])
    })
}
