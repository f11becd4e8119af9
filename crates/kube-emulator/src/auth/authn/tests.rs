use super::*;
use crate::auth::jwt::tests::ISSUER;
use crate::auth::jwt::{KubernetesClaim, MintedToken};
use crate::auth::testing::MemoryLookup;
use base64::engine::general_purpose::STANDARD;

const NOW: i64 = 1_700_000_000;
const ADMIN_TOKEN: &str = "admin-secret-token";

fn authenticator() -> Authenticator {
    // One key for all tests (key generation is the slow part).
    static SHARED: std::sync::OnceLock<Arc<Issuer>> = std::sync::OnceLock::new();
    let issuer = SHARED
        .get_or_init(|| Arc::new(Issuer::generate(ISSUER, vec![ISSUER.to_string()]).unwrap()));
    Authenticator::new(issuer.clone(), ADMIN_TOKEN.to_string())
}

fn mint(authn: &Authenticator, uid: &str, audiences: &[&str], seconds: i64) -> MintedToken {
    let audiences: Vec<String> = audiences.iter().map(|a| a.to_string()).collect();
    authn
        .issuer
        .mint_bound("ns", "sa", uid, &audiences, seconds, NOW)
}

fn lookup_with_sa(uid: &str) -> MemoryLookup {
    let mut lookup = MemoryLookup::default();
    lookup.service_account("ns", "sa", uid);
    lookup
}

/// Why `authenticate` refuses the token (panics if it accepts it).
fn refused(authn: &Authenticator, token: &str, lookup: &MemoryLookup, now: i64) -> String {
    authn.authenticate(token, lookup, now).unwrap_err()
}

fn review(
    authn: &Authenticator,
    token: &str,
    audiences: &[&str],
    lookup: &MemoryLookup,
    now: i64,
) -> Value {
    let request = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences}
    });
    authn.review(&request, lookup, now)
}

#[test]
fn admin_token_is_the_admin_user() {
    let authn = authenticator();
    let user = authn
        .authenticate(ADMIN_TOKEN, &MemoryLookup::default(), NOW)
        .unwrap();
    assert_eq!(user, Authenticator::admin_user());
    assert_eq!(user.username, "kubernetes-admin");
    assert_eq!(user.groups, ["system:masters", "system:authenticated"]);
    let err = refused(&authn, "admin-secret-tokeN", &MemoryLookup::default(), NOW);
    assert_eq!(err, "invalid bearer token");
}

#[test]
fn bound_token_authenticates_its_service_account() {
    let authn = authenticator();
    let token = mint(&authn, "uid-1", &[], 3600).token;
    let user = authn
        .authenticate(&token, &lookup_with_sa("uid-1"), NOW + 10)
        .unwrap();
    assert_eq!(user, crate::auth::service_account_user("ns", "sa", "uid-1"));
}

#[test]
fn expiry_is_checked_with_kubernetes_leeway() {
    let authn = authenticator();
    let lookup = lookup_with_sa("uid-1");
    let minted = mint(&authn, "uid-1", &[], 600);
    let exp = minted.expiration_timestamp;
    assert!(authn.authenticate(&minted.token, &lookup, exp).is_ok());
    assert!(
        authn
            .authenticate(&minted.token, &lookup, exp + CLOCK_SKEW_LEEWAY_SECONDS)
            .is_ok()
    );
    let err = refused(
        &authn,
        &minted.token,
        &lookup,
        exp + CLOCK_SKEW_LEEWAY_SECONDS + 1,
    );
    assert_eq!(
        err,
        "[invalid bearer token, service account token has expired]"
    );
    let err = refused(
        &authn,
        &minted.token,
        &lookup,
        NOW - CLOCK_SKEW_LEEWAY_SECONDS - 1,
    );
    assert_eq!(
        err,
        "[invalid bearer token, service account token is not valid yet]"
    );
}

