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
use std::sync::atomic::{AtomicU64, Ordering};
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
use crate::k8s::snapshot::{ClusterSnapshot, ConfigMapState, ServiceAccountMeta, namespace_info};
use crate::names::{
    MANAGED_ANNOTATION, NAMESPACE_READER, REVIEWER_CLUSTER_ROLE_BINDING, REVIEWER_SERVICE_ACCOUNT,
    REVIEWER_TOKEN_SECRET, ROLES_CONFIGMAP,
};
use crate::sync::{PassReport, Syncer, Trigger, VaultRead};

/// The watch caches.
#[derive(Clone)]
pub struct Stores {
    configmap: Store<ConfigMap>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    secrets: Store<Secret>,
    /// One store per binding name the tool uses (a field selector names one object).
    cluster_role_bindings: [Store<ClusterRoleBinding>; 2],
    cluster_roles: Store<ClusterRole>,
    /// The namespaces and ServiceAccounts as the last snapshot took them, reused while their
    /// watch reports no change: with thousands of each, copying them is most of what a pass
    /// woken by a ConfigMap edit would otherwise cost.
    namespace_view: Arc<Derived<NamespaceInfo>>,
    service_account_view: Arc<Derived<ServiceAccountMeta>>,
}

/// A list derived from a store, rebuilt when the store's generation moved.
struct Derived<T> {
    /// Bumped by the watch task after every change it applied to the store.
    generation: AtomicU64,
    built: std::sync::Mutex<Option<(u64, Arc<Vec<T>>)>>,
}

impl<T> Default for Derived<T> {
    fn default() -> Self {
        Derived {
            generation: AtomicU64::new(0),
            built: std::sync::Mutex::new(None),
        }
    }
}

impl<T> Derived<T> {
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The list for the store's current content. The generation is read before the store, so a
    /// change racing with the build is built again next time, never missed: the watch task
    /// bumps the generation before it wakes the loop.
    fn get(&self, build: impl FnOnce() -> Vec<T>) -> Arc<Vec<T>> {
        let generation = self.generation.load(Ordering::Acquire);
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        match &*built {
            Some((g, list)) if *g == generation => list.clone(),
            _ => {
                let list = Arc::new(build());
                *built = Some((generation, list.clone()));
                list
            }
        }
    }
}

impl Stores {
    /// The cluster as the caches see it now.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let configmap = self
            .configmap
            .state()
            .into_iter()
            .find(|cm| cm.metadata.name.as_deref() == Some(ROLES_CONFIGMAP))
            .map_or(ConfigMapState::Missing, |cm| {
                ConfigMapState::Present(Box::new((*cm).clone()))
            });
        ClusterSnapshot {
            configmap,
            namespaces: self.namespace_view.get(|| {
                self.namespaces
                    .state()
                    .iter()
                    .filter_map(|ns| namespace_info(ns))
                    .collect()
            }),
            service_accounts: self.service_account_view.get(|| {
                self.service_accounts
                    .state()
                    .iter()
                    .filter_map(|sa| ServiceAccountMeta::from_meta(&sa.metadata))
                    .collect()
            }),
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

    async fn wait_until_ready(&self) -> Result<()> {
        let dropped = |_| Error::KubeConfig("a watch ended before its first list".to_string());
        self.configmap.wait_until_ready().await.map_err(dropped)?;
        self.namespaces.wait_until_ready().await.map_err(dropped)?;
        self.service_accounts
            .wait_until_ready()
            .await
            .map_err(dropped)?;
        self.secrets.wait_until_ready().await.map_err(dropped)?;
        for store in &self.cluster_role_bindings {
            store.wait_until_ready().await.map_err(dropped)?;
        }
        self.cluster_roles
            .wait_until_ready()
            .await
            .map_err(dropped)?;
        Ok(())
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
        changed: None,
    };
    let namespace_view = Arc::new(Derived::default());
    let service_account_view = Arc::new(Derived::default());

    let configmap = reflect(
        Api::<ConfigMap>::namespaced(client.clone(), namespace),
        cfg.clone()
            .fields(&format!("metadata.name={ROLES_CONFIGMAP}")),
        w.clone(),
        |_| true,
        tasks,
    );
    let namespaces = reflect(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        cfg.clone(),
        w.bumping(&namespace_view),
        |_| true,
        tasks,
    );
    let reviewer_namespace = namespace.to_string();
    let service_accounts = reflect(
        Api::<PartialObjectMeta<ServiceAccount>>::all(client.clone()),
        cfg.clone(),
        w.bumping(&service_account_view),
        move |sa: &PartialObjectMeta<ServiceAccount>| {
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
        |_| true,
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
            |_| true,
            tasks,
        )
    });
    let cluster_roles = reflect(
        Api::<ClusterRole>::all(client.clone()),
        by_name(NAMESPACE_READER),
        w,
        |_| true,
        tasks,
    );
    Stores {
        configmap,
        namespaces,
        service_accounts,
        secrets,
        cluster_role_bindings,
        cluster_roles,
        namespace_view,
        service_account_view,
    }
}

