//! OpenAPI v3 documents describing the served operations: their paths, verbs, group-version-kind
//! and query parameters. kubectl reads them to decide that the server validates fields itself
//! (`fieldValidation`), which `kubectl apply` needs before it sends anything. Object schemas are
//! not described (no `kubectl explain`); kubectl then builds strategic merge patches from its
//! compiled-in types, which know every kind served here.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::discovery::KUBERNETES_MINOR;
use crate::kinds::{self, KINDS, Kind};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn query(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": kind}, "uniqueItems": true})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}, "uniqueItems": true})
}

fn write_params() -> Vec<Value> {
    vec![
        query("dryRun", "string"),
        query("fieldManager", "string"),
        query("fieldValidation", "string"),
    ]
}

fn list_params() -> Vec<Value> {
    [
        ("allowWatchBookmarks", "boolean"),
        ("continue", "string"),
        ("fieldSelector", "string"),
        ("labelSelector", "string"),
        ("limit", "integer"),
        ("resourceVersion", "string"),
        ("resourceVersionMatch", "string"),
        ("sendInitialEvents", "boolean"),
        ("timeoutSeconds", "integer"),
        ("watch", "boolean"),
    ]
    .into_iter()
    .map(|(n, t)| query(n, t))
    .collect()
}

fn operation(
    kind: &Kind,
    gvk: (&str, &str, &str),
    action: &str,
    mut params: Vec<Value>,
    body: Option<&[&str]>,
) -> Value {
    params.push(query("pretty", "string"));
    let mut op = json!({
        "operationId": format!("{action}{}", kind.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": gvk.0, "version": gvk.1, "kind": gvk.2},
        "parameters": params,
        "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
    });
    if let Some(types) = body {
        let content: Map<String, Value> = types
            .iter()
            .map(|t| (t.to_string(), json!({"schema": {"type": "object"}})))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

const JSON_BODY: &[&str] = &["application/json", "application/yaml"];
const PATCH_BODY: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

fn kind_paths(kind: &Kind, paths: &mut Map<String, Value>) {
    let gvk = (kind.group, kind.version, kind.kind);
    let base = format!("/{}", gv_path(kind.group, kind.version));
    let (collection, ns_params) = if kind.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", kind.plural),
            vec![path_param("namespace")],
        )
    } else {
        (format!("{base}/{}", kind.plural), Vec::new())
    };
    let with = |extra: Vec<Value>| ns_params.iter().cloned().chain(extra).collect::<Vec<_>>();
    let mut coll = Map::new();
    if kind.supports("list") {
        coll.insert(
            "get".into(),
            operation(kind, gvk, "list", with(list_params()), None),
        );
    }
    if kind.supports("create") {
        coll.insert(
            "post".into(),
            operation(kind, gvk, "post", with(write_params()), Some(JSON_BODY)),
        );
    }
    if kind.supports("deletecollection") {
        coll.insert(
            "delete".into(),
            operation(kind, gvk, "deletecollection", with(list_params()), None),
        );
    }
    paths.insert(collection.clone(), Value::Object(coll));
    if kind.namespaced && kind.supports("list") {
        let all = json!({"get": operation(kind, gvk, "list", list_params(), None)});
        paths.insert(format!("{base}/{}", kind.plural), all);
    }
    if !kind.supports("get") {
        return;
    }
    let named =
        |extra: Vec<Value>| with(std::iter::once(path_param("name")).chain(extra).collect());
    let mut item = Map::new();
    item.insert(
        "get".into(),
        operation(kind, gvk, "get", named(Vec::new()), None),
    );
    if kind.supports("update") {
        item.insert(
            "put".into(),
            operation(kind, gvk, "put", named(write_params()), Some(JSON_BODY)),
        );
    }
    if kind.supports("patch") {
        let mut params = write_params();
        params.push(query("force", "boolean"));
        item.insert(
            "patch".into(),
            operation(kind, gvk, "patch", named(params), Some(PATCH_BODY)),
        );
    }
    if kind.supports("delete") {
        item.insert(
            "delete".into(),
            operation(kind, gvk, "delete", named(write_params()), None),
        );
    }
    paths.insert(format!("{collection}/{{name}}"), Value::Object(item));
    for sub in kind.subresources {
        let op = operation(
            kind,
            (sub.group, sub.version, sub.kind),
            "post",
            named(write_params()),
            Some(JSON_BODY),
        );
        paths.insert(
            format!("{collection}/{{name}}/{}", sub.name),
            json!({"post": op}),
        );
    }
}

/// The document for one group-version (`/openapi/v3/api/v1`, `/openapi/v3/apis/{g}/{v}`).
pub fn group_version(group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    for kind in KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        kind_paths(kind, &mut paths);
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{KUBERNETES_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

fn hash(doc: &Value) -> String {
    let digest = Sha256::digest(doc.to_string().as_bytes());
    digest.iter().take(32).map(|b| format!("{b:02X}")).collect()
}

/// `/openapi/v3`: where each group-version's document is.
pub fn root() -> Value {
    let mut gvs = vec![(String::new(), "v1".to_string())];
    gvs.extend(
        kinds::groups()
            .into_iter()
            .map(|(g, v)| (g.to_string(), v.to_string())),
    );
    let mut paths = Map::new();
    for (g, v) in gvs {
        if let Some(doc) = group_version(&g, &v) {
            let p = gv_path(&g, &v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_lists_every_group_version() {
        let r = root();
        let paths = r["paths"].as_object().unwrap();
        assert!(paths.contains_key("api/v1"));
        assert!(paths.contains_key("apis/rbac.authorization.k8s.io/v1"));
        assert!(
            paths["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
    }

    #[test]
    fn patch_operations_declare_field_validation() {
        let doc = group_version("", "v1").unwrap();
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ConfigMap"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let token =
            &doc["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"];
        assert_eq!(
            token["x-kubernetes-group-version-kind"]["kind"],
            "TokenRequest"
        );
        assert!(group_version("apps", "v1").is_none());
    }
}
