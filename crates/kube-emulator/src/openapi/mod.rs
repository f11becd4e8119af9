//! OpenAPI, as kube-apiserver serves it: `/openapi/v2` (JSON, or protobuf for kubectl's
//! client-side validation) and `/openapi/v3` (an index of per-group-version documents, which
//! `kubectl explain` reads and which tell `kubectl apply` the server validates fields itself).
//!
//! The documents are a real kube-apiserver's own, cut to the served kinds and what their
//! schemas reference ([`snapshot`]), committed under `openapi/` and compiled in. `tests/openapi.rs`
//! regenerates them and checks they still match what a real apiserver serves.

mod protobuf_filter;
pub mod snapshot;

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, Response, header};
use sha2::{Digest, Sha512};

use crate::handlers::{self, Body};
use crate::status::ApiError;

const V2_JSON: &[u8] = include_bytes!("../../openapi/v2.json");
const V2_PROTOBUF: &[u8] = include_bytes!("../../openapi/v2.pb");

/// `/openapi/v3/<name>` documents, by name (as in the index: `api/v1`, `version`...).
const V3: &[(&str, &[u8])] = &[
    ("api", include_bytes!("../../openapi/v3/api.json")),
    ("api/v1", include_bytes!("../../openapi/v3/api/v1.json")),
    ("apis", include_bytes!("../../openapi/v3/apis.json")),
    (
        "apis/apiextensions.k8s.io",
        include_bytes!("../../openapi/v3/apis/apiextensions.k8s.io.json"),
    ),
    (
        "apis/apiextensions.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis/apiextensions.k8s.io/v1.json"),
    ),
    (
        "apis/authentication.k8s.io",
        include_bytes!("../../openapi/v3/apis/authentication.k8s.io.json"),
    ),
    (
        "apis/authentication.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis/authentication.k8s.io/v1.json"),
    ),
    (
        "apis/authorization.k8s.io",
        include_bytes!("../../openapi/v3/apis/authorization.k8s.io.json"),
    ),
    (
        "apis/authorization.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis/authorization.k8s.io/v1.json"),
    ),
    (
        "apis/coordination.k8s.io",
        include_bytes!("../../openapi/v3/apis/coordination.k8s.io.json"),
    ),
    (
        "apis/coordination.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis/coordination.k8s.io/v1.json"),
    ),
    (
        "apis/events.k8s.io",
        include_bytes!("../../openapi/v3/apis/events.k8s.io.json"),
    ),
    (
        "apis/events.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis/events.k8s.io/v1.json"),
    ),
    (
        "apis/rbac.authorization.k8s.io",
        include_bytes!("../../openapi/v3/apis/rbac.authorization.k8s.io.json"),
    ),
    (
        "apis/rbac.authorization.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis/rbac.authorization.k8s.io/v1.json"),
    ),
    ("version", include_bytes!("../../openapi/v3/version.json")),
];

/// The names of the compiled-in v3 documents (for the drift test).
pub fn v3_document_names() -> impl Iterator<Item = &'static str> {
    V3.iter().map(|(name, _)| *name)
}

const PROTOBUF_V2: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// How clients ask for it (`@` before the version; the response names it with `.`).
const PROTOBUF_V2_ACCEPT: &[&str] = &[
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    PROTOBUF_V2,
];

/// SHA-512 in upper-case hex, the apiserver's ETag and `?hash=` of a document.
fn hash(bytes: &[u8]) -> String {
    Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn v3_hashes() -> &'static [String] {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES.get_or_init(|| V3.iter().map(|(_, doc)| hash(doc)).collect())
}

fn v2_etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| format!("\"{}\"", hash(V2_JSON)))
}

/// The media types an Accept header lists, in order, without parameters (`q=` included: the
/// apiserver's negotiation here takes the first it can serve).
fn accepted(headers: &HeaderMap) -> Vec<String> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let types: Vec<String> = accept
        .split(',')
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect();
    if types.is_empty() {
        vec!["*/*".into()]
    } else {
        types
    }
}

fn is_json(media: &str) -> bool {
    matches!(media, "application/json" | "application/*" | "*/*")
}

fn not_acceptable() -> Response<Body> {
    Response::builder()
        .status(406)
        .header(header::CACHE_CONTROL, "no-cache, private")
        .header(header::VARY, "Accept")
        .body(handlers::full(Bytes::new()))
        .expect("static response parts are valid")
}

fn document(
    content_type: &str,
    bytes: &'static [u8],
    etag: &str,
    immutable: bool,
) -> Response<Body> {
    let cache = if immutable {
        "public, immutable"
    } else {
        "no-cache, private"
    };
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache)
        .header(header::ETAG, etag)
        .header(header::VARY, "Accept")
        .body(handlers::full(Bytes::from_static(bytes)))
        .expect("static response parts are valid")
}

/// `GET /openapi/v2`: protobuf when asked for first, else JSON, else 406.
pub fn v2(headers: &HeaderMap) -> Response<Body> {
    for media in accepted(headers) {
        if PROTOBUF_V2_ACCEPT.contains(&media.as_str()) {
            return document(PROTOBUF_V2, V2_PROTOBUF, v2_etag(), false);
        }
        if is_json(&media) {
            return document("application/json", V2_JSON, v2_etag(), false);
        }
    }
    not_acceptable()
}

