//! Bearer token -> user, and TokenReview.
//!
//! The checks, their order and their error wording follow kube-apiserver's ServiceAccount token
//! authenticators (`pkg/serviceaccount`): issuer, signature, audiences, then expiry and the
//! objects the token is tied to (ServiceAccount by name and uid, bound Secret/Pod, and for legacy
//! tokens the Secret that holds them). Clients such as OpenBao only look at `authenticated`, the
//! user and the audiences, but people read the `error` strings, so they match what they would
//! see from a real cluster.
use super::jwt::{BoundClaims, Issuer, LegacyClaims, ObjectRef, TokenClaims, VerifyError};
use super::{
    AUTHENTICATED_GROUP, MASTERS_GROUP, ObjectLookup, UserInfo, deletion_timestamp, object_uid,
    service_account_user, split_service_account_username,
};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How far past `exp` (and before `nbf`) a token is still accepted, and how long a deleted
/// object keeps its tokens valid: kube-apiserver's go-jose default leeway.
pub const CLOCK_SKEW_LEEWAY_SECONDS: i64 = 60;

/// The admin user's name, as kubeadm names it.
pub const ADMIN_USERNAME: &str = "kubernetes-admin";

/// What kube-apiserver's bearer token authenticator says about any token it rejects.
const INVALID_BEARER_TOKEN: &str = "invalid bearer token";

/// Authenticates the admin token and ServiceAccount tokens signed by the cluster's issuer.
pub struct Authenticator {
    issuer: Arc<Issuer>,
    admin_token: String,
}

/// A successful authentication: who, and for which of the requested audiences.
struct Authenticated {
    user: UserInfo,
    audiences: Vec<String>,
    extra: Map<String, Value>,
}

impl std::fmt::Debug for Authenticator {
    // Hand-written so the admin token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.issuer)
            .field("admin_token", &"<redacted>")
            .finish()
    }
}

impl Authenticator {
    pub fn new(issuer: Arc<Issuer>, admin_token: String) -> Self {
        Authenticator {
            issuer,
            admin_token,
        }
    }

    /// The identity of the admin token: username "kubernetes-admin",
    /// groups ["system:masters", "system:authenticated"].
    pub fn admin_user() -> UserInfo {
        UserInfo {
            username: ADMIN_USERNAME.to_string(),
            uid: String::new(),
            groups: vec![MASTERS_GROUP.to_string(), AUTHENTICATED_GROUP.to_string()],
        }
    }

    /// Authenticates an API request's bearer token: the admin token, or a ServiceAccount token
    /// checked exactly like a TokenReview for the API audiences (signature, expiry, audience, the
    /// ServiceAccount still exists with the same uid, and for legacy tokens the Secret still
    /// exists and still holds that token). Err carries the reason (never the token), worded as
    /// kube-apiserver logs it, e.g. `[invalid bearer token, service account token has expired]`.
    pub fn authenticate(
        &self,
        bearer: &str,
        lookup: &dyn ObjectLookup,
        now: i64,
    ) -> Result<UserInfo, String> {
        self.authenticate_for(bearer, self.issuer.api_audiences(), lookup, now)
            .map(|authenticated| authenticated.user)
    }

    /// Fills `status` of a TokenReview object (authentication.k8s.io/v1) and returns the whole
    /// object: authenticated + user + audiences, or an error (no `authenticated`: false is omitted). spec.audiences
    /// empty means the API audiences; otherwise status.audiences is the intersection with the
    /// token's audiences (legacy tokens count as having the API audiences), and an empty
    /// intersection is a failure, as in Kubernetes.
    ///
    /// Kubernetes answers a TokenReview without `spec.token` with 400 BadRequest; callers that
    /// want that should check [`token_review_request_error`] first. Here such a review simply
    /// fails with that message.
    pub fn review(&self, token_review: &Value, lookup: &dyn ObjectLookup, now: i64) -> Value {
        let token = token_review
            .pointer("/spec/token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let requested = match string_list(token_review.pointer("/spec/audiences")) {
            audiences if audiences.is_empty() => self.issuer.api_audiences().to_vec(),
            audiences => audiences,
        };
        let result = match token_review_request_error(token_review) {
            Some(error) => Err(error),
            None => self.authenticate_for(token, &requested, lookup, now),
        };
        // A failed review has no `authenticated`: Kubernetes omits a false one.
        let status = match result {
            Ok(ok) => {
                let mut user = json!({"username": ok.user.username});
                if !ok.user.uid.is_empty() {
                    user["uid"] = json!(ok.user.uid);
                }
                user["groups"] = json!(ok.user.groups);
                if !ok.extra.is_empty() {
                    user["extra"] = Value::Object(ok.extra);
                }
                json!({"authenticated": true, "user": user, "audiences": ok.audiences})
            }
            Err(error) => json!({"user": {}, "error": error}),
        };
        let mut review = match token_review {
            Value::Object(fields) => fields.clone(),
            _ => Map::new(),
        };
        review.insert("apiVersion".into(), json!("authentication.k8s.io/v1"));
        review.insert("kind".into(), json!("TokenReview"));
        review.entry("metadata").or_insert_with(|| json!({}));
        review.insert("status".into(), status);
        Value::Object(review)
    }

