//! A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager,
//! built from their Go modules by `scripts/tools.sh` into `.tools/bin`.
//!
//! What it sets up is what a cluster the controller runs in has, and nothing more:
//! - TLS everywhere the clients look (the apiserver's serving certificate is signed by a fresh CA
//!   that the kubeconfig carries);
//! - ServiceAccount tokens: an issuer, a signing key, TokenRequest and TokenReview;
//! - `--authorization-mode=Node,RBAC` with the bootstrap roles (`system:auth-delegator` among them);
//! - the controllers the tool relies on, in kube-controller-manager: the ServiceAccount and token
//!   controllers (default ServiceAccounts, token Secrets filled in), the namespace controller
//!   (deletion), the garbage collector and the root CA publisher;
//! - an audit log of every request, so tests can count the requests of one identity the way the
//!   emulator's counters do.
//!
//! Static bearer tokens (`--token-auth-file`) identify the admin (group `system:masters`) and the
//! controller manager (user `system:kube-controller-manager`, bound by the bootstrap RBAC), so a
//! test can tell its own requests from the control plane's.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::tools::tool_bin;

/// Issuer (and audience) of the cluster's ServiceAccount tokens, as kubeadm sets it.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The admin's user name in the static token file (and in the audit log).
pub const ADMIN_USER: &str = "kubernetes-admin";
/// The controllers of kube-controller-manager the tool relies on (the others manage Pods,
/// Nodes and volumes, which these clusters have none of).
const CONTROLLERS: &[&str] = &[
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
];
/// How long the control plane may take to become ready on a busy 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running control plane; stopped (and its data removed) on drop or [`RealCluster::stop`].
pub struct RealCluster {
    dir: PathBuf,
    keep_dir: bool,
    processes: Vec<(&'static str, Child)>,
    url: String,
    ca_pem: String,
    admin_token: String,
    kubeconfig: PathBuf,
    audit_log: PathBuf,
    /// Audit log offset below which requests are not counted (see [`RealCluster::reset_counters`]).
    audit_mark: std::sync::Mutex<u64>,
}

impl std::fmt::Debug for RealCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealCluster")
            .field("url", &self.url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Why the control plane did not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

fn fail(message: impl Into<String>) -> StartError {
    StartError(message.into())
}

impl RealCluster {
    /// Starts etcd, kube-apiserver and kube-controller-manager with their data in `dir` (created
    /// if needed; what it wrote is removed on drop unless `keep_dir`), waits until the apiserver's `/readyz` is ok and the
    /// controller manager has made the `default` ServiceAccount, then writes `dir/kubeconfig`.
    pub async fn start_in(dir: &Path, keep_dir: bool) -> Result<RealCluster, StartError> {
        // reqwest is built without a bundled crypto provider; ring is the workspace's one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let etcd_bin = tool_bin("etcd");
        let apiserver_bin = tool_bin("kube-apiserver");
        let kcm_bin = tool_bin("kube-controller-manager");
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let pki = kube_emulator::pki::Pki::generate().map_err(|e| fail(e.to_string()))?;
        let (sa_key, sa_pub) =
            kube_emulator::pki::signing_key_pem().map_err(|e| fail(e.to_string()))?;
        let admin_token = random_hex();
        let kcm_token = random_hex();

        let write = |name: &str, contents: &str| -> Result<PathBuf, StartError> {
            let path = dir.join(name);
            kube_emulator::kubeconfig::write(&path, contents)
                .map_err(|e| fail(format!("write {}: {e}", path.display())))?;
            Ok(path)
        };
        let ca_file = write("ca.crt", &pki.ca_pem)?;
        let cert_file = write("apiserver.crt", &pki.server_cert_pem())?;
        let key_file = write("apiserver.key", &pki.server_key_pem())?;
        let sa_key_file = write("sa.key", &sa_key)?;
        let sa_pub_file = write("sa.pub", &sa_pub)?;
        let tokens = write(
            "tokens.csv",
            &format!(
                "{admin_token},{ADMIN_USER},admin-uid,\"system:masters\"\n\
                 {kcm_token},system:kube-controller-manager,kcm-uid\n"
            ),
        )?;
        let audit_policy = write("audit-policy.yaml", AUDIT_POLICY)?;
        let audit_log = dir.join("audit.log");

        let mut cluster = RealCluster {
            dir: dir.clone(),
            keep_dir,
            processes: Vec::new(),
            url: String::new(),
            ca_pem: pki.ca_pem.clone(),
            admin_token: admin_token.clone(),
            kubeconfig: dir.join("kubeconfig"),
            audit_log: audit_log.clone(),
            audit_mark: std::sync::Mutex::new(0),
        };

        // etcd: in-memory speed (no fsync), loopback only.
        let [etcd_client, etcd_peer, apiserver_port] = free_ports();
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let etcd_data = dir.join("etcd");
        cluster.spawn(
            "etcd",
            Command::new(&etcd_bin)
                .arg(format!("--data-dir={}", etcd_data.display()))
                .arg(format!("--listen-client-urls={etcd_url}"))
                .arg(format!("--advertise-client-urls={etcd_url}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"
                ))
                .arg(format!(
                    "--initial-cluster=default=http://127.0.0.1:{etcd_peer}"
                ))
                .arg("--unsafe-no-fsync")
                .arg("--log-level=warn"),
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        cluster
            .wait("etcd", || async {
                let r = http.get(format!("{etcd_url}/health")).send().await.ok()?;
                r.status().is_success().then_some(())
            })
            .await?;

        cluster.url = format!("https://127.0.0.1:{apiserver_port}");
        cluster.spawn(
            "kube-apiserver",
            Command::new(&apiserver_bin)
                .arg(format!("--etcd-servers={etcd_url}"))
                .arg(format!("--secure-port={apiserver_port}"))
                .arg("--bind-address=127.0.0.1")
                .arg("--advertise-address=127.0.0.1")
                // The endpoint reconciler refuses loopback addresses; nothing here routes to
                // the `kubernetes` Service anyway.
                .arg("--endpoint-reconciler-type=none")
                .arg(format!("--cert-dir={}", dir.join("certs").display()))
                .arg(format!("--tls-cert-file={}", cert_file.display()))
                .arg(format!("--tls-private-key-file={}", key_file.display()))
                .arg(format!("--client-ca-file={}", ca_file.display()))
                .arg(format!("--token-auth-file={}", tokens.display()))
                .arg("--authorization-mode=Node,RBAC")
                .arg(format!("--service-account-issuer={ISSUER}"))
                .arg(format!("--api-audiences={ISSUER}"))
                .arg(format!(
                    "--service-account-key-file={}",
                    sa_pub_file.display()
                ))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    sa_key_file.display()
                ))
                // Never routed: the apiserver only needs a range to allocate the `kubernetes`
                // Service's address from.
                .arg("--service-cluster-ip-range=10.96.0.0/24")
                .arg(format!("--audit-policy-file={}", audit_policy.display()))
                .arg(format!("--audit-log-path={}", audit_log.display()))
                .arg("--audit-log-format=json")
                .arg("--audit-log-mode=blocking")
                .arg("--profiling=false")
                .arg("--v=0"),
        )?;
        let admin = cluster.admin_http()?;
        let readyz = format!("{}/readyz", cluster.url);
        cluster
            .wait("kube-apiserver /readyz", || async {
                let r = admin.get(&readyz).send().await.ok()?;
                r.status().is_success().then_some(())
            })
            .await?;

        let kcm_kubeconfig = write(
            "kube-controller-manager.kubeconfig",
            &kube_emulator::kubeconfig::render_named(
                "real-cluster",
                &cluster.url,
                &pki.ca_pem,
                &kcm_token,
            ),
        )?;
        cluster.spawn(
            "kube-controller-manager",
            Command::new(&kcm_bin)
                .arg(format!("--kubeconfig={}", kcm_kubeconfig.display()))
                .arg(format!(
                    "--authentication-kubeconfig={}",
                    kcm_kubeconfig.display()
                ))
                .arg(format!(
                    "--authorization-kubeconfig={}",
                    kcm_kubeconfig.display()
                ))
                .arg(format!(
                    "--service-account-private-key-file={}",
                    sa_key_file.display()
                ))
                .arg(format!("--root-ca-file={}", ca_file.display()))
                .arg(format!("--controllers={}", CONTROLLERS.join(",")))
                // Each controller acts as its own ServiceAccount with its bootstrap role, as in
                // a kubeadm cluster (the manager's own identity may do almost nothing).
                .arg("--use-service-account-credentials=true")
                .arg("--leader-elect=false")
                .arg("--bind-address=127.0.0.1")
                .arg("--secure-port=0")
                .arg("--v=0"),
        )?;
        let default_sa = format!(
            "{}/api/v1/namespaces/default/serviceaccounts/default",
            cluster.url
        );
        cluster
            .wait(
                "kube-controller-manager (ServiceAccount default/default)",
                || async {
                    let r = admin.get(&default_sa).send().await.ok()?;
                    r.status().is_success().then_some(())
                },
            )
            .await?;

        kube_emulator::kubeconfig::write(
            &cluster.kubeconfig,
            &kube_emulator::kubeconfig::render_named(
                "real-cluster",
                &cluster.url,
                &cluster.ca_pem,
                &admin_token,
            ),
        )
        .map_err(|e| fail(format!("write kubeconfig: {e}")))?;
        Ok(cluster)
    }

    /// Starts a cluster in a fresh temporary folder, removed when it stops.
    pub async fn start() -> Result<RealCluster, StartError> {
        let dir = std::env::temp_dir().join(format!("testkit-real-cluster-{}", random_hex()));
        Self::start_in(&dir, false).await
    }

    fn spawn(&mut self, name: &'static str, command: &mut Command) -> Result<(), StartError> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))
            .map_err(|e| fail(format!("{name} log: {e}")))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| fail(format!("{name} log: {e}")))?,
            )
            .stderr(log)
            .spawn()
            .map_err(|e| fail(format!("start {name}: {e}")))?;
        self.processes.push((name, child));
        Ok(())
    }

    /// Polls `ready` until it answers, failing early when a process exited.
    async fn wait<F, Fut>(&mut self, what: &str, mut ready: F) -> Result<(), StartError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<()>>,
    {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready().await.is_some() {
                return Ok(());
            }
            for (name, child) in &mut self.processes {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(fail(format!(
                        "{name} exited with {status} while waiting for {what}; its log:\n{}",
                        tail(&self.dir.join(format!("{name}.log")), 40)
                    )));
                }
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .processes
                    .iter()
                    .map(|(name, _)| {
                        format!(
                            "--- {name}.log\n{}",
                            tail(&self.dir.join(format!("{name}.log")), 20)
                        )
                    })
                    .collect();
                return Err(fail(format!(
                    "{what} not ready after {START_TIMEOUT:?}:\n{}",
                    logs.join("\n")
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn admin_http(&self) -> Result<reqwest::Client, StartError> {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes())
            .map_err(|e| fail(format!("CA: {e}")))?;
        let mut headers = reqwest::header::HeaderMap::new();
        let mut auth =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.admin_token))
                .map_err(|e| fail(e.to_string()))?;
        auth.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, auth);
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .default_headers(headers)
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| fail(e.to_string()))
    }

    /// The apiserver's URL, e.g. `https://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PEM of the CA that signed the apiserver's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The admin's bearer token (group `system:masters`).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// `dir/kubeconfig`: the admin's kubeconfig.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The folder holding the cluster's data, keys and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Requests the admin identity made since the last [`RealCluster::reset_counters`], by
    /// (verb, resource, code), as the emulator's counters count them. Read from the audit log,
    /// so what the control plane does by itself (controller manager, apiserver loopback) is left
    /// out; requests whose audit event is not yet written (a few ms) are missed.
    pub fn counters(&self) -> BTreeMap<(String, String, u16), u64> {
        self.counters_where(|user| user == ADMIN_USER)
    }

    /// Like [`RealCluster::counters`], for every identity but the control plane's own
    /// (the controller manager and its controllers' ServiceAccounts, the apiserver itself):
    /// e.g. to see the 403s a ServiceAccount got.
    pub fn counters_of_clients(&self) -> BTreeMap<(String, String, u16), u64> {
        self.counters_where(|user| {
            !(user.starts_with("system:kube-")
                || user.starts_with("system:serviceaccount:kube-system:")
                || user == "system:apiserver")
        })
    }

    fn counters_where(
        &self,
        counted: impl Fn(&str) -> bool,
    ) -> BTreeMap<(String, String, u16), u64> {
        let mark = *self.audit_mark.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = BTreeMap::new();
        let Ok(mut file) = std::fs::File::open(&self.audit_log) else {
            return counts;
        };
        if file.seek(SeekFrom::Start(mark)).is_err() {
            return counts;
        }
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if !counted(event["user"]["username"].as_str().unwrap_or_default()) {
                continue;
            }
            if let Some(key) = audit_key(&event) {
                *counts.entry(key).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Forgets the requests made so far (for [`RealCluster::counters`]).
    pub fn reset_counters(&self) {
        let len = std::fs::metadata(&self.audit_log).map_or(0, |m| m.len());
        *self.audit_mark.lock().unwrap_or_else(|e| e.into_inner()) = len;
    }

    /// Stops every process (apiserver and controller manager first, etcd last).
    pub fn stop(&mut self) {
        while let Some((_, mut child)) = self.processes.pop() {
            terminate(&mut child);
        }
    }
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        self.stop();
        if !self.keep_dir {
            // Only what the cluster wrote: the folder may be the user's.
            for entry in WRITTEN {
                let path = self.dir.join(entry);
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Everything [`RealCluster::start_in`] writes into its folder.
const WRITTEN: &[&str] = &[
    "etcd",
    "certs",
    "ca.crt",
    "apiserver.crt",
    "apiserver.key",
    "sa.key",
    "sa.pub",
    "tokens.csv",
    "audit-policy.yaml",
    "audit.log",
    "kube-controller-manager.kubeconfig",
    "kubeconfig",
    "etcd.log",
    "kube-apiserver.log",
    "kube-controller-manager.log",
];

/// Only the final stage of each request, at Metadata level: one line per request, no bodies
/// (so no token or Secret content lands in the log).
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
";

/// (verb, resource[/subresource], code) of a request's last audit event; long-running requests
/// (watches) are counted at ResponseStarted, the others at ResponseComplete.
fn audit_key(event: &Value) -> Option<(String, String, u16)> {
    let stage = event["stage"].as_str()?;
    let verb = event["verb"].as_str()?.to_string();
    let long_running = verb == "watch";
    match (stage, long_running) {
        ("ResponseComplete", false) | ("ResponseStarted", true) => {}
        _ => return None,
    }
    let resource = match event["objectRef"]["resource"].as_str() {
        Some(resource) => match event["objectRef"]["subresource"].as_str() {
            Some(sub) if !sub.is_empty() => format!("{resource}/{sub}"),
            _ => resource.to_string(),
        },
        None => event["requestURI"].as_str()?.split('?').next()?.to_string(),
    };
    let code = event["responseStatus"]["code"].as_u64().unwrap_or(0) as u16;
    Some((verb, resource, code))
}

/// SIGTERM, then SIGKILL after 10 s.
fn terminate(child: &mut Child) {
    let pid = child.id().to_string();
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Three distinct free loopback ports (free when asked; the processes bind them moments later).
fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect();
    [ports[0], ports[1], ports[2]]
}

fn random_hex() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The last `lines` lines of a log file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audit_events_count_once_per_request() {
        let complete = json!({"stage": "ResponseComplete", "verb": "create",
            "objectRef": {"resource": "serviceaccounts", "subresource": "token"},
            "responseStatus": {"code": 201}});
        assert_eq!(
            audit_key(&complete),
            Some(("create".into(), "serviceaccounts/token".into(), 201))
        );
        let started_get = json!({"stage": "ResponseStarted", "verb": "get",
            "objectRef": {"resource": "configmaps"}, "responseStatus": {"code": 200}});
        assert_eq!(audit_key(&started_get), None);
        let watch = json!({"stage": "ResponseStarted", "verb": "watch",
            "objectRef": {"resource": "namespaces"}, "responseStatus": {"code": 200}});
        assert_eq!(
            audit_key(&watch),
            Some(("watch".into(), "namespaces".into(), 200))
        );
        let version = json!({"stage": "ResponseComplete", "verb": "get",
            "requestURI": "/version?timeout=32s", "responseStatus": {"code": 200}});
        assert_eq!(
            audit_key(&version),
            Some(("get".into(), "/version".into(), 200))
        );
    }
}
