//! What a pass does to the token reviewer's Kubernetes objects, decided once, purely, from the
//! cluster snapshot: the `token-reviewer` ServiceAccount, its ClusterRoleBinding to
//! `system:auth-delegator`, its long-lived token Secret, and the namespace reader (a ClusterRole
//! and binding granting `get` on namespaces while a role uses a namespace selector).
//!
//! The sync pass carries out exactly these changes ([`crate::k8s::reviewer`]), and `plan` prints
//! them: the two cannot disagree. What the plan will not touch is a [`Conflict`]:
//! - an object of the tool's name that neither this tool created (its label) nor the original
//!   tool left in its exact shape is reported and left alone (the pass is then `Degraded`);
//! - the original's reviewer binding (no label, `system:auth-delegator`, the reviewer as only
//!   subject) is adopted: it gets the label, nothing else changes.
//!
//! Since Kubernetes 1.24 ServiceAccounts no longer get token Secrets automatically (the original
//! relied on that). A Secret of type `kubernetes.io/service-account-token` annotated with the
//! ServiceAccount's name is the documented way to get a non-expiring token: Kubernetes' token
//! controller fills in `data.token`. Vault keeps that token, so it must not expire.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::ObjectMeta;
use serde::Serialize;

use crate::k8s::snapshot::ClusterSnapshot;
use crate::names::{
    AUTH_DELEGATOR_CLUSTER_ROLE, MANAGED_BY_LABEL, MANAGED_BY_VALUE, NAMESPACE_READER,
    REVIEWER_CLUSTER_ROLE_BINDING, REVIEWER_SERVICE_ACCOUNT, REVIEWER_TOKEN_SECRET,
};
use crate::roles::RoleSet;
use crate::secret::Secret as SecretString;

/// Annotation Kubernetes' token controller reads to know which ServiceAccount a token Secret is for.
pub const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// Secret type whose token Kubernetes fills in.
pub const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// What is done to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KubeVerb {
    Create,
    /// Changed in place (subjects corrected, or the tool's label added when adopting).
    Update,
    /// Deleted and created again (an immutable field differs).
    Replace,
    Delete,
}

/// One planned change to a Kubernetes object, with the object to write.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KubeChange {
    pub action: KubeVerb,
    /// Kind, e.g. `ClusterRoleBinding`.
    pub kind: &'static str,
    /// Namespace of namespaced objects.
    pub namespace: Option<String>,
    pub name: String,
    /// Why, in a few words.
    pub reason: String,
    /// The object as it must be after the change (absent for a delete).
    #[serde(skip)]
    pub object: Option<Desired>,
}

impl KubeChange {
    /// `Kind namespace/name` or `Kind name`, for messages.
    pub fn object_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// An object to create or write.
#[derive(Clone, Debug, PartialEq)]
pub enum Desired {
    ServiceAccount,
    /// The binding, with the resourceVersion it replaces for an update.
    Binding(Box<ClusterRoleBinding>),
    Role(Box<ClusterRole>),
    TokenSecret(Box<Secret>),
}

/// An object of the tool's name that the plan leaves alone, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: String,
    pub problem: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}: {}", self.kind, self.name, self.problem),
            None => write!(f, "{} {}: {}", self.kind, self.name, self.problem),
        }
    }
}

/// The reviewer's token as the plan finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewerToken {
    /// Filled in by Kubernetes: the JWT Vault gets.
    Ready(SecretString),
    /// The Secret exists (or will) but Kubernetes has not filled in the token yet.
    Pending,
    /// No usable token can exist: the Secret's name is taken by an object that is not the
    /// tool's (see the plan's conflicts). Vault cannot be configured.
    Blocked,
}

/// The reviewer part of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewerPlan {
    pub changes: Vec<KubeChange>,
    pub conflicts: Vec<Conflict>,
    pub token: ReviewerToken,
}

/// Labels on everything the controller creates.
pub fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string())])
}

