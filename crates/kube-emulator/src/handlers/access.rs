//! SubjectAccessReview and SelfSubjectAccessReview (`kubectl auth can-i`): the authorizer's
//! answer for a user and request attributes, without making the request.

use http::Response;
use serde_json::{Value, json};

use super::{ApiRequest, Body, json_response};
use crate::auth::UserInfo;
use crate::auth::rbac::{self, Attributes, Decision};
use crate::context::Shared;
use crate::kinds::Kind;
use crate::status::ApiError;
use crate::validation::FieldError;

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or("").to_string()
}

/// The attributes a review asks about; exactly one of resourceAttributes and
/// nonResourceAttributes must be given.
fn attributes(spec: &Value) -> Result<Attributes, FieldError> {
    match (
        spec.get("resourceAttributes"),
        spec.get("nonResourceAttributes"),
    ) {
        (Some(r), None) => Ok(Attributes {
            verb: text(r, "verb"),
            api_group: text(r, "group"),
            resource: text(r, "resource"),
            subresource: text(r, "subresource"),
            namespace: text(r, "namespace"),
            name: text(r, "name"),
            path: String::new(),
            resource_request: true,
        }),
        (None, Some(n)) => Ok(Attributes {
            verb: text(n, "verb"),
            api_group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            path: text(n, "path"),
            resource_request: false,
        }),
        // Printed as Go prints the NonResourceAttributes struct (nil when absent).
        (_, n) => Err(FieldError::invalid_shown(
            "spec",
            &match n {
                Some(n) => json!({"Path": text(n, "path"), "Verb": text(n, "verb")}).to_string(),
                None => "null".to_string(),
            },
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

/// 422 for an invalid access review. kube-apiserver builds this one without the review's kind:
/// its message starts `.authorization.k8s.io "" is invalid` and its details name no kind.
fn invalid(kind: &Kind, error: FieldError) -> ApiError {
    let mut e = ApiError::invalid(kind, "", &[error]);
    e.message = e.message.replacen(kind.kind, "", 1);
    if let Some(Value::Object(d)) = e.details.as_mut() {
        d.remove("kind");
    }
    e
}

/// POST of a (Self)SubjectAccessReview.
pub fn access_review(
    shared: &Shared,
    req: &ApiRequest,
    self_review: bool,
) -> Result<Response<Body>, ApiError> {
    let kind = req.target.kind;
    let mut body = req.json_body()?;
    crate::ops::check_type_meta(kind, &mut body)?;
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let attrs = attributes(&spec).map_err(|e| invalid(kind, e))?;
    let user = if self_review {
        req.user.clone()
    } else {
        let groups: Vec<String> = spec["groups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let username = text(&spec, "user");
        if username.is_empty() && groups.is_empty() {
            return Err(invalid(
                kind,
                FieldError::invalid(
                    "spec.user",
                    "",
                    "at least one of user or group must be specified",
                ),
            ));
        }
        UserInfo {
            username,
            uid: text(&spec, "uid"),
            groups,
        }
    };
    // Without RBAC the emulator allows every authenticated request, and says so here too.
    let decision = if shared.rbac {
        rbac::authorize(&user, &attrs, &shared.store)
    } else {
        Decision::Allow
    };
    let metadata = review_metadata(kind, &body, &req.manager);
    // A denial carries no reason: RBAC explains only what it allows, and the privileged
    // group (system:masters) is allowed before RBAC is asked.
    body["status"] = json!({"allowed": decision == Decision::Allow});
    if decision == Decision::Allow
        && shared.rbac
        && !user.groups.iter().any(|g| g == crate::auth::MASTERS_GROUP)
        && let Some(reason) = rbac::resolver::allowed_by(&user, &attrs, &shared.store)
    {
        body["status"]["reason"] = json!(reason);
    }
    body["metadata"] = metadata;
    Ok(json_response(201, &body))
}

/// The metadata kube-apiserver answers a review with: no creationTimestamp (never stored), and
/// the managedFields its field manager computed for the create, as for any other write.
pub fn review_metadata(kind: &Kind, request: &Value, manager: &str) -> Value {
    let mut recorded =
        json!({"metadata": {}, "spec": request.get("spec").cloned().unwrap_or(json!({}))});
    crate::patch::fields::record_update(None, &mut recorded, manager, &kind.api_version(), true);
    recorded["metadata"].take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_kind_of_attributes() {
        let r = attributes(&json!({"resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": "a"}})).unwrap();
        assert!(r.resource_request && r.namespace == "a" && r.verb == "get");
        let n = attributes(&json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}))
            .unwrap();
        assert!(!n.resource_request && n.path == "/healthz");
        assert!(attributes(&json!({})).is_err());
        assert!(
            attributes(&json!({"resourceAttributes": {}, "nonResourceAttributes": {}})).is_err()
        );
    }
}
