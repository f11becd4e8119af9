//! Proof against the real server (OpenBao 2.7.2 or HashiCorp Vault 1.21, `server -dev`) that a
//! role body built by `parse_roles` for that server (`RoleSet::for_server`, with the parameters
//! its mount describes), written and read back, normalises to exactly what was written — so the
//! controller never rewrites an unchanged role — and that a changed field shows as exactly that
//! field. Also pins how Vault treats a full body and a partial body on update, and that the
//! server never ignores a parameter of a body the controller builds.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use testkit::{TestVault, VaultKind};
use vault_auth_kubernetes::roles::{RoleSpec, ServerParams, diff_role, parse_roles, role_changes};
use vault_auth_kubernetes::vault::role_parameters_from_help;

const MOUNT: &str = "auth/kubernetes/rt";

/// Dev servers started at the same moment race on renaming `~/.vault-token.tmp` and one exits
/// ("Error initializing Dev mode"); starting them one at a time avoids that.
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server with a kubernetes auth method at [`MOUNT`], and the role parameters it accepts.
async fn bao_with_mount() -> (TestVault, ServerParams) {
    let bao = {
        let _one_at_a_time = STARTING.lock().await;
        TestVault::start().await
    };
    let r = bao
        .request(
            "POST",
            "sys/auth/kubernetes/rt",
            Some(json!({"type": "kubernetes"})),
        )
        .await;
    assert_eq!(r.status, 204, "enable mount: {:?}", r.body);
    let help = bao
        .request("GET", &format!("{MOUNT}/role/x?help=1"), None)
        .await;
    let names = role_parameters_from_help(&help.body).expect("the role endpoint describes itself");
    (bao, ServerParams::from_names(&names))
}

/// Warnings a server may give on a role write that do not mean a parameter was dropped:
/// HashiCorp Vault advises an audience on every role without one.
fn harmless(warning: &str) -> bool {
    warning.contains("does not have an audience configured")
}

/// The valid RoleSpec of a single ConfigMap entry, as the controller builds it for `server`.
fn spec(server: &ServerParams, key: &str, body: &str) -> RoleSpec {
    let set =
        parse_roles(&BTreeMap::from([(key.to_string(), body.to_string())])).for_server(server);
    assert!(!set.has_errors(), "{key}: {body}: {:?}", set.findings);
    set.roles.into_values().next().expect("one valid role")
}

/// Writes a role; the server must take every parameter (no "ignored these unrecognized
/// parameters" warning, which HashiCorp Vault gives with a 200 instead of a 204).
async fn write(bao: &TestVault, name: &str, body: &Map<String, Value>) {
    let r = bao
        .request(
            "POST",
            &format!("{MOUNT}/role/{name}"),
            Some(Value::Object(body.clone())),
        )
        .await;
    assert!(
        r.status == 204 || r.status == 200,
        "write {name}: {:?}",
        r.body
    );
    let warnings: Vec<&str> = r.body["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let unexpected: Vec<&&str> = warnings.iter().filter(|w| !harmless(w)).collect();
    assert!(unexpected.is_empty(), "write {name} warned: {:?}", r.body);
}

async fn read(bao: &TestVault, name: &str) -> Map<String, Value> {
    let r = bao
        .request("GET", &format!("{MOUNT}/role/{name}"), None)
        .await;
    assert_eq!(r.status, 200, "read {name}: {:?}", r.body);
    r.body["data"].as_object().cloned().expect("role data")
}

/// Varied entries: every parameter, lists as strings and arrays, duration strings, deprecated
/// aliases, the selector as object, JSON string and YAML string, capitals in the key.
const ENTRIES: &[(&str, &str)] = &[
    (
        "minimal",
        r#"{"bound_service_account_names": ["vault-agent-injector"],
            "bound_service_account_namespaces": ["default"]}"#,
    ),
    (
        "every-param",
        r#"{"bound_service_account_names": ["a", "b"],
            "bound_service_account_namespaces": ["ns1", "team-*"],
            "bound_service_account_namespace_selector": {"matchLabels": {"team": "x", "env": "prod"}},
            "audience": "vault",
            "alias_name_source": "serviceaccount_name",
            "token_policies": ["p1", "p2"],
            "token_ttl": "1h30m",
            "token_max_ttl": "1d",
            "token_explicit_max_ttl": 172800,
            "token_period": "90s",
            "token_num_uses": 5,
            "token_no_default_policy": true,
            "token_bound_cidrs": ["10.0.0.0/8", "192.168.1.7/32", "2001:DB8::/32", "::1/128"],
            "token_type": "service"}"#,
    ),
    (
        "strings",
        r#"{"bound_service_account_names": "a, b",
            "bound_service_account_namespaces": "ns1,ns2",
            "token_policies": " p1 ,p2",
            "token_bound_cidrs": "10.0.0.0/8, ::ffff:10.1.2.3",
            "token_ttl": "3600", "token_max_ttl": "2h", "token_num_uses": "2",
            "token_no_default_policy": "false", "token_type": ""}"#,
    ),
    (
        "selector-json-string",
        r#"{"bound_service_account_names": ["sa"],
            "bound_service_account_namespace_selector": "{\"matchLabels\": {\"b\": \"2\", \"a\": \"1\"}}"}"#,
    ),
    (
        "selector-yaml-string",
        r#"{"bound_service_account_names": ["sa"],
            "bound_service_account_namespace_selector": "matchLabels:\n  team: blue\n"}"#,
    ),
    (
        "deprecated",
        r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["ns"],
            "policies": "old", "ttl": "10m", "max_ttl": "20m", "period": 0,
            "num_uses": 0, "bound_cidrs": ["10.0.0.1"]}"#,
    ),
    (
        "MixedCase.Role",
        r#"{"bound_service_account_names": ["*"], "bound_service_account_namespaces": ["ns"],
            "token_strictly_bind_ip": true, "token_type": "batch", "token_ttl": 60}"#,
    ),
    (
        "batch",
        r#"{"bound_service_account_names": ["app-*"], "bound_service_account_namespaces": ["*"],
            "token_type": "batch", "token_explicit_max_ttl": "1h", "token_policies": []}"#,
    ),
];

