//! The emulator's OpenAPI documents against a real kube-apiserver's, and kubectl's commands
//! that depend on them (`create -f`, `apply -f`, `explain`, `get -o yaml`, `describe`,
//! `events`) run against both servers with their outputs compared.
//!
//! The documents under `openapi/` are the real apiserver's own, cut to the served kinds
//! (`kube_emulator::openapi_snapshot`). To regenerate them after the pinned Kubernetes changes:
//!
//! ```sh
//! cargo test -p kube-emulator --test openapi -- --ignored regenerate
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube_emulator::openapi_snapshot as snapshot;
use serde_json::Value;
use testkit::TestCluster;

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi")
}

fn http(cluster: &TestCluster) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(cluster.ca_pem().as_bytes()).expect("CA");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

async fn fetch(cluster: &TestCluster, path: &str, accept: &str) -> Vec<u8> {
    let response = http(cluster)
        .get(format!("{}{path}", cluster.url()))
        .bearer_auth(cluster.admin_token())
        .header("Accept", accept)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.bytes().await.expect("body").to_vec()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

/// What the snapshot would be if it were taken from `cluster` now.
async fn capture(cluster: &TestCluster) -> BTreeMap<String, Vec<u8>> {
    let v2 = json(&fetch(cluster, "/openapi/v2", "application/json").await);
    let v2_protobuf = fetch(
        cluster,
        "/openapi/v2",
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    )
    .await;
    let index = json(&fetch(cluster, "/openapi/v3", "application/json").await);
    let mut v3 = BTreeMap::new();
    for (name, entry) in index["paths"].as_object().expect("an index of documents") {
        if !snapshot::serves_v3_document(name) {
            continue;
        }
        let url = entry["serverRelativeURL"].as_str().expect("a URL");
        v3.insert(
            name.clone(),
            json(&fetch(cluster, url, "application/json").await),
        );
    }
    snapshot::snapshot_files(&v2, &v2_protobuf, &v3).expect("cut the documents")
}

fn committed() -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("openapi/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let name = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(name, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&committed_dir(), &committed_dir(), &mut out);
    out
}

#[tokio::test]
#[ignore = "rewrites openapi/ from a real apiserver; run after the pinned Kubernetes changes"]
async fn regenerate_openapi_snapshot() {
    let real = TestCluster::real().await;
    let files = capture(&real).await;
    let dir = committed_dir();
    let _ = std::fs::remove_dir_all(&dir);
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    println!("wrote {} files to {}", files.len(), dir.display());
}

/// Runs kubectl against one cluster, with its own cache (discovery and OpenAPI documents are
/// cached per server URL, but two clusters on one port in a row must not share them).
struct Kubectl {
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
    work: PathBuf,
}

impl Kubectl {
    fn new(cluster: &TestCluster, work: &Path) -> Kubectl {
        Kubectl {
            kubeconfig: cluster.kubeconfig_path().to_path_buf(),
            cache: tempfile::tempdir().expect("cache dir"),
            work: work.to_path_buf(),
        }
    }

    /// (exit success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(testkit::kubectl_bin())
            .args(args)
            .arg(format!("--cache-dir={}", self.cache.path().display()))
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(&self.work)
            .output()
            .expect("run kubectl");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// What differs between two clusters' outputs by construction: uids, resourceVersions,
/// creation times and the ages printed from them, token values.
fn normalise(text: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<uid>",
        ),
        (r#"resourceVersion: "\d+""#, "resourceVersion: <rv>"),
        (r"Resource Version:(\s+)\d+", "Resource Version:$1<rv>"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>"),
        (r"(?m)\b\d+(\.\d+)?(s|m|h)\b", "<age>"),
        (r"\b\d+m\d+s\b", "<age>"),
        (
            r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}",
            "<jwt>",
        ),
        // describe's date column: "Wed, 02 Dec 2026 00:11:12 +0000"
        (
            r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}",
            "<date>",
        ),
    ];
    let mut out = text.to_string();
    for (pattern, replacement) in rules {
        out = regex::Regex::new(pattern)
            .expect("pattern")
            .replace_all(&out, *replacement)
            .into_owned();
    }
    out
}

