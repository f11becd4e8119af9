//! "A cluster" for tests: the in-repo emulator or a real control plane, chosen by the
//! environment, behind one handle.
//!
//! `VAK_TEST_CLUSTER=emulator` (the default) or `real`. Tests that need what only the emulator
//! offers (fault injection, a moved clock, RBAC switched off) start one with
//! [`TestCluster::emulator`] and say so in their name (`emulator_only_*`), so a tier that runs
//! on the real apiserver can leave them out by name, never silently.

use std::path::{Path, PathBuf};

use crate::real_cluster::RealCluster;

/// Which Kubernetes API server a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterKind {
    /// The in-repo emulator (fast, fault injection).
    Emulator,
    /// etcd + kube-apiserver + kube-controller-manager built from their Go modules.
    Real,
}

impl ClusterKind {
    /// From `VAK_TEST_CLUSTER` (`emulator` when unset); panics on anything else.
    pub fn from_env() -> ClusterKind {
        match std::env::var("VAK_TEST_CLUSTER").as_deref() {
            Err(_) | Ok("") | Ok("emulator") => ClusterKind::Emulator,
            Ok("real") => ClusterKind::Real,
            Ok(other) => panic!("VAK_TEST_CLUSTER={other:?}: expected \"emulator\" or \"real\""),
        }
    }
}

/// A running cluster; stopped on drop.
pub struct TestCluster {
    backend: Backend,
    /// Holds the admin kubeconfig (and nothing else) while the cluster runs.
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

enum Backend {
    Emulator(kube_emulator::Emulator),
    Real(Box<RealCluster>),
}

impl TestCluster {
    /// The cluster `VAK_TEST_CLUSTER` asks for; the emulator with default options.
    pub async fn start() -> TestCluster {
        match ClusterKind::from_env() {
            ClusterKind::Emulator => Self::emulator(kube_emulator::Options::default()).await,
            ClusterKind::Real => Self::real().await,
        }
    }

    /// The cluster `VAK_TEST_CLUSTER` asks for, with RBAC enforced on both (the real apiserver
    /// always enforces it; the emulator only when asked).
    pub async fn start_with_rbac() -> TestCluster {
        match ClusterKind::from_env() {
            ClusterKind::Emulator => {
                Self::emulator(kube_emulator::Options {
                    rbac: true,
                    ..Default::default()
                })
                .await
            }
            ClusterKind::Real => Self::real().await,
        }
    }

    /// An emulator, whatever the environment says: for tests of what only it can do.
    pub async fn emulator(options: kube_emulator::Options) -> TestCluster {
        let emulator = kube_emulator::start(options)
            .await
            .expect("start the Kubernetes emulator");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        emulator
            .write_kubeconfig(&kubeconfig)
            .expect("write kubeconfig");
        TestCluster {
            backend: Backend::Emulator(emulator),
            _dir: dir,
            kubeconfig,
        }
    }

    /// A real control plane, whatever the environment says.
    pub async fn real() -> TestCluster {
        let cluster = RealCluster::start()
            .await
            .unwrap_or_else(|e| panic!("start the real control plane: {e}"));
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::copy(cluster.kubeconfig_path(), &kubeconfig).expect("copy kubeconfig");
        TestCluster {
            backend: Backend::Real(Box::new(cluster)),
            _dir: dir,
            kubeconfig,
        }
    }

    /// Which server this is.
    pub fn kind(&self) -> ClusterKind {
        match self.backend {
            Backend::Emulator(_) => ClusterKind::Emulator,
            Backend::Real(_) => ClusterKind::Real,
        }
    }

    /// The emulator, for fault injection; panics on a real cluster (a test that needs this
    /// must be started with [`TestCluster::emulator`]).
    pub fn emulator_handle(&self) -> &kube_emulator::Emulator {
        match &self.backend {
            Backend::Emulator(e) => e,
            Backend::Real(_) => panic!(
                "this test needs the emulator's fault injection: start it with \
                 TestCluster::emulator and name it emulator_only_*"
            ),
        }
    }

