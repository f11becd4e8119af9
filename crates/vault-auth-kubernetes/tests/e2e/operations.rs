//! Running it in production: the real binary with its admin server (readiness, metrics),
//! SIGTERM, and two replicas electing a leader on a Lease.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Env, NAMESPACE, TIMEOUT, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;
use testkit::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_vault-auth-kubernetes");

/// A controller process configured through env vars, as the Helm chart does.
pub(crate) struct Process {
    child: Child,
    admin_port: u16,
    log: std::path::PathBuf,
}

impl Process {
    pub(crate) fn spawn(env: &Env, name: &str, extra_env: &[(&str, &str)]) -> Process {
        Self::spawn_command(env, name, Command::new(BIN), extra_env)
    }

    pub(crate) fn spawn_command(
        env: &Env,
        name: &str,
        mut cmd: Command,
        extra_env: &[(&str, &str)],
    ) -> Process {
        let admin_port = free_port();
        let log = env.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.controller_env())
            .env("VAK_ADMIN_PORT", admin_port.to_string())
            .env("VAK_LOG_FORMAT", "json")
            .env("POD_NAME", name)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Process {
            child: cmd.spawn().expect("spawn vault-auth-kubernetes"),
            admin_port,
            log,
        }
    }

    /// Like [`Process::spawn_command`] with only `extra_env` as settings (no kubeconfig).
    pub(crate) fn spawn_command_only(
        env: &Env,
        name: &str,
        cmd: Command,
        extra_env: &[(&str, &str)],
    ) -> Process {
        let mut cmd = cmd;
        cmd.env_clear();
        let admin_port = free_port();
        let log = env.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VAK_ADMIN_PORT", admin_port.to_string())
            .env("VAK_LOG_FORMAT", "json")
            .env("POD_NAME", name)
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        Process {
            child: cmd.spawn().expect("spawn unshare"),
            admin_port,
            log,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.admin_port);
        let resp = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }

    pub(crate) async fn ready(&self) -> bool {
        matches!(self.get("/readyz").await, Some((200, _)))
    }

    pub(crate) fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal}");
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit; its exit code.
    pub(crate) async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > within {
                panic!(
                    "process did not exit within {within:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Role writes Vault answered with a 2xx, summed from the Prometheus text.
fn successful_role_writes(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("vault_auth_kubernetes_vault_requests_total{"))
        .filter(|l| l.contains("operation=\"write_role\"") && l.contains("code=\"20"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

pub(crate) fn roles(policy: &str) -> Vec<(&'static str, serde_json::Value)> {
    vec![(
        "default",
        json!({
            "bound_service_account_names": ["vault-agent-injector"],
            "bound_service_account_namespaces": ["default"],
            "token_policies": [policy]
        }),
    )]
}

/// Readiness follows the first sync and the reachability of Vault; metrics are served; SIGTERM
/// stops the process cleanly and quickly; secrets never reach the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_readiness_metrics_and_sigterm() {
    let mut env = Env::start().await;
    env.put_roles(&roles("p1")).await;
    let mut p = Process::spawn(&env, "solo", &[("VAK_RESYNC_INTERVAL", "1s")]);
    let (_, took) = wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;
    println!("ready {took:?} after start");
    assert!(
        env.vault_role("default").await.is_some(),
        "ready means synced"
    );
    assert!(matches!(p.get("/livez").await, Some((200, _))));

    let (status, metrics) = p.get("/metrics").await.unwrap();
    assert_eq!(status, 200);
    for series in [
        "vault_auth_kubernetes_reconciliations_total{result=\"success\"}",
        "vault_auth_kubernetes_reconcile_duration_seconds_bucket",
        "vault_auth_kubernetes_kubernetes_requests_total{verb=\"create\",resource=\"serviceaccounts\"",
        "vault_auth_kubernetes_managed_roles 1",
        "vault_auth_kubernetes_managed_service_accounts 1",
        "vault_auth_kubernetes_invalid_configmap_entries 0",
        "vault_auth_kubernetes_last_successful_sync_timestamp_seconds",
        "vault_auth_kubernetes_vault_token_ttl_seconds",
        "vault_auth_kubernetes_leader 1",
    ] {
        assert!(metrics.contains(series), "missing {series} in:\n{metrics}");
    }
    // One role written (OpenBao answers 204, HashiCorp Vault 200 with advice).
    assert_eq!(successful_role_writes(&metrics), 1, "{metrics}");

    // Unchanged roles are never rewritten: three resyncs later, still one write.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, later) = p.get("/metrics").await.unwrap();
    assert_eq!(successful_role_writes(&later), 1, "{later}");
    assert!(
        later.contains("vault_requests_total{operation=\"login\",code=\"200\"} 1"),
        "{later}"
    );

    // Vault down: the next resync fails and the controller reports not ready.
    env.bao.kill();
    let (body, took) = wait_for("not ready while Vault is down", TIMEOUT, || async {
        match p.get("/readyz").await {
            Some((503, body)) => Some(body),
            _ => None,
        }
    })
    .await;
    println!("unready {took:?} after Vault went down: {}", body.trim());
    env.bao.restart_empty().await;
    crate::support::restore_approle(&env.bao, &env.creds).await;
    wait_for("ready again after Vault is back", TIMEOUT, || async {
        p.ready().await.then_some(())
    })
    .await;

    let start = Instant::now();
    p.signal("TERM");
    let code = p.wait_exit(Duration::from_secs(10)).await;
    println!("SIGTERM: exited with {code:?} in {:?}", start.elapsed());
    assert_eq!(code, Some(0), "log:\n{}", p.log());
    let log = p.log();
    assert!(log.contains("received SIGTERM"), "{log}");
    assert!(!log.contains(&env.creds.secret_id), "secret-id in the log");
    assert!(log.contains(r#""vault_secret_id":"******""#), "{log}");
}

/// In a pod: no kubeconfig, the ServiceAccount token, CA and namespace at
/// /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT set. The binary
/// runs in a private mount namespace (util-linux `unshare`, as root) where a folder holding a
/// real TokenRequest token is bind-mounted at that path, as the kubelet mounts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cluster_configuration_from_the_pod_paths() {
    let env = Env::start().await;
    let client = env.client();
    let sa: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "vault-auth-kubernetes"}})).unwrap();
    Api::namespaced(client.clone(), NAMESPACE)
        .create(&Default::default(), &sa)
        .await
        .unwrap();
    // Its permissions are the chart's business (chart_rbac proves them): here, cluster-admin.
    let binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "in-cluster-test"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "vault-auth-kubernetes", "namespace": NAMESPACE}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client.clone())
        .create(&Default::default(), &binding)
        .await
        .unwrap();
    let pod = env.dir.path().join("serviceaccount");
    std::fs::create_dir_all(&pod).unwrap();
    let token = env
        .kube
        .service_account_token(NAMESPACE, "vault-auth-kubernetes", &[], 3600)
        .await;
    std::fs::write(pod.join("token"), &token).unwrap();
    std::fs::write(pod.join("ca.crt"), env.kube.ca_pem()).unwrap();
    std::fs::write(pod.join("namespace"), NAMESPACE).unwrap();
    env.put_roles(&roles("in-cluster")).await;

    let url = url::Url::parse(&env.kube.url()).unwrap();
    let port = url.port().unwrap().to_string();
    let script = "mount -t tmpfs tmpfs /run \
        && mkdir -p /run/secrets/kubernetes.io/serviceaccount \
        && mount --bind \"$POD_DIR\" /run/secrets/kubernetes.io/serviceaccount \
        && exec \"$VAK_BIN\"";
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script]);
    let pod_dir = pod.display().to_string();
    let settings: Vec<(&str, String)> = env
        .controller_env()
        .into_iter()
        .filter(|(k, _)| *k != "KUBECONFIG" && *k != "VAK_NAMESPACE")
        .collect();
    let mut extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.extend([
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        ("KUBERNETES_SERVICE_PORT", port.as_str()),
        ("POD_DIR", pod_dir.as_str()),
        ("VAK_BIN", BIN),
    ]);
    let mut p = Process::spawn_command_only(&env, "in-cluster", cmd, &extra);
    let started = Instant::now();
    while !p.ready().await {
        if let Some(status) = p.child.try_wait().unwrap() {
            panic!(
                "the in-cluster run exited with {status} (unshare needs root, or user and mount \
                 namespaces); log:\n{}",
                p.log()
            );
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "not ready in-cluster within {TIMEOUT:?}; log:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("ready in-cluster after {:?}", started.elapsed());
    let log = p.log();
    assert!(log.contains("(in-cluster)"), "{log}");
    assert!(!log.contains(&token), "the pod's token must not be logged");
    let role = env.vault_role("default").await.expect("role written");
    assert_eq!(role["token_policies"], json!(["in-cluster"]));
    // Vault was told the in-cluster address of the API, and a pod token logs in through it.
    let config = env
        .bao
        .request("GET", "auth/kubernetes/prod/eu1/config", None)
        .await;
    assert_eq!(
        config.body["data"]["kubernetes_host"],
        format!("https://127.0.0.1:{port}")
    );
    wait_for(
        "ServiceAccount default/vault-agent-injector",
        TIMEOUT,
        || async { env.service_account("default", "vault-agent-injector").await },
    )
    .await;
    let policies = env
        .login("default", "vault-agent-injector", "default")
        .await
        .expect("login through the in-cluster configuration");
    assert_eq!(policies, ["default", "in-cluster"]);
}

/// Two replicas: one leads, the other stands by. Killing the leader (SIGKILL, no goodbye) lets
/// the standby take over once the Lease expires, and it converges a change made meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_when_the_leader_dies() {
    let env = Env::start().await;
    env.put_roles(&roles("before")).await;
    let election = [
        ("VAK_LEADER_ELECTION", "true"),
        ("VAK_LEADER_LEASE_DURATION", "4s"),
        ("VAK_RESYNC_INTERVAL", "30s"),
    ];
    let a = Process::spawn(&env, "replica-a", &election);
    let b = Process::spawn(&env, "replica-b", &election);
    let leases: Api<Lease> = Api::namespaced(env.client(), NAMESPACE);
    let (holder, _) = wait_for("a leader", TIMEOUT, || async {
        let lease = leases.get_opt("vault-auth-kubernetes").await.ok()??;
        lease.spec?.holder_identity
    })
    .await;
    wait_for("converged by the leader", TIMEOUT, || async {
        env.vault_role("default").await
    })
    .await;
    let (mut leader, standby) = if holder.starts_with("replica-a") {
        (a, b)
    } else {
        (b, a)
    };
    println!("leader: {holder}");
    wait_for("standby ready", TIMEOUT, || async {
        standby.ready().await.then_some(())
    })
    .await;
    let standby_metrics = standby.get("/metrics").await.unwrap().1;
    assert!(
        standby_metrics.contains("vault_auth_kubernetes_leader 0"),
        "{standby_metrics}"
    );
    assert!(
        !standby_metrics.contains("operation=\"write_role\""),
        "the standby must not write:\n{standby_metrics}"
    );

    leader.signal("KILL");
    leader.wait_exit(Duration::from_secs(5)).await;
    let killed = Instant::now();
    env.put_roles(&roles("after")).await;
    wait_for(
        "the standby converges the change",
        Duration::from_secs(60),
        || async {
            let role = env.vault_role("default").await?;
            (role["token_policies"] == json!(["after"])).then_some(())
        },
    )
    .await;
    let takeover = killed.elapsed();
    println!(
        "takeover: the standby applied the change {takeover:?} after the leader was killed (lease 4s)"
    );
    let lease = leases.get("vault-auth-kubernetes").await.unwrap();
    let new_holder = lease.spec.unwrap().holder_identity.unwrap();
    assert_ne!(new_holder, holder);
    assert!(takeover < Duration::from_secs(20), "{takeover:?}");
}

