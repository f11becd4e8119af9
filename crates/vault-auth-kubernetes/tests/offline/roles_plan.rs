//! plan: from desired and observed state to actions, table-driven.

use std::collections::BTreeMap;

use serde_json::{Map, json};
use vault_auth_kubernetes::desired::{DesiredServiceAccounts, ServiceAccountRef};
use vault_auth_kubernetes::plan::{
    DesiredConfig, MountState, Observed, ObservedConfig, ObservedServiceAccount, Plan, PlanError,
    PlanInput, RoleAction, ServiceAccountAction, plan,
};
use vault_auth_kubernetes::role_names::RoleNames;
use vault_auth_kubernetes::roles::{RoleSet, parse_roles};
use vault_auth_kubernetes::secret::Secret;

const MOUNT: &str = "prod/eu1";
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.reviewer-secret-token";
const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";

fn config() -> DesiredConfig {
    DesiredConfig {
        kubernetes_host: "https://10.0.0.1:443".into(),
        kubernetes_ca_cert: CA.into(),
        token_reviewer_jwt: Secret::new(JWT),
    }
}

fn roles(entries: &[(&str, &str)]) -> RoleSet {
    parse_roles(
        &entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn entry(policies: &str) -> String {
    format!(
        r#"{{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["default"], "token_policies": {policies}}}"#
    )
}

/// Vault and Kubernetes exactly as `roles` and `desired` want them.
fn converged(roles: &RoleSet, desired: &DesiredServiceAccounts) -> Observed {
    Observed {
        mount: MountState::Kubernetes,
        config: Some(ObservedConfig {
            kubernetes_host: config().kubernetes_host,
            kubernetes_ca_cert: CA.into(),
            token_reviewer_jwt_set: true,
        }),
        last_written_fingerprint: Some(config().fingerprint(MOUNT)),
        vault_roles: roles
            .roles
            .iter()
            .map(|(name, spec)| (name.clone(), spec.body.clone()))
            .collect(),
        service_accounts: desired
            .accounts
            .iter()
            .map(|(sa, roles)| {
                let observed = ObservedServiceAccount {
                    managed: true,
                    roles: roles.clone(),
                };
                (sa.clone(), observed)
            })
            .collect::<BTreeMap<_, _>>()
            .into(),
    }
}

fn sa(namespace: &str, name: &str) -> ServiceAccountRef {
    ServiceAccountRef {
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn set(names: &[&str]) -> RoleNames {
    RoleNames::new(names.iter().copied())
}

fn run(
    roles: Option<&RoleSet>,
    desired: Option<&DesiredServiceAccounts>,
    observed: &Observed,
) -> Plan {
    let config = config();
    plan(&PlanInput {
        mount: MOUNT,
        fingerprint_scope: MOUNT,
        roles,
        empty_configmap_held: false,
        desired_service_accounts: desired,
        config: &config,
        observed,
    })
    .expect("plan")
}

/// Desired ServiceAccounts from ("role1,role2", [(namespace, name), ...]) rows.
fn desired_of(rows: &[(&str, &[(&str, &str)])]) -> DesiredServiceAccounts {
    let mut accounts = BTreeMap::new();
    for (roles, refs) in rows {
        for (namespace, name) in *refs {
            accounts.insert(
                sa(namespace, name),
                roles.split(',').map(String::from).collect(),
            );
        }
    }
    DesiredServiceAccounts {
        accounts,
        findings: Vec::new(),
    }
}

#[test]
fn converged_state_plans_nothing() {
    let roles = roles(&[("web", &entry(r#"["p"]"#)), ("db", &entry(r#""a,b""#))]);
    let desired = desired_of(&[("db,web", &[("default", "sa")])]);
    let observed = converged(&roles, &desired);
    let plan = run(Some(&roles), Some(&desired), &observed);
    assert!(plan.is_empty(), "{plan:#?}");
    assert!(plan.notes.is_empty(), "{plan:#?}");
}

#[test]
fn a_missing_mount_is_enabled_configured_and_filled() {
    let roles = roles(&[("web", &entry("[]")), ("db", &entry("[]"))]);
    let desired = desired_of(&[("db,web", &[("default", "sa")])]);
    let mut observed = converged(&roles, &desired);
    observed.mount = MountState::Missing;
    observed.config = None;
    // A stale listing must not turn into updates: a missing mount has no roles.
    observed.vault_roles.insert("old".into(), Map::new().into());
    let plan = run(Some(&roles), Some(&desired), &observed);
    assert!(plan.enable_mount);
    assert_eq!(
        plan.write_config.unwrap().reasons,
        ["the auth method is new"]
    );
    let created: Vec<_> = plan
        .roles
        .iter()
        .map(|a| match a {
            RoleAction::Create { name, body } => {
                assert_eq!(body, &roles.roles[name].body);
                name.as_str()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(created, ["db", "web"]);
    assert!(plan.service_accounts.is_empty());
}

#[test]
fn a_foreign_auth_method_stops_everything() {
    let roles = roles(&[("web", &entry("[]"))]);
    let mut observed = converged(&roles, &DesiredServiceAccounts::default());
    observed.mount = MountState::Foreign {
        kind: "approle".into(),
    };
    let config = config();
    let err = plan(&PlanInput {
        mount: MOUNT,
        fingerprint_scope: MOUNT,
        roles: Some(&roles),
        empty_configmap_held: false,
        desired_service_accounts: None,
        config: &config,
        observed: &observed,
    })
    .unwrap_err();
    assert_eq!(
        err,
        PlanError::ForeignMount {
            path: "kubernetes/prod/eu1".into(),
            kind: "approle".into()
        }
    );
    assert_eq!(
        err.to_string(),
        r#"auth method at auth/kubernetes/prod/eu1 is of type "approle", not "kubernetes": refusing to touch it"#
    );
}

#[test]
fn config_is_written_only_when_something_differs() {
    type Tweak = fn(&mut Observed);
    let cases: &[(&str, Tweak, &[&str])] = &[
        ("converged", |_| {}, &[]),
        (
            "host",
            |o| o.config.as_mut().unwrap().kubernetes_host = "https://old:6443".into(),
            &[r#"kubernetes_host differs: "https://old:6443" -> "https://10.0.0.1:443""#],
        ),
        (
            "CA whitespace only",
            |o| {
                o.config.as_mut().unwrap().kubernetes_ca_cert =
                    format!("  {}\r\n\r\n", CA.replace('\n', "\r\n"))
            },
            &[],
        ),
        (
            "CA",
            |o| {
                o.config.as_mut().unwrap().kubernetes_ca_cert =
                    "-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----".into()
            },
            &["kubernetes_ca_cert differs"],
        ),
        (
            "JWT not set",
            |o| o.config.as_mut().unwrap().token_reviewer_jwt_set = false,
            &["token_reviewer_jwt is not set in Vault"],
        ),
        (
            "no record",
            |o| o.last_written_fingerprint = None,
            &[
                "this tool has no record of writing it (written by hand, or by the original tool): written once so Vault surely holds the current reviewer token",
            ],
        ),
        (
            "JWT changed",
            |o| {
                let mut old = config();
                old.token_reviewer_jwt = Secret::new("old-token");
                o.last_written_fingerprint = Some(old.fingerprint(MOUNT));
            },
            &["config inputs changed since the last write (reviewer token, host or CA)"],
        ),
        ("no config", |o| o.config = None, &["Vault holds no config"]),
    ];
    let roles = RoleSet::default();
    for (what, tweak, want) in cases {
        let mut observed = converged(&roles, &DesiredServiceAccounts::default());
        tweak(&mut observed);
        let plan = run(Some(&roles), None, &observed);
        let reasons = plan.write_config.map(|c| c.reasons).unwrap_or_default();
        assert_eq!(reasons, *want, "{what}");
        assert!(!plan.enable_mount);
    }
}

#[test]
fn fingerprint_covers_every_input_and_hides_the_jwt() {
    let base = config();
    let fp = base.fingerprint(MOUNT);
    assert_eq!(fp.len(), 64);
    assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(fp, config().fingerprint(MOUNT), "deterministic");
    let mut variants = vec![base.fingerprint("prod/eu2")];
    let mut c = config();
    c.kubernetes_host.push('x');
    variants.push(c.fingerprint(MOUNT));
    let mut c = config();
    c.kubernetes_ca_cert = "other".into();
    variants.push(c.fingerprint(MOUNT));
    let mut c = config();
    c.token_reviewer_jwt = Secret::new("other");
    variants.push(c.fingerprint(MOUNT));
    for v in &variants {
        assert_ne!(v, &fp);
    }
    // Field boundaries count: moving a character from host to CA changes the fingerprint.
    let a = DesiredConfig {
        kubernetes_host: "ab".into(),
        kubernetes_ca_cert: "c".into(),
        token_reviewer_jwt: Secret::new("j"),
    };
    let b = DesiredConfig {
        kubernetes_host: "a".into(),
        kubernetes_ca_cert: "bc".into(),
        token_reviewer_jwt: Secret::new("j"),
    };
    assert_ne!(a.fingerprint(MOUNT), b.fingerprint(MOUNT));
    assert!(!format!("{base:?}").contains(JWT));
}

#[test]
fn roles_are_created_updated_and_deleted() {
    let roles = roles(&[
        ("new", &entry("[]")),
        ("same", &entry(r#"["p"]"#)),
        ("changed", &entry(r#"["p", "q"]"#)),
        ("bad", "{"),
    ]);
    let mut observed = converged(&roles, &DesiredServiceAccounts::default());
    observed.vault_roles.remove("new");
    let mut old = Map::clone(&roles.roles["changed"].body);
    old.insert("token_policies".into(), json!(["p"]));
    // Vault's answer shape: durations may come back as seconds, audience absent, echoes...
    old.remove("audience");
    old.insert("policies".into(), json!(["p"]));
    observed.vault_roles.insert("changed".into(), old.into());
    observed
        .vault_roles
        .insert("gone".into(), Map::new().into());
    observed.vault_roles.insert("bad".into(), Map::new().into());
    let plan = run(
        Some(&roles),
        Some(&DesiredServiceAccounts::default()),
        &observed,
    );
    let summary: Vec<String> = plan
        .roles
        .iter()
        .map(|a| match a {
            RoleAction::Create { name, .. } => format!("create {name}"),
            RoleAction::Update { name, changes, .. } => format!(
                "update {name}: {}",
                changes
                    .iter()
                    .map(|c| format!("{} {} -> {}", c.field, c.from, c.to))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            RoleAction::Delete { name } => format!("delete {name}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            r#"update changed: token_policies ["p"] -> ["p","q"]"#,
            "delete gone",
            "create new",
        ]
    );
    assert_eq!(
        plan.notes,
        [r#"role "bad" left as it is: its ConfigMap entry is rejected"#]
    );
}

#[test]
fn without_a_configmap_nothing_is_deleted() {
    let observed = Observed {
        mount: MountState::Kubernetes,
        config: None,
        last_written_fingerprint: None,
        vault_roles: BTreeMap::from([("web".to_string(), Map::new().into())]),
        service_accounts: BTreeMap::from([(
            sa("default", "sa"),
            ObservedServiceAccount {
                managed: true,
                roles: set(&["web"]),
            },
        )])
        .into(),
    };
    let desired = DesiredServiceAccounts::default();
    let plan = run(None, Some(&desired), &observed);
    assert!(plan.roles.is_empty());
    assert!(plan.service_accounts.is_empty());
    assert_eq!(
        plan.notes,
        ["ConfigMap missing or unreadable: no role or ServiceAccount changed or deleted"]
    );
    // The config is still kept right: it does not depend on the ConfigMap.
    assert!(plan.write_config.is_some());
}

#[test]
fn service_accounts_follow_the_roles() {
    let roles = roles(&[("web", &entry("[]")), ("db", &entry("[]")), ("bad", "{")]);
    let desired = desired_of(&[
        ("web", &[("default", "new"), ("team-a", "user-owned")]),
        ("db,web", &[("default", "shared")]),
        ("web", &[("default", "mixed")]),
    ]);
    let managed = |roles: &[&str]| ObservedServiceAccount {
        managed: true,
        roles: set(roles),
    };
    let mut observed = converged(&roles, &DesiredServiceAccounts::default());
    observed.service_accounts = BTreeMap::from([
        (sa("default", "shared"), managed(&["web"])),
        (sa("default", "mixed"), managed(&["bad"])),
        (sa("default", "stale"), managed(&["web"])),
        (sa("default", "protected"), managed(&["bad", "web"])),
        (sa("default", "untracked"), managed(&[])),
        (
            sa("team-a", "user-owned"),
            ObservedServiceAccount {
                managed: false,
                roles: RoleNames::default(),
            },
        ),
        (
            sa("default", "default"),
            ObservedServiceAccount {
                managed: false,
                roles: RoleNames::default(),
            },
        ),
    ])
    .into();
    let plan = run(Some(&roles), Some(&desired), &observed);
    assert_eq!(
        plan.service_accounts,
        [
            ServiceAccountAction::SetRoles {
                sa: sa("default", "mixed"),
                roles: set(&["bad", "web"]),
            },
            ServiceAccountAction::Create {
                sa: sa("default", "new"),
                roles: set(&["web"]),
            },
            ServiceAccountAction::SetRoles {
                sa: sa("default", "shared"),
                roles: set(&["db", "web"]),
            },
            ServiceAccountAction::Delete {
                sa: sa("default", "stale")
            },
        ]
    );
    assert_eq!(
        plan.notes,
        [
            r#"default/protected kept: it belongs to rejected role(s) ["bad"]"#,
            r#"default/untracked kept as it is: it records no roles and entries ["bad"] are rejected"#,
            r#"team-a/user-owned exists without the vak-managed: "true" annotation: left untouched"#,
        ]
    );
}

#[test]
fn service_accounts_of_the_original_tool_are_adopted_once_nothing_is_rejected() {
    // The original annotated vak-managed but recorded no roles.
    let unrecorded = ObservedServiceAccount {
        managed: true,
        roles: RoleNames::default(),
    };
    let desired = desired_of(&[("web", &[("default", "wanted")])]);
    let mut observed = converged(&RoleSet::default(), &DesiredServiceAccounts::default());
    observed.service_accounts = BTreeMap::from([
        (sa("default", "wanted"), unrecorded.clone()),
        (sa("default", "unwanted"), unrecorded),
    ])
    .into();
    let valid = roles(&[("web", &entry("[]"))]);
    let plan = run(Some(&valid), Some(&desired), &observed);
    assert_eq!(
        plan.service_accounts,
        [
            ServiceAccountAction::Delete {
                sa: sa("default", "unwanted")
            },
            ServiceAccountAction::SetRoles {
                sa: sa("default", "wanted"),
                roles: set(&["web"]),
            },
        ]
    );
    let with_rejected = roles(&[("web", &entry("[]")), ("bad", "{")]);
    let plan = run(Some(&with_rejected), Some(&desired), &observed);
    assert!(plan.service_accounts.is_empty(), "{plan:#?}");
    assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
}

#[test]
fn the_plan_serialises_without_the_jwt() {
    let roles = roles(&[("web", &entry(r#"["p"]"#))]);
    let desired = desired_of(&[("web", &[("default", "sa")])]);
    let mut observed = converged(&roles, &desired);
    observed.mount = MountState::Missing;
    observed.service_accounts = Default::default();
    let plan = run(Some(&roles), Some(&desired), &observed);
    let value = serde_json::to_value(&plan).unwrap();
    assert_eq!(value["enable_mount"], json!(true));
    assert_eq!(value["roles"][0]["action"], json!("create"));
    assert_eq!(value["roles"][0]["name"], json!("web"));
    assert_eq!(value["roles"][0]["body"]["token_policies"], json!(["p"]));
    assert_eq!(
        value["service_accounts"],
        json!([{"action": "create", "sa": {"namespace": "default", "name": "sa"}, "roles": ["web"]}])
    );
    let text = format!("{value} {plan:?}");
    assert!(!text.contains(JWT));
    let config = config();
    let input = PlanInput {
        mount: MOUNT,
        fingerprint_scope: MOUNT,
        roles: Some(&roles),
        empty_configmap_held: false,
        desired_service_accounts: Some(&desired),
        config: &config,
        observed: &observed,
    };
    assert!(!format!("{input:?}").contains(JWT));
}

#[test]
fn the_plan_prints_one_line_per_action() {
    let roles = roles(&[("web", &entry(r#"["p", "q"]"#)), ("new", &entry("[]"))]);
    let desired = desired_of(&[("web", &[("default", "sa")])]);
    let mut observed = converged(&roles, &desired);
    observed.vault_roles.remove("new");
    observed
        .vault_roles
        .insert("gone".into(), Map::new().into());
    std::sync::Arc::make_mut(observed.vault_roles.get_mut("web").unwrap())
        .insert("token_policies".into(), json!(["p"]));
    observed.service_accounts = Default::default();
    observed.last_written_fingerprint = None;
    let plan = run(Some(&roles), Some(&desired), &observed);
    assert_eq!(
        plan.to_string(),
        "write config: this tool has no record of writing it (written by hand, or by the original tool): written once so Vault surely holds the current reviewer token\n\
         delete role gone\n\
         create role new\n\
         update role web\n\
         \x20 token_policies: [\"p\"] -> [\"p\",\"q\"]\n\
         create ServiceAccount default/sa (roles: web)\n"
    );
}
