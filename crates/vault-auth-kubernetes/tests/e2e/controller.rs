//! End-to-end tests of the controller, in-process, against the tier's cluster and Vault. Times
//! of event-driven reactions are printed (run with `--nocapture` to see them).

use std::time::Duration;

use crate::support::{AUTH_PATH, Env, NAMESPACE, TIMEOUT, readme_roles, wait_for};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use serde_json::json;

/// The original's end-to-end scenario: README policy verbatim for a two-segment mount, an
/// AppRole; the controller converges; a `vault-agent-injector` token in `default` logs in with
/// role `default` and gets exactly the role's policies (plus Vault's own `default` policy, which
/// Vault attaches to every token unless token_no_default_policy is set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_end_to_end_scenario() {
    let env = Env::start().await;
    env.put_roles(&readme_roles()).await;
    let controller = env.controller(&[]);

    let (_, took) = wait_for("role default in Vault", TIMEOUT, || async {
        env.vault_role("default").await
    })
    .await;
    println!("converged (role default written) in {took:?}");
    // Both accounts: the controller creates them one after the other.
    for ns in ["default", "kube-system"] {
        wait_for(
            &format!("SA {ns}/vault-agent-injector"),
            TIMEOUT,
            || async { env.service_account(ns, "vault-agent-injector").await },
        )
        .await;
    }
    let sa = env
        .service_account("default", "vault-agent-injector")
        .await
        .unwrap();
    let annotations = sa.metadata.annotations.unwrap();
    assert_eq!(annotations["vak-managed"], "true");

    let policies = env
        .login("default", "vault-agent-injector", "default")
        .await
        .expect("login with role default");
    assert_eq!(policies, ["default", "test"]);

    // Role `test` binds only kube-system: the same account in `default` is refused.
    let refused = env.login("default", "vault-agent-injector", "test").await;
    assert!(refused.is_err(), "{refused:?}");
    let policies = env
        .login("kube-system", "vault-agent-injector", "test")
        .await
        .expect("login with role test");
    assert_eq!(policies, ["default", "test"]);

    // The auth method was enabled as the original did it.
    let mounts = env.bao.request("GET", "sys/auth", None).await;
    let mount = &mounts.body["data"][format!("{AUTH_PATH}/")];
    assert_eq!(mount["type"], "kubernetes");
    assert_eq!(mount["config"]["max_lease_ttl"], 8760 * 3600);

    // The reviewer: ServiceAccount, binding to system:auth-delegator, token Secret.
    let crb: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(env.client());
    let binding = crb.get("vault-auth-token-reviewer").await.unwrap();
    assert_eq!(binding.role_ref.name, "system:auth-delegator");
    assert!(
        env.service_account(NAMESPACE, "token-reviewer")
            .await
            .is_some()
    );

    controller.stop().await.expect("clean stop");
}

