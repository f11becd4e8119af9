//! `plan` and `sync --once` of the built binary against the real OpenBao and the in-repo
//! Kubernetes emulator: the plan shows exactly what the following sync does, a plan after the
//! sync is empty, and a plan writes nothing (request counters, and Vault read in full before and
//! after).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::commands_support::{
    added_and_removed, cluster_state, configmap_status, vak, vak_with, vault_state,
    writes_besides_reports,
};
use crate::support::{AUTH_PATH, Env, NAMESPACE};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};
use vault_auth_kubernetes::roles::role_changes;

fn roles() -> Vec<(&'static str, Value)> {
    let mut roles = crate::support::readme_roles();
    roles.extend([
        (
            "apps",
            json!({
                "bound_service_account_names": ["app", "app-*"],
                "bound_service_account_namespace_selector": "{\"matchLabels\": {\"team\": \"apps\"}}",
                "token_ttl": "1h"
            }),
        ),
        ("broken", json!("{\"bound_service_account_names\": [")),
    ]);
    roles
}

/// `kind namespace/name` keys as `cluster_state` makes them, for the plan's Kubernetes actions.
fn planned_objects(plan: &Value, action: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for o in plan["kubernetes"]["objects"].as_array().unwrap() {
        if o["action"] == action {
            let ns = o["namespace"].as_str().unwrap_or_default();
            keys.insert(format!(
                "{} {ns}/{}",
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            ));
        }
    }
    for a in plan["kubernetes"]["service_accounts"].as_array().unwrap() {
        if a["action"] == action {
            let sa = &a["sa"];
            keys.insert(format!(
                "ServiceAccount {}/{}",
                sa["namespace"].as_str().unwrap(),
                sa["name"].as_str().unwrap()
            ));
        }
    }
    keys
}

