//! The controller loop: watch caches keep a live picture of the cluster, relevant changes wake a
//! single synchronisation loop, and a periodic resync catches drift on the Vault side.
//!
//! Why not `kube::runtime::Controller`: that runtime reconciles one object at a time, but here all
//! the work belongs to one thing (the cluster's auth mount) and must go on when the ConfigMap
//! does not exist (mount, config, reviewer). So the loop is a singleton fed by kube-runtime's
//! watchers and reflectors: a burst of events sets one wake-up flag and costs one pass, and in a
//! steady state nothing is requested from Kubernetes besides the open watches.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Resource;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::backoff::{PASS_RETRY, WATCH_RETRY, WatchBackoff};
use crate::desired::NamespaceInfo;
use crate::error::{Error, Result};
use crate::health::Health;
use crate::k8s::compact_store::{self, CompactStore, Keyed};
use crate::k8s::interner::Interner;
use crate::k8s::snapshot::{
    BigLists, ClusterSnapshot, ConfigMapState, ServiceAccountMeta, namespace_info,
};
use crate::names::{
    ALLOW_EMPTY_ANNOTATION, MANAGED_ANNOTATION, NAMESPACE_READER, REVIEWER_CLUSTER_ROLE_BINDING,
    REVIEWER_SERVICE_ACCOUNT, REVIEWER_TOKEN_SECRET, ROLES_CONFIGMAP,
};
use crate::sync::{PassReport, Syncer, Trigger, VaultRead};

/// The watch caches.
#[derive(Clone)]
pub struct Stores {
    configmap: Store<ConfigMap>,
    /// The two kinds that come by the thousand, in compact form (see [`compact_store`]).
    lists: BigLists,
    secrets: Store<Secret>,
    /// The reviewer's ServiceAccount alone (a field selector names it): what the first pass
    /// needs of ServiceAccounts before the others are listed.
    reviewer_account: Store<PartialObjectMeta<ServiceAccount>>,
    /// One store per binding name the tool uses (a field selector names one object).
    cluster_role_bindings: [Store<ClusterRoleBinding>; 2],
    cluster_roles: Store<ClusterRole>,
}

impl Keyed for NamespaceInfo {
    type Key<'a> = &'a str;
    fn key(&self) -> &str {
        &self.name
    }
    fn group(&self) -> Arc<str> {
        self.name.clone()
    }
}

impl Keyed for ServiceAccountMeta {
    type Key<'a> = (&'a str, &'a str);
    fn key(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
    fn group(&self) -> Arc<str> {
        self.namespace.clone()
    }
}

impl Stores {
    /// The cluster as the caches see it now. The namespaces and ServiceAccounts are shared, not
    /// copied: with thousands of each, copying them was most of what a pass woken by a
    /// ConfigMap edit cost.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let configmap = self
            .configmap
            .state()
            .into_iter()
            .find(|cm| cm.metadata.name.as_deref() == Some(ROLES_CONFIGMAP))
            // The cache's own copy, shared: a thousand entries are not copied for every pass.
            .map_or(ConfigMapState::Missing, ConfigMapState::Present);
        let (namespaces, service_accounts, changes, pending) = if self.lists.is_listed() {
            let (namespaces, service_accounts, changes) = self.lists.listing();
            (namespaces, service_accounts, Some(changes), None)
        } else {
            // Still listing: the pass gets the reviewer's ServiceAccount from its own watch and
            // waits for the rest before it plans ServiceAccounts (`ClusterSnapshot::pending`).
            let reviewer = self
                .reviewer_account
                .state()
                .iter()
                .filter_map(|sa| ServiceAccountMeta::from_meta(&sa.metadata))
                .collect::<Vec<_>>();
            (
                Arc::default(),
                Arc::new(reviewer),
                None,
                Some(self.lists.clone()),
            )
        };
        ClusterSnapshot {
            configmap,
            namespaces,
            service_accounts,
            changes,
            pending,
            reviewer_secret: self
                .secrets
                .state()
                .into_iter()
                .find(|s| s.metadata.name.as_deref() == Some(REVIEWER_TOKEN_SECRET))
                .map(|s| (*s).clone()),
            cluster_role_bindings: self
                .cluster_role_bindings
                .iter()
                .flat_map(|store| store.state())
                .map(|b| (*b).clone())
                .collect(),
            cluster_roles: self
                .cluster_roles
                .state()
                .iter()
                .map(|r| (**r).clone())
                .collect(),
        }
    }

