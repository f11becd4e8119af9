//! Starting an emulator and the handle tests hold: URL, CA, kubeconfig, ready clients, counters,
//! faults, shutdown.

use std::sync::Arc;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::auth::authn::Authenticator;
use crate::auth::jwt::Issuer;
use crate::auth::rbac;
use crate::context::Shared;
use crate::counters::Counters;
use crate::error::Error;
use crate::faults::Faults;
use crate::ops::{self, WriteCtx};
use crate::pki::Pki;
use crate::store::Store;
use crate::{controllers, kinds, kubeconfig, meta, server};

/// The issuer of ServiceAccount tokens (and the audience the API itself accepts).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Namespaces every new cluster has.
const INITIAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// How to run an emulator.
#[derive(Clone)]
pub struct Options {
    /// 0 = a random free port.
    pub port: u16,
    /// false = allow-all authorization (authentication is always on).
    pub rbac: bool,
    /// Emulate Kubernetes <= 1.23: ServiceAccounts get auto-created token Secrets.
    pub legacy_token_secrets: bool,
    /// How many past events are kept for watch resumption (410 Gone beyond).
    pub watch_window: usize,
    /// The admin bearer token; None = random.
    pub admin_token: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            rbac: false,
            legacy_token_secrets: false,
            watch_window: 10_000,
            admin_token: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("port", &self.port)
            .field("rbac", &self.rbac)
            .field("legacy_token_secrets", &self.legacy_token_secrets)
            .field("watch_window", &self.watch_window)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A running emulator. Shuts down on drop.
pub struct Emulator {
    shared: Arc<Shared>,
    port: u16,
    ca_der: Vec<u8>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts an emulator; it is ready to serve when this returns.
pub async fn start(options: Options) -> Result<Emulator, Error> {
    let admin_token = options.admin_token.clone().unwrap_or_else(random_token);
    // Key generation is CPU-bound (RSA in particular): keep it off the async workers.
    let (pki, issuer) = tokio::task::spawn_blocking(|| {
        let pki = Pki::generate();
        let issuer = Issuer::generate(ISSUER, vec![ISSUER.to_string()]);
        (pki, issuer)
    })
    .await
    .map_err(|e| Error::KeyTask(e.to_string()))?;
    let pki = pki?;
    let issuer = Arc::new(issuer.map_err(Error::SigningKey)?);
    let tls = TlsAcceptor::from(pki.server_config()?);
    let listener = TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|source| Error::Bind {
            port: options.port,
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| Error::Bind {
            port: options.port,
            source,
        })?
        .port();

    let shared = Arc::new(Shared {
        store: Store::new(options.watch_window),
        authn: Authenticator::new(issuer.clone(), admin_token.clone()),
        issuer,
        rbac: options.rbac,
        legacy_token_secrets: options.legacy_token_secrets,
        ca_pem: pki.ca_pem.clone(),
        admin_token,
        server_address: format!("127.0.0.1:{port}"),
        counters: Default::default(),
        faults: Default::default(),
        shutdown: CancellationToken::new(),
    });
    bootstrap(&shared)?;
    let tasks = vec![
        tokio::spawn(server::serve(listener, tls, shared.clone())),
        tokio::spawn(controllers::run_namespace_controller(shared.clone())),
    ];
    tracing::info!(
        port,
        rbac = options.rbac,
        legacy_token_secrets = options.legacy_token_secrets,
        "kube-emulator serving"
    );
    Ok(Emulator {
        shared,
        port,
        ca_der: pki.ca_der,
        tasks,
    })
}

/// What a new cluster has: its namespaces (each with its default ServiceAccount) and the
/// built-in RBAC roles and bindings.
fn bootstrap(shared: &Shared) -> Result<(), Error> {
    let ctx = WriteCtx::system(shared, "kube-apiserver");
    let failed = |resource: &str, name: &str, e: crate::status::ApiError| Error::Bootstrap {
        resource: resource.to_string(),
        name: name.to_string(),
        message: e.to_string(),
    };
    let namespaces = kinds::find("", "v1", "namespaces").expect("namespaces are served");
    for name in INITIAL_NAMESPACES {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        ops::create(&ctx, namespaces, None, ns).map_err(|e| failed("namespaces", name, e))?;
    }
    for (resource, obj) in rbac::bootstrap_objects() {
        let name = meta::name(&obj).to_string();
        let kind = kinds::for_storage(&resource).ok_or_else(|| Error::Bootstrap {
            resource: resource.clone(),
            name: name.clone(),
            message: "not a served resource".into(),
        })?;
        let namespace = kind.namespaced.then(|| meta::namespace(&obj).to_string());
        ops::create(&ctx, kind, namespace.as_deref(), obj)
            .map_err(|e| failed(&resource, &name, e))?;
    }
    Ok(())
}

impl Emulator {
    /// "https://127.0.0.1:<port>".
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.shared.ca_pem
    }

    /// The admin bearer token (user "kubernetes-admin", group system:masters).
    pub fn admin_token(&self) -> &str {
        &self.shared.admin_token
    }

    /// A kubeconfig (server URL, CA data, admin token, one context).
    pub fn kubeconfig(&self) -> String {
        kubeconfig::render(&self.url(), self.ca_pem(), self.admin_token())
    }

    /// Writes the kubeconfig, readable by the owner only.
    pub fn write_kubeconfig(&self, path: &std::path::Path) -> std::io::Result<()> {
        kubeconfig::write(path, &self.kubeconfig())
    }

    /// An admin client trusting the emulator's CA. Must be called inside a Tokio runtime.
    pub fn client(&self) -> kube::Client {
        self.client_with_token(self.admin_token())
    }

    /// A client acting as whoever `token` belongs to. Must be called inside a Tokio runtime.
    pub fn client_with_token(&self, token: &str) -> kube::Client {
        let url = self.url().parse().expect("the emulator URL is a valid URI");
        let mut config = kube::Config::new(url);
        config.root_cert = Some(vec![self.ca_der.clone()]);
        config.auth_info = serde_json::from_value(json!({ "token": token }))
            .expect("an AuthInfo with only a token deserializes");
        kube::Client::try_from(config).expect("a client for a URL, CA and token builds")
    }

    /// A snapshot of the request counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Zeroes the request counters.
    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// Handle to inject faults.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    /// Stops serving: open watches end, connections close, background tasks stop.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}
