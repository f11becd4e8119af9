//! Request counters and fault injection, from the handle and over HTTP.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

use crate::support::{emulator, post_faults, raw, status};

#[tokio::test]
async fn counters_count_by_verb_resource_and_code() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    emu.reset_counters();
    cms.list(&ListParams::default()).await.unwrap();
    cms.get("kube-root-ca.crt").await.unwrap();
    let _ = cms.get("missing").await;
    let c = emu.counters();
    assert_eq!(c.get("list", "configmaps"), 1);
    assert_eq!(c.get("get", "configmaps"), 2);
    assert_eq!(c.get_code("get", "configmaps", 404), 1);
    assert_eq!(c.writes(), 0);
    assert!(
        c.entries()
            .contains(&("get".to_string(), "configmaps".to_string(), 200, 1))
    );

    let (code, body) = raw(&emu, "GET", "/emulator/counters", &[], b"").await;
    assert_eq!(code, 200);
    assert!(body.as_array().unwrap().iter().any(|e| e["verb"] == "list"
        && e["resource"] == "configmaps"
        && e["code"] == 200
        && e["count"] == 1));
    let (code, _) = raw(&emu, "DELETE", "/emulator/counters", &[], b"").await;
    assert_eq!(code, 200);
    assert_eq!(emu.counters().entries(), Vec::new());
}

#[tokio::test]
async fn injected_failures_latency_and_http_control() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    emu.faults().fail_next("get", "configmaps", 2, 500);
    for _ in 0..2 {
        let e = status(cms.get("kube-root-ca.crt").await);
        assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    }
    cms.get("kube-root-ca.crt")
        .await
        .expect("the third get is not failed");
    assert_eq!(emu.counters().get_code("get", "configmaps", 500), 2);

    emu.faults().fail_next("*", "*", 1, 409);
    assert_eq!(
        status(cms.list(&ListParams::default()).await).reason,
        "Conflict"
    );

    assert_eq!(
        post_faults(
            &emu,
            r#"{"failNext": {"verb": "list", "resource": "configmaps", "count": 1, "status": 404}}"#
        )
        .await,
        200
    );
    assert_eq!(status(cms.list(&ListParams::default()).await).code, 404);
    assert_eq!(post_faults(&emu, r#"{"latencyMs": 300}"#).await, 200);
    let t = Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(post_faults(&emu, r#"{"clear": true}"#).await, 200);
    let t = Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(300));
    assert_eq!(post_faults(&emu, r#"{"bogus": 1}"#).await, 400);

    // Only the admin token may use the emulator endpoints.
    let other = emu.client_with_token("nope");
    let request = http::Request::get("/emulator/counters")
        .body(Vec::new())
        .unwrap();
    assert_eq!(status(other.request_text(request).await).code, 401);
}
