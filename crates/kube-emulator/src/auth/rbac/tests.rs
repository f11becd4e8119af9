use super::fixtures::*;
use super::*;
use crate::auth::authn::Authenticator;
use crate::auth::service_account_user;
use crate::auth::testing::MemoryLookup;
use serde_json::{Value, json};

const SA: &str = r#"User "system:serviceaccount:ns:sa""#;

#[test]
fn service_account_without_bindings_is_denied_with_kubernetes_message() {
    let request = attrs("create", "", "serviceaccounts", "default", "");
    let reason = denied(authorize(&sa(), &request, &cluster()));
    let expected = format!(
        r#"serviceaccounts is forbidden: {SA} cannot create resource "serviceaccounts" in API group "" in the namespace "default""#
    );
    assert_eq!(reason, expected);
    assert_eq!(forbidden_message(&sa(), &request), expected);
}

#[test]
fn forbidden_messages_cover_named_cluster_scoped_subresource_and_path_requests() {
    let named = attrs("get", "", "serviceaccounts", "default", "x");
    assert_eq!(
        forbidden_message(&sa(), &named),
        format!(
            r#"serviceaccounts "x" is forbidden: {SA} cannot get resource "serviceaccounts" in API group "" in the namespace "default""#
        )
    );
    let cluster_scoped = attrs("list", RBAC_GROUP, "clusterroles", "", "");
    assert_eq!(
        forbidden_message(&sa(), &cluster_scoped),
        format!(
            r#"clusterroles.rbac.authorization.k8s.io is forbidden: {SA} cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope"#
        )
    );
    let token = Attributes {
        subresource: "token".into(),
        ..attrs("create", "", "serviceaccounts", "ns", "other")
    };
    assert_eq!(
        forbidden_message(&sa(), &token),
        format!(
            r#"serviceaccounts "other" is forbidden: {SA} cannot create resource "serviceaccounts/token" in API group "" in the namespace "ns""#
        )
    );
    assert_eq!(
        forbidden_message(&sa(), &path("get", "/metrics")),
        format!(r#"forbidden: {SA} cannot get path "/metrics""#)
    );
    assert_eq!(
        forbidden_message(&sa(), &path("get", "/<x>")),
        format!(r#"forbidden: {SA} cannot get path "/&lt;x&gt;""#)
    );
}

#[test]
fn discovery_is_open_to_every_authenticated_user() {
    let lookup = cluster();
    let open = [
        "/api",
        "/api/v1",
        "/apis",
        "/apis/rbac.authorization.k8s.io/v1",
        "/version",
        "/openapi/v3",
        "/healthz",
    ];
    for p in open {
        assert_eq!(
            authorize(&sa(), &path("get", p), &lookup),
            Decision::Allow,
            "{p}"
        );
    }
    assert!(
        denied(authorize(&sa(), &path("get", "/metrics"), &lookup)).starts_with("forbidden: User")
    );
    assert!(is_denied(authorize(&sa(), &path("post", "/api"), &lookup)));
}

#[test]
fn masters_are_always_allowed() {
    let lookup = MemoryLookup::default();
    let admin = Authenticator::admin_user();
    let delete = attrs("delete", "", "namespaces", "", "kube-system");
    assert_eq!(authorize(&admin, &delete, &lookup), Decision::Allow);
    assert_eq!(
        authorize(&admin, &path("get", "/metrics"), &lookup),
        Decision::Allow
    );
}

#[test]
fn cluster_role_binding_grants_everywhere() {
    let mut lookup = cluster();
    bind(&mut lookup, "sa-view", None, "ClusterRole/view");
    let allowed = |a: Attributes| authorize(&sa(), &a, &lookup) == Decision::Allow;
    assert!(allowed(attrs("list", "", "configmaps", "anywhere", "")));
    assert!(
        allowed(attrs("list", "", "configmaps", "", "")),
        "all namespaces"
    );
    assert!(!allowed(attrs("get", "", "secrets", "anywhere", "s")));
    assert!(!allowed(attrs("create", "", "configmaps", "anywhere", "")));
}

#[test]
fn role_binding_to_cluster_role_is_scoped_to_its_namespace() {
    let mut lookup = cluster();
    bind(&mut lookup, "sa-edit", Some("team"), "ClusterRole/edit");
    let allowed = |a: Attributes| authorize(&sa(), &a, &lookup) == Decision::Allow;
    assert!(allowed(attrs("create", "", "configmaps", "team", "")));
    assert!(!allowed(attrs("create", "", "configmaps", "other", "")));
    assert!(!allowed(attrs("list", "", "configmaps", "", "")));
    let token = Attributes {
        subresource: "token".into(),
        ..attrs("create", "", "serviceaccounts", "team", "x")
    };
    assert!(allowed(token), "edit grants serviceaccounts/token");
}

#[test]
fn role_binding_subject_without_namespace_means_the_bindings_namespace() {
    let mut lookup = cluster();
    let rules = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]);
    lookup.put("roles", role("reader", Some("ns"), rules));
    let subjects = json!([{"kind": "ServiceAccount", "name": "sa"}]);
    lookup.put(
        "rolebindings",
        binding_to("b", Some("ns"), "Role/reader", subjects),
    );
    let get = attrs("get", "", "configmaps", "ns", "c");
    assert_eq!(authorize(&sa(), &get, &lookup), Decision::Allow);
    let other = service_account_user("elsewhere", "sa", "u");
    assert!(is_denied(authorize(&other, &get, &lookup)));
}

