//! Kubernetes `Status` error bodies: every failure the emulator answers is one of these, with the
//! code, reason, message and details a real apiserver would send.

use serde_json::{Value, json};

use crate::kinds::Kind;
use crate::validation::FieldError;

/// A failed API request, rendered as a `Status` object.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// The reason Kubernetes puts in a Status for an HTTP code (used for injected faults too).
pub fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

fn details(kind: &Kind, name: &str) -> Value {
    // Kubernetes leaves out a name it does not have (a list, a create without a name).
    let mut d = if name.is_empty() {
        json!({"kind": kind.plural})
    } else {
        json!({"name": name, "kind": kind.plural})
    };
    if !kind.group.is_empty() {
        d["group"] = json!(kind.group);
    }
    d
}

impl ApiError {
    /// A Status with `code` and its usual reason.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason_for_code(code),
            message: message.into(),
            details: None,
        }
    }

    /// 404: `configmaps "x" not found`.
    pub fn not_found(kind: &Kind, name: &str) -> Self {
        ApiError {
            details: Some(details(kind, name)),
            ..Self::new(
                404,
                format!("{} \"{name}\" not found", kind.qualified_resource()),
            )
        }
    }

    /// 404 for a request path that names nothing the emulator serves.
    pub fn path_not_found() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(404, "the server could not find the requested resource")
        }
    }

    /// 409 AlreadyExists.
    pub fn already_exists(kind: &Kind, name: &str) -> Self {
        ApiError {
            reason: "AlreadyExists",
            details: Some(details(kind, name)),
            ..Self::new(
                409,
                format!("{} \"{name}\" already exists", kind.qualified_resource()),
            )
        }
    }

    /// 409 Conflict on a stale resourceVersion (optimistic concurrency).
    pub fn conflict(kind: &Kind, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(details(kind, name)),
            ..Self::new(
                409,
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {why}",
                    kind.qualified_resource()
                ),
            )
        }
    }

    /// 409 for a uid precondition that does not hold (DELETE options, or an update's uid).
    /// Kubernetes names the kind, not the resource, here.
    pub fn precondition_uid(kind: &Kind, name: &str, want: &str, actual: &str) -> Self {
        ApiError {
            details: Some(json!({"name": name, "kind": kind.kind})),
            ..Self::new(
                409,
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the UID in the precondition \
                     ({want}) does not match the UID in record ({actual}). The object might have \
                     been deleted and then recreated",
                    kind.kind
                ),
            )
        }
    }

    /// The standard stale-resourceVersion conflict.
    pub fn stale(kind: &Kind, name: &str) -> Self {
        Self::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid, listing field causes: `ConfigMap "x" is invalid: metadata.name: Invalid value...`.
    pub fn invalid(kind: &Kind, name: &str, errors: &[FieldError]) -> Self {
        let summary = if errors.len() == 1 {
            errors[0].summary()
        } else {
            let all: Vec<String> = errors.iter().map(FieldError::summary).collect();
            format!("[{}]", all.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
            .collect();
        let mut d = if name.is_empty() {
            json!({"kind": kind.kind, "causes": causes})
        } else {
            json!({"name": name, "kind": kind.kind, "causes": causes})
        };
        if !kind.group.is_empty() {
            d["group"] = json!(kind.group);
        }
        // The kind is qualified by its group outside core: `Role.rbac.authorization.k8s.io "x"`.
        let qualified = if kind.group.is_empty() {
            kind.kind.to_string()
        } else {
            format!("{}.{}", kind.kind, kind.group)
        };
        ApiError {
            details: Some(d),
            ..Self::new(422, format!("{qualified} \"{name}\" is invalid: {summary}"))
        }
    }

    /// 422 for invalid request options (`dryRun`, `fieldValidation`, `force`...), which
    /// Kubernetes validates as a `CreateOptions`, `PatchOptions`, `ListOptions`... object.
    pub fn invalid_options(options_kind: &str, error: &FieldError) -> Self {
        ApiError {
            details: Some(
                json!({"group": "meta.k8s.io", "kind": options_kind, "causes": [
                    {"reason": error.reason, "message": error.message, "field": error.field}
                ]}),
            ),
            ..Self::new(
                422,
                format!(
                    "{options_kind}.meta.k8s.io \"\" is invalid: {}",
                    error.summary()
                ),
            )
        }
    }

    /// 400 for a body of another kind than the endpoint's: the apiserver decodes it, then finds
    /// no conversion (`Secret in version "v1" cannot be handled as a ConfigMap: ...`).
    pub fn unconvertible(body_kind: &str, body_api_version: &str, kind: &str, group: &str) -> Self {
        let version = body_api_version.rsplit('/').next().unwrap_or("");
        // The internal package of a group is named after its first label ("core" for "").
        let internal = if group.is_empty() {
            "core"
        } else {
            group.split('.').next().unwrap_or(group)
        };
        Self::bad_request(format!(
            "{body_kind} in version {version:?} cannot be handled as a {kind}: converting \
             ({version}.{body_kind}) to ({internal}.{kind}): unknown conversion"
        ))
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 405 for a verb the resource does not serve (with empty details, as Kubernetes sends).
    pub fn method_not_allowed() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                405,
                "the server does not allow this method on the requested resource",
            )
        }
    }

    /// 401 for a missing or unacceptable bearer token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized")
    }

    /// 403 with the authorizer's message and the target in details.
    pub fn forbidden(message: String, kind: Option<&Kind>, name: &str) -> Self {
        ApiError {
            details: kind.map(|k| details(k, name)),
            ..Self::new(403, message)
        }
    }

    /// 403 for creating content in a namespace being deleted.
    pub fn namespace_terminating(kind: &Kind, name: &str, namespace: &str) -> Self {
        let message = format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
            kind.qualified_resource()
        );
        let mut d = details(kind, name);
        d["causes"] = json!([{
            "reason": "NamespaceTerminating",
            "message": format!("namespace {namespace} is being terminated"),
            "field": "metadata.namespace"
        }]);
        ApiError {
            details: Some(d),
            ..Self::new(403, message)
        }
    }

    /// 410 Expired for a resourceVersion older than the retained window.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 415 for a patch whose Content-Type is not a patch type (worded as kube-apiserver's
    /// patch handler words it).
    pub fn unsupported_patch_type() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(415, "415: Unsupported Media Type")
        }
    }

    /// 415 for a body of a create or update in a media type Kubernetes does not decode.
    pub fn unsupported_body_type() -> Self {
        Self::new(
            415,
            "the body of the request was in an unknown format - accepted media types include: \
             application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    }

    /// 500 for an internal failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The `Status` object, as serialized on the wire.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

/// A `Status` of success, as DELETE answers for immediately removed objects.
pub fn success(kind: &Kind, name: &str, uid: &str) -> Value {
    let mut d = details(kind, name);
    d["uid"] = json!(uid);
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds;

    #[test]
    fn not_found_is_shaped_like_kubernetes() {
        let cm = kinds::find("", "v1", "configmaps").unwrap();
        let s = ApiError::not_found(cm, "x").to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "configmaps \"x\" not found");
        assert_eq!(s["details"], json!({"name": "x", "kind": "configmaps"}));
        let cr = kinds::find("rbac.authorization.k8s.io", "v1", "clusterroles").unwrap();
        let s = ApiError::not_found(cr, "y").to_status();
        assert_eq!(
            s["message"],
            "clusterroles.rbac.authorization.k8s.io \"y\" not found"
        );
        assert_eq!(s["details"]["group"], "rbac.authorization.k8s.io");
    }

    #[test]
    fn invalid_lists_causes() {
        let cm = kinds::find("", "v1", "configmaps").unwrap();
        let e = ApiError::invalid(cm, "B", &[FieldError::required("data", "")]);
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(
            s["message"],
            "ConfigMap \"B\" is invalid: data: Required value"
        );
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
    }

    #[test]
    fn codes_map_to_reasons() {
        assert_eq!(ApiError::new(410, "x").reason, "Expired");
        assert_eq!(ApiError::new(503, "x").reason, "ServiceUnavailable");
        assert_eq!(
            ApiError::stale(kinds::find("", "v1", "secrets").unwrap(), "s").reason,
            "Conflict"
        );
    }
}