/// Two controllers on the same cluster without leader election: the second writer is reported
/// (Warning Event on the ConfigMap naming the other instance, WARN log, metric) instead of every
/// write silently happening twice, by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_without_leader_election_is_reported() {
    let env = Env::start().await;
    env.put_roles(&roles("p1")).await;
    let first = Process::spawn(&env, "first", &[]);
    wait_for("first ready", TIMEOUT, || async {
        first.ready().await.then_some(())
    })
    .await;
    let second = Process::spawn(&env, "second", &[]);
    let (event, took) = wait_for("a SecondWriter Event", TIMEOUT, || async {
        env.configmap_events()
            .await
            .into_iter()
            .find(|(kind, reason, _)| kind == "Warning" && reason == "SecondWriter")
    })
    .await;
    println!("second writer reported after {took:?}: {}", event.2);
    assert!(
        event.2.contains("(first)") && event.2.contains("(second)"),
        "{event:?}"
    );
    assert!(event.2.contains("--leader-election"), "{event:?}");
    // The sample line itself (the metric's HELP text holds the same words).
    let reporting = |metrics: &str| {
        metrics
            .lines()
            .any(|l| l == "vault_auth_kubernetes_second_writer 1")
    };
    let (_, metrics) = second.get("/metrics").await.unwrap();
    assert!(reporting(&metrics), "{metrics}");
    assert!(second.log().contains("second writer"), "{}", second.log());
    // The second claims the Lease in turn (a controller alone writes it only at start), so the
    // first sees the second too, within two looks at the Lease.
    // Up to a beat for the second's claim, and one for the first's look (20 s each).
    let two_beats = Duration::from_secs(60);
    let (_, took) = wait_for("the first to report the second", two_beats, || async {
        let (_, metrics) = first.get("/metrics").await?;
        reporting(&metrics).then_some(())
    })
    .await;
    println!("the first reported the second after {took:?}");
    assert!(first.log().contains("(second)"), "{}", first.log());
}

