//! A watch cache for the kinds that come by the thousand (namespaces, ServiceAccounts): it keeps
//! one small struct per object, holding only what the controller decides on, and hands out the
//! whole list as one shared `Arc` without copying it.
//!
//! Why not kube-runtime's reflector `Store` here: it keeps every object whole (its metadata
//! struct, type meta and an `Arc` per object) and hands out a fresh `Vec` of them, so a pass had
//! to copy 25,000 objects into its own structs; at 10,000 namespaces that was most of the
//! controller's memory. The watcher itself (list, watch, bookmarks, relists) is kube-runtime's.
//!
//! The list is copy-on-write: a change while no pass holds the list edits it in place, a change
//! while one does copies it once. A list handed out is never changed, so two lists are the same
//! list exactly when they are the same allocation (what [`crate::sync`] relies on to skip work).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// An object's key in the store (`namespace/name`, or the name of a cluster-scoped object).
pub type Key = String;

/// What a store holds: a small struct that knows its object's key.
pub trait Keyed {
    /// The object's key.
    fn key(&self) -> Key;
}

/// The shared state of a [`CompactStore`].
struct Inner<T> {
    items: Arc<Vec<T>>,
    /// Position of each key in `items`.
    index: HashMap<Key, usize>,
    /// A relist in progress: what it has listed so far. Swapped in when it is done, so a pass
    /// never sees a half-listed cluster.
    relist: Option<(Vec<T>, HashMap<Key, usize>)>,
}

/// The reading side: cheap to clone, shared with the task that applies the watch's events.
pub struct CompactStore<T> {
    inner: Arc<Mutex<Inner<T>>>,
    ready: watch::Receiver<bool>,
}

impl<T> Clone for CompactStore<T> {
    fn clone(&self) -> Self {
        CompactStore {
            inner: self.inner.clone(),
            ready: self.ready.clone(),
        }
    }
}

/// The writing side, owned by the watch task.
pub struct Writer<T> {
    inner: Arc<Mutex<Inner<T>>>,
    ready: watch::Sender<bool>,
}

/// A new, empty store (not ready until its first list is done).
pub fn store<T>() -> (CompactStore<T>, Writer<T>) {
    let inner = Arc::new(Mutex::new(Inner {
        items: Arc::new(Vec::new()),
        index: HashMap::new(),
        relist: None,
    }));
    let (ready_tx, ready_rx) = watch::channel(false);
    (
        CompactStore {
            inner: inner.clone(),
            ready: ready_rx,
        },
        Writer {
            inner,
            ready: ready_tx,
        },
    )
}

impl<T> CompactStore<T> {
    /// Every object, as the last applied event left them.
    pub fn list(&self) -> Arc<Vec<T>> {
        lock(&self.inner).items.clone()
    }

    /// Waits for the first complete list; fails when the watch task ended before it.
    pub async fn wait_until_ready(&self) -> Result<(), watch::error::RecvError> {
        let mut ready = self.ready.clone();
        ready.wait_for(|ready| *ready).await.map(|_| ())
    }
}

fn lock<T>(inner: &Mutex<Inner<T>>) -> std::sync::MutexGuard<'_, Inner<T>> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Clone + Keyed> Writer<T> {
    /// A relist starts: what it lists replaces everything when it is done.
    pub fn relist_started(&self) {
        lock(&self.inner).relist = Some((Vec::new(), HashMap::new()));
    }

    /// An object of the relist in progress.
    pub fn relisted(&self, item: T) {
        let mut inner = lock(&self.inner);
        if let Some((items, index)) = inner.relist.as_mut() {
            upsert(items, index, item);
        }
    }

    /// The relist is done: its objects are now the store's.
    pub fn relist_done(&self) {
        let mut inner = lock(&self.inner);
        if let Some((items, index)) = inner.relist.take() {
            inner.items = Arc::new(items);
            inner.index = index;
        }
        self.ready.send_replace(true);
    }

    /// An object was added or changed.
    pub fn apply(&self, item: T) {
        let inner = &mut *lock(&self.inner);
        upsert(Arc::make_mut(&mut inner.items), &mut inner.index, item);
    }

    /// An object was deleted (`item`: its last state).
    pub fn delete(&self, item: &T) {
        let inner = &mut *lock(&self.inner);
        let Some(at) = inner.index.remove(&item.key()) else {
            return;
        };
        let items = Arc::make_mut(&mut inner.items);
        items.swap_remove(at);
        // The last item moved into the hole: point its key there.
        if let Some(moved) = items.get(at) {
            inner.index.insert(moved.key(), at);
        }
    }
}

fn upsert<T: Keyed>(items: &mut Vec<T>, index: &mut HashMap<Key, usize>, item: T) {
    let key = item.key();
    match index.get(&key) {
        Some(&at) => items[at] = item,
        None => {
            index.insert(key, items.len());
            items.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Keyed for (String, u32) {
        fn key(&self) -> Key {
            self.0.clone()
        }
    }

    fn sorted(store: &CompactStore<(String, u32)>) -> Vec<(String, u32)> {
        let mut items = (*store.list()).clone();
        items.sort();
        items
    }

    fn item(name: &str, v: u32) -> (String, u32) {
        (name.to_string(), v)
    }

    #[tokio::test]
    async fn applies_events_and_swaps_in_relists_whole() {
        let (store, writer) = store();
        writer.relist_started();
        writer.relisted(item("a", 1));
        writer.relisted(item("b", 1));
        assert!(store.list().is_empty(), "a half-done list is not shown");
        writer.relist_done();
        store.wait_until_ready().await.unwrap();
        assert_eq!(sorted(&store), [item("a", 1), item("b", 1)]);

        writer.apply(item("a", 2));
        writer.apply(item("c", 1));
        writer.delete(&item("a", 0));
        writer.delete(&item("missing", 0));
        assert_eq!(sorted(&store), [item("b", 1), item("c", 1)]);
        // The index still finds every key after the swap_remove.
        writer.apply(item("c", 2));
        writer.delete(&item("b", 0));
        assert_eq!(sorted(&store), [item("c", 2)]);

        writer.relist_started();
        writer.relisted(item("d", 1));
        writer.relist_done();
        assert_eq!(sorted(&store), [item("d", 1)]);
    }

    /// A list handed out never changes, and a change gives a list of another identity even
    /// when nothing held the old one strongly (what the pass's reuse checks).
    #[test]
    fn lists_handed_out_are_immutable_and_changes_change_identity() {
        let (store, writer) = store();
        writer.relist_started();
        writer.relist_done();
        writer.apply(item("a", 1));
        let before = store.list();
        writer.apply(item("a", 2));
        assert_eq!(*before, [item("a", 1)]);
        assert!(!Arc::ptr_eq(&before, &store.list()));

        let weak = Arc::downgrade(&store.list());
        writer.apply(item("b", 1));
        assert!(!std::ptr::eq(weak.as_ptr(), Arc::as_ptr(&store.list())));
    }
}
