//! resourceNames and field selectors: a list or watch whose fieldSelector pins `metadata.name`
//! is a request for that name, as kube-apiserver derives its request attributes.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, WatchParams};
use kube::runtime::watcher;
use kube_emulator::Emulator;
use serde_json::json;

use super::{WORKER, assert_forbidden, cluster, create, raw_get, status_of, worker_client};

/// Binds `worker` to a Role allowing list and watch of the ConfigMap `x` only (resourceNames).
async fn grant_list_watch_of_x(emulator: &Emulator) {
    let admin = emulator.client();
    let role = json!({
        "metadata": {"name": "x-reader", "namespace": "team"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                   "verbs": ["list", "watch"], "resourceNames": ["x"]}]
    });
    create(Api::<Role>::namespaced(admin.clone(), "team"), role).await;
    let binding = json!({
        "metadata": {"name": "worker-x-reader", "namespace": "team"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "worker", "namespace": "team"}]
    });
    create(Api::<RoleBinding>::namespaced(admin, "team"), binding).await;
}

fn names(list: &kube::core::ObjectList<ConfigMap>) -> Vec<&str> {
    list.items
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect()
}

/// A list or watch whose fieldSelector pins `metadata.name` asks for that name, so
/// `resourceNames` can allow it, as kube-apiserver derives it; without the selector, or with one
/// naming another object, it is forbidden.
#[tokio::test]
async fn resource_names_allow_lists_and_watches_pinned_by_a_field_selector() {
    let emulator = cluster().await;
    let admin = Api::<ConfigMap>::namespaced(emulator.client(), "team");
    for name in ["x", "y"] {
        create(admin.clone(), json!({"metadata": {"name": name}})).await;
    }
    grant_list_watch_of_x(&emulator).await;
    let worker = worker_client(&emulator).await;
    let config_maps = Api::<ConfigMap>::namespaced(worker.clone(), "team");

    // Any exact name term counts, also in a conjunction (apimachinery's RequiresExactMatch).
    let pinning = [
        "metadata.name=x",
        "metadata.name==x",
        "metadata.name=x,metadata.namespace=team",
    ];
    for selector in pinning {
        let listed = config_maps
            .list(&ListParams::default().fields(selector))
            .await
            .unwrap_or_else(|e| panic!("list with {selector}: {e}"));
        assert_eq!(names(&listed), ["x"], "{selector}");
    }

    let unnamed = format!(
        r#"configmaps is forbidden: {WORKER} cannot list resource "configmaps" in API group "" in the namespace "team""#
    );
    for selector in ["", "metadata.name!=y", "metadata.namespace=team"] {
        let status = status_of(
            config_maps
                .list(&ListParams::default().fields(selector))
                .await,
        );
        assert_forbidden(&status, &unnamed, "", "configmaps");
    }
    let status = status_of(
        config_maps
            .list(&ListParams::default().fields("metadata.name=y"))
            .await,
    );
    let message = format!(
        r#"configmaps "y" is forbidden: {WORKER} cannot list resource "configmaps" in API group "" in the namespace "team""#
    );
    assert_forbidden(&status, &message, "y", "configmaps");

    // Plain watches: allowed for x, forbidden without the selector and for y.
    let _allowed = config_maps
        .watch(&WatchParams::default().fields("metadata.name=x"), "0")
        .await
        .expect("watch with metadata.name=x");
    let status = status_of(
        config_maps
            .watch(&WatchParams::default(), "0")
            .await
            .map(|_| ()),
    );
    let message = format!(
        r#"configmaps is forbidden: {WORKER} cannot watch resource "configmaps" in API group "" in the namespace "team""#
    );
    assert_forbidden(&status, &message, "", "configmaps");
    let status = status_of(
        config_maps
            .watch(&WatchParams::default().fields("metadata.name=y"), "0")
            .await
            .map(|_| ()),
    );
    assert_eq!(
        (status.code, status.details.unwrap().name.as_str()),
        (403, "y")
    );
    // The deprecated /watch/ path takes its verb from the path: no name, as in Kubernetes.
    let (code, body) = raw_get(
        &worker,
        "/api/v1/watch/namespaces/team/configmaps?fieldSelector=metadata.name%3Dx",
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (403, Some("Forbidden")));

    // kube-rs' watcher (list then watch, and streaming lists) reaches InitDone and then follows
    // changes of x.
    let configs = [
        watcher::Config::default().fields("metadata.name=x"),
        watcher::Config::default()
            .fields("metadata.name=x")
            .streaming_lists(),
    ];
    for (round, config) in configs.into_iter().enumerate() {
        let mut stream = watcher(config_maps.clone(), config).boxed();
        let mut initial = Vec::new();
        loop {
            match next_event(&mut stream).await {
                watcher::Event::InitApply(c) => initial.push(c.metadata.name.unwrap()),
                watcher::Event::InitDone => break,
                watcher::Event::Init => {}
                other => panic!("unexpected event before InitDone: {other:?}"),
            }
        }
        assert_eq!(initial, ["x"]);
        let patch = json!({"data": {"round": round.to_string()}});
        for name in ["y", "x"] {
            admin
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("admin patches ConfigMap");
        }
        match next_event(&mut stream).await {
            watcher::Event::Apply(c) => assert_eq!(c.metadata.name.as_deref(), Some("x")),
            other => panic!("expected the change of x, got {other:?}"),
        }
    }
}

/// The next event of a watcher stream, failing the test on an error or after 10 s.
async fn next_event<S>(stream: &mut S) -> watcher::Event<ConfigMap>
where
    S: futures::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a watcher event within 10 s")
        .expect("the watcher stream goes on")
        .expect("the watcher is allowed")
}