/// A blip at start (emulator only: every Kubernetes request fails with 500 for 20 s): the
/// failing lists back off instead of hammering the API (kube's own backoff, reset before every
/// list, retried one watch 41 times in 30 s), and once the API answers again the first sync
/// follows within seconds (the pass backoff is capped at 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_only_a_blip_at_start_backs_off_and_recovers_within_seconds() {
    let env = Env::emulator(Default::default()).await;
    env.put_roles(&roles("p1")).await;
    let faults = env.kube.emulator_handle().faults();
    faults.fail_next("*", "*", 1_000_000, 500);
    let p = Process::spawn(&env, "solo", &[]);
    // The first 10 s: the backoffs grow; the next 10 s are what a lasting outage costs.
    tokio::time::sleep(Duration::from_secs(10)).await;
    env.kube.reset_counters();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let lists = |resource: &str| -> u64 {
        env.kube
            .counters()
            .entries()
            .iter()
            .filter(|(verb, r, ..)| verb == "list" && r == resource)
            .map(|(.., n)| n)
            .sum()
    };
    // Namespaces: one watch lists them (the ServiceAccounts have two, the reviewer's own).
    let per_minute = lists("namespaces") * 6;
    let all: u64 = env
        .kube
        .counters()
        .entries()
        .iter()
        .map(|(.., n)| n)
        .sum::<u64>()
        * 6;
    println!(
        "during the outage: {per_minute} lists of namespaces per minute, {all} requests per minute in all"
    );
    assert!(
        per_minute <= 30,
        "{per_minute} retries per minute of one watch"
    );
    faults.clear();
    let started = Instant::now();
    wait_for("ready after the blip", TIMEOUT, || async {
        p.ready().await.then_some(())
    })
    .await;
    let took = started.elapsed();
    println!("first sync {took:?} after the API answered again");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