#[test]
fn group_and_user_subjects_are_honoured() {
    let mut lookup = cluster();
    let group =
        json!([{"kind": "Group", "name": "system:serviceaccounts:ns", "apiGroup": RBAC_GROUP}]);
    lookup.put(
        "clusterrolebindings",
        binding_to("sas", None, "ClusterRole/view", group),
    );
    let get = attrs("get", "", "pods", "x", "p");
    assert_eq!(authorize(&sa(), &get, &lookup), Decision::Allow);
    let alice = UserInfo {
        username: "alice".into(),
        uid: String::new(),
        groups: vec!["system:authenticated".into()],
    };
    assert!(is_denied(authorize(&alice, &get, &lookup)));
    let user = json!([{"kind": "User", "name": "alice", "apiGroup": RBAC_GROUP}]);
    lookup.put(
        "clusterrolebindings",
        binding_to("alice", None, "ClusterRole/view", user),
    );
    assert_eq!(authorize(&alice, &get, &lookup), Decision::Allow);
}

#[test]
fn auth_delegator_allows_token_reviews() {
    let mut lookup = cluster();
    let review = attrs("create", "authentication.k8s.io", "tokenreviews", "", "");
    assert!(is_denied(authorize(&sa(), &review, &lookup)));
    bind(
        &mut lookup,
        "reviewer",
        None,
        "ClusterRole/system:auth-delegator",
    );
    assert_eq!(authorize(&sa(), &review, &lookup), Decision::Allow);
}

#[test]
fn bindings_to_missing_roles_are_named_in_the_denial() {
    let mut lookup = cluster();
    bind(&mut lookup, "dangling", None, "ClusterRole/ghost");
    let reason = denied(authorize(
        &sa(),
        &attrs("get", "", "pods", "x", "p"),
        &lookup,
    ));
    let suffix =
        r#"in the namespace "x": RBAC: clusterrole.rbac.authorization.k8s.io "ghost" not found"#;
    assert!(reason.ends_with(suffix), "{reason}");
}

#[test]
fn bootstrap_objects_are_kubernetes_defaults() {
    let objects = bootstrap_objects();
    let find = |resource: &str, name: &str| -> Value {
        let found = objects
            .iter()
            .find(|(r, o)| r == resource && o["metadata"]["name"] == name);
        found
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| panic!("{resource}/{name} missing"))
    };
    let builtin = [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:auth-delegator",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
    ];
    for name in builtin {
        let role = find("clusterroles", name);
        assert_eq!(role["kind"], "ClusterRole");
        let metadata = &role["metadata"];
        assert_eq!(
            metadata["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
        assert_eq!(
            metadata["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
            "true"
        );
    }
    let everything = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                            {"nonResourceURLs": ["*"], "verbs": ["*"]}]);
    assert_eq!(find("clusterroles", "cluster-admin")["rules"], everything);
    let token_reviews = json!({"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]});
    assert_eq!(
        find("clusterroles", "system:auth-delegator")["rules"][0],
        token_reviews
    );
    let subjects = |name: &str| -> Vec<String> {
        let binding = find("clusterrolebindings", name);
        assert_eq!(binding["roleRef"]["name"], name);
        let subjects = binding["subjects"].as_array().unwrap().iter();
        subjects
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(subjects("cluster-admin"), ["system:masters"]);
    assert_eq!(subjects("system:discovery"), ["system:authenticated"]);
    assert_eq!(subjects("system:basic-user"), ["system:authenticated"]);
    assert_eq!(
        subjects("system:public-info-viewer"),
        ["system:authenticated", "system:unauthenticated"]
    );
    // Aggregated roles nest: admin holds all of edit, edit all of view.
    let rules = |name: &str| rules::rules_of(&find("clusterroles", name));
    assert!(rules::covers(&rules("admin"), &rules("edit")).0);
    assert!(rules::covers(&rules("edit"), &rules("view")).0);
    assert!(!rules::covers(&rules("view"), &rules("edit")).0);
    assert!(find("clusterroles", "admin")["aggregationRule"].is_object());
}
