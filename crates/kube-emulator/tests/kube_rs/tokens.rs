//! TokenRequest and TokenReview through kube-rs, and requests made with ServiceAccount tokens.

use k8s_openapi::api::authentication::v1::{
    SelfSubjectReview, TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::support::{emulator, post_faults, status};

async fn token(
    sas: &Api<ServiceAccount>,
    name: &str,
    audiences: Vec<String>,
    seconds: Option<i64>,
) -> kube::Result<TokenRequest> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences,
            expiration_seconds: seconds,
            ..Default::default()
        },
        ..Default::default()
    };
    sas.create_subresource("token", name, &PostParams::default(), &request)
        .await
}

async fn review(client: kube::Client, token: &str, audiences: Option<Vec<String>>) -> TokenReview {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences,
        },
        ..Default::default()
    };
    Api::<TokenReview>::all(client)
        .create(&PostParams::default(), &review)
        .await
        .expect("TokenReview")
}

#[tokio::test]
async fn token_request_and_review() {
    let emu = emulator().await;
    let client = emu.client();
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let sa = sas
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: ObjectMeta {
                    name: Some("app".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let issued = token(&sas, "app", vec!["vault".into()], Some(600))
        .await
        .expect("TokenRequest");
    let status_ = issued.status.expect("status");
    assert_eq!(issued.spec.audiences, ["vault"]);
    assert_eq!(issued.spec.expiration_seconds, Some(600));
    let reviewed = review(client.clone(), &status_.token, Some(vec!["vault".into()]))
        .await
        .status
        .unwrap();
    assert_eq!(reviewed.authenticated, Some(true));
    let user = reviewed.user.unwrap();
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:default:app")
    );
    assert_eq!(user.uid, sa.metadata.uid);
    assert_eq!(reviewed.audiences, Some(vec!["vault".to_string()]));

    // A token for another audience does not pass a review for "vault".
    let api_token = token(&sas, "app", vec![], None).await.unwrap();
    assert_eq!(
        api_token.spec.expiration_seconds,
        Some(3600),
        "default expiration"
    );
    let refused = review(
        client.clone(),
        &api_token.status.unwrap().token,
        Some(vec!["vault".into()]),
    )
    .await
    .status
    .unwrap();
    // Kubernetes omits a false `authenticated`.
    assert_eq!(refused.authenticated, None);
    assert!(refused.error.is_some());

    let e = status(token(&sas, "app", vec![], Some(60)).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message
            .contains("may not specify a duration less than 10 minutes"),
        "{}",
        e.message
    );
    let e = status(token(&sas, "ghost", vec![], None).await);
    assert_eq!(e.message, "serviceaccounts \"ghost\" not found");
}

#[tokio::test]
async fn service_account_tokens_authenticate_requests() {
    let emu = emulator().await;
    let sas = Api::<ServiceAccount>::namespaced(emu.client(), "default");
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: ObjectMeta {
                name: Some("caller".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let jwt = token(&sas, "caller", vec![], None)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let as_sa = emu.client_with_token(&jwt);

    let me = Api::<SelfSubjectReview>::all(as_sa.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("whoami");
    let info = me.status.unwrap().user_info.unwrap();
    assert_eq!(
        info.username.as_deref(),
        Some("system:serviceaccount:default:caller")
    );
    assert!(
        info.groups
            .unwrap()
            .contains(&"system:serviceaccounts:default".to_string())
    );
    Api::<ConfigMap>::namespaced(as_sa.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("allowed without RBAC");

    // Deleting the ServiceAccount invalidates its tokens.
    sas.delete("caller", &DeleteParams::default())
        .await
        .unwrap();
    let e = status(
        Api::<ConfigMap>::namespaced(as_sa, "default")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(e.code, 401);
}

/// The claims of a JWT (not verified: the emulator issued it).
fn claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

fn unix_now() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since_epoch.as_secs()).expect("seconds fit i64")
}

/// Moving the emulator's clock (from the handle and over HTTP) expires tokens for API requests
/// and TokenReview alike, mints tokens at the moved time, and `clear` puts the real clock back.
#[tokio::test]
async fn clock_offset_expires_tokens() {
    let emu = emulator().await;
    let client = emu.client();
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let account: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "clock"}})).unwrap();
    sas.create(&PostParams::default(), &account).await.unwrap();
    let mint = |seconds| {
        let sas = sas.clone();
        async move {
            let issued = token(&sas, "clock", vec![], Some(seconds)).await.unwrap();
            issued.status.unwrap()
        }
    };
    let works = |jwt: String| {
        let client = emu.client_with_token(&jwt);
        async move { client.apiserver_version().await.map(|_| ()) }
    };
    let authenticated = |jwt: String| {
        let client = client.clone();
        async move { review(client, &jwt, None).await.status.unwrap() }
    };

    let before = unix_now();
    let short = mint(600).await.token;
    let long = mint(3600).await.token;
    let issued_at = claims(&short)["iat"].as_i64().unwrap();
    assert!(issued_at >= before && issued_at <= unix_now());
    assert_eq!(claims(&short)["exp"].as_i64(), Some(issued_at + 600));

    // At the short token's expiry it is still inside Kubernetes' 60 s leeway.
    emu.faults().set_clock_offset(600);
    assert_eq!(emu.faults().clock_offset(), 600);
    works(short.clone()).await.expect("within the leeway");
    assert_eq!(authenticated(short.clone()).await.authenticated, Some(true));

    // Past exp + leeway: 401 for requests, authenticated false in TokenReview.
    let offset = r#"{"clockOffsetSeconds": 661}"#;
    assert_eq!(post_faults(&emu, offset).await, 200);
    assert_eq!(emu.faults().clock_offset(), 661);
    let e = status(works(short.clone()).await);
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));
    let refused = authenticated(short.clone()).await;
    assert_eq!(refused.authenticated, None);
    let error = refused.error.unwrap_or_default();
    assert!(error.contains("expired"), "{error}");
    works(long.clone())
        .await
        .expect("the 1 h token is still valid");
    assert_eq!(authenticated(long).await.authenticated, Some(true));

    // Tokens minted now are minted at the moved time.
    let moved = mint(600).await;
    let moved_iat = claims(&moved.token)["iat"].as_i64().unwrap();
    assert!(
        moved_iat >= before + 661,
        "iat {moved_iat} is on the moved clock"
    );
    let expires = moved.expiration_timestamp.0.as_second();
    assert_eq!(expires, moved_iat + 600);
    works(moved.token.clone()).await.expect("fresh token");

    // Back to the real clock: the short token is valid again, the one minted 661 s in the
    // future is not valid yet.
    assert_eq!(post_faults(&emu, r#"{"clear": true}"#).await, 200);
    assert_eq!(emu.faults().clock_offset(), 0);
    works(short).await.expect("valid on the real clock");
    assert_eq!(status(works(moved.token.clone()).await).code, 401);
    let early = authenticated(moved.token).await;
    assert_eq!(early.authenticated, None);
}
