//! Prometheus metrics (prometheus-client), shared by every part of the controller.
//!
//! [`Metrics`] is cheap to clone; every clone updates the same series. Labels never carry
//! secrets: operations are fixed names such as `write_role`, never paths with tokens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set of a request to Vault.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VaultRequestLabels {
    /// Fixed operation name, e.g. `read_role`.
    pub operation: String,
    /// HTTP status code, or `error` when no answer came back.
    pub code: String,
}

/// Label set of a request to the Kubernetes API, as client-go's `rest_client_requests_total`
/// and the API server's audit log name them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubernetesRequestLabels {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// The resource, with its subresource: `serviceaccounts`, `serviceaccounts/token`.
    pub resource: String,
    /// HTTP status code, or `error` when no answer came back.
    pub code: String,
}

/// Labels of `build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
    rustc: String,
}

/// Buckets of the request duration histograms: 1 ms to ~33 s, doubling (a loopback answer to
/// the 30 s request timeout).
fn request_duration() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Label set of a reconciliation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error`.
    pub result: String,
}

/// All metrics of the controller.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    reconciliations: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    vault_requests: Family<VaultRequestLabels, Counter>,
    vault_request_duration: Family<VaultRequestLabels, Histogram, fn() -> Histogram>,
    kubernetes_requests: Family<KubernetesRequestLabels, Counter>,
    kubernetes_request_duration: Family<KubernetesRequestLabels, Histogram, fn() -> Histogram>,
    managed_roles: Gauge,
    managed_service_accounts: Gauge,
    invalid_entries: Gauge,
    last_success_millis: Arc<AtomicU64>,
    vault_token_ttl: Gauge<f64, AtomicU64>,
    leader: Gauge,
    second_writer: Gauge,
    in_flight: InFlight,
}

/// Requests sent and not yet answered, so readiness can tell a Vault or Kubernetes API that
/// hangs (accepts connections, never answers) from one that is merely quiet.
#[derive(Default)]
struct InFlight {
    next: AtomicU64,
    started: std::sync::Mutex<std::collections::HashMap<u64, (&'static str, std::time::Instant)>>,
}

/// Held while a request is in flight; dropping it (answer, error or cancellation) ends it.
pub struct InFlightGuard {
    metrics: Metrics,
    id: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.metrics
            .inner
            .in_flight
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the metrics and registers them under the `vault_auth_kubernetes` prefix.
    pub fn new() -> Self {
        // The controller's metrics under the `vault_auth_kubernetes` prefix; the process
        // metrics (registered last, on the root) under their standard unprefixed names.
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("vault_auth_kubernetes");
        let reconciliations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciliations",
            "Full synchronisation passes, by result",
            reconciliations.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a synchronisation pass",
            reconcile_duration.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "Always 1: the version, git revision and compiler of this binary",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                revision: env!("VAK_GIT_REVISION").to_string(),
                rustc: env!("VAK_RUSTC_VERSION").to_string(),
            })
            .set(1);
        let vault_requests = Family::<VaultRequestLabels, Counter>::default();
        registry.register(
            "vault_requests",
            "Requests to Vault, by operation and HTTP status code (error: no answer)",
            vault_requests.clone(),
        );
        let vault_request_duration =
            Family::<VaultRequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                request_duration,
            );
        registry.register(
            "vault_request_duration_seconds",
            "Time from sending a request to Vault to its whole answer, by operation and code",
            vault_request_duration.clone(),
        );
        let kubernetes_requests = Family::<KubernetesRequestLabels, Counter>::default();
        registry.register(
            "kubernetes_requests",
            "Requests to the Kubernetes API (watches and lists included), by verb, resource and \
             HTTP status code (error: no answer)",
            kubernetes_requests.clone(),
        );
        let kubernetes_request_duration =
            Family::<KubernetesRequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                request_duration,
            );
        registry.register(
            "kubernetes_request_duration_seconds",
            "Time from sending a request to the Kubernetes API to its response head (for a \
             watch: until it is accepted), by verb, resource and code",
            kubernetes_request_duration.clone(),
        );
        let managed_roles = Gauge::default();
        registry.register(
            "managed_roles",
            "Roles in Vault at the controller's auth mount, as Vault listed them in the last pass",
            managed_roles.clone(),
        );
        let managed_service_accounts = Gauge::default();
        registry.register(
            "managed_service_accounts",
            "ServiceAccounts annotated vak-managed: \"true\" after the last pass, as Kubernetes \
             confirmed them",
            managed_service_accounts.clone(),
        );
        let invalid_entries = Gauge::default();
        registry.register(
            "invalid_configmap_entries",
            "Entries of the roles ConfigMap rejected by validation in the last pass",
            invalid_entries.clone(),
        );
        let last_success_millis = Arc::new(AtomicU64::new(0));
        registry.register_collector(Box::new(LastSuccess(last_success_millis.clone())));
        let vault_token_ttl = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "vault_token_ttl_seconds",
            "Remaining time to live of the controller's Vault token (0: none held; +Inf: a \
             token that never expires)",
            vault_token_ttl.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 when this instance is the leader and may write, else 0",
            leader.clone(),
        );
        let second_writer = Gauge::default();
        registry.register(
            "second_writer",
            "1 while another controller claims the writer Lease of this namespace (two \
             controllers writing the same mount without leader election), else 0",
            second_writer.clone(),
        );
        root.register_collector(Box::new(crate::process_metrics::ProcessMetrics));
        Metrics {
            inner: Arc::new(Inner {
                registry: root,
                reconciliations,
                reconcile_duration,
                vault_requests,
                vault_request_duration,
                kubernetes_requests,
                kubernetes_request_duration,
                managed_roles,
                managed_service_accounts,
                invalid_entries,
                last_success_millis,
                vault_token_ttl,
                leader,
                second_writer,
                in_flight: InFlight::default(),
            }),
        }
    }

    /// Registers a request to `target` ("Vault" or "Kubernetes") as in flight until the guard
    /// is dropped.
    pub fn request_in_flight(&self, target: &'static str) -> InFlightGuard {
        let id = self.inner.in_flight.next.fetch_add(1, Ordering::Relaxed);
        self.inner
            .in_flight
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (target, std::time::Instant::now()));
        InFlightGuard {
            metrics: self.clone(),
            id,
        }
    }

    /// The request waiting longest for its answer: its target and how long it has waited.
    pub fn oldest_in_flight(&self) -> Option<(&'static str, std::time::Duration)> {
        self.inner
            .in_flight
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .min_by_key(|(_, started)| *started)
            .map(|(target, started)| (*target, started.elapsed()))
    }

    /// Counts a request to Vault and its duration. `status` is the HTTP status, or `None` when
    /// none came back.
    pub fn vault_request(&self, operation: &str, status: Option<u16>, seconds: f64) {
        let labels = VaultRequestLabels {
            operation: operation.to_string(),
            code: code(status),
        };
        self.inner.vault_requests.get_or_create(&labels).inc();
        self.inner
            .vault_request_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Counts a request to the Kubernetes API and its duration.
    pub fn kubernetes_request(
        &self,
        verb: &str,
        resource: &str,
        status: Option<u16>,
        seconds: f64,
    ) {
        let labels = KubernetesRequestLabels {
            verb: verb.to_string(),
            resource: resource.to_string(),
            code: code(status),
        };
        self.inner.kubernetes_requests.get_or_create(&labels).inc();
        self.inner
            .kubernetes_request_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Records the outcome and duration of a synchronisation pass.
    pub fn reconciled(&self, success: bool, seconds: f64) {
        let result = if success { "success" } else { "error" };
        self.inner
            .reconciliations
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        self.inner.reconcile_duration.observe(seconds);
        if success {
            self.inner
                .last_success_millis
                .store(unix_millis(), Ordering::SeqCst);
        }
    }

    /// Sets the number of managed roles, ServiceAccounts and rejected entries.
    pub fn set_managed(&self, roles: usize, service_accounts: usize, invalid_entries: usize) {
        self.inner.managed_roles.set(roles as i64);
        self.inner
            .managed_service_accounts
            .set(service_accounts as i64);
        self.inner.invalid_entries.set(invalid_entries as i64);
    }

    /// Sets the remaining TTL of the Vault token (0 when none is held).
    pub fn set_vault_token_ttl(&self, seconds: f64) {
        self.inner.vault_token_ttl.set(seconds);
    }

    /// Sets whether this instance leads.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// Whether another controller was seen writing (see `k8s::second_writer`).
    pub fn set_second_writer(&self, seen: bool) {
        self.inner.second_writer.set(i64::from(seen));
    }

    /// The metrics in Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The Unix time of the last successful sync (`last_successful_sync_timestamp_seconds`, 0
/// before the first), read at scrape time. An alert computes the age with `time() - ...`, as
/// for every `*_timestamp_seconds` metric, so no sentinel value is needed.
#[derive(Debug)]
struct LastSuccess(Arc<AtomicU64>);

impl Collector for LastSuccess {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let last = self.0.load(Ordering::SeqCst);
        let gauge = ConstGauge::new(last as f64 / 1000.0);
        let metric = encoder.encode_descriptor(
            "last_successful_sync_timestamp_seconds",
            "Unix time of the last successful full synchronisation (0: none yet)",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

fn code(status: Option<u16>) -> String {
    status.map_or_else(|| "error".to_string(), |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counted_requests_with_labels() {
        let m = Metrics::new();
        m.vault_request("write_role", Some(204), 0.002);
        m.vault_request("write_role", Some(204), 0.003);
        m.vault_request("login", None, 30.0);
        m.kubernetes_request("create", "serviceaccounts", Some(201), 0.004);
        let text = m.encode();
        for expected in [
            "vault_auth_kubernetes_vault_requests_total{operation=\"write_role\",code=\"204\"} 2",
            "vault_auth_kubernetes_vault_requests_total{operation=\"login\",code=\"error\"} 1",
            "vault_auth_kubernetes_vault_request_duration_seconds_count{operation=\"write_role\",code=\"204\"} 2",
            "vault_auth_kubernetes_kubernetes_requests_total{verb=\"create\",resource=\"serviceaccounts\",code=\"201\"} 1",
            "vault_auth_kubernetes_last_successful_sync_timestamp_seconds 0",
            "vault_auth_kubernetes_build_info{version=\"",
            "process_resident_memory_bytes ",
        ] {
            assert!(text.contains(expected), "{expected} missing:\n{text}");
        }
        assert!(!text.contains("seconds_since"), "{text}");
        m.reconciled(true, 0.1);
        let text = m.encode();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("vault_auth_kubernetes_last_successful_sync_timestamp_seconds ")
            })
            .expect("last-sync sample");
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let now = unix_millis() as f64 / 1000.0;
        assert!((now - 5.0..=now).contains(&value), "{line}");
    }
}