/// The first pass does not wait for the namespaces and ServiceAccounts to be listed (emulator
/// only: their list fails a few times, so they come in a second or more after the small
/// watches): the roles are written meanwhile, and the ServiceAccounts are planned and made
/// once the lists are in, by the same rules as any pass (a wanted name that exists unmanaged is
/// left alone, a managed one no role wants is deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_only_the_first_pass_writes_roles_while_service_accounts_are_still_listed() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::{ObjectMeta, PostParams};
    let env = Env::emulator(Default::default()).await;
    env.create_namespace("team-a", &[]).await;
    let account = |ns: &str, name: &str, managed: bool| ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            annotations: managed.then(|| [("vak-managed".to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    for (ns, name, managed) in [("team-a", "app", false), ("default", "stale", true)] {
        Api::<ServiceAccount>::namespaced(env.client(), ns)
            .create(&PostParams::default(), &account(ns, name, managed))
            .await
            .expect("create ServiceAccount");
    }
    env.put_roles(&[(
        "default",
        json!({
            "bound_service_account_names": ["vault-agent-injector", "app"],
            "bound_service_account_namespaces": ["default", "team-a"],
            "token_policies": ["p1"]
        }),
    )])
    .await;
    env.kube
        .emulator_handle()
        .faults()
        .fail_next("list", "namespaces", 3, 500);
    let p = Process::spawn(&env, "solo", &[]);
    wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;

    let log = p.log();
    let role_written = log.find("created role").expect("the role was written");
    let listed = log.find("watch caches ready").expect("the caches listed");
    assert!(
        role_written < listed,
        "the role is written while the namespaces are still listed:\n{log}"
    );
    assert!(env.vault_role("default").await.is_some());
    let managed = |sa: Option<ServiceAccount>| {
        sa.and_then(|sa| sa.metadata.annotations)
            .is_some_and(|a| a.get("vak-managed").map(String::as_str) == Some("true"))
    };
    for (ns, name) in [
        ("default", "vault-agent-injector"),
        ("default", "app"),
        ("team-a", "vault-agent-injector"),
    ] {
        assert!(
            managed(env.service_account(ns, name).await),
            "{ns}/{name} made"
        );
    }
    let theirs = env.service_account("team-a", "app").await;
    assert!(
        theirs.is_some() && !managed(theirs),
        "team-a/app left alone"
    );
    assert!(
        env.service_account("default", "stale").await.is_none(),
        "the managed one no role wants is deleted"
    );
}

/// 5,000 invalid entries beside the README's roles: one Warning Event for all of them (naming a
/// few and the count), each entry logged once, and nothing more on the resyncs that follow
/// (before: 15,002 Events and 30,000 ERROR lines per pass).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_invalid_entries_cost_one_event_and_one_line_each() {
    let env = Env::start().await;
    let mut entries = crate::support::readme_roles();
    let names: Vec<String> = (0..5000).map(|i| format!("bad-{i:04}")).collect();
    for name in &names {
        entries.push((
            name.as_str(),
            json!({"bound_service_account_names": [], "bound_service_account_namespaces": ["x"]}),
        ));
    }
    env.put_roles(&entries).await;
    let p = Process::spawn(&env, "solo", &[("VAK_RESYNC_INTERVAL", "1s")]);
    wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;
    let first_events = env.configmap_events().await;
    let first_lines = p.log().lines().filter(|l| l.contains("bad-")).count();
    tokio::time::sleep(Duration::from_secs(4)).await; // four resyncs
    let events = env.configmap_events().await;
    let lines = p.log().lines().filter(|l| l.contains("bad-")).count();
    println!(
        "5,000 invalid entries: {} Events after the first pass, {} after four resyncs; {first_lines} \
         log lines naming them after the first pass, {lines} after the resyncs",
        first_events.len(),
        events.len()
    );
    let warnings: Vec<_> = events
        .iter()
        .filter(|(kind, ..)| kind == "Warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].2.contains("5000 invalid entries"),
        "{:?}",
        warnings[0]
    );
    assert!(events.len() <= 8, "{events:?}");
    assert_eq!(
        events.len(),
        first_events.len(),
        "Events repeated on resync"
    );
    assert!(first_lines <= 5_000 + 10, "{first_lines} lines");
    assert_eq!(lines, first_lines, "invalid entries logged again on resync");
}

/// The metrics a running controller serves, parsed with an OpenMetrics parser, are exactly
/// those of docs/metrics.md, with the documented types and label names; the managed counts
/// follow Vault (a deleted ConfigMap deletes nothing, so the role is still counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_documented_with_their_types_and_labels() {
    use openmetrics_parser::openmetrics::parse_openmetrics;
    use std::collections::{BTreeMap, BTreeSet};

    let env = Env::start().await;
    env.put_roles(&roles("p1")).await;
    let p = Process::spawn(&env, "solo", &[("VAK_RESYNC_INTERVAL", "1s")]);
    wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;
    let (_, text) = p.get("/metrics").await.unwrap();
    let exposition = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e:?}:\n{text}"));
    let served: BTreeMap<String, (String, BTreeSet<String>)> = exposition
        .families
        .iter()
        .map(|(name, family)| {
            let labels = family
                .get_label_names()
                .iter()
                .filter(|l| *l != "le")
                .cloned()
                .collect();
            let kind = format!("{:?}", family.family_type).to_lowercase();
            (name.clone(), (kind, labels))
        })
        .collect();

    let doc = std::fs::read_to_string(testkit::workspace_root().join("docs/metrics.md")).unwrap();
    let documented: BTreeMap<String, (String, BTreeSet<String>)> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`');
            let kind = cells[2].to_string();
            // OpenMetrics names a counter's family without `_total`.
            let family = match kind.as_str() {
                "counter" => name.trim_end_matches("_total"),
                _ => name,
            };
            let labels = cells[3]
                .split(',')
                .map(|l| l.trim().trim_matches('`').to_string())
                .filter(|l| !l.is_empty())
                .collect();
            (family.to_string(), (kind, labels))
        })
        .collect();
    assert!(documented.len() >= 20, "{documented:?}");
    assert_eq!(
        served.keys().collect::<Vec<_>>(),
        documented.keys().collect::<Vec<_>>(),
        "served vs documented metric names"
    );
    for (name, want) in &documented {
        assert_eq!(
            &served[name], want,
            "{name}: served vs documented (type, labels)"
        );
    }

    env.delete_roles_configmap().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, text) = p.get("/metrics").await.unwrap();
    assert!(
        text.contains("vault_auth_kubernetes_managed_roles 1\n"),
        "the role is still in Vault: {text}"
    );
    assert_eq!(env.vault_role_names().await.len(), 1);
}

