//! Acceptance: TestVault's real Kubernetes auth method logs ServiceAccounts in by calling the
//! emulator's TokenReview API, with a reviewer ServiceAccount bound to `system:auth-delegator`.
//!
//! Each scenario runs against a fresh emulator and a fresh `bao server -dev` (from
//! `scripts/tools.sh`), with RBAC off and on, and with the reviewer's token from a TokenRequest
//! and from a `kubernetes.io/service-account-token` Secret filled in by the token controller.
//! Expiry is shown by moving the emulator's clock (`Faults::set_clock_offset`).
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, PostParams};
use kube_emulator::{Emulator, Options};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testkit::{BaoResponse, TestVault, VaultKind};

/// Namespace of the reviewer ServiceAccount.
const SYSTEM: &str = "vault-system";
/// Namespace of the workloads that log in.
const APPS: &str = "apps";
/// Policies the `app` role grants.
const POLICIES: [&str; 2] = ["app-read", "app-write"];
/// The shortest TokenRequest lifetime Kubernetes accepts, in seconds.
const MIN_LIFETIME: i64 = 600;
/// Kubernetes' clock-skew leeway on `exp` and `nbf`, in seconds.
const LEEWAY: i64 = 60;

/// Where OpenBao's token reviewer JWT comes from.
#[derive(Clone, Copy, Debug)]
enum ReviewerToken {
    TokenRequest,
    Secret,
}

struct Cluster {
    emulator: Emulator,
    bao: TestVault,
}

impl Cluster {
    /// Emulator with namespaces, the reviewer ServiceAccount `reviewer` (bound to
    /// system:auth-delegator) and the workload ServiceAccount `app`; OpenBao with the policies
    /// and the kubernetes auth method enabled (not yet configured).
    async fn start(rbac: bool) -> Cluster {
        let emulator = kube_emulator::start(Options {
            rbac,
            ..Options::default()
        })
        .await
        .expect("start the emulator");
        let bao = TestVault::start_kind(VaultKind::OpenBao, false).await;
        let cluster = Cluster { emulator, bao };
        let admin = cluster.emulator.client();
        for namespace in [SYSTEM, APPS] {
            let object: Namespace = from(json!({"metadata": {"name": namespace}}));
            Api::<Namespace>::all(admin.clone())
                .create(&PostParams::default(), &object)
                .await
                .expect("create namespace");
        }
        cluster.create_service_account(SYSTEM, "reviewer").await;
        cluster.bind_auth_delegator("reviewer").await;
        cluster.create_service_account(APPS, "app").await;
        for policy in POLICIES {
            let hcl =
                format!("path \"secret/data/{policy}\" {{\n  capabilities = [\"read\"]\n}}\n");
            cluster.bao.write_policy(None, policy, &hcl).await;
        }
        let enable = cluster
            .bao
            .request(
                "POST",
                "sys/auth/kubernetes",
                Some(json!({"type": "kubernetes"})),
            )
            .await;
        assert!(enable.status < 300, "enable kubernetes auth: {enable:?}");
        cluster
    }

    async fn create_service_account(&self, namespace: &str, name: &str) -> String {
        let api = Api::<ServiceAccount>::namespaced(self.emulator.client(), namespace);
        let created = api
            .create(
                &PostParams::default(),
                &from(json!({"metadata": {"name": name}})),
            )
            .await
            .expect("create ServiceAccount");
        created.metadata.uid.expect("ServiceAccount uid")
    }

    async fn uid(&self, namespace: &str, name: &str) -> String {
        let api = Api::<ServiceAccount>::namespaced(self.emulator.client(), namespace);
        let account = api.get(name).await.expect("get ServiceAccount");
        account.metadata.uid.expect("ServiceAccount uid")
    }

    async fn delete_service_account(&self, namespace: &str, name: &str) {
        Api::<ServiceAccount>::namespaced(self.emulator.client(), namespace)
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete ServiceAccount");
    }

