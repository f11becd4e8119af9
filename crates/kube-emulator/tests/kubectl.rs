//! kubectl (a real client nobody here wrote) against the `kube-emulator` binary: the binary
//! starts, writes its kubeconfig and prints where it listens; a script of kubectl steps runs
//! against that kubeconfig, each step's output checked; SIGTERM stops the binary cleanly.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

const MANIFEST: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
data:
  mode: fast
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: reviewer
  namespace: demo
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: reviewer-auth-delegator
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:auth-delegator
subjects:
- kind: ServiceAccount
  name: reviewer
  namespace: demo
";

/// The running binary, killed if a step panics.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_binary(kubeconfig: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["--port", "0", "--kubeconfig"])
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the kube-emulator binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a ready line within 30s");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://127.0.0.1:"))
        .unwrap_or_else(|| panic!("the ready line names the URL: {line:?}"))
        .to_string();
    assert!(line.contains(&kubeconfig.display().to_string()), "{line}");
    Server { child, url }
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
}

impl Kubectl {
    /// Runs one kubectl command (60 s at most) and returns its output.
    fn run(&self, args: &[&str]) -> Output {
        let mut child = Command::new(&self.bin)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            // A private HOME keeps kubectl's discovery cache out of the user's.
            .env("HOME", &self.home)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("waiting for kubectl").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("kubectl {args:?} did not finish in 60s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs a step that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {stderr}\n{stdout}"
        );
        assert!(
            !stderr.contains("Warning"),
            "kubectl {args:?} warned: {stderr}"
        );
        stdout
    }

