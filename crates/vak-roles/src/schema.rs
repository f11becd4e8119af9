//! A JSON Schema of one role body, generated from the parameter table ([`crate::fields`]), so
//! the Helm chart checks `roles` at install time with the controller's own list of parameters:
//! a typo (`token_polices`) fails `helm install` with the field named, instead of rendering a
//! ConfigMap whose entry the controller then rejects.
//!
//! It checks the shape of each parameter (types, enumerations); the finer rules (durations'
//! syntax, CIDRs, the policy guard-rail) stay with `validate` and the controller, which give
//! better messages than a schema can.

use serde_json::{Value, json};

use crate::fields::{DEPRECATED, Kind, PARAMS};

/// The schema of one role body, as the chart's `values.schema.json` holds it under `roles`.
pub fn role_body_schema() -> Value {
    let mut properties = serde_json::Map::new();
    for param in PARAMS {
        properties.insert(param.name.to_string(), kind_schema(param.kind));
    }
    for (alias, param) in DEPRECATED {
        let kind = PARAMS
            .iter()
            .find(|p| p.name == *param)
            .map(|p| p.kind)
            .expect("every alias names a parameter");
        let mut schema = kind_schema(kind);
        schema["description"] = json!(format!("Deprecated: use {param}."));
        properties.insert(alias.to_string(), schema);
    }
    json!({
        "type": "object",
        "description": "A Vault role: the parameters of auth/kubernetes/<mount>/role/<name> \
                        (generated from the controller's parameter table; \
                        `vault-auth-kubernetes validate` checks the values further).",
        "required": ["bound_service_account_names"],
        "anyOf": [
            {"required": ["bound_service_account_namespaces"]},
            {"required": ["bound_service_account_namespace_selector"]}
        ],
        "properties": properties,
        "additionalProperties": false
    })
}

fn kind_schema(kind: Kind) -> Value {
    let list = json!({
        "oneOf": [
            {"type": "array", "items": {"type": "string", "minLength": 1}},
            {"type": "string"}
        ]
    });
    match kind {
        Kind::List | Kind::CidrList => list,
        Kind::Duration => json!({
            "description": "Seconds, or a duration such as \"1h30m\" or \"7d\".",
            "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]
        }),
        Kind::Int => json!({
            "oneOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^[0-9]*$"}
            ]
        }),
        Kind::Bool => json!({
            "oneOf": [
                {"type": "boolean"},
                {"type": "string", "enum": ["true", "True", "TRUE", "false", "False", "FALSE", ""]}
            ]
        }),
        Kind::Text => json!({"type": "string"}),
        Kind::TokenType => json!({"type": "string", "enum": ["", "default", "service", "batch"]}),
        Kind::AliasNameSource => json!({
            "type": "string",
            "enum": ["serviceaccount_uid", "serviceaccount_name"]
        }),
        Kind::Selector => json!({
            "description": "A label selector with matchLabels, as an object or a JSON/YAML string.",
            "oneOf": [{"type": "object"}, {"type": "string"}]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_and_alias_is_a_property_and_nothing_else_is() {
        let schema = role_body_schema();
        let properties = schema["properties"].as_object().unwrap();
        assert_eq!(properties.len(), PARAMS.len() + DEPRECATED.len());
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(properties["token_ttl"]["oneOf"][0]["type"], "integer");
        assert_eq!(
            properties["token_type"]["enum"],
            json!(["", "default", "service", "batch"])
        );
    }
}