/// ConfigMap edits reach Vault and Kubernetes without waiting for a resync (resync is one hour
/// here, so only the watches can explain a reaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_edits_apply_without_waiting_for_resync() {
    let env = Env::start().await;
    env.create_namespace("team-a", &[]).await;
    env.create_namespace("team-b", &[]).await;
    env.put_roles(&readme_roles()).await;
    let controller = env.controller(&["--resync-interval", "1h"]);
    wait_for("initial convergence", TIMEOUT, || async {
        env.vault_role("test").await
    })
    .await;

    // Add a role.
    let mut roles = readme_roles();
    roles.push((
        "web",
        json!({
            "bound_service_account_names": ["web"],
            "bound_service_account_namespaces": ["team-a", "team-b"],
            "token_policies": ["web-read"],
            "token_ttl": "1h"
        }),
    ));
    env.put_roles(&roles).await;
    let (_, took) = wait_for(
        "role web created and its ServiceAccounts",
        TIMEOUT,
        || async {
            let role = env.vault_role("web").await?;
            env.service_account("team-b", "web").await?;
            Some(role)
        },
    )
    .await;
    println!("add role: {took:?}");

    // Change its policies.
    roles.last_mut().unwrap().1["token_policies"] = json!(["web-read", "web-write"]);
    env.put_roles(&roles).await;
    let (_, took) = wait_for("policies updated", TIMEOUT, || async {
        let role = env.vault_role("web").await?;
        (role["token_policies"] == json!(["web-read", "web-write"])).then_some(())
    })
    .await;
    println!("change policies: {took:?}");

    // Drop a namespace from it.
    roles.last_mut().unwrap().1["bound_service_account_namespaces"] = json!(["team-a"]);
    env.put_roles(&roles).await;
    let (_, took) = wait_for("team-b/web deleted", TIMEOUT, || async {
        let role = env.vault_role("web").await?;
        let gone = env.service_account("team-b", "web").await.is_none();
        (gone && role["bound_service_account_namespaces"] == json!(["team-a"])).then_some(())
    })
    .await;
    println!("drop a namespace: {took:?}");
    assert!(env.service_account("team-a", "web").await.is_some());

    // Remove the role.
    roles.pop();
    env.put_roles(&roles).await;
    let (_, took) = wait_for("role web deleted", TIMEOUT, || async {
        let gone = env.vault_role("web").await.is_none()
            && env.service_account("team-a", "web").await.is_none();
        gone.then_some(())
    })
    .await;
    println!("remove role: {took:?}");

    // A namespace created later gets its ServiceAccounts at once.
    roles.push((
        "late",
        json!({
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["team-*"],
            "token_policies": ["x"]
        }),
    ));
    env.put_roles(&roles).await;
    wait_for("team-a/app", TIMEOUT, || async {
        env.service_account("team-a", "app").await
    })
    .await;
    env.create_namespace("team-c", &[]).await;
    let (_, took) = wait_for("team-c/app in a new namespace", TIMEOUT, || async {
        env.service_account("team-c", "app").await
    })
    .await;
    println!("new namespace gets its ServiceAccount: {took:?}");

    controller.stop().await.expect("clean stop");
}

