//! Acceptance: RBAC as kube-rs sees it, with the emulator's RBAC evaluation on.
//!
//! ServiceAccounts act through their own TokenRequest tokens; every denial is checked for the
//! Status Kubernetes sends (kind Status, reason Forbidden, code 403, the apiserver's wording,
//! details name/kind) and every grant is checked to work, so the RBAC set a test grants is shown
//! to be both necessary and enough.
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::Status;
use kube::discovery::Discovery;
use kube_emulator::{Emulator, Options};
use serde_json::{Value, json};

#[path = "rbac/field_selectors.rs"]
mod field_selectors;

/// An emulator with RBAC on and a namespace `team` holding the ServiceAccount `worker`.
async fn cluster() -> Emulator {
    let emulator = kube_emulator::start(Options {
        rbac: true,
        ..Options::default()
    })
    .await
    .expect("start the emulator");
    let admin = emulator.client();
    for namespace in ["team", "other"] {
        create(
            Api::<Namespace>::all(admin.clone()),
            json!({"metadata": {"name": namespace}}),
        )
        .await;
    }
    create(
        Api::<ServiceAccount>::namespaced(admin.clone(), "team"),
        json!({"metadata": {"name": "worker"}}),
    )
    .await;
    emulator
}

/// Creates `object` through `api` (an admin client's), panicking on failure.
async fn create<K>(api: Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("object parses");
    api.create(&PostParams::default(), &object)
        .await
        .expect("admin creates object")
}

/// A TokenRequest token for ServiceAccount `namespace/name`, minted through the API.
async fn token_for(emulator: &Emulator, namespace: &str, name: &str) -> String {
    testkit::objects::token_request(&emulator.client(), namespace, name, &[], 3600).await
}

async fn worker_client(emulator: &Emulator) -> kube::Client {
    emulator.client_with_token(&token_for(emulator, "team", "worker").await)
}

/// The Status of a failed kube-rs call.
fn status_of<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Status {
    *testkit::objects::api_error(result)
}

fn assert_forbidden(status: &Status, message: &str, name: &str, kind: &str) {
    assert_eq!(status.code, 403, "{status:?}");
    assert_eq!(status.reason, "Forbidden", "{status:?}");
    assert_eq!(status.message, message);
    let details = status
        .details
        .as_ref()
        .expect("Forbidden Status has details");
    assert_eq!(details.name, name);
    assert_eq!(details.kind, kind);
}

