//! The fault suite: each failure the controller must survive is made to happen for real, and
//! every channel a user looks at is read back — readiness, the status annotation, Events on
//! the ConfigMap, metrics, the log and the exit code of `sync --once`. Each must name the
//! failure with its cause, and none may claim a success Vault or Kubernetes did not confirm.

use std::time::Duration;

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::commands_support::{configmap_status, vak_with};
use crate::operations::{Process, roles};
use crate::support::{Env, MOUNT, TIMEOUT, readme_roles, wait_for};

/// Everything a user can see of the controller at one moment.
#[derive(Debug)]
struct Seen {
    readiness: (u16, String),
    status: (String, String),
    /// (type, reason, note) of the Events on the ConfigMap.
    events: Vec<(String, String, String)>,
    metrics: String,
    /// The JSON log lines.
    log: Vec<Value>,
}

impl Seen {
    async fn now(env: &Env, p: &Process) -> Seen {
        Seen {
            // (0, "") while the admin server is not up yet.
            readiness: p.get("/readyz").await.unwrap_or_default(),
            status: configmap_status(env).await,
            events: env.configmap_events().await,
            metrics: p.get("/metrics").await.unwrap_or_default().1,
            log: p
                .log()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
        }
    }

    /// The sum of the samples of `name` whose labels contain every one of `labels`.
    fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        self.metrics
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn normal_events(&self) -> Vec<&(String, String, String)> {
        self.events.iter().filter(|(t, ..)| t == "Normal").collect()
    }

    /// Log lines at `level` (ERROR, WARN, INFO) whose text contains `needle`.
    fn log_lines(&self, level: &str, needle: &str) -> Vec<String> {
        self.log
            .iter()
            .filter(|l| l["level"] == level)
            .map(Value::to_string)
            .filter(|l| l.contains(needle))
            .collect()
    }
}

/// How a failure must show.
struct Expected<'a> {
    /// The Warning Event's reason (also the first word of the status message, for a pass
    /// that could not run).
    reason: &'a str,
    /// A piece of the cause every channel must carry.
    cause: &'a str,
    /// Whether the controller stays ready (a problem of one entry or object does not hold
    /// the whole controller down; Vault or a failed step does).
    ready: bool,
}

/// Waits until every channel reports `expected`, then asserts each with its own message.
async fn assert_reported(env: &Env, p: &Process, expected: &Expected<'_>) -> Seen {
    let ready_code = if expected.ready { 200 } else { 503 };
    let seen = wait_for(
        &format!("{} reported on every channel", expected.reason),
        TIMEOUT * 2,
        || async {
            let seen = Seen::now(env, p).await;
            let status_ok = seen.status.0 == "Degraded" && seen.status.1.contains(expected.cause);
            let event_ok = seen.events.iter().any(|(t, r, n)| {
                t == "Warning" && r == expected.reason && n.contains(expected.cause)
            });
            // Readiness is set once the pass has reported (status and Events first), so it is
            // waited for like the others, with its cause.
            let ready_ok = seen.readiness.0 == ready_code
                && (expected.ready || seen.readiness.1.contains(expected.cause));
            (status_ok && event_ok && ready_ok).then_some(seen)
        },
    )
    .await
    .0;
    let lines = [
        seen.log_lines("ERROR", expected.cause),
        seen.log_lines("WARN", expected.cause),
    ]
    .concat();
    assert!(
        !lines.is_empty(),
        "no ERROR or WARN log line names {:?}",
        expected.cause
    );
    seen
}

/// `sync --once` with the same fault: exit 1, the cause on its output.
async fn assert_sync_once_fails(env: &Env, extra_env: &[(&str, &str)], cause: &str) {
    let run = vak_with(env, &["sync", "--once"], extra_env).await;
    assert_eq!(run.status, 1, "{run:?}");
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        text.contains(cause),
        "the cause is not on the output: {run:?}"
    );
    assert!(!text.starts_with("Synced"), "{run:?}");
}

/// Events with the reasons of the changes the controller announces.
fn success_events_naming<'a>(seen: &'a Seen, name: &str) -> Vec<&'a (String, String, String)> {
    seen.normal_events()
        .into_iter()
        .filter(|(_, _, note)| note.contains(name))
        .collect()
}