#[tokio::test]
async fn written_roles_read_back_equal() {
    let (bao, server) = bao_with_mount().await;
    for (key, body) in ENTRIES {
        let set =
            parse_roles(&BTreeMap::from([(key.to_string(), body.to_string())])).for_server(&server);
        if !server.accepts("token_strictly_bind_ip") && body.contains("token_strictly_bind_ip") {
            // A server that would ignore the parameter gets the entry refused, not weakened.
            assert!(set.has_errors(), "{key} accepted for {}", bao.kind().name());
            continue;
        }
        let spec = spec(&server, key, body);
        write(&bao, &spec.name, &spec.body).await;
        let answer = read(&bao, &spec.name).await;
        let changes = role_changes(&spec.body, &answer);
        assert!(changes.is_empty(), "{key}: {changes:#?}\nread: {answer:#?}");
        // Without normalisation an answer without audience would differ (Vault leaves an
        // empty audience out): the comparison above is not trivially true.
        if !answer.contains_key("audience") {
            assert!(!diff_role(&spec.body, &answer).is_empty(), "{key}");
        }
    }
    // Vault holds a capitalised key under its lowercased name, as the RoleSpec says.
    let upper = spec(
        &server,
        "Upper.Case",
        r#"{"bound_service_account_names": ["*"], "bound_service_account_namespaces": ["ns"]}"#,
    );
    write(&bao, "Upper.Case", &upper.body).await;
    let list = bao.request("LIST", &format!("{MOUNT}/role"), None).await;
    assert!(
        list.body["data"]["keys"]
            .as_array()
            .unwrap()
            .contains(&json!("upper.case")),
        "{:?}",
        list.body
    );
}

