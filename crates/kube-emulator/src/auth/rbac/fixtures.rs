//! Test fixtures shared by the RBAC tests: a cluster with the bootstrap policy, a
//! ServiceAccount user, and builders for request attributes, roles and bindings.
use super::{Attributes, Decision, bootstrap_objects};
use crate::auth::testing::MemoryLookup;
use crate::auth::{UserInfo, service_account_user};
use serde_json::{Value, json};

/// A store holding Kubernetes' bootstrap roles and bindings.
pub(crate) fn cluster() -> MemoryLookup {
    let mut lookup = MemoryLookup::default();
    for (resource, object) in bootstrap_objects() {
        lookup.put(&resource, object);
    }
    lookup
}

/// The ServiceAccount ns/sa.
pub(crate) fn sa() -> UserInfo {
    service_account_user("ns", "sa", "uid-1")
}

/// A resource request.
pub(crate) fn attrs(
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> Attributes {
    Attributes {
        verb: verb.into(),
        api_group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        resource_request: true,
        ..Attributes::default()
    }
}

/// A non-resource request.
pub(crate) fn path(verb: &str, path: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        path: path.into(),
        ..Attributes::default()
    }
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    match namespace {
        Some(namespace) => json!({"name": name, "namespace": namespace}),
        None => json!({"name": name}),
    }
}

/// A Role (with namespace) or ClusterRole (without).
pub(crate) fn role(name: &str, namespace: Option<&str>, rules: Value) -> Value {
    let kind = if namespace.is_some() {
        "Role"
    } else {
        "ClusterRole"
    };
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
           "metadata": metadata(name, namespace), "rules": rules})
}

/// A RoleBinding (with namespace) or ClusterRoleBinding (without) of `role_ref` ("Role/x" or
/// "ClusterRole/x") to `subjects`.
pub(crate) fn binding_to(
    name: &str,
    namespace: Option<&str>,
    role_ref: &str,
    subjects: Value,
) -> Value {
    let kind = if namespace.is_some() {
        "RoleBinding"
    } else {
        "ClusterRoleBinding"
    };
    let (role_kind, role_name) = role_ref.split_once('/').unwrap();
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
           "metadata": metadata(name, namespace),
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
           "subjects": subjects})
}

/// A binding of `role_ref` to the ServiceAccount ns/sa.
pub(crate) fn binding(name: &str, namespace: Option<&str>, role_ref: &str) -> Value {
    binding_to(
        name,
        namespace,
        role_ref,
        json!([{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]),
    )
}

/// Stores a binding of `role_ref` to ns/sa.
pub(crate) fn bind(lookup: &mut MemoryLookup, name: &str, namespace: Option<&str>, role_ref: &str) {
    let resource = if namespace.is_some() {
        "rolebindings"
    } else {
        "clusterrolebindings"
    };
    lookup.put(resource, binding(name, namespace, role_ref));
}

/// The reason of a denial; panics on Allow.
pub(crate) fn denied(decision: Decision) -> String {
    match decision {
        Decision::Deny { reason } => reason,
        Decision::Allow => panic!("expected a denial"),
    }
}

pub(crate) fn is_denied(decision: Decision) -> bool {
    matches!(decision, Decision::Deny { .. })
}