/// A raw GET through the kube-rs client: HTTP status and JSON body.
async fn raw_get(client: &kube::Client, path: &str) -> (u16, Value) {
    let request = http::Request::get(path).body(Vec::new()).expect("request");
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .expect("send");
    let code = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

const WORKER: &str = r#"User "system:serviceaccount:team:worker""#;

#[tokio::test]
async fn service_account_without_rights_is_forbidden_with_kubernetes_status() {
    let emulator = cluster().await;
    let worker = worker_client(&emulator).await;
    let config_maps = Api::<ConfigMap>::namespaced(worker.clone(), "team");

    let status = status_of(config_maps.list(&ListParams::default()).await);
    let message = format!(
        r#"configmaps is forbidden: {WORKER} cannot list resource "configmaps" in API group "" in the namespace "team""#
    );
    assert_forbidden(&status, &message, "", "configmaps");

    let status = status_of(config_maps.get("settings").await);
    let message = format!(
        r#"configmaps "settings" is forbidden: {WORKER} cannot get resource "configmaps" in API group "" in the namespace "team""#
    );
    assert_forbidden(&status, &message, "settings", "configmaps");

    let status = status_of(
        Api::<ClusterRole>::all(worker.clone())
            .list(&ListParams::default())
            .await,
    );
    let message = format!(
        r#"clusterroles.rbac.authorization.k8s.io is forbidden: {WORKER} cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope"#
    );
    assert_forbidden(&status, &message, "", "clusterroles");
    assert_eq!(
        status.details.as_ref().unwrap().group,
        "rbac.authorization.k8s.io"
    );

    // The body on the wire is a complete Status object.
    let (code, body) = raw_get(&worker, "/api/v1/namespaces/team/configmaps/settings").await;
    assert_eq!(code, 403);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(body["code"], 403);
    assert_eq!(
        body["details"],
        json!({"name": "settings", "kind": "configmaps"})
    );
}

#[tokio::test]
async fn role_binding_grants_in_its_namespace_only() {
    let emulator = cluster().await;
    let admin = emulator.client();
    let worker = worker_client(&emulator).await;
    let team = Api::<ConfigMap>::namespaced(worker.clone(), "team");
    let config_map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}})).unwrap();
    assert_eq!(
        status_of(team.create(&PostParams::default(), &config_map).await).code,
        403
    );

    let binding = json!({
        "metadata": {"name": "worker-edit", "namespace": "team"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "worker", "namespace": "team"}]
    });
    create(
        Api::<RoleBinding>::namespaced(admin.clone(), "team"),
        binding,
    )
    .await;

    team.create(&PostParams::default(), &config_map)
        .await
        .expect("create after RoleBinding");
    let listed = team
        .list(&ListParams::default())
        .await
        .expect("list after RoleBinding");
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    assert!(names.contains(&"settings"), "{names:?}");

    let other = Api::<ConfigMap>::namespaced(worker.clone(), "other");
    let status = status_of(other.list(&ListParams::default()).await);
    let message = format!(
        r#"configmaps is forbidden: {WORKER} cannot list resource "configmaps" in API group "" in the namespace "other""#
    );
    assert_forbidden(&status, &message, "", "configmaps");
    let status = status_of(
        Api::<ConfigMap>::all(worker.clone())
            .list(&ListParams::default())
            .await,
    );
    let message = format!(
        r#"configmaps is forbidden: {WORKER} cannot list resource "configmaps" in API group "" at the cluster scope"#
    );
    assert_forbidden(&status, &message, "", "configmaps");
}

#[tokio::test]
async fn cluster_role_binding_grants_everywhere_and_only_its_rules() {
    let emulator = cluster().await;
    let admin = emulator.client();
    let worker = worker_client(&emulator).await;
    let binding = json!({
        "metadata": {"name": "worker-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "worker", "namespace": "team"}]
    });
    create(Api::<ClusterRoleBinding>::all(admin.clone()), binding).await;

    let all = Api::<ConfigMap>::all(worker.clone());
    all.list(&ListParams::default())
        .await
        .expect("view lists configmaps cluster-wide");
    Api::<ServiceAccount>::namespaced(worker.clone(), "other")
        .list(&ListParams::default())
        .await
        .expect("view lists serviceaccounts anywhere");
    let config_map: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    let status = status_of(
        Api::<ConfigMap>::namespaced(worker.clone(), "other")
            .create(&PostParams::default(), &config_map)
            .await,
    );
    let message = format!(
        r#"configmaps is forbidden: {WORKER} cannot create resource "configmaps" in API group "" in the namespace "other""#
    );
    assert_forbidden(&status, &message, "", "configmaps");
}

fn cluster_role_binding(name: &str, role: &str) -> ClusterRoleBinding {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "worker", "namespace": "team"}]
    }))
    .unwrap()
}

