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
//!
//! Each change is also logged by group (a ServiceAccount's namespace, a namespace's name), so a
//! pass can ask which namespaces changed since the list it last planned from and plan only
//! those again. The log is short and a relist starts a new one: a question it cannot answer
//! gets `None`, and the asker computes everything again.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Mutex};

use hashbrown::HashTable;

use tokio::sync::watch;

/// What a store holds: a small struct that knows its object's key.
pub trait Keyed {
    /// What tells the objects apart (namespace and name, or the name of a cluster-scoped
    /// object), borrowed from the object.
    type Key<'a>: Hash + Eq
    where
        Self: 'a;
    /// The object's key.
    fn key(&self) -> Self::Key<'_>;
    /// The group its changes are logged under: a namespaced object's namespace, a namespace's
    /// own name.
    fn group(&self) -> Arc<str>;
}

/// Where a list stands in its store's change log: two lists of one store with the same
/// version are the same list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    /// Starts again at every relist (a relist's changes are not logged).
    epoch: u64,
    /// Changes applied in this epoch.
    seq: u64,
}

/// The groups of the last changes, oldest first. Bounded: a pass that fell further behind than
/// this plans everything again, which costs less than the changes it missed.
struct ChangeLog {
    epoch: u64,
    /// The sequence number of `groups[0]`.
    first: u64,
    groups: VecDeque<Arc<str>>,
}

/// How many changes the log keeps.
const LOG_LIMIT: usize = 4096;

impl ChangeLog {
    fn version(&self) -> Version {
        Version {
            epoch: self.epoch,
            seq: self.first + self.groups.len() as u64,
        }
    }

    fn record(&mut self, group: Arc<str>) {
        if self.groups.len() == LOG_LIMIT {
            self.groups.pop_front();
            self.first += 1;
        }
        self.groups.push_back(group);
    }

    fn restart(&mut self) {
        self.epoch += 1;
        self.first = 0;
        self.groups.clear();
    }

    /// The groups changed after `from` up to `to`; None when the log no longer holds them all.
    fn between(&self, from: Version, to: Version) -> Option<HashSet<Arc<str>>> {
        let now = self.version();
        if from.epoch != self.epoch
            || to.epoch != self.epoch
            || from.seq < self.first
            || from.seq > to.seq
            || to.seq > now.seq
        {
            return None;
        }
        let start = usize::try_from(from.seq - self.first).ok()?;
        let end = usize::try_from(to.seq - self.first).ok()?;
        Some(self.groups.range(start..end).cloned().collect())
    }
}

/// The position of each object in a store's list, found by its key's hash and checked
/// against the object there: the table holds a `u32` per object, not a copy of its key (a
/// `HashMap` from keys held a second copy of tens of thousands of keys).
#[derive(Default)]
struct Index {
    table: HashTable<u32>,
    hasher: RandomState,
}

impl Index {
    fn hash<T: Keyed>(&self, item: &T) -> u64 {
        self.hasher.hash_one(item.key())
    }

    /// Where `item`'s object is in `items`.
    fn find<T: Keyed>(&self, items: &[T], item: &T) -> Option<usize> {
        let key = item.key();
        self.table
            .find(self.hash(item), |&at| items[at as usize].key() == key)
            .map(|&at| at as usize)
    }

    /// Records that the object at `at` (already in `items`) is there.
    fn insert<T: Keyed>(&mut self, items: &[T], at: usize) {
        let hasher = &self.hasher;
        self.table
            .insert_unique(hasher.hash_one(items[at].key()), position(at), |&i| {
                hasher.hash_one(items[i as usize].key())
            });
    }

    /// Forgets the position `at` of `item`.
    fn remove<T: Keyed>(&mut self, item: &T, at: usize) {
        if let Ok(entry) = self
            .table
            .find_entry(self.hash(item), |&i| i as usize == at)
        {
            entry.remove();
        }
    }

    /// `item` moved from position `from` to `to`.
    fn moved<T: Keyed>(&mut self, item: &T, from: usize, to: usize) {
        if let Some(slot) = self
            .table
            .find_mut(self.hash(item), |&i| i as usize == from)
        {
            *slot = position(to);
        }
    }
}

fn position(at: usize) -> u32 {
    u32::try_from(at).expect("fewer than 2^32 objects")
}

/// The shared state of a [`CompactStore`].
struct Inner<T: Keyed> {
    items: Arc<Vec<T>>,
    /// Position of each key in `items`.
    index: Index,
    /// A relist in progress: what it has listed so far. Swapped in when it is done, so a pass
    /// never sees a half-listed cluster.
    relist: Option<(Vec<T>, Index)>,
    log: ChangeLog,
}

/// The reading side: cheap to clone, shared with the task that applies the watch's events.
pub struct CompactStore<T: Keyed> {
    inner: Arc<Mutex<Inner<T>>>,
    ready: watch::Receiver<bool>,
}

impl<T: Keyed> Clone for CompactStore<T> {
    fn clone(&self) -> Self {
        CompactStore {
            inner: self.inner.clone(),
            ready: self.ready.clone(),
        }
    }
}

/// The writing side, owned by the watch task.
pub struct Writer<T: Keyed> {
    inner: Arc<Mutex<Inner<T>>>,
    ready: watch::Sender<bool>,
}

