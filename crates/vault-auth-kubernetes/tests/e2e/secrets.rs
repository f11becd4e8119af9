//! A secret scan over everything a full scenario emits: the controller's log at trace level,
//! Events, the ConfigMap's annotations, /metrics and /readyz, and the output of every command
//! (text and JSON). None may hold the AppRole secret-id, the reviewer's JWT, a pod's
//! ServiceAccount token, or anything shaped like a Vault token or a JWT.

use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Secret};
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::commands_support::vak;
use crate::support::{Env, NAMESPACE, TIMEOUT, readme_roles, wait_for};

/// Places in `text` that look like a Vault token (`hvs.…`, `s.…` with 20+ characters) or a
/// JWT (`eyJ….….…`).
fn token_shapes(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut found = Vec::new();
    for (i, _) in text.char_indices() {
        if i > 0 && word(bytes[i - 1]) {
            continue;
        }
        let rest = &text[i..];
        let run = |s: &str| s.bytes().take_while(|b| word(*b)).count();
        for prefix in ["hvs.", "hvb.", "hvr.", "s.", "b."] {
            if let Some(tail) = rest.strip_prefix(prefix)
                && run(tail) >= 20
            {
                found.push(rest[..prefix.len() + run(tail)].to_string());
            }
        }
        if rest.starts_with("eyJ") {
            let parts: Vec<&str> = rest.splitn(3, '.').collect();
            if parts.len() == 3 && run(parts[0]) >= 10 && run(parts[1]) >= 10 && run(parts[2]) >= 10
            {
                found.push(format!("{}.{}.…", parts[0], parts[1]));
            }
        }
    }
    found
}

#[test]
fn the_scanner_finds_token_shapes() {
    assert_eq!(
        token_shapes("x hvs.CAESIJlWh7xbeLdkTVuyY2PwvV7 y").len(),
        1,
        "a Vault token"
    );
    assert_eq!(
        token_shapes("token=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJlc2ln")
            .len(),
        1
    );
    assert!(token_shapes("vault-auth-kubernetes/status: Synced, 2 roles (s.t.)").is_empty());
}

async fn get(port: u16, path: &str) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .expect("admin server")
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_output() {
    let env = Env::start().await;
    let mut roles = readme_roles();
    roles.push(("broken", json!("{\"bound_service_account_names\": [")));
    env.put_roles(&roles).await;

    let port = testkit::free_port();
    let log_path = env.dir.path().join("trace.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vault-auth-kubernetes"))
        .env_clear()
        .envs(env.controller_env())
        .env("VAK_ADMIN_PORT", port.to_string())
        .env("VAK_LOG_LEVEL", "trace")
        .env("VAK_RESYNC_INTERVAL", "1s")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for("ready", TIMEOUT, || async {
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .ok()?;
        (ready.status() == 200).then_some(())
    })
    .await;
    // A pod logs in; an edit makes another pass; a resync or two go by.
    let pod_token = env.sa_token("default", "vault-agent-injector").await;
    env.login("default", "vault-agent-injector", "default")
        .await
        .expect("login");
    roles[1].1["token_ttl"] = json!("2h");
    env.put_roles(&roles).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut outputs: Vec<(String, String)> = Vec::new();
    outputs.push(("/metrics".into(), get(port, "/metrics").await));
    outputs.push(("/readyz".into(), get(port, "/readyz").await));
    for args in [
        &["plan"][..],
        &["plan", "-o", "json"],
        &["sync", "--once"],
        &["cleanup", "--dry-run"],
        &["plan", "--log-level", "trace"],
    ] {
        let run = vak(&env, args).await;
        outputs.push((format!("{args:?} stdout"), run.stdout));
        outputs.push((format!("{args:?} stderr"), run.stderr));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let trace_log = std::fs::read_to_string(&log_path).unwrap();
    let log_len = trace_log.len();
    assert!(
        trace_log.contains("TRACE"),
        "the controller did not log at trace level: {trace_log}"
    );
    outputs.push(("controller log (trace)".into(), trace_log));
    let events = Api::<CoreEvent>::namespaced(env.client(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap();
    outputs.push((
        "Events".into(),
        serde_json::to_string(&events.items).unwrap(),
    ));
    let cm = Api::<ConfigMap>::namespaced(env.client(), NAMESPACE)
        .get("vault-auth-roles")
        .await
        .unwrap();
    outputs.push((
        "ConfigMap annotations".into(),
        serde_json::to_string(&cm.metadata.annotations).unwrap(),
    ));

    let reviewer_secret = Api::<Secret>::namespaced(env.client(), NAMESPACE)
        .get("token-reviewer-token")
        .await
        .unwrap();
    let reviewer_jwt = String::from_utf8(reviewer_secret.data.unwrap()["token"].0.clone()).unwrap();
    let secrets = [
        ("the AppRole secret-id", env.creds.secret_id.clone()),
        ("the reviewer's JWT", reviewer_jwt),
        ("a pod's ServiceAccount token", pod_token),
    ];
    for (place, text) in &outputs {
        for (what, secret) in &secrets {
            assert!(!text.contains(secret.as_str()), "{what} appears in {place}");
        }
        let shapes = token_shapes(text);
        assert!(
            shapes.is_empty(),
            "token-shaped strings in {place}: {shapes:?}"
        );
    }
    println!(
        "scanned {} outputs ({} bytes in all, {log_len} of trace log) for 3 secrets and token shapes",
        outputs.len(),
        outputs.iter().map(|o| o.1.len()).sum::<usize>()
    );
}
