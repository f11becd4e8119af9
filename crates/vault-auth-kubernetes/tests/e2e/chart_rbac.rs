//! The Helm chart's RBAC, proven against the tier's cluster with RBAC enforced (the real
//! apiserver's authorizer, or the emulator's RBAC evaluation):
//! - sufficient: the chart's manifests (rendered by the real Helm engine, applied with kubectl)
//!   let the controller, running with the token of the chart's ServiceAccount, complete a full
//!   sync that exercises every permission, with no 403;
//! - minimal: removing any one verb of any rule makes some step of the same scenario fail with 403.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use testkit::{AppRoleCredentials, TestVault, workspace_root};
use tokio_util::sync::CancellationToken;

/// Chart scenario with leader election on, so the Lease rules are part of the proof.
const SCENARIO: &str = "leader-election-single";
const NAMESPACE: &str = "vault-auth";
const CHART_SA: &str = "vault-auth-kubernetes";

/// Renders the chart with the real Helm engine (charts/tests/test_chart.py) into `out`.
fn render_chart(out: &Path) -> Vec<(String, Value)> {
    let python = workspace_root().join(".tools/venv/bin/python");
    assert!(
        python.is_file(),
        "{} not found: run scripts/tools.sh (installs helm-python-sdk, pinned, into .tools/)",
        python.display()
    );
    let status = Command::new(&python)
        .arg(workspace_root().join("charts/tests/test_chart.py"))
        .arg("--out")
        .arg(out)
        .arg("--no-mutations")
        .output()
        .expect("run the chart renderer");
    assert!(
        status.status.success(),
        "chart rendering failed:\n{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join(SCENARIO))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let value: Value = serde_saphyr::from_str(&text).unwrap();
            (p.display().to_string(), value)
        })
        .collect()
}

/// The kinds the emulator serves (the Deployment is what runs the controller in a real cluster).
fn applicable(objects: &[(String, Value)]) -> Vec<&(String, Value)> {
    objects
        .iter()
        .filter(|(_, v)| {
            matches!(
                v["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                        | "Role"
                        | "RoleBinding"
                )
            )
        })
        .collect()
}

/// One permission of the chart: (kind of role, rule index, verb).
#[derive(Clone, Debug)]
struct Atom {
    kind: &'static str,
    rule: usize,
    verb: String,
    describe: String,
}

fn atoms(objects: &[(String, Value)]) -> Vec<Atom> {
    let mut out = Vec::new();
    for (_, obj) in objects {
        let kind: &'static str = match obj["kind"].as_str() {
            Some("ClusterRole") => "ClusterRole",
            Some("Role") => "Role",
            _ => continue,
        };
        for (i, rule) in obj["rules"].as_array().unwrap().iter().enumerate() {
            for verb in rule["verbs"].as_array().unwrap() {
                out.push(Atom {
                    kind,
                    rule: i,
                    verb: verb.as_str().unwrap().to_string(),
                    describe: format!(
                        "{kind} rule {i} {} {} names {} verb {}",
                        rule["apiGroups"], rule["resources"], rule["resourceNames"], verb
                    ),
                });
            }
        }
    }
    out
}

/// The objects with one verb removed from one rule (the rule removed when it was its only verb).
fn without(objects: &[(String, Value)], atom: &Atom) -> Vec<(String, Value)> {
    objects
        .iter()
        .map(|(f, obj)| {
            let mut obj = obj.clone();
            if obj["kind"] == atom.kind {
                let rules = obj["rules"].as_array_mut().unwrap();
                let verbs = rules[atom.rule]["verbs"].as_array_mut().unwrap();
                verbs.retain(|v| v.as_str() != Some(&atom.verb));
                if verbs.is_empty() {
                    rules.remove(atom.rule);
                }
            }
            (f.clone(), obj)
        })
        .collect()
}

/// One run of the scenario on the shared cluster, in namespaces of its own so that runs do not
/// see each other: the controller's namespace (`vault-auth` for run 0, which applies the chart's
/// files as rendered, `vak-<i>` after), `team-a-<i>`, `team-b-<i>`; the chart's cluster-scoped
/// objects renamed `<name>-<i>`. The tool's own cluster-scoped objects have fixed names: they are
/// removed before each run, as are the managed ServiceAccounts of the previous one.
struct Run<'a> {
    kube: &'a testkit::TestCluster,
    dir: tempfile::TempDir,
    index: usize,
    namespace: String,
    mount: String,
}

