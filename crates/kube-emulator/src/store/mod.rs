//! The object store: every object as JSON keyed by resource, namespace and name, one global
//! monotonic resourceVersion, a bounded event log for watch resumption, and fan-out of each
//! event to the open watches at the moment it is committed (under the same lock, so every
//! watch sees events in resourceVersion order with no gap between replay and live events).

pub mod events;
mod lookup;
mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::{Notify, mpsc};

pub use events::{Event, EventType, TooOld};
pub use watch::WatchFrom;

use crate::meta;

/// Why a store write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("object not found")]
    NotFound,
    #[error("object already exists")]
    AlreadyExists,
    #[error("resourceVersion precondition failed")]
    Conflict,
}

/// One page of a list.
pub struct Page {
    pub items: Vec<Arc<Value>>,
    /// Key of the last returned item when more remain.
    pub next: Option<(String, String)>,
    /// How many matching items remain after this page.
    pub remaining: usize,
    pub rv: u64,
}

type Key = (String, String);

struct WatcherSlot {
    resource: &'static str,
    namespace: Option<String>,
    tx: mpsc::Sender<Arc<Event>>,
}

struct Inner {
    rv: u64,
    objects: HashMap<&'static str, BTreeMap<Key, Arc<Value>>>,
    log: events::EventLog,
    watchers: Vec<WatcherSlot>,
    /// Namespaces with a deletionTimestamp: writes in them wake the namespace controller.
    terminating: HashSet<String>,
    /// Owner uid -> objects naming it in ownerReferences (for garbage collection).
    dependents: HashMap<String, BTreeSet<Dependent>>,
}