fn role_actions(plan: &Value) -> BTreeMap<String, String> {
    plan["vault"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every role the plan writes holds exactly the planned body in Vault afterwards, every role it
/// deletes is gone, and Vault has no other role than the ones planned or left alone.
async fn assert_vault_matches(env: &Env, plan: &Value, untouched: &[&str]) {
    let mut expected: BTreeSet<String> = untouched.iter().map(|s| s.to_string()).collect();
    for role in plan["vault"]["roles"].as_array().unwrap() {
        let name = role["name"].as_str().unwrap();
        let held = env.vault_role(name).await;
        if role["action"] == "delete" {
            assert!(held.is_none(), "role {name} still in Vault");
            continue;
        }
        let held = held.unwrap_or_else(|| panic!("role {name} not in Vault"));
        let diff = role_changes(role["body"].as_object().unwrap(), held.as_object().unwrap());
        assert!(
            diff.is_empty(),
            "role {name} differs from the plan: {diff:?}"
        );
        expected.insert(name.to_string());
    }
    let names: BTreeSet<String> = env.vault_role_names().await.into_iter().collect();
    assert_eq!(names, expected);
}

/// Plan on a fresh cluster and Vault, then `sync --once`: what Vault and Kubernetes hold after
/// the sync is exactly what the plan listed; a second plan is empty. Then an edit of the
/// ConfigMap: update (field-level), delete and ServiceAccount removals, planned and applied alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_exactly_what_sync_once_does() {
    let env = Env::start().await;
    env.create_namespace("team-apps", &[("team", "apps")]).await;
    env.put_roles(&roles()).await;
    let cluster_before = cluster_state(&env).await;
    let vault_before = vault_state(&env).await;
    env.kube.reset_counters();

    let started = Instant::now();
    let plan = vak(&env, &["plan", "--output", "json"]).await;
    println!("plan on a fresh cluster: {:?}", started.elapsed());
    // 1, not 2: the entry `broken` is invalid (the changes are listed all the same).
    assert_eq!(plan.status, 1, "{plan:?}");
    let plan = plan.json();
    assert_eq!(plan["changes_pending"], true);
    assert_eq!(plan["vault"]["enable_mount"], true);
    assert_eq!(
        plan["vault"]["write_config"]["reasons"],
        json!([
            "the auth method is new",
            "the reviewer's token Secret is new: Vault gets its token"
        ])
    );
    assert_eq!(plan["invalid_entries"][0]["key"], "broken");
    // Nothing was written meanwhile.
    assert_eq!(writes_besides_reports(&env), vec![]);
    assert_eq!(env.kube.counters().writes(), 0);
    assert_eq!(vault_state(&env).await, vault_before);

    let started = Instant::now();
    let sync = vak(&env, &["sync", "--once"]).await;
    println!("sync --once on a fresh cluster: {:?}", started.elapsed());
    // Exit 1: the broken entry was not applied, though every step succeeded.
    assert_eq!(sync.status, 1, "{sync:?}");
    assert!(
        sync.stdout.starts_with(&format!(
            "Sync of auth/{AUTH_PATH} incomplete: not all of the ConfigMap was applied"
        )),
        "{}",
        sync.stdout
    );
    assert!(
        sync.stdout.contains("1 invalid entry skipped"),
        "{}",
        sync.stdout
    );

    // Vault: the mount, the config, and exactly the planned roles with the planned bodies.
    let mounts = env.bao.request("GET", "sys/auth", None).await.body["data"].clone();
    assert_eq!(mounts[format!("{AUTH_PATH}/")]["type"], "kubernetes");
    let config = env
        .bao
        .request("GET", &format!("auth/{AUTH_PATH}/config"), None)
        .await;
    assert_eq!(
        config.body["data"]["kubernetes_host"],
        env.kube.url().trim_end_matches('/')
    );
    assert_eq!(config.body["data"]["token_reviewer_jwt_set"], true);
    assert_vault_matches(&env, &plan, &[]).await;

    // Kubernetes: the objects created are exactly the planned ones.
    let cluster_after = cluster_state(&env).await;
    let (added, removed) = added_and_removed(&cluster_before, &cluster_after);
    assert_eq!(
        added.into_iter().collect::<BTreeSet<_>>(),
        planned_objects(&plan, "create")
    );
    assert_eq!(removed, Vec::<String>::new());
    // The login works: Vault got the reviewer's token with the config.
    env.login("default", "vault-agent-injector", "default")
        .await
        .expect("login");

    let again = vak(&env, &["plan"]).await;
    // Nothing to change, but `broken` is still invalid: exit 1, and the summary says so.
    assert_eq!(again.status, 1, "{again:?}");
    assert!(
        again.stdout.contains("No changes for the valid entries"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("Invalid: 1 entry (broken)"),
        "{}",
        again.stdout
    );

    // An edit: `test` removed, `default` loses kube-system, `apps` gets another TTL.
    let mut edited = roles();
    edited.retain(|(k, _)| *k != "test");
    edited[0].1["bound_service_account_namespaces"] = json!(["default"]);
    edited[1].1["token_ttl"] = json!("2h");
    env.put_roles(&edited).await;
    let plan = vak(&env, &["plan", "-o", "json"]).await;
    assert_eq!(
        plan.status, 1,
        "changes, and `broken` still invalid: {plan:?}"
    );
    let plan = plan.json();
    let expected: BTreeMap<String, String> = [
        ("apps", "update"),
        ("default", "update"),
        ("test", "delete"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(role_actions(&plan), expected);
    let apps = plan["vault"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "apps")
        .unwrap();
    assert_eq!(
        apps["changes"],
        json!([{"field": "token_ttl", "from": 3600, "to": 7200}])
    );
    assert_eq!(plan["vault"]["write_config"], Value::Null);
    let deletes = planned_objects(&plan, "delete");
    // kube-system/default is the namespace's own account (not managed): it stays.
    assert_eq!(
        deletes,
        BTreeSet::from(["ServiceAccount kube-system/vault-agent-injector".to_string()])
    );
    let before_sync = cluster_state(&env).await;
    let sync = vak(&env, &["sync", "--once"]).await;
    assert_eq!(sync.status, 1, "the broken entry: {sync:?}");
    assert_vault_matches(&env, &plan, &[]).await;
    let (added, removed) = added_and_removed(&before_sync, &cluster_state(&env).await);
    assert_eq!(added, Vec::<String>::new());
    assert_eq!(removed.into_iter().collect::<BTreeSet<_>>(), deletes);
    let again = vak(&env, &["plan", "-o", "json"]).await;
    assert_eq!(again.status, 1, "`broken` is still invalid: {again:?}");
    assert_eq!(again.json()["changes_pending"], false);
}

/// With changes of every kind pending (roles to create, update and delete, a reviewer token
/// Secret to re-create, so a config to write, the namespace reader to add, ServiceAccounts to
/// create and delete), `plan` sends no write to Kubernetes and leaves Vault exactly as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_writes_nothing() {
    let env = Env::start().await;
    env.create_namespace("team-apps", &[("team", "apps")]).await;
    let mut initial = roles();
    initial.retain(|(k, _)| *k != "apps");
    env.put_roles(&initial).await;
    let sync = vak(&env, &["sync", "--once"]).await;
    assert_eq!(sync.status, 1, "the broken entry: {sync:?}");

    let mut edited = roles();
    edited.retain(|(k, _)| *k != "test");
    edited[0].1["token_policies"] = json!(["test", "more"]);
    env.put_roles(&edited).await;
    let secrets: Api<Secret> = Api::namespaced(env.client(), NAMESPACE);
    secrets
        .delete("token-reviewer-token", &DeleteParams::default())
        .await
        .expect("delete the reviewer token Secret");
    let vault_before = vault_state(&env).await;
    let cluster_before = cluster_state(&env).await;
    env.kube.reset_counters();

    let text = vak(&env, &["plan"]).await;
    let json = vak(&env, &["plan", "-o", "json"]).await;
    // The entry `broken` is invalid: exit 1.
    assert_eq!(text.status, 1, "{text:?}");
    assert_eq!(json.status, 1, "{json:?}");
    let counters = env.kube.counters();
    println!("requests of two plans: {:?}", counters.entries());
    assert_eq!(counters.writes(), 0, "{:?}", counters.entries());
    assert!(
        counters.get("list", "serviceaccounts") >= 2,
        "{:?}",
        counters.entries()
    );
    assert_eq!(vault_state(&env).await, vault_before);
    assert_eq!(cluster_state(&env).await, cluster_before);

    for expected in [
        "~ write config",
        "the reviewer's token Secret is new: Vault gets its token",
        "+ create Secret vault-auth/token-reviewer-token",
        "+ create ClusterRole vault-auth-token-reviewer-namespaces",
        "+ create ClusterRoleBinding vault-auth-token-reviewer-namespaces",
        "+ create role apps",
        "~ update role default",
        "    token_policies: [\"test\"] -> [\"test\",\"more\"]",
        "- delete role test",
        "+ create ServiceAccount team-apps/app (roles: apps)",
        "key \"broken\"",
    ] {
        assert!(
            text.stdout.contains(expected),
            "{expected:?} missing in:\n{}",
            text.stdout
        );
    }
    // Not a terminal: no colour.
    assert!(!text.stdout.contains('\x1b'), "{}", text.stdout);
    // The JWT never appears, and the old token is not mistaken for the current one.
    let plan = json.json();
    assert!(!json.stdout.contains("eyJ"), "{}", json.stdout);
    let reasons = plan["vault"]["write_config"]["reasons"].to_string();
    assert!(reasons.contains("token Secret is new"), "{reasons}");
}

/// Unreachable Vault: plan and sync --once fail with status 1 and say why; nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_vault_is_an_error() {
    let mut env = Env::start().await;
    env.put_roles(&roles()).await;
    env.bao.kill();
    env.kube.reset_counters();
    for args in [&["plan"][..], &["sync", "--once"], &["cleanup", "--yes"]] {
        let run = vak(&env, args).await;
        assert_eq!(run.status, 1, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("error: vault:"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(writes_besides_reports(&env), vec![]);
    // What sync --once found is where kubectl users look.
    let (status, message) = configmap_status(&env).await;
    assert_eq!(status, "Degraded", "{message}");
    assert!(message.starts_with("VaultUnreachable: "), "{message}");
}

/// Unreachable Kubernetes API: plan and sync --once fail with status 1 and say why; Vault is
/// left as it was (the mount is checked, nothing is enabled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_kubernetes_is_an_error() {
    let env = Env::start().await;
    let kubeconfig = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let dead = kubeconfig.replace(
        &env.kube.url().trim_end_matches('/').to_string(),
        "https://127.0.0.1:1",
    );
    assert_ne!(dead, kubeconfig, "the kubeconfig names the emulator's URL");
    let path = env.dir.path().join("dead-kubeconfig");
    std::fs::write(&path, dead).unwrap();
    let vault_before = vault_state(&env).await;
    for args in [&["plan"][..], &["sync", "--once"]] {
        let run = vak_with(&env, args, &[("KUBECONFIG", path.to_str().unwrap())]).await;
        assert_eq!(run.status, 1, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("error: kubernetes:"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(vault_state(&env).await, vault_before);
}

/// The reviewer's objects are decided once (`reviewer_plan`) for both commands: with a foreign
/// ClusterRoleBinding of the reviewer's name in the way, `plan` reports it as a conflict and
/// plans no write to it, and `sync --once` then creates exactly the planned objects, leaves
/// the binding exactly as it was and reports the same conflict.
#[tokio::test]
async fn plan_and_sync_agree_on_a_foreign_reviewer_binding() {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    use kube::api::PostParams;
    let env = Env::start().await;
    env.put_roles(&crate::support::readme_roles()).await;
    let foreign: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "vault-auth-token-reviewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "someone", "namespace": "default"}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(env.client())
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create the foreign binding");
    let before = cluster_state(&env).await;

    let plan = vak(&env, &["plan", "--output", "json"]).await;
    let plan = plan.json();
    let conflicts: Vec<String> = plan["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        conflicts,
        ["ClusterRoleBinding vault-auth-token-reviewer"],
        "{plan}"
    );
    let planned_creates = planned_objects(&plan, "create");
    assert!(
        !planned_creates
            .iter()
            .any(|k| k.contains("vault-auth-token-reviewer ")
                || k.ends_with("/vault-auth-token-reviewer")),
        "{planned_creates:?}"
    );
    for action in ["update", "delete", "replace"] {
        assert!(
            !planned_objects(&plan, action)
                .iter()
                .any(|k| k.ends_with("/vault-auth-token-reviewer")),
            "{action}: {plan}"
        );
    }

    let sync = vak(&env, &["sync", "--once"]).await;
    let after = cluster_state(&env).await;
    let binding = "ClusterRoleBinding /vault-auth-token-reviewer";
    assert_eq!(
        after.get(binding),
        before.get(binding),
        "the foreign binding was touched"
    );
    let (added, removed) = added_and_removed(&before, &after);
    assert_eq!(
        added.into_iter().collect::<BTreeSet<_>>(),
        planned_creates,
        "{sync:?}"
    );
    assert_eq!(removed, Vec::<String>::new());
    let text = format!("{}{}", sync.stdout, sync.stderr);
    assert!(text.contains("vault-auth-token-reviewer"), "{sync:?}");
    let (status, message) = configmap_status(&env).await;
    assert_eq!(status, "Degraded", "{message}");
    assert!(
        message.contains("ClusterRoleBinding vault-auth-token-reviewer"),
        "{message}"
    );
}

/// `plan -f FILE|-` plans a proposed ConfigMap (a pull request's file, `helm template` on
/// stdin) against the live Vault and cluster, writing nothing: exit 0 when it matches, 2 with
/// the changes when it differs (durations in the user's units, the new role's ServiceAccount
/// under its namespace), 1 when an entry is invalid.
#[tokio::test]
async fn plan_f_plans_a_proposed_configmap_from_a_file_or_stdin() {
    use crate::commands_support::{roles_manifest, vak_stdin};
    let env = Env::start().await;
    env.put_roles(&crate::support::readme_roles()).await;
    let sync = vak(&env, &["sync", "--once"]).await;
    assert_eq!(sync.status, 0, "{sync:?}");
    let vault_before = vault_state(&env).await;
    let cluster_before = cluster_state(&env).await;
    let file = |name: &str, entries: &[(&str, Value)]| {
        let path = env.dir.path().join(name);
        std::fs::write(&path, roles_manifest(entries)).unwrap();
        path.display().to_string()
    };

    let same = file("same.yaml", &crate::support::readme_roles());
    let run = vak(&env, &["plan", "-f", &same]).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("No changes: Vault and Kubernetes match"),
        "{run:?}"
    );

    env.create_namespace("team-a", &[]).await;
    let mut edited = crate::support::readme_roles();
    edited[1].1["token_ttl"] = json!("1h");
    edited.push((
        "web",
        json!({
            "bound_service_account_names": ["web"],
            "bound_service_account_namespaces": ["team-a"],
            "token_policies": ["test"]
        }),
    ));
    let edited_path = file("edited.yaml", &edited);
    let run = vak(&env, &["plan", "-f", &edited_path]).await;
    assert_eq!(run.status, 2, "{run:?}");
    for expected in [
        "+ create role web",
        "~ update role test",
        "token_ttl: (unset) -> 1h",
        "Kubernetes, namespace team-a:",
        "+ create ServiceAccount team-a/web (roles: web)",
        "Vault roles: 1 to create, 1 to update, 0 to delete",
        "ServiceAccounts: 1 to create",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} missing:\n{}",
            run.stdout
        );
    }
    let from_stdin = vak_stdin(
        &env,
        &["plan", "-f", "-", "--output", "json"],
        &roles_manifest(&edited),
    )
    .await;
    assert_eq!(from_stdin.status, 2, "{from_stdin:?}");
    let plan = from_stdin.json();
    assert_eq!(plan["format_version"], 1);
    assert_eq!(plan["source"], "<stdin>:2");
    assert_eq!(
        plan["summary"]["roles"],
        json!({"create": 1, "update": 1, "delete": 0})
    );
    assert_eq!(plan["summary"]["service_accounts"]["create"], 1);

    let mut broken = edited.clone();
    broken.push(("broken", json!("{\"bound_service_account_names\": [")));
    let broken_path = file("broken.yaml", &broken);
    let run = vak(&env, &["plan", "-f", &broken_path]).await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stdout.contains("Invalid: 1 entry (broken)"), "{run:?}");

    let run = vak(
        &env,
        &[
            "plan",
            "-f",
            &env.dir.path().join("nope.yaml").display().to_string(),
        ],
    )
    .await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("nope.yaml: cannot read"), "{run:?}");

    // Planning wrote nothing: the cluster's ConfigMap and Vault are as they were.
    assert_eq!(vault_state(&env).await, vault_before);
    let cluster_after = cluster_state(&env).await;
    let configmap = "ConfigMap vault-auth/vault-auth-roles";
    assert_eq!(cluster_after.get(configmap), cluster_before.get(configmap));
}