/// True when `labels` carry `app.kubernetes.io/managed-by=vault-auth-kubernetes`.
pub fn has_managed_label(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY_VALUE)
}

/// A ClusterRoleBinding of `cluster_role` to the reviewer in `namespace`, labelled as the tool's.
fn binding(name: &str, cluster_role: &str, namespace: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(managed_labels()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_string(),
            kind: "ClusterRole".to_string(),
            name: cluster_role.to_string(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_string(),
            name: REVIEWER_SERVICE_ACCOUNT.to_string(),
            namespace: Some(namespace.to_string()),
            api_group: None,
        }]),
    }
}

/// The reviewer binding as it must be.
pub fn desired_reviewer_binding(namespace: &str) -> ClusterRoleBinding {
    binding(
        REVIEWER_CLUSTER_ROLE_BINDING,
        AUTH_DELEGATOR_CLUSTER_ROLE,
        namespace,
    )
}

/// The namespace-reader binding as it must be.
pub fn desired_namespace_reader_binding(namespace: &str) -> ClusterRoleBinding {
    binding(NAMESPACE_READER, NAMESPACE_READER, namespace)
}

/// The namespace-reader ClusterRole: `get` on namespaces, what Vault needs to read their labels.
pub fn desired_namespace_reader_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(NAMESPACE_READER.to_string()),
            labels: Some(managed_labels()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["namespaces".to_string()]),
            verbs: vec!["get".to_string()],
            ..Default::default()
        }]),
        aggregation_rule: None,
    }
}

/// The reviewer token Secret as the tool creates it.
pub fn desired_token_secret() -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(REVIEWER_TOKEN_SECRET.to_string()),
            labels: Some(managed_labels()),
            annotations: Some(BTreeMap::from([(
                SA_NAME_ANNOTATION.to_string(),
                REVIEWER_SERVICE_ACCOUNT.to_string(),
            )])),
            ..Default::default()
        },
        type_: Some(SA_TOKEN_TYPE.to_string()),
        ..Default::default()
    }
}

/// (kind, name, namespace) of a binding's subjects, for comparisons.
fn subjects(b: &ClusterRoleBinding) -> Vec<(String, String, String)> {
    b.subjects
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.kind, s.name, s.namespace.unwrap_or_default()))
        .collect()
}

/// How an existing binding relates to the desired one.
#[derive(Debug, PartialEq, Eq)]
pub enum BindingState {
    /// As desired.
    InPlace,
    /// The tool's, subjects drifted: an update fixes it.
    Drifted,
    /// The tool's, roleRef drifted: it is immutable, so delete and create.
    RoleRefDrifted,
    /// Not labelled, in the original tool's exact shape: adopt it (add the label).
    Original,
    /// Not the tool's and not the original's shape: leave it alone.
    Foreign,
}

/// Compares a binding with the desired one.
pub fn binding_state(actual: &ClusterRoleBinding, desired: &ClusterRoleBinding) -> BindingState {
    let ours = has_managed_label(actual.metadata.labels.as_ref());
    let same_shape = actual.role_ref == desired.role_ref && subjects(actual) == subjects(desired);
    match (ours, same_shape) {
        (true, true) => BindingState::InPlace,
        (true, false) if actual.role_ref != desired.role_ref => BindingState::RoleRefDrifted,
        (true, false) => BindingState::Drifted,
        (false, true) => BindingState::Original,
        (false, false) => BindingState::Foreign,
    }
}

/// True when the Secret is a ServiceAccount token Secret for the reviewer.
pub fn is_reviewer_token_secret(secret: &Secret) -> bool {
    secret.type_.as_deref() == Some(SA_TOKEN_TYPE)
        && secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SA_NAME_ANNOTATION))
            .map(String::as_str)
            == Some(REVIEWER_SERVICE_ACCOUNT)
}

/// The token Kubernetes filled in, if any.
pub fn token_of(secret: &Secret) -> Option<SecretString> {
    let bytes = secret.data.as_ref()?.get("token")?;
    let token = String::from_utf8(bytes.0.clone()).ok()?;
    (!token.trim().is_empty()).then(|| SecretString::new(token.trim().to_string()))
}