    /// Runs a step that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "kubectl {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// The row of a `kubectl get` table whose first column is `name`, split into columns.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

fn sigterm(server: &mut Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(exit) = server.child.try_wait().expect("waiting for the binary") {
            assert!(
                exit.success(),
                "the binary exits cleanly on SIGTERM: {exit:?}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the binary did not stop within 10s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kubectl_script_against_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut server = start_binary(&kubeconfig);
    let written = std::fs::read_to_string(&kubeconfig)
        .expect("the kubeconfig is written before the ready line");
    assert!(written.contains(&format!("server: {}", server.url)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the kubeconfig holds the admin token");
    }
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let k = Kubectl {
        bin: testkit::kubectl_bin(),
        kubeconfig,
        home,
    };

    // version
    let version: Value = serde_json::from_str(&k.ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(version["serverVersion"]["major"], "1");
    assert!(
        version["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.")
    );
    assert!(k.ok(&["version"]).contains("Server Version: v1."));

    // api-resources
    let resources = k.ok(&["api-resources"]);
    assert_eq!(
        row(&resources, "serviceaccounts"),
        ["serviceaccounts", "sa", "v1", "true", "ServiceAccount"]
    );
    assert_eq!(
        row(&resources, "namespaces"),
        ["namespaces", "ns", "v1", "false", "Namespace"]
    );
    assert_eq!(
        row(&resources, "clusterrolebindings"),
        [
            "clusterrolebindings",
            "rbac.authorization.k8s.io/v1",
            "false",
            "ClusterRoleBinding"
        ]
    );
    assert_eq!(
        row(&resources, "leases"),
        ["leases", "coordination.k8s.io/v1", "true", "Lease"]
    );
    assert_eq!(
        row(&resources, "tokenreviews"),
        [
            "tokenreviews",
            "authentication.k8s.io/v1",
            "false",
            "TokenReview"
        ]
    );

    // apply -f of a multi-document YAML, then again with one change
    let manifest = k.home.join("demo.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let manifest = manifest.to_str().unwrap();
    assert_eq!(
        k.ok(&["apply", "-f", manifest]).lines().collect::<Vec<_>>(),
        [
            "namespace/demo created",
            "configmap/settings created",
            "serviceaccount/reviewer created",
            "clusterrolebinding.rbac.authorization.k8s.io/reviewer-auth-delegator created",
        ]
    );
    std::fs::write(manifest, MANIFEST.replace("mode: fast", "mode: faster")).unwrap();
    assert_eq!(
        k.ok(&["apply", "-f", manifest]).lines().collect::<Vec<_>>(),
        [
            "namespace/demo unchanged",
            "configmap/settings configured",
            "serviceaccount/reviewer unchanged",
            "clusterrolebinding.rbac.authorization.k8s.io/reviewer-auth-delegator unchanged",
        ]
    );

    // get: human tables and JSON
    let cms = k.ok(&["get", "configmaps", "-n", "demo"]);
    assert_eq!(header(&cms), ["NAME", "DATA", "AGE"]);
    assert_eq!(row(&cms, "settings")[1], "1");
    assert_eq!(row(&cms, "kube-root-ca.crt")[1], "1");
    let sas = k.ok(&["get", "serviceaccounts", "-n", "demo"]);
    // kube-apiserver 1.37 prints no SECRETS column.
    assert_eq!(header(&sas), ["NAME", "AGE"]);
    row(&sas, "reviewer");
    row(&sas, "default");
    let ns = k.ok(&["get", "namespace", "demo"]);
    assert_eq!(header(&ns), ["NAME", "STATUS", "AGE"]);
    assert_eq!(row(&ns, "demo")[1], "Active");
    let crb = k.ok(&[
        "get",
        "clusterrolebinding",
        "reviewer-auth-delegator",
        "-o",
        "wide",
    ]);
    assert_eq!(
        header(&crb),
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    );
    let cols = row(&crb, "reviewer-auth-delegator");
    assert_eq!(
        (cols[1], cols[3]),
        ("ClusterRole/system:auth-delegator", "demo/reviewer")
    );
    let cm: Value =
        serde_json::from_str(&k.ok(&["get", "configmap", "settings", "-n", "demo", "-o", "json"]))
            .unwrap();
    assert_eq!(
        (cm["kind"].as_str(), cm["data"]["mode"].as_str()),
        (Some("ConfigMap"), Some("faster"))
    );
    assert!(
        cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    let list: Value =
        serde_json::from_str(&k.ok(&["get", "sa", "-n", "demo", "-o", "json"])).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // label
    assert_eq!(
        k.ok(&[
            "label",
            "configmap",
            "settings",
            "-n",
            "demo",
            "tier=backend"
        ])
        .trim(),
        "configmap/settings labeled"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "configmaps",
            "-n",
            "demo",
            "-l",
            "tier=backend",
            "-o",
            "name"
        ])
        .trim(),
        "configmap/settings"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "configmaps",
            "-n",
            "demo",
            "-l",
            "tier!=backend",
            "-o",
            "name"
        ])
        .trim(),
        "configmap/kube-root-ca.crt"
    );

    // patch: merge and JSON
    let merge = k.ok(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"extra":"1"}}"#,
    ]);
    assert_eq!(merge.trim(), "configmap/settings patched");
    let json = k.ok(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "demo",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/data/mode","value":"slow"}]"#,
    ]);
    assert_eq!(json.trim(), "configmap/settings patched");
    assert_eq!(
        k.ok(&[
            "get",
            "configmap",
            "settings",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.mode},{.data.extra}"
        ]),
        "slow,1"
    );
    let refused = k.fails(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "demo",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/data/mode","value":"fast"}]"#,
    ]);
    // A failed JSON patch test is a 422 Invalid, which kubectl words this way.
    assert!(refused.contains("The request is invalid"), "{refused}");

    // create token
    let token = k.ok(&[
        "create",
        "token",
        "reviewer",
        "-n",
        "demo",
        "--audience",
        "vault",
        "--duration",
        "10m",
    ]);
    let claims = jwt_claims(token.trim());
    assert_eq!(claims["sub"], "system:serviceaccount:demo:reviewer");
    assert_eq!(claims["aud"], serde_json::json!(["vault"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(
        k.fails(&["create", "token", "nobody", "-n", "demo"])
            .contains("serviceaccounts \"nobody\" not found")
    );

    // wait --for=delete, while another kubectl deletes
    let waiter = Command::new(&k.bin)
        .args([
            "wait",
            "--for=delete",
            "configmap/settings",
            "-n",
            "demo",
            "--timeout=30s",
        ])
        .env("KUBECONFIG", &k.kubeconfig)
        .env("HOME", &k.home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        k.ok(&["delete", "configmap", "settings", "-n", "demo"])
            .trim(),
        // kubectl 1.37 names the namespace it deleted from.
        "configmap \"settings\" deleted from demo namespace"
    );
    let waited = waiter.wait_with_output().unwrap();
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&waited.stdout).trim(),
        "configmap/settings condition met"
    );

    // delete namespace: it and its contents are gone; cluster-scoped objects stay
    assert_eq!(
        k.ok(&["delete", "namespace", "demo"]).trim(),
        "namespace \"demo\" deleted"
    );
    assert!(
        k.fails(&["get", "namespace", "demo"])
            .contains("namespaces \"demo\" not found")
    );
    let leftovers = k.run(&["get", "serviceaccounts,configmaps,secrets", "-n", "demo"]);
    assert!(
        String::from_utf8_lossy(&leftovers.stderr)
            .contains("No resources found in demo namespace.")
    );
    assert!(String::from_utf8_lossy(&leftovers.stdout).trim().is_empty());
    k.ok(&["get", "clusterrolebinding", "reviewer-auth-delegator"]);

    sigterm(&mut server);
}