const MANIFEST: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: explained
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: explained
  labels:
    app: demo
data:
  mode: fast
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: reviewer
  namespace: explained
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reviewer-view
  namespace: explained
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: ServiceAccount
  name: reviewer
  namespace: explained
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: leader
  namespace: explained
spec:
  holderIdentity: pod-a
  leaseDurationSeconds: 15
---
apiVersion: v1
kind: Event
metadata:
  name: settings.1
  namespace: explained
involvedObject:
  apiVersion: v1
  kind: ConfigMap
  name: settings
  namespace: explained
reason: Synced
message: all good
type: Normal
source:
  component: demo
";

const APPLIED: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: explained
  labels:
    app: demo
data:
  mode: slow
";

/// Validated by kubectl itself against `/openapi/v2` (TokenReview has no PATCH, so kubectl
/// cannot ask the server to validate fields).
const TOKEN_REVIEW: &str = "apiVersion: authentication.k8s.io/v1
kind: TokenReview
spec:
  token: not-a-token
";

const TOKEN_REVIEW_UNKNOWN_FIELD: &str = "apiVersion: authentication.k8s.io/v1
kind: TokenReview
spec:
  token: not-a-token
  extra: true
";

const CONFIGMAP_UNKNOWN_FIELD: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: strict
  namespace: explained
extra: true
";