/// Builds plan entries; keeps the call sites short.
struct Planner<'a> {
    namespace: &'a str,
    plan: ReviewerPlan,
}

impl Planner<'_> {
    fn change(
        &mut self,
        action: KubeVerb,
        kind: &'static str,
        namespaced: bool,
        name: &str,
        reason: &str,
        object: Option<Desired>,
    ) {
        self.plan.changes.push(KubeChange {
            action,
            kind,
            namespace: namespaced.then(|| self.namespace.to_string()),
            name: name.to_string(),
            reason: reason.to_string(),
            object,
        });
    }

    fn conflict(&mut self, kind: &'static str, namespaced: bool, name: &str, problem: String) {
        self.plan.conflicts.push(Conflict {
            kind,
            namespace: namespaced.then(|| self.namespace.to_string()),
            name: name.to_string(),
            problem,
        });
    }

    /// The change that brings the binding called like `desired` there.
    fn binding(&mut self, snapshot: &ClusterSnapshot, desired: ClusterRoleBinding) {
        let name = desired.metadata.name.clone().unwrap_or_default();
        let Some(actual) = find(&snapshot.cluster_role_bindings, &name) else {
            let reason = format!("grants {} to the reviewer", desired.role_ref.name);
            let object = Desired::Binding(Box::new(desired));
            self.change(
                KubeVerb::Create,
                "ClusterRoleBinding",
                false,
                &name,
                &reason,
                Some(object),
            );
            return;
        };
        let mut update = desired.clone();
        update.metadata.resource_version = actual.metadata.resource_version.clone();
        match binding_state(actual, &desired) {
            BindingState::InPlace => {}
            BindingState::Drifted => self.change(
                KubeVerb::Update,
                "ClusterRoleBinding",
                false,
                &name,
                "its subjects differ from the reviewer",
                Some(Desired::Binding(Box::new(update))),
            ),
            BindingState::RoleRefDrifted => self.change(
                KubeVerb::Replace,
                "ClusterRoleBinding",
                false,
                &name,
                &format!("its roleRef differs (must be {})", desired.role_ref.name),
                Some(Desired::Binding(Box::new(desired))),
            ),
            BindingState::Original => self.change(
                KubeVerb::Update,
                "ClusterRoleBinding",
                false,
                &name,
                "adopted: the original tool's binding gets this tool's label",
                Some(Desired::Binding(Box::new(update))),
            ),
            BindingState::Foreign => self.conflict(
                "ClusterRoleBinding",
                false,
                &name,
                format!(
                    "exists with roleRef {} and subjects {:?}, and was not created by this tool: \
                     left alone; remove it, or make it bind {} to ServiceAccount {}/{}",
                    actual.role_ref.name,
                    subjects(actual)
                        .into_iter()
                        .map(|(kind, name, ns)| format!("{kind} {ns}/{name}"))
                        .collect::<Vec<_>>(),
                    desired.role_ref.name,
                    self.namespace,
                    REVIEWER_SERVICE_ACCOUNT
                ),
            ),
        }
    }
}

fn find<'a>(bindings: &'a [ClusterRoleBinding], name: &str) -> Option<&'a ClusterRoleBinding> {
    bindings
        .iter()
        .find(|b| b.metadata.name.as_deref() == Some(name))
}

/// True when a role of the ConfigMap binds namespaces by label, so Vault must read labels.
pub fn namespace_reader_needed(roles: &RoleSet) -> bool {
    roles.roles.values().any(|r| r.namespace_selector.is_some())
}