/// An object that names an owner: (resource, namespace, name).
pub type Dependent = (&'static str, String, String);

fn owner_uids(obj: &Value) -> Vec<&str> {
    meta::metadata(obj)
        .get("ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| refs.iter().filter_map(|r| r.get("uid")?.as_str()).collect())
        .unwrap_or_default()
}

/// The shared object store.
pub struct Store {
    inner: Mutex<Inner>,
    watcher_buffer: usize,
    /// Woken when a namespace starts terminating or anything in a terminating namespace changes.
    pub namespace_work: Notify,
}

fn key_of(obj: &Value) -> Key {
    (
        meta::namespace(obj).to_string(),
        meta::name(obj).to_string(),
    )
}

impl Inner {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn index_owners(&mut self, event: &Event) {
        let dependent = || {
            (
                event.resource,
                event.namespace.clone(),
                meta::name(&event.object).to_string(),
            )
        };
        if let Some(previous) = &event.previous {
            for uid in owner_uids(previous) {
                if let Some(set) = self.dependents.get_mut(uid) {
                    set.remove(&dependent());
                    if set.is_empty() {
                        self.dependents.remove(uid);
                    }
                }
            }
        }
        if event.event_type != EventType::Deleted {
            for uid in owner_uids(&event.object) {
                self.dependents
                    .entry(uid.to_string())
                    .or_default()
                    .insert(dependent());
            }
        }
    }

    fn publish(&mut self, event: Event) -> bool {
        self.index_owners(&event);
        let event = Arc::new(event);
        // A watch that cannot keep up is closed (as the apiserver does); its client resumes
        // from its last resourceVersion or relists.
        self.watchers.retain(|w| {
            let wanted = w.resource == event.resource
                && w.namespace
                    .as_deref()
                    .is_none_or(|ns| ns == event.namespace);
            !wanted || w.tx.try_send(event.clone()).is_ok()
        });
        let mut wake = self.terminating.contains(&event.namespace);
        if event.resource == "namespaces" {
            let name = meta::name(&event.object).to_string();
            if event.event_type == EventType::Deleted {
                self.terminating.remove(&name);
            } else if meta::is_deleting(&event.object) {
                wake |= self.terminating.insert(name);
            }
        }
        self.log.push(event);
        wake
    }

    /// The stored object at `key`, if its version is `expected_rv` (when given).
    fn expect_version(
        &mut self,
        resource: &'static str,
        key: &Key,
        expected_rv: Option<u64>,
    ) -> Result<Arc<Value>, StoreError> {
        let previous = self
            .table(resource)
            .get(key)
            .cloned()
            .ok_or(StoreError::NotFound)?;
        if expected_rv.is_some_and(|rv| rv != meta::resource_version(&previous)) {
            return Err(StoreError::Conflict);
        }
        Ok(previous)
    }

    fn table(&mut self, resource: &'static str) -> &mut BTreeMap<Key, Arc<Value>> {
        self.objects.entry(resource).or_default()
    }
}

fn stamp(obj: &mut Value, rv: u64) {
    meta::metadata_mut(obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
}

impl Store {
    /// An empty store keeping `watch_window` events for resumption.
    pub fn new(watch_window: usize) -> Self {
        Store {
            inner: Mutex::new(Inner {
                rv: 0,
                objects: HashMap::new(),
                log: events::EventLog::new(watch_window),
                watchers: Vec::new(),
                terminating: HashSet::new(),
                dependents: HashMap::new(),
            }),
            watcher_buffer: watch_window.clamp(1024, 100_000),
            namespace_work: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied write (every write is a
        // single insert/remove), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, wake: bool) {
        if wake {
            self.namespace_work.notify_one();
        }
    }

    /// The newest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Whether watches and continue tokens at `rv` can still be served.
    pub fn retains(&self, rv: u64) -> bool {
        self.lock().log.retains(rv)
    }

    /// One object.
    pub fn get(&self, resource: &'static str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let inner = self.lock();
        inner
            .objects
            .get(resource)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a resource (in one namespace, or all), ordered by namespace and name, after
    /// `after`, keeping those `filter` accepts, at most `limit` (0 = no limit).
    pub fn list_page(
        &self,
        resource: &'static str,
        namespace: Option<&str>,
        after: Option<&Key>,
        limit: usize,
        filter: &dyn Fn(&Value) -> bool,
    ) -> Page {
        let inner = self.lock();
        let rv = inner.rv;
        let Some(table) = inner.objects.get(resource) else {
            return Page {
                items: Vec::new(),
                next: None,
                remaining: 0,
                rv,
            };
        };
        let start = match (after, namespace) {
            (Some(k), _) => std::ops::Bound::Excluded(k.clone()),
            (None, Some(ns)) => std::ops::Bound::Included((ns.to_string(), String::new())),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0;
        for (key, obj) in table.range((start, std::ops::Bound::Unbounded)) {
            if namespace.is_some_and(|ns| key.0 != ns) {
                break;
            }
            if !filter(obj) {
                continue;
            }
            if limit == 0 || items.len() < limit {
                items.push(obj.clone());
                if limit != 0 && items.len() == limit {
                    next = Some(key.clone());
                }
            } else {
                remaining += 1;
            }
        }
        if remaining == 0 {
            next = None;
        }
        Page {
            items,
            next,
            remaining,
            rv,
        }
    }

    /// All objects of a resource in a namespace (or all namespaces).
    pub fn list(&self, resource: &'static str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        self.list_page(resource, namespace, None, 0, &|_| true)
            .items
    }

    /// Stores a new object, assigning its resourceVersion.
    pub fn create(&self, resource: &'static str, mut obj: Value) -> Result<Arc<Value>, StoreError> {
        let key = key_of(&obj);
        let mut inner = self.lock();
        if inner.table(resource).contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        let rv = inner.next_rv();
        stamp(&mut obj, rv);
        let obj = Arc::new(obj);
        inner.table(resource).insert(key.clone(), obj.clone());
        let wake = inner.publish(Event::new(
            rv,
            resource,
            key.0,
            EventType::Added,
            obj.clone(),
            None,
        ));
        drop(inner);
        self.finish(wake);
        Ok(obj)
    }

    /// Replaces an existing object if its stored resourceVersion is `expected_rv` (when given).
    pub fn update(
        &self,
        resource: &'static str,
        mut obj: Value,
        expected_rv: Option<u64>,
    ) -> Result<Arc<Value>, StoreError> {
        let key = key_of(&obj);
        let mut inner = self.lock();
        let previous = inner.expect_version(resource, &key, expected_rv)?;
        let rv = inner.next_rv();
        stamp(&mut obj, rv);
        let obj = Arc::new(obj);
        inner.table(resource).insert(key.clone(), obj.clone());
        let event = Event::new(
            rv,
            resource,
            key.0,
            EventType::Modified,
            obj.clone(),
            Some(previous),
        );
        let wake = inner.publish(event);
        drop(inner);
        self.finish(wake);
        Ok(obj)
    }

    /// Removes an object if its stored resourceVersion is `expected_rv` (when given); returns its
    /// last state at the deletion's resourceVersion, as DELETED events carry it.
    pub fn delete(
        &self,
        resource: &'static str,
        namespace: &str,
        name: &str,
        expected_rv: Option<u64>,
    ) -> Result<Arc<Value>, StoreError> {
        let key = (namespace.to_string(), name.to_string());
        let mut inner = self.lock();
        let previous = inner.expect_version(resource, &key, expected_rv)?;
        inner.table(resource).remove(&key);
        let rv = inner.next_rv();
        let mut last = (*previous).clone();
        stamp(&mut last, rv);
        let last = Arc::new(last);
        let event = Event::new(
            rv,
            resource,
            key.0,
            EventType::Deleted,
            last.clone(),
            Some(previous),
        );
        let wake = inner.publish(event);
        drop(inner);
        self.finish(wake);
        Ok(last)
    }

    /// Objects whose ownerReferences name the owner with this uid.
    pub fn dependents(&self, owner_uid: &str) -> Vec<Dependent> {
        let inner = self.lock();
        inner
            .dependents
            .get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Names of namespaces currently terminating.
    pub fn terminating_namespaces(&self) -> Vec<String> {
        let inner = self.lock();
        let mut v: Vec<String> = inner.terminating.iter().cloned().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests;
