//! desired_service_accounts: which ServiceAccounts the valid roles ask for, table-driven.

use std::collections::BTreeMap;

use vault_auth_kubernetes::desired::{NamespaceInfo, ServiceAccountRef, desired_service_accounts};
use vault_auth_kubernetes::role_names::RoleNames;
use vault_auth_kubernetes::roles::{Severity, parse_roles};

fn ns(name: &str, labels: &[(&str, &str)]) -> NamespaceInfo {
    NamespaceInfo::new(
        name,
        labels.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

fn cluster() -> Vec<NamespaceInfo> {
    let mut gone = ns("team-gone", &[("team", "blue")]);
    gone.terminating = true;
    vec![
        ns("default", &[]),
        ns("kube-system", &[]),
        ns("team-a", &[("team", "blue"), ("env", "prod")]),
        ns("team-b", &[("team", "red"), ("env", "prod")]),
        ns("teams", &[]),
        gone,
    ]
}

/// The ServiceAccounts (as "ns/name") wanted by one entry with body `body`.
fn wanted(body: &str) -> (Vec<String>, Vec<String>) {
    let roles = parse_roles(&BTreeMap::from([("r".to_string(), body.to_string())]));
    assert!(!roles.has_errors(), "{body}: {:?}", roles.findings);
    let desired = desired_service_accounts(&roles, &cluster());
    for wanting in desired.accounts.values() {
        assert_eq!(wanting.iter().collect::<Vec<_>>(), ["r"]);
    }
    (
        desired.accounts.keys().map(ToString::to_string).collect(),
        desired.findings.iter().map(ToString::to_string).collect(),
    )
}

#[test]
fn bound_namespaces_and_names_expand_against_the_cluster() {
    let cases: &[(&str, &[&str])] = &[
        // Exact namespaces: only those that exist.
        (
            r#"{"bound_service_account_names": ["vault-agent-injector", "default"],
                "bound_service_account_namespaces": ["kube-system", "default", "missing"]}"#,
            &[
                "default/default",
                "default/vault-agent-injector",
                "kube-system/default",
                "kube-system/vault-agent-injector",
            ],
        ),
        // A prefix pattern: team-a and team-b, not "teams"; the terminating one gets nothing.
        (
            r#"{"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["team-*"]}"#,
            &["team-a/app", "team-b/app"],
        ),
        // "*": every namespace that is not terminating.
        (
            r#"{"bound_service_account_names": "app", "bound_service_account_namespaces": "*"}"#,
            &[
                "default/app",
                "kube-system/app",
                "team-a/app",
                "team-b/app",
                "teams/app",
            ],
        ),
        // Selector: every matchLabels pair must match.
        (
            r#"{"bound_service_account_names": ["app"],
                "bound_service_account_namespace_selector": {"matchLabels": {"team": "blue", "env": "prod"}}}"#,
            &["team-a/app"],
        ),
        (
            r#"{"bound_service_account_names": ["app"],
                "bound_service_account_namespace_selector": "{\"matchLabels\": {\"env\": \"prod\"}}"}"#,
            &["team-a/app", "team-b/app"],
        ),
        // Namespaces and selector are ORed, as in Vault.
        (
            r#"{"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["default"],
                "bound_service_account_namespace_selector": {"matchLabels": {"team": "red"}}}"#,
            &["default/app", "team-b/app"],
        ),
    ];
    for (body, want) in cases {
        let (accounts, findings) = wanted(body);
        assert_eq!(accounts, *want, "{body}");
        assert!(findings.is_empty(), "{body}: {findings:?}");
    }
}

#[test]
fn name_patterns_create_nothing_and_warn() {
    let (accounts, findings) = wanted(
        r#"{"bound_service_account_names": ["app-*", "web"], "bound_service_account_namespaces": ["default"]}"#,
    );
    assert_eq!(accounts, ["default/web"]);
    assert_eq!(
        findings,
        [
            r#"key "r": field "bound_service_account_names": "app-*" is a pattern: Vault accepts matching ServiceAccounts, but none can be created for it"#
        ]
    );
    let (accounts, findings) = wanted(
        r#"{"bound_service_account_names": "*", "bound_service_account_namespaces": "default"}"#,
    );
    assert!(accounts.is_empty());
    assert_eq!(findings.len(), 1);
}

#[test]
fn roles_sharing_a_service_account_are_all_recorded() {
    let roles = parse_roles(&BTreeMap::from([
        (
            "a".to_string(),
            r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["default"]}"#
                .to_string(),
        ),
        (
            "B".to_string(),
            r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["default", "team-a"]}"#
                .to_string(),
        ),
    ]));
    let desired = desired_service_accounts(&roles, &cluster());
    let sa = |namespace: &str| ServiceAccountRef::new(namespace, "sa");
    let set = |names: &[&str]| RoleNames::new(names.iter().copied());
    assert_eq!(
        desired.accounts,
        BTreeMap::from([
            (sa("default"), set(&["a", "b"])),
            (sa("team-a"), set(&["b"]))
        ])
    );
    assert!(
        desired
            .findings
            .iter()
            .all(|f| f.severity == Severity::Warning)
    );
}

#[test]
fn rejected_entries_want_nothing() {
    let roles = parse_roles(&BTreeMap::from([(
        "bad".to_string(),
        r#"{"bound_service_account_names": ["sa"], "bound_service_account_namespaces": ["default"], "token_polices": "x"}"#
            .to_string(),
    )]));
    assert!(roles.rejected.contains("bad"));
    let desired = desired_service_accounts(&roles, &cluster());
    assert!(desired.accounts.is_empty());
    assert!(desired.findings.is_empty());
}

#[test]
fn service_account_refs_order_and_display() {
    let a = ServiceAccountRef {
        namespace: "a".into(),
        name: "z".into(),
    };
    let b = ServiceAccountRef {
        namespace: "b".into(),
        name: "a".into(),
    };
    assert!(a < b, "ordered by namespace first");
    assert_eq!(a.to_string(), "a/z");
}
