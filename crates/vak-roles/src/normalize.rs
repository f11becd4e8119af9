//! Normalisation of Vault's answer to a role read into the shape of [`super::RoleSpec::body`],
//! so that an unchanged role compares equal and is never rewritten.
//!
//! What Vault (OpenBao 2.7.2, checked) returns differs from what was written: durations as
//! seconds, `token_type` as `"default"`, empty lists as `[]`, an unset selector as `""`,
//! `audience` absent when empty, CIDRs canonicalised, and the deprecated aliases (`ttl`,
//! `policies`, ...) echoed while they are set. HashiCorp Vault has no `token_strictly_bind_ip`.

use serde_json::{Map, Value};

use super::fields::{self, DEPRECATED, PARAMS};
use super::values::convert;

/// Brings a Vault role read answer (`data`) into the same shape as [`super::RoleSpec::body`]:
/// exactly the current parameters, defaults for the absent ones, values in canonical form.
/// A value this tool cannot read is kept as it is, so it shows up as a difference.
pub fn normalize_vault_role(data: &Map<String, Value>) -> Map<String, Value> {
    PARAMS
        .iter()
        .map(|param| {
            let raw = data.get(param.name).filter(|v| !v.is_null()).or_else(|| {
                // A role written long ago may only carry the deprecated spelling.
                DEPRECATED
                    .iter()
                    .filter(|(_, target)| *target == param.name)
                    .find_map(|(alias, _)| data.get(*alias).filter(|v| !v.is_null()))
            });
            let value = match raw {
                Some(raw) => convert(param.kind, raw).unwrap_or_else(|_| raw.clone()),
                None => fields::default_value(param.kind),
            };
            (param.name.to_string(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::obj;
    use serde_json::json;

    #[test]
    fn fills_defaults_and_drops_echoes() {
        // Shape of an OpenBao 2.7.2 answer for a role written with deprecated ttl/policies.
        let answer = obj(json!({
            "alias_name_source": "serviceaccount_uid",
            "bound_service_account_names": ["x"],
            "bound_service_account_namespace_selector": "",
            "bound_service_account_namespaces": ["a"],
            "policies": ["p1"],
            "token_bound_cidrs": [],
            "token_explicit_max_ttl": 0,
            "token_max_ttl": 0,
            "token_no_default_policy": false,
            "token_num_uses": 0,
            "token_period": 0,
            "token_policies": ["p1"],
            "token_strictly_bind_ip": false,
            "token_ttl": 3600,
            "token_type": "default",
            "ttl": 3600,
            "some_future_field": true
        }));
        let n = normalize_vault_role(&answer);
        assert_eq!(
            n.keys().collect::<Vec<_>>(),
            PARAMS.iter().map(|p| p.name).collect::<Vec<_>>()
        );
        assert_eq!(n["audience"], json!(""));
        assert_eq!(n["token_policies"], json!(["p1"]));
        assert_eq!(n["token_ttl"], json!(3600));
    }

    #[test]
    fn canonicalises_values_and_reads_old_spellings() {
        let answer = obj(json!({
            "bound_service_account_names": "x, y",
            "bound_service_account_namespace_selector": "matchLabels:\n  b: c\n  a: b\n",
            "token_bound_cidrs": ["10.0.0.1/32"],
            "token_type": "",
            "ttl": "1h",
            "policies": ["old"]
        }));
        let n = normalize_vault_role(&answer);
        assert_eq!(n["bound_service_account_names"], json!(["x", "y"]));
        assert_eq!(
            n["bound_service_account_namespace_selector"],
            json!(r#"{"matchLabels":{"a":"b","b":"c"}}"#)
        );
        assert_eq!(n["token_bound_cidrs"], json!(["10.0.0.1"]));
        assert_eq!(n["token_type"], json!("default"));
        assert_eq!(n["token_ttl"], json!(3600));
        assert_eq!(n["token_policies"], json!(["old"]));
        // HashiCorp Vault does not return it.
        assert_eq!(n["token_strictly_bind_ip"], json!(false));
    }

    #[test]
    fn keeps_what_it_cannot_read() {
        let answer = obj(json!({
            "bound_service_account_namespace_selector": "{}",
            "token_policies": [""],
            "token_type": "default-service"
        }));
        let n = normalize_vault_role(&answer);
        assert_eq!(n["bound_service_account_namespace_selector"], json!("{}"));
        assert_eq!(n["token_policies"], json!([""]));
        assert_eq!(n["token_type"], json!("default-service"));
    }
}