/// `GET /openapi/v3`: where each document is, with its hash (clients cache by it).
pub fn v3_index() -> Response<Body> {
    let mut paths = serde_json::Map::new();
    for ((name, _), hash) in V3.iter().zip(v3_hashes()) {
        paths.insert(
            name.to_string(),
            serde_json::json!({"serverRelativeURL": format!("/openapi/v3/{name}?hash={hash}")}),
        );
    }
    let body = serde_json::json!({ "paths": paths }).to_string();
    // The apiserver writes this one without a Content-Type, so Go's sniffing names it.
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(handlers::full(body))
        .expect("static response parts are valid")
}

/// `GET /openapi/v3/<name>[?hash=...]`: the document (immutable when asked by its hash), a
/// redirect to the current hash when asked by another one, 404 for documents not served.
/// JSON only: a client asking for protobuf alone gets 406 (kubectl asks for JSON).
pub fn v3_document(name: &str, query: Option<&str>, headers: &HeaderMap) -> Response<Body> {
    let Some(i) = V3.iter().position(|(n, _)| *n == name) else {
        return handlers::error_response(&ApiError::path_not_found());
    };
    let (bytes, hash) = (V3[i].1, &v3_hashes()[i]);
    if !accepted(headers).iter().any(|m| is_json(m)) {
        return not_acceptable();
    }
    let asked = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "hash")
        .map(|(_, v)| v.into_owned());
    let etag = format!("\"{hash}\"");
    match asked {
        Some(h) if h != *hash => Response::builder()
            .status(301)
            .header(header::LOCATION, format!("/openapi/v3/{name}?hash={hash}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-cache, private")
            .header(header::ETAG, etag)
            .body(handlers::full(Bytes::new()))
            .expect("static response parts are valid"),
        Some(_) => document("application/json", bytes, &etag, true),
        None => document("application/json", bytes, &etag, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::KINDS;
    use serde_json::Value;

    fn doc(name: &str) -> Value {
        let (_, bytes) = V3.iter().find(|(n, _)| *n == name).unwrap();
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn every_compiled_in_path_is_served() {
        let v2: Value = serde_json::from_slice(V2_JSON).unwrap();
        for path in v2["paths"].as_object().unwrap().keys() {
            assert!(snapshot::serves(path), "v2 has {path}, which is not served");
        }
        for (name, _) in V3 {
            for path in doc(name)["paths"].as_object().unwrap().keys() {
                assert!(
                    snapshot::serves(path),
                    "{name} has {path}, which is not served"
                );
            }
        }
    }

    #[test]
    fn protobuf_and_json_v2_name_the_same_entries() {
        let v2: Value = serde_json::from_slice(V2_JSON).unwrap();
        assert_eq!(
            protobuf_filter::names(V2_PROTOBUF).unwrap(),
            snapshot::select_v2(&v2)
        );
    }

    /// kubectl sends `fieldValidation` (server-side validation, which `apply` needs) only when
    /// the kind's PATCH operation declares it; and `kubectl explain` needs every kind's schema.
    #[test]
    fn every_served_kind_has_its_schema_and_operations() {
        for kind in KINDS {
            let name = if kind.group.is_empty() {
                format!("api/{}", kind.version)
            } else {
                format!("apis/{}/{}", kind.group, kind.version)
            };
            let d = doc(&name);
            let gvk = serde_json::json!({"group": kind.group, "version": kind.version, "kind": kind.kind});
            let schemas = d["components"]["schemas"].as_object().unwrap();
            assert!(
                schemas
                    .values()
                    .any(|s| s["x-kubernetes-group-version-kind"]
                        .as_array()
                        .is_some_and(|l| l.contains(&gvk))),
                "{name}: no schema for {}",
                kind.kind
            );
            let patch_declares_validation = d["paths"].as_object().unwrap().values().any(|p| {
                p["patch"]["x-kubernetes-group-version-kind"] == gvk
                    && p["patch"]["parameters"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|q| q["name"] == "fieldValidation"))
            });
            // The read-only CustomResourceDefinitions keep the real document's operations.
            assert!(
                patch_declares_validation || !kind.supports("patch"),
                "{name} {}: PATCH and fieldValidation",
                kind.kind
            );
        }
    }

    #[test]
    fn negotiation() {
        let mut h = HeaderMap::new();
        assert_eq!(v2(&h).headers()[header::CONTENT_TYPE], "application/json");
        h.insert(
            header::ACCEPT,
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
                .parse()
                .unwrap(),
        );
        assert_eq!(v2(&h).headers()[header::CONTENT_TYPE], PROTOBUF_V2);
        h.insert(header::ACCEPT, "application/yaml".parse().unwrap());
        assert_eq!(v2(&h).status(), 406);
        let h = HeaderMap::new();
        assert_eq!(v3_document("api/v1", Some("hash=0"), &h).status(), 301);
        let hash = &v3_hashes()[1];
        let ok = v3_document("api/v1", Some(&format!("hash={hash}")), &h);
        assert_eq!(ok.headers()[header::CACHE_CONTROL], "public, immutable");
        assert_eq!(v3_document("apis/apps/v1", None, &h).status(), 404);
    }
}