    /// Waits for the first list of every watch but the namespaces' and the ServiceAccounts'
    /// (see [`ClusterSnapshot::pending`]); fails when one ended before it.
    async fn wait_until_few_ready(&self) -> Result<()> {
        let mut ready = self.configmap.wait_until_ready().await.is_ok()
            && self.secrets.wait_until_ready().await.is_ok()
            && self.reviewer_account.wait_until_ready().await.is_ok()
            && self.cluster_roles.wait_until_ready().await.is_ok();
        for store in &self.cluster_role_bindings {
            ready = ready && store.wait_until_ready().await.is_ok();
        }
        if ready {
            Ok(())
        } else {
            Err(Error::KubeConfig(
                "a watch ended before its first list".to_string(),
            ))
        }
    }
}

/// ServiceAccount names the roles bind: only changes to those (or to managed accounts) matter.
type BoundNames = Arc<RwLock<HashSet<String>>>;

/// Starts the watches; every relevant change calls `wake.notify_one()`.
fn start_watches(
    client: &kube::Client,
    namespace: &str,
    wake: Arc<Notify>,
    bound: BoundNames,
    health: &Health,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Stores {
    let cfg = watcher::Config::default();
    let w = Watch {
        wake,
        health: health.clone(),
    };

    let configmap = reflect(
        Api::<ConfigMap>::namespaced(client.clone(), namespace),
        cfg.clone()
            .fields(&format!("metadata.name={ROLES_CONFIGMAP}")),
        w.clone(),
        configmap_changed(),
        tasks,
    );
    // One copy of each name for both caches (see `Interner`).
    let names = Arc::new(std::sync::Mutex::new(Interner::default()));
    let shared = names.clone();
    let namespaces = watch_compact(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        cfg.clone(),
        w.clone(),
        move |ns: &PartialObjectMeta<Namespace>| {
            let mut info = namespace_info(ns)?;
            info.name = lock(&shared).get(&info.name);
            Some(info)
        },
        |_, _| true,
        tasks,
    );
    let reviewer_namespace = namespace.to_string();
    let service_accounts = watch_compact(
        Api::<PartialObjectMeta<ServiceAccount>>::all(client.clone()),
        cfg.clone(),
        w.clone(),
        move |sa: &PartialObjectMeta<ServiceAccount>| {
            let mut meta =
                ServiceAccountMeta::from_meta_with(&sa.metadata, |s| lock(&names).get(s))?;
            meta.forget_details();
            Some(meta)
        },
        move |sa: &PartialObjectMeta<ServiceAccount>, _| {
            let meta = sa.meta();
            let name = meta.name.as_deref().unwrap_or_default();
            let managed = meta
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(MANAGED_ANNOTATION));
            let reviewer = name == REVIEWER_SERVICE_ACCOUNT
                && meta.namespace.as_deref() == Some(reviewer_namespace.as_str());
            managed
                || reviewer
                || bound
                    .read()
                    .map(|names| names.contains(name) || names.contains("*"))
                    .unwrap_or(true)
        },
        tasks,
    );
    let secrets = reflect(
        Api::<Secret>::namespaced(client.clone(), namespace),
        cfg.clone()
            .fields(&format!("metadata.name={REVIEWER_TOKEN_SECRET}")),
        w.clone(),
        |_, _| true,
        tasks,
    );
    let reviewer_account = reflect(
        Api::<PartialObjectMeta<ServiceAccount>>::namespaced(client.clone(), namespace),
        cfg.clone()
            .fields(&format!("metadata.name={REVIEWER_SERVICE_ACCOUNT}")),
        w.clone(),
        |_, _| true,
        tasks,
    );
    // The tool's cluster-scoped objects by name, whoever made them: the plan decides whether
    // one is the tool's (its label), the original's (adopted) or someone else's (left alone).
    let by_name = |name: &str| cfg.clone().fields(&format!("metadata.name={name}"));
    let cluster_role_bindings = [REVIEWER_CLUSTER_ROLE_BINDING, NAMESPACE_READER].map(|name| {
        reflect(
            Api::<ClusterRoleBinding>::all(client.clone()),
            by_name(name),
            w.clone(),
            |_, _| true,
            tasks,
        )
    });
    let cluster_roles = reflect(
        Api::<ClusterRole>::all(client.clone()),
        by_name(NAMESPACE_READER),
        w,
        |_, _| true,
        tasks,
    );
    Stores {
        configmap,
        lists: BigLists {
            namespaces,
            service_accounts,
        },
        secrets,
        reviewer_account,
        cluster_role_bindings,
        cluster_roles,
    }
}

/// The prefix of this tool's own annotations (the roles record among them).
const OWN_PREFIX: &str = "vault-auth-kubernetes/";

fn lock(names: &std::sync::Mutex<Interner>) -> std::sync::MutexGuard<'_, Interner> {
    names.lock().unwrap_or_else(|e| e.into_inner())
}

