//! The AppRole session against a real OpenBao: one login for many calls, renewal and re-login
//! around short TTLs without a failed call, recovery from a revoked token, no re-login for a
//! policy denial. (No secret in errors or logs: `vault_secrets.rs`.)

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use vault_auth_kubernetes::Error;
use vault_auth_kubernetes::vault::VaultClient;

use crate::support::{MOUNT, client, readme_approle, requests, server};

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

/// Settings whose AppRole credentials are read from files in `dir` (as the chart mounts them).
fn file_settings(
    bao: &testkit::TestVault,
    dir: &std::path::Path,
    role_id: &str,
    secret_id: &str,
) -> vault_auth_kubernetes::vault::VaultSettings {
    use vault_auth_kubernetes::vault::{Credential, VaultAuth};
    std::fs::write(dir.join("role-id"), format!("{role_id}\n")).unwrap();
    std::fs::write(dir.join("secret-id"), format!("{secret_id}\n")).unwrap();
    let mut settings = crate::support::settings(
        bao,
        &testkit::AppRoleCredentials {
            role_id: role_id.into(),
            secret_id: secret_id.into(),
        },
    );
    settings.auth = VaultAuth::AppRole {
        role_id: Credential::File(dir.join("role-id")),
        secret_id: Credential::File(dir.join("secret-id")),
    };
    settings
}

/// Vault locks an AppRole out after 5 refused logins within 15 minutes: the client must never
/// get there. A refused login is followed by no request at all until the throttle allows one,
/// and the error says why; a rotated secret-id (the file changed) is tried at once.
#[tokio::test]
async fn refused_logins_are_spaced_and_a_rotated_secret_id_is_used_at_once() {
    let bao = server().await;
    let creds = readme_approle(&bao, "vak", json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = file_settings(&bao, dir.path(), &creds.role_id, "not-the-secret-id");
    let metrics = vault_auth_kubernetes::metrics::Metrics::new();
    let client = VaultClient::new(settings, metrics.clone()).unwrap();

    let first = client.login().await.unwrap_err();
    assert!(
        matches!(first, Error::VaultLoginRefused { .. }),
        "{first:?}"
    );
    let text = first.to_string();
    assert!(
        text.contains("locked out") && text.contains("sys/locked-users"),
        "{text}"
    );
    assert!(!text.contains("not-the-secret-id"), "{text}");
    for _ in 0..20 {
        let again = client.list_roles(MOUNT).await.unwrap_err();
        assert!(
            matches!(again, Error::VaultLoginThrottled { failures: 1, .. }),
            "{again:?}"
        );
    }
    assert_eq!(requests(&metrics, "login", None), 1, "{}", metrics.encode());

    // The Secret is rotated: the file now holds the right secret-id.
    std::fs::write(dir.path().join("secret-id"), &creds.secret_id).unwrap();
    assert_eq!(
        client.list_roles(MOUNT).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(requests(&metrics, "login", None), 2, "{}", metrics.encode());
}

/// The short-lived commands revoke the token they logged in for, so nothing is left in Vault;
/// the policies of the token are known from the login (for the policy guard-rail).
#[tokio::test]
async fn a_login_token_is_revoked_and_its_policies_known() {
    let bao = server().await;
    let creds = readme_approle(&bao, "vak", json!({"token_ttl": "1h"})).await;
    let (client, metrics) = client(&bao, &creds);
    assert!(
        !client.revoke_own_token().await.unwrap(),
        "no token yet: nothing sent"
    );
    let before = bao.token_count().await;
    client.login().await.unwrap();
    assert_eq!(bao.token_count().await, before + 1);
    let policies = client.own_policies();
    assert!(
        policies.contains(&"vault-auth-kubernetes".to_string()),
        "{policies:?}"
    );
    assert!(client.revoke_own_token().await.unwrap());
    assert_eq!(
        bao.token_count().await,
        before,
        "the token is gone from Vault"
    );
    assert_eq!(
        requests(&metrics, "revoke_self", Some("204")),
        1,
        "{}",
        metrics.encode()
    );
}

/// An operator's own token is used as given (its policies read with lookup-self), and never
/// revoked: it is not the tool's.
#[tokio::test]
async fn an_operators_token_is_used_and_never_revoked() {
    use vault_auth_kubernetes::secret::Secret;
    use vault_auth_kubernetes::vault::VaultAuth;
    let bao = server().await;
    let token = bao
        .cli(&[
            "token",
            "create",
            "-policy=vault-auth-kubernetes",
            "-field=token",
        ])
        .trim()
        .to_string();
    let mut settings = crate::support::settings(
        &bao,
        &testkit::AppRoleCredentials {
            role_id: "unused".into(),
            secret_id: "unused".into(),
        },
    );
    settings.auth = VaultAuth::Token(Secret::new(token.clone()));
    let metrics = vault_auth_kubernetes::metrics::Metrics::new();
    let client = VaultClient::new(settings, metrics.clone()).unwrap();
    assert_eq!(
        client.list_roles(MOUNT).await.unwrap(),
        Vec::<String>::new()
    );
    assert!(
        client
            .own_policies()
            .contains(&"vault-auth-kubernetes".to_string())
    );
    assert!(!client.revoke_own_token().await.unwrap());
    assert_eq!(requests(&metrics, "login", None), 0);
    let lookup = bao
        .request_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(lookup.status, 200, "the operator's token still works");
}
