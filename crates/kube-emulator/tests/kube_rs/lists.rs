//! Label and field selectors, pagination and server-side printing.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::support::{emulator, raw};

fn labelled(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn names(list: kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n != "kube-root-ca.crt")
        .collect()
}

#[tokio::test]
async fn label_and_field_selectors() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    for (name, labels) in [
        ("web-1", vec![("app", "web"), ("tier", "front")]),
        ("web-2", vec![("app", "web"), ("tier", "back")]),
        ("db-1", vec![("app", "db")]),
    ] {
        cms.create(&PostParams::default(), &labelled(name, &labels))
            .await
            .unwrap();
    }
    let select = |s: &str| ListParams::default().labels(s);
    for (selector, want) in [
        ("app=web", vec!["web-1", "web-2"]),
        ("app==db", vec!["db-1"]),
        ("app!=web", vec!["db-1", "kube-root-ca.crt"]),
        ("tier in (front,side)", vec!["web-1"]),
        (
            "tier notin (front)",
            vec!["db-1", "kube-root-ca.crt", "web-2"],
        ),
        ("tier", vec!["web-1", "web-2"]),
        ("!tier,app", vec!["db-1"]),
    ] {
        let got: Vec<String> = cms
            .list(&select(selector))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        assert_eq!(got, want, "{selector}");
    }
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=db-1"))
                .await
                .unwrap()
        ),
        ["db-1"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name!=db-1"))
                .await
                .unwrap()
        ),
        ["web-1", "web-2"]
    );
    let all = Api::<ConfigMap>::all(emu.client());
    assert_eq!(
        all.list(&ListParams::default().fields("metadata.namespace=kube-system"))
            .await
            .unwrap()
            .items
            .len(),
        1,
        "only kube-root-ca.crt"
    );

    // deletecollection honours selectors too.
    cms.delete_collection(&DeleteParams::default(), &select("app=web"))
        .await
        .unwrap();
    assert_eq!(
        names(cms.list(&ListParams::default()).await.unwrap()),
        ["db-1"]
    );
}

#[tokio::test]
async fn pagination_with_continue_tokens() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    for i in 0..25 {
        cms.create(
            &PostParams::default(),
            &labelled(&format!("page-{i:02}"), &[("paged", "yes")]),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().labels("paged=yes").limit(10);
    let mut pages = 0;
    loop {
        let page = cms.list(&params).await.unwrap();
        pages += 1;
        let remaining = page.metadata.remaining_item_count;
        seen.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => {
                // Kubernetes counts what remains only for lists no selector filters.
                assert_eq!(remaining, None);
                params = params.continue_token(&token);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..25).map(|i| format!("page-{i:02}")).collect();
    assert_eq!(seen, want, "every object once, in name order");
}

#[tokio::test]
async fn tables_for_kubectl_get() {
    let emu = emulator().await;
    let accept = [(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    let (code, table) = raw(&emu, "GET", "/api/v1/namespaces", &accept, b"").await;
    assert_eq!(code, 200);
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Status", "Age"]);
    let rows = table["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["cells"][0] == "kube-system" && r["cells"][1] == "Active")
    );
    assert_eq!(rows[0]["object"]["kind"], "PartialObjectMetadata");

    let (_, one) = raw(
        &emu,
        "GET",
        "/api/v1/namespaces/default/serviceaccounts/default",
        &accept,
        b"",
    )
    .await;
    assert_eq!(one["rows"][0]["cells"][0], "default");
    let meta = [(
        "accept",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )];
    let (_, list) = raw(
        &emu,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        &meta,
        b"",
    )
    .await;
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert!(list["items"][0].get("data").is_none());
}
