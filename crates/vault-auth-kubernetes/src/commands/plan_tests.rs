//! Tests of `plan`'s report and rendering: realistic observations, snapshots of the output.

use std::collections::BTreeMap;

use crate::role_names::RoleNames;

use serde_json::json;

use super::*;
use crate::desired::{NamespaceInfo, ServiceAccountRef, desired_service_accounts};
use crate::plan::{DesiredConfig, Observed, ObservedConfig, ObservedServiceAccount};
use crate::reviewer_plan::plan_reviewer;
use crate::reviewer_plan::tests::{empty_snapshot, reviewer_in_place};
use crate::roles::parse_roles;
use crate::sync::Accounts;

fn namespaces(names: &[&str]) -> Vec<NamespaceInfo> {
    names
        .iter()
        .map(|n| NamespaceInfo {
            name: (*n).into(),
            labels: Default::default(),
            terminating: false,
            name_label: false,
        })
        .collect()
}

fn entries() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "default".to_string(),
            json!({
                "bound_service_account_names": ["vault-agent-injector"],
                "bound_service_account_namespaces": ["default", "kube-system"],
                "token_policies": ["test"]
            })
            .to_string(),
        ),
        (
            "web".to_string(),
            json!({
                "bound_service_account_names": ["web", "web-*"],
                "bound_service_account_namespaces": ["team-a"],
                "token_policies": ["web-read", "web-write"],
                "token_ttl": "1h"
            })
            .to_string(),
        ),
        (
            "broken".to_string(),
            json!({"bound_service_account_names": ["x"], "token_polices": ["p"]}).to_string(),
        ),
    ])
}

/// Vault holds `web` (older policies) and `gone` (no longer listed); the cluster has a managed
/// `team-b/web` no role wants any more.
fn observation(mount: MountState) -> Observation {
    let roles = parse_roles(&entries());
    let desired =
        desired_service_accounts(&roles, &namespaces(&["default", "kube-system", "team-a"]));
    let old_web = json!({
        "bound_service_account_names": ["web", "web-*"],
        "bound_service_account_namespaces": ["team-a"],
        "token_policies": ["web-read"],
        "token_ttl": 3600
    });
    let vault_roles = match mount {
        MountState::Missing => BTreeMap::new(),
        _ => BTreeMap::from([
            (
                "web".to_string(),
                old_web.as_object().unwrap().clone().into(),
            ),
            (
                "gone".to_string(),
                json!({"bound_service_account_names": ["g"]})
                    .as_object()
                    .unwrap()
                    .clone()
                    .into(),
            ),
        ]),
    };
    let config = (mount == MountState::Kubernetes).then(|| ObservedConfig {
        kubernetes_host: "https://old.example:6443".into(),
        kubernetes_ca_cert: "CA".into(),
        token_reviewer_jwt_set: true,
    });
    // The managed team-b/web, which no role wants any more.
    let observed_accounts = BTreeMap::from([(
        ServiceAccountRef {
            namespace: "team-b".into(),
            name: "web".into(),
        },
        ObservedServiceAccount {
            managed: true,
            roles: RoleNames::new(["web"]),
        },
    )]);
    let roles_rejected = roles.rejected.clone();
    Observation {
        // The mount describes its parameters once it exists.
        role_params: (mount == MountState::Kubernetes).then(crate::roles::ServerParams::all),
        roles: Some(roles.into()),
        empty_configmap_held: false,
        service_accounts: Some(Accounts::of(&roles_rejected, desired, &observed_accounts).into()),
        config: DesiredConfig {
            kubernetes_host: "https://k8s.example:6443".into(),
            kubernetes_ca_cert: "CA".into(),
            token_reviewer_jwt: SecretString::new("eyJ.super.secret"),
        },
        observed: Observed {
            mount,
            config,
            last_written_fingerprint: None,
            vault_roles,
            service_accounts: observed_accounts.into(),
        },
    }
}