#[tokio::test]
async fn a_changed_field_shows_as_exactly_that_field() {
    let (bao, server) = bao_with_mount().await;
    let base = json!({
        "bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["ns"],
        "token_policies": ["p"], "token_ttl": "1h", "audience": "a"
    });
    // (parameter changed or added as the ConfigMap writes it, field that must differ)
    let changes = [
        ("token_policies", json!(["p", "q"]), "token_policies"),
        ("token_policies", json!("q, p"), "token_policies"),
        ("token_ttl", json!("2h"), "token_ttl"),
        ("ttl", json!(7200), "token_ttl"),
        ("audience", json!("b"), "audience"),
        (
            "bound_service_account_namespaces",
            json!("ns, ns2"),
            "bound_service_account_namespaces",
        ),
        (
            "bound_service_account_names",
            json!(["sa2"]),
            "bound_service_account_names",
        ),
        (
            "bound_service_account_namespace_selector",
            json!({"matchLabels": {"a": "b"}}),
            "bound_service_account_namespace_selector",
        ),
        ("token_type", json!("batch"), "token_type"),
        (
            "token_no_default_policy",
            json!(true),
            "token_no_default_policy",
        ),
        (
            "token_bound_cidrs",
            json!("10.0.0.0/8"),
            "token_bound_cidrs",
        ),
        ("token_num_uses", json!(1), "token_num_uses"),
        ("token_period", json!("5m"), "token_period"),
        ("token_max_ttl", json!("3h"), "token_max_ttl"),
        (
            "token_explicit_max_ttl",
            json!(60),
            "token_explicit_max_ttl",
        ),
        (
            "alias_name_source",
            json!("serviceaccount_name"),
            "alias_name_source",
        ),
        (
            "token_strictly_bind_ip",
            json!(true),
            "token_strictly_bind_ip",
        ),
    ];
    for (i, (param, value, field)) in changes.into_iter().enumerate() {
        if !server.accepts(field) {
            continue; // not a parameter of this server (covered by written_roles_read_back_equal)
        }
        let name = format!("r{i}");
        let before = spec(&server, &name, &base.to_string());
        write(&bao, &name, &before.body).await;
        let mut after_obj = base.as_object().cloned().unwrap();
        if param == "ttl" {
            after_obj.remove("token_ttl");
        }
        after_obj.insert(param.to_string(), value);
        let after_body = Value::Object(after_obj).to_string();
        let after = spec(&server, &name, &after_body);
        let diff = role_changes(&after.body, &read(&bao, &name).await);
        let fields: Vec<_> = diff.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, [field], "{after_body}: {diff:#?}");
        assert_eq!(diff[0].to, after.body[field]);
        assert_eq!(diff[0].from, before.body[field]);
        write(&bao, &name, &after.body).await;
        let again = role_changes(&after.body, &read(&bao, &name).await);
        assert!(again.is_empty(), "{after_body}: {again:#?}");
    }
}

#[tokio::test]
async fn a_full_body_resets_what_the_entry_no_longer_sets() {
    let (bao, server) = bao_with_mount().await;
    let rich = spec(
        &server,
        "reset",
        r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["ns"],
            "bound_service_account_namespace_selector": {"matchLabels": {"a": "b"}},
            "token_ttl": "1h", "token_max_ttl": "2h", "token_policies": ["p"], "audience": "aud",
            "alias_name_source": "serviceaccount_name", "token_bound_cidrs": ["10.0.0.0/8"],
            "token_num_uses": 3, "token_no_default_policy": true, "token_type": "service"}"#,
    );
    write(&bao, "reset", &rich.body).await;
    let plain = spec(
        &server,
        "reset",
        r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["ns"]}"#,
    );
    // Every field the plain entry leaves out differs from what Vault now holds...
    let diff = role_changes(&plain.body, &read(&bao, "reset").await);
    let fields: Vec<_> = diff.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "alias_name_source",
            "audience",
            "bound_service_account_namespace_selector",
            "token_bound_cidrs",
            "token_max_ttl",
            "token_no_default_policy",
            "token_num_uses",
            "token_policies",
            "token_ttl",
            "token_type",
        ]
    );
    // ...and writing its full body really resets them to Vault's defaults.
    write(&bao, "reset", &plain.body).await;
    let answer = read(&bao, "reset").await;
    assert!(role_changes(&plain.body, &answer).is_empty());
    assert_eq!(answer["token_ttl"], json!(0));
    assert_eq!(answer["token_policies"], json!([]));
    assert_eq!(answer["alias_name_source"], json!("serviceaccount_uid"));
    assert!(
        !answer.contains_key("audience"),
        "empty audience is not returned"
    );
}

#[tokio::test]
async fn a_partial_body_keeps_fields_except_the_namespace_selector() {
    // Why the controller always sends the full body: Vault keeps what an update leaves out,
    // except the selector, which it resets.
    let (bao, server) = bao_with_mount().await;
    let rich = spec(
        &server,
        "partial",
        r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["ns"],
            "bound_service_account_namespace_selector": {"matchLabels": {"a": "b"}},
            "token_ttl": "1h", "token_policies": ["p"], "audience": "aud"}"#,
    );
    write(&bao, "partial", &rich.body).await;
    let r = bao
        .request(
            "POST",
            &format!("{MOUNT}/role/partial"),
            Some(json!({"bound_service_account_names": ["sa"]})),
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    let answer = read(&bao, "partial").await;
    assert_eq!(answer["token_ttl"], json!(3600));
    assert_eq!(answer["token_policies"], json!(["p"]));
    assert_eq!(answer["audience"], json!("aud"));
    assert_eq!(answer["bound_service_account_namespaces"], json!(["ns"]));
    assert_eq!(
        answer["bound_service_account_namespace_selector"],
        json!("")
    );
}

