//! TokenRequest and TokenReview through kube-rs, and requests made with ServiceAccount tokens.

use k8s_openapi::api::authentication::v1::{
    SelfSubjectReview, TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::support::{emulator, status};

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
    assert_eq!(refused.authenticated, Some(false));
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
