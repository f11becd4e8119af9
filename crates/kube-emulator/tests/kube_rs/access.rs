//! Access reviews (`kubectl auth can-i`) and impersonation (`kubectl --as`), with RBAC on.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube_emulator::Options;

use crate::support::{emulator_with, raw};

fn list_secrets(namespace: &str) -> ResourceAttributes {
    ResourceAttributes {
        verb: Some("list".into()),
        resource: Some("secrets".into()),
        namespace: Some(namespace.into()),
        ..Default::default()
    }
}

async fn sar(client: kube::Client, user: &str, namespace: &str) -> (bool, Option<String>) {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            resource_attributes: Some(list_secrets(namespace)),
            ..Default::default()
        },
        ..Default::default()
    };
    let answered = Api::<SubjectAccessReview>::all(client)
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    let status = answered.status.unwrap();
    (status.allowed, status.reason)
}

#[tokio::test]
async fn access_reviews_follow_rbac() {
    let emu = emulator_with(Options {
        rbac: true,
        ..Options::default()
    })
    .await;
    let admin = emu.client();
    let (allowed, reason) = sar(admin.clone(), "alice", "team").await;
    assert!(!allowed);
    // RBAC explains what it allows, not what it denies.
    assert_eq!(reason, None);

    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("alice-view".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "admin".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: "alice".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    assert!(
        sar(admin.clone(), "alice", "default").await.0,
        "bound in default"
    );
    assert!(
        !sar(admin.clone(), "alice", "team").await.0,
        "a RoleBinding grants in its namespace only"
    );

    let mine = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(list_secrets("kube-system")),
            ..Default::default()
        },
        ..Default::default()
    };
    let answered = Api::<SelfSubjectAccessReview>::all(admin)
        .create(&PostParams::default(), &mine)
        .await
        .unwrap();
    assert!(
        answered.status.unwrap().allowed,
        "the admin is in system:masters"
    );
}

#[tokio::test]
async fn impersonation_acts_as_the_impersonated_user() {
    let emu = emulator_with(Options {
        rbac: true,
        ..Options::default()
    })
    .await;
    let as_alice = [("impersonate-user", "alice")];
    let (code, body) = raw(
        &emu,
        "GET",
        "/api/v1/namespaces/default/secrets",
        &as_alice,
        b"",
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    let as_masters = [
        ("impersonate-user", "bob"),
        ("impersonate-group", "system:masters"),
    ];
    let (code, _) = raw(
        &emu,
        "GET",
        "/api/v1/namespaces/default/secrets",
        &as_masters,
        b"",
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = raw(
        &emu,
        "GET",
        "/api/v1/namespaces/default/secrets",
        &[("impersonate-group", "x")],
        b"",
    )
    .await;
    assert_eq!(code, 400, "groups without a user");
}