    fn authenticate_for(
        &self,
        token: &str,
        requested: &[String],
        lookup: &dyn ObjectLookup,
        now: i64,
    ) -> Result<Authenticated, String> {
        if constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            // A static token is audience-agnostic: it counts as having the API audiences.
            let audiences = intersect(self.issuer.api_audiences(), requested);
            if audiences.is_empty() {
                return Err(INVALID_BEARER_TOKEN.to_string());
            }
            return Ok(Authenticated {
                user: Self::admin_user(),
                audiences,
                extra: Map::new(),
            });
        }
        let claims = match self.issuer.verify(token) {
            Ok(claims) => claims,
            Err(VerifyError::NotOurs) => return Err(INVALID_BEARER_TOKEN.to_string()),
            Err(error) => return Err(rejected(error)),
        };
        let token_audiences = match &claims {
            TokenClaims::Bound(bound) if !bound.aud.is_empty() => bound.aud.clone(),
            // Tokens without audiences (legacy ones) count as having the API audiences.
            _ => self.issuer.api_audiences().to_vec(),
        };
        let audiences = intersect(&token_audiences, requested);
        if audiences.is_empty() {
            return Err(rejected(format!(
                "token audiences {} is invalid for the target audiences {}",
                go_quoted_list(&token_audiences),
                go_quoted_list(requested)
            )));
        }
        let (user, extra) = match &claims {
            TokenClaims::Bound(bound) => validate_bound(bound, lookup, now),
            TokenClaims::Legacy(legacy) => validate_legacy(legacy, token, lookup),
        }
        .map_err(rejected)?;
        Ok(Authenticated {
            user,
            audiences,
            extra,
        })
    }
}

/// Why a TokenReview request is malformed (Kubernetes answers 400 BadRequest), if it is.
pub fn token_review_request_error(token_review: &Value) -> Option<String> {
    let token = token_review.pointer("/spec/token").and_then(Value::as_str);
    match token {
        Some(token) if !token.is_empty() => None,
        _ => Some("token is required for TokenReview in authentication".to_string()),
    }
}