/// A sealed Vault: readiness false with the cause, status Degraded (VaultUnavailable), a
/// Warning Event, failed passes in the metrics, the cause in the log, no Normal Event while it
/// lasts, and `sync --once` exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_sealed_vault() {
    let env = Env::start().await;
    env.put_roles(&roles("p1")).await;
    let p = Process::spawn(&env, "solo", &[("VAK_RESYNC_INTERVAL", "1s")]);
    wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;
    let before = Seen::now(&env, &p).await;

    env.bao.cli(&["operator", "seal"]);
    let seen = assert_reported(
        &env,
        &p,
        &Expected {
            reason: "VaultUnavailable",
            cause: "sealed",
            ready: false,
        },
    )
    .await;
    assert!(
        seen.readiness.1.contains("the last pass failed"),
        "{:?}",
        seen.readiness
    );
    assert!(
        seen.status.1.starts_with("VaultUnavailable"),
        "{:?}",
        seen.status
    );
    // A few failing passes go by: none may announce anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = Seen::now(&env, &p).await;
    assert_eq!(
        after.normal_events().len(),
        before.normal_events().len(),
        "a Normal Event while Vault was sealed: {:?}",
        after.events
    );
    assert!(
        after.metric(
            "vault_auth_kubernetes_reconciliations_total",
            &["result=\"error\""]
        ) >= 1.0,
        "{}",
        after.metrics
    );
    assert_sync_once_fails(&env, &[], "sealed").await;
}

/// A refused login (a wrong secret-id): VaultLoginFailed everywhere with Vault's answer (the
/// first error also says a lockout may be the cause, and how to unlock, as `sync --once` shows);
/// at most two logins in the first 8 s (never near Vault's lockout of 5 in 15 minutes); no
/// role written; `sync --once` exits 1 with the same cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_refused_login() {
    let env = Env::start().await;
    env.put_roles(&roles("p1")).await;
    let wrong = "00000000-0000-0000-0000-000000000000";
    let p = Process::spawn(&env, "solo", &[("VAK_VAULT_SECRET_ID", wrong)]);
    let seen = assert_reported(
        &env,
        &p,
        &Expected {
            reason: "VaultLoginFailed",
            cause: "invalid role or secret ID",
            ready: false,
        },
    )
    .await;
    assert!(
        seen.status.1.starts_with("VaultLoginFailed"),
        "{:?}",
        seen.status
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    let seen = Seen::now(&env, &p).await;
    let logins = seen.metric(
        "vault_auth_kubernetes_vault_requests_total",
        &["operation=\"login\""],
    );
    assert!(
        (1.0..=2.0).contains(&logins),
        "{logins} logins: {}",
        seen.metrics
    );
    assert!(seen.normal_events().is_empty(), "{:?}", seen.events);
    assert!(env.vault_role_names().await.is_empty());
    assert!(!p.log().contains(wrong), "the secret-id was logged");
    assert_sync_once_fails(&env, &[("VAK_VAULT_SECRET_ID", wrong)], "locked out").await;
}

/// Vault refuses one role write (403: the platform team's policy denies that role's path):
/// the other role is written and announced, the refused one is named as a failed step with
/// Vault's answer everywhere, never as created; readiness names the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_vault_refuses_a_role_write() {
    let env = Env::start().await;
    let policy = format!(
        "{}\npath \"auth/kubernetes/{MOUNT}/role/forbidden\" {{\n  capabilities = [\"deny\"]\n}}\n",
        testkit::README_POLICY
    );
    env.bao
        .write_policy(None, testkit::README_APPROLE, &policy)
        .await;
    let mut entries = roles("p1");
    entries.push((
        "forbidden",
        json!({
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["default"],
            "token_policies": ["p1"]
        }),
    ));
    env.put_roles(&entries).await;
    let p = Process::spawn(&env, "solo", &[]);
    let seen = assert_reported(
        &env,
        &p,
        &Expected {
            reason: "StepsFailed",
            cause: "create role forbidden",
            ready: false,
        },
    )
    .await;
    assert!(
        seen.readiness.1.contains("permission denied"),
        "{:?}",
        seen.readiness
    );
    assert!(env.vault_role("default").await.is_some());
    assert!(env.vault_role("forbidden").await.is_none());
    assert!(
        success_events_naming(&seen, "forbidden").is_empty(),
        "{:?}",
        seen.events
    );
    assert!(
        !success_events_naming(&seen, "default").is_empty(),
        "the role that was written is not announced: {:?}",
        seen.events
    );
    let claimed: Vec<&Value> = seen
        .log
        .iter()
        .filter(|l| l["level"] == "INFO" && l["role"] == "forbidden")
        .collect();
    assert!(claimed.is_empty(), "{claimed:?}");
    assert!(
        seen.log_lines("ERROR", "create role forbidden")
            .iter()
            .any(|l| l.contains("permission denied")),
        "the log does not say Vault's answer"
    );
    assert!(
        seen.metric(
            "vault_auth_kubernetes_vault_requests_total",
            &["operation=\"write_role\"", "code=\"403\""]
        ) >= 1.0,
        "{}",
        seen.metrics
    );
    assert_sync_once_fails(&env, &[], "permission denied").await;
}

