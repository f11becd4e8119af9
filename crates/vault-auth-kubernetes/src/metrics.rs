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

/// Label set of a request to Vault or Kubernetes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Fixed operation name, e.g. `read_role`.
    pub operation: String,
    /// HTTP status code, or `error` when no answer came back.
    pub status: String,
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
    vault_requests: Family<RequestLabels, Counter>,
    kubernetes_requests: Family<RequestLabels, Counter>,
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
        let mut registry = Registry::with_prefix("vault_auth_kubernetes");
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
        let vault_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "vault_requests",
            "Requests to Vault, by operation and HTTP status",
            vault_requests.clone(),
        );
        let kubernetes_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kubernetes_requests",
            "Requests to the Kubernetes API, by operation and HTTP status",
            kubernetes_requests.clone(),
        );
        let managed_roles = Gauge::default();
        registry.register(
            "managed_roles",
            "Vault roles the ConfigMap defines and the controller keeps in sync",
            managed_roles.clone(),
        );
        let managed_service_accounts = Gauge::default();
        registry.register(
            "managed_service_accounts",
            "ServiceAccounts the controller manages",
            managed_service_accounts.clone(),
        );
        let invalid_entries = Gauge::default();
        registry.register(
            "invalid_configmap_entries",
            "Entries of the roles ConfigMap rejected by validation in the last pass",
            invalid_entries.clone(),
        );
        let last_success_millis = Arc::new(AtomicU64::new(0));
        registry.register_collector(Box::new(SinceLastSuccess(last_success_millis.clone())));
        let vault_token_ttl = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "vault_token_ttl_seconds",
            "Remaining time to live of the controller's Vault token",
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
            "1 while another controller renews the writer Lease of this namespace (two \
             controllers writing the same mount without leader election), else 0",
            second_writer.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                reconciliations,
                reconcile_duration,
                vault_requests,
                kubernetes_requests,
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

    /// Counts a request to Vault. `status` is the HTTP status, or `None` when none came back.
    pub fn vault_request(&self, operation: &str, status: Option<u16>) {
        self.inner
            .vault_requests
            .get_or_create(&request_labels(operation, status))
            .inc();
    }

    /// Counts a request to the Kubernetes API.
    pub fn kubernetes_request(&self, operation: &str, status: Option<u16>) {
        self.inner
            .kubernetes_requests
            .get_or_create(&request_labels(operation, status))
            .inc();
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

/// The last successful sync, from one recorded instant: its Unix time
/// (`last_successful_sync_timestamp_seconds`, 0 before the first) and the seconds since
/// (`seconds_since_last_successful_sync`, -1 before the first), computed at scrape time so an
/// alert needs no arithmetic and no ticking task keeps it fresh.
#[derive(Debug)]
struct SinceLastSuccess(Arc<AtomicU64>);

impl Collector for SinceLastSuccess {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let last = self.0.load(Ordering::SeqCst);
        let since = if last == 0 {
            -1.0
        } else {
            unix_millis().saturating_sub(last) as f64 / 1000.0
        };
        for (name, help, value) in [
            (
                "last_successful_sync_timestamp_seconds",
                "Unix time of the last successful full synchronisation (0: none yet)",
                last as f64 / 1000.0,
            ),
            (
                "seconds_since_last_successful_sync",
                "Seconds since the last successful full synchronisation (-1: none yet)",
                since,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

fn request_labels(operation: &str, status: Option<u16>) -> RequestLabels {
    RequestLabels {
        operation: operation.to_string(),
        status: status.map_or_else(|| "error".to_string(), |s| s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counted_requests_with_labels() {
        let m = Metrics::new();
        m.vault_request("write_role", Some(204));
        m.vault_request("write_role", Some(204));
        m.vault_request("login", None);
        let text = m.encode();
        assert!(
            text.contains(
                "vault_auth_kubernetes_vault_requests_total{operation=\"write_role\",status=\"204\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("operation=\"login\",status=\"error\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vault_auth_kubernetes_seconds_since_last_successful_sync -1"),
            "{text}"
        );
        m.reconciled(true, 0.1);
        let text = m.encode();
        let line = text
            .lines()
            .find(|l| l.starts_with("vault_auth_kubernetes_seconds_since_last_successful_sync "))
            .expect("since-last-sync sample");
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((0.0..5.0).contains(&value), "{line}");
    }
}
