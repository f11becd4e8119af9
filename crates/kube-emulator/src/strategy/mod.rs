//! Per-kind rules Kubernetes' registry strategies apply on create and update: defaulting,
//! validation, immutable fields, normalization, and the events.k8s.io/v1 <-> core/v1 Event
//! conversion.

mod data;
mod events;
mod rbac;

pub use events::{create_errors as event_create_errors, from_storage, to_storage};

use serde_json::{Value, json};

use data::{data_key_errors, prepare_data};
use rbac::{binding_errors, default_subjects, rule_errors};

use crate::kinds::Kind;
use crate::meta;
use crate::status::ApiError;
use crate::validation::FieldError;

const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";

fn invalid(kind: &Kind, obj: &Value, errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, meta::name(obj), &errors))
    }
}

/// What decoding a request body does before anything else sees it (Kubernetes' conversion and
/// defaulting functions): a Namespace's name label, a Secret's `stringData` folded into `data`
/// and its default type. The field manager records these as the writer's fields.
pub fn decode_defaults(kind: &Kind, obj: &mut Value) -> Result<(), ApiError> {
    match kind.plural {
        "namespaces" => set_namespace_name_label(obj),
        "secrets" => {
            prepare_data(obj, true)?;
            if obj
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                obj["type"] = json!("Opaque");
            }
        }
        _ => {}
    }
    Ok(())
}

/// Defaults and validates a new object of `kind` (already in storage form).
pub fn prepare_create(kind: &Kind, obj: &mut Value) -> Result<(), ApiError> {
    match kind.plural {
        "namespaces" => {
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            obj["status"] = json!({"phase": "Active"});
            set_namespace_name_label(obj);
            Ok(())
        }
        "secrets" => {
            prepare_data(obj, true)?;
            if obj
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                obj["type"] = json!("Opaque");
            }
            let mut errors = data_key_errors(obj);
            errors.extend(secret_type_errors(obj));
            if obj["type"] == SA_TOKEN_TYPE
                && meta::annotation(obj, SA_NAME_ANNOTATION).is_none_or(str::is_empty)
            {
                errors.push(FieldError::required(
                    &format!("metadata.annotations[{SA_NAME_ANNOTATION}]"),
                    "",
                ));
            }
            invalid(kind, obj, errors)
        }
        "configmaps" => {
            prepare_data(obj, false)?;
            invalid(kind, obj, data_key_errors(obj))
        }
        "roles" | "clusterroles" => invalid(kind, obj, rule_errors(obj, kind.namespaced)),
        "rolebindings" | "clusterrolebindings" => {
            default_subjects(obj);
            invalid(kind, obj, binding_errors(obj, kind.namespaced))
        }
        "leases" => invalid(kind, obj, lease_errors(obj)),
        _ => Ok(()),
    }
}

/// The keys each built-in Secret type requires (Kubernetes' ValidateSecret).
fn secret_type_errors(obj: &Value) -> Vec<FieldError> {
    let has = |k: &str| obj.get("data").and_then(|d| d.get(k)).is_some();
    let required = |k: &str| FieldError::required(&format!("data[{k}]"), "");
    match obj["type"].as_str().unwrap_or("") {
        // Either one will do; neither is both missing.
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            vec![required("username"), required("password")]
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => vec![required("ssh-privatekey")],
        "kubernetes.io/tls" => ["tls.crt", "tls.key"]
            .into_iter()
            .filter(|k| !has(k))
            .map(required)
            .collect(),
        _ => Vec::new(),
    }
}