/// The kubectl commands compared, in order: (whether it must succeed, arguments).
const COMMANDS: &[(bool, &[&str])] = &[
    (true, &["create", "-f", "manifest.yaml"]),
    (true, &["create", "-f", "tokenreview.yaml", "-o", "yaml"]),
    (false, &["create", "-f", "tokenreview-unknown-field.yaml"]),
    (false, &["create", "-f", "configmap-unknown-field.yaml"]),
    (true, &["apply", "-f", "applied.yaml"]),
    (true, &["apply", "-f", "applied.yaml"]),
    (
        true,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "applied.yaml",
        ],
    ),
    (true, &["explain", "configmap"]),
    (true, &["explain", "serviceaccount.secrets"]),
    (true, &["explain", "tokenreview.status.user", "--recursive"]),
    (true, &["explain", "leases.spec"]),
    (true, &["explain", "clusterrolebinding.subjects"]),
    (
        true,
        &["explain", "events", "--api-version=events.k8s.io/v1"],
    ),
    (
        true,
        &[
            "explain",
            "subjectaccessreview",
            "--output=plaintext-openapiv2",
        ],
    ),
    (
        true,
        &[
            "get",
            "configmap",
            "settings",
            "-n",
            "explained",
            "-o",
            "yaml",
        ],
    ),
    (
        true,
        &["get", "lease", "leader", "-n", "explained", "-o", "yaml"],
    ),
    (
        true,
        &[
            "get",
            "rolebinding",
            "reviewer-view",
            "-n",
            "explained",
            "-o",
            "yaml",
        ],
    ),
    (
        true,
        &["describe", "configmap", "settings", "-n", "explained"],
    ),
    (
        true,
        &["describe", "serviceaccount", "reviewer", "-n", "explained"],
    ),
    (
        true,
        &[
            "describe",
            "rolebinding",
            "reviewer-view",
            "-n",
            "explained",
        ],
    ),
    (true, &["describe", "clusterrole", "system:auth-delegator"]),
    (true, &["describe", "lease", "leader", "-n", "explained"]),
    (true, &["events", "-n", "explained"]),
    (
        true,
        &[
            "events",
            "-n",
            "explained",
            "--for",
            "configmap/settings",
            "-o",
            "yaml",
        ],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_and_kubectl_match_a_real_apiserver() {
    let (real, emulator) = tokio::join!(
        TestCluster::real(),
        TestCluster::emulator(kube_emulator::Options {
            rbac: true,
            ..Default::default()
        }),
    );

    // The committed documents are what the real apiserver serves, cut to the served kinds.
    let now = capture(&real).await;
    let on_disk = committed();
    assert_eq!(
        now.keys().collect::<Vec<_>>(),
        on_disk.keys().collect::<Vec<_>>(),
        "the documents a real apiserver has for the served kinds changed: regenerate (see the \
         top of tests/openapi.rs)"
    );
    for (name, bytes) in &now {
        assert!(
            on_disk[name] == *bytes,
            "openapi/{name} no longer matches the real apiserver's: regenerate (see the top of \
             tests/openapi.rs)"
        );
    }
    let compiled: Vec<String> = snapshot::committed_v3_documents()
        .into_iter()
        .map(|n| format!("v3/{n}.json"))
        .collect();
    let v3_files: Vec<&String> = on_disk.keys().filter(|k| k.starts_with("v3/")).collect();
    assert_eq!(
        v3_files.into_iter().collect::<Vec<_>>(),
        compiled.iter().collect::<Vec<_>>(),
        "the v3 documents compiled into the emulator (src/openapi/mod.rs) are the committed ones"
    );

    // The emulator serves them as the apiserver does.
    for (path, accept) in [
        ("/openapi/v2", "application/json"),
        (
            "/openapi/v2",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        ),
    ] {
        let e = fetch(&emulator, path, accept).await;
        let name = if accept.contains("protobuf") {
            "v2.pb"
        } else {
            "v2.json"
        };
        if name == "v2.pb" {
            assert_eq!(e, on_disk[name], "{path} as {accept}");
        } else {
            assert_eq!(json(&e), json(&on_disk[name]), "{path} as {accept}");
        }
    }
    let index = json(&fetch(&emulator, "/openapi/v3", "application/json").await);
    for name in snapshot::committed_v3_documents() {
        let url = index["paths"][name]["serverRelativeURL"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in the emulator's /openapi/v3"));
        let served = json(&fetch(&emulator, url, "application/json").await);
        assert_eq!(served, json(&on_disk[&format!("v3/{name}.json")]), "{url}");
    }

    // kubectl does the same on both.
    let work = tempfile::tempdir().expect("work dir");
    for (file, text) in [
        ("manifest.yaml", MANIFEST),
        ("applied.yaml", APPLIED),
        ("tokenreview.yaml", TOKEN_REVIEW),
        ("tokenreview-unknown-field.yaml", TOKEN_REVIEW_UNKNOWN_FIELD),
        ("configmap-unknown-field.yaml", CONFIGMAP_UNKNOWN_FIELD),
    ] {
        std::fs::write(work.path().join(file), text).expect("write manifest");
    }
    let on_real = Kubectl::new(&real, work.path());
    let on_emulator = Kubectl::new(&emulator, work.path());
    let mut differences = Vec::new();
    for (must_succeed, args) in COMMANDS {
        let (e_ok, e_out, e_err) = on_emulator.run(args);
        let (r_ok, r_out, r_err) = on_real.run(args);
        let line = args.join(" ");
        assert_eq!(r_ok, *must_succeed, "real: kubectl {line}\n{r_out}{r_err}");
        assert_eq!(
            e_ok, *must_succeed,
            "emulator: kubectl {line}\n{e_out}{e_err}"
        );
        let (e_text, r_text) = if *must_succeed {
            (normalise(&e_out), normalise(&r_out))
        } else {
            (normalise(&e_err), normalise(&r_err))
        };
        if e_text != r_text {
            differences.push(format!(
                "kubectl {line}\n--- emulator\n{e_text}\n--- real\n{r_text}"
            ));
        }
    }
    println!(
        "kubectl: {} commands, {} with the same output on both",
        COMMANDS.len(),
        COMMANDS.len() - differences.len()
    );
    assert!(
        differences.is_empty(),
        "kubectl answers differently:\n{}",
        differences.join("\n\n")
    );
}
