//! What the emulated controllers do: default ServiceAccounts, token Secrets (also the legacy
//! auto-created ones), namespace deletion and finalizers.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube_emulator::Options;
use serde_json::json;

use crate::support::{emulator, emulator_with, eventually, status};

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn namespaces_get_defaults_and_delete_their_contents() {
    let emu = emulator().await;
    let client = emu.client();
    let namespaces = Api::<Namespace>::all(client.clone());
    for builtin in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        namespaces.get(builtin).await.expect(builtin);
    }
    let e = status(
        namespaces
            .delete("kube-system", &DeleteParams::default())
            .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            403,
            "namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
        )
    );
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: named("doomed"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "doomed");
    sas.get("default")
        .await
        .expect("every namespace has a default ServiceAccount");
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "doomed");
    assert!(
        cms.get("kube-root-ca.crt").await.unwrap().data.unwrap()["ca.crt"]
            .contains("BEGIN CERTIFICATE")
    );
    cms.create(
        &PostParams::default(),
        &ConfigMap {
            metadata: named("plain"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let held = ConfigMap {
        metadata: ObjectMeta {
            finalizers: Some(vec!["example.com/hold".into()]),
            ..named("held")
        },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &held).await.unwrap();

    let mut events = cms
        .watch(&WatchParams::default().timeout(20), "0")
        .await
        .unwrap()
        .boxed();
    let deleting = namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let ns = deleting
        .left()
        .expect("a namespace delete answers with the namespace");
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    let e = status(
        cms.create(
            &PostParams::default(),
            &ConfigMap {
                metadata: named("late"),
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert!(
        e.message.contains("because it is being terminated"),
        "{}",
        e.message
    );

    // Contents go with DELETED events; the finalizer holds one object (and so the namespace).
    let mut deleted = Vec::new();
    while deleted.len() < 2 {
        match events.try_next().await.unwrap().expect("watch open") {
            WatchEvent::Deleted(cm) => deleted.push(cm.metadata.name.unwrap()),
            WatchEvent::Modified(cm) if cm.metadata.name.as_deref() == Some("held") => {
                assert!(cm.metadata.deletion_timestamp.is_some());
            }
            _ => {}
        }
    }
    deleted.sort();
    assert_eq!(deleted, ["kube-root-ca.crt", "plain"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        namespaces.get_opt("doomed").await.unwrap().is_some(),
        "held by the finalizer"
    );

    let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    cms.patch("held", &PatchParams::default(), &release)
        .await
        .unwrap();
    eventually("the namespace to go", Duration::from_secs(5), || async {
        namespaces
            .get_opt("doomed")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn token_secrets_are_filled_and_follow_their_service_account() {
    let emu = emulator().await;
    let client = emu.client();
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let secrets = Api::<Secret>::namespaced(client.clone(), "default");
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: named("reviewer"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let request = Secret {
        metadata: ObjectMeta {
            annotations: Some(
                [(
                    "kubernetes.io/service-account.name".to_string(),
                    "reviewer".to_string(),
                )]
                .into(),
            ),
            ..named("reviewer-token")
        },
        type_: Some("kubernetes.io/service-account-token".into()),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &request)
        .await
        .unwrap();
    let filled = secrets.get("reviewer-token").await.unwrap();
    let data = filled.data.unwrap();
    assert_eq!(data["namespace"].0, b"default");
    assert!(String::from_utf8_lossy(&data["ca.crt"].0).contains("BEGIN CERTIFICATE"));
    let jwt = String::from_utf8(data["token"].0.clone()).unwrap();
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(jwt),
            audiences: None,
        },
        ..Default::default()
    };
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert_eq!(reviewed.status.unwrap().authenticated, Some(true));

    // A token Secret for a ServiceAccount that does not exist is removed by the controller.
    let orphan = Secret {
        metadata: ObjectMeta {
            annotations: request.metadata.annotations.clone().map(|mut a| {
                a.insert("kubernetes.io/service-account.name".into(), "ghost".into());
                a
            }),
            ..named("ghost-token")
        },
        ..request.clone()
    };
    secrets
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();
    assert!(secrets.get_opt("ghost-token").await.unwrap().is_none());

    sas.delete("reviewer", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        secrets.get_opt("reviewer-token").await.unwrap().is_none(),
        "deleted with its ServiceAccount"
    );
}

#[tokio::test]
async fn legacy_clusters_auto_create_token_secrets() {
    let emu = emulator_with(Options {
        legacy_token_secrets: true,
        ..Options::default()
    })
    .await;
    let client = emu.client();
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let created = sas
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: named("old-style"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let listed = created.secrets.expect("the token Secret is listed");
    let secret_name = listed[0].name.clone().unwrap();
    assert!(secret_name.starts_with("old-style-token-"), "{secret_name}");
    let secret = Api::<Secret>::namespaced(client.clone(), "default")
        .get(&secret_name)
        .await
        .unwrap();
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/service-account-token")
    );
    assert!(secret.data.unwrap().contains_key("token"));
    assert_eq!(
        sas.get("default").await.unwrap().secrets.map(|s| s.len()),
        Some(1),
        "default ServiceAccounts too"
    );
}

#[tokio::test]
async fn garbage_collection_follows_owner_references() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    let make = |name: &str, owners: &[&ConfigMap]| ConfigMap {
        metadata: ObjectMeta {
            owner_references: Some(
                owners
                    .iter()
                    .map(
                        |o| k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                            api_version: "v1".into(),
                            kind: "ConfigMap".into(),
                            name: o.metadata.name.clone().unwrap(),
                            uid: o.metadata.uid.clone().unwrap(),
                            ..Default::default()
                        },
                    )
                    .collect(),
            ),
            ..named(name)
        },
        ..Default::default()
    };
    let pp = PostParams::default();
    let parent = cms.create(&pp, &make("parent", &[])).await.unwrap();
    let other = cms.create(&pp, &make("other", &[])).await.unwrap();
    cms.create(&pp, &make("only-child", &[&parent]))
        .await
        .unwrap();
    cms.create(&pp, &make("shared-child", &[&parent, &other]))
        .await
        .unwrap();
    cms.create(&pp, &make("orphan", &[&other])).await.unwrap();

    cms.delete("parent", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        cms.get_opt("only-child").await.unwrap().is_none(),
        "its only owner is gone"
    );
    let shared = cms.get("shared-child").await.unwrap();
    let owners: Vec<String> = shared
        .metadata
        .owner_references
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        owners,
        ["other"],
        "a live owner keeps it; the dangling reference goes"
    );

    cms.delete("other", &DeleteParams::orphan()).await.unwrap();
    let orphan = cms
        .get("orphan")
        .await
        .expect("Orphan propagation keeps dependents");
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    assert!(cms.get_opt("shared-child").await.unwrap().is_some());
}
