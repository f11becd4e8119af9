//! parse_roles: every rule of the ConfigMap entries, table-driven, with the exact messages users
//! see (they back `validate FILE`, Events and logs, so they must stay stable).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vault_auth_kubernetes::roles::{RoleSet, Severity, parse_roles};

const NAMES_NS: &str =
    r#""bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["ns"]"#;

fn one(key: &str, body: &str) -> RoleSet {
    parse_roles(&BTreeMap::from([(key.to_string(), body.to_string())]))
}

/// A body with the usual bindings plus `extra` parameters.
fn with(extra: &str) -> String {
    if extra.is_empty() {
        format!("{{{NAMES_NS}}}")
    } else {
        format!("{{{NAMES_NS}, {extra}}}")
    }
}

fn messages(set: &RoleSet, severity: Severity) -> Vec<String> {
    set.findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn rejected_entries_say_exactly_why() {
    let long_ttl = "\"token_ttl\": \"2h\", \"token_max_ttl\": \"1h\"";
    let cases: Vec<(&str, String, &str)> = vec![
        ("web", "{\"bound_service_account_names\": [\"sa\"],\n  \"x\": }".into(),
         r#"key "web": invalid JSON at line 2, column 8: expected value"#),
        ("web", "[1, 2]".into(),
         r#"key "web": expected a JSON object with the role's parameters, found a list"#),
        ("web", "".into(),
         r#"key "web": empty value: expected a JSON object with the role's parameters"#),
        ("web", with(r#""token_polices": ["a"]"#),
         r#"key "web": field "token_polices": unknown parameter (did you mean "token_policies"?)"#),
        ("web", with(r#""colour": "blue""#),
         r#"key "web": field "colour": unknown parameter"#),
        ("web", with(r#""token_ttl": true"#),
         r#"key "web": field "token_ttl": expected seconds or a duration string such as "1h30m", found a boolean"#),
        ("web", with(r#""token_ttl": "2w""#),
         r#"key "web": field "token_ttl": invalid duration "2w": unknown unit "w" (use ns, us, ms, s, m, h or d)"#),
        ("web", with(r#""token_num_uses": "many""#),
         r#"key "web": field "token_num_uses": expected a whole number, found "many""#),
        ("web", with(r#""token_no_default_policy": 1"#),
         r#"key "web": field "token_no_default_policy": expected true or false, found a number"#),
        ("web", with(r#""token_policies": {"a": 1}"#),
         r#"key "web": field "token_policies": expected a list of strings or a comma-separated string, found an object"#),
        ("web", with(r#""token_type": "default-service""#),
         r#"key "web": field "token_type": "default-service" is a mount's token type, not a role's: use "default", "service" or "batch""#),
        ("web", with(r#""alias_name_source": "uid""#),
         r#"key "web": field "alias_name_source": expected "serviceaccount_uid" or "serviceaccount_name", found "uid""#),
        ("web", with(r#""token_bound_cidrs": ["10.0.0.0/33"]"#),
         r#"key "web": field "token_bound_cidrs": "10.0.0.0/33": prefix /33 is longer than the address"#),
        ("web", with(r#""audience": 5"#),
         r#"key "web": field "audience": expected a string, found a number"#),
        ("web", r#"{"bound_service_account_names": "*", "bound_service_account_namespaces": "*"}"#.into(),
         r#"key "web": "*" in both "bound_service_account_names" and "bound_service_account_namespaces" would let every ServiceAccount of the cluster log in"#),
        ("web", r#"{"bound_service_account_names": [], "bound_service_account_namespaces": ["ns"]}"#.into(),
         r#"key "web": field "bound_service_account_names": must list at least one ServiceAccount name ("*" for any)"#),
        ("web", r#"{"bound_service_account_namespaces": ["ns"]}"#.into(),
         r#"key "web": field "bound_service_account_names": must list at least one ServiceAccount name ("*" for any)"#),
        ("web", r#"{"bound_service_account_names": ["sa"]}"#.into(),
         r#"key "web": field "bound_service_account_namespaces": no namespaces and no namespace selector: list namespaces here or set "bound_service_account_namespace_selector""#),
        ("web", r#"{"bound_service_account_names": ["sa", "*"], "bound_service_account_namespaces": ["ns"]}"#.into(),
         r#"key "web": field "bound_service_account_names": "*" cannot be mixed with other values"#),
        ("web", r#"{"bound_service_account_names": ["Vault_Agent"], "bound_service_account_namespaces": ["ns"]}"#.into(),
         r#"key "web": field "bound_service_account_names": "Vault_Agent" is not a valid ServiceAccount name: Kubernetes requires a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"#),
        ("web", r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["kube.system"]}"#.into(),
         r#"key "web": field "bound_service_account_namespaces": "kube.system" is not a valid namespace name: Kubernetes requires a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"#),
        ("web", r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespace_selector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}"#.into(),
         r#"key "web": field "bound_service_account_namespace_selector": matchExpressions is not supported by Vault: use matchLabels only"#),
        ("web", r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespace_selector": "{\"matchLabels\": 5}"}"#.into(),
         r#"key "web": field "bound_service_account_namespace_selector": matchLabels must be an object of label names to values, found a number"#),
        ("web/x", with(""),
         r#"key "web/x": Vault cannot hold this role name: use letters, digits, '_', '-' and '.', starting and ending with a letter, digit or '_'"#),
        ("-web", with(""),
         r#"key "-web": Vault cannot hold this role name: use letters, digits, '_', '-' and '.', starting and ending with a letter, digit or '_'"#),
        ("web", with(r#""ttl": 60, "token_ttl": 60"#),
         r#"key "web": field "ttl": both "ttl" and "token_ttl" are given: keep only "token_ttl""#),
        ("web", with(long_ttl),
         r#"key "web": field "token_ttl": 7200 s is longer than token_max_ttl (3600 s)"#),
        ("web", with(r#""token_type": "batch", "token_period": "1h""#),
         r#"key "web": field "token_type": batch tokens cannot be periodic: token_period must be 0"#),
        ("web", with(r#""token_type": "batch", "token_num_uses": 2"#),
         r#"key "web": field "token_type": batch tokens cannot be use-limited: token_num_uses must be 0"#),
        ("web", with(r#""token_strictly_bind_ip": true, "token_bound_cidrs": "10.0.0.0/8""#),
         r#"key "web": field "token_strictly_bind_ip": conflicts with "token_bound_cidrs": set only one"#),
        ("web", with(r#""name": "other""#),
         r#"key "web": field "name": the role name is the ConfigMap key ("web"): remove "name" or make it match"#),
        ("web", format!("{{{NAMES_NS},\n \"token_ttl\": 1,\n \"token_ttl\": 2}}"),
         r#"key "web": invalid JSON at line 3, column 16: parameter "token_ttl" is given twice"#),
    ];
    for (key, body, want) in cases {
        let set = one(key, &body);
        assert!(set.roles.is_empty(), "{body} was accepted");
        assert_eq!(
            set.rejected.iter().collect::<Vec<_>>(),
            [&key.to_lowercase()],
            "{body}"
        );
        let errors = messages(&set, Severity::Error);
        assert!(
            errors.iter().any(|e| e == want),
            "{body}\nwant: {want}\ngot:  {errors:#?}"
        );
    }
}

#[test]
fn every_problem_of_an_entry_is_reported() {
    let set = one(
        "web",
        r#"{"bound_service_account_names": ["Bad"], "token_polices": "a", "token_ttl": "x"}"#,
    );
    let fields: Vec<_> = set.findings.iter().map(|f| f.field.as_deref()).collect();
    assert_eq!(
        fields,
        [
            Some("token_polices"),
            Some("token_ttl"),
            Some("bound_service_account_names"),
            Some("bound_service_account_namespaces"),
        ]
    );
}

#[test]
fn full_body_with_defaults_filled() {
    let set = one("web", &with(""));
    assert!(set.findings.is_empty(), "{:?}", set.findings);
    let spec = &set.roles["web"];
    assert_eq!(
        Value::Object(serde_json::Map::clone(&spec.body)),
        json!({
            "alias_name_source": "serviceaccount_uid",
            "audience": "",
            "bound_service_account_names": ["sa"],
            "bound_service_account_namespace_selector": "",
            "bound_service_account_namespaces": ["ns"],
            "token_bound_cidrs": [],
            "token_explicit_max_ttl": 0,
            "token_max_ttl": 0,
            "token_no_default_policy": false,
            "token_num_uses": 0,
            "token_period": 0,
            "token_policies": [],
            "token_strictly_bind_ip": false,
            "token_ttl": 0,
            "token_type": "default"
        })
    );
    // Serialised in Vault's (alphabetical) order, whatever order the entry used.
    let keys: Vec<_> = spec.body.keys().cloned().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn accepted_spellings_normalise_to_what_vault_stores() {
    // (parameter written, value written, value in the body)
    let cases = [
        ("token_policies", json!("a, b"), json!(["a", "b"])),
        ("token_policies", json!(["a", " b "]), json!(["a", "b"])),
        ("token_policies", json!(""), json!([])),
        ("policies", json!(["old"]), json!(["old"])),
        ("token_ttl", json!("1h30m"), json!(5400)),
        ("token_ttl", json!("1d"), json!(86400)),
        ("token_ttl", json!("90"), json!(90)),
        ("ttl", json!(60), json!(60)),
        ("token_max_ttl", json!("1.5h"), json!(5400)),
        ("max_ttl", json!("2h"), json!(7200)),
        ("token_period", json!("24h"), json!(86400)),
        ("period", json!("1m"), json!(60)),
        ("token_explicit_max_ttl", json!(3600), json!(3600)),
        ("token_num_uses", json!("3"), json!(3)),
        ("num_uses", json!(2), json!(2)),
        ("token_no_default_policy", json!("true"), json!(true)),
        ("token_strictly_bind_ip", json!(false), json!(false)),
        ("token_type", json!(""), json!("default")),
        ("token_type", json!("batch"), json!("batch")),
        (
            "token_bound_cidrs",
            json!("10.0.0.1/32, ::1"),
            json!(["10.0.0.1", "::1"]),
        ),
        ("bound_cidrs", json!(["10.0.0.0/8"]), json!(["10.0.0.0/8"])),
        ("audience", json!("vault"), json!("vault")),
        (
            "alias_name_source",
            json!("serviceaccount_name"),
            json!("serviceaccount_name"),
        ),
        (
            "bound_service_account_namespace_selector",
            json!({"matchLabels": {"team": "a", "env": "prod"}}),
            json!(r#"{"matchLabels":{"env":"prod","team":"a"}}"#),
        ),
        (
            "bound_service_account_namespace_selector",
            json!("matchLabels:\n  team: a\n"),
            json!(r#"{"matchLabels":{"team":"a"}}"#),
        ),
        ("token_ttl", Value::Null, json!(0)),
    ];
    for (param, value, want) in cases {
        let body = with(&format!("{param:?}: {value}"));
        let set = one("web", &body);
        assert!(!set.has_errors(), "{body}: {:?}", set.findings);
        // Each deprecated alias X stands for token_X.
        let current = match param {
            "policies" | "ttl" | "max_ttl" | "period" | "num_uses" | "bound_cidrs" => {
                format!("token_{param}")
            }
            other => other.to_string(),
        };
        assert_eq!(set.roles["web"].body[&current], want, "{body}");
        assert!(!set.roles["web"].body.contains_key(param) || param == current);
    }
}

#[test]
fn warnings_leave_the_entry_applied() {
    let cases = [
        (
            "Web",
            with(""),
            r#"key "Web": Vault stores role names lowercased: applied as role "web""#,
        ),
        (
            "web",
            with(r#""ttl": "1h""#),
            r#"key "web": field "ttl": deprecated: use "token_ttl" instead"#,
        ),
        (
            "web",
            with(r#""token_strictly_bind_ip": true"#),
            r#"key "web": field "token_strictly_bind_ip": only OpenBao enforces this; HashiCorp Vault ignores it"#,
        ),
        (
            "web",
            with(r#""name": "WEB""#),
            r#"key "web": field "name": ignored: the role name is the ConfigMap key"#,
        ),
    ];
    for (key, body, want) in cases {
        let set = one(key, &body);
        assert_eq!(messages(&set, Severity::Warning), [want], "{body}");
        assert!(messages(&set, Severity::Error).is_empty(), "{body}");
        let spec = &set.roles["web"];
        assert_eq!(spec.key, key);
        assert_eq!(spec.name, "web");
        assert!(!spec.body.contains_key("name"));
    }
}

#[test]
fn keys_that_collide_once_lowercased_are_all_rejected() {
    let data = BTreeMap::from([
        ("Web".to_string(), with("")),
        ("web".to_string(), with("")),
        ("other".to_string(), with("")),
    ]);
    let set = parse_roles(&data);
    assert_eq!(set.roles.keys().collect::<Vec<_>>(), ["other"]);
    assert_eq!(set.rejected.iter().collect::<Vec<_>>(), ["web"]);
    assert_eq!(
        messages(&set, Severity::Error),
        [
            r#"key "Web": Vault stores role names lowercased and key(s) ["web"] name the same role "web": all of them are rejected"#,
            r#"key "web": Vault stores role names lowercased and key(s) ["Web"] name the same role "web": all of them are rejected"#,
        ]
    );
}

#[test]
fn one_bad_entry_does_not_hide_the_others() {
    let data = BTreeMap::from([
        ("default".to_string(), with(r#""token_policies": ["test"]"#)),
        ("broken".to_string(), "{".to_string()),
        ("typo".to_string(), with(r#""token_polices": ["test"]"#)),
    ]);
    let set = parse_roles(&data);
    assert_eq!(set.roles.keys().collect::<Vec<_>>(), ["default"]);
    assert_eq!(set.rejected.iter().collect::<Vec<_>>(), ["broken", "typo"]);
    assert!(set.has_errors());
}

#[test]
fn the_original_readme_example_is_valid() {
    let data = BTreeMap::from([
        (
            "default".to_string(),
            r#"{
      "bound_service_account_names": ["vault-agent-injector", "default"],
      "bound_service_account_namespaces": ["kube-system", "default"],
      "token_policies": ["test"]
  }"#
            .to_string(),
        ),
        (
            "test".to_string(),
            r#"{
      "bound_service_account_names": ["vault-agent-injector"],
      "bound_service_account_namespaces": ["kube-system"],
      "token_policies": ["test", "default"]
  }"#
            .to_string(),
        ),
    ]);
    let set = parse_roles(&data);
    assert!(set.findings.is_empty(), "{:?}", set.findings);
    let default = &set.roles["default"];
    assert_eq!(
        default.service_account_names,
        ["vault-agent-injector", "default"]
    );
    assert_eq!(default.namespaces, ["kube-system", "default"]);
    assert_eq!(default.namespace_selector, None);
    assert_eq!(
        set.roles["test"].body["token_policies"],
        json!(["test", "default"])
    );
}

#[test]
fn findings_serialise_for_json_output() {
    let set = one("web", &with(r#""token_polices": ["a"]"#));
    assert_eq!(
        serde_json::to_value(&set.findings).unwrap(),
        json!([{
            "key": "web",
            "field": "token_polices",
            "severity": "error",
            "message": "unknown parameter (did you mean \"token_policies\"?)"
        }])
    );
}

/// What the servers refuse, as measured (see `roles::limits`): an entry Vault would refuse is
/// rejected here, by `validate` and the controller alike, instead of failing every pass.
#[test]
fn limits_of_the_servers_are_known_offline() {
    let policies = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("\"p{i}\"")).collect();
        with(&format!(r#""token_policies": [{}]"#, list.join(",")))
    };
    assert!(!one("many", &policies(900)).has_errors());
    let set = one("many", &policies(10_000));
    assert_eq!(set.rejected.iter().collect::<Vec<_>>(), ["many"]);
    let text = messages(&set, Severity::Error).join("\n");
    assert!(
        text.contains("OpenBao refuses a request with more than 1000"),
        "{text}"
    );

    let long_key = "k".repeat(300);
    let set = one(&long_key, &with(r#""token_policies": ["a"]"#));
    let text = messages(&set, Severity::Error).join("\n");
    assert!(text.contains("at most 253"), "{text}");
}

#[test]
fn a_capitalised_key_is_applied_lowercased_only_when_valid() {
    let valid = one("Web", &with(""));
    assert_eq!(
        messages(&valid, Severity::Warning),
        ["key \"Web\": Vault stores role names lowercased: applied as role \"web\""]
    );
    // Rejected: nothing is applied, so nothing says "applied as".
    let rejected = one("Web", "{");
    assert!(rejected.rejected.contains("web"));
    assert_eq!(messages(&rejected, Severity::Warning), Vec::<String>::new());
}