    /// The real control plane, when this is one.
    pub fn real_handle(&self) -> Option<&RealCluster> {
        match &self.backend {
            Backend::Real(r) => Some(r),
            Backend::Emulator(_) => None,
        }
    }

    /// The API server's URL, e.g. `https://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> String {
        match &self.backend {
            Backend::Emulator(e) => e.url(),
            Backend::Real(r) => r.url().to_string(),
        }
    }

    /// PEM of the CA the API server's certificate is signed by.
    pub fn ca_pem(&self) -> &str {
        match &self.backend {
            Backend::Emulator(e) => e.ca_pem(),
            Backend::Real(r) => r.ca_pem(),
        }
    }

    /// The admin's bearer token (group `system:masters`).
    pub fn admin_token(&self) -> &str {
        match &self.backend {
            Backend::Emulator(e) => e.admin_token(),
            Backend::Real(r) => r.admin_token(),
        }
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Writes the admin kubeconfig to `path` (mode 0600).
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::copy(&self.kubeconfig, path).map(drop)
    }

    /// An admin client. Must be called inside a Tokio runtime.
    pub fn client(&self) -> kube::Client {
        self.client_with_token(self.admin_token())
    }

    /// A client acting as whoever `token` belongs to. Must be called inside a Tokio runtime.
    pub fn client_with_token(&self, token: &str) -> kube::Client {
        let url = self.url().parse().expect("the cluster URL is a valid URI");
        let mut config = kube::Config::new(url);
        config.root_cert = Some(pem_certificates(self.ca_pem()));
        config.auth_info = serde_json::from_value(serde_json::json!({ "token": token }))
            .expect("an AuthInfo with only a token deserializes");
        kube::Client::try_from(config).expect("a client for a URL, CA and token builds")
    }

    /// A TokenRequest token of a ServiceAccount (what a pod would mount), valid `seconds`.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[&str],
        seconds: i64,
    ) -> String {
        crate::objects::token_request(&self.client(), namespace, name, audiences, seconds).await
    }

    /// Requests of the admin identity since the last [`TestCluster::reset_counters`], by
    /// (verb, resource, code). The emulator counts every request it answers; the real cluster
    /// reads its audit log, leaving out the control plane's own requests.
    pub fn counters(&self) -> kube_emulator::Counters {
        match &self.backend {
            Backend::Emulator(e) => e.counters(),
            Backend::Real(r) => kube_emulator::Counters::from_entries(r.counters()),
        }
    }

    /// Requests of every client (the admin, ServiceAccounts; not the real control plane's own)
    /// since the last [`TestCluster::reset_counters`]: e.g. the 403s a ServiceAccount got.
    pub fn client_counters(&self) -> kube_emulator::Counters {
        match &self.backend {
            Backend::Emulator(e) => e.counters(),
            Backend::Real(r) => kube_emulator::Counters::from_entries(r.counters_of_clients()),
        }
    }

    /// The admin kubeconfig with `token` in place of the admin's: what a pod of that identity
    /// would use.
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        kube_emulator::kubeconfig::render_named("test", &self.url(), self.ca_pem(), token)
    }

    /// Forgets the requests counted so far.
    pub fn reset_counters(&self) {
        match &self.backend {
            Backend::Emulator(e) => e.reset_counters(),
            Backend::Real(r) => r.reset_counters(),
        }
    }
}

/// The DER bytes of each certificate in a PEM bundle.
fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let mut certificates = Vec::new();
    let mut body = String::new();
    let mut inside = false;
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = true;
            body.clear();
        } else if line == "-----END CERTIFICATE-----" {
            inside = false;
            let der = base64::engine::general_purpose::STANDARD
                .decode(&body)
                .expect("the cluster CA is valid PEM");
            certificates.push(der);
        } else if inside {
            body.push_str(line);
        }
    }
    certificates
}
