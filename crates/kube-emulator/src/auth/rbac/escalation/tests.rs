use super::super::fixtures::*;
use super::super::{Decision, check_rbac_write};
use crate::auth::authn::Authenticator;
use crate::auth::testing::MemoryLookup;
use serde_json::json;

fn write(
    lookup: &MemoryLookup,
    resource: &str,
    namespace: Option<&str>,
    object: &serde_json::Value,
) -> Decision {
    check_rbac_write(&sa(), resource, namespace, object, lookup)
}

#[test]
fn binding_cluster_admin_without_its_rights_is_refused_with_kubernetes_message() {
    let lookup = cluster();
    let reason = denied(write(
        &lookup,
        "clusterrolebindings",
        None,
        &binding("grab", None, "ClusterRole/cluster-admin"),
    ));
    let expected = concat!(
        r#"clusterrolebindings.rbac.authorization.k8s.io "grab" is forbidden: user "system:serviceaccount:ns:sa" "#,
        r#"(groups=["system:serviceaccounts" "system:serviceaccounts:ns" "system:authenticated"]) "#,
        "is attempting to grant RBAC permissions not currently held:\n",
        r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}"#,
        "\n",
        r#"{NonResourceURLs:["*"], Verbs:["*"]}"#,
    );
    assert_eq!(reason, expected);
}

#[test]
fn bind_on_a_named_cluster_role_allows_binding_that_role_only() {
    let mut lookup = cluster();
    let rules = json!([
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"], "verbs": ["create"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["view"]}
    ]);
    lookup.put("clusterroles", role("binder", None, rules));
    bind(&mut lookup, "sa-binder", None, "ClusterRole/binder");
    let to_view = binding("v", None, "ClusterRole/view");
    assert_eq!(
        write(&lookup, "clusterrolebindings", None, &to_view),
        Decision::Allow
    );
    let to_edit = binding("e", None, "ClusterRole/edit");
    let reason = denied(write(&lookup, "clusterrolebindings", None, &to_edit));
    assert!(
        reason.contains("is attempting to grant RBAC permissions not currently held"),
        "{reason}"
    );
}

#[test]
fn holding_a_roles_permissions_is_enough_to_bind_it() {
    let mut lookup = cluster();
    bind(&mut lookup, "sa-edit", Some("team"), "ClusterRole/edit");
    let to_view = binding("v", Some("team"), "ClusterRole/view");
    assert_eq!(
        write(&lookup, "rolebindings", Some("team"), &to_view),
        Decision::Allow
    );
    let elsewhere = binding("v", Some("other"), "ClusterRole/view");
    let reason = denied(write(&lookup, "rolebindings", Some("other"), &elsewhere));
    let prefix = r#"rolebindings.rbac.authorization.k8s.io "v" is forbidden: user"#;
    assert!(reason.starts_with(prefix), "{reason}");
    let to_admin = binding("a", Some("team"), "ClusterRole/admin");
    let reason = denied(write(&lookup, "rolebindings", Some("team"), &to_admin));
    let missing = concat!(
        r#"{APIGroups:["rbac.authorization.k8s.io"], Resources:["roles"], "#,
        r#"Verbs:["create" "delete" "deletecollection" "get" "list" "patch" "update" "watch"]}"#
    );
    assert!(reason.contains(missing), "{reason}");
}

#[test]
fn bind_granted_in_a_namespace_delegates_role_bindings_there_only() {
    let mut lookup = cluster();
    let rules = json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                        "verbs": ["bind"], "resourceNames": ["admin"]}]);
    lookup.put("roles", role("binder", Some("team"), rules));
    bind(&mut lookup, "sa-binder", Some("team"), "Role/binder");
    let in_team = binding("a", Some("team"), "ClusterRole/admin");
    assert_eq!(
        write(&lookup, "rolebindings", Some("team"), &in_team),
        Decision::Allow
    );
    let elsewhere = binding("a", Some("other"), "ClusterRole/admin");
    assert!(is_denied(write(
        &lookup,
        "rolebindings",
        Some("other"),
        &elsewhere
    )));
}

#[test]
fn binding_to_a_missing_role_is_refused() {
    let dangling = binding("d", None, "ClusterRole/ghost");
    assert_eq!(
        denied(write(&cluster(), "clusterrolebindings", None, &dangling)),
        r#"clusterroles.rbac.authorization.k8s.io "ghost" not found"#
    );
}

#[test]
fn creating_a_role_needs_escalate_or_its_rules() {
    let mut lookup = cluster();
    let held = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]);
    lookup.put("roles", role("cm", Some("ns"), held));
    bind(&mut lookup, "sa-cm", Some("ns"), "Role/cm");
    let subset = role(
        "r",
        Some("ns"),
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
    );
    assert_eq!(
        write(&lookup, "roles", Some("ns"), &subset),
        Decision::Allow
    );
    let secrets = role(
        "r",
        Some("ns"),
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
    );
    let reason = denied(write(&lookup, "roles", Some("ns"), &secrets));
    let prefix =
        r#"roles.rbac.authorization.k8s.io "r" is forbidden: user "system:serviceaccount:ns:sa""#;
    assert!(reason.starts_with(prefix), "{reason}");
    let suffix =
        "not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}";
    assert!(reason.ends_with(suffix), "{reason}");

    let escalate = json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}]);
    lookup.put("roles", role("escalator", Some("ns"), escalate));
    bind(&mut lookup, "sa-esc", Some("ns"), "Role/escalator");
    assert_eq!(
        write(&lookup, "roles", Some("ns"), &secrets),
        Decision::Allow
    );
}

#[test]
fn aggregation_rules_need_full_authority() {
    let lookup = cluster();
    let mut aggregated = role("agg", None, json!([]));
    aggregated["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]});
    assert_eq!(
        denied(write(&lookup, "clusterroles", None, &aggregated)),
        r#"clusterroles.rbac.authorization.k8s.io "agg" is forbidden: must have cluster-admin privileges to use the aggregationRule"#
    );
    let admin = Authenticator::admin_user();
    assert_eq!(
        check_rbac_write(&admin, "clusterroles", None, &aggregated, &lookup),
        Decision::Allow
    );
}

#[test]
fn other_resources_are_not_checked() {
    let secret = json!({"metadata": {"name": "s", "namespace": "ns"}});
    assert_eq!(
        write(&cluster(), "secrets", Some("ns"), &secret),
        Decision::Allow
    );
}