#[test]
fn deleted_service_account_is_refused() {
    let authn = authenticator();
    let token = mint(&authn, "uid-1", &[], 3600).token;
    let err = refused(&authn, &token, &MemoryLookup::default(), NOW);
    assert_eq!(
        err,
        r#"[invalid bearer token, serviceaccounts "sa" not found]"#
    );
}

#[test]
fn recreated_service_account_with_new_uid_is_refused() {
    let authn = authenticator();
    let token = mint(&authn, "uid-1", &[], 3600).token;
    let err = refused(&authn, &token, &lookup_with_sa("uid-2"), NOW);
    assert_eq!(
        err,
        "[invalid bearer token, service account UID (uid-2) does not match claim (uid-1)]"
    );
}

#[test]
fn service_account_being_deleted_keeps_tokens_for_the_leeway_only() {
    let authn = authenticator();
    let token = mint(&authn, "uid-1", &[], 3600).token;
    let mut lookup = MemoryLookup::default();
    let deleted_at = chrono::DateTime::from_timestamp(NOW, 0)
        .unwrap()
        .to_rfc3339();
    lookup.put(
        "serviceaccounts",
        json!({"metadata": {
        "name": "sa", "namespace": "ns", "uid": "uid-1", "deletionTimestamp": deleted_at}}),
    );
    assert!(authn.authenticate(&token, &lookup, NOW + 30).is_ok());
    let err = refused(&authn, &token, &lookup, NOW + 61);
    assert_eq!(
        err,
        "[invalid bearer token, service account ns/sa has been deleted]"
    );
}

#[test]
fn api_requests_need_an_api_audience() {
    let authn = authenticator();
    let token = mint(&authn, "uid-1", &["vault"], 3600).token;
    let err = refused(&authn, &token, &lookup_with_sa("uid-1"), NOW);
    assert_eq!(
        err,
        format!(
            r#"[invalid bearer token, token audiences ["vault"] is invalid for the target audiences ["{ISSUER}"]]"#
        )
    );
}

#[test]
fn review_reports_user_audiences_and_credential_id() {
    let authn = authenticator();
    let lookup = lookup_with_sa("uid-1");
    let token = mint(&authn, "uid-1", &[], 3600).token;
    let reviewed = review(&authn, &token, &[], &lookup, NOW);
    assert_eq!(reviewed["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(reviewed["kind"], "TokenReview");
    assert_eq!(reviewed["metadata"], json!({}));
    assert_eq!(reviewed["spec"]["token"], token.as_str());
    let status = &reviewed["status"];
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["audiences"], json!([ISSUER]));
    assert_eq!(status["user"]["username"], "system:serviceaccount:ns:sa");
    assert_eq!(status["user"]["uid"], "uid-1");
    assert_eq!(
        status["user"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:ns",
            "system:authenticated"
        ])
    );
    let credential = status["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]
        .as_str()
        .unwrap();
    assert!(credential.starts_with("JTI="), "{credential}");
    assert!(status.get("error").is_none());
}

#[test]
fn review_intersects_requested_and_token_audiences() {
    let authn = authenticator();
    let lookup = lookup_with_sa("uid-1");
    let token = mint(&authn, "uid-1", &["vault", "other"], 3600).token;
    let status = &review(&authn, &token, &["elsewhere", "vault"], &lookup, NOW)["status"];
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["audiences"], json!(["vault"]));

    let status = &review(&authn, &token, &["elsewhere"], &lookup, NOW)["status"];
    assert!(
        status.get("authenticated").is_none(),
        "a failed review omits authenticated"
    );
    assert_eq!(status["user"], json!({}));
    assert_eq!(
        status["error"],
        r#"[invalid bearer token, token audiences ["vault" "other"] is invalid for the target audiences ["elsewhere"]]"#
    );
    // No spec.audiences: the API audiences, which a vault-only token lacks.
    let status = &review(&authn, &token, &[], &lookup, NOW)["status"];
    assert!(
        status.get("authenticated").is_none(),
        "a failed review omits authenticated"
    );
}

