use super::*;
use serde_json::json;

fn cm(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": ns, "name": name}})
}

#[test]
fn versions_are_global_and_monotonic() {
    let s = Store::new(100);
    let a = s.create("configmaps", cm("a", "x")).unwrap();
    let b = s.create("secrets", cm("a", "x")).unwrap();
    assert_eq!(meta::resource_version(&a), 1);
    assert_eq!(meta::resource_version(&b), 2);
    assert_eq!(
        s.create("configmaps", cm("a", "x")).unwrap_err(),
        StoreError::AlreadyExists
    );
    assert_eq!(s.current_rv(), 2);
}

#[test]
fn updates_check_the_expected_version() {
    let s = Store::new(100);
    s.create("configmaps", cm("a", "x")).unwrap();
    assert_eq!(
        s.update("configmaps", cm("a", "x"), Some(7)).unwrap_err(),
        StoreError::Conflict
    );
    let u = s.update("configmaps", cm("a", "x"), Some(1)).unwrap();
    assert_eq!(meta::resource_version(&u), 2);
    assert_eq!(
        s.update("configmaps", cm("a", "y"), None).unwrap_err(),
        StoreError::NotFound
    );
    let d = s.delete("configmaps", "a", "x", None).unwrap();
    assert_eq!(
        meta::resource_version(&d),
        3,
        "deleted object carries the deletion's version"
    );
    assert!(s.get("configmaps", "a", "x").is_none());
}

#[test]
fn pages_are_ordered_and_filtered() {
    let s = Store::new(100);
    for (ns, n) in [("b", "2"), ("a", "3"), ("b", "1"), ("a", "1"), ("c", "1")] {
        s.create("configmaps", cm(ns, n)).unwrap();
    }
    let all = s.list("configmaps", None);
    let names: Vec<String> = all
        .iter()
        .map(|o| format!("{}/{}", meta::namespace(o), meta::name(o)))
        .collect();
    assert_eq!(names, ["a/1", "a/3", "b/1", "b/2", "c/1"]);
    assert_eq!(s.list("configmaps", Some("b")).len(), 2);
    let p1 = s.list_page("configmaps", None, None, 2, &|_| true);
    assert_eq!(p1.items.len(), 2);
    assert_eq!(p1.remaining, 3);
    let p2 = s.list_page("configmaps", None, p1.next.as_ref(), 2, &|_| true);
    assert_eq!(meta::name(&p2.items[0]), "1");
    assert_eq!(meta::namespace(&p2.items[0]), "b");
    let p3 = s.list_page("configmaps", None, p2.next.as_ref(), 2, &|_| true);
    assert_eq!(p3.items.len(), 1);
    assert!(p3.next.is_none());
    let only_ones = s.list_page("configmaps", Some("a"), None, 0, &|o| meta::name(o) == "1");
    assert_eq!(only_ones.items.len(), 1);
}

#[tokio::test]
async fn watches_replay_then_follow_live_events() {
    let s = Store::new(100);
    s.create("configmaps", cm("a", "x")).unwrap();
    s.create("configmaps", cm("b", "x")).unwrap();
    let mut sub = s
        .watch("configmaps", Some("a"), WatchFrom::Version(0))
        .unwrap();
    assert_eq!(sub.replay.len(), 1);
    s.update("configmaps", cm("a", "x"), None).unwrap();
    s.create("secrets", cm("a", "x")).unwrap();
    s.delete("configmaps", "a", "x", None).unwrap();
    let e1 = sub.live.recv().await.unwrap();
    let e2 = sub.live.recv().await.unwrap();
    assert_eq!((e1.event_type, e1.rv), (EventType::Modified, 3));
    assert_eq!((e2.event_type, e2.rv), (EventType::Deleted, 5));
    assert!(e2.previous.is_some());
}

#[test]
fn initial_state_lists_current_objects() {
    let s = Store::new(100);
    s.create("configmaps", cm("a", "x")).unwrap();
    s.create("configmaps", cm("a", "y")).unwrap();
    let sub = s
        .watch("configmaps", None, WatchFrom::InitialState)
        .unwrap();
    assert_eq!(sub.initial.len(), 2);
    assert_eq!(sub.opened_at, 2);
}

#[test]
fn resuming_before_the_window_is_too_old() {
    let s = Store::new(2);
    for i in 0..5 {
        s.create("configmaps", cm("a", &i.to_string())).unwrap();
    }
    assert!(s.watch("configmaps", None, WatchFrom::Version(1)).is_err());
    assert!(s.watch("configmaps", None, WatchFrom::Version(3)).is_ok());
    assert!(!s.retains(1));
}

#[tokio::test]
async fn closing_watches_ends_their_feeds() {
    let s = Store::new(10);
    let mut sub = s.watch("configmaps", None, WatchFrom::Version(0)).unwrap();
    assert_eq!(s.watch_count(), 1);
    s.close_watches();
    assert!(sub.live.recv().await.is_none());
    assert_eq!(s.watch_count(), 0);
}

#[test]
fn terminating_namespaces_are_tracked() {
    let s = Store::new(10);
    s.create("namespaces", json!({"metadata": {"name": "n"}}))
        .unwrap();
    s.update(
        "namespaces",
        json!({"metadata": {"name": "n", "deletionTimestamp": "2024-01-01T00:00:00Z"}}),
        None,
    )
    .unwrap();
    assert_eq!(s.terminating_namespaces(), vec!["n".to_string()]);
    s.delete("namespaces", "", "n", None).unwrap();
    assert!(s.terminating_namespaces().is_empty());
}

#[test]
fn owner_references_are_indexed() {
    let s = Store::new(10);
    let mut dep = cm("a", "child");
    dep["metadata"]["ownerReferences"] =
        json!([{"uid": "owner-1", "kind": "ConfigMap", "name": "parent", "apiVersion": "v1"}]);
    s.create("configmaps", dep.clone()).unwrap();
    assert_eq!(
        s.dependents("owner-1"),
        vec![("configmaps", "a".to_string(), "child".to_string())]
    );
    dep["metadata"]["ownerReferences"] = json!([]);
    s.update("configmaps", dep, None).unwrap();
    assert!(s.dependents("owner-1").is_empty());
}
