use serde_json::json;
use testkit::TestVault;

#[tokio::test]
async fn dev_server_starts_answers_and_restarts_empty() {
    let mut bao = TestVault::start().await;
    let health = bao.request("GET", "sys/health", None).await;
    assert_eq!(health.status, 200, "{:?}", health.body);
    assert_eq!(health.body["initialized"], true);

    let policy = json!({"policy": "path \"x\" { capabilities = [\"read\"] }"});
    let put = bao
        .request("POST", "sys/policies/acl/canary", Some(policy))
        .await;
    assert_eq!(put.status, 204, "{:?}", put.body);
    assert_eq!(
        bao.request("GET", "sys/policies/acl/canary", None)
            .await
            .status,
        200
    );
    assert!(bao.cli(&["policy", "list"]).contains("canary"));

    bao.restart_empty().await;
    assert_eq!(
        bao.request("GET", "sys/policies/acl/canary", None)
            .await
            .status,
        404
    );
}