/// A new, empty store (not ready until its first list is done).
pub fn store<T: Keyed>() -> (CompactStore<T>, Writer<T>) {
    let inner = Arc::new(Mutex::new(Inner {
        items: Arc::new(Vec::new()),
        index: Index::default(),
        relist: None,
        log: ChangeLog {
            epoch: 0,
            first: 0,
            groups: VecDeque::new(),
        },
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

impl<T: Keyed> CompactStore<T> {
    /// Every object, as the last applied event left them.
    pub fn list(&self) -> Arc<Vec<T>> {
        lock(&self.inner).items.clone()
    }

    /// Every object, and a cursor that can tell which groups changed since an earlier one.
    pub fn listing(&self) -> (Arc<Vec<T>>, Cursor<T>) {
        let inner = lock(&self.inner);
        let cursor = Cursor {
            store: self.clone(),
            at: inner.log.version(),
        };
        (inner.items.clone(), cursor)
    }

    /// True once the first complete list is in.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits for the first complete list; fails when the watch task ended before it.
    pub async fn wait_until_ready(&self) -> Result<(), watch::error::RecvError> {
        let mut ready = self.ready.clone();
        ready.wait_for(|ready| *ready).await.map(|_| ())
    }
}

/// A list's place in its store's change log (see [`CompactStore::listing`]).
pub struct Cursor<T: Keyed> {
    store: CompactStore<T>,
    at: Version,
}

impl<T: Keyed> Clone for Cursor<T> {
    fn clone(&self) -> Self {
        Cursor {
            store: self.store.clone(),
            at: self.at,
        }
    }
}

impl<T: Keyed> std::fmt::Debug for Cursor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor").field("at", &self.at).finish()
    }
}

impl<T: Keyed> Cursor<T> {
    /// Its version, to keep and ask [`Cursor::changed_since`] with later.
    pub fn version(&self) -> Version {
        self.at
    }

    /// The groups whose objects changed between the list of `earlier` and this one; None when
    /// that is no longer known (a relist came between, or too many changes).
    pub fn changed_since(&self, earlier: Version) -> Option<HashSet<Arc<str>>> {
        lock(&self.store.inner).log.between(earlier, self.at)
    }
}

fn lock<T: Keyed>(inner: &Mutex<Inner<T>>) -> std::sync::MutexGuard<'_, Inner<T>> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Clone + Keyed> Writer<T> {
    /// A relist starts: what it lists replaces everything when it is done.
    pub fn relist_started(&self) {
        lock(&self.inner).relist = Some((Vec::new(), Index::default()));
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
            inner.log.restart();
        }
        self.ready.send_replace(true);
    }

    /// An object was added or changed.
    pub fn apply(&self, item: T) {
        let inner = &mut *lock(&self.inner);
        inner.log.record(item.group());
        upsert(Arc::make_mut(&mut inner.items), &mut inner.index, item);
    }

    /// An object was deleted (`item`: its last state).
    pub fn delete(&self, item: &T) {
        let inner = &mut *lock(&self.inner);
        let Some(at) = inner.index.find(&inner.items, item) else {
            return;
        };
        inner.index.remove(item, at);
        inner.log.record(item.group());
        let items = Arc::make_mut(&mut inner.items);
        items.swap_remove(at);
        // The last item moved into the hole: point its entry there.
        if let Some(moved) = items.get(at) {
            inner.index.moved(moved, items.len(), at);
        }
    }
}

fn upsert<T: Keyed>(items: &mut Vec<T>, index: &mut Index, item: T) {
    match index.find(items, &item) {
        Some(at) => items[at] = item,
        None => {
            // Grown by an eighth, not doubled: a cold start adds ten thousand ServiceAccounts
            // to a list of ten thousand, and doubling left up to a list's worth unused. (Such a
            // list is a block of its own, which the allocator grows in place.)
            if items.len() == items.capacity() {
                items.reserve_exact(items.len() / 8 + 16);
            }
            items.push(item);
            index.insert(items, items.len() - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Keyed for (String, u32) {
        type Key<'a> = &'a str;
        fn key(&self) -> &str {
            &self.0
        }
        fn group(&self) -> Arc<str> {
            self.0.split('/').next().unwrap_or_default().into()
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

    /// The log tells exactly the groups changed between two listings, and nothing once a relist
    /// came between or the log dropped changes it would need.
    #[test]
    fn cursors_tell_the_groups_changed_between_listings() {
        let (store, writer) = store();
        writer.relist_started();
        writer.relisted(item("a/x", 1));
        writer.relist_done();
        let (_, first) = store.listing();
        assert_eq!(first.changed_since(first.version()), Some(HashSet::new()));

        writer.apply(item("a/x", 2));
        writer.apply(item("b/y", 1));
        let (_, second) = store.listing();
        writer.delete(&item("b/y", 1));
        writer.delete(&item("c/none", 1));
        writer.apply(item("d/z", 1));
        let (_, third) = store.listing();
        let groups = |names: &[&str]| Some(names.iter().map(|n| Arc::from(*n)).collect());
        assert_eq!(second.changed_since(first.version()), groups(&["a", "b"]));
        assert_eq!(third.changed_since(second.version()), groups(&["b", "d"]));
        assert_eq!(
            third.changed_since(first.version()),
            groups(&["a", "b", "d"])
        );
        assert_eq!(first.changed_since(third.version()), None, "not backwards");

        for i in 0..LOG_LIMIT {
            writer.apply(item(&format!("n{i}/x"), 1));
        }
        let (_, fourth) = store.listing();
        assert_eq!(
            fourth.changed_since(second.version()),
            None,
            "dropped from the log"
        );
        assert_eq!(
            fourth.changed_since(third.version()).map(|g| g.len()),
            Some(LOG_LIMIT)
        );

        writer.relist_started();
        writer.relisted(item("a/x", 3));
        writer.relist_done();
        let (_, fifth) = store.listing();
        assert_eq!(
            fifth.changed_since(fourth.version()),
            None,
            "a relist came between"
        );
    }
}