fn target() -> Target<'static> {
    Target {
        address: "https://vault.example:8200",
        vault_namespace: None,
        path: "auth/kubernetes/prod/eu1".into(),
        namespace: "vault-auth",
        source: "cluster".into(),
    }
}

fn report(mount: MountState, fresh_cluster: bool) -> PlanReport {
    let obs = observation(mount);
    let plan = obs.plan("prod/eu1", "scope").unwrap();
    let snapshot = if fresh_cluster {
        empty_snapshot()
    } else {
        reviewer_in_place()
    };
    let reviewer = plan_reviewer(&snapshot, "vault-auth", obs.roles.as_deref());
    PlanReport::new(target(), &obs, plan, reviewer)
}

#[test]
fn fresh_cluster_and_vault() {
    let r = report(MountState::Missing, true);
    assert!(r.changes_pending);
    let config = r.vault.write_config.as_ref().unwrap();
    assert!(
        config
            .reasons
            .iter()
            .any(|c| c.contains("token Secret is new")),
        "{config:?}"
    );
    insta::assert_snapshot!(render_text(&r, Style::default()));
}

#[test]
fn updates_deletes_and_a_field_level_diff() {
    let r = report(MountState::Kubernetes, false);
    let web = r.vault.roles.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.action, "update");
    assert_eq!(web.changes.len(), 1);
    assert_eq!(web.changes[0].field, "token_policies");
    insta::assert_snapshot!(render_text(&r, Style::default()));
}

#[test]
fn colour_marks_additions_changes_and_removals() {
    let text = render_text(
        &report(MountState::Kubernetes, false),
        Style { color: true },
    );
    assert!(text.contains("\x1b[33m~ update role web\x1b[0m"), "{text}");
    assert!(text.contains("\x1b[31m- delete role gone\x1b[0m"), "{text}");
    assert!(
        text.contains("\x1b[32m+ create role default\x1b[0m"),
        "{text}"
    );
}

#[test]
fn json_is_complete_and_never_holds_the_jwt() {
    let r = report(MountState::Kubernetes, false);
    let text = render_json(&r);
    assert!(!text.contains("eyJ"), "{text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["changes_pending"], true);
    assert_eq!(value["vault"]["mount"]["state"], "kubernetes");
    assert_eq!(value["vault"]["roles"][0]["action"], "create");
    assert_eq!(
        value["vault"]["roles"][0]["body"]["token_policies"],
        json!(["test"])
    );
    assert_eq!(
        value["kubernetes"]["service_accounts"][0]["action"],
        "create"
    );
    assert_eq!(value["invalid_entries"][0]["key"], "broken");
    insta::assert_snapshot!(text);
}

/// A report of a plan with nothing to do.
fn nothing_to_do() -> PlanReport {
    let mut r = report(MountState::Kubernetes, false);
    r.vault.roles.clear();
    r.vault.write_config = None;
    r.kubernetes.service_accounts.clear();
    r.invalid_entries.clear();
    r.warnings.clear();
    r.notes.clear();
    r.changes_pending = false;
    r.summary = Summary::default();
    r
}

#[test]
fn nothing_to_do_says_so() {
    let r = nothing_to_do();
    assert_eq!(
        render_text(&r, Style::default()),
        "No changes: Vault and Kubernetes match the ConfigMap.\n"
    );
}

#[test]
fn a_missing_configmap_is_said_so_and_durations_are_in_the_users_units() {
    let mut r = nothing_to_do();
    r.configmap = "missing";
    assert_eq!(
        render_text(&r, Style::default()),
        "No changes.\nConfigMap vault-auth/vault-auth-roles does not exist: a sync changes and \
         deletes no role or ServiceAccount.\n"
    );
    assert_eq!(show_value("token_ttl", &json!(5400)), "1h30m");
    assert_eq!(show_value("token_ttl", &json!(0)), "(unset)");
    assert_eq!(show_value("token_policies", &json!([])), "(unset)");
    assert_eq!(show_value("token_num_uses", &json!(3)), "3");
}
