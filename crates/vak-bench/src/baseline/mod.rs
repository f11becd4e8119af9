//! The raw-writer baseline: on a fresh, identically seeded cluster and Vault, the harness makes
//! the writes the controller made during its cold start, as fast as a simple program can
//! (an AppRole login, then Vault writes 32 at a time beside Kubernetes writes 16 at a time, no
//! reads). `ours / baseline` is then how much a controller costs over the unavoidable writes.
//!
//! What to write is taken from what the controller did, not from what it should do: its
//! successful Kubernetes creates, patches and updates by resource (the emulator's counters),
//! the objects it created as they are in the cluster afterwards (copied without server-set
//! fields), and its Vault writes by kind (the audit log). Anything it wrote that the baseline
//! cannot replay is listed in the notes.

mod capture;
mod replay;

pub use capture::capture;
pub use replay::replay;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use crate::substrate::Substrate;

/// A kind the baseline can copy.
struct Kind {
    plural: &'static str,
    group: &'static str,
    kind: &'static str,
    namespaced: bool,
}

/// Everything a controller of this kind could create, by the plural the counters use.
const KINDS: &[Kind] = &[
    kind("serviceaccounts", "", "ServiceAccount", true),
    kind("secrets", "", "Secret", true),
    kind("configmaps", "", "ConfigMap", true),
    kind("events", "", "Event", true),
    kind("leases", "coordination.k8s.io", "Lease", true),
    kind("roles", "rbac.authorization.k8s.io", "Role", true),
    kind(
        "rolebindings",
        "rbac.authorization.k8s.io",
        "RoleBinding",
        true,
    ),
    kind(
        "clusterroles",
        "rbac.authorization.k8s.io",
        "ClusterRole",
        false,
    ),
    kind(
        "clusterrolebindings",
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        false,
    ),
];

const fn kind(
    plural: &'static str,
    group: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Kind {
    Kind {
        plural,
        group,
        kind,
        namespaced,
    }
}

impl Kind {
    fn find(plural: &str) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.plural == plural)
    }

    fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, "v1", self.kind),
            self.plural,
        )
    }

    fn api(&self, client: &kube::Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = self.api_resource();
        match namespace {
            Some(ns) if self.namespaced => Api::namespaced_with(client.clone(), ns, &ar),
            _ => Api::all_with(client.clone(), &ar),
        }
    }
}

/// The objects of every kind before the controller starts, so what it created can be told.
pub struct Snapshot(BTreeMap<&'static str, BTreeSet<(String, String)>>);

impl Snapshot {
    pub async fn take(sub: &Substrate) -> Result<Snapshot> {
        let mut out = BTreeMap::new();
        for kind in KINDS {
            let list = kind
                .api(&sub.kube.client, None)
                .list_metadata(&ListParams::default())
                .await
                .with_context(|| format!("list {}", kind.plural))?;
            let names = list.items.iter().map(|o| key(&o.metadata)).collect();
            out.insert(kind.plural, names);
        }
        Ok(Snapshot(out))
    }
}

fn key(m: &kube::api::ObjectMeta) -> (String, String) {
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// What the baseline will write.
pub struct Capture {
    /// Objects to create, by kind; service accounts first (other objects may refer to them).
    creates: Vec<(&'static Kind, Vec<Value>)>,
    /// TokenRequests the controller made.
    token_requests: u64,
    /// Merge patches standing for the controller's patches and updates: kind, namespace,
    /// name, count.
    patches: Vec<(&'static Kind, Option<String>, String, u64)>,
    vault: VaultWrites,
    /// A ServiceAccount token for the Kubernetes auth config (any valid JWT: Vault stores it).
    reviewer_jwt: String,
    notes: Vec<String>,
}

/// The controller's Vault writes, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VaultWrites {
    pub enable: u64,
    pub config: u64,
    pub roles: u64,
    /// Writes to auth/token/* (renew-self, revoke-self): path, count.
    pub token: BTreeMap<String, u64>,
    /// Writes the baseline cannot replay: "operation path", count.
    pub other: BTreeMap<String, u64>,
}

/// A TokenRequest for the API server's own audience, valid one hour.
fn token_request() -> TokenRequest {
    TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        },
        ..Default::default()
    }
}