    async fn bind_auth_delegator(&self, reviewer: &str) {
        let binding: ClusterRoleBinding = from(json!({
            "metadata": {"name": format!("{reviewer}-tokenreview")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
            "subjects": [{"kind": "ServiceAccount", "name": reviewer, "namespace": SYSTEM}]
        }));
        Api::<ClusterRoleBinding>::all(self.emulator.client())
            .create(&PostParams::default(), &binding)
            .await
            .expect("bind system:auth-delegator");
    }

    /// A TokenRequest token for `namespace/name`, valid for an hour.
    async fn token(&self, namespace: &str, name: &str, audiences: &[&str]) -> String {
        testkit::objects::token_request(&self.emulator.client(), namespace, name, audiences, 3600)
            .await
    }

    /// The reviewer's JWT, from a TokenRequest or from a service-account-token Secret.
    async fn reviewer_token(&self, reviewer: &str, source: ReviewerToken) -> String {
        match source {
            ReviewerToken::TokenRequest => self.token(SYSTEM, reviewer, &[]).await,
            ReviewerToken::Secret => self.secret_token(reviewer).await,
        }
    }

    /// Creates a `kubernetes.io/service-account-token` Secret for `reviewer` and waits for the
    /// token controller to fill it in.
    async fn secret_token(&self, reviewer: &str) -> String {
        let secrets = Api::<Secret>::namespaced(self.emulator.client(), SYSTEM);
        let name = format!("{reviewer}-token");
        let secret: Secret = from(json!({
            "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": reviewer}},
            "type": "kubernetes.io/service-account-token"
        }));
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("create token Secret");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let secret = secrets.get(&name).await.expect("get token Secret");
            let data = secret.data.unwrap_or_default();
            if let Some(token) = data.get("token") {
                assert_eq!(
                    data.get("namespace").map(|n| n.0.as_slice()),
                    Some(SYSTEM.as_bytes()),
                    "token controller fills in the namespace"
                );
                let ca = data
                    .get("ca.crt")
                    .expect("token controller fills in ca.crt");
                assert_eq!(ca.0, self.emulator.ca_pem().as_bytes());
                let token = String::from_utf8(token.0.clone()).expect("token is UTF-8");
                assert_eq!(
                    claims(&token)["iss"],
                    "kubernetes/serviceaccount",
                    "a legacy token"
                );
                return token;
            }
            assert!(
                Instant::now() < deadline,
                "token controller did not fill in Secret {name} within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Points OpenBao's kubernetes auth at the emulator, reviewing tokens with `reviewer_jwt`.
    async fn configure(&self, reviewer_jwt: &str) {
        let config = json!({
            "kubernetes_host": self.emulator.url(),
            "kubernetes_ca_cert": self.emulator.ca_pem(),
            "token_reviewer_jwt": reviewer_jwt,
            "disable_local_ca_jwt": true,
        });
        let resp = self
            .bao
            .request("POST", "auth/kubernetes/config", Some(config))
            .await;
        assert!(
            resp.status < 300,
            "configure kubernetes auth: {}",
            shown(&resp)
        );
    }

    /// Role `name` for ServiceAccounts `names` in namespace `apps`, granting exactly POLICIES.
    async fn role(&self, name: &str, names: &[&str], audience: Option<&str>) {
        let mut role = json!({
            "bound_service_account_names": names,
            "bound_service_account_namespaces": [APPS],
            "token_policies": POLICIES,
            "token_no_default_policy": true,
            "token_ttl": "5m",
        });
        if let Some(audience) = audience {
            role["audience"] = json!(audience);
        }
        let resp = self
            .bao
            .request("POST", &format!("auth/kubernetes/role/{name}"), Some(role))
            .await;
        assert!(resp.status < 300, "write role {name}: {}", shown(&resp));
    }

    /// TokenReviews the emulator answered with `code`, so far.
    fn reviews(&self, code: u16) -> u64 {
        self.emulator
            .counters()
            .get_code("create", "tokenreviews", code)
    }

    /// Logs in, expecting OpenBao to ask the emulator's TokenReview and be told no: a refusal
    /// by the emulator, not by OpenBao's own checks of the claims.
    async fn assert_review_refuses(&self, role: &str, jwt: &str, what: &str) {
        let before = self.reviews(201);
        assert_refused(&self.login(role, jwt).await, what);
        assert_eq!(
            self.reviews(201),
            before + 1,
            "{what}: OpenBao must have asked TokenReview"
        );
    }

    async fn login(&self, role: &str, jwt: &str) -> BaoResponse {
        self.bao
            .request_as(
                "",
                "POST",
                "auth/kubernetes/login",
                Some(json!({"role": role, "jwt": jwt})),
            )
            .await
    }

    /// Logs in and checks the token OpenBao issues carries exactly the role's policies and
    /// the ServiceAccount's identity.
    async fn assert_login(&self, role: &str, jwt: &str, account: &str, uid: &str) {
        let resp = self.login(role, jwt).await;
        let what = format!("login as {account} with role {role}: {}", shown(&resp));
        assert_eq!(resp.status, 200, "{what}");
        let auth = &resp.body["auth"];
        assert_eq!(auth["policies"], json!(POLICIES), "{what}");
        assert_eq!(auth["token_policies"], json!(POLICIES), "{what}");
        assert_eq!(auth["metadata"]["service_account_name"], account);
        assert_eq!(auth["metadata"]["service_account_namespace"], APPS);
        assert_eq!(auth["metadata"]["service_account_uid"], uid);
        let client_token = auth["client_token"].as_str().expect("client_token");
        // Without the default policy the token cannot look itself up: ask as root.
        let lookup = json!({"token": client_token});
        let issued = self
            .bao
            .request("POST", "auth/token/lookup", Some(lookup))
            .await;
        assert_eq!(issued.status, 200, "token lookup: {}", shown(&issued));
        assert_eq!(issued.body["data"]["policies"], json!(POLICIES));
    }
}

/// The (unverified) claims of a JWT.
fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("payload is base64url");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("object parses")
}

