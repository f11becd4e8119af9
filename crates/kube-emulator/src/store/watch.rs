//! Opening watches on the store: replay from the event log (or the current state), then the
//! live feed, registered under the same lock so no event falls between the two.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{Event, Store, TooOld, WatcherSlot};

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchFrom {
    /// Synthetic ADDED events for every current object, then live events (resourceVersion unset
    /// or "0", as Kubernetes serves it).
    InitialState,
    /// Events after this resourceVersion.
    Version(u64),
}

/// An open watch: what to send first, then the live feed.
pub struct Subscription {
    /// Current objects to send as ADDED (InitialState only).
    pub initial: Vec<Arc<Value>>,
    /// Retained events after the requested version.
    pub replay: Vec<Arc<Event>>,
    /// Events committed after subscribing.
    pub live: mpsc::Receiver<Arc<Event>>,
    /// The store's resourceVersion when the watch was opened.
    pub opened_at: u64,
}

impl Store {
    /// Opens a watch on a resource (in one namespace or all).
    pub fn watch(
        &self,
        resource: &'static str,
        namespace: Option<&str>,
        from: WatchFrom,
    ) -> Result<Subscription, TooOld> {
        let mut inner = self.lock();
        let (initial, replay) = match from {
            WatchFrom::InitialState => {
                let table = inner.objects.get(resource);
                let initial = table
                    .map(|t| {
                        t.iter()
                            .filter(|(k, _)| namespace.is_none_or(|ns| k.0 == ns))
                            .map(|(_, v)| v.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                (initial, Vec::new())
            }
            WatchFrom::Version(rv) => {
                let replay = inner
                    .log
                    .since(rv)?
                    .into_iter()
                    .filter(|e| {
                        e.resource == resource && namespace.is_none_or(|ns| e.namespace == ns)
                    })
                    .collect();
                (Vec::new(), replay)
            }
        };
        let (tx, live) = mpsc::channel(self.watcher_buffer);
        inner.watchers.push(WatcherSlot {
            resource,
            namespace: namespace.map(str::to_string),
            tx,
        });
        Ok(Subscription {
            initial,
            replay,
            live,
            opened_at: inner.rv,
        })
    }

    /// Ends every open watch (their clients see the stream end and re-watch).
    pub fn close_watches(&self) {
        self.lock().watchers.clear();
    }

    /// Number of open watches.
    #[cfg(test)]
    pub fn watch_count(&self) -> usize {
        let mut inner = self.lock();
        inner.watchers.retain(|w| !w.tx.is_closed());
        inner.watchers.len()
    }
}
