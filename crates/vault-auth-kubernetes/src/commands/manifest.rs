//! Finds the `vault-auth-roles` ConfigMaps in YAML manifests, with the line of each data key.
//!
//! Only what `validate` needs is read: `kind`, `metadata.name`/`namespace`, `data`, and the
//! `items` of a `kind: List` (what `kubectl get -o yaml` prints for several objects). Every other
//! field, and every other kind of object, is skipped without being interpreted, so a Deployment
//! in the same file cannot make the check fail.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::names::ROLES_CONFIGMAP;

/// One ConfigMap named `vault-auth-roles` found in a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct RolesConfigMap {
    /// `metadata.namespace`, when the manifest sets it.
    pub namespace: Option<String>,
    /// Line of its `kind: ConfigMap` (1-based).
    pub line: u64,
    /// `metadata.annotations` (string values only), e.g. the allow-empty opt-in.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Its `data` entries in file order.
    pub entries: Vec<DataEntry>,
}

/// One key of a ConfigMap's `data`.
#[derive(Clone, Debug, PartialEq)]
pub struct DataEntry {
    /// The key, i.e. the role name as written.
    pub key: String,
    /// Line of the key (1-based; 0 when unknown).
    pub line: u64,
    /// The value when it is a string (as Kubernetes requires), else what it is instead.
    pub value: Result<String, String>,
}

/// What a manifest holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    /// The `vault-auth-roles` ConfigMaps, in file order.
    pub configmaps: Vec<RolesConfigMap>,
    /// How many other objects were skipped.
    pub other_objects: usize,
}

/// Reads every document of `text` (YAML, `---`-separated). Fails only when the text is not
/// YAML (or a document is not a mapping): the message then gives the line.
pub fn read_manifest(text: &str) -> Result<Manifest, String> {
    let documents: Vec<Object> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    let mut manifest = Manifest::default();
    for object in documents {
        collect(object, &mut manifest);
    }
    Ok(manifest)
}

fn collect(object: Object, manifest: &mut Manifest) {
    let kind = object
        .kind
        .as_ref()
        .and_then(|k| k.value.as_str().map(str::to_string));
    if kind.as_deref() == Some("List") {
        for item in object.items.unwrap_or_default() {
            collect(item, manifest);
        }
        return;
    }
    let metadata = |field: &str| {
        object
            .metadata
            .as_ref()
            .and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if kind.as_deref() != Some("ConfigMap") || metadata("name").as_deref() != Some(ROLES_CONFIGMAP)
    {
        manifest.other_objects += 1;
        return;
    }
    let entries = match object.data {
        Some(Data::Entries(entries)) => entries
            .into_iter()
            .map(|(key, value)| DataEntry {
                key: key.value,
                line: key.referenced.line(),
                value: match value.value {
                    Value::String(text) => Ok(text),
                    other => Err(describe(&other).to_string()),
                },
            })
            .collect(),
        Some(Data::NotAMap) | None => Vec::new(),
    };
    let annotations = object
        .metadata
        .as_ref()
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    manifest.configmaps.push(RolesConfigMap {
        namespace: metadata("namespace"),
        line: object.kind.map_or(0, |k| k.referenced.line()),
        annotations,
        entries,
    });
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The parts of a Kubernetes object `validate` looks at; the rest is skipped unread.
#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    kind: Option<Spanned<Value>>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    items: Option<Vec<Object>>,
}

/// `data` of an object: the entries of a mapping (keys with their position), or anything else.
enum Data {
    Entries(Vec<(Spanned<String>, Spanned<Value>)>),
    NotAMap,
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DataVisitor)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the data of an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value::<Spanned<Value>>()?));
        }
        Ok(Data::Entries(entries))
    }

    // Other objects may have `data` of any shape: skip it.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Data::NotAMap)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Data, E> {
        Ok(Data::NotAMap)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Data, E> {
        Ok(Data::NotAMap)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Data, E> {
        Ok(Data::NotAMap)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Data, E> {
        Ok(Data::NotAMap)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Data, E> {
        Ok(Data::NotAMap)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Data, E> {
        Ok(Data::NotAMap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"# Source: chart/templates/namespace.yaml
apiVersion: v1
kind: Namespace
metadata:
  name: vault-auth
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: vault-auth-roles
  namespace: vault-auth
data:
  web: |
    {"bound_service_account_names": ["web"]}
  api: '{}'
  yaml-not-json:
    bound_service_account_names: [x]
---
---
apiVersion: v1
kind: Secret
metadata:
  name: vault-auth-roles
data:
  token: eA==
"#;

    #[test]
    fn finds_the_roles_configmap_with_key_lines_and_skips_the_rest() {
        let m = read_manifest(TWO).unwrap();
        assert_eq!(m.other_objects, 2);
        assert_eq!(m.configmaps.len(), 1);
        let cm = &m.configmaps[0];
        assert_eq!(cm.namespace.as_deref(), Some("vault-auth"));
        assert_eq!(cm.line, 8);
        let keys: Vec<_> = cm
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.line))
            .collect();
        assert_eq!(keys, [("web", 13), ("api", 15), ("yaml-not-json", 16)]);
        assert_eq!(
            cm.entries[0].value.as_deref(),
            Ok("{\"bound_service_account_names\": [\"web\"]}\n")
        );
        assert_eq!(cm.entries[2].value, Err("a mapping".to_string()));
    }

    #[test]
    fn reads_the_items_of_a_list_and_other_shapes_of_data() {
        let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: vault-auth-roles}
  data: {a: "{}"}
- kind: Custom
  data: [1, 2]
- kind: ConfigMap
  metadata: {name: other}
  data: {a: b}
"#;
        let m = read_manifest(text).unwrap();
        assert_eq!(m.other_objects, 2);
        assert_eq!(m.configmaps[0].namespace, None);
        assert_eq!(m.configmaps[0].entries[0].key, "a");
        assert_eq!(m.configmaps[0].entries[0].line, 8);
    }

    #[test]
    fn yaml_errors_name_the_line() {
        let err = read_manifest("kind: ConfigMap\ndata:\n  a: [unclosed\n  b: 1\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn empty_input_has_nothing() {
        assert_eq!(read_manifest("").unwrap(), Manifest::default());
        assert_eq!(
            read_manifest("# only a comment\n").unwrap(),
            Manifest::default()
        );
    }
}