/// Relevance of a roles ConfigMap event: a change of what a pass plans with (its data, the
/// allow-empty annotation) or its deletion. The pass's own status annotations, written after
/// the pass, are not: a pass for them would find nothing to do.
fn configmap_changed() -> impl FnMut(&ConfigMap, bool) -> bool + Send + 'static {
    let mut last: Option<u64> = None;
    move |cm, deleted| {
        if deleted {
            last = None;
            return true;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        cm.data.hash(&mut hasher);
        cm.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ALLOW_EMPTY_ANNOTATION))
            .hash(&mut hasher);
        let seen = Some(hasher.finish());
        std::mem::replace(&mut last, seen) != seen
    }
}

/// What a watch task reports to.
#[derive(Clone)]
struct Watch {
    wake: Arc<Notify>,
    health: Health,
}

/// Runs a reflector for `api` in a task; wakes the loop on relevant changes and on every
/// completed (re)list.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    watch: Watch,
    relevant: impl FnMut(&K, bool) -> bool + Send + 'static,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Store<K>
where
    K: Resource + Clone + Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let backoff = WatchBackoff::new(WATCH_RETRY);
    let stream = watcher(api, config)
        .backoff(backoff.clone())
        .modify(slim::<K>);
    let stream = reflector::reflector(writer, stream);
    // The reflector has applied each event to its store before `drive` sees it.
    tasks.spawn(drive(stream, kind, watch, backoff, relevant, |_| {}));
    reader
}

/// Runs a watch for `api` in a task, keeping `compact(object)` of each object in a
/// [`CompactStore`]; wakes the loop like [`reflect`].
fn watch_compact<K, T>(
    api: Api<K>,
    config: watcher::Config,
    watch: Watch,
    compact: impl Fn(&K) -> Option<T> + Send + 'static,
    relevant: impl FnMut(&K, bool) -> bool + Send + 'static,
    tasks: &mut tokio::task::JoinSet<()>,
) -> CompactStore<T>
where
    K: Resource + Clone + Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default,
    T: Keyed + Clone + Send + Sync + 'static,
{
    let (reader, writer) = compact_store::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let backoff = WatchBackoff::new(WATCH_RETRY);
    let stream = watcher(api, config).backoff(backoff.clone());
    let apply = move |event: &Event<K>| match event {
        Event::Init => writer.relist_started(),
        Event::InitDone => writer.relist_done(),
        Event::InitApply(obj) | Event::Apply(obj) | Event::Delete(obj) => {
            let Some(item) = compact(obj) else { return };
            match event {
                Event::InitApply(_) => writer.relisted(item),
                Event::Apply(_) => writer.apply(item),
                _ => writer.delete(&item),
            }
        }
    };
    tasks.spawn(drive(stream, kind, watch, backoff, relevant, apply));
    reader
}

/// Keeps only what the controller reads of the few objects kube-runtime's reflector caches:
/// managedFields are dropped, and annotations but this tool's (kubectl's
/// last-applied-configuration alone can be kilobytes).
fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        // This tool's own annotations all start with `vault-auth-kubernetes/` (the roles record
        // among them); the original's `vak-managed` and the token Secret's owner are the others.
        annotations.retain(|key, _| {
            key == MANAGED_ANNOTATION
                || key.starts_with(OWN_PREFIX)
                || key == "kubernetes.io/service-account.name"
        });
    }
}

/// Applies a watch's events to its cache (`cache`), then wakes the loop for relevant ones
/// (`relevant(object, deleted)`) and for every completed (re)list.
async fn drive<K>(
    stream: impl Stream<Item = watcher::Result<Event<K>>>,
    kind: String,
    watch: Watch,
    backoff: WatchBackoff,
    mut relevant: impl FnMut(&K, bool) -> bool,
    mut cache: impl FnMut(&Event<K>),
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(event) => event,
            // The watcher retries with backoff by itself; say why it is not seeing changes.
            Err(error) => {
                watch.health.watch_failed();
                warn!(%kind, %error, "watch failed, retrying");
                continue;
            }
        };
        watch.health.watch_ok();
        cache(&event);
        let wake = match &event {
            Event::Apply(obj) => relevant(obj, false),
            Event::Delete(obj) => relevant(obj, true),
            Event::InitDone => true,
            Event::Init | Event::InitApply(_) => continue,
        };
        backoff.succeeded();
        if wake {
            watch.wake.notify_one();
        }
    }
}

fn watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send
where
    K: Resource + Clone + Debug + Send + serde::de::DeserializeOwned + 'static,
{
    watcher::watcher(api, config)
}

