//! Harness of the controller's end-to-end tests: a cluster and a Vault from testkit (emulator
//! or real apiserver, OpenBao or HashiCorp Vault, by environment), the original README's policy
//! and AppRole, and the controller running in-process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde_json::{Value, json};
pub use testkit::wait_for;
use testkit::{AppRoleCredentials, TestCluster, TestVault};
use tokio_util::sync::CancellationToken;
use vault_auth_kubernetes::settings::Settings;

/// The two-segment mount of the original README's policy.
pub const MOUNT: &str = "prod/eu1";
pub const AUTH_PATH: &str = "kubernetes/prod/eu1";
pub const NAMESPACE: &str = "vault-auth";
/// Generous upper bound for anything event-driven; the measured time is printed.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The example ConfigMap of the original README.
pub fn readme_roles() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "default",
            json!({
                "bound_service_account_names": ["vault-agent-injector", "default"],
                "bound_service_account_namespaces": ["kube-system", "default"],
                "token_policies": ["test"]
            }),
        ),
        (
            "test",
            json!({
                "bound_service_account_names": ["vault-agent-injector"],
                "bound_service_account_namespaces": ["kube-system"],
                "token_policies": ["test", "default"]
            }),
        ),
    ]
}

/// A cluster + a Vault + the README's AppRole, ready for a controller. Which cluster and which
/// Vault comes from `VAK_TEST_CLUSTER` and `VAK_TEST_VAULT` (see testkit).
pub struct Env {
    pub kube: TestCluster,
    pub bao: TestVault,
    pub creds: AppRoleCredentials,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Env {
    /// Starts everything: the cluster, the Vault with the README policy (verbatim) bound to an
    /// AppRole, and the `vault-auth` namespace.
    pub async fn start() -> Env {
        init_tracing();
        Self::with_cluster(TestCluster::start().await).await
    }

    /// Like [`Env::start`] with RBAC enforced (the real apiserver always enforces it).
    pub async fn start_with_rbac() -> Env {
        init_tracing();
        Self::with_cluster(TestCluster::start_with_rbac().await).await
    }

    /// On an emulator, whatever the environment says: for tests that inject faults.
    pub async fn emulator(options: kube_emulator::Options) -> Env {
        init_tracing();
        Self::with_cluster(TestCluster::emulator(options).await).await
    }

    async fn with_cluster(kube: TestCluster) -> Env {
        let bao = TestVault::start().await;
        let creds = setup_approle(&bao, None).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig)
            .expect("write kubeconfig");
        let env = Env {
            kube,
            bao,
            creds,
            dir,
            kubeconfig,
        };
        env.create_namespace(NAMESPACE, &[]).await;
        env
    }

    pub fn client(&self) -> kube::Client {
        self.kube.client()
    }

    /// Controller settings as a user would pass them (flags of the original + new options).
    pub fn settings(&self, extra: &[&str]) -> Settings {
        let mut argv = vec![
            "vault-auth-kubernetes".to_string(),
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            "--vault-host".into(),
            self.bao.addr().to_string(),
            "--vault-mount".into(),
            MOUNT.into(),
            "--vault-role-id".into(),
            self.creds.role_id.clone(),
            "--vault-secret-id".into(),
            self.creds.secret_id.clone(),
            "--namespace".into(),
            NAMESPACE.into(),
            "--admin-port".into(),
            "0".into(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        let args =
            vault_auth_kubernetes::cli::parse_controller_args(argv).expect("valid arguments");
        Settings::from_controller(&args).expect("valid settings")
    }

    /// Runs the controller in-process until the returned handle is stopped or dropped.
    pub fn controller(&self, extra: &[&str]) -> Controller {
        let settings = self.settings(extra);
        let token = CancellationToken::new();
        let stop = token.clone();
        let task = tokio::spawn(async move {
            vault_auth_kubernetes::app::run_controller(settings, stop)
                .await
                .map_err(|e| e.to_string())
        });
        Controller {
            token,
            task: Some(task),
        }
    }

    /// The settings of the controller as environment variables, as the Helm chart passes them.
    pub fn controller_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KUBECONFIG", self.kubeconfig.display().to_string()),
            ("VAK_VAULT_HOST", self.bao.addr().to_string()),
            ("VAK_VAULT_MOUNT", MOUNT.to_string()),
            ("VAK_VAULT_ROLE_ID", self.creds.role_id.clone()),
            ("VAK_VAULT_SECRET_ID", self.creds.secret_id.clone()),
            ("VAK_NAMESPACE", NAMESPACE.to_string()),
        ]
    }

    /// Puts another type of auth method (userpass) where the controller's mount would go.
    pub async fn mount_foreign_auth_method(&self) {
        let r = self
            .bao
            .request(
                "POST",
                &format!("sys/auth/{AUTH_PATH}"),
                Some(json!({"type": "userpass"})),
            )
            .await;
        assert!(r.status < 300, "{r:?}");
    }

    pub async fn create_namespace(&self, name: &str, labels: &[(&str, &str)]) {
        testkit::create_namespace(&self.client(), name, labels).await;
    }

