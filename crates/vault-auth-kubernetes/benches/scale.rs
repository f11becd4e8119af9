//! Controller benchmark: convergence time, edit latency, steady-state requests and peak memory of
//! the real binary against OpenBao and the in-repo Kubernetes emulator, at cluster scale.
//!
//!     cargo bench -p vault-auth-kubernetes --bench scale            # 1000 namespaces, 200 roles
//!     cargo bench -p vault-auth-kubernetes --bench scale -- 200 50  # <namespaces> <roles>
//!
//! Each role binds one ServiceAccount name in five namespaces, plus one role that binds `app` in
//! every namespace (`*`), so the controller manages 5 x roles + namespaces ServiceAccounts.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use testkit::{README_POLICY, TestVault};

const BIN: &str = env!("CARGO_BIN_EXE_vault-auth-kubernetes");
const MOUNT: &str = "bench/cluster";

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let namespaces = args.first().copied().unwrap_or(1000);
    let roles = args.get(1).copied().unwrap_or(200);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(namespaces, roles));
}

fn roles_data(
    namespaces: usize,
    roles: usize,
    policy: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut data = std::collections::BTreeMap::new();
    for r in 0..roles {
        let ns: Vec<String> = (0..5)
            .map(|k| format!("ns-{}", (r * 5 + k) % namespaces))
            .collect();
        let body = json!({
            "bound_service_account_names": [format!("sa-{r}")],
            "bound_service_account_namespaces": ns,
            "token_policies": [policy],
            "token_ttl": "1h"
        });
        data.insert(format!("role-{r}"), body.to_string());
    }
    let everywhere = json!({
        "bound_service_account_names": ["app"],
        "bound_service_account_namespaces": ["*"],
        "token_policies": [policy]
    });
    data.insert("everywhere".to_string(), everywhere.to_string());
    data
}

async fn vault_role_count(bao: &TestVault) -> usize {
    let r = bao
        .request("LIST", &format!("auth/kubernetes/{MOUNT}/role"), None)
        .await;
    r.body["data"]["keys"].as_array().map_or(0, |k| k.len())
}

async fn managed_sa_count(client: &kube::Client) -> usize {
    Api::<ServiceAccount>::all(client.clone())
        .list_metadata(
            &ListParams::default().labels("app.kubernetes.io/managed-by=vault-auth-kubernetes"),
        )
        .await
        .map_or(0, |l| l.items.len())
}

/// A memory figure of /proc/<pid>/status in MiB: `VmHWM` (peak) or `VmRSS` (now).
fn rss_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn run(namespaces: usize, roles: usize) {
    let kube = kube_emulator::start(kube_emulator::Options::default())
        .await
        .expect("emulator");
    let bao = TestVault::start().await;
    bao.write_policy(None, "vak", README_POLICY).await;
    let creds = bao
        .approle(None, "vak", json!({"token_policies": ["vak"]}))
        .await;
    let client = kube.client();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).unwrap();

    let ns_api: Api<Namespace> = Api::all(client.clone());
    for name in
        std::iter::once("vault-auth".to_string()).chain((0..namespaces).map(|i| format!("ns-{i}")))
    {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name),
                ..Default::default()
            },
            ..Default::default()
        };
        ns_api.create(&PostParams::default(), &ns).await.unwrap();
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "vault-auth");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("vault-auth-roles".into()),
            ..Default::default()
        },
        data: Some(roles_data(namespaces, roles, "p0")),
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let want_sas = roles * 5 + namespaces;
    println!(
        "scale: {namespaces} namespaces, {} roles, {want_sas} managed ServiceAccounts",
        roles + 1
    );

    let log = dir.path().join("controller.log");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .env("KUBECONFIG", &kubeconfig)
        .env("VAK_VAULT_HOST", bao.addr())
        .env("VAK_VAULT_MOUNT", MOUNT)
        .env("VAK_VAULT_ROLE_ID", &creds.role_id)
        .env("VAK_VAULT_SECRET_ID", &creds.secret_id)
        .env("VAK_NAMESPACE", "vault-auth")
        .env("VAK_ADMIN_PORT", "0")
        .env("VAK_RESYNC_INTERVAL", "5s")
        .env(
            "VAK_LOG_LEVEL",
            std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn controller");
    let pid = child.id();

    loop {
        if vault_role_count(&bao).await == roles + 1 && managed_sa_count(&client).await >= want_sas
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no convergence; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let converge = started.elapsed();
    println!(
        "initial convergence (process start -> all roles and ServiceAccounts): {converge:.2?}"
    );

    // Edit latency: change one role's policies, time until Vault has it.
    let mut latencies = Vec::new();
    for i in 0..20 {
        let role = format!("role-{}", i % roles);
        let body = json!({
            "bound_service_account_names": [format!("sa-{}", i % roles)],
            "bound_service_account_namespaces": (0..5).map(|k| format!("ns-{}", ((i % roles) * 5 + k) % namespaces)).collect::<Vec<_>>(),
            "token_policies": [format!("edit-{i}")],
            "token_ttl": "1h"
        });
        let patch = json!({"data": {role.clone(): body.to_string()}});
        let t = Instant::now();
        cms.patch(
            "vault-auth-roles",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
        loop {
            let r = bao
                .request("GET", &format!("auth/kubernetes/{MOUNT}/role/{role}"), None)
                .await;
            if r.body["data"]["token_policies"] == json!([format!("edit-{i}")]) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "edit -> Vault latency over {} edits: p50 {:.1?}, p95 {:.1?}, max {:.1?}",
        latencies.len(),
        p(0.5),
        p(0.95),
        latencies.last().unwrap()
    );

    // Steady state: two resyncs, count requests the emulator sees.
    tokio::time::sleep(Duration::from_secs(2)).await;
    kube.reset_counters();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let non_watch: u64 = kube
        .counters()
        .entries()
        .iter()
        .filter(|(verb, ..)| verb != "watch")
        .map(|(.., n)| n)
        .sum();
    println!(
        "steady state over 11 s (two resyncs): {non_watch} Kubernetes requests besides watches"
    );
    println!(
        "memory of the controller: peak (VmHWM) {:.1} MiB, now (VmRSS) {:.1} MiB",
        rss_mib(pid, "VmHWM:"),
        rss_mib(pid, "VmRSS:")
    );
    let _ = child.kill();
    let _ = child.wait();
    // BENCH_LOG=<filter> keeps the controller's log for a closer look.
    if std::env::var_os("BENCH_LOG").is_some() {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| testkit::workspace_root().join("target"), Into::into);
        let kept = target.join("scale-controller.log");
        std::fs::copy(&log, &kept).unwrap();
        println!("controller log: {}", kept.display());
    }
}
