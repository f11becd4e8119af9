//! What the controller and every online command share, built once: the Kubernetes client and
//! the cluster facts Vault needs, the Vault client, the settings, the metrics and the Events
//! publisher. Passed around as `Arc<Context>`.

use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::error::Result;
use crate::k8s::cluster::{self, ClusterInfo};
use crate::k8s::events::EventPublisher;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::vault::VaultClient;

/// Clients, settings, metrics and the Events publisher.
pub struct Context {
    /// Kubernetes client (every request counted in `metrics`).
    pub client: kube::Client,
    /// Vault client (no request until the first call).
    pub vault: VaultClient,
    /// Validated settings.
    pub settings: Settings,
    /// How Vault reaches this cluster's API (host and CA).
    pub cluster: ClusterInfo,
    /// Metrics every part updates.
    pub metrics: Metrics,
    /// Events on the roles ConfigMap.
    pub events: EventPublisher,
}

impl Context {
    /// Connects to the cluster and prepares the Vault client (no Vault request yet).
    pub async fn connect(settings: Settings) -> Result<Arc<Context>> {
        // reqwest is built without a bundled crypto provider; ring is the one rustls uses here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let metrics = Metrics::new();
        let (client, cluster) = cluster::connect(&settings, &metrics).await?;
        info!(
            kubernetes_host = %cluster.host,
            ca_certificates = cluster.ca_pem.matches("BEGIN CERTIFICATE").count(),
            "cluster connection"
        );
        let vault = VaultClient::new(settings.vault.clone(), metrics.clone())?;
        let events = EventPublisher::new(client.clone(), instance_name());
        Ok(Arc::new(Context {
            client,
            vault,
            settings,
            cluster,
            metrics,
            events,
        }))
    }

    /// For the short-lived commands, at exit: revokes the token their AppRole login obtained,
    /// so a CronJob running `sync --once` leaves no token or lease behind. An operator's own
    /// token is left alone. A failure is a warning (the token then lives until its TTL ends),
    /// not a failure of the command, whose work is done.
    pub async fn revoke_token(&self) {
        match self.vault.revoke_own_token().await {
            Ok(true) => debug!("revoked the Vault token of this command"),
            Ok(false) => {}
            Err(error) => warn!(
                %error,
                "could not revoke the Vault token of this command; it expires at the end of its TTL"
            ),
        }
    }
}

/// Name of this replica for Events and the leader Lease: the pod name when set (POD_NAME),
/// else the host name.
pub fn instance_name() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "vault-auth-kubernetes".to_string())
}
