//! TokenRequest (`serviceaccounts/{name}/token`), TokenReview and SelfSubjectReview.

use http::Response;
use serde_json::{Value, json};

use super::{ApiRequest, Body, json_response};
use crate::context::Shared;
use crate::kinds;
use crate::meta;
use crate::patch::fields;
use crate::status::ApiError;
use crate::validation::FieldError;

/// Default and bounds of `spec.expirationSeconds`, as the apiserver validates them.
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;

/// TokenRequest as the kind of a validated object (it is served only as a subresource).
static TOKEN_REQUEST: kinds::Kind = kinds::Kind {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenRequest",
    plural: "tokenrequests",
    singular: "tokenrequest",
    namespaced: true,
    verbs: &["create"],
    short_names: &[],
    subresources: &[],
    name_rule: kinds::NameRule::Subdomain,
    generation: false,
    delete_returns_object: false,
    printer: kinds::Printer::Default,
    storage: kinds::Storage::Virtual,
    extra_fields: &[],
};

fn token_request_object_kind() -> &'static kinds::Kind {
    &TOKEN_REQUEST
}

fn token_request_kind() -> &'static kinds::Kind {
    kinds::find("", "v1", "serviceaccounts").expect("serviceaccounts are served")
}

/// POST `serviceaccounts/{name}/token`: a bound token for the ServiceAccount.
pub fn token_request(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let sa_kind = token_request_kind();
    let (ns, name) = (req.namespace(), req.name());
    let sa = shared
        .store
        .get(sa_kind.storage_key(), ns, name)
        .ok_or_else(|| ApiError::not_found(sa_kind, name))?;
    let body = if req.body.is_empty() {
        json!({})
    } else {
        req.json_body()?
    };
    if let Some(k) = body.get("kind").and_then(Value::as_str)
        && !k.is_empty()
        && k != "TokenRequest"
    {
        let version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        return Err(ApiError::unconvertible(
            k,
            version,
            "TokenRequest",
            "authentication.k8s.io",
        ));
    }
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION);
    let mut errors = Vec::new();
    if expiration < MIN_EXPIRATION {
        errors.push(FieldError::invalid_shown(
            "spec.expirationSeconds",
            &expiration.to_string(),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION {
        errors.push(FieldError::invalid_shown(
            "spec.expirationSeconds",
            &expiration.to_string(),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !errors.is_empty() {
        // Kubernetes validates the TokenRequest object, which has no name of its own.
        return Err(ApiError::invalid(token_request_object_kind(), "", &errors));
    }
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences = shared.issuer.api_audiences().to_vec();
    }
    let now = shared.token_clock();
    let minted = shared.issuer.mint_bound(
        ns,
        name,
        meta::meta_str(&sa, "uid"),
        &audiences,
        expiration,
        now,
    );
    let expires = chrono::DateTime::from_timestamp(minted.expiration_timestamp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    tracing::debug!(namespace = %ns, serviceaccount = %name, expiration, "issued bound token");
    // The answer names the ServiceAccount (its uid too) and carries the managedFields the
    // apiserver's field manager computed for the subresource's create.
    // Decoding defaults expirationSeconds before the field manager sees the request.
    let mut recorded_spec = spec.clone();
    recorded_spec["expirationSeconds"] = json!(expiration);
    let mut recorded = json!({"metadata": {}, "spec": recorded_spec});
    fields::record_update(
        None,
        &mut recorded,
        &req.manager,
        "authentication.k8s.io/v1",
        true,
    );
    let mut metadata = json!({"name": name, "namespace": ns, "uid": meta::meta_str(&sa, "uid"),
        "creationTimestamp": meta::now_rfc3339()});
    if let Some(Value::Array(entries)) = recorded.pointer_mut("/metadata/managedFields") {
        for e in entries.iter_mut() {
            e["subresource"] = json!("token");
        }
        metadata["managedFields"] = Value::Array(std::mem::take(entries));
    }
    Ok(json_response(
        201,
        &json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": metadata,
            "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null)},
            "status": {"token": minted.token, "expirationTimestamp": expires},
        }),
    ))
}

/// POST `tokenreviews`: who a token belongs to, for the audiences asked.
pub fn token_review(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let mut body = req.json_body()?;
    let kind = req.target.kind;
    crate::ops::check_type_meta(kind, &mut body)?;
    if body["spec"]["token"].as_str().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let mut reviewed = shared
        .authn
        .review(&body, &shared.store, shared.token_clock());
    reviewed["apiVersion"] = json!(kind.api_version());
    reviewed["kind"] = json!(kind.kind);
    reviewed["metadata"] = super::access::review_metadata(kind, &body, &req.manager);
    Ok(json_response(201, &reviewed))
}

/// POST `selfsubjectreviews` (`kubectl auth whoami`): the requester's own identity.
pub fn self_subject_review(req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let mut user_info = json!({"username": req.user.username});
    // An identity without a uid has none in the answer (`omitempty`).
    if !req.user.uid.is_empty() {
        user_info["uid"] = json!(req.user.uid);
    }
    user_info["groups"] = json!(req.user.groups);
    Ok(json_response(
        201,
        &json!({
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": meta::now_rfc3339()},
            "status": {"userInfo": user_info},
        }),
    ))
}
