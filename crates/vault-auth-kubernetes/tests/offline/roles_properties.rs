//! Properties of parsing, validation and normalisation, over generated ConfigMap entries
//! (proptest): parsing never panics whatever the input; normalisation is idempotent and a valid
//! entry's body is already normal (what Vault returns for it compares equal, so it is never
//! rewritten); `validate` gives exactly the controller's verdict.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use vault_auth_kubernetes::commands::validate::{FileOutcome, check_text};
use vault_auth_kubernetes::roles::{PolicyGuard, normalize_vault_role, parse_roles, role_changes};

/// Parameter names, deprecated aliases, typos and unknown keys: what entries hold.
const KEYS: &[&str] = &[
    "bound_service_account_names",
    "bound_service_account_namespaces",
    "bound_service_account_namespace_selector",
    "token_policies",
    "policies",
    "token_ttl",
    "ttl",
    "token_max_ttl",
    "max_ttl",
    "token_period",
    "token_num_uses",
    "token_bound_cidrs",
    "token_type",
    "token_no_default_policy",
    "token_explicit_max_ttl",
    "audience",
    "alias_name_source",
    "name",
    "token_polices",
    "unknown",
];

/// Scalars that hit the parsers' interesting cases: names, patterns, durations, CIDRs, labels.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e12..1.0e12f64).prop_map(Value::from),
        prop::sample::select(vec![
            "app",
            "app-*",
            "*",
            "",
            " ",
            "a,b",
            "team-a, team-b",
            "1h",
            "90m",
            "1d",
            "0",
            "-5s",
            "10.0.0.1/32",
            "10.0.0.0/8, ::1/128",
            "300.1.1.1/8",
            "batch",
            "service",
            "default",
            "serviceaccount_uid",
            "serviceaccount_name",
            "vault",
            "Web",
            "é",
            "{\"matchLabels\": {\"team\": \"a\"}}",
            "{\"matchExpressions\": []}",
            "{",
            "[]",
        ])
        .prop_map(Value::from),
        "[a-z0-9*,. -]{0,12}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values a user would plausibly write for `key` (so that many entries are valid).
fn plausible(key: &'static str) -> BoxedStrategy<Value> {
    let pick = |items: Vec<Value>| prop::sample::select(items).boxed();
    match key {
        "bound_service_account_names" => prop::collection::vec(
            prop::sample::select(vec!["app", "app-*", "*", "web", "vault-agent"]),
            1..3,
        )
        .prop_map(|v| json!(v))
        .boxed(),
        "bound_service_account_namespaces" => prop::collection::vec(
            prop::sample::select(vec!["team-a", "default", "*", "team-*"]),
            1..3,
        )
        .prop_map(|v| json!(v))
        .boxed(),
        "token_policies" | "policies" => prop_oneof![
            prop::collection::vec(
                prop::sample::select(vec!["p1", "default", "team-read"]),
                0..3
            )
            .prop_map(|v| json!(v)),
            Just(json!("p1, p2")),
        ]
        .boxed(),
        "token_ttl"
        | "ttl"
        | "token_max_ttl"
        | "max_ttl"
        | "token_period"
        | "token_explicit_max_ttl" => pick(vec![
            json!("1h"),
            json!("90m"),
            json!(3600),
            json!("0"),
            json!("1d"),
            json!(0),
        ]),
        "token_num_uses" => pick(vec![json!(0), json!(5), json!("3")]),
        "token_bound_cidrs" => pick(vec![
            json!(["10.0.0.0/8"]),
            json!("10.0.0.1/32, 10.1.0.0/16"),
            json!([]),
        ]),
        "token_type" => pick(vec![json!("default"), json!("batch"), json!("service")]),
        "token_no_default_policy" => pick(vec![json!(true), json!(false)]),
        "audience" => pick(vec![json!("vault"), json!("")]),
        "alias_name_source" => pick(vec![
            json!("serviceaccount_uid"),
            json!("serviceaccount_name"),
        ]),
        "bound_service_account_namespace_selector" => pick(vec![
            json!("{\"matchLabels\": {\"team\": \"a\"}}"),
            json!({"matchLabels": {"b": "2", "a": "1"}}),
        ]),
        _ => scalar().boxed(),
    }
}

