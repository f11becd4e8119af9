//! Test harness for the controller: the in-repo Kubernetes emulator, a real OpenBao dev server
//! with the original README's policy and an AppRole, and the controller running in-process.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde_json::{Value, json};
use testkit::{AppRoleCredentials, README_POLICY, TestVault};
use tokio_util::sync::CancellationToken;
use vault_auth_kubernetes::cli::Cli;
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

/// Emulator + OpenBao + AppRole, ready for a controller.
pub struct Env {
    pub kube: kube_emulator::Emulator,
    pub bao: TestVault,
    pub creds: AppRoleCredentials,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Env {
    /// Starts everything: emulator, OpenBao with the README policy (verbatim) bound to an
    /// AppRole, and the `vault-auth` namespace.
    pub async fn start() -> Env {
        Self::start_with(kube_emulator::Options::default()).await
    }

    pub async fn start_with(options: kube_emulator::Options) -> Env {
        init_tracing();
        let kube = kube_emulator::start(options).await.expect("start emulator");
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
        let cli = Cli::try_parse_from(argv).expect("valid arguments");
        Settings::from_args(&cli.settings).expect("valid settings")
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
        let api: Api<Namespace> = Api::all(self.client());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_already_exists() => {}
            Err(e) => panic!("create namespace {name}: {e}"),
        }
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
        let api: Api<ServiceAccount> = Api::namespaced(self.client(), ns);
        let req = k8s_openapi::api::authentication::v1::TokenRequest {
            spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
                audiences: vec![],
                expiration_seconds: Some(600),
                bound_object_ref: None,
            },
            ..Default::default()
        };
        let resp = api
            .create_token_request(name, &PostParams::default(), &req)
            .await
            .expect("TokenRequest");
        resp.status.expect("token status").token
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
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
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
                        namespace: Some(NAMESPACE.into()),
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

/// Writes the README policy (verbatim) and an AppRole holding it; returns its credentials.
pub async fn setup_approle(bao: &TestVault, params: Option<Value>) -> AppRoleCredentials {
    bao.write_policy(None, "vault-auth-kubernetes", README_POLICY)
        .await;
    bao.write_policy(
        None,
        "test",
        "path \"secret/*\" { capabilities = [\"read\"] }",
    )
    .await;
    let params = params.unwrap_or_else(|| json!({"token_policies": ["vault-auth-kubernetes"]}));
    bao.approle(None, "vault-auth-kubernetes", params).await
}

/// Re-creates the AppRole with the same role-id and secret-id (after OpenBao lost its storage).
pub async fn restore_approle(bao: &TestVault, creds: &AppRoleCredentials) {
    setup_approle(bao, None).await;
    let role = "auth/approle/role/vault-auth-kubernetes";
    let r = bao
        .request(
            "POST",
            &format!("{role}/role-id"),
            Some(json!({"role_id": creds.role_id})),
        )
        .await;
    assert!(r.status < 300, "set role-id: {r:?}");
    let r = bao
        .request(
            "POST",
            &format!("{role}/custom-secret-id"),
            Some(json!({"secret_id": creds.secret_id})),
        )
        .await;
    assert!(r.status < 300, "set secret-id: {r:?}");
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

/// Polls `check` until it returns Some, or panics after `timeout`; returns the value and the
/// time it took.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return (v, start.elapsed());
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
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