/// A steady state at INFO writes nothing: three resyncs later the log has not grown, though
/// the README's roles bind two ServiceAccounts of the user's (noted once, when first seen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_state_logs_nothing_at_info() {
    let env = Env::start().await;
    env.put_roles(&crate::support::readme_roles()).await;
    let p = Process::spawn(&env, "solo", &[("VAK_RESYNC_INTERVAL", "1s")]);
    wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;
    // Let the first passes' reports (notes, Events) settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = p.log();
    assert!(
        before.contains("left untouched"),
        "the user's ServiceAccounts are noted once: {before}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = p.log();
    let new: Vec<&str> = after[before.len()..].lines().collect();
    assert!(new.is_empty(), "a steady state logged:\n{}", new.join("\n"));
    // The settings are structured fields of the startup line (an object in JSON logs).
    let startup: serde_json::Value = after
        .lines()
        .find(|l| l.contains("starting vault-auth-kubernetes"))
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("a JSON startup line");
    // The JSON format flattens an event's fields into the line's object.
    let fields = &startup;
    for field in [
        "vault_host",
        "vault_mount",
        "namespace",
        "admin_port",
        "leader_election",
        "log_format",
        "resync_interval",
    ] {
        assert!(!fields[field].is_null(), "{field} missing: {startup}");
    }
    assert_eq!(fields["vault_secret_id"], "******", "{startup}");
    assert_eq!(fields["log_format"], "json", "{startup}");
}

