//! What a sync would do to the reviewer's Kubernetes objects (its ServiceAccount, its
//! ClusterRoleBinding to `system:auth-delegator`, its token Secret, and the namespace reader),
//! found from a [`ClusterSnapshot`] without writing anything.
//!
//! The decisions mirror [`crate::k8s::reviewer::Reviewer::ensure`] and
//! [`crate::k8s::reviewer::Reviewer::ensure_namespace_reader`], using their own pure helpers
//! ([`binding_drift`], [`is_reviewer_token_secret`], [`token_of`]) so the two cannot disagree on
//! what "as desired" means.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::Api;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::k8s::reviewer::{
    BindingDrift, binding_drift, desired_reviewer_binding, is_reviewer_token_secret, token_of,
};
use crate::k8s::snapshot::ClusterSnapshot;
use crate::names::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, NAMESPACE_READER, REVIEWER_CLUSTER_ROLE_BINDING,
    REVIEWER_SERVICE_ACCOUNT, REVIEWER_TOKEN_SECRET,
};
use crate::roles::RoleSet;
use crate::secret::Secret as SecretString;

/// What would be done to one Kubernetes object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KubeVerb {
    Create,
    /// Changed in place (e.g. subjects or the tool's label added).
    Update,
    /// Deleted and created again (an immutable field differs).
    Replace,
    Delete,
}

/// One planned change to a Kubernetes object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KubeChange {
    pub action: KubeVerb,
    /// Kind, e.g. `ClusterRoleBinding`.
    pub kind: &'static str,
    /// Namespace of namespaced objects.
    pub namespace: Option<String>,
    pub name: String,
    /// Why, in a few words.
    pub reason: String,
}

/// The reviewer's token as a sync would find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewerToken {
    /// Filled in by Kubernetes: the JWT Vault gets.
    Ready(SecretString),
    /// The Secret exists but Kubernetes has not filled in the token yet.
    Pending,
    /// The Secret would be created (or replaced): a new token.
    New,
}

/// The reviewer part of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewerPlan {
    pub changes: Vec<KubeChange>,
    pub token: ReviewerToken,
}

/// True when `labels` carry `app.kubernetes.io/managed-by=vault-auth-kubernetes`.
pub fn has_managed_label(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY_VALUE)
}

/// The namespace-reader binding as the controller creates it.
pub fn desired_namespace_reader_binding(namespace: &str) -> ClusterRoleBinding {
    let mut binding = desired_reviewer_binding(namespace);
    binding.metadata.name = Some(NAMESPACE_READER.to_string());
    binding.role_ref.name = NAMESPACE_READER.to_string();
    binding
}

/// The bindings of the reviewer and the namespace reader that exist without the tool's label
/// (a snapshot lists only labelled ones): the original tool made the reviewer binding without
/// labels, and a sync adopts it. Read-only (one GET per name not in the snapshot).
pub async fn unlabelled_bindings(
    client: &kube::Client,
    snapshot: &ClusterSnapshot,
) -> Result<Vec<ClusterRoleBinding>> {
    let api: Api<ClusterRoleBinding> = Api::all(client.clone());
    let mut found = Vec::new();
    for name in [REVIEWER_CLUSTER_ROLE_BINDING, NAMESPACE_READER] {
        if find_binding(&snapshot.cluster_role_bindings, name).is_some() {
            continue;
        }
        let got = api.get_opt(name).await.map_err(|source| Error::Kube {
            operation: format!("get ClusterRoleBinding {name}"),
            source,
        })?;
        found.extend(got);
    }
    Ok(found)
}

fn find_binding<'a>(
    bindings: &'a [ClusterRoleBinding],
    name: &str,
) -> Option<&'a ClusterRoleBinding> {
    bindings
        .iter()
        .find(|b| b.metadata.name.as_deref() == Some(name))
}

