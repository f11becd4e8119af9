//! Resource request handlers: reads (get, list), watches, writes and the token endpoints, with
//! the response representations Kubernetes offers (JSON object, Table, PartialObjectMetadata).

mod access;
mod read;
mod tokens;
mod watch;
mod write;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::context::Shared;
use crate::request::{Query, Target};
use crate::status::ApiError;
use crate::validation::FieldError;

/// Response body: a full buffer or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A JSON response.
pub fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(bytes))
        .expect("static response parts are valid")
}

/// The Status response for an error.
pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// The representation the client asked for in `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Table,
    Metadata,
}

impl Output {
    /// Reads the first representation of `Accept` the emulator can produce (JSON otherwise).
    pub fn from_accept(accept: &str) -> Self {
        for part in accept.split(',') {
            let params: Vec<&str> = part.split(';').map(str::trim).collect();
            let as_param = params.iter().find_map(|p| p.strip_prefix("as="));
            match as_param {
                Some("Table") => return Output::Table,
                Some("PartialObjectMetadata" | "PartialObjectMetadataList") => {
                    return Output::Metadata;
                }
                Some(_) => continue,
                None => return Output::Json,
            }
        }
        Output::Json
    }
}

/// A parsed, authenticated resource request.
pub struct ApiRequest {
    pub target: Target,
    pub query: Query,
    pub verb: &'static str,
    pub user: UserInfo,
    pub output: Output,
    pub content_type: String,
    /// The Accept header, as sent.
    pub accept: String,
    /// fieldManager, or what Kubernetes derives from the User-Agent.
    pub manager: String,
    pub body: Bytes,
}

impl ApiRequest {
    fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or("")
    }

    /// The request body as JSON (or YAML when sent as YAML).
    fn json_body(&self) -> Result<Value, ApiError> {
        parse_body(&self.body, &self.content_type)
    }
}

/// Decodes a request body; a malformed one is a 400 as in Kubernetes.
pub fn parse_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return crate::protobuf::decode(body).map_err(|e| {
            ApiError::new(
                415,
                format!("the body of the request could not be decoded as protobuf: {e}"),
            )
        });
    }
    let yaml = content_type.contains("yaml");
    let parsed = if yaml {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("body is not UTF-8: {e}")))?;
        serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })
}

/// The options object Kubernetes decodes a verb's query parameters into.
fn options_kind(verb: &str) -> &'static str {
    match verb {
        "create" => "CreateOptions",
        "update" => "UpdateOptions",
        "patch" => "PatchOptions",
        "delete" | "deletecollection" => "DeleteOptions",
        _ => "ListOptions",
    }
}

/// What kube-apiserver checks of a request before its handler runs: the options in the query
/// (422 as an invalid `...Options` object) and the media type of a create's or update's body.
fn check_request(req: &ApiRequest) -> Result<(), ApiError> {
    let q = &req.query;
    let invalid = |e: FieldError| Err(ApiError::invalid_options(options_kind(req.verb), &e));
    let writes = matches!(req.verb, "create" | "update" | "patch");
    if let Some(v) = &q.dry_run_invalid
        && (writes || req.verb.starts_with("delete"))
    {
        return invalid(FieldError {
            reason: "FieldValueNotSupported",
            field: "dryRun".into(),
            message: format!(
                "Unsupported value: {}: supported values: \"All\"",
                json!([v])
            ),
        });
    }
    const VALIDATIONS: &[&str] = &["", "Ignore", "Strict", "Warn"];
    if let Some(v) = &q.field_validation
        && writes
        && !VALIDATIONS.contains(&v.as_str())
    {
        return invalid(FieldError::not_supported("fieldValidation", v, VALIDATIONS));
    }
    const MATCHES: &[&str] = &["Exact", "NotOlderThan", ""];
    if let Some(v) = &q.resource_version_match
        && matches!(req.verb, "list" | "watch")
        && !MATCHES.contains(&v.as_str())
    {
        return invalid(FieldError::not_supported(
            "resourceVersionMatch",
            v,
            MATCHES,
        ));
    }
    let media = req.content_type.split(';').next().unwrap_or("").trim();
    const BODY_TYPES: &[&str] = &[
        "",
        "*/*",
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    ];
    if matches!(req.verb, "create" | "update")
        && !req.body.is_empty()
        && !BODY_TYPES.contains(&media)
    {
        return Err(ApiError::unsupported_body_type());
    }
    Ok(())
}