#[test]
fn review_of_expired_or_orphaned_tokens_fails() {
    let authn = authenticator();
    let minted = mint(&authn, "uid-1", &[], 600);
    let late = minted.expiration_timestamp + 120;
    let status = &review(&authn, &minted.token, &[], &lookup_with_sa("uid-1"), late)["status"];
    assert!(
        status.get("authenticated").is_none(),
        "a failed review omits authenticated"
    );
    assert_eq!(
        status["error"],
        "[invalid bearer token, service account token has expired]"
    );
    let status = &review(&authn, &minted.token, &[], &MemoryLookup::default(), NOW)["status"];
    assert!(
        status.get("authenticated").is_none(),
        "a failed review omits authenticated"
    );
    assert!(!status["error"].as_str().unwrap().contains(&minted.token));
}

#[test]
fn review_without_token_fails() {
    let authn = authenticator();
    let request =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}});
    assert_eq!(
        token_review_request_error(&request).as_deref(),
        Some("token is required for TokenReview in authentication")
    );
    let status = &authn.review(&request, &MemoryLookup::default(), NOW)["status"];
    assert!(
        status.get("authenticated").is_none(),
        "a failed review omits authenticated"
    );
    assert_eq!(
        status["error"],
        "token is required for TokenReview in authentication"
    );
}

#[test]
fn review_of_admin_token_is_audience_agnostic() {
    let authn = authenticator();
    let lookup = MemoryLookup::default();
    let status = &review(&authn, ADMIN_TOKEN, &[], &lookup, NOW)["status"];
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["user"]["username"], "kubernetes-admin");
    assert!(status["user"].get("uid").is_none());
    let status = &review(&authn, ADMIN_TOKEN, &["vault"], &lookup, NOW)["status"];
    assert!(
        status.get("authenticated").is_none(),
        "a failed review omits authenticated"
    );
    assert_eq!(status["error"], "invalid bearer token");
}

#[test]
fn tampered_and_foreign_tokens_fail() {
    let authn = authenticator();
    let lookup = lookup_with_sa("uid-1");
    let token = mint(&authn, "uid-1", &[], 3600).token;
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let err = refused(&authn, &tampered, &lookup, NOW);
    assert_eq!(
        err,
        "[invalid bearer token, go-jose/go-jose: error in cryptographic primitive]"
    );
    let other = Issuer::generate(ISSUER, vec![ISSUER.to_string()]).unwrap();
    let foreign = other.mint_bound("ns", "sa", "uid-1", &[], 3600, NOW).token;
    assert!(authn.authenticate(&foreign, &lookup, NOW).is_err());
    assert_eq!(
        refused(&authn, &foreign, &lookup, NOW),
        "[invalid bearer token, invalid signature, no keys found]"
    );
    assert_eq!(
        refused(&authn, "not-a-jwt", &lookup, NOW),
        "invalid bearer token"
    );
}

fn legacy_setup(authn: &Authenticator) -> (String, MemoryLookup) {
    let token = authn.issuer.mint_legacy("ns", "sa", "uid-1", "sa-token-x");
    let mut lookup = lookup_with_sa("uid-1");
    lookup.put(
        "secrets",
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "sa-token-x", "namespace": "ns", "uid": "secret-uid",
                         "annotations": {"kubernetes.io/service-account.name": "sa"}},
            "data": {"token": STANDARD.encode(&token)}
        }),
    );
    (token, lookup)
}

