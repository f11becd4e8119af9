//! Small builders and calls on Kubernetes objects that tests of every crate need.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};

/// A label (or annotation) map from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Creates namespace `name` with `labels`; one that already exists is fine.
pub async fn create_namespace(client: &kube::Client, name: &str, pairs: &[(&str, &str)]) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(pairs)),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_already_exists() => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
    // A real control plane's ServiceAccount controller adds `default` a moment later (the
    // emulator at once): wait for it, so a test's "before" snapshot does not race with it.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    crate::wait_for(
        &format!("ServiceAccount {name}/default"),
        std::time::Duration::from_secs(30),
        || async { accounts.get_opt("default").await.ok().flatten() },
    )
    .await;
}

/// A TokenRequest token of ServiceAccount `namespace/name` (what a pod would mount), valid
/// `seconds`, for `audiences` (empty: the API server's own).
pub async fn token_request(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    audiences: &[&str],
    seconds: i64,
) -> String {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
            expiration_seconds: Some(seconds),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let answer = api
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"));
    answer.status.expect("TokenRequest status").token
}

/// The Status of a failed request; panics on success or a non-API error.
pub fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}
