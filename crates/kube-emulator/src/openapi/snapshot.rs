//! Cutting a real kube-apiserver's OpenAPI documents down to what the emulator serves: the
//! paths it routes and every schema and shared parameter those paths reference, directly or
//! through other schemas. The emulator serves the result (committed under `openapi/`), and the
//! drift test cuts a live apiserver's documents the same way to check the committed files
//! still match (`tests/openapi.rs`, which also regenerates them).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::protobuf_filter;
use crate::discovery;
use crate::request::{self, Route};

/// Whether the emulator serves a path of an OpenAPI document (a template such as
/// `/api/v1/namespaces/{namespace}/configmaps/{name}`): a resource or subresource of a served
/// kind, or a discovery document of a served group.
pub fn serves(template: &str) -> bool {
    let path = template
        .replace("{namespace}", "ns")
        .replace("{name}", "name")
        .replace("{path}", "path");
    match request::route(&path) {
        Route::Resource(t) => match &t.subresource {
            None => true,
            Some(sub) => t.kind.subresources.iter().any(|s| s.name == sub),
        },
        Route::Version | Route::CoreVersions | Route::GroupList => true,
        Route::Group(g) => discovery::group(&g).is_some(),
        Route::ResourceList { group, version } => {
            discovery::resource_list(&group, &version).is_some()
        }
        _ => false,
    }
}

/// Whether a document of `/openapi/v3` (`api/v1`, `apis/rbac.authorization.k8s.io`,
/// `version`...) is about something the emulator serves.
pub fn serves_v3_document(name: &str) -> bool {
    serves(&format!("/{name}"))
}

/// The `/openapi/v3` documents compiled into the emulator, by name.
pub fn committed_v3_documents() -> Vec<&'static str> {
    super::v3_document_names().collect()
}

/// Every `$ref` under `v`, with `prefix` stripped (`#/definitions/` gives definition names).
fn refs(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(prefix) {
                            out.insert(name.to_string());
                        }
                    }
                    _ => refs(child, prefix, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, prefix, out)),
        _ => {}
    }
}

/// The schemas `roots` reference, and those they reference in turn.
fn closure(
    schemas: &Map<String, Value>,
    roots: BTreeSet<String>,
    prefix: &str,
) -> BTreeSet<String> {
    let mut keep = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if !keep.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = schemas.get(&name) {
            let mut found = BTreeSet::new();
            refs(schema, prefix, &mut found);
            todo.extend(found.into_iter().filter(|n| !keep.contains(n)));
        }
    }
    keep
}

fn retain_named(map: &mut Map<String, Value>, keep: &BTreeSet<String>) {
    map.retain(|k, _| keep.contains(k));
}

/// What an OpenAPI v2 document keeps: served paths, and the definitions and shared
/// parameters they reach.
#[derive(Debug, Default, PartialEq)]
pub struct V2Selection {
    pub paths: BTreeSet<String>,
    pub definitions: BTreeSet<String>,
    pub parameters: BTreeSet<String>,
}

/// What to keep of a `/openapi/v2` document.
pub fn select_v2(doc: &Value) -> V2Selection {
    let empty = Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    let definitions = doc["definitions"].as_object().unwrap_or(&empty);
    let parameters = doc["parameters"].as_object().unwrap_or(&empty);
    let kept: BTreeSet<String> = paths.keys().filter(|p| serves(p)).cloned().collect();
    let (mut defs, mut params) = (BTreeSet::new(), BTreeSet::new());
    for p in &kept {
        refs(&paths[p], "#/definitions/", &mut defs);
        refs(&paths[p], "#/parameters/", &mut params);
    }
    for p in &params {
        if let Some(param) = parameters.get(p) {
            refs(param, "#/definitions/", &mut defs);
        }
    }
    V2Selection {
        paths: kept,
        definitions: closure(definitions, defs, "#/definitions/"),
        parameters: params,
    }
}

/// The JSON `/openapi/v2` document cut to `selection`.
pub fn filter_v2(doc: &Value, selection: &V2Selection) -> Value {
    let mut out = doc.clone();
    if let Some(m) = out["paths"].as_object_mut() {
        retain_named(m, &selection.paths);
    }
    if let Some(m) = out["definitions"].as_object_mut() {
        retain_named(m, &selection.definitions);
    }
    if let Some(m) = out["parameters"].as_object_mut() {
        retain_named(m, &selection.parameters);
    }
    out
}

