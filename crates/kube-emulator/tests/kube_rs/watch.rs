//! Watches: raw event types, selector transitions, bookmarks, 410 Expired; kube-runtime's
//! watcher (including its relist after a 410) and reflector.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube_emulator::Options;
use serde_json::json;

use crate::support::{emulator, emulator_with, eventually};

fn cm(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("v".to_string(), value.to_string())].into()),
        ..Default::default()
    }
}

async fn next<K: Clone + std::fmt::Debug>(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("an event within 10s")
        .expect("no stream error")
        .expect("the stream is open")
}

#[tokio::test]
async fn raw_watch_reports_added_modified_deleted() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("w", "1"))
        .await
        .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    match next(&mut stream).await {
        WatchEvent::Added(c) => assert_eq!(c.data.unwrap()["v"], "1"),
        other => panic!("expected ADDED, got {other:?}"),
    }
    match next(&mut stream).await {
        WatchEvent::Modified(c) => assert_eq!(c.data.unwrap()["v"], "2"),
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    assert!(
        matches!(next(&mut stream).await, WatchEvent::Deleted(c) if c.metadata.name.as_deref() == Some("w"))
    );
}

#[tokio::test]
async fn selector_watches_see_objects_enter_and_leave() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    let mut stream = cms
        .watch(&WatchParams::default().labels("app=web").timeout(30), "0")
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("sel", "1"))
        .await
        .unwrap();
    let label = |v: serde_json::Value| Patch::Merge(json!({"metadata": {"labels": {"app": v}}}));
    cms.patch("sel", &PatchParams::default(), &label(json!("web")))
        .await
        .unwrap();
    cms.patch("sel", &PatchParams::default(), &label(json!("db")))
        .await
        .unwrap();
    assert!(
        matches!(next(&mut stream).await, WatchEvent::Added(_)),
        "starts matching: ADDED"
    );
    assert!(
        matches!(next(&mut stream).await, WatchEvent::Deleted(_)),
        "stops matching: DELETED"
    );
}

#[tokio::test]
async fn bookmarks_and_timeouts() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    // Long enough for the bookmark the apiserver sends 2 s before a watch times out.
    let params = WatchParams::default().timeout(3);
    let started = std::time::Instant::now();
    let events: Vec<_> = cms
        .watch(&params, "0")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the server ends the watch after timeoutSeconds"
    );
    let current = emu.client().apiserver_version().await.map(|_| ()).is_ok();
    assert!(current);
    let bookmark = events.iter().find_map(|e| match e {
        WatchEvent::Bookmark(b) => Some(b.metadata.resource_version.clone()),
        _ => None,
    });
    let rv: u64 = bookmark
        .expect("a bookmark before the timeout")
        .parse()
        .unwrap();
    assert!(rv > 0);
}

#[tokio::test]
async fn expired_versions_answer_410_in_the_stream() {
    let emu = emulator_with(Options {
        watch_window: 3,
        ..Options::default()
    })
    .await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("e{i}"), "x"))
            .await
            .unwrap();
    }
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next(&mut stream).await {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_sees_changes_and_streaming_lists_work() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    cms.create(&PostParams::default(), &cm("before", "0"))
        .await
        .unwrap();
    for config in [
        watcher::Config::default(),
        watcher::Config::default().streaming_lists(),
    ] {
        let mut events = watcher(cms.clone(), config).boxed();
        let mut initial = Vec::new();
        loop {
            match events.try_next().await.unwrap().unwrap() {
                watcher::Event::InitApply(c) => initial.push(c.metadata.name.unwrap()),
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
        assert!(initial.contains(&"before".to_string()), "{initial:?}");
        cms.create(&PostParams::default(), &cm("during", "1"))
            .await
            .unwrap();
        cms.delete("during", &DeleteParams::default())
            .await
            .unwrap();
        let applied = events.try_next().await.unwrap().unwrap();
        assert!(
            matches!(&applied, watcher::Event::Apply(c) if c.metadata.name.as_deref() == Some("during")),
            "{applied:?}"
        );
        let deleted = events.try_next().await.unwrap().unwrap();
        assert!(
            matches!(&deleted, watcher::Event::Delete(c) if c.metadata.name.as_deref() == Some("during")),
            "{deleted:?}"
        );
    }
}

#[tokio::test]
async fn watcher_relists_after_410() {
    let emu = emulator_with(Options {
        watch_window: 5,
        ..Options::default()
    })
    .await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    cms.create(&PostParams::default(), &cm("old", "0"))
        .await
        .unwrap();
    let (store, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default()).default_backoff(),
    );
    let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = errors.clone();
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Some(item) = stream.next().await {
            if let Err(watcher::Error::WatchError(status)) = item {
                seen.lock().unwrap().push(status.code);
            }
        }
    });
    store.wait_until_ready().await.unwrap();

    // Keep the watcher from reconnecting while more than the window of events happens.
    let faults = emu.faults();
    faults.fail_next("watch", "configmaps", 1_000, 500);
    faults.close_watches();
    cms.delete("old", &DeleteParams::default()).await.unwrap();
    for i in 0..8 {
        cms.create(&PostParams::default(), &cm(&format!("new{i}"), "1"))
            .await
            .unwrap();
    }
    faults.clear();

    let names = eventually(
        "the reflector to relist",
        Duration::from_secs(15),
        || async {
            let mut names: Vec<String> = store
                .state()
                .iter()
                .filter_map(|c| c.metadata.name.clone())
                .collect();
            names.sort();
            (names.len() == 9 && !names.contains(&"old".to_string())).then_some(names)
        },
    )
    .await;
    assert!(names.iter().any(|n| n == "new7"));
    assert!(
        errors.lock().unwrap().contains(&410),
        "the resumed watch was answered 410 Expired"
    );
    assert!(
        emu.counters().get("list", "configmaps") >= 2,
        "and the watcher listed again"
    );
    task.abort();
}

#[tokio::test]
async fn reflector_store_converges() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    let (store, writer) = reflector::store();
    let task = tokio::spawn(
        reflector(
            writer,
            watcher(cms.clone(), watcher::Config::default()).default_backoff(),
        )
        .applied_objects()
        .for_each(|_| async {}),
    );
    store.wait_until_ready().await.unwrap();
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    want.insert("kube-root-ca.crt".into(), String::new());
    for i in 0..20 {
        cms.create(&PostParams::default(), &cm(&format!("r{i}"), "0"))
            .await
            .unwrap();
        want.insert(format!("r{i}"), "0".into());
    }
    for i in 0..5 {
        cms.patch(
            &format!("r{i}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "1"}})),
        )
        .await
        .unwrap();
        want.insert(format!("r{i}"), "1".into());
        cms.delete(&format!("r{}", 19 - i), &DeleteParams::default())
            .await
            .unwrap();
        want.remove(&format!("r{}", 19 - i));
    }
    eventually(
        "the reflector to converge",
        Duration::from_secs(10),
        || async {
            let have: BTreeMap<String, String> = store
                .state()
                .iter()
                .map(|c| {
                    (
                        c.metadata.name.clone().unwrap(),
                        c.data
                            .as_ref()
                            .and_then(|d| d.get("v").cloned())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            (have == want).then_some(())
        },
    )
    .await;
    task.abort();
}
