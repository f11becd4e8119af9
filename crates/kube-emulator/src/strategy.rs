//! Per-kind rules Kubernetes' registry strategies apply on create and update: defaulting,
//! validation, immutable fields, and the events.k8s.io/v1 <-> core/v1 Event conversion.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::kinds::{Kind, NameRule, Storage};
use crate::meta;
use crate::status::ApiError;
use crate::validation::{FieldError, name_problems};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// events.k8s.io/v1 field names and their core/v1 counterparts (the rest are shared).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename_fields(obj: &mut Value, from_v1: bool) {
    let Some(m) = obj.as_object_mut() else { return };
    for (v1, core) in EVENT_FIELDS {
        let (from, to) = if from_v1 { (v1, core) } else { (core, v1) };
        if let Some(v) = m.remove(*from) {
            m.insert(to.to_string(), v);
        }
    }
}

/// Converts an object of `kind` (as a client sent it) to the stored representation.
pub fn to_storage(kind: &Kind, mut obj: Value) -> Value {
    if kind.storage == Storage::EventsV1 {
        rename_fields(&mut obj, true);
        obj["apiVersion"] = json!("v1");
        obj["kind"] = json!("Event");
    }
    obj
}

/// Converts a stored object to the representation of `kind` (what a client of that API sees).
pub fn from_storage(kind: &Kind, stored: &Value) -> Value {
    let mut obj = stored.clone();
    if kind.storage == Storage::EventsV1 {
        rename_fields(&mut obj, false);
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
    }
    obj
}