/// What a watch task reports to.
#[derive(Clone)]
struct Watch {
    wake: Arc<Notify>,
    health: Health,
    /// Called after every change to the store, before the loop is woken.
    changed: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Watch {
    /// The same, also bumping `view`'s generation on every change.
    fn bumping<T: Send + Sync + 'static>(&self, view: &Arc<Derived<T>>) -> Watch {
        let view = view.clone();
        Watch {
            changed: Some(Arc::new(move || view.changed())),
            ..self.clone()
        }
    }
}

/// Runs a reflector for `api` in a task; wakes the loop on relevant changes and on every
/// completed (re)list.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    watch: Watch,
    relevant: impl Fn(&K) -> bool + Send + 'static,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Store<K>
where
    K: Resource + Clone + Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let backoff = WatchBackoff::new(WATCH_RETRY);
    let stream = watcher(api, config).backoff(backoff.clone()).modify(
        if kind == "Namespace" || kind == "ServiceAccount" {
            slim_bulk::<K>
        } else {
            slim::<K>
        },
    );
    let stream = reflector::reflector(writer, stream);
    tasks.spawn(drive(stream, kind, watch, backoff, relevant));
    reader
}

/// Keeps only what the controller reads: managedFields are dropped from every cached object,
/// and annotations from all but this tool's (kubectl's last-applied-configuration alone can be
/// kilobytes per object). With thousands of namespaces and ServiceAccounts this is most of the
/// cache's memory.
fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        // This tool's own annotations all start with `vault-auth-kubernetes/` (the roles record
        // among them); the original's `vak-managed` and the token Secret's owner are the others.
        annotations.retain(|key, _| {
            key == MANAGED_ANNOTATION
                || key.starts_with("vault-auth-kubernetes/")
                || key == "kubernetes.io/service-account.name"
        });
    }
}

/// [`slim`], and for the two kinds that come by the thousand (namespaces, ServiceAccounts) also
/// the metadata no decision reads ([`namespace_info`] and [`ServiceAccountMeta::from_meta`] say
/// what is read). The watcher keeps its own resourceVersion, taken before this runs.
fn slim_bulk<K: Resource>(obj: &mut K)
where
    K::DynamicType: Default,
{
    slim(obj);
    let meta = obj.meta_mut();
    meta.resource_version = None;
    meta.creation_timestamp = None;
    meta.generate_name = None;
    meta.generation = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.self_link = None;
    meta.deletion_grace_period_seconds = None;
    if K::kind(&K::DynamicType::default()) == "ServiceAccount" {
        // A ServiceAccount's labels play no part (the plan goes by the annotations).
        meta.labels = None;
    } else {
        // A namespace has no uid use either (a ServiceAccount's guards its deletion).
        meta.uid = None;
    }
}

async fn drive<K>(
    stream: impl Stream<Item = watcher::Result<Event<K>>>,
    kind: String,
    watch: Watch,
    backoff: WatchBackoff,
    relevant: impl Fn(&K) -> bool,
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        if item.is_ok() {
            watch.health.watch_ok();
        }
        match item {
            Ok(Event::Apply(obj) | Event::Delete(obj)) => {
                backoff.succeeded();
                if let Some(changed) = &watch.changed {
                    changed();
                }
                if relevant(&obj) {
                    watch.wake.notify_one();
                }
            }
            Ok(Event::InitDone) => {
                backoff.succeeded();
                if let Some(changed) = &watch.changed {
                    changed();
                }
                watch.wake.notify_one();
            }
            Ok(Event::Init | Event::InitApply(_)) => {}
            // The watcher retries with backoff by itself; say why it is not seeing changes.
            Err(error) => {
                watch.health.watch_failed();
                warn!(%kind, %error, "watch failed, retrying");
            }
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
    tokio::select! {
        ready = stores.wait_until_ready() => ready?,
        () = shutdown.cancelled() => return Ok(()),
    }
    health.set_caches_ready();
    info!("watch caches ready");

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
