//! Tests of the reviewer's part of a plan, and snapshot fixtures shared with other tests.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::*;
use crate::k8s::snapshot::{ConfigMapState, ServiceAccountMeta};

/// An empty cluster snapshot (no ConfigMap, no objects).
pub(crate) fn empty_snapshot() -> ClusterSnapshot {
    ClusterSnapshot {
        configmap: ConfigMapState::Missing,
        namespaces: Default::default(),
        service_accounts: Default::default(),
        reviewer_secret: None,
        cluster_role_bindings: Vec::new(),
        cluster_roles: Vec::new(),
        changes: None,
        pending: None,
    }
}

/// A ServiceAccount's metadata.
pub(crate) fn sa(
    ns: &str,
    name: &str,
    annotations: &[(&str, &str)],
    labelled: bool,
) -> ServiceAccountMeta {
    let labels: Vec<(String, String)> = if labelled {
        managed_labels().into_iter().collect()
    } else {
        Vec::new()
    };
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    ServiceAccountMeta::with(ns, name, &format!("uid-{ns}-{name}"), annotations, &labels)
}

/// The reviewer token Secret as Kubernetes fills it in.
pub(crate) fn token_secret(token: Option<&str>) -> Secret {
    let mut secret = desired_token_secret();
    secret.metadata.uid = Some("uid-secret".into());
    secret.data =
        token.map(|t| BTreeMap::from([("token".to_string(), ByteString(t.as_bytes().to_vec()))]));
    secret
}

/// A snapshot holding all reviewer objects, as after a sync.
pub(crate) fn reviewer_in_place() -> ClusterSnapshot {
    let mut binding = desired_reviewer_binding("vault-auth");
    binding.metadata.uid = Some("uid-crb".into());
    ClusterSnapshot {
        service_accounts: vec![sa("vault-auth", REVIEWER_SERVICE_ACCOUNT, &[], true)].into(),
        reviewer_secret: Some(token_secret(Some("eyJ.reviewer.jwt"))),
        cluster_role_bindings: vec![binding],
        ..empty_snapshot()
    }
}

fn roles(selector: bool) -> RoleSet {
    let body = if selector {
        r#"{"bound_service_account_names": ["a"], "bound_service_account_namespace_selector": "{\"matchLabels\": {\"team\": \"x\"}}"}"#
    } else {
        r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["b"]}"#
    };
    crate::roles::parse_roles(&BTreeMap::from([("r".to_string(), body.to_string())]))
}

fn summary(plan: &ReviewerPlan) -> Vec<(KubeVerb, &str, &str)> {
    plan.changes
        .iter()
        .map(|c| (c.action, c.kind, c.name.as_str()))
        .collect()
}

#[test]
fn fresh_cluster_plans_every_reviewer_object() {
    let plan = plan_reviewer(&empty_snapshot(), "vault-auth", Some(&roles(true)));
    assert_eq!(
        summary(&plan),
        [
            (KubeVerb::Create, "ServiceAccount", REVIEWER_SERVICE_ACCOUNT),
            (
                KubeVerb::Create,
                "ClusterRoleBinding",
                REVIEWER_CLUSTER_ROLE_BINDING
            ),
            (KubeVerb::Create, "Secret", REVIEWER_TOKEN_SECRET),
            (KubeVerb::Create, "ClusterRole", NAMESPACE_READER),
            (KubeVerb::Create, "ClusterRoleBinding", NAMESPACE_READER),
        ]
    );
    assert_eq!(plan.token, ReviewerToken::Pending);
    assert!(plan.conflicts.is_empty());
    assert_eq!(plan.changes[0].namespace.as_deref(), Some("vault-auth"));
    // Every create carries the object it makes.
    assert!(plan.changes.iter().all(|c| c.object.is_some()));
}

#[test]
fn objects_in_place_plan_nothing_and_yield_the_token() {
    let plan = plan_reviewer(&reviewer_in_place(), "vault-auth", Some(&roles(false)));
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert_eq!(
        plan.token,
        ReviewerToken::Ready(SecretString::new("eyJ.reviewer.jwt"))
    );
}