/// The tool's cluster-scoped objects, with fixed names.
const TOOL_BINDINGS: [&str; 2] = [
    "vault-auth-token-reviewer",
    "vault-auth-token-reviewer-namespaces",
];
const TOOL_CLUSTER_ROLE: &str = "vault-auth-token-reviewer-namespaces";

impl<'a> Run<'a> {
    async fn start(kube: &'a testkit::TestCluster, index: usize) -> Run<'a> {
        let namespace = if index == 0 {
            NAMESPACE.to_string()
        } else {
            format!("vak-{index}")
        };
        let run = Run {
            kube,
            dir: tempfile::tempdir().unwrap(),
            index,
            namespace,
            mount: format!("rbac/run-{index}"),
        };
        run.clean_slate().await;
        let client = kube.client();
        testkit::create_namespace(&client, &run.namespace, &[]).await;
        testkit::create_namespace(&client, &run.team("a"), &[]).await;
        testkit::create_namespace(&client, &run.team("b"), &[("team", &run.label())]).await;
        kube.write_kubeconfig(&run.dir.path().join("admin.kubeconfig"))
            .unwrap();
        kube.reset_counters();
        run
    }

    fn team(&self, which: &str) -> String {
        format!("team-{which}-{}", self.index)
    }

    /// The label value the run's selector role matches.
    fn label(&self) -> String {
        format!("payments-{}", self.index)
    }

    /// Removes what a previous run left that this one would see: the tool's cluster-scoped
    /// objects and every managed ServiceAccount (the controller owns those cluster-wide).
    async fn clean_slate(&self) {
        let client = self.kube.client();
        let dp = kube::api::DeleteParams::default();
        let bindings = Api::<ClusterRoleBinding>::all(client.clone());
        for name in TOOL_BINDINGS {
            let _ = bindings.delete(name, &dp).await;
        }
        let _ = Api::<ClusterRole>::all(client.clone())
            .delete(TOOL_CLUSTER_ROLE, &dp)
            .await;
        let all_sa = Api::<ServiceAccount>::all(client.clone());
        for sa in all_sa.list(&Default::default()).await.unwrap().items {
            let managed = sa
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.get("vak-managed").is_some_and(|v| v == "true"));
            if managed {
                let ns = sa.metadata.namespace.clone().unwrap();
                let name = sa.metadata.name.clone().unwrap();
                let _ = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
                    .delete(&name, &dp)
                    .await;
            }
        }
        testkit::wait_for("a clean slate", Duration::from_secs(30), || async {
            let left = all_sa
                .list(&Default::default())
                .await
                .ok()?
                .items
                .iter()
                .filter(|sa| {
                    sa.metadata
                        .annotations
                        .as_ref()
                        .is_some_and(|a| a.contains_key("vak-managed"))
                })
                .count();
            let mut tool_objects = 0;
            for name in TOOL_BINDINGS {
                tool_objects += usize::from(bindings.get_opt(name).await.ok()?.is_some());
            }
            (left == 0 && tool_objects == 0).then_some(())
        })
        .await;
    }