/// A body with the two required bindings and some optional parameters, all plausible.
fn plausible_body() -> impl Strategy<Value = String> {
    let optional: Vec<&'static str> = KEYS[2..].to_vec();
    (
        plausible("bound_service_account_names"),
        plausible("bound_service_account_namespaces"),
        prop::sample::subsequence(optional, 0..4),
    )
        .prop_flat_map(|(names, namespaces, keys)| {
            let values: Vec<BoxedStrategy<Value>> = keys.iter().map(|k| plausible(k)).collect();
            (Just(names), Just(namespaces), Just(keys), values)
        })
        .prop_map(|(names, namespaces, keys, values)| {
            let mut obj = Map::new();
            obj.insert("bound_service_account_names".into(), names);
            obj.insert("bound_service_account_namespaces".into(), namespaces);
            for (k, v) in keys.into_iter().zip(values) {
                obj.insert(k.to_string(), v);
            }
            Value::Object(obj).to_string()
        })
}

/// An entry's body: plausible ones, objects over the known keys with any values, any text.
fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => plausible_body(),
        4 => prop::collection::btree_map(prop::sample::select(KEYS), value(), 0..8).prop_map(
            |m| {
                let obj: Map<String, Value> =
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                Value::Object(obj).to_string()
            }
        ),
        1 => ".{0,40}",
    ]
}

fn data() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-zA-Z0-9._-]{1,10}", body(), 0..5)
}

/// `text` as a YAML double-quoted scalar: printable ASCII as is, everything else escaped
/// (YAML refuses some characters raw, e.g. DEL).
fn yaml_quoted(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// The entries as a manifest `validate` reads (values as JSON strings, which YAML accepts).
fn manifest(data: &BTreeMap<String, String>) -> String {
    let mut text =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vault-auth-roles\n".to_string();
    text += if data.is_empty() {
        "data: {}\n"
    } else {
        "data:\n"
    };
    for (key, value) in data {
        text += &format!("  {key}: {}\n", yaml_quoted(value));
    }
    text
}

proptest! {
    // A failure prints its minimal input; nothing is written into the source tree.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parsing_never_panics_and_every_key_gets_a_verdict(data in data()) {
        let set = parse_roles(&data);
        for key in data.keys() {
            let name = key.to_lowercase();
            prop_assert!(
                set.roles.contains_key(&name) != set.rejected.contains(&name),
                "{key}: valid and rejected at once, or neither"
            );
        }
    }

    #[test]
    fn a_valid_body_is_normal_and_normalising_is_idempotent(data in data()) {
        for spec in parse_roles(&data).roles.values() {
            let once = normalize_vault_role(&spec.body);
            prop_assert_eq!(&normalize_vault_role(&once), &once);
            // What the controller writes compares equal to itself read back normalised.
            prop_assert!(role_changes(&spec.body, &once).is_empty(), "{}", spec.key);
        }
    }

    #[test]
    fn validate_gives_the_controllers_verdict(data in data()) {
        let set = parse_roles(&data).guard_policies(&PolicyGuard::default());
        let outcome = check_text(&manifest(&data), &PolicyGuard::default());
        let FileOutcome::Checked { configmaps, .. } = outcome else {
            return Err(TestCaseError::fail(format!("not checked: {outcome:?}")));
        };
        prop_assert_eq!(configmaps.len(), 1);
        let report = &configmaps[0];
        let mut valid: Vec<String> = set.roles.keys().cloned().collect();
        valid.sort();
        let mut rejected: Vec<String> = set.rejected.iter().cloned().collect();
        rejected.sort();
        prop_assert_eq!(&report.valid_roles, &valid);
        prop_assert_eq!(&report.rejected, &rejected);
    }
}

/// The generator reaches valid entries often enough for the properties about them to mean
/// something (not only rejections).
#[test]
fn the_generator_makes_valid_entries_too() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut entries, mut valid) = (0, 0);
    for _ in 0..512 {
        let data = data().new_tree(&mut runner).unwrap().current();
        entries += data.len();
        valid += parse_roles(&data).roles.len();
    }
    assert!(valid * 20 >= entries, "{valid} valid of {entries} entries");
}
