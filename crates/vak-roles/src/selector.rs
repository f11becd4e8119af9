//! `bound_service_account_namespace_selector`: a Kubernetes label selector that Vault stores as
//! a JSON or YAML string. Only `matchLabels` is supported (Vault rejects `matchExpressions`).
//! The ConfigMap may give it as an object or as a string; it is written as canonical JSON
//! (`{"matchLabels":{...}}`, keys sorted) so that comparison with Vault's answer is stable.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::name::{label_key_problem, label_value_problem};
use super::values::type_name;

/// The `matchLabels` of a valid, non-empty selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MatchLabels(pub BTreeMap<String, String>);

impl MatchLabels {
    /// Canonical JSON string: what is written to Vault.
    pub(crate) fn canonical(&self) -> String {
        let labels: Map<String, Value> = self
            .0
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut selector = Map::new();
        selector.insert("matchLabels".into(), Value::Object(labels));
        Value::Object(selector).to_string()
    }
}

/// Reads a selector given as an object or a JSON/YAML string; `Ok(None)` when unset (`""`).
pub(crate) fn parse_selector(value: &Value) -> Result<Option<MatchLabels>, String> {
    match value {
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => {
            let parsed: Value = match serde_json::from_str(s) {
                Ok(v) => v,
                // Vault accepts YAML too; JSON is tried first since JSON is (nearly) YAML.
                Err(json_err) => serde_saphyr::from_str(s).map_err(|_| {
                    format!("selector string is neither a JSON nor a YAML object: {json_err}")
                })?,
            };
            match parsed {
                Value::Object(obj) => parse_object(&obj).map(Some),
                other => Err(format!(
                    "selector string must hold an object with matchLabels, found {}",
                    type_name(&other)
                )),
            }
        }
        Value::Object(obj) => parse_object(obj).map(Some),
        other => Err(format!(
            "expected a label selector (an object with matchLabels, or that object as a JSON \
             string), found {}",
            type_name(other)
        )),
    }
}

fn parse_object(obj: &Map<String, Value>) -> Result<MatchLabels, String> {
    let mut labels = BTreeMap::new();
    for (field, value) in obj {
        match field.as_str() {
            "matchLabels" => {
                let Value::Object(map) = value else {
                    return Err(format!(
                        "matchLabels must be an object of label names to values, found {}",
                        type_name(value)
                    ));
                };
                for (key, v) in map {
                    let Value::String(v) = v else {
                        return Err(format!(
                            "matchLabels value of {key:?} must be a string, found {}",
                            type_name(v)
                        ));
                    };
                    if let Some(problem) = label_key_problem(key).or_else(|| label_value_problem(v))
                    {
                        return Err(problem);
                    }
                    labels.insert(key.clone(), v.clone());
                }
            }
            // An empty list selects nothing more; anything in it Vault refuses.
            "matchExpressions" if value.as_array().is_some_and(Vec::is_empty) => {}
            "matchExpressions" => {
                return Err(
                    "matchExpressions is not supported by Vault: use matchLabels only".into(),
                );
            }
            other => {
                return Err(format!(
                    "unknown selector field {other:?}: only matchLabels is supported"
                ));
            }
        }
    }
    if labels.is_empty() {
        // An empty selector matches every namespace: almost certainly not what was meant, and
        // if it is, `"bound_service_account_namespaces": "*"` says so plainly.
        return Err(
            "selector has no matchLabels, so it would select every namespace; use \
             bound_service_account_namespaces \"*\" if that is meant"
                .into(),
        );
    }
    Ok(MatchLabels(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CANONICAL: &str = r#"{"matchLabels":{"a":"b","team":"x"}}"#;

    #[test]
    fn accepted_forms_share_one_canonical_string() {
        let forms = [
            json!({"matchLabels": {"team": "x", "a": "b"}}),
            json!(r#"{"matchLabels":{"team":"x","a":"b"}}"#),
            json!("{ \"matchLabels\": { \"a\": \"b\", \"team\": \"x\" } }"),
            json!("matchLabels:\n  team: x\n  a: b\n"),
            json!({"matchLabels": {"a": "b", "team": "x"}, "matchExpressions": []}),
        ];
        for form in forms {
            let labels = parse_selector(&form).unwrap_or_else(|e| panic!("{form}: {e}"));
            assert_eq!(
                labels.map(|l| l.canonical()).as_deref(),
                Some(CANONICAL),
                "{form}"
            );
        }
        assert_eq!(parse_selector(&json!("")), Ok(None));
    }

    #[test]
    fn rejected_with_reason() {
        let cases = [
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}),
                "matchExpressions is not supported",
            ),
            (json!({}), "would select every namespace"),
            (json!("{}"), "would select every namespace"),
            (json!({"matchLabels": {}}), "would select every namespace"),
            (
                json!({"matchLabels": {"a": "b"}, "foo": 1}),
                "unknown selector field \"foo\"",
            ),
            (
                json!({"matchLabels": {"a": 1}}),
                "must be a string, found a number",
            ),
            (json!({"matchLabels": ["a"]}), "found a list"),
            (
                json!({"matchLabels": {"a b": "c"}}),
                "label key \"a b\" is invalid",
            ),
            (
                json!({"matchLabels": {"a": "b c"}}),
                "label value \"b c\" is invalid",
            ),
            (
                json!("garbage{"),
                "must hold an object with matchLabels, found a string",
            ),
            (json!("a: ["), "neither a JSON nor a YAML object"),
            (json!("[1]"), "found a list"),
            (json!(5), "found a number"),
        ];
        for (input, want) in cases {
            let e = parse_selector(&input).expect_err(&input.to_string());
            assert!(e.contains(want), "{input}: {e}");
        }
    }
}