    /// The chart's objects for this run: as rendered for run 0, renamed after.
    fn objects(&self, objects: &[(String, Value)]) -> Vec<(String, Value)> {
        if self.index == 0 {
            return objects.to_vec();
        }
        let suffix = format!("-{}", self.index);
        objects
            .iter()
            .map(|(file, obj)| {
                let mut obj = obj.clone();
                let kind = obj["kind"].as_str().unwrap_or_default().to_string();
                if kind.starts_with("Cluster") {
                    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
                    obj["metadata"]["name"] = json!(format!("{name}{suffix}"));
                } else if obj["metadata"].get("namespace").is_some() {
                    // (`get`, not indexing: indexing a missing key would add it as null.)
                    obj["metadata"]["namespace"] = json!(self.namespace);
                }
                if kind == "ClusterRoleBinding" {
                    let role = obj["roleRef"]["name"].as_str().unwrap().to_string();
                    obj["roleRef"]["name"] = json!(format!("{role}{suffix}"));
                }
                if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
                    for subject in subjects {
                        subject["namespace"] = json!(self.namespace);
                    }
                }
                (file.clone(), obj)
            })
            .collect()
    }

    /// Applies the chart's files with kubectl, as a user installing the rendered chart would.
    fn kubectl_apply(&self, objects: &[&(String, Value)]) {
        let mut cmd = Command::new(testkit::kubectl_bin());
        cmd.arg("--kubeconfig")
            .arg(self.dir.path().join("admin.kubeconfig"))
            .arg("apply");
        for (file, _) in objects {
            cmd.arg("-f").arg(file);
        }
        let out = cmd.output().expect("run kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kubectl apply failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (_, obj) in objects {
            let name = obj["metadata"]["name"].as_str().unwrap();
            assert!(stdout.contains(&format!("{name} created")), "{stdout}");
        }
    }

    /// Applies objects with server-side apply (for the variants with one permission removed).
    async fn apply(&self, objects: &[&(String, Value)]) {
        let client = self.kube.client();
        let pp = PatchParams::apply("chart-rbac-test").force();
        let ns = self.namespace.as_str();
        for (_, obj) in objects {
            let name = obj["metadata"]["name"].as_str().unwrap().to_string();
            match obj["kind"].as_str().unwrap() {
                "ServiceAccount" => {
                    Api::<ServiceAccount>::namespaced(client.clone(), ns)
                        .patch(&name, &pp, &Patch::Apply(obj))
                        .await
                        .unwrap();
                }
                "Role" => {
                    Api::<Role>::namespaced(client.clone(), ns)
                        .patch(&name, &pp, &Patch::Apply(obj))
                        .await
                        .unwrap();
                }
                "RoleBinding" => {
                    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(client.clone(), ns)
                        .patch(&name, &pp, &Patch::Apply(obj))
                        .await
                        .unwrap();
                }
                "ClusterRole" => {
                    Api::<ClusterRole>::all(client.clone())
                        .patch(&name, &pp, &Patch::Apply(obj))
                        .await
                        .unwrap();
                }
                "ClusterRoleBinding" => {
                    Api::<ClusterRoleBinding>::all(client.clone())
                        .patch(&name, &pp, &Patch::Apply(obj))
                        .await
                        .unwrap();
                }
                other => panic!("unexpected kind {other}"),
            }
        }
    }

    /// What exists before the controller runs, chosen so that every permission is needed:
    /// the reviewer binding as the original tool left it (no label: adopted by an update), a
    /// ServiceAccount the original created (annotation only), a wrong-type Secret under the
    /// reviewer token's name made by this tool, and roles that bind by name and by selector.
    async fn prepare(&self) {
        let client = self.kube.client();
        let crb: ClusterRoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "vault-auth-token-reviewer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
            "subjects": [{"kind": "ServiceAccount", "name": "token-reviewer", "namespace": self.namespace}]
        }))
        .unwrap();
        Api::<ClusterRoleBinding>::all(client.clone())
            .create(&PostParams::default(), &crb)
            .await
            .unwrap();
        let legacy: ServiceAccount = serde_json::from_value(json!({
            "metadata": {"name": "legacy", "namespace": self.team("a"), "annotations": {"vak-managed": "true"}}
        }))
        .unwrap();
        Api::<ServiceAccount>::namespaced(client.clone(), &self.team("a"))
            .create(&PostParams::default(), &legacy)
            .await
            .unwrap();
        let stale: Secret = serde_json::from_value(json!({
            "metadata": {"name": "token-reviewer-token", "labels": {"app.kubernetes.io/managed-by": "vault-auth-kubernetes"}},
            "type": "Opaque"
        }))
        .unwrap();
        Api::<Secret>::namespaced(client.clone(), &self.namespace)
            .create(&PostParams::default(), &stale)
            .await
            .unwrap();
        let selector = format!("{{\"matchLabels\":{{\"team\":\"{}\"}}}}", self.label());
        self.put_roles(json!({
            "app": {"bound_service_account_names": ["app", "legacy"], "bound_service_account_namespaces": [self.team("a"), self.team("b")], "token_policies": ["a"]},
            "selector": {"bound_service_account_names": ["billing"], "bound_service_account_namespace_selector": selector, "token_policies": ["b"]}
        }))
        .await;
    }

    async fn put_roles(&self, roles: Value) {
        let data = roles
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        crate::support::put_configmap_data_in(&self.kube.client(), &self.namespace, data).await;
    }

    /// A kubeconfig holding a token of the chart's ServiceAccount, as its pod would.
    async fn chart_kubeconfig(&self) -> PathBuf {
        let token =
            testkit::token_request(&self.kube.client(), &self.namespace, CHART_SA, &[], 3600).await;
        let path = self.dir.path().join("chart.kubeconfig");
        std::fs::write(&path, self.kube.kubeconfig_with_token(&token)).unwrap();
        path
    }

    fn forbidden(&self) -> Vec<(String, String)> {
        self.kube
            .client_counters()
            .entries()
            .into_iter()
            .filter(|(.., code, _)| *code == 403)
            .map(|(verb, resource, ..)| (verb, resource))
            .collect()
    }

    async fn exists<K>(&self, api: Api<K>, name: &str) -> bool
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        api.get_opt(name).await.unwrap().is_some()
    }

    async fn phase_one_done(&self) -> bool {
        let c = self.kube.client();
        let sa = |ns: &str| Api::<ServiceAccount>::namespaced(c.clone(), ns);
        let legacy_roles = sa(&self.team("a"))
            .get_opt("legacy")
            .await
            .unwrap()
            .and_then(|s| s.metadata.annotations)
            .and_then(|a| a.get("vault-auth-kubernetes/roles").cloned());
        let secret_ok = Api::<Secret>::namespaced(c.clone(), &self.namespace)
            .get_opt("token-reviewer-token")
            .await
            .unwrap()
            .is_some_and(|s| {
                s.type_.as_deref() == Some("kubernetes.io/service-account-token")
                    && s.metadata
                        .annotations
                        .unwrap_or_default()
                        .contains_key("vault-auth-kubernetes/vault-config-sha256")
            });
        let crb_fixed = Api::<ClusterRoleBinding>::all(c.clone())
            .get_opt("vault-auth-token-reviewer")
            .await
            .unwrap()
            .is_some_and(|b| {
                b.metadata
                    .labels
                    .unwrap_or_default()
                    .get("app.kubernetes.io/managed-by")
                    == Some(&"vault-auth-kubernetes".to_string())
            });
        let status = Api::<ConfigMap>::namespaced(c.clone(), &self.namespace)
            .get("vault-auth-roles")
            .await
            .unwrap()
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("vault-auth-kubernetes/status");
        legacy_roles.as_deref() == Some("app")
            && self.exists(sa(&self.team("b")), "billing").await
            && self.exists(sa(&self.team("a")), "app").await
            && self
                .exists(
                    Api::<ClusterRoleBinding>::all(c.clone()),
                    "vault-auth-token-reviewer-namespaces",
                )
                .await
            && secret_ok
            && crb_fixed
            && status
    }

    async fn phase_two_done(&self) -> bool {
        let c = self.kube.client();
        let sa = |ns: &str| Api::<ServiceAccount>::namespaced(c.clone(), ns);
        !self.exists(sa(&self.team("b")), "billing").await
            && !self.exists(sa(&self.team("a")), "legacy").await
            && !self
                .exists(Api::<ClusterRole>::all(c.clone()), TOOL_CLUSTER_ROLE)
                .await
            && !self
                .exists(
                    Api::<ClusterRoleBinding>::all(c.clone()),
                    "vault-auth-token-reviewer-namespaces",
                )
                .await
    }
}