/// The controller's Events, read as kubectl reads them (core/v1), carry lastTimestamp,
/// firstTimestamp, count and source: `kubectl get events --sort-by=.lastTimestamp` and
/// `kubectl describe` show them (an events.k8s.io Event without its deprecated* fields shows
/// as `<unknown>` and sorts nowhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_have_the_fields_kubectl_sorts_and_describes_by() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    let env = Env::start().await;
    env.put_roles(&roles("p1")).await;
    let p = Process::spawn(&env, "solo", &[]);
    wait_for("ready", TIMEOUT, || async { p.ready().await.then_some(()) }).await;
    let events = wait_for("Events on the ConfigMap", TIMEOUT, || async {
        let list = Api::<CoreEvent>::namespaced(env.client(), NAMESPACE)
            .list(&Default::default())
            .await
            .unwrap();
        let ours: Vec<CoreEvent> = list
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some("vault-auth-roles"))
            .collect();
        (!ours.is_empty()).then_some(ours)
    })
    .await
    .0;
    for event in &events {
        assert!(event.last_timestamp.is_some(), "{event:?}");
        assert!(event.first_timestamp.is_some(), "{event:?}");
        assert_eq!(event.count, Some(1), "{event:?}");
        assert_eq!(
            event.source.as_ref().and_then(|s| s.component.as_deref()),
            Some("vault-auth-kubernetes"),
            "{event:?}"
        );
    }
}