    /// Creates or replaces the roles ConfigMap with exactly these entries.
    pub async fn put_roles(&self, entries: &[(&str, Value)]) {
        let data: BTreeMap<String, String> = entries
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(raw) => raw.clone(),
                    other => serde_json::to_string_pretty(other).unwrap(),
                };
                (k.to_string(), text)
            })
            .collect();
        put_configmap_data(&self.client(), data).await;
    }

    pub async fn delete_roles_configmap(&self) {
        let api: Api<ConfigMap> = Api::namespaced(self.client(), NAMESPACE);
        api.delete("vault-auth-roles", &DeleteParams::default())
            .await
            .expect("delete ConfigMap");
    }

    /// The role as Vault returns it (root token), or None.
    pub async fn vault_role(&self, name: &str) -> Option<Value> {
        let r = self
            .bao
            .request("GET", &format!("auth/{AUTH_PATH}/role/{name}"), None)
            .await;
        match r.status {
            200 => Some(r.body["data"].clone()),
            404 => None,
            other => panic!("read role {name}: {other} {:?}", r.body),
        }
    }

    /// The raw JSON text of a role read as root (for byte-for-byte comparisons).
    pub async fn vault_role_bytes(&self, name: &str) -> Option<String> {
        self.vault_role(name)
            .await
            .map(|v| serde_json::to_string(&v).unwrap())
    }

    pub async fn vault_role_names(&self) -> Vec<String> {
        let r = self
            .bao
            .request("LIST", &format!("auth/{AUTH_PATH}/role"), None)
            .await;
        match r.status {
            200 => r.body["data"]["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect(),
            _ => vec![],
        }
    }

    pub async fn service_account(&self, ns: &str, name: &str) -> Option<ServiceAccount> {
        Api::<ServiceAccount>::namespaced(self.client(), ns)
            .get_opt(name)
            .await
            .expect("get ServiceAccount")
    }

    /// A TokenRequest token of a ServiceAccount (what a pod would mount).
    pub async fn sa_token(&self, ns: &str, name: &str) -> String {
        self.kube.service_account_token(ns, name, &[], 600).await
    }

    /// Logs in to Vault as a pod with that ServiceAccount would; the token's policies or the
    /// error Vault answered.
    pub async fn login(&self, ns: &str, sa: &str, role: &str) -> Result<Vec<String>, String> {
        let jwt = self.sa_token(ns, sa).await;
        let r = self
            .bao
            .request_as(
                "",
                "POST",
                &format!("auth/{AUTH_PATH}/login"),
                Some(json!({"role": role, "jwt": jwt})),
            )
            .await;
        if r.status != 200 {
            return Err(format!("{} {}", r.status, r.body));
        }
        let mut policies: Vec<String> = r.body["auth"]["token_policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        policies.sort();
        Ok(policies)
    }

    /// Events on the roles ConfigMap: (type, reason, note).
    pub async fn configmap_events(&self) -> Vec<(String, String, String)> {
        let api: Api<Event> = Api::namespaced(self.client(), NAMESPACE);
        let list = api.list(&ListParams::default()).await.expect("list events");
        list.items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("vault-auth-roles")
            })
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Creates or replaces the data of ConfigMap `vault-auth-roles`, as `kubectl replace` would,
/// retrying when the controller's status annotations changed it in between (409 Conflict).
pub async fn put_configmap_data(client: &kube::Client, data: BTreeMap<String, String>) {
    put_configmap_data_in(client, NAMESPACE, data).await;
}

/// [`put_configmap_data`] in another namespace than [`NAMESPACE`].
pub async fn put_configmap_data_in(
    client: &kube::Client,
    namespace: &str,
    data: BTreeMap<String, String>,
) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for _ in 0..20 {
        let result = match api
            .get_opt("vault-auth-roles")
            .await
            .expect("get ConfigMap")
        {
            Some(mut cm) => {
                cm.data = Some(data.clone());
                api.replace("vault-auth-roles", &PostParams::default(), &cm)
                    .await
            }
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some("vault-auth-roles".into()),
                        namespace: Some(namespace.into()),
                        ..Default::default()
                    },
                    data: Some(data.clone()),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &cm).await
            }
        };
        match result {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("write ConfigMap vault-auth-roles: {e}"),
        }
    }
    panic!("ConfigMap vault-auth-roles kept changing under the test");
}

/// The README's set-up (policy and AppRole, with `extra` AppRole parameters) and the `test`
/// policy its example roles grant; returns the AppRole's credentials.
pub async fn setup_approle(bao: &TestVault, extra: Option<Value>) -> AppRoleCredentials {
    bao.write_policy(
        None,
        "test",
        "path \"secret/*\" { capabilities = [\"read\"] }",
    )
    .await;
    bao.readme_approle(extra.unwrap_or_else(|| json!({}))).await
}

/// Re-creates the AppRole with the same role-id and secret-id (after Vault lost its storage).
pub async fn restore_approle(bao: &TestVault, creds: &AppRoleCredentials) {
    setup_approle(bao, None).await;
    bao.restore_readme_approle(creds).await;
}

/// A controller running in-process.
pub struct Controller {
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Controller {
    /// Stops it (as SIGTERM would) and returns how it ended.
    pub async fn stop(mut self) -> Result<(), String> {
        self.token.cancel();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("controller stops within 15 s")
            .expect("controller task")
    }

    /// Waits for the controller to exit by itself (e.g. a fatal error).
    pub async fn exited(mut self, within: Duration) -> Result<(), String> {
        let task = self.task.take().unwrap();
        tokio::time::timeout(within, task)
            .await
            .expect("controller exits in time")
            .expect("controller task")
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG")
                .unwrap_or_else(|_| "vault_auth_kubernetes=info,warn".to_string()),
        )
        .with_test_writer()
        .try_init();
}
