//! What the controller knows of the cluster at one moment, built either from the controller's
//! watch caches (no requests) or, for one-shot commands, from a handful of list calls.
//!
//! Only the objects the controller needs are kept: the roles ConfigMap, namespaces (metadata),
//! ServiceAccounts (metadata), the reviewer's token Secret, and the cluster-scoped RBAC objects it
//! manages.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, ListParams, ObjectMeta};
use kube::core::PartialObjectMeta;

use crate::desired::{NamespaceInfo, ServiceAccountRef};
use crate::error::{Error, Result};
use crate::k8s::compact_store::{CompactStore, Cursor};
use crate::names::{
    ALLOW_EMPTY_ANNOTATION, MANAGED_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MANAGED_VALUE,
    NAMESPACE_READER, REVIEWER_CLUSTER_ROLE_BINDING, REVIEWER_TOKEN_SECRET, ROLES_ANNOTATION,
    ROLES_CONFIGMAP,
};
use crate::plan::ObservedServiceAccount;
use crate::role_names::RoleNames;

/// The roles ConfigMap as last seen.
#[derive(Clone, Debug)]
pub enum ConfigMapState {
    /// Present, with its data.
    Present(Arc<ConfigMap>),
    /// Does not exist.
    Missing,
}

/// A ServiceAccount's identity and what the controller decides on, in a few words: the
/// controller caches one per ServiceAccount of the cluster (48 bytes, names shared).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceAccountMeta {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// Its uid and roles record, behind one pointer: the controller needs them for managed
    /// ones only and keeps one shared empty one for the others (see
    /// [`ServiceAccountMeta::forget_details`]).
    details: Arc<Details>,
    /// Carries the original tool's annotation `vak-managed: "true"`.
    pub managed: bool,
    /// Labelled `app.kubernetes.io/managed-by=vault-auth-kubernetes` (the reviewer's own
    /// ServiceAccount is; the ones made for roles are told by [`MANAGED_ANNOTATION`]).
    pub labelled: bool,
}

/// What only a managed ServiceAccount needs kept.
#[derive(Debug, Default, PartialEq)]
struct Details {
    /// What deleting it is conditioned on, so a ServiceAccount made again under the same name
    /// meanwhile is not deleted.
    uid: Box<str>,
    /// The Vault roles its roles annotation records (empty without one).
    roles: RoleNames,
}

/// The details of a ServiceAccount the controller does not manage (shared).
static NO_DETAILS: std::sync::LazyLock<Arc<Details>> = std::sync::LazyLock::new(Default::default);

impl ServiceAccountMeta {
    /// Builds from object metadata; None when the object has no name or namespace.
    pub fn from_meta(meta: &ObjectMeta) -> Option<Self> {
        Self::from_meta_with(meta, |s| s.into())
    }

    /// [`ServiceAccountMeta::from_meta`], taking the namespace and name from `share` (e.g. an
    /// [`crate::k8s::interner::Interner`]).
    pub fn from_meta_with(
        meta: &ObjectMeta,
        mut share: impl FnMut(&str) -> Arc<str>,
    ) -> Option<Self> {
        let annotations = meta.annotations.as_ref();
        let annotation = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
        Some(ServiceAccountMeta {
            namespace: share(meta.namespace.as_deref()?),
            name: share(meta.name.as_deref()?),
            details: Arc::new(Details {
                uid: meta.uid.as_deref().unwrap_or_default().into(),
                roles: annotation(ROLES_ANNOTATION)
                    .map(parse_roles_annotation)
                    .unwrap_or_default(),
            }),
            managed: annotation(MANAGED_ANNOTATION) == Some(MANAGED_VALUE),
            labelled: meta
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .is_some_and(|v| v == MANAGED_BY_VALUE),
        })
    }