/// The checks of Kubernetes' bound-token validator (`pkg/serviceaccount/claims.go`).
fn validate_bound(
    claims: &BoundClaims,
    lookup: &dyn ObjectLookup,
    now: i64,
) -> Result<(UserInfo, Map<String, Value>), String> {
    if now - CLOCK_SKEW_LEEWAY_SECONDS > claims.exp {
        return Err("service account token has expired".into());
    }
    if now + CLOCK_SKEW_LEEWAY_SECONDS < claims.nbf {
        return Err("service account token is not valid yet".into());
    }
    // Objects deleted within the leeway still count, as in Kubernetes.
    let deleted_long_ago = |object: &Value| {
        deletion_timestamp(object).is_some_and(|t| t < now - CLOCK_SKEW_LEEWAY_SECONDS)
    };
    let namespace = claims.kubernetes.namespace.as_str();
    let sa_ref = &claims.kubernetes.serviceaccount;
    let service_account = lookup
        .get("serviceaccounts", Some(namespace), &sa_ref.name)
        .ok_or_else(|| format!("serviceaccounts \"{}\" not found", sa_ref.name))?;
    if deleted_long_ago(&service_account) {
        return Err(format!(
            "service account {namespace}/{} has been deleted",
            sa_ref.name
        ));
    }
    let actual_uid = object_uid(&service_account);
    if actual_uid != sa_ref.uid {
        return Err(format!(
            "service account UID ({actual_uid}) does not match claim ({})",
            sa_ref.uid
        ));
    }
    let mut extra = Map::new();
    let bound_objects = [
        ("secrets", "secret", &claims.kubernetes.secret),
        ("pods", "pod", &claims.kubernetes.pod),
    ];
    for (resource, kind, reference) in bound_objects {
        let Some(ObjectRef { name, uid }) = reference else {
            continue;
        };
        let object = lookup
            .get(resource, Some(namespace), name)
            .filter(|object| !deleted_long_ago(object))
            .ok_or("service account token has been invalidated")?;
        if object_uid(&object) != uid {
            return Err(format!(
                "{kind} UID ({}) does not match service account {kind} ref claim ({uid})",
                object_uid(&object)
            ));
        }
        if kind == "pod" {
            extra.insert(
                "authentication.kubernetes.io/pod-name".into(),
                json!([name]),
            );
            extra.insert("authentication.kubernetes.io/pod-uid".into(), json!([uid]));
        }
    }
    if let Some(jti) = &claims.jti {
        extra.insert(
            "authentication.kubernetes.io/credential-id".into(),
            json!([format!("JTI={jti}")]),
        );
    }
    let user = service_account_user(namespace, &sa_ref.name, &sa_ref.uid);
    Ok((user, extra))
}

/// The checks of Kubernetes' legacy-token validator (`pkg/serviceaccount/legacy.go`).
fn validate_legacy(
    claims: &LegacyClaims,
    token: &str,
    lookup: &dyn ObjectLookup,
) -> Result<(UserInfo, Map<String, Value>), String> {
    let required = [
        (&claims.sub, "sub claim is missing"),
        (&claims.namespace, "namespace claim is missing"),
        (&claims.secret_name, "secretName claim is missing"),
        (
            &claims.service_account_name,
            "serviceAccountName claim is missing",
        ),
        (
            &claims.service_account_uid,
            "serviceAccountUID claim is missing",
        ),
    ];
    if let Some((_, missing)) = required.iter().find(|(value, _)| value.is_empty()) {
        return Err(missing.to_string());
    }
    let namespace = claims.namespace.as_str();
    let name = claims.service_account_name.as_str();
    if split_service_account_username(&claims.sub) != Some((namespace, name)) {
        return Err("sub claim is invalid".into());
    }
    let secret = lookup
        .get("secrets", Some(namespace), &claims.secret_name)
        .filter(|secret| deletion_timestamp(secret).is_none())
        .ok_or("token has been invalidated")?;
    let stored = secret
        .pointer("/data/token")
        .and_then(Value::as_str)
        .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok());
    if !stored.is_some_and(|stored| constant_time_eq(&stored, token.as_bytes())) {
        return Err("token does not match server's copy".into());
    }
    let service_account = lookup
        .get("serviceaccounts", Some(namespace), name)
        .ok_or_else(|| format!("serviceaccounts \"{name}\" not found"))?;
    if deletion_timestamp(&service_account).is_some() {
        return Err(format!(
            "service account {namespace}/{name} has been deleted"
        ));
    }
    let actual_uid = object_uid(&service_account);
    if actual_uid != claims.service_account_uid {
        return Err(format!(
            "service account UID ({actual_uid}) does not match claim ({})",
            claims.service_account_uid
        ));
    }
    // Kubernetes >= 1.29 lets the legacy-token cleaner mark tokens invalid with this label.
    let invalidated = secret
        .pointer("/metadata/labels/kubernetes.io~1legacy-token-invalid-since")
        .is_some();
    if invalidated {
        return Err("Token has been invalidated".into());
    }
    let user = service_account_user(namespace, name, &claims.service_account_uid);
    Ok((user, Map::new()))
}

/// The error kube-apiserver reports for a token its ServiceAccount authenticator rejected.
fn rejected(reason: impl std::fmt::Display) -> String {
    format!("[{INVALID_BEARER_TOKEN}, {reason}]")
}

/// Members of `requested` that `available` has, in `requested`'s order (as Kubernetes does).
fn intersect(available: &[String], requested: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|audience| available.contains(audience))
        .cloned()
        .collect()
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A string list as Go's `%q` prints it: `["a" "b"]`.
pub(crate) fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