#[test]
fn legacy_token_authenticates_while_its_secret_holds_it() {
    let authn = authenticator();
    let (token, mut lookup) = legacy_setup(&authn);
    let user = authn.authenticate(&token, &lookup, NOW).unwrap();
    assert_eq!(user.username, "system:serviceaccount:ns:sa");
    let status = &review(&authn, &token, &[], &lookup, NOW)["status"];
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["audiences"], json!([ISSUER]));
    assert!(status["user"].get("extra").is_none());
    // Legacy tokens only carry the API audiences.
    let status = &review(&authn, &token, &["vault"], &lookup, NOW)["status"];
    assert!(
        status.get("authenticated").is_none(),
        "a failed review omits authenticated"
    );

    lookup.put(
        "secrets",
        json!({"metadata": {"name": "sa-token-x", "namespace": "ns"},
                                 "data": {"token": STANDARD.encode("another")}}),
    );
    let err = refused(&authn, &token, &lookup, NOW);
    assert_eq!(
        err,
        "[invalid bearer token, token does not match server's copy]"
    );
    lookup.remove("secrets", Some("ns"), "sa-token-x");
    let err = refused(&authn, &token, &lookup, NOW);
    assert_eq!(err, "[invalid bearer token, token has been invalidated]");
}

#[test]
fn legacy_token_dies_with_its_service_account() {
    let authn = authenticator();
    let (token, mut lookup) = legacy_setup(&authn);
    lookup.service_account("ns", "sa", "uid-2");
    let err = refused(&authn, &token, &lookup, NOW);
    assert_eq!(
        err,
        "[invalid bearer token, service account UID (uid-2) does not match claim (uid-1)]"
    );
    lookup.remove("serviceaccounts", Some("ns"), "sa");
    let err = refused(&authn, &token, &lookup, NOW);
    assert_eq!(
        err,
        r#"[invalid bearer token, serviceaccounts "sa" not found]"#
    );
}

#[test]
fn legacy_token_invalidated_by_label_is_refused() {
    let authn = authenticator();
    let (token, mut lookup) = legacy_setup(&authn);
    let mut secret = lookup.get("secrets", Some("ns"), "sa-token-x").unwrap();
    secret["metadata"]["labels"] =
        json!({"kubernetes.io/legacy-token-invalid-since": "2024-01-01"});
    lookup.put("secrets", secret);
    let err = refused(&authn, &token, &lookup, NOW);
    assert_eq!(err, "[invalid bearer token, Token has been invalidated]");
}

#[test]
fn secret_bound_token_dies_with_its_secret() {
    let authn = authenticator();
    let claims = BoundClaims {
        aud: vec![ISSUER.to_string()],
        exp: NOW + 600,
        iat: NOW,
        iss: ISSUER.to_string(),
        jti: None,
        kubernetes: KubernetesClaim {
            namespace: "ns".into(),
            serviceaccount: ObjectRef {
                name: "sa".into(),
                uid: "uid-1".into(),
            },
            pod: None,
            secret: Some(ObjectRef {
                name: "bound".into(),
                uid: "s-1".into(),
            }),
        },
        nbf: NOW,
        sub: "system:serviceaccount:ns:sa".into(),
    };
    let token = authn.issuer.sign(&claims);
    let mut lookup = lookup_with_sa("uid-1");
    lookup.put(
        "secrets",
        json!({"metadata": {"name": "bound", "namespace": "ns", "uid": "s-1"}}),
    );
    assert!(authn.authenticate(&token, &lookup, NOW).is_ok());
    lookup.put(
        "secrets",
        json!({"metadata": {"name": "bound", "namespace": "ns", "uid": "s-2"}}),
    );
    let err = refused(&authn, &token, &lookup, NOW);
    assert_eq!(
        err,
        "[invalid bearer token, secret UID (s-2) does not match service account secret ref claim (s-1)]"
    );
    lookup.remove("secrets", Some("ns"), "bound");
    let err = refused(&authn, &token, &lookup, NOW);
    assert_eq!(
        err,
        "[invalid bearer token, service account token has been invalidated]"
    );
}

#[test]
fn debug_output_hides_the_admin_token() {
    let debug = format!("{:?}", authenticator());
    assert!(!debug.contains(ADMIN_TOKEN));
    assert!(debug.contains("<redacted>"));
}

#[test]
fn go_quoting_matches_go_percent_q() {
    assert_eq!(go_quoted_list(&[]), "[]");
    assert_eq!(
        go_quoted_list(&["a".into(), "b c".into()]),
        r#"["a" "b c"]"#
    );
}
