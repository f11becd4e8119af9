//! Field-level comparison of two normalised role bodies.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

/// One parameter whose value differs between Vault and the ConfigMap.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    /// Parameter name.
    pub field: String,
    /// Value Vault holds (`null` when absent).
    pub from: Value,
    /// Value the ConfigMap asks for (`null` when absent).
    pub to: Value,
}

/// Differences between the desired body and Vault's normalised answer, sorted by field; empty
/// means equal. Both sides must be normalised (see [`super::normalize_vault_role`]).
pub fn diff_role(
    desired: &Map<String, Value>,
    actual_normalized: &Map<String, Value>,
) -> Vec<FieldChange> {
    let fields: BTreeSet<&String> = desired.keys().chain(actual_normalized.keys()).collect();
    let null = Value::Null;
    fields
        .into_iter()
        .filter_map(|field| {
            // Compared before anything is copied: most fields of most roles are equal.
            let to = desired.get(field).unwrap_or(&null);
            let from = actual_normalized.get(field).unwrap_or(&null);
            (from != to).then(|| FieldChange {
                field: field.clone(),
                from: from.clone(),
                to: to.clone(),
            })
        })
        .collect()
}

/// What differs between a body the controller would write and a role as Vault returns it:
/// the answer normalised ([`super::normalize_vault_role`]) and compared on the parameters the
/// body holds (a parameter the server does not accept is in neither, see
/// [`super::RoleSet::for_server`]). Empty: the role is as desired and is not rewritten.
pub fn role_changes(
    desired: &Map<String, Value>,
    vault_answer: &Map<String, Value>,
) -> Vec<FieldChange> {
    // What the controller wrote itself is taken for Vault's answer until the next full read
    // (the two compare equal after normalisation): then there is nothing to normalise.
    if desired == vault_answer {
        return Vec::new();
    }
    let mut actual = super::normalize_vault_role(vault_answer);
    actual.retain(|field, _| desired.contains_key(field));
    diff_role(desired, &actual)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::obj;
    use serde_json::json;

    #[test]
    fn reports_each_differing_field_in_order() {
        let desired = obj(json!({"a": 1, "b": ["x"], "c": "same", "d": true}));
        let actual = obj(json!({"c": "same", "b": ["y"], "a": 1, "e": 0}));
        let changes = diff_role(&desired, &actual);
        assert_eq!(
            changes,
            vec![
                FieldChange {
                    field: "b".into(),
                    from: json!(["y"]),
                    to: json!(["x"])
                },
                FieldChange {
                    field: "d".into(),
                    from: Value::Null,
                    to: json!(true)
                },
                FieldChange {
                    field: "e".into(),
                    from: json!(0),
                    to: Value::Null
                },
            ]
        );
        assert!(diff_role(&desired, &desired).is_empty());
    }

    #[test]
    fn list_order_matters_as_it_does_to_vault() {
        let a = obj(json!({"token_policies": ["a", "b"]}));
        let b = obj(json!({"token_policies": ["b", "a"]}));
        assert_eq!(diff_role(&a, &b).len(), 1);
    }
}