    /// From its namespace, name, uid, annotations and labels (as [`ServiceAccountMeta::from_meta`]
    /// reads them from an object).
    pub fn with(
        namespace: &str,
        name: &str,
        uid: &str,
        annotations: &[(&str, &str)],
        labels: &[(&str, &str)],
    ) -> Self {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        Self::from_meta(&ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            annotations: map(annotations),
            labels: map(labels),
            ..Default::default()
        })
        .expect("namespace and name are given")
    }

    /// Carries the original tool's annotation `vak-managed: "true"`.
    pub fn is_managed(&self) -> bool {
        self.managed
    }

    /// Its uid (empty once forgotten).
    pub fn uid(&self) -> &str {
        &self.details.uid
    }

    /// The Vault roles its roles annotation records (empty without one, or once forgotten).
    pub fn roles(&self) -> &RoleNames {
        &self.details.roles
    }

    /// Drops the uid and roles record of a ServiceAccount that is not managed: the plan reads
    /// neither (it never changes nor deletes such a one), and at 10,000 namespaces they were
    /// a tenth of the controller's memory.
    pub fn forget_details(&mut self) {
        if !self.managed {
            self.details = Arc::clone(&NO_DETAILS);
        }
    }

    /// Reference by namespace and name.
    pub fn reference(&self) -> ServiceAccountRef {
        ServiceAccountRef {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// What the plan needs to know.
    pub fn observed(&self) -> ObservedServiceAccount {
        ObservedServiceAccount {
            managed: self.managed,
            roles: self.details.roles.clone(),
        }
    }
}

/// The roles annotation's names: comma-separated, blanks ignored.
fn parse_roles_annotation(value: &str) -> RoleNames {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The cluster as the controller sees it.
#[derive(Clone, Debug)]
pub struct ClusterSnapshot {
    pub configmap: ConfigMapState,
    /// Shared: the controller rebuilds these only when their watch saw a change (a ConfigMap
    /// edit reuses the last ones as they are), so a pass does not copy the cluster.
    pub namespaces: Arc<Vec<NamespaceInfo>>,
    pub service_accounts: Arc<Vec<ServiceAccountMeta>>,
    pub reviewer_secret: Option<Secret>,
    /// The ClusterRoleBindings of the tool's names (the reviewer's, the namespace reader's),
    /// whoever made them: the plan decides whether they are the tool's.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// The ClusterRole of the tool's name (the namespace reader), whoever made it.
    pub cluster_roles: Vec<ClusterRole>,
    /// Where `namespaces` and `service_accounts` stand in their watch caches' change logs, so
    /// a pass can plan again only the namespaces that changed since the last one. None for a
    /// snapshot listed by a one-shot command.
    pub changes: Option<ListChanges>,
    /// Set when the namespace and ServiceAccount caches had not finished their first list: the
    /// two lists above are then incomplete (they hold only the reviewer's ServiceAccount, from
    /// a watch of its own), and a pass plans the ServiceAccounts only once [`BigLists`] has
    /// them. The controller's first pass after a start, whose Vault half need not wait for
    /// tens of thousands of objects to be listed.
    pub pending: Option<BigLists>,
}

/// The namespace and ServiceAccount caches, the two kinds that come by the thousand; a
/// snapshot taken before their first list was complete carries them (see
/// [`ClusterSnapshot::pending`]).
#[derive(Clone)]
pub struct BigLists {
    pub namespaces: CompactStore<NamespaceInfo>,
    pub service_accounts: CompactStore<ServiceAccountMeta>,
}

impl std::fmt::Debug for BigLists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BigLists")
    }
}

impl BigLists {
    /// True once both caches have their first complete list.
    pub fn is_listed(&self) -> bool {
        self.namespaces.is_ready() && self.service_accounts.is_ready()
    }

    /// Waits for both first lists; false when a watch ended before.
    pub async fn wait_listed(&self) -> bool {
        self.namespaces.wait_until_ready().await.is_ok()
            && self.service_accounts.wait_until_ready().await.is_ok()
    }

    /// Both lists as they are now, with the cursors that tell what changed since.
    pub fn listing(
        &self,
    ) -> (
        Arc<Vec<NamespaceInfo>>,
        Arc<Vec<ServiceAccountMeta>>,
        ListChanges,
    ) {
        let (namespaces, namespace_cursor) = self.namespaces.listing();
        let (service_accounts, service_account_cursor) = self.service_accounts.listing();
        let changes = ListChanges {
            namespaces: namespace_cursor,
            service_accounts: service_account_cursor,
        };
        (namespaces, service_accounts, changes)
    }

    /// `snapshot` with its namespace and ServiceAccount lists complete, once both caches have
    /// listed everything; fails when a watch ended before that.
    pub async fn complete(&self, snapshot: &ClusterSnapshot) -> Result<ClusterSnapshot> {
        if !self.wait_listed().await {
            return Err(Error::KubeConfig(
                "a watch ended before its first list".to_string(),
            ));
        }
        let (namespaces, service_accounts, changes) = self.listing();
        Ok(ClusterSnapshot {
            namespaces,
            service_accounts,
            changes: Some(changes),
            pending: None,
            ..snapshot.clone()
        })
    }
}

/// The change-log cursors of a snapshot's namespace and ServiceAccount lists.
#[derive(Clone, Debug)]
pub struct ListChanges {
    pub namespaces: Cursor<NamespaceInfo>,
    pub service_accounts: Cursor<ServiceAccountMeta>,
}

impl ClusterSnapshot {
    /// The ConfigMap's data, when it exists (an empty map when it has no data).
    pub fn roles_data(&self) -> Option<BTreeMap<String, String>> {
        match &self.configmap {
            ConfigMapState::Present(cm) => Some(cm.data.clone().unwrap_or_default()),
            ConfigMapState::Missing => None,
        }
    }

