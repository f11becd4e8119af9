//! Kubernetes Events on the roles ConfigMap, so `kubectl describe configmap vault-auth-roles`
//! shows what was applied and what was rejected.
//!
//! Written by hand rather than with `kube::runtime::events::Recorder` because the Recorder folds
//! events with the same reason into one series regardless of their message: two different invalid
//! entries would show as one. Deduplication here is by what is *currently* wrong: a condition (an
//! invalid entry, a failed step) is published when it appears, not again while it persists, and
//! again if it comes back after being fixed. A steady state therefore writes no events.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::core::v1::{EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::Mutex;
use tracing::warn;

/// Name the events are reported under.
pub const REPORTING_CONTROLLER: &str = "vault-auth-kubernetes";

/// Severity of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// Something was applied.
    Normal,
    /// Something was rejected or could not be done.
    Warning,
}

/// One event to publish.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Notice {
    pub kind: EventKind,
    /// CamelCase reason, e.g. `InvalidRole`.
    pub reason: String,
    /// Action the event is about, e.g. `Validate`, `CreateRole`.
    pub action: String,
    /// Human message (at most 1 kB; longer messages are cut).
    pub message: String,
}

impl Notice {
    /// A Normal notice.
    pub fn normal(reason: &str, action: &str, message: impl Into<String>) -> Self {
        Notice {
            kind: EventKind::Normal,
            reason: reason.to_string(),
            action: action.to_string(),
            message: message.into(),
        }
    }

    /// A Warning notice.
    pub fn warning(reason: &str, action: &str, message: impl Into<String>) -> Self {
        Notice {
            kind: EventKind::Warning,
            reason: reason.to_string(),
            action: action.to_string(),
            message: message.into(),
        }
    }
}

/// Publishes events about one object.
pub struct EventPublisher {
    client: kube::Client,
    instance: String,
    active: Mutex<BTreeSet<Notice>>,
}

impl EventPublisher {
    /// `instance` distinguishes replicas (the pod name in a cluster).
    pub fn new(client: kube::Client, instance: String) -> Self {
        EventPublisher {
            client,
            instance,
            active: Mutex::new(BTreeSet::new()),
        }
    }

    /// Publishes a one-off event (something was just done).
    pub async fn publish(&self, regarding: &ObjectReference, notice: &Notice) {
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let event = self.build(regarding, notice);
        let result = events.create(&PostParams::default(), &event).await;
        if let Err(error) = result {
            // An event that cannot be written must not fail the sync: it is a report, not a step.
            warn!(%error, reason = %notice.reason, "could not publish event");
        }
    }

    /// Publishes the conditions that hold now and were not published while they held before.
    /// Returns how many events were written.
    pub async fn report_conditions(
        &self,
        regarding: &ObjectReference,
        conditions: BTreeSet<Notice>,
    ) -> usize {
        let mut active = self.active.lock().await;
        let fresh: Vec<&Notice> = conditions.difference(&active).collect();
        for notice in &fresh {
            self.publish(regarding, notice).await;
        }
        let written = fresh.len();
        *active = conditions;
        written
    }

    /// A core/v1 Event, as client-go's recorder writes them: the API that takes
    /// firstTimestamp, lastTimestamp, count and source (events.k8s.io/v1 refuses them on
    /// create), which `kubectl get events --sort-by=.lastTimestamp` and `kubectl describe`
    /// show; eventTime and the reporting fields too, for `kubectl events` and the
    /// events.k8s.io view of the same object.
    fn build(&self, regarding: &ObjectReference, notice: &Notice) -> Event {
        let now = Timestamp::now();
        let base = regarding.name.as_deref().unwrap_or(REPORTING_CONTROLLER);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..Default::default()
            },
            involved_object: regarding.clone(),
            event_time: Some(MicroTime(now)),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            source: Some(EventSource {
                component: Some(REPORTING_CONTROLLER.to_string()),
                host: Some(self.instance.clone()),
            }),
            type_: Some(
                match notice.kind {
                    EventKind::Normal => "Normal",
                    EventKind::Warning => "Warning",
                }
                .to_string(),
            ),
            reason: Some(notice.reason.clone()),
            action: Some(notice.action.clone()),
            message: Some(truncate(&notice.message, 1024)),
            reporting_component: Some(REPORTING_CONTROLLER.to_string()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        }
    }
}

fn truncate(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_string();
    }
    let mut end = max - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        let long = "é".repeat(600);
        let cut = truncate(&long, 1024);
        assert!(cut.len() <= 1024 && cut.ends_with("..."));
    }
}
