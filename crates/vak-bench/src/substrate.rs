//! A fresh Kubernetes API server and Vault for one measurement, seeded, with the AppRole the
//! controller logs in with and the audit log that tells its Vault requests.
//!
//! Every (size, controller) pair and every baseline gets its own: nothing one run leaves behind
//! (objects, tokens, caches in the server) can change another's numbers.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use serde_json::{Value, json};
use testkit::{AppRoleCredentials, TestCluster, TestVault, VaultKind};

use crate::cli::{ClusterChoice, VaultChoice};
use crate::kube::Kube;
use crate::measure::{AuditRequest, AuditTail, KubeTally};
use crate::seed::{self, CONFIGMAP, CONTROLLER_NAMESPACE, RoleSpec};

/// Requests the harness keeps in flight while seeding.
const SEED_CONCURRENCY: usize = 16;

/// Which servers to start.
#[derive(Clone, Copy, Debug)]
pub struct SubstrateOptions {
    pub cluster: ClusterChoice,
    pub vault: VaultChoice,
    pub legacy_token_secrets: bool,
}

/// A running Kubernetes API and Vault; both stop on drop.
pub struct Substrate {
    pub cluster: TestCluster,
    pub kube: Kube,
    pub vault: Vault,
    pub creds: AppRoleCredentials,
}

impl Substrate {
    /// Starts both servers, with Vault's audit log in `dir`.
    pub async fn start(options: SubstrateOptions, dir: &Path) -> Result<Substrate> {
        let cluster = match options.cluster {
            ClusterChoice::Emulator => {
                TestCluster::emulator(kube_emulator::Options {
                    legacy_token_secrets: options.legacy_token_secrets,
                    ..Default::default()
                })
                .await
            }
            ClusterChoice::Real => TestCluster::real().await,
        };
        let kube = Kube::from_kubeconfig(cluster.kubeconfig_path()).await?;
        let vault = Vault::start(options.vault, dir).await?;
        // The README's set-up, verbatim: policy and AppRole `vault-auth-kubernetes`.
        let creds = vault.server.readme_approle(json!({})).await;
        Ok(Substrate {
            cluster,
            kube,
            vault,
            creds,
        })
    }

    /// The admin kubeconfig the controller gets.
    pub fn kubeconfig(&self) -> &Path {
        self.cluster.kubeconfig_path()
    }

    /// The API server's counters since the last reset, every client but the real control
    /// plane's own, 2xx only when `only_success`.
    pub fn server_tally(&self, only_success: bool) -> KubeTally {
        KubeTally::from_counters(&self.cluster.client_counters(), only_success)
    }