fn invalid(kind: &Kind, obj: &Value, errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, meta::name(obj), &errors))
    }
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
        _ => Ok(()),
    }
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
                errors.push(FieldError::invalid(
                    "roleRef",
                    &new.get("roleRef").map(Value::to_string).unwrap_or_default(),
                    "cannot change roleRef",
                ));
            }
        }
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
    map.retain(|k, v| {
        // Role rules are not omitempty: Kubernetes serves `"rules": null`.
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

/// Folds Secret `stringData` into `data` and checks base64 values, as the apiserver's decoding does.
fn prepare_data(obj: &mut Value, secret: bool) -> Result<(), ApiError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if secret
        && let Some(Value::Object(string_data)) =
            obj.as_object_mut().and_then(|m| m.remove("stringData"))
    {
        let data = obj
            .as_object_mut()
            .expect("checked above")
            .entry("data")
            .or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (k, v) in string_data {
            data[&k] = json!(b64.encode(v.as_str().unwrap_or("")));
        }
    }
    let binary_fields: &[&str] = if secret { &["data"] } else { &["binaryData"] };
    for field in binary_fields {
        if let Some(map) = obj.get(*field).and_then(Value::as_object) {
            for (k, v) in map {
                let ok = v.as_str().is_some_and(|s| b64.decode(s).is_ok());
                if !ok {
                    return Err(ApiError::bad_request(format!(
                        "illegal base64 data in {field}[{k}]: values must be base64-encoded strings"
                    )));
                }
            }
        }
    }
    if let Some(data) = obj.get("data").and_then(Value::as_object)
        && !secret
        && data.values().any(|v| !v.is_string())
    {
        return Err(ApiError::bad_request(
            "ConfigMap data values must be strings",
        ));
    }
    Ok(())
}

fn is_config_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k != "."
        && k != ".."
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn data_key_errors(obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for field in ["data", "binaryData"] {
        if let Some(map) = obj.get(field).and_then(Value::as_object) {
            for k in map.keys().filter(|k| !is_config_key(k)) {
                errors.push(FieldError::invalid(
                    &format!("{field}[{k}]"),
                    k,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    errors
}

fn str_list(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn rule_errors(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(rules) = obj.get("rules").and_then(Value::as_array) else {
        return errors;
    };
    for (i, rule) in rules.iter().enumerate() {
        let at = |f: &str| format!("rules[{i}].{f}");
        if str_list(&rule["verbs"]).is_empty() {
            errors.push(FieldError::required(
                &at("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = str_list(&rule["nonResourceURLs"]);
        if !urls.is_empty() {
            let shown = format!("{urls:?}");
            if namespaced {
                errors.push(FieldError::invalid(
                    &at("nonResourceURLs"),
                    &shown,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !str_list(&rule["apiGroups"]).is_empty() || !str_list(&rule["resources"]).is_empty()
            {
                errors.push(FieldError::invalid(
                    &at("nonResourceURLs"),
                    &shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if rule
            .get("apiGroups")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            errors.push(FieldError::required(
                &at("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if str_list(&rule["resources"]).is_empty() {
            errors.push(FieldError::required(
                &at("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errors
}

fn default_subjects(obj: &mut Value) {
    if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects {
            let kind = s["kind"].as_str().unwrap_or("");
            if (kind == "User" || kind == "Group")
                && s.get("apiGroup")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                s["apiGroup"] = json!(RBAC_GROUP);
            }
        }
    }
}

fn binding_errors(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let role_ref = obj
        .get("roleRef")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let api_group = role_ref["apiGroup"].as_str().unwrap_or("");
    if api_group != RBAC_GROUP {
        errors.push(FieldError::not_supported(
            "roleRef.apiGroup",
            api_group,
            &[RBAC_GROUP],
        ));
    }
    let ref_kind = role_ref["kind"].as_str().unwrap_or("");
    let allowed: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !allowed.contains(&ref_kind) {
        errors.push(FieldError::not_supported("roleRef.kind", ref_kind, allowed));
    }
    match role_ref["name"].as_str().unwrap_or("") {
        "" => errors.push(FieldError::required("roleRef.name", "")),
        name => {
            for p in name_problems(NameRule::PathSegment, name) {
                errors.push(FieldError::invalid("roleRef.name", name, &p));
            }
        }
    }
    if let Some(subjects) = obj.get("subjects").and_then(Value::as_array) {
        for (i, s) in subjects.iter().enumerate() {
            let at = |f: &str| format!("subjects[{i}].{f}");
            let name = s["name"].as_str().unwrap_or("");
            if name.is_empty() {
                errors.push(FieldError::required(&at("name"), ""));
            }
            match s["kind"].as_str().unwrap_or("") {
                "ServiceAccount" => {
                    if let Some(g) = s["apiGroup"].as_str().filter(|g| !g.is_empty()) {
                        errors.push(FieldError::not_supported(&at("apiGroup"), g, &[""]));
                    }
                    if !namespaced && s["namespace"].as_str().unwrap_or("").is_empty() {
                        errors.push(FieldError::required(&at("namespace"), ""));
                    }
                }
                "User" | "Group" => {
                    let g = s["apiGroup"].as_str().unwrap_or("");
                    if g != RBAC_GROUP {
                        errors.push(FieldError::not_supported(&at("apiGroup"), g, &[RBAC_GROUP]));
                    }
                }
                other => errors.push(FieldError::not_supported(
                    &at("kind"),
                    other,
                    &["ServiceAccount", "User", "Group"],
                )),
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds;

    fn k(group: &str, plural: &str) -> &'static Kind {
        kinds::find(group, "v1", plural).unwrap()
    }

    #[test]
    fn namespaces_get_finalizer_phase_and_name_label() {
        let mut ns = json!({"metadata": {"name": "team"}});
        prepare_create(k("", "namespaces"), &mut ns).unwrap();
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team"
        );
        let mut changed = ns.clone();
        changed["status"]["phase"] = json!("Terminating");
        prepare_update(k("", "namespaces"), &ns, &mut changed).unwrap();
        assert_eq!(
            changed["status"]["phase"], "Active",
            "status is not writable through the main resource"
        );
    }

    #[test]
    fn secrets_fold_string_data_and_keep_their_type() {
        let secrets = k("", "secrets");
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"}});
        prepare_create(secrets, &mut s).unwrap();
        assert_eq!(s["data"]["user"], "YWRtaW4=");
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
        let mut retyped = s.clone();
        retyped["type"] = json!("kubernetes.io/tls");
        let e = prepare_update(secrets, &s, &mut retyped).unwrap_err();
        assert_eq!(e.code, 422);
        let mut bad = json!({"metadata": {"name": "s"}, "data": {"k": "not base64!"}});
        assert_eq!(prepare_create(secrets, &mut bad).unwrap_err().code, 400);
        let mut token = json!({"metadata": {"name": "t"}, "type": SA_TOKEN_TYPE});
        let e = prepare_create(secrets, &mut token).unwrap_err();
        assert!(
            e.message.contains("kubernetes.io/service-account.name"),
            "{e}"
        );
    }

    #[test]
    fn immutable_configmaps_refuse_data_changes() {
        let cms = k("", "configmaps");
        let old = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
        let mut new = old.clone();
        new["data"]["a"] = json!("2");
        assert_eq!(prepare_update(cms, &old, &mut new).unwrap_err().code, 422);
        let mut bad_key = json!({"metadata": {"name": "c"}, "data": {"bad key": "1"}});
        assert_eq!(prepare_create(cms, &mut bad_key).unwrap_err().code, 422);
    }

    #[test]
    fn rbac_rules_and_bindings_are_validated() {
        let role = k(RBAC_GROUP, "roles");
        let mut r = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["secrets"]}]});
        let e = prepare_create(role, &mut r).unwrap_err();
        assert!(e.message.contains("rules[0].verbs: Required value"), "{e}");
        let crb = k(RBAC_GROUP, "clusterrolebindings");
        let mut b = json!({
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "system:auth-delegator"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}, {"kind": "User", "name": "u"}]
        });
        prepare_create(crb, &mut b).unwrap();
        assert_eq!(b["subjects"][1]["apiGroup"], RBAC_GROUP);
        let mut changed = b.clone();
        changed["roleRef"]["name"] = json!("view");
        assert!(
            prepare_update(crb, &b, &mut changed)
                .unwrap_err()
                .message
                .contains("cannot change roleRef")
        );
        let mut no_ns = json!({"metadata": {"name": "b"}, "roleRef": b["roleRef"], "subjects": [{"kind": "ServiceAccount", "name": "sa"}]});
        assert!(
            prepare_create(crb, &mut no_ns)
                .unwrap_err()
                .message
                .contains("subjects[0].namespace")
        );
    }

    #[test]
    fn empty_omitempty_fields_are_not_served() {
        let mut o = json!({
            "metadata": {"name": "a", "annotations": {}, "labels": {"k": "v"}, "finalizers": [], "generateName": ""},
            "data": {},
            "immutable": null,
            "rules": null,
            "type": "Opaque"
        });
        normalize(&mut o);
        assert_eq!(
            o,
            json!({"metadata": {"name": "a", "labels": {"k": "v"}}, "rules": null, "type": "Opaque"})
        );
    }

    #[test]
    fn events_convert_both_ways() {
        let v1 = k("events.k8s.io", "events");
        let sent = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "regarding": {"kind": "Pod"}, "note": "hi", "reportingController": "c"});
        let stored = to_storage(v1, sent.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["kind"], "Pod");
        assert_eq!(stored["message"], "hi");
        assert_eq!(from_storage(v1, &stored), sent);
    }
}