/// A response as assertion messages may show it: status and body without the issued token.
fn shown(resp: &BaoResponse) -> String {
    let mut body = resp.body.clone();
    for secret in ["client_token", "accessor"] {
        if let Some(field) = body.get_mut("auth").and_then(|auth| auth.get_mut(secret)) {
            *field = json!("<redacted>");
        }
    }
    format!("{} {body}", resp.status)
}

/// OpenBao refuses a login with 403 (its own checks and failed TokenReviews alike).
fn assert_refused(resp: &BaoResponse, what: &str) {
    assert_eq!(resp.status, 403, "{what} must be refused: {}", shown(resp));
    assert!(
        resp.body.get("auth").is_none_or(Value::is_null),
        "{what}: {}",
        shown(resp)
    );
}

/// The whole login story for one configuration.
async fn logins_and_refusals(rbac: bool, source: ReviewerToken) {
    let cluster = Cluster::start(rbac).await;
    let reviewer = cluster.reviewer_token("reviewer", source).await;
    cluster.configure(&reviewer).await;
    cluster.role("app", &["app", "doomed"], None).await;

    // A bound ServiceAccount logs in and gets exactly the role's policies.
    let app_uid = cluster.uid(APPS, "app").await;
    let app_token = cluster.token(APPS, "app", &[]).await;
    cluster
        .assert_login("app", &app_token, "app", &app_uid)
        .await;

    // A ServiceAccount the role does not name is refused.
    cluster.create_service_account(APPS, "stranger").await;
    let stranger = cluster.token(APPS, "stranger", &[]).await;
    assert_refused(
        &cluster.login("app", &stranger).await,
        "unbound ServiceAccount",
    );

    // A token of a deleted ServiceAccount is refused by TokenReview...
    let doomed_uid = cluster.create_service_account(APPS, "doomed").await;
    let doomed = cluster.token(APPS, "doomed", &[]).await;
    cluster
        .assert_login("app", &doomed, "doomed", &doomed_uid)
        .await;
    cluster.delete_service_account(APPS, "doomed").await;
    cluster
        .assert_review_refuses("app", &doomed, "deleted ServiceAccount")
        .await;
    // ...and so is it once a ServiceAccount of the same name is back (it has a new uid),
    // while the new one's own token works.
    let reborn_uid = cluster.create_service_account(APPS, "doomed").await;
    assert_ne!(reborn_uid, doomed_uid);
    cluster
        .assert_review_refuses("app", &doomed, "recreated ServiceAccount")
        .await;
    let reborn = cluster.token(APPS, "doomed", &[]).await;
    cluster
        .assert_login("app", &reborn, "doomed", &reborn_uid)
        .await;

    // A role with an audience takes tokens for that audience only.
    cluster.role("audience", &["app"], Some("vault")).await;
    let for_vault = cluster.token(APPS, "app", &["vault"]).await;
    cluster
        .assert_login("audience", &for_vault, "app", &app_uid)
        .await;
    assert_refused(
        &cluster.login("audience", &app_token).await,
        "token without the audience",
    );
    assert_eq!(
        cluster.reviews(403),
        0,
        "the bound reviewer may always review"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_request_reviewer_without_rbac() {
    logins_and_refusals(false, ReviewerToken::TokenRequest).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_request_reviewer_with_rbac() {
    logins_and_refusals(true, ReviewerToken::TokenRequest).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_reviewer_without_rbac() {
    logins_and_refusals(false, ReviewerToken::Secret).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_reviewer_with_rbac() {
    logins_and_refusals(true, ReviewerToken::Secret).await;
}

/// With RBAC on, the reviewer's system:auth-delegator binding is what lets OpenBao review
/// tokens: without it every login fails, with it the same login succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn reviewer_needs_auth_delegator_with_rbac() {
    let cluster = Cluster::start(true).await;
    cluster
        .create_service_account(SYSTEM, "unbound-reviewer")
        .await;
    let reviewer = cluster.token(SYSTEM, "unbound-reviewer", &[]).await;
    cluster.configure(&reviewer).await;
    cluster.role("app", &["app"], None).await;
    let app_uid = cluster.uid(APPS, "app").await;
    let app_token = cluster.token(APPS, "app", &[]).await;
    assert_refused(
        &cluster.login("app", &app_token).await,
        "login through an unbound reviewer",
    );
    assert_eq!(
        cluster.reviews(403),
        1,
        "the emulator refused the unbound reviewer's TokenReview"
    );
    assert_eq!(cluster.reviews(201), 0);

    cluster.bind_auth_delegator("unbound-reviewer").await;
    cluster
        .assert_login("app", &app_token, "app", &app_uid)
        .await;
}

/// An expired token is refused: TestVault, whose own clock still finds the token valid, asks the
/// emulator's TokenReview, which (its clock moved past exp + leeway) says no; the same token gets
/// 401 from the API, while a token minted alongside it with a longer lifetime still logs in.
#[tokio::test(flavor = "multi_thread")]
async fn expired_token_is_refused_by_review() {
    let cluster = Cluster::start(true).await;
    let reviewer = cluster
        .reviewer_token("reviewer", ReviewerToken::TokenRequest)
        .await;
    cluster.configure(&reviewer).await;
    cluster.role("app", &["app"], None).await;
    let app_uid = cluster.uid(APPS, "app").await;
    let short =
        testkit::objects::token_request(&cluster.emulator.client(), APPS, "app", &[], MIN_LIFETIME)
            .await;
    let long = cluster.token(APPS, "app", &[]).await;
    cluster.assert_login("app", &short, "app", &app_uid).await;

    // At its expiry the token is still inside Kubernetes' leeway.
    let faults = cluster.emulator.faults();
    faults.set_clock_offset(MIN_LIFETIME);
    cluster.assert_login("app", &short, "app", &app_uid).await;

    // One second past exp + leeway it is refused, by TokenReview.
    faults.set_clock_offset(MIN_LIFETIME + LEEWAY + 1);
    cluster
        .assert_review_refuses("app", &short, "expired token")
        .await;
    let status = match cluster
        .emulator
        .client_with_token(&short)
        .apiserver_version()
        .await
    {
        Err(kube::Error::Api(status)) => status,
        other => panic!("an API request with the expired token must fail: {other:?}"),
    };
    assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"));
    cluster.assert_login("app", &long, "app", &app_uid).await;

    // A token minted on the moved clock is issued 661 s in OpenBao's future: OpenBao refuses it
    // by its own iat/nbf check, without asking TokenReview. On the real clock again, a fresh
    // token logs in.
    let skewed =
        testkit::objects::token_request(&cluster.emulator.client(), APPS, "app", &[], MIN_LIFETIME)
            .await;
    let reviews = cluster.reviews(201);
    assert_refused(
        &cluster.login("app", &skewed).await,
        "token from the future",
    );
    assert_eq!(
        cluster.reviews(201),
        reviews,
        "OpenBao refused it by itself"
    );
    faults.clear();
    let fresh =
        testkit::objects::token_request(&cluster.emulator.client(), APPS, "app", &[], MIN_LIFETIME)
            .await;
    cluster.assert_login("app", &fresh, "app", &app_uid).await;
    assert_eq!(
        cluster.reviews(403),
        0,
        "the reviewer's own token stays valid"
    );
}