/// Outcome of one scenario run.
#[derive(Debug, PartialEq)]
enum Outcome {
    Completed,
    Forbidden(Vec<(String, String)>),
    Stuck(&'static str),
}

/// Runs the scenario with the chart's token: phase one (create, adopt, correct, events, status,
/// lease), phase two (a role and the selector removed: deletions). Stops at the first 403.
async fn scenario(run: &Run<'_>, bao: &TestVault, creds: &AppRoleCredentials) -> Outcome {
    run.prepare().await;
    let kubeconfig = run.chart_kubeconfig().await;
    let argv = [
        "vault-auth-kubernetes",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--vault-host",
        bao.addr(),
        "--vault-mount",
        &run.mount,
        "--vault-role-id",
        &creds.role_id,
        "--vault-secret-id",
        &creds.secret_id,
        "--namespace",
        &run.namespace,
        "--admin-port",
        "0",
        "--resync-interval",
        "1h",
        "--leader-election",
        "--leader-lease-duration",
        "3s",
    ];
    let args = vault_auth_kubernetes::cli::parse_controller_args(argv).unwrap();
    let settings = vault_auth_kubernetes::settings::Settings::from_controller(&args).unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(vault_auth_kubernetes::app::run_controller(
        settings,
        stop.clone(),
    ));
    let outcome = observe(run, &task).await;
    // Whatever the outcome, the controller is gone before the next run starts: a leftover one
    // would re-create what the next run's clean slate removed.
    stop.cancel();
    let _ = task.await;
    // Requests answered just before the stop are counted a moment later on the real apiserver.
    tokio::time::sleep(Duration::from_millis(200)).await;
    match (outcome, run.forbidden()) {
        (_, f) if !f.is_empty() => Outcome::Forbidden(f),
        (outcome, _) => outcome,
    }
}

/// Drives the two phases and watches for 403s while the controller runs.
async fn observe(
    run: &Run<'_>,
    task: &tokio::task::JoinHandle<vault_auth_kubernetes::Result<()>>,
) -> Outcome {
    let deadline = Duration::from_secs(20);
    for (phase, what) in [(1, "phase one"), (2, "phase two")] {
        if phase == 2 {
            run.put_roles(json!({
                "app": {"bound_service_account_names": ["app"], "bound_service_account_namespaces": [run.team("a")], "token_policies": ["a"]}
            }))
            .await;
        }
        let start = Instant::now();
        loop {
            let forbidden = run.forbidden();
            if !forbidden.is_empty() {
                return Outcome::Forbidden(forbidden);
            }
            let done = if phase == 1 {
                run.phase_one_done().await
            } else {
                run.phase_two_done().await
            };
            if done {
                break;
            }
            if start.elapsed() > deadline || task.is_finished() {
                // A request is counted once its answer is written (the real apiserver's audit
                // event a moment later): a controller that stopped on that answer may be
                // quicker than the counter.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let forbidden = run.forbidden();
                if !forbidden.is_empty() {
                    return Outcome::Forbidden(forbidden);
                }
                return Outcome::Stuck(what);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    Outcome::Completed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rbac_is_sufficient_and_minimal() {
    let rendered = tempfile::tempdir().unwrap();
    let objects = render_chart(rendered.path());
    let kube = testkit::TestCluster::start_with_rbac().await;
    let bao = TestVault::start().await;
    let creds = crate::support::setup_approle(&bao, None).await;

    // Sufficient: kubectl apply of the rendered chart, then the whole scenario without a 403.
    let run = Run::start(&kube, 0).await;
    run.kubectl_apply(&applicable(&objects));
    let started = Instant::now();
    let outcome = scenario(&run, &bao, &creds).await;
    assert_eq!(outcome, Outcome::Completed, "with the chart's RBAC");
    println!(
        "chart RBAC sufficient: full scenario in {:?}, no 403",
        started.elapsed()
    );
    drop(run);

    // Minimal: each verb of each rule is needed.
    let atoms = atoms(&objects);
    let mut unneeded = Vec::new();
    for (i, atom) in atoms.iter().enumerate() {
        let started = Instant::now();
        let run = Run::start(&kube, i + 1).await;
        let variant = run.objects(&without(&objects, atom));
        run.apply(&applicable(&variant)).await;
        let outcome = scenario(&run, &bao, &creds).await;
        match &outcome {
            Outcome::Forbidden(f) => println!(
                "without {}: 403 on {:?} ({:?})",
                atom.describe,
                f,
                started.elapsed()
            ),
            other => {
                println!("without {}: {other:?}", atom.describe);
                unneeded.push(atom.describe.clone());
            }
        }
    }
    println!("{} permissions checked", atoms.len());
    assert!(
        unneeded.is_empty(),
        "permissions the scenario does not need: {unneeded:#?}"
    );
}