#[tokio::test]
async fn bind_on_a_named_cluster_role_allows_binding_it_and_nothing_more() {
    let emulator = cluster().await;
    let admin = emulator.client();
    let worker = worker_client(&emulator).await;
    let bindings = Api::<ClusterRoleBinding>::all(worker.clone());
    let pp = PostParams::default();

    // Not even allowed to create bindings yet.
    let status = status_of(
        bindings
            .create(&pp, &cluster_role_binding("worker-view", "view"))
            .await,
    );
    let message = format!(
        r#"clusterrolebindings.rbac.authorization.k8s.io is forbidden: {WORKER} cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope"#
    );
    assert_forbidden(&status, &message, "", "clusterrolebindings");

    // Allowed to create bindings but holding no `bind`: the escalation check refuses.
    let creator = json!({
        "metadata": {"name": "binding-creator"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"], "verbs": ["create"]}]
    });
    create(Api::<ClusterRole>::all(admin.clone()), creator).await;
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(
            &pp,
            &cluster_role_binding("worker-creator", "binding-creator"),
        )
        .await
        .expect("admin binds binding-creator");
    let status = status_of(
        bindings
            .create(&pp, &cluster_role_binding("worker-view", "view"))
            .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (403, "Forbidden"),
        "{status:?}"
    );
    let prefix = r#"clusterrolebindings.rbac.authorization.k8s.io "worker-view" is forbidden: user "system:serviceaccount:team:worker" (groups=["system:serviceaccounts" "system:serviceaccounts:team" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#;
    assert!(status.message.starts_with(prefix), "{}", status.message);
    assert_eq!(
        status.details.as_ref().map(|d| d.name.as_str()),
        Some("worker-view")
    );

    // `bind` on ClusterRole view (resourceNames): binding view works, edit is still refused.
    let binder = json!({
        "metadata": {"name": "view-binder"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                   "verbs": ["bind"], "resourceNames": ["view"]}]
    });
    create(Api::<ClusterRole>::all(admin.clone()), binder).await;
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&pp, &cluster_role_binding("worker-binder", "view-binder"))
        .await
        .expect("admin binds view-binder");
    bindings
        .create(&pp, &cluster_role_binding("worker-view", "view"))
        .await
        .expect("bind on view allows binding view");
    let status = status_of(
        bindings
            .create(&pp, &cluster_role_binding("worker-edit", "edit"))
            .await,
    );
    assert_eq!(status.code, 403);
    assert!(
        status
            .message
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        status.message
    );
    let status = status_of(
        bindings
            .create(&pp, &cluster_role_binding("worker-admin", "cluster-admin"))
            .await,
    );
    assert!(
        status.message.ends_with(
            r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}
{NonResourceURLs:["*"], Verbs:["*"]}"#
        ),
        "{}",
        status.message
    );

    // The binding it was allowed to create works: view now lists configmaps.
    Api::<ConfigMap>::all(worker.clone())
        .list(&ListParams::default())
        .await
        .expect("view granted");
}

#[tokio::test]
async fn discovery_works_for_any_authenticated_user() {
    let emulator = cluster().await;
    let worker = worker_client(&emulator).await;
    let version = worker.apiserver_version().await.expect("/version");
    assert!(!version.git_version.is_empty());
    let discovery = Discovery::new(worker.clone())
        .run()
        .await
        .expect("discovery as worker");
    assert!(discovery.has_group("rbac.authorization.k8s.io"));
    let (code, body) = raw_get(&worker, "/api/v1").await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "APIResourceList");
}

#[tokio::test]
async fn invalid_and_revoked_tokens_are_unauthorized() {
    let emulator = cluster().await;
    let garbage = emulator.client_with_token("not-a-token");
    assert_unauthorized(garbage.apiserver_version().await);

    // A well-formed token of a ServiceAccount that no longer exists.
    let admin = emulator.client();
    create(
        Api::<ServiceAccount>::namespaced(admin.clone(), "team"),
        json!({"metadata": {"name": "gone"}}),
    )
    .await;
    let token = token_for(&emulator, "team", "gone").await;
    let client = emulator.client_with_token(&token);
    client
        .apiserver_version()
        .await
        .expect("token works while its ServiceAccount exists");
    Api::<ServiceAccount>::namespaced(admin.clone(), "team")
        .delete("gone", &DeleteParams::default())
        .await
        .expect("delete ServiceAccount");
    assert_unauthorized(client.apiserver_version().await);
}

fn assert_unauthorized<T: std::fmt::Debug>(result: Result<T, kube::Error>) {
    let status = status_of(result);
    assert_eq!(status.code, 401, "{status:?}");
    assert_eq!(status.reason, "Unauthorized", "{status:?}");
    assert_eq!(status.message, "Unauthorized");
}