/// The protobuf `/openapi/v2` document (gnostic `openapi_v2.Document`) cut to `selection`,
/// leaving every kept entry's bytes as the apiserver encoded them.
pub fn filter_v2_protobuf(doc: &[u8], selection: &V2Selection) -> Result<Vec<u8>, String> {
    protobuf_filter::filter_document(doc, selection)
}

/// One `/openapi/v3/<name>` document cut to its served paths and the schemas they reach;
/// None when none of its paths is served.
pub fn filter_v3(doc: &Value) -> Option<Value> {
    let empty = Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    let kept: BTreeSet<String> = paths.keys().filter(|p| serves(p)).cloned().collect();
    if kept.is_empty() {
        return None;
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap_or(&empty);
    let mut roots = BTreeSet::new();
    for p in &kept {
        refs(&paths[p], "#/components/schemas/", &mut roots);
    }
    let keep = closure(schemas, roots, "#/components/schemas/");
    let mut out = doc.clone();
    if let Some(m) = out["paths"].as_object_mut() {
        retain_named(m, &kept);
    }
    if let Some(m) = out
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(Value::as_object_mut)
    {
        retain_named(m, &keep);
    }
    Some(out)
}

/// The committed snapshot's files (relative to `openapi/`) made from a real apiserver's
/// documents: `v2` (JSON), `v2_protobuf`, and each `/openapi/v3` document by name.
pub fn snapshot_files(
    v2: &Value,
    v2_protobuf: &[u8],
    v3: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    let selection = select_v2(v2);
    files.insert("v2.json".to_string(), pretty(&filter_v2(v2, &selection)));
    files.insert(
        "v2.pb".to_string(),
        filter_v2_protobuf(v2_protobuf, &selection)?,
    );
    for (name, doc) in v3 {
        if !serves_v3_document(name) {
            continue;
        }
        if let Some(cut) = filter_v3(doc) {
            files.insert(format!("v3/{name}.json"), pretty(&cut));
        }
    }
    Ok(files)
}

/// Pretty JSON with a final newline: reviewable diffs when a regeneration changes something.
fn pretty(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).expect("JSON values serialize");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn served_paths() {
        assert!(serves("/api/v1/namespaces/{namespace}/configmaps/{name}"));
        assert!(serves(
            "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
        ));
        assert!(serves("/api/v1/watch/namespaces/{namespace}/secrets"));
        assert!(serves("/apis/rbac.authorization.k8s.io/"));
        assert!(serves("/apis/authentication.k8s.io/v1/tokenreviews"));
        assert!(serves("/version/"));
        assert!(!serves("/api/v1/namespaces/{name}/status"));
        assert!(!serves("/api/v1/namespaces/{namespace}/pods"));
        assert!(!serves("/apis/apps/v1/"));
        assert!(!serves("/.well-known/openid-configuration/"));
        assert!(serves_v3_document("apis/coordination.k8s.io"));
        assert!(!serves_v3_document("apis/apps/v1"));
    }

    #[test]
    fn v2_keeps_what_served_paths_reach() {
        let doc = json!({
            "swagger": "2.0",
            "paths": {
                "/api/v1/namespaces/{namespace}/configmaps": {"parameters": [{"$ref": "#/parameters/ns"}],
                    "get": {"responses": {"200": {"schema": {"$ref": "#/definitions/List"}}}}},
                "/api/v1/namespaces/{namespace}/pods": {"get": {"responses": {"200": {"schema": {"$ref": "#/definitions/Pod"}}}}}
            },
            "definitions": {
                "List": {"properties": {"items": {"items": {"$ref": "#/definitions/CM"}}}},
                "CM": {"properties": {"metadata": {"$ref": "#/definitions/Meta"}}},
                "Meta": {}, "Pod": {}, "Unused": {}
            },
            "parameters": {"ns": {"name": "namespace"}, "other": {}}
        });
        let s = select_v2(&doc);
        assert_eq!(
            s.definitions.iter().map(String::as_str).collect::<Vec<_>>(),
            ["CM", "List", "Meta"]
        );
        assert_eq!(
            s.parameters.iter().map(String::as_str).collect::<Vec<_>>(),
            ["ns"]
        );
        let cut = filter_v2(&doc, &s);
        assert_eq!(cut["paths"].as_object().unwrap().len(), 1);
        assert!(cut["definitions"].get("Pod").is_none());
    }
}
