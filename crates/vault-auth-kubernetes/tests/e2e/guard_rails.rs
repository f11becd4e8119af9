//! Guard-rails of the ConfigMap, and credentials of the short-lived commands, end to end with the
//! built binary: an entry may not grant the controller's own policy or root; an emptied
//! ConfigMap deletes nothing without an opt-in; `plan` and `sync --once` leave no token behind.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::commands_support::{configmap_status, vak, vak_with};
use crate::support::{Env, NAMESPACE, readme_roles};

/// Whoever edits the ConfigMap must not obtain the controller's own policy (and with it every
/// role and the mount) or root; the rest of the ConfigMap is applied.
#[tokio::test]
async fn an_entry_granting_the_controllers_own_policy_or_root_is_rejected() {
    let env = Env::start().await;
    let mut roles = readme_roles();
    roles.extend([
        (
            "escalate",
            json!({
                "bound_service_account_names": ["default"],
                "bound_service_account_namespaces": ["*"],
                "token_policies": ["vault-auth-kubernetes"]
            }),
        ),
        (
            "rooted",
            json!({
                "bound_service_account_names": ["default"],
                "bound_service_account_namespaces": ["default"],
                "token_policies": "root"
            }),
        ),
    ]);
    env.put_roles(&roles).await;
    let sync = vak(&env, &["sync", "--once"]).await;
    assert_eq!(sync.status, 1, "two entries not applied: {sync:?}");
    assert!(
        sync.stdout.contains("2 invalid entries skipped"),
        "{}",
        sync.stdout
    );
    let names = env.vault_role_names().await;
    assert!(names.contains(&"default".to_string()) && names.contains(&"test".to_string()));
    assert!(
        !names.contains(&"escalate".to_string()) && !names.contains(&"rooted".to_string()),
        "{names:?}"
    );
    let (status, message) = configmap_status(&env).await;
    assert_eq!(status, "Degraded", "{message}");
    let events = env.configmap_events().await;
    assert!(
        events.iter().any(|(kind, reason, text)| kind == "Warning"
            && reason == "InvalidEntries"
            && text.contains("controller's own Vault token")
            && text.contains("root policy")),
        "{events:?}"
    );

    // The platform team's patterns hold too, offline in validate and online in plan.
    let plan = vak_with(
        &env,
        &["plan", "--output", "json"],
        &[("VAK_DENIED_POLICIES", "te*")],
    )
    .await;
    let plan = plan.json();
    let invalid: Vec<&str> = plan["invalid_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    for key in ["default", "test", "escalate", "rooted"] {
        assert!(invalid.contains(&key), "{key} not refused: {invalid:?}");
    }
    // A rejected entry changes nothing: the roles already in Vault stay.
    assert!(
        !plan["vault"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "delete"),
        "{plan}"
    );
}

/// `data: {}` (a bad template, a wrong merge) must not wipe every role and ServiceAccount: it is
/// reported and nothing is deleted, until the ConfigMap says emptiness is meant.
#[tokio::test]
async fn an_emptied_configmap_deletes_nothing_without_the_opt_in() {
    let env = Env::start().await;
    env.put_roles(&readme_roles()).await;
    let sync = vak(&env, &["sync", "--once"]).await;
    assert_eq!(sync.status, 0, "{sync:?}");
    assert_eq!(env.vault_role_names().await.len(), 2);

    env.put_roles(&[]).await;
    let sync = vak(&env, &["sync", "--once"]).await;
    assert_eq!(sync.status, 1, "held back, so not all applied: {sync:?}");
    assert_eq!(
        env.vault_role_names().await.len(),
        2,
        "roles deleted: {sync:?}"
    );
    assert!(
        env.service_account("default", "vault-agent-injector")
            .await
            .is_some(),
        "managed ServiceAccount deleted"
    );
    let (status, message) = configmap_status(&env).await;
    assert_eq!(status, "Degraded", "{message}");
    assert!(message.contains("no entry: nothing deleted"), "{message}");
    let events = env.configmap_events().await;
    assert!(
        events
            .iter()
            .any(|(kind, reason, _)| kind == "Warning" && reason == "EmptyConfigMap"),
        "{events:?}"
    );

    let api: Api<ConfigMap> = Api::namespaced(env.client(), NAMESPACE);
    api.patch(
        "vault-auth-roles",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"vault-auth-kubernetes/allow-empty": "true"}}}),
        ),
    )
    .await
    .expect("annotate");
    let sync = vak(&env, &["sync", "--once"]).await;
    assert_eq!(sync.status, 0, "{sync:?}");
    assert!(env.vault_role_names().await.is_empty(), "{sync:?}");
    assert!(
        env.service_account("default", "vault-agent-injector")
            .await
            .is_none()
    );
}

/// A CronJob running `sync --once` every few minutes must not pile up tokens and leases: the
/// commands revoke the token they logged in for.
#[tokio::test]
async fn plan_and_sync_once_leave_no_token_behind() {
    let env = Env::start().await;
    env.put_roles(&readme_roles()).await;
    let before = env.bao.token_count().await;
    for args in [&["plan"][..], &["sync", "--once"], &["plan"]] {
        let run = vak(&env, args).await;
        assert!(run.status == 0 || run.status == 2, "{args:?}: {run:?}");
    }
    assert_eq!(env.bao.token_count().await, before, "tokens left in Vault");
}