fn change(
    action: KubeVerb,
    kind: &'static str,
    namespace: Option<&str>,
    name: &str,
    reason: &str,
) -> KubeChange {
    KubeChange {
        action,
        kind,
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

/// What a sync would do to the reviewer objects. `roles` is `None` when the ConfigMap is
/// missing (a sync then leaves the namespace reader alone). Fails, as a sync would, when a
/// Secret of the token's name exists that is neither a token Secret nor the tool's.
pub fn plan_reviewer(
    snapshot: &ClusterSnapshot,
    namespace: &str,
    roles: Option<&RoleSet>,
    unlabelled: &[ClusterRoleBinding],
) -> Result<ReviewerPlan> {
    let mut changes = Vec::new();
    if snapshot
        .service_account(namespace, REVIEWER_SERVICE_ACCOUNT)
        .is_none()
    {
        changes.push(change(
            KubeVerb::Create,
            "ServiceAccount",
            Some(namespace),
            REVIEWER_SERVICE_ACCOUNT,
            "the token reviewer Vault calls TokenReview as",
        ));
    }
    changes.extend(binding_change(
        snapshot,
        unlabelled,
        &desired_reviewer_binding(namespace),
    ));
    let token = match &snapshot.reviewer_secret {
        Some(secret) if is_reviewer_token_secret(secret) => match token_of(secret) {
            Some(jwt) => ReviewerToken::Ready(jwt),
            None => ReviewerToken::Pending,
        },
        Some(secret) if has_managed_label(secret.metadata.labels.as_ref()) => {
            changes.push(change(
                KubeVerb::Replace,
                "Secret",
                Some(namespace),
                REVIEWER_TOKEN_SECRET,
                "made by this tool but not a token Secret for the reviewer",
            ));
            ReviewerToken::New
        }
        Some(_) => {
            return Err(Error::Conflict(format!(
                "Secret {namespace}/{REVIEWER_TOKEN_SECRET} exists but is not a token Secret for \
                 {REVIEWER_SERVICE_ACCOUNT} and was not created by this tool: a sync would stop \
                 here; remove or rename it"
            )));
        }
        None => {
            changes.push(change(
                KubeVerb::Create,
                "Secret",
                Some(namespace),
                REVIEWER_TOKEN_SECRET,
                "long-lived token of the reviewer, filled in by Kubernetes",
            ));
            ReviewerToken::New
        }
    };
    if let Some(roles) = roles {
        changes.extend(namespace_reader_changes(
            snapshot, namespace, roles, unlabelled,
        ));
    }
    Ok(ReviewerPlan { changes, token })
}

/// A sync grants the reviewer `get` on namespaces only while a role uses a namespace selector.
fn namespace_reader_changes(
    snapshot: &ClusterSnapshot,
    namespace: &str,
    roles: &RoleSet,
    unlabelled: &[ClusterRoleBinding],
) -> Vec<KubeChange> {
    let needed = roles
        .roles
        .values()
        .any(|role| role.namespace_selector.is_some());
    let has_role = snapshot
        .cluster_roles
        .iter()
        .any(|r| r.metadata.name.as_deref() == Some(NAMESPACE_READER));
    let has_binding = find_binding(&snapshot.cluster_role_bindings, NAMESPACE_READER).is_some();
    let mut changes = Vec::new();
    if needed {
        if !has_role {
            changes.push(change(
                KubeVerb::Create,
                "ClusterRole",
                None,
                NAMESPACE_READER,
                "a role uses a namespace selector: Vault reads namespace labels",
            ));
        }
        changes.extend(binding_change(
            snapshot,
            unlabelled,
            &desired_namespace_reader_binding(namespace),
        ));
    } else {
        let reason = "no role uses a namespace selector";
        if has_binding {
            changes.push(change(
                KubeVerb::Delete,
                "ClusterRoleBinding",
                None,
                NAMESPACE_READER,
                reason,
            ));
        }
        if has_role {
            changes.push(change(
                KubeVerb::Delete,
                "ClusterRole",
                None,
                NAMESPACE_READER,
                reason,
            ));
        }
    }
    changes
}

/// The change that brings a binding to `desired`, as `Reviewer::ensure_binding` would make it.
fn binding_change(
    snapshot: &ClusterSnapshot,
    unlabelled: &[ClusterRoleBinding],
    desired: &ClusterRoleBinding,
) -> Option<KubeChange> {
    let name = desired.metadata.name.as_deref().unwrap_or_default();
    let actual = find_binding(&snapshot.cluster_role_bindings, name)
        .or_else(|| find_binding(unlabelled, name));
    let (action, reason) = match actual {
        None => (
            KubeVerb::Create,
            format!("grants {} to the reviewer", desired.role_ref.name),
        ),
        Some(actual) => match binding_drift(actual, desired) {
            BindingDrift::None => return None,
            BindingDrift::Update if !has_managed_label(actual.metadata.labels.as_ref()) => (
                KubeVerb::Update,
                "adopted: gets the tool's label (and the reviewer as subject)".to_string(),
            ),
            BindingDrift::Update => (KubeVerb::Update, "subjects differ".to_string()),
            BindingDrift::Recreate => (
                KubeVerb::Replace,
                format!("roleRef differs (must be {})", desired.role_ref.name),
            ),
        },
    };
    Some(change(action, "ClusterRoleBinding", None, name, &reason))
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
pub(crate) mod tests;
