//! Failures answered with Kubernetes' Status codes, reasons, messages and details.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams};

use crate::support::{emulator, raw, status};

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn api_errors_are_kubernetes_statuses() {
    let emu = emulator().await;
    let client = emu.client();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");

    let e = status(cms.get("missing").await);
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "configmaps \"missing\" not found");
    let d = e.details.as_ref().unwrap();
    assert_eq!(
        (d.name.as_str(), d.kind.as_str()),
        ("missing", "configmaps")
    );

    let e = status(Api::<ClusterRole>::all(client.clone()).get("nope").await);
    assert_eq!(
        e.message,
        "clusterroles.rbac.authorization.k8s.io \"nope\" not found"
    );
    assert_eq!(e.details.unwrap().group, "rbac.authorization.k8s.io");

    let first = cms
        .create(&PostParams::default(), &cm("dup"))
        .await
        .unwrap();
    let e = status(cms.create(&PostParams::default(), &cm("dup")).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "configmaps \"dup\" already exists");

    let mut stale = first.clone();
    stale.data = Some([("a".to_string(), "1".to_string())].into());
    cms.replace("dup", &PostParams::default(), &stale)
        .await
        .expect("first replace wins");
    let e = status(cms.replace("dup", &PostParams::default(), &stale).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message.starts_with(
            "Operation cannot be fulfilled on configmaps \"dup\": the object has been modified"
        ),
        "{}",
        e.message
    );

    let e = status(cms.create(&PostParams::default(), &cm("Bad_Name")).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", e.message);
    let details = e.details.unwrap();
    assert_eq!(details.kind, "ConfigMap");
    assert_eq!(details.causes[0].field, "metadata.name");
    assert_eq!(details.causes[0].reason, "FieldValueInvalid");

    // Namespaces are RFC 1123 labels, so a dot is refused there but fine in a ConfigMap name.
    let e = status(
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some("a.b".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await,
    );
    assert!(e.message.contains("RFC 1123 label"), "{}", e.message);
    cms.create(&PostParams::default(), &cm("a.b"))
        .await
        .expect("dots are fine in subdomains");

    let e = status(
        Api::<ConfigMap>::namespaced(client.clone(), "nope")
            .create(&PostParams::default(), &cm("x"))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "namespaces \"nope\" not found");

    let e = status(cms.list(&ListParams::default().labels("bad key=1")).await);
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    let e = status(cms.list(&ListParams::default().fields("data.a=1")).await);
    assert_eq!(
        e.message,
        r#""data.a" is not a known field selector: only "metadata.name", "metadata.namespace""#
    );
}

#[tokio::test]
async fn malformed_requests_and_unsupported_verbs() {
    let emu = emulator().await;
    let json = [("content-type", "application/json")];
    let (code, body) = raw(
        &emu,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &json,
        b"{not json",
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(body["kind"], "Status");

    let (code, body) = raw(
        &emu,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &json,
        br#"{"apiVersion": "v2", "kind": "ConfigMap"}"#,
    )
    .await;
    assert_eq!(code, 400, "{body}");

    let (code, body) = raw(
        &emu,
        "PUT",
        "/api/v1/namespaces/default/configmaps",
        &json,
        b"{}",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );
    let (code, _) = raw(
        &emu,
        "GET",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        &[],
        b"",
    )
    .await;
    assert_eq!(code, 405, "tokenreviews only support create");
    let (code, _) = raw(
        &emu,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        &[("content-type", "text/plain")],
        b"x",
    )
    .await;
    assert_eq!(code, 415);
    // Outside the served group-versions, Go's plain-text 404 (no Status), as kube-apiserver.
    let (code, body) = raw(&emu, "GET", "/apis/apps/v1/deployments", &[], b"").await;
    assert_eq!((code, body["reason"].as_str()), (404, None));
    let (code, body) = raw(&emu, "GET", "/api/v1/deployments", &[], b"").await;
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));
}

#[tokio::test]
async fn unauthenticated_requests_get_401() {
    let emu = emulator().await;
    let anonymous = emu.client_with_token("not-a-token");
    let e = status(
        Api::<ConfigMap>::namespaced(anonymous, "default")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
    assert_eq!(emu.counters().get_code("list", "configmaps", 401), 1);
}

#[tokio::test]
async fn undeclared_fields_are_dropped_or_refused() {
    let emu = emulator().await;
    let json = [("content-type", "application/json")];
    let body = br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "typo"}, "datas": {"a": "1"}}"#;
    let path = "/api/v1/namespaces/default/configmaps";
    let (code, status) = raw(
        &emu,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        &json,
        body,
    )
    .await;
    assert_eq!(
        (code, status["message"].as_str()),
        (
            400,
            Some(
                "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: \
                 strict decoding error: unknown field \"datas\""
            )
        )
    );
    let (code, created) = raw(&emu, "POST", path, &json, body).await;
    assert_eq!(code, 201);
    assert!(
        created.get("datas").is_none(),
        "dropped as decoding into a ConfigMap drops it"
    );
}