/// Whether an Accept header names a media type the apiserver serves (JSON, YAML, protobuf,
/// wildcards). The emulator answers JSON to all of them.
fn acceptable(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|part| {
            let media = part.split(';').next().unwrap_or("").trim();
            matches!(
                media,
                "" | "*/*"
                    | "application/*"
                    | "application/json"
                    | "application/yaml"
                    | "application/vnd.kubernetes.protobuf"
                    | "application/json;stream=watch"
                    | "application/vnd.kubernetes.protobuf;stream=watch"
            )
        })
}

/// Serves a resource request.
pub async fn resource(shared: &Arc<Shared>, req: ApiRequest) -> Response<Body> {
    let kind = req.target.kind;
    let named = req.target.name.is_some();
    // A create-only kind (the reviews) has no object paths at all.
    let addressable = ["get", "update", "patch", "delete"]
        .iter()
        .any(|v| kind.supports(v));
    if let Err(e) = check_request(&req) {
        return error_response(&e);
    }
    if !acceptable(&req.accept) {
        return error_response(&ApiError {
            details: Some(json!({})),
            ..ApiError::new(
                406,
                "406: Not Acceptable\n\nAvailable representations: application/json, \
                 application/yaml, application/vnd.kubernetes.protobuf",
            )
        });
    }
    let result = match (req.verb, req.target.subresource.as_deref()) {
        _ if named && !addressable && req.target.subresource.is_none() => {
            Err(ApiError::path_not_found())
        }
        // Writes address either the collection (create) or one object (update, patch).
        ("create", None) if named => Err(ApiError::method_not_allowed()),
        ("update" | "patch", _) if !named => Err(ApiError::method_not_allowed()),
        ("create", Some("token")) if kind.plural == "serviceaccounts" => {
            tokens::token_request(shared, &req)
        }
        (_, Some(sub)) if kind.subresource(sub).is_some() => Err(ApiError::method_not_allowed()),
        (_, Some(_)) => Err(ApiError::path_not_found()),
        ("create", None) if kind.plural == "tokenreviews" => tokens::token_review(shared, &req),
        ("create", None) if kind.plural == "selfsubjectaccessreviews" => {
            access::access_review(shared, &req, true)
        }
        ("create", None) if kind.plural == "subjectaccessreviews" => {
            access::access_review(shared, &req, false)
        }
        ("create", None) if kind.plural == "selfsubjectreviews" => {
            tokens::self_subject_review(&req)
        }
        (verb, None) if !kind.supports(verb) => Err(ApiError::method_not_allowed()),
        ("get", None) => read::get(shared, &req),
        ("list", None) => read::list(shared, &req),
        ("watch", None) => return watch::watch(shared, &req),
        ("create", None) => write::create(shared, &req),
        ("update", None) => write::update(shared, &req),
        ("patch", None) => write::patch(shared, &req),
        ("delete", None) => write::delete(shared, &req),
        ("deletecollection", None) => write::delete_collection(shared, &req),
        _ => Err(ApiError::method_not_allowed()),
    };
    match result {
        Ok(response) => response,
        Err(e) => error_response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_select_representations() {
        assert_eq!(Output::from_accept("application/json"), Output::Json);
        assert_eq!(
            Output::from_accept(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            ),
            Output::Table
        );
        assert_eq!(
            Output::from_accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            Output::Metadata
        );
        assert_eq!(
            Output::from_accept(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            Output::Json
        );
    }

    #[test]
    fn bodies_decode_as_json_or_yaml() {
        assert_eq!(
            parse_body(b"{\"a\": 1}", "application/json").unwrap()["a"],
            1
        );
        assert_eq!(
            parse_body(b"a: 1\n", "application/apply-patch+yaml").unwrap()["a"],
            1
        );
        let e = parse_body(b"{", "application/json").unwrap_err();
        assert_eq!(e.code, 400);
    }
}