#[tokio::test]
async fn roles_written_with_deprecated_names_out_of_band_compare_equal() {
    let (bao, server) = bao_with_mount().await;
    let r = bao
        .request(
            "POST",
            &format!("{MOUNT}/role/legacy"),
            Some(json!({
                "bound_service_account_names": "sa", "bound_service_account_namespaces": "ns",
                "policies": ["p1"], "ttl": "1h", "max_ttl": 7200, "period": "0",
                "num_uses": 0, "bound_cidrs": "10.0.0.0/8"
            })),
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    let answer = read(&bao, "legacy").await;
    // Vault echoes the deprecated names it was given.
    assert_eq!(answer["policies"], json!(["p1"]));
    let current = spec(
        &server,
        "legacy",
        r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["ns"],
            "token_policies": ["p1"], "token_ttl": 3600, "token_max_ttl": "2h",
            "token_bound_cidrs": ["10.0.0.0/8"]}"#,
    );
    let diff = role_changes(&current.body, &answer);
    assert!(diff.is_empty(), "{diff:#?}");
}

#[tokio::test]
async fn vault_itself_refuses_what_validation_rejects() {
    // Rules that mirror Vault's own checks: the raw entry, sent as the original tool did,
    // fails in the server too, so rejecting it up front loses nothing and explains more.
    let (bao, server) = bao_with_mount().await;
    let ns = r#""bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["ns"]"#;
    let cases = [
        r#"{"bound_service_account_names": [], "bound_service_account_namespaces": ["ns"]}"#.to_string(),
        r#"{"bound_service_account_names": ["sa"]}"#.to_string(),
        r#"{"bound_service_account_names": ["sa", "*"], "bound_service_account_namespaces": ["ns"]}"#.to_string(),
        format!(r#"{{{ns}, "token_ttl": "2h", "token_max_ttl": "1h"}}"#),
        format!(r#"{{{ns}, "token_type": "batch", "token_period": 60}}"#),
        format!(r#"{{{ns}, "token_type": "batch", "token_num_uses": 1}}"#),
        format!(r#"{{{ns}, "token_type": "default-service"}}"#),
        format!(r#"{{{ns}, "token_strictly_bind_ip": true, "token_bound_cidrs": ["10.0.0.0/8"]}}"#),
        format!(r#"{{{ns}, "token_ttl": "2w"}}"#),
        format!(r#"{{{ns}, "token_ttl": -5}}"#),
        format!(r#"{{{ns}, "token_num_uses": 1.5}}"#),
        format!(r#"{{{ns}, "token_bound_cidrs": ["bad"]}}"#),
        format!(r#"{{{ns}, "alias_name_source": "x"}}"#),
        format!(r#"{{{ns}, "bound_service_account_namespace_selector": "{{\"matchExpressions\": [{{\"key\": \"a\", \"operator\": \"Exists\"}}]}}"}}"#),
    ];
    for (i, body) in cases.iter().enumerate() {
        let key = format!("v{i}");
        let set = parse_roles(&BTreeMap::from([(key.clone(), body.clone())]));
        assert!(set.has_errors(), "validation accepted {body}");
        let raw: Value = serde_json::from_str(body).expect("test body is JSON");
        let r = bao
            .request("POST", &format!("{MOUNT}/role/{key}"), Some(raw))
            .await;
        // One rule is stricter than HashiCorp Vault, on purpose: it ignores
        // token_strictly_bind_ip, so the entry would grant more than written (for this server
        // `for_server` rejects it; parse_roles already does for this case).
        let stricter_than_vault =
            body.contains("token_strictly_bind_ip") && !server.accepts("token_strictly_bind_ip");
        if bao.kind() == VaultKind::Vault && stricter_than_vault {
            assert!(r.status < 300, "{body}: {:?}", r.body);
            continue;
        }
        assert_eq!(
            r.status,
            400,
            "{} accepted {body}: {:?}",
            bao.kind().name(),
            r.body
        );
    }
}
