//! Tests of the reviewer part of a plan, and snapshot fixtures shared with the other
//! commands' tests.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;

use super::*;
use crate::k8s::reviewer::managed_labels;
use crate::k8s::snapshot::{ConfigMapState, ServiceAccountMeta};

/// An empty cluster snapshot (no ConfigMap, no objects).
pub(crate) fn empty_snapshot() -> ClusterSnapshot {
    ClusterSnapshot {
        configmap: ConfigMapState::Missing,
        namespaces: Vec::new(),
        service_accounts: Vec::new(),
        reviewer_secret: None,
        cluster_role_bindings: Vec::new(),
        cluster_roles: Vec::new(),
    }
}

/// A ServiceAccount's metadata.
pub(crate) fn sa(
    ns: &str,
    name: &str,
    annotations: &[(&str, &str)],
    labelled: bool,
) -> ServiceAccountMeta {
    ServiceAccountMeta {
        namespace: ns.into(),
        name: name.into(),
        uid: format!("uid-{ns}-{name}"),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        labels: if labelled {
            managed_labels()
        } else {
            BTreeMap::new()
        },
    }
}

/// The reviewer token Secret as Kubernetes fills it in.
pub(crate) fn token_secret(token: Option<&str>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(REVIEWER_TOKEN_SECRET.into()),
            uid: Some("uid-secret".into()),
            labels: Some(managed_labels()),
            annotations: Some(BTreeMap::from([(
                "kubernetes.io/service-account.name".to_string(),
                REVIEWER_SERVICE_ACCOUNT.to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/service-account-token".into()),
        data: token
            .map(|t| BTreeMap::from([("token".to_string(), ByteString(t.as_bytes().to_vec()))])),
        ..Default::default()
    }
}

/// A snapshot holding all reviewer objects, as after a sync.
pub(crate) fn reviewer_in_place() -> ClusterSnapshot {
    let mut binding = desired_reviewer_binding("vault-auth");
    binding.metadata.uid = Some("uid-crb".into());
    ClusterSnapshot {
        service_accounts: vec![sa("vault-auth", REVIEWER_SERVICE_ACCOUNT, &[], true)],
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
fn fresh_cluster_plans_every_reviewer_object_and_a_new_token() {
    let plan = plan_reviewer(&empty_snapshot(), "vault-auth", Some(&roles(true)), &[]).unwrap();
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
    assert_eq!(plan.token, ReviewerToken::New);
    assert_eq!(plan.changes[0].namespace.as_deref(), Some("vault-auth"));
}

#[test]
fn objects_in_place_plan_nothing_and_yield_the_token() {
    let plan = plan_reviewer(&reviewer_in_place(), "vault-auth", Some(&roles(false)), &[]).unwrap();
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert_eq!(
        plan.token,
        ReviewerToken::Ready(SecretString::new("eyJ.reviewer.jwt"))
    );
}

#[test]
fn unlabelled_binding_is_adopted_and_drift_is_planned() {
    let mut snapshot = reviewer_in_place();
    let mut original = snapshot.cluster_role_bindings.remove(0);
    original.metadata.labels = None;
    let plan = plan_reviewer(&snapshot, "vault-auth", None, &[original.clone()]).unwrap();
    assert_eq!(
        summary(&plan),
        [(
            KubeVerb::Update,
            "ClusterRoleBinding",
            REVIEWER_CLUSTER_ROLE_BINDING
        )]
    );
    assert!(plan.changes[0].reason.contains("adopted"));

    original.metadata.labels = Some(managed_labels());
    original.role_ref.name = "cluster-admin".into();
    snapshot.cluster_role_bindings = vec![original];
    let plan = plan_reviewer(&snapshot, "vault-auth", None, &[]).unwrap();
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
    snapshot
        .cluster_roles
        .push(k8s_openapi::api::rbac::v1::ClusterRole {
            metadata: ObjectMeta {
                name: Some(NAMESPACE_READER.into()),
                labels: Some(managed_labels()),
                ..Default::default()
            },
            ..Default::default()
        });
    let plan = plan_reviewer(&snapshot, "vault-auth", Some(&roles(false)), &[]).unwrap();
    assert_eq!(
        summary(&plan),
        [
            (KubeVerb::Delete, "ClusterRoleBinding", NAMESPACE_READER),
            (KubeVerb::Delete, "ClusterRole", NAMESPACE_READER),
        ]
    );
    assert!(
        plan_reviewer(&snapshot, "vault-auth", Some(&roles(true)), &[])
            .unwrap()
            .changes
            .is_empty()
    );
    assert!(
        plan_reviewer(&snapshot, "vault-auth", None, &[])
            .unwrap()
            .changes
            .is_empty()
    );
}

#[test]
fn token_secret_states() {
    let mut snapshot = reviewer_in_place();
    snapshot.reviewer_secret = Some(token_secret(None));
    let plan = plan_reviewer(&snapshot, "vault-auth", None, &[]).unwrap();
    assert_eq!(plan.token, ReviewerToken::Pending);
    assert!(plan.changes.is_empty());

    let mut opaque = token_secret(None);
    opaque.type_ = Some("Opaque".into());
    snapshot.reviewer_secret = Some(opaque.clone());
    let plan = plan_reviewer(&snapshot, "vault-auth", None, &[]).unwrap();
    assert_eq!(
        summary(&plan),
        [(KubeVerb::Replace, "Secret", REVIEWER_TOKEN_SECRET)]
    );
    assert_eq!(plan.token, ReviewerToken::New);

    // Not the tool's: a sync stops with a conflict, so the plan does too.
    opaque.metadata.labels = None;
    snapshot.reviewer_secret = Some(opaque);
    let err = plan_reviewer(&snapshot, "vault-auth", None, &[]).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
}
