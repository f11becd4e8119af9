//! The fields each served kind declares, at the top level and in `metadata`. Kubernetes decodes
//! bodies into typed objects, so a field it does not know is dropped — or, with
//! `fieldValidation=Strict` (what kubectl sends), refused with 400 "strict decoding error".
//! Nested objects (rules, subjects, spec...) are not checked.

use serde_json::Value;

use crate::kinds::Kind;
use crate::status::ApiError;

const METADATA: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Top-level fields of `kind` besides apiVersion, kind and metadata; None when not checked.
fn declared(kind: &Kind) -> Option<&'static [&'static str]> {
    Some(match (kind.group, kind.plural) {
        ("", "namespaces") => &["spec", "status"],
        ("", "serviceaccounts") => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        ("", "secrets") => &["data", "stringData", "type", "immutable"],
        ("", "configmaps") => &["data", "binaryData", "immutable"],
        ("", "events") => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        ("events.k8s.io", "events") => &[
            "eventTime",
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "related",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ],
        (_, "roles") => &["rules"],
        (_, "clusterroles") => &["rules", "aggregationRule"],
        (_, "rolebindings" | "clusterrolebindings") => &["subjects", "roleRef"],
        (_, "leases") => &["spec"],
        ("apiextensions.k8s.io", "customresourcedefinitions") => &["spec", "status"],
        _ => return None,
    })
}

/// Drops undeclared fields of a body of `kind` (as decoding into a typed object does), or
/// refuses them when `strict`.
pub fn prune_unknown(kind: &Kind, obj: &mut Value, strict: bool) -> Result<(), ApiError> {
    let Some(declared) = declared(kind) else {
        return Ok(());
    };
    let mut unknown: Vec<String> = Vec::new();
    if let Some(map) = obj.as_object_mut() {
        map.retain(|k, _| {
            let known = matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                || declared.contains(&k.as_str());
            if !known {
                unknown.push(k.clone());
            }
            known
        });
        if let Some(md) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            md.retain(|k, _| {
                let known = METADATA.contains(&k.as_str());
                if !known {
                    unknown.push(format!("metadata.{k}"));
                }
                known
            });
        }
    }
    if strict && !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        return Err(ApiError::bad_request(format!(
            "{k} in version \"{v}\" cannot be handled as a {k}: strict decoding error: {}",
            list.join(", "),
            k = kind.kind,
            v = kind.version,
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_dropped_or_refused() {
        let cm = kinds::find("", "v1", "configmaps").unwrap();
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "nme": "x"}, "data": {}, "datas": {}});
        let mut lenient = body.clone();
        prune_unknown(cm, &mut lenient, false).unwrap();
        assert_eq!(
            lenient,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}})
        );
        let e = prune_unknown(cm, &mut body.clone(), true).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: \
             unknown field \"datas\", unknown field \"metadata.nme\""
        );
    }

    #[test]
    fn every_stored_kind_declares_its_fields() {
        for k in kinds::KINDS
            .iter()
            .filter(|k| k.storage != kinds::Storage::Virtual)
        {
            assert!(declared(k).is_some(), "{} has no declared fields", k.plural);
        }
    }
}