#[test]
fn the_originals_binding_is_adopted_a_foreign_one_left_alone() {
    let mut snapshot = reviewer_in_place();
    let mut original = snapshot.cluster_role_bindings.remove(0);
    original.metadata.labels = None;
    original.metadata.resource_version = Some("41".into());
    snapshot.cluster_role_bindings = vec![original.clone()];
    let plan = plan_reviewer(&snapshot, "vault-auth", None);
    assert_eq!(
        summary(&plan),
        [(
            KubeVerb::Update,
            "ClusterRoleBinding",
            REVIEWER_CLUSTER_ROLE_BINDING
        )]
    );
    assert!(plan.changes[0].reason.contains("adopted"));
    let Some(Desired::Binding(b)) = &plan.changes[0].object else {
        panic!("a binding to write")
    };
    assert_eq!(b.metadata.resource_version.as_deref(), Some("41"));
    assert!(has_managed_label(b.metadata.labels.as_ref()));

    // Unlabelled with another subject, or another roleRef: not the original's shape.
    for foreign in [
        {
            let mut b = original.clone();
            b.subjects.as_mut().unwrap()[0].namespace = Some("elsewhere".into());
            b
        },
        {
            let mut b = original.clone();
            b.role_ref.name = "cluster-admin".into();
            b
        },
    ] {
        snapshot.cluster_role_bindings = vec![foreign];
        let plan = plan_reviewer(&snapshot, "vault-auth", None);
        assert!(plan.changes.is_empty(), "{:?}", plan.changes);
        assert_eq!(plan.conflicts.len(), 1, "{:?}", plan.conflicts);
        assert!(plan.conflicts[0].problem.contains("left alone"));
    }
}

#[test]
fn the_tools_own_binding_is_corrected() {
    let mut snapshot = reviewer_in_place();
    snapshot.cluster_role_bindings[0].subjects.as_mut().unwrap()[0].namespace =
        Some("elsewhere".into());
    let plan = plan_reviewer(&snapshot, "vault-auth", None);
    assert_eq!(
        summary(&plan),
        [(
            KubeVerb::Update,
            "ClusterRoleBinding",
            REVIEWER_CLUSTER_ROLE_BINDING
        )]
    );
    snapshot.cluster_role_bindings[0].role_ref.name = "cluster-admin".into();
    let plan = plan_reviewer(&snapshot, "vault-auth", None);
    assert_eq!(
        summary(&plan),
        [(
            KubeVerb::Replace,
            "ClusterRoleBinding",
            REVIEWER_CLUSTER_ROLE_BINDING
        )]
    );
}

#[test]
fn namespace_reader_goes_when_no_selector_is_used_and_stays_without_configmap() {
    let mut snapshot = reviewer_in_place();
    snapshot
        .cluster_role_bindings
        .push(desired_namespace_reader_binding("vault-auth"));
    snapshot.cluster_roles.push(desired_namespace_reader_role());
    let plan = plan_reviewer(&snapshot, "vault-auth", Some(&roles(false)));
    assert_eq!(
        summary(&plan),
        [
            (KubeVerb::Delete, "ClusterRoleBinding", NAMESPACE_READER),
            (KubeVerb::Delete, "ClusterRole", NAMESPACE_READER),
        ]
    );
    assert!(
        plan_reviewer(&snapshot, "vault-auth", Some(&roles(true)))
            .changes
            .is_empty()
    );
    assert!(
        plan_reviewer(&snapshot, "vault-auth", None)
            .changes
            .is_empty()
    );
    // A user's objects of those names are never deleted.
    snapshot.cluster_roles[0].metadata.labels = None;
    snapshot.cluster_role_bindings[1].metadata.labels = None;
    let plan = plan_reviewer(&snapshot, "vault-auth", Some(&roles(false)));
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
}

#[test]
fn token_secret_states() {
    let mut snapshot = reviewer_in_place();
    snapshot.reviewer_secret = Some(token_secret(None));
    let plan = plan_reviewer(&snapshot, "vault-auth", None);
    assert_eq!(plan.token, ReviewerToken::Pending);
    assert!(plan.changes.is_empty());

    let mut opaque = token_secret(None);
    opaque.type_ = Some("Opaque".into());
    snapshot.reviewer_secret = Some(opaque.clone());
    let plan = plan_reviewer(&snapshot, "vault-auth", None);
    assert_eq!(
        summary(&plan),
        [(KubeVerb::Replace, "Secret", REVIEWER_TOKEN_SECRET)]
    );
    assert_eq!(plan.token, ReviewerToken::Pending);

    // Not the tool's: left alone, and Vault cannot get a token.
    opaque.metadata.labels = None;
    snapshot.reviewer_secret = Some(opaque);
    let plan = plan_reviewer(&snapshot, "vault-auth", None);
    assert!(plan.changes.is_empty());
    assert_eq!(plan.token, ReviewerToken::Blocked);
    assert!(
        plan.conflicts[0]
            .to_string()
            .contains("token-reviewer-token")
    );
}

#[test]
fn token_secret_recognised_and_token_read() {
    let mut s = token_secret(None);
    assert!(is_reviewer_token_secret(&s));
    assert!(token_of(&s).is_none());
    s.data = Some(BTreeMap::from([(
        "token".to_string(),
        ByteString(b"eyJhbGciOi.x.y".to_vec()),
    )]));
    assert_eq!(token_of(&s).unwrap().expose(), "eyJhbGciOi.x.y");
    s.type_ = Some("Opaque".into());
    assert!(!is_reviewer_token_secret(&s));
}