    /// Creates the seed's namespaces and the ConfigMap with `roles`.
    pub async fn seed(&self, namespaces: &[seed::Namespace], roles: &[RoleSpec]) -> Result<()> {
        futures::stream::iter(namespaces.iter().map(|ns| self.create_namespace(ns)))
            .buffer_unordered(SEED_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(CONFIGMAP.into()),
                namespace: Some(CONTROLLER_NAMESPACE.into()),
                ..Default::default()
            },
            data: Some(seed::Seed::configmap_data(roles)),
            ..Default::default()
        };
        Api::<ConfigMap>::namespaced(self.kube.client.clone(), CONTROLLER_NAMESPACE)
            .create(&PostParams::default(), &cm)
            .await
            .context("create the ConfigMap vault-auth-roles")?;
        self.wait_default_accounts(namespaces).await
    }

    /// Waits until every namespace has its `default` ServiceAccount: a real control plane
    /// adds them a moment after the namespace (the emulator at once), and the baseline must
    /// not mistake them for the controller's.
    async fn wait_default_accounts(&self, namespaces: &[seed::Namespace]) -> Result<()> {
        let api: Api<ServiceAccount> = Api::all(self.kube.client.clone());
        let params = ListParams::default().fields("metadata.name=default");
        let start = std::time::Instant::now();
        loop {
            let have: HashSet<String> = api
                .list_metadata(&params)
                .await
                .context("list the default ServiceAccounts")?
                .items
                .into_iter()
                .filter_map(|sa| sa.metadata.namespace)
                .collect();
            let missing = namespaces
                .iter()
                .filter(|n| !have.contains(&n.name))
                .count();
            if missing == 0 {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!(
                    "{missing} seeded namespaces still have no default ServiceAccount after 120 s"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates one namespace.
    pub async fn create_namespace(&self, ns: &seed::Namespace) -> Result<()> {
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.name.clone()),
                labels: (!ns.labels.is_empty()).then(|| ns.labels.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(self.kube.client.clone())
            .create(&PostParams::default(), &object)
            .await
            .with_context(|| format!("create namespace {}", ns.name))?;
        Ok(())
    }
}

/// A Vault dev server with a file audit device, and a keep-alive client with the root token.
pub struct Vault {
    pub server: TestVault,
    /// The harness's client: root token, keep-alive, for polling.
    http: reqwest::Client,
    audit: Mutex<AuditTail>,
}

impl Vault {
    /// Starts the server with its audit log at `dir/vault-audit.log`. OpenBao enables audit
    /// devices only from its configuration file; HashiCorp Vault through the API.
    async fn start(choice: VaultChoice, dir: &Path) -> Result<Vault> {
        let audit_path = dir.join("vault-audit.log");
        let _ = std::fs::remove_file(&audit_path);
        let server = match choice {
            VaultChoice::Openbao => {
                let config = dir.join("openbao-audit.hcl");
                std::fs::write(
                    &config,
                    format!(
                        "audit \"file\" \"bench\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
                        audit_path.display().to_string()
                    ),
                )
                .with_context(|| format!("write {}", config.display()))?;
                TestVault::start_kind_with_args(
                    VaultKind::OpenBao,
                    false,
                    vec![format!("-config={}", config.display())],
                )
                .await
            }
            VaultChoice::Vault => {
                let server = TestVault::start_kind(VaultKind::Vault, false).await;
                let r = server
                    .request(
                        "POST",
                        "sys/audit/bench",
                        Some(json!({"type": "file", "options": {"file_path": audit_path}})),
                    )
                    .await;
                if r.status >= 300 {
                    bail!("enable the file audit device of Vault: {r:?}");
                }
                server
            }
        };
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "X-Vault-Token",
            reqwest::header::HeaderValue::from_str(server.root_token())?,
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .pool_idle_timeout(None)
            .timeout(Duration::from_secs(30))
            .build()
            .context("build the harness's Vault client")?;
        let mut tail = AuditTail::new(&audit_path);
        // What the set-up wrote (the dev server's own start, the AppRole) is not measured.
        tail.read()?;
        Ok(Vault {
            server,
            http,
            audit: Mutex::new(tail),
        })
    }

    /// Base address for the controller's VAK_VAULT_HOST.
    pub fn addr(&self) -> &str {
        self.server.addr()
    }

    /// The controller's requests since the last call (the harness's own are left out).
    pub fn take_requests(&self) -> Result<Vec<AuditRequest>> {
        self.audit.lock().unwrap_or_else(|p| p.into_inner()).read()
    }

    /// `data` of a Vault role of the benchmark mount, None when it does not exist.
    pub async fn role(&self, name: &str) -> Result<Option<Value>> {
        let url = format!(
            "{}/v1/auth/kubernetes/{}/role/{name}",
            self.addr(),
            seed::MOUNT
        );
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        // 404 for a missing role, 400 while the mount does not exist yet.
        if resp.status().is_client_error() {
            return Ok(None);
        }
        let status = resp.status();
        let body: Value = resp.json().await.with_context(|| format!("GET {url}"))?;
        if !status.is_success() {
            bail!("GET {url}: {status} {body}");
        }
        Ok(Some(body["data"].clone()))
    }

    /// Role names at the benchmark mount (empty while it does not exist).
    pub async fn role_names(&self) -> Result<Vec<String>> {
        let url = format!("{}/v1/auth/kubernetes/{}/role", self.addr(), seed::MOUNT);
        let resp = self
            .http
            .request(reqwest::Method::from_bytes(b"LIST")?, &url)
            .send()
            .await
            .with_context(|| format!("LIST {url}"))?;
        if resp.status().is_client_error() {
            return Ok(Vec::new());
        }
        let body: Value = resp.json().await.with_context(|| format!("LIST {url}"))?;
        Ok(body["data"]["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}