/// What a pass does to the reviewer's objects. `roles` is `None` when the ConfigMap is missing:
/// the namespace reader is then left as it is (nothing is removed on a missing ConfigMap).
pub fn plan_reviewer(
    snapshot: &ClusterSnapshot,
    namespace: &str,
    roles: Option<&RoleSet>,
) -> ReviewerPlan {
    let mut p = Planner {
        namespace,
        plan: ReviewerPlan {
            changes: Vec::new(),
            conflicts: Vec::new(),
            token: ReviewerToken::Pending,
        },
    };
    if snapshot
        .service_account(namespace, REVIEWER_SERVICE_ACCOUNT)
        .is_none()
    {
        p.change(
            KubeVerb::Create,
            "ServiceAccount",
            true,
            REVIEWER_SERVICE_ACCOUNT,
            "the token reviewer Vault calls TokenReview as",
            Some(Desired::ServiceAccount),
        );
    }
    p.binding(snapshot, desired_reviewer_binding(namespace));
    p.plan.token = match &snapshot.reviewer_secret {
        Some(secret) if is_reviewer_token_secret(secret) => match token_of(secret) {
            Some(jwt) => ReviewerToken::Ready(jwt),
            None => ReviewerToken::Pending,
        },
        Some(secret) if has_managed_label(secret.metadata.labels.as_ref()) => {
            p.change(
                KubeVerb::Replace,
                "Secret",
                true,
                REVIEWER_TOKEN_SECRET,
                "made by this tool but not a token Secret for the reviewer",
                Some(Desired::TokenSecret(Box::new(desired_token_secret()))),
            );
            ReviewerToken::Pending
        }
        Some(_) => {
            p.conflict(
                "Secret",
                true,
                REVIEWER_TOKEN_SECRET,
                format!(
                    "exists but is not a token Secret for {REVIEWER_SERVICE_ACCOUNT} and was not \
                     created by this tool: left alone, so Vault cannot be given the reviewer's \
                     token; remove or rename it"
                ),
            );
            ReviewerToken::Blocked
        }
        None => {
            p.change(
                KubeVerb::Create,
                "Secret",
                true,
                REVIEWER_TOKEN_SECRET,
                "long-lived token of the reviewer, filled in by Kubernetes",
                Some(Desired::TokenSecret(Box::new(desired_token_secret()))),
            );
            ReviewerToken::Pending
        }
    };
    if let Some(roles) = roles {
        plan_namespace_reader(&mut p, snapshot, namespace_reader_needed(roles));
    }
    p.plan
}

/// The namespace reader exists exactly while a role uses a namespace selector.
fn plan_namespace_reader(p: &mut Planner<'_>, snapshot: &ClusterSnapshot, needed: bool) {
    let role = snapshot
        .cluster_roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(NAMESPACE_READER));
    let binding = find(&snapshot.cluster_role_bindings, NAMESPACE_READER);
    if needed {
        match role {
            None => p.change(
                KubeVerb::Create,
                "ClusterRole",
                false,
                NAMESPACE_READER,
                "a role uses a namespace selector: Vault reads namespace labels",
                Some(Desired::Role(Box::new(desired_namespace_reader_role()))),
            ),
            Some(r) if !has_managed_label(r.metadata.labels.as_ref()) => p.conflict(
                "ClusterRole",
                false,
                NAMESPACE_READER,
                "exists and was not created by this tool: left alone; Vault may not be able to \
                 read namespace labels"
                    .to_string(),
            ),
            Some(_) => {}
        }
        p.binding(snapshot, desired_namespace_reader_binding(p.namespace));
        return;
    }
    let reason = "no role uses a namespace selector";
    // Only the tool's own objects are removed.
    if binding.is_some_and(|b| has_managed_label(b.metadata.labels.as_ref())) {
        p.change(
            KubeVerb::Delete,
            "ClusterRoleBinding",
            false,
            NAMESPACE_READER,
            reason,
            None,
        );
    }
    if role.is_some_and(|r| has_managed_label(r.metadata.labels.as_ref())) {
        p.change(
            KubeVerb::Delete,
            "ClusterRole",
            false,
            NAMESPACE_READER,
            reason,
            None,
        );
    }
}

#[cfg(test)]
#[path = "reviewer_plan_tests.rs"]
pub(crate) mod tests;