/// A table of bad entries: each yields a Warning Event naming the key, the existing Vault role
/// of that name stays byte-for-byte the same, and the good entries are applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_entries_are_reported_and_leave_vault_untouched() {
    let env = Env::start().await;
    let good = |policy: &str| {
        json!({
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["default"],
            "token_policies": [policy]
        })
    };
    let keys = [
        "invalid-json",
        "unknown-key",
        "wrong-type",
        "both-wildcards",
        "empty-names",
        "bad-sa-name",
    ];
    let initial: Vec<(&str, serde_json::Value)> =
        keys.iter().map(|k| (*k, good(&format!("p-{k}")))).collect();
    env.put_roles(&initial).await;
    let controller = env.controller(&["--resync-interval", "1h"]);
    wait_for("all good roles applied", TIMEOUT, || async {
        (env.vault_role_names().await.len() == keys.len()).then_some(())
    })
    .await;
    let mut before = Vec::new();
    for key in keys {
        before.push(env.vault_role_bytes(key).await.expect("role exists"));
    }

    let bad: Vec<(&str, serde_json::Value)> = vec![
        (
            "invalid-json",
            json!("{\"bound_service_account_names\": [\"app\""),
        ),
        (
            "unknown-key",
            json!({"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["default"], "token_polices": ["oops"]}),
        ),
        (
            "wrong-type",
            json!({"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["default"], "token_ttl": {"hours": 1}}),
        ),
        (
            "both-wildcards",
            json!({"bound_service_account_names": ["*"], "bound_service_account_namespaces": ["*"]}),
        ),
        (
            "empty-names",
            json!({"bound_service_account_names": [], "bound_service_account_namespaces": ["default"]}),
        ),
        (
            "bad-sa-name",
            json!({"bound_service_account_names": ["Not_A_Valid_Name"], "bound_service_account_namespaces": ["default"]}),
        ),
        (
            "-bad-name",
            json!({"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["default"]}),
        ),
        ("fresh", good("p-fresh")),
    ];
    env.put_roles(&bad).await;
    let (_, took) = wait_for(
        "good entry applied next to the bad ones",
        TIMEOUT,
        || async { env.vault_role("fresh").await },
    )
    .await;
    println!("good entry applied in {took:?}");

    let (events, _) = wait_for("a Warning Event for each bad key", TIMEOUT, || async {
        let events = env.configmap_events().await;
        let all = keys.iter().chain(["-bad-name"].iter()).all(|k| {
            events
                .iter()
                .any(|(t, _, note)| t == "Warning" && note.contains(&format!("key {k:?}")))
        });
        all.then_some(events)
    })
    .await;
    for (t, reason, note) in events.iter().filter(|(t, ..)| t == "Warning") {
        println!("{t} {reason}: {note}");
    }
    for (key, old) in keys.iter().zip(&before) {
        let now = env.vault_role_bytes(key).await.expect("role still exists");
        assert_eq!(&now, old, "Vault role {key} changed");
    }
    controller.stop().await.expect("clean stop");
}

/// A user's ServiceAccount without the annotation is never touched, even when a role binds
/// its name, and stays when the role goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_own_service_accounts_are_never_touched() {
    let env = Env::start().await;
    let api: Api<ServiceAccount> = Api::namespaced(env.client(), "default");
    let own = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("vault-agent-injector".into()),
            labels: Some([("owner".to_string(), "me".to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &own).await.unwrap();
    let before = api.get("vault-agent-injector").await.unwrap();
    let default_before = api.get("default").await.unwrap();

    env.put_roles(&readme_roles()).await;
    let controller = env.controller(&["--resync-interval", "1h"]);
    wait_for(
        "kube-system/vault-agent-injector created",
        TIMEOUT,
        || async {
            env.service_account("kube-system", "vault-agent-injector")
                .await
        },
    )
    .await;
    // The user's accounts still log in (the role binds them) but are unchanged.
    env.login("default", "vault-agent-injector", "default")
        .await
        .expect("login with the user's own account");
    // The roles that wanted these accounts go (another entry stays: an emptied ConfigMap
    // deletes nothing, see guard_rails.rs).
    env.put_roles(&[(
        "other",
        serde_json::json!({
            "bound_service_account_names": ["other"],
            "bound_service_account_namespaces": ["elsewhere"]
        }),
    )])
    .await;
    wait_for(
        "managed kube-system/vault-agent-injector deleted",
        TIMEOUT,
        || async {
            env.service_account("kube-system", "vault-agent-injector")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    let after = api.get("vault-agent-injector").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.metadata.uid, before.metadata.uid);
    let default_after = api.get("default").await.unwrap();
    assert_eq!(
        default_after.metadata.resource_version,
        default_before.metadata.resource_version
    );
    controller.stop().await.expect("clean stop");
}

/// Another type of auth method at the mount path: the controller refuses with a clear error and
/// changes nothing, in Vault or in Kubernetes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_auth_method_at_the_mount_is_refused() {
    let env = Env::start().await;
    env.mount_foreign_auth_method().await;
    env.put_roles(&readme_roles()).await;
    let mounts_before = env.bao.request("GET", "sys/auth", None).await.body["data"].clone();
    env.kube.reset_counters();

    let controller = env.controller(&[]);
    let err = controller
        .exited(TIMEOUT)
        .await
        .expect_err("controller must stop");
    println!("controller stopped with: {err}");
    assert!(err.contains("userpass") && err.contains(AUTH_PATH), "{err}");
    // The only writes are the reports that tell `kubectl describe` users why it stopped: a
    // Warning Event and the ConfigMap's status annotations.
    let writes = crate::commands_support::writes_besides_reports(&env);
    assert!(writes.is_empty(), "{writes:?}");
    let (status, message) = crate::commands_support::configmap_status(&env).await;
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("ForeignAuthMethod: "), "{message}");
    let events = env.configmap_events().await;
    assert!(
        events
            .iter()
            .any(|(t, _, note)| t == "Warning" && note.contains("userpass")),
        "{events:?}"
    );
    let mounts_after = env.bao.request("GET", "sys/auth", None).await.body["data"].clone();
    assert_eq!(mounts_before, mounts_after);
    assert!(
        env.service_account("kube-system", "vault-agent-injector")
            .await
            .is_none()
    );
}

/// Drift on the Vault side is repaired by the periodic resync: a role deleted out of band, and
/// OpenBao restarted with empty storage (mount, config and roles all come back) without
/// restarting the controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_drift_is_repaired_within_one_resync() {
    let mut env = Env::start().await;
    env.put_roles(&readme_roles()).await;
    let controller = env.controller(&["--resync-interval", "2s"]);
    wait_for("converged", TIMEOUT, || async {
        env.vault_role("test").await
    })
    .await;

    let r = env
        .bao
        .request("DELETE", &format!("auth/{AUTH_PATH}/role/test"), None)
        .await;
    assert!(r.status < 300);
    let (_, took) = wait_for("deleted role restored", Duration::from_secs(10), || async {
        env.vault_role("test").await
    })
    .await;
    println!("role deleted out of band restored in {took:?} (resync 2s)");

    let r = env
        .bao
        .request(
            "POST",
            &format!("auth/{AUTH_PATH}/role/test"),
            Some(json!({"bound_service_account_names": ["x"], "bound_service_account_namespaces": ["y"]})),
        )
        .await;
    assert!(r.status < 300);
    let (_, took) = wait_for("edited role restored", Duration::from_secs(10), || async {
        let role = env.vault_role("test").await?;
        (role["bound_service_account_names"] == json!(["vault-agent-injector"])).then_some(())
    })
    .await;
    println!("role edited out of band restored in {took:?}");

    env.bao.restart_empty().await;
    crate::support::restore_approle(&env.bao, &env.creds).await;
    let (_, took) = wait_for(
        "everything back after OpenBao lost its storage",
        Duration::from_secs(30),
        || async {
            env.vault_role("default").await?;
            env.vault_role("test").await
        },
    )
    .await;
    println!("OpenBao restarted empty: reconfigured in {took:?}");
    env.login("default", "vault-agent-injector", "default")
        .await
        .expect("login after OpenBao restart");
    controller.stop().await.expect("clean stop");
}

/// An AppRole whose tokens live 5 s does not interrupt the controller: it logs in again before
/// the token expires and edits keep being applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_approle_tokens_do_not_interrupt() {
    let env = Env::start().await;
    // Same role, now with tokens of 5 s that cannot be renewed past 5 s.
    crate::support::setup_approle(
        &env.bao,
        Some(json!({"token_policies": ["vault-auth-kubernetes"], "token_ttl": "5s", "token_max_ttl": "5s"})),
    )
    .await;
    env.put_roles(&readme_roles()).await;
    let controller = env.controller(&["--resync-interval", "1s"]);
    wait_for("converged", TIMEOUT, || async {
        env.vault_role("test").await
    })
    .await;
    let mut roles = readme_roles();
    for round in 0..4 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        roles[1].1["token_policies"] = json!([format!("round-{round}")]);
        env.put_roles(&roles).await;
        let (_, took) = wait_for("edit applied", Duration::from_secs(10), || async {
            let role = env.vault_role("test").await?;
            (role["token_policies"] == json!([format!("round-{round}")])).then_some(())
        })
        .await;
        println!(
            "round {round} (t = {}s): applied in {took:?}",
            4 * (round + 1)
        );
    }
    controller.stop().await.expect("clean stop");
}

/// The steady state costs nothing: once converged, no list and no write requests reach
/// Kubernetes over several resyncs (only the open watches, and at most one look at the
/// second-writer Lease, a get every 20 s: alone, the controller claims it only at start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_makes_no_kubernetes_requests() {
    let env = Env::start().await;
    env.put_roles(&readme_roles()).await;
    let controller = env.controller(&["--resync-interval", "1s"]);
    wait_for("converged", TIMEOUT, || async {
        env.service_account("kube-system", "vault-agent-injector")
            .await
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.kube.reset_counters();
    let vault_tokens = env.bao.token_count().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let counters = env.kube.counters();
    let lists_and_writes: Vec<_> = counters
        .entries()
        .into_iter()
        .filter(|(verb, resource, ..)| verb != "watch" && !(resource == "leases" && verb == "get"))
        .collect();
    assert!(
        lists_and_writes.is_empty(),
        "requests in steady state: {lists_and_writes:?}"
    );
    let looks: u64 = counters
        .entries()
        .iter()
        .filter(|(_, resource, ..)| resource == "leases")
        .map(|(.., n)| n)
        .sum();
    assert!(looks <= 1, "Lease gets in 4 s: {looks}");
    // And no new Vault logins either.
    assert_eq!(env.bao.token_count().await, vault_tokens);
    controller.stop().await.expect("clean stop");
}

/// Invalid role names with capitals are lowercased with a warning; two keys that collide are
/// both rejected; a missing ConfigMap deletes nothing; a rotated reviewer token reconfigures Vault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_missing_configmap_and_reviewer_rotation() {
    let env = Env::start().await;
    let body = json!({
        "bound_service_account_names": ["app"],
        "bound_service_account_namespaces": ["default"],
        "token_policies": ["p"]
    });
    env.put_roles(&[("Web", body.clone()), ("api", body.clone())])
        .await;
    let controller = env.controller(&["--resync-interval", "1h"]);
    wait_for("lowercased role", TIMEOUT, || async {
        env.vault_role("web").await
    })
    .await;
    wait_for("warning about capitals", TIMEOUT, || async {
        env.configmap_events()
            .await
            .into_iter()
            .find(|(t, _, note)| t == "Warning" && note.contains("\"Web\""))
    })
    .await;

    // Collision: `api` and `API` are both rejected; Vault's `api` stays as it was.
    let before = env.vault_role_bytes("api").await.unwrap();
    let mut changed = body.clone();
    changed["token_policies"] = json!(["other"]);
    env.put_roles(&[
        ("Web", body.clone()),
        ("api", changed.clone()),
        ("API", changed),
    ])
    .await;
    wait_for("collision reported", TIMEOUT, || async {
        env.configmap_events()
            .await
            .into_iter()
            .find(|(t, _, note)| t == "Warning" && note.contains("\"API\""))
    })
    .await;
    assert_eq!(env.vault_role_bytes("api").await.unwrap(), before);

    // Rotating the reviewer token: delete its Secret; the controller makes a new one and
    // rewrites the config, or logins would fail (the old token dies with its Secret).
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client(), NAMESPACE);
    let old = secrets.get("token-reviewer-token").await.unwrap();
    secrets
        .delete("token-reviewer-token", &DeleteParams::default())
        .await
        .unwrap();
    let (_, took) = wait_for("new reviewer token in use", TIMEOUT, || async {
        let new = secrets.get_opt("token-reviewer-token").await.ok()??;
        if new.metadata.uid == old.metadata.uid {
            return None;
        }
        env.login("default", "app", "web").await.ok()
    })
    .await;
    println!("reviewer token rotated and Vault reconfigured in {took:?}");

    // ConfigMap deleted: nothing is deleted.
    env.delete_roles_configmap().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(env.vault_role("web").await.is_some());
    assert!(env.service_account("default", "app").await.is_some());
    controller.stop().await.expect("clean stop");
}

/// Roles with a namespace selector: ServiceAccounts go to the namespaces whose labels match,
/// follow label changes, and (with RBAC evaluated) the reviewer gets exactly the `get` on
/// namespaces Vault needs to read the labels, through the controller's own ClusterRole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_selector_follows_labels() {
    let env = Env::start_with_rbac().await;
    env.create_namespace("blue", &[("team", "payments")]).await;
    env.create_namespace("green", &[("team", "search")]).await;
    env.put_roles(&[(
        "payments",
        json!({
            "bound_service_account_names": ["billing"],
            "bound_service_account_namespace_selector": {"matchLabels": {"team": "payments"}},
            "token_policies": ["payments"]
        }),
    )])
    .await;
    let controller = env.controller(&["--resync-interval", "1h"]);
    wait_for("blue/billing", TIMEOUT, || async {
        env.service_account("blue", "billing").await
    })
    .await;
    assert!(env.service_account("green", "billing").await.is_none());
    let cr: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(env.client());
    wait_for("namespace reader ClusterRole", TIMEOUT, || async {
        cr.get_opt("vault-auth-token-reviewer-namespaces")
            .await
            .ok()?
    })
    .await;
    let policies = wait_for("login through the selector", TIMEOUT, || async {
        env.login("blue", "billing", "payments").await.ok()
    })
    .await
    .0;
    assert_eq!(policies, ["default", "payments"]);

    // Relabel: green joins, blue leaves.
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client());
    let patch = |team: &str| json!({"metadata": {"labels": {"team": team}}});
    let pp = kube::api::PatchParams::default();
    ns.patch("green", &pp, &kube::api::Patch::Merge(&patch("payments")))
        .await
        .unwrap();
    ns.patch("blue", &pp, &kube::api::Patch::Merge(&patch("search")))
        .await
        .unwrap();
    let (_, took) = wait_for("ServiceAccounts follow the labels", TIMEOUT, || async {
        let added = env.service_account("green", "billing").await.is_some();
        let removed = env.service_account("blue", "billing").await.is_none();
        (added && removed).then_some(())
    })
    .await;
    println!("label change followed in {took:?}");

    // No selector left: the grant is withdrawn.
    env.put_roles(&[(
        "plain",
        json!({
            "bound_service_account_names": ["billing"],
            "bound_service_account_namespaces": ["green"]
        }),
    )])
    .await;
    wait_for("namespace reader removed", TIMEOUT, || async {
        cr.get_opt("vault-auth-token-reviewer-namespaces")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    controller.stop().await.expect("clean stop");
}

/// The config is rewritten when an input changes (the original only configured a fresh mount):
/// a controller restarted with another `--vault-kube-host` applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_kubernetes_host_is_applied() {
    let env = Env::start().await;
    env.put_roles(&readme_roles()).await;
    let config = || async {
        let r = env
            .bao
            .request("GET", &format!("auth/{AUTH_PATH}/config"), None)
            .await;
        (r.status == 200).then(|| r.body["data"].clone())
    };
    let first = env.controller(&["--vault-kube-host", "https://old.example:6443"]);
    wait_for("config with the first host", TIMEOUT, || async {
        let c = config().await?;
        (c["kubernetes_host"] == "https://old.example:6443").then_some(())
    })
    .await;
    first.stop().await.expect("clean stop");

    let second = env.controller(&["--vault-kube-host", "https://new.example:6443"]);
    let (c, took) = wait_for("config with the new host", TIMEOUT, || async {
        let c = config().await?;
        (c["kubernetes_host"] == "https://new.example:6443").then_some(c)
    })
    .await;
    println!("changed host applied {took:?} after restart");
    assert_eq!(
        c["token_reviewer_jwt_set"], true,
        "the full body is sent: {c}"
    );
    assert!(
        c["kubernetes_ca_cert"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    second.stop().await.expect("clean stop");
}

/// `--vault-namespace`: the mount, its config and the roles land in that OpenBao namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_only_vault_namespace_is_honoured() {
    let mut env = Env::start().await;
    env.bao.create_namespace("team1").await;
    env.bao
        .write_policy(
            Some("team1"),
            "vault-auth-kubernetes",
            testkit::README_POLICY,
        )
        .await;
    env.creds = env
        .bao
        .approle(
            Some("team1"),
            "vault-auth-kubernetes",
            json!({"token_policies": ["vault-auth-kubernetes"]}),
        )
        .await;
    env.put_roles(&readme_roles()).await;
    let controller = env.controller(&["--vault-namespace", "team1"]);
    let (_, took) = wait_for("role in namespace team1", TIMEOUT, || async {
        let r = env
            .bao
            .request("GET", &format!("team1/auth/{AUTH_PATH}/role/default"), None)
            .await;
        (r.status == 200).then_some(())
    })
    .await;
    println!("converged in namespace team1 in {took:?}");
    assert!(
        env.vault_role("default").await.is_none(),
        "nothing in the root namespace"
    );
    controller.stop().await.expect("clean stop");
}

/// A bound name that is a pattern cannot be created: a Warning Event says so, and the role is
/// still written to Vault (Vault accepts the pattern).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_patterns_are_reported() {
    let env = Env::start().await;
    env.put_roles(&[(
        "apps",
        json!({
            "bound_service_account_names": ["app-*", "web"],
            "bound_service_account_namespaces": ["default"],
            "token_policies": ["p"]
        }),
    )])
    .await;
    let controller = env.controller(&[]);
    wait_for("role and the creatable ServiceAccount", TIMEOUT, || async {
        env.vault_role("apps").await?;
        env.service_account("default", "web").await
    })
    .await;
    let (event, _) = wait_for("Warning about the pattern", TIMEOUT, || async {
        env.configmap_events()
            .await
            .into_iter()
            .find(|(t, _, note)| t == "Warning" && note.contains("app-*"))
    })
    .await;
    println!("{event:?}");
    controller.stop().await.expect("clean stop");
}

/// A Secret of the user's under the reviewer token's name is never taken over: the controller
/// reports the conflict and leaves the Secret exactly as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_secret_under_the_reviewer_name_is_left_alone() {
    let env = Env::start().await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client(), NAMESPACE);
    let own: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "token-reviewer-token"},
        "type": "Opaque",
        "stringData": {"password": "mine"}
    }))
    .unwrap();
    let before = secrets.create(&PostParams::default(), &own).await.unwrap();
    env.put_roles(&readme_roles()).await;
    let controller = env.controller(&[]);
    let (event, _) = wait_for("Warning about the conflict", TIMEOUT, || async {
        env.configmap_events()
            .await
            .into_iter()
            .find(|(t, _, note)| t == "Warning" && note.contains("token-reviewer-token"))
    })
    .await;
    println!("{event:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = secrets.get("token-reviewer-token").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert!(
        env.vault_role("default").await.is_none(),
        "no sync without a reviewer token"
    );
    controller.stop().await.expect("clean stop");
}
