//! RBAC validation: policy rules, roleRef and subjects (with the defaulting of subject apiGroup).

use serde_json::{Map, Value, json};

use crate::kinds::NameRule;
use crate::validation::{FieldError, name_problems};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn str_list(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub(super) fn rule_errors(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(rules) = obj.get("rules").and_then(Value::as_array) else {
        return errors;
    };
    for (i, rule) in rules.iter().enumerate() {
        let at = |f: &str| format!("rules[{i}].{f}");
        if str_list(&rule["verbs"]).is_empty() {
            errors.push(FieldError::required(&at("verbs"), ""));
        }
        let urls = str_list(&rule["nonResourceURLs"]);
        if !urls.is_empty() {
            let shown = format!("{urls:?}");
            if namespaced {
                errors.push(FieldError::invalid_shown(
                    &at("nonResourceURLs"),
                    &shown,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !str_list(&rule["apiGroups"]).is_empty() || !str_list(&rule["resources"]).is_empty()
            {
                errors.push(FieldError::invalid_shown(
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

pub(super) fn default_subjects(obj: &mut Value) {
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

pub(super) fn binding_errors(obj: &Value, namespaced: bool) -> Vec<FieldError> {
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