/// A Vault that hangs (SIGSTOP): unready within seconds, naming the wait; once the request
/// times out, VaultUnreachable with the timeout on every channel; nothing announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_vault_that_hangs() {
    let env = Env::start().await;
    env.put_roles(&roles("p1")).await;
    let p = Process::spawn(&env, "solo", &[("VAK_RESYNC_INTERVAL", "1s")]);
    wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;
    let before = Seen::now(&env, &p).await;
    env.bao.pause();
    let (body, took) = wait_for("not ready while Vault hangs", TIMEOUT, || async {
        match p.get("/readyz").await {
            Some((503, body)) => Some(body),
            _ => None,
        }
    })
    .await;
    assert!(body.contains("request to Vault has been waiting"), "{body}");
    assert!(took < Duration::from_secs(12), "{took:?}");
    let seen = assert_reported(
        &env,
        &p,
        &Expected {
            reason: "VaultUnreachable",
            cause: "timed out",
            ready: false,
        },
    )
    .await;
    env.bao.resume();
    assert_eq!(
        seen.normal_events().len(),
        before.normal_events().len(),
        "{:?}",
        seen.events
    );
    wait_for("ready again once Vault answers", TIMEOUT, || async {
        p.ready().await.then_some(())
    })
    .await;
    wait_for("status Synced again", TIMEOUT, || async {
        (configmap_status(&env).await.0 == "Synced").then_some(())
    })
    .await;
}

/// A user's ClusterRoleBinding under the reviewer's name, with another role and subject: left
/// exactly as it is, reported as a conflict (Warning, Degraded), never announced as bound;
/// `sync --once` exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_foreign_reviewer_binding() {
    let env = Env::start().await;
    env.put_roles(&readme_roles()).await;
    let foreign: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "vault-auth-token-reviewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "someone", "namespace": "default"}]
    }))
    .unwrap();
    let api = Api::<ClusterRoleBinding>::all(env.client());
    api.create(&PostParams::default(), &foreign)
        .await
        .expect("create the foreign binding");
    let p = Process::spawn(&env, "solo", &[]);
    let seen = assert_reported(
        &env,
        &p,
        &Expected {
            reason: "Conflicts",
            cause: "ClusterRoleBinding vault-auth-token-reviewer",
            ready: true,
        },
    )
    .await;
    let binding = api.get("vault-auth-token-reviewer").await.unwrap();
    assert_eq!(binding.role_ref.name, "view");
    assert_eq!(binding.subjects.unwrap()[0].name, "someone");
    assert!(
        success_events_naming(&seen, "vault-auth-token-reviewer").is_empty(),
        "{:?}",
        seen.events
    );
    assert_sync_once_fails(&env, &[], "vault-auth-token-reviewer").await;
}

/// `data: {}` after roles were applied: nothing deleted, EmptyConfigMap everywhere, no Normal
/// "deleted" Event, the managed counts unchanged; `sync --once` exits 1 and says how to opt in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_an_emptied_configmap() {
    let env = Env::start().await;
    env.put_roles(&readme_roles()).await;
    let p = Process::spawn(&env, "solo", &[]);
    wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;
    env.put_roles(&[]).await;
    let seen = assert_reported(
        &env,
        &p,
        &Expected {
            reason: "EmptyConfigMap",
            cause: "has no entry",
            ready: true,
        },
    )
    .await;
    assert_eq!(env.vault_role_names().await.len(), 2);
    assert!(
        env.service_account("default", "vault-agent-injector")
            .await
            .is_some()
    );
    let deleted: Vec<_> = seen
        .normal_events()
        .into_iter()
        .filter(|(_, reason, _)| reason.contains("Deleted"))
        .collect();
    assert!(deleted.is_empty(), "{deleted:?}");
    assert_eq!(
        seen.metric("vault_auth_kubernetes_managed_roles", &[]),
        2.0,
        "{}",
        seen.metrics
    );
    assert_sync_once_fails(&env, &[], "allow-empty").await;
}

/// A list that keeps failing (emulator only: every request answers 500): unready naming
/// Kubernetes, the failed requests counted by code, the failure logged; ready again after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_only_fault_a_persistent_list_failure() {
    let env = Env::emulator(Default::default()).await;
    env.put_roles(&roles("p1")).await;
    let p = Process::spawn(&env, "solo", &[("VAK_RESYNC_INTERVAL", "1s")]);
    wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;
    let faults = env.kube.emulator_handle().faults();
    faults.fail_next("*", "*", 100_000, 500);
    faults.close_watches();
    let (body, _) = wait_for("not ready while lists fail", TIMEOUT, || async {
        match p.get("/readyz").await {
            Some((503, body)) => Some(body),
            _ => None,
        }
    })
    .await;
    assert!(body.contains("Kubernetes"), "{body}");
    let (_, metrics) = p.get("/metrics").await.unwrap();
    let log = p.log();
    faults.clear();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("vault_auth_kubernetes_kubernetes_requests_total")
                && l.contains("500")
        ),
        "{metrics}"
    );
    assert!(
        log.lines()
            .any(|l| (l.contains("\"WARN\"") || l.contains("\"ERROR\"")) && l.contains("500")),
        "the failing list is not in the log"
    );
    wait_for("ready again", TIMEOUT, || async {
        p.ready().await.then_some(())
    })
    .await;
}