/// A Lease's durations and counters must be positive (Kubernetes' ValidateLeaseSpec).
fn lease_errors(obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(d) = obj
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64)
        && d <= 0
    {
        errors.push(FieldError::invalid_shown(
            "spec.leaseDurationSeconds",
            &d.to_string(),
            "must be greater than 0",
        ));
    }
    if let Some(t) = obj
        .pointer("/spec/leaseTransitions")
        .and_then(Value::as_i64)
        && t < 0
    {
        errors.push(FieldError::invalid_shown(
            "spec.leaseTransitions",
            &t.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    errors
}

/// Carries server-owned fields over and checks immutable ones for an update of `kind`.
pub fn prepare_update(kind: &Kind, old: &Value, new: &mut Value) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    match kind.plural {
        "namespaces" => {
            // Status and spec.finalizers change only through the namespace lifecycle.
            new["status"] = old
                .get("status")
                .cloned()
                .unwrap_or_else(|| json!({"phase": "Active"}));
            new["spec"] = old.get("spec").cloned().unwrap_or_else(|| json!({}));
            set_namespace_name_label(new);
        }
        "secrets" | "configmaps" => {
            prepare_data(new, kind.plural == "secrets")?;
            errors.extend(data_key_errors(new));
            if kind.plural == "secrets" {
                if new.get("type").is_none_or(|t| t.as_str() == Some("")) {
                    new["type"] = old["type"].clone();
                }
                if new["type"] != old["type"] {
                    errors.push(FieldError::invalid(
                        "type",
                        new["type"].as_str().unwrap_or(""),
                        "field is immutable",
                    ));
                }
                errors.extend(secret_type_errors(new));
            }
            if old["immutable"] == json!(true) {
                if new["immutable"] != json!(true) {
                    errors.push(FieldError::forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
                for field in ["data", "binaryData"] {
                    if new.get(field) != old.get(field) {
                        errors.push(FieldError::forbidden(
                            field,
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
            }
        }
        "roles" | "clusterroles" => errors.extend(rule_errors(new, kind.namespaced)),
        "rolebindings" | "clusterrolebindings" => {
            default_subjects(new);
            errors.extend(binding_errors(new, kind.namespaced));
            if new.get("roleRef") != old.get("roleRef") {
                // Printed as Go prints the RoleRef struct.
                let r = &new["roleRef"];
                let shown = serde_json::json!({
                    "APIGroup": r["apiGroup"].as_str().unwrap_or(""),
                    "Kind": r["kind"].as_str().unwrap_or(""),
                    "Name": r["name"].as_str().unwrap_or(""),
                });
                errors.push(FieldError::invalid_shown(
                    "roleRef",
                    &shown.to_string(),
                    "field is immutable",
                ));
            }
        }
        "leases" => errors.extend(lease_errors(new)),
        _ => {}
    }
    invalid(kind, new, errors)
}

/// Top-level collections Kubernetes' types mark `omitempty`: an empty one is not served.
const OMITTED_WHEN_EMPTY: &[&str] = &[
    "data",
    "binaryData",
    "stringData",
    "secrets",
    "imagePullSecrets",
    "subjects",
];

/// Drops what Kubernetes' typed encoding never serves: empty or null metadata fields (labels,
/// annotations, finalizers, ownerReferences... are all `omitempty`), null top-level fields, and
/// empty `omitempty` collections. So `{"annotations": {}}` left by removing the last annotation
/// reads back as no annotations, as it does from a real apiserver.
pub fn normalize(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if let Some(md) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        md.retain(|_, v| !is_empty(v));
    }
    // Role rules are not omitempty: an empty list is stored as none, and served as null.
    if let Some(rules) = map.get_mut("rules")
        && rules.as_array().is_some_and(Vec::is_empty)
    {
        *rules = Value::Null;
    }
    map.retain(|k, v| {
        let null = v.is_null() && k != "rules";
        let omitted = OMITTED_WHEN_EMPTY.contains(&k.as_str()) && is_empty(v);
        !(null || omitted)
    });
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn set_namespace_name_label(obj: &mut Value) {
    let name = meta::name(obj).to_string();
    let md = meta::metadata_mut(obj);
    let labels = md.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels["kubernetes.io/metadata.name"] = json!(name);
}

#[cfg(test)]
mod tests;