    /// The ConfigMap whose entries to plan with, and whether an emptied ConfigMap is held back:
    /// one with no entry plans like a missing one (nothing is deleted) unless emptiness is
    /// meant (`allow_empty`, i.e. `--allow-empty-configmap`, or the annotation). The one place
    /// this is decided, for the roles, the ServiceAccounts and the reviewer's objects alike.
    pub fn configmap_to_plan(&self, allow_empty: bool) -> (Option<&Arc<ConfigMap>>, bool) {
        let held = !allow_empty && self.configmap_empty_without_opt_in();
        let configmap = match &self.configmap {
            ConfigMapState::Present(cm) if !held => Some(cm),
            _ => None,
        };
        (configmap, held)
    }

    /// True when the ConfigMap exists with no entry and does not say, with the annotation
    /// [`ALLOW_EMPTY_ANNOTATION`] set to "true", that it is meant to be empty.
    fn configmap_empty_without_opt_in(&self) -> bool {
        match &self.configmap {
            ConfigMapState::Present(cm) => {
                cm.data.as_ref().is_none_or(|d| d.is_empty())
                    && cm
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(ALLOW_EMPTY_ANNOTATION))
                        .is_none_or(|v| v.trim() != "true")
            }
            ConfigMapState::Missing => false,
        }
    }

    /// The ServiceAccount of that namespace and name, if it exists.
    pub fn service_account(&self, namespace: &str, name: &str) -> Option<&ServiceAccountMeta> {
        self.service_accounts
            .iter()
            .find(|sa| *sa.namespace == *namespace && *sa.name == *name)
    }

    /// Reads everything with list and get calls (for one-shot commands; the controller uses its
    /// caches).
    pub async fn fetch(client: &kube::Client, namespace: &str) -> Result<ClusterSnapshot> {
        let op = |operation: &str| {
            let operation = operation.to_string();
            move |source| Error::Kube { operation, source }
        };
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let configmap = match configmaps
            .get_opt(ROLES_CONFIGMAP)
            .await
            .map_err(op("get ConfigMap vault-auth-roles"))?
        {
            Some(cm) => ConfigMapState::Present(std::sync::Arc::new(cm)),
            None => ConfigMapState::Missing,
        };
        let namespaces = Api::<Namespace>::all(client.clone())
            .list_metadata(&ListParams::default())
            .await
            .map_err(op("list namespaces"))?
            .items
            .iter()
            .filter_map(namespace_info)
            .collect::<Vec<_>>()
            .into();
        let service_accounts = Api::<ServiceAccount>::all(client.clone())
            .list_metadata(&ListParams::default())
            .await
            .map_err(op("list serviceaccounts"))?
            .items
            .iter()
            .filter_map(|sa| ServiceAccountMeta::from_meta(&sa.metadata))
            .collect::<Vec<_>>()
            .into();
        let reviewer_secret = Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(REVIEWER_TOKEN_SECRET)
            .await
            .map_err(op("get reviewer token Secret"))?;
        let bindings = Api::<ClusterRoleBinding>::all(client.clone());
        let mut cluster_role_bindings = Vec::new();
        for name in [REVIEWER_CLUSTER_ROLE_BINDING, NAMESPACE_READER] {
            let got = bindings
                .get_opt(name)
                .await
                .map_err(op(&format!("get ClusterRoleBinding {name}")))?;
            cluster_role_bindings.extend(got);
        }
        let cluster_roles = Api::<ClusterRole>::all(client.clone())
            .get_opt(NAMESPACE_READER)
            .await
            .map_err(op(&format!("get ClusterRole {NAMESPACE_READER}")))?
            .into_iter()
            .collect();
        Ok(ClusterSnapshot {
            configmap,
            namespaces,
            service_accounts,
            reviewer_secret,
            cluster_role_bindings,
            cluster_roles,
            changes: None,
            pending: None,
        })
    }
}

/// Namespace name, labels and whether it is being deleted.
pub fn namespace_info(ns: &PartialObjectMeta<Namespace>) -> Option<NamespaceInfo> {
    Some(NamespaceInfo {
        terminating: ns.metadata.deletion_timestamp.is_some(),
        ..NamespaceInfo::new(
            ns.metadata.name.as_deref()?,
            ns.metadata.labels.clone().unwrap_or_default(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(annotations: &[(&str, &str)]) -> ServiceAccountMeta {
        ServiceAccountMeta::with("default", "app", "u1", annotations, &[])
    }

    #[test]
    fn managed_only_with_the_originals_annotation_set_to_true() {
        assert!(meta(&[("vak-managed", "true")]).is_managed());
        assert!(!meta(&[("vak-managed", "false")]).is_managed());
        assert!(!meta(&[]).is_managed());
    }

    #[test]
    fn roles_annotation_is_parsed_into_a_set() {
        let o = meta(&[
            ("vak-managed", "true"),
            ("vault-auth-kubernetes/roles", "web, api,,web"),
        ])
        .observed();
        assert!(o.managed);
        assert_eq!(o.roles.iter().collect::<Vec<_>>(), ["api", "web"]);
    }
}