/// Runs the controller until `shutdown` is cancelled or a fatal error (another type of auth
/// method at the mount path) stops it. Passes run only while `leader` is true; a standby keeps
/// its caches warm so it can take over at once.
pub async fn run(
    syncer: Arc<Syncer>,
    health: Health,
    mut leader: tokio::sync::watch::Receiver<bool>,
    shutdown: CancellationToken,
) -> Result<()> {
    let wake = Arc::new(Notify::new());
    let bound: BoundNames = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let stores = start_watches(
        &syncer.ctx().client,
        &syncer.ctx().settings.namespace,
        wake.clone(),
        bound.clone(),
        &health,
        &mut tasks,
    );
    // The first pass starts once the few small watches have listed; the namespaces and
    // ServiceAccounts (tens of thousands in a large cluster) are listed meanwhile, and the pass
    // plans ServiceAccounts once they are in (its Vault half does not wait for them).
    tokio::select! {
        ready = stores.wait_until_few_ready() => ready?,
        () = shutdown.cancelled() => return Ok(()),
    }
    tasks.spawn({
        let (stores, health) = (stores.clone(), health.clone());
        async move {
            if stores.lists.wait_listed().await {
                health.set_caches_ready();
                info!("watch caches ready");
            }
        }
    });

    let resync = syncer.ctx().settings.resync_interval;
    let mut failures: u32 = 0;
    let mut next_resync = tokio::time::Instant::now() + resync;
    // The first pass and every resync read Vault in full; a pass woken by a cluster change reuses
    // what the last pass saw of Vault (see `VaultRead`).
    let mut read = VaultRead::Full;
    let mut trigger = Trigger::Start;
    loop {
        let leading = *leader.borrow_and_update();
        health.set_leader(leading);
        syncer.ctx().metrics.set_leader(leading);
        if !leading {
            info!("standing by: another replica holds the leader Lease");
            tokio::select! {
                changed = leader.changed() => {
                    if changed.is_err() {
                        warn!("leader election stopped");
                        return Ok(());
                    }
                    continue;
                }
                () = shutdown.cancelled() => {
                    tasks.shutdown().await;
                    return Ok(());
                }
            }
        }

        let snapshot = stores.snapshot();
        // A shutdown does not wait for the pass (it may be waiting for the reviewer's token for a
        // minute): the pass is dropped where it is, with nothing reported of what it did not
        // finish, and the next start reads Vault in full.
        let outcome = tokio::select! {
            outcome = syncer.sync_with(&snapshot, read, trigger) => outcome,
            () = shutdown.cancelled() => {
                info!("shutting down during a pass; it stops where it is");
                health.set_synced(false);
                tasks.shutdown().await;
                return Ok(());
            }
        };
        read = VaultRead::Cached;
        // The pass reported itself (logs, Events, status); here only what comes next.
        let retry_in = match outcome {
            Ok(report) => {
                remember_bound_names(&bound, &report);
                if report.succeeded() {
                    failures = 0;
                    health.set_synced(true);
                    None
                } else {
                    health.set_failure(crate::sync::failed_steps(&report));
                    Some(PASS_RETRY.delay_for(failures + 1))
                }
            }
            Err(e @ Error::ForeignMount { .. }) => {
                error!(error = %e, "stopping: will not touch another type of auth method");
                health.set_synced(false);
                tasks.shutdown().await;
                return Err(e);
            }
            Err(e) => {
                health.set_failure(format!("the last pass failed: {e}"));
                Some(PASS_RETRY.delay_for(failures + 1))
            }
        };
        if retry_in.is_some() {
            failures = failures.saturating_add(1);
            health.set_synced(false);
        }

        let wait_until = match retry_in {
            Some(delay) => (tokio::time::Instant::now() + delay).min(next_resync),
            None => next_resync,
        };
        trigger = if retry_in.is_some() {
            Trigger::Retry
        } else {
            Trigger::Resync
        };
        tokio::select! {
            // No quiet time before the pass: a change when idle is acted on at once. Changes that
            // arrive while a pass runs leave one permit in the Notify, so however many there
            // were, they cost one more pass, which sees them all.
            () = wake.notified() => {
                debug!("woken by a cluster change");
                trigger = Trigger::ClusterChange;
            }
            () = tokio::time::sleep_until(wait_until) => {}
            _ = leader.changed() => trigger = Trigger::Start,
            () = shutdown.cancelled() => {
                info!("shutting down");
                health.set_synced(false);
                tasks.shutdown().await;
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= next_resync {
            debug!("periodic resync");
            read = VaultRead::Full;
            next_resync = tokio::time::Instant::now() + resync;
        }
    }
}

/// Remembers which ServiceAccount names the roles bind, to filter ServiceAccount events.
fn remember_bound_names(bound: &BoundNames, report: &PassReport) {
    if let Ok(mut names) = bound.write() {
        names.clear();
        names.extend(report.bound_names.iter().cloned());
    }
}
