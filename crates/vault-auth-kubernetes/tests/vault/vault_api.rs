//! Every Vault operation of the controller against a real OpenBao, with a token that holds only
//! the original README's policy (plus Vault's `default`), and how OpenBao answers the edge cases
//! the client documents (missing roles, missing mounts, fresh config, capitals, re-enabling).

use serde_json::{Map, Value, json};
use testkit::{AppRoleCredentials, CA_CERT_PEM, README_POLICY, TestVault};
use vault_auth_kubernetes::Error;
use vault_auth_kubernetes::metrics::Metrics;
use vault_auth_kubernetes::secret::Secret;
use vault_auth_kubernetes::vault::{KubernetesConfigWrite, VaultClient, VaultSettings};

const MOUNT: &str = "kubernetes/prod/eu1";

/// A client logged in with an AppRole whose only policy is the README's (in `namespace`).
async fn readme_client(bao: &TestVault, namespace: Option<&str>) -> VaultClient {
    bao.write_policy(namespace, "vault-auth-kubernetes", README_POLICY)
        .await;
    let AppRoleCredentials { role_id, secret_id } = bao
        .approle(
            namespace,
            "vak",
            json!({"token_policies": ["vault-auth-kubernetes"]}),
        )
        .await;
    let mut settings = VaultSettings::new(bao.addr(), role_id, Secret::new(secret_id));
    settings.namespace = namespace.map(str::to_string);
    let client = VaultClient::new(settings, Metrics::new()).expect("client");
    client.login().await.expect("login");
    client
}

/// A server with [`MOUNT`] enabled by a README-policy client, and that client.
async fn mounted() -> (TestVault, VaultClient) {
    let bao = TestVault::start().await;
    let vault = readme_client(&bao, None).await;
    vault
        .enable_auth(MOUNT, "kubernetes", "d", "8760h")
        .await
        .expect("enable");
    (bao, vault)
}

fn body(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn config(jwt: &str) -> KubernetesConfigWrite {
    KubernetesConfigWrite {
        kubernetes_host: "https://kubernetes.example:6443".into(),
        kubernetes_ca_cert: CA_CERT_PEM.into(),
        token_reviewer_jwt: Secret::new(jwt),
        disable_local_ca_jwt: false,
    }
}

#[tokio::test]
async fn the_readme_policy_allows_every_operation_on_a_two_segment_mount() {
    let bao = TestVault::start().await;
    let vault = readme_client(&bao, None).await;

    // Auth mount: absent, enabled with description and max_lease_ttl in the enable call.
    assert_eq!(vault.auth_mount(MOUNT).await.unwrap(), None);
    vault
        .enable_auth(MOUNT, "kubernetes", "vault-auth-kubernetes", "8760h")
        .await
        .expect("enable");
    let mount = vault.auth_mount(MOUNT).await.unwrap().expect("mounted");
    assert_eq!(mount.kind, "kubernetes");
    assert_eq!(mount.description, "vault-auth-kubernetes");
    assert_eq!(mount.max_lease_ttl, 8760 * 3600);
    assert!(mount.accessor.starts_with("auth_kubernetes_"), "{mount:?}");

    // Config: absent on a fresh mount, written in full, read back without the JWT.
    assert_eq!(vault.read_kubernetes_config(MOUNT).await.unwrap(), None);
    vault
        .write_kubernetes_config(MOUNT, &config("reviewer.jwt.one"))
        .await
        .expect("write config");
    let read = vault.read_kubernetes_config(MOUNT).await.unwrap().unwrap();
    assert_eq!(read.kubernetes_host, "https://kubernetes.example:6443");
    assert_eq!(read.kubernetes_ca_cert, CA_CERT_PEM);
    assert!(read.token_reviewer_jwt_set);
    assert!(!read.disable_local_ca_jwt);
    assert!(read.other.contains_key("pem_keys"), "{read:?}");
    assert!(!format!("{read:?}").contains("reviewer.jwt.one"));

    // Roles: write, list, read raw, read many, delete.
    let role = body(json!({
        "bound_service_account_names": ["vault-agent-injector", "default"],
        "bound_service_account_namespaces": ["kube-system", "default"],
        "token_policies": ["test"],
        "token_ttl": "1h",
    }));
    vault
        .write_role(MOUNT, "default", &role)
        .await
        .expect("write role");
    vault
        .write_role(MOUNT, "test", &role)
        .await
        .expect("write role");
    assert_eq!(vault.list_roles(MOUNT).await.unwrap(), ["default", "test"]);
    let read = vault.read_role(MOUNT, "default").await.unwrap().unwrap();
    assert_eq!(
        read["token_ttl"],
        json!(3600),
        "durations come back as seconds"
    );
    assert_eq!(read["token_policies"], json!(["test"]));
    assert_eq!(read["token_type"], json!("default"));
    assert_eq!(read["bound_service_account_namespace_selector"], json!(""));
    let names = vec!["default".to_string(), "test".to_string()];
    let all = vault.read_roles(MOUNT, &names, 2).await.unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["default", "test"]);
    assert_eq!(all["default"], read);
    vault.delete_role(MOUNT, "test").await.expect("delete role");
    assert_eq!(vault.list_roles(MOUNT).await.unwrap(), ["default"]);

    // And the mount can be disabled again.
    vault.disable_auth(MOUNT).await.expect("disable");
    assert_eq!(vault.auth_mount(MOUNT).await.unwrap(), None);
}

#[tokio::test]
async fn how_openbao_answers_the_edge_cases() {
    let (bao, vault) = mounted().await;

    // Empty mount: listing roles is 404 with no error text -> empty list.
    assert_eq!(vault.list_roles(MOUNT).await.unwrap(), Vec::<String>::new());
    // Missing role: 404 with no error text -> None.
    assert_eq!(vault.read_role(MOUNT, "nope").await.unwrap(), None);
    // Deleting a missing role: 204.
    vault
        .delete_role(MOUNT, "nope")
        .await
        .expect("delete missing role");
    // Fresh mount: reading its config is 404 (not 200 with empty fields) -> None.
    assert_eq!(vault.read_kubernetes_config(MOUNT).await.unwrap(), None);

    // Missing mount: 404 "no handler for route" -> an error, never "no roles" or "no config".
    let missing = "kubernetes/prod/none";
    for err in [
        vault.list_roles(missing).await.unwrap_err(),
        vault.read_role(missing, "x").await.unwrap_err(),
        vault.read_kubernetes_config(missing).await.unwrap_err(),
        vault
            .write_role(
                missing,
                "x",
                &body(json!({"bound_service_account_names": ["a"],
                "bound_service_account_namespaces": ["b"]})),
            )
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::VaultMountMissing { .. }), "{err}");
        assert!(
            err.to_string().contains("auth/kubernetes/prod/none"),
            "{err}"
        );
    }
    vault
        .delete_role(missing, "x")
        .await
        .expect("a role of a missing mount is gone too");
    vault
        .disable_auth(missing)
        .await
        .expect("disabling a missing mount is 204");

    // Capitals: Vault stores the role lowercased; reads and deletes are case-insensitive.
    let role = body(json!({"bound_service_account_names": ["a"],
        "bound_service_account_namespaces": ["b"]}));
    vault.write_role(MOUNT, "MyRole", &role).await.unwrap();
    assert_eq!(vault.list_roles(MOUNT).await.unwrap(), ["myrole"]);
    assert!(vault.read_role(MOUNT, "myrole").await.unwrap().is_some());
    assert!(vault.read_role(MOUNT, "MyRole").await.unwrap().is_some());
    vault.delete_role(MOUNT, "MYROLE").await.unwrap();
    assert_eq!(vault.list_roles(MOUNT).await.unwrap(), Vec::<String>::new());

    // Enabling an existing mount: Vault says 400 "path is already in use"; the client treats
    // the same type as done and another type as a foreign mount it must not touch.
    let raw = bao
        .request(
            "POST",
            &format!("sys/auth/{MOUNT}"),
            Some(json!({"type": "kubernetes"})),
        )
        .await;
    assert_eq!(raw.status, 400);
    assert!(
        raw.body.to_string().contains("path is already in use"),
        "{:?}",
        raw.body
    );
    vault
        .enable_auth(MOUNT, "kubernetes", "d", "8760h")
        .await
        .expect("same type again is success");
    bao.cli(&["auth", "enable", "-path=kubernetes/prod/other", "userpass"]);
    let err = vault
        .enable_auth("kubernetes/prod/other", "kubernetes", "d", "8760h")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ForeignMount { found, .. } if found == "userpass"),
        "{err}"
    );
    let foreign = vault
        .auth_mount("kubernetes/prod/other")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(foreign.kind, "userpass", "the foreign mount is untouched");
}

#[tokio::test]
async fn writes_are_full_bodies_and_roles_come_back_raw() {
    let (_bao, vault) = mounted().await; // the server lives until the end

    // A config write replaces the whole config: omit the JWT and Vault forgets it.
    vault
        .write_kubernetes_config(MOUNT, &config("reviewer.jwt.one"))
        .await
        .unwrap();
    assert!(
        vault
            .read_kubernetes_config(MOUNT)
            .await
            .unwrap()
            .unwrap()
            .token_reviewer_jwt_set
    );
    vault
        .write_kubernetes_config(MOUNT, &config(""))
        .await
        .unwrap();
    let read = vault.read_kubernetes_config(MOUNT).await.unwrap().unwrap();
    assert!(!read.token_reviewer_jwt_set, "{read:?}");

    // A role write keeps fields it leaves out (so callers send full bodies), except the
    // namespace selector, which is reset.
    let first = body(json!({
        "bound_service_account_names": ["a"],
        "bound_service_account_namespaces": ["ns1"],
        "bound_service_account_namespace_selector": "{\"matchLabels\":{\"team\":\"x\"}}",
        "token_policies": ["p1"],
        "token_ttl": 600,
    }));
    vault.write_role(MOUNT, "r", &first).await.unwrap();
    let read = vault.read_role(MOUNT, "r").await.unwrap().unwrap();
    assert_ne!(read["bound_service_account_namespace_selector"], json!(""));
    let second = body(json!({"bound_service_account_names": ["b"]}));
    vault.write_role(MOUNT, "r", &second).await.unwrap();
    let read = vault.read_role(MOUNT, "r").await.unwrap().unwrap();
    assert_eq!(read["bound_service_account_names"], json!(["b"]));
    assert_eq!(
        read["bound_service_account_namespaces"],
        json!(["ns1"]),
        "kept"
    );
    assert_eq!(read["token_policies"], json!(["p1"]), "kept");
    assert_eq!(read["token_ttl"], json!(600), "kept");
    assert_eq!(
        read["bound_service_account_namespace_selector"],
        json!(""),
        "reset"
    );

    // Bounded-concurrency reads: missing names are left out.
    let names: Vec<String> = (0..12).map(|i| format!("role-{i}")).collect();
    for name in &names {
        let role = body(json!({"bound_service_account_names": [name],
            "bound_service_account_namespaces": ["default"]}));
        vault.write_role(MOUNT, name, &role).await.unwrap();
    }
    let mut wanted = names.clone();
    wanted.push("missing".into());
    let read = vault.read_roles(MOUNT, &wanted, 4).await.unwrap();
    assert_eq!(read.len(), names.len());
    assert_eq!(
        read["role-7"]["bound_service_account_names"],
        json!(["role-7"])
    );

    // Names that would address another path are refused before any request.
    for bad in ["../config", "a/b", ""] {
        let err = vault.read_role(MOUNT, bad).await.unwrap_err();
        assert!(
            matches!(err, Error::VaultInvalidPath { .. }),
            "{bad:?}: {err}"
        );
    }
}

#[tokio::test]
async fn openbao_only_a_namespace_keeps_mount_config_and_roles_inside_it() {
    let bao = TestVault::start().await;
    bao.create_namespace("team1").await;
    let vault = readme_client(&bao, Some("team1")).await;

    vault
        .enable_auth(MOUNT, "kubernetes", "d", "8760h")
        .await
        .expect("enable in namespace");
    vault
        .write_kubernetes_config(MOUNT, &config("jwt"))
        .await
        .expect("config in namespace");
    let role = body(json!({"bound_service_account_names": ["a"],
        "bound_service_account_namespaces": ["b"], "token_policies": ["p"]}));
    vault
        .write_role(MOUNT, "web", &role)
        .await
        .expect("role in namespace");
    assert_eq!(vault.list_roles(MOUNT).await.unwrap(), ["web"]);

    // As root: the role is in team1, and nothing was created in the root namespace.
    let inside = bao
        .request("GET", &format!("team1/auth/{MOUNT}/role/web"), None)
        .await;
    assert_eq!(inside.status, 200, "{:?}", inside.body);
    assert_eq!(inside.body["data"]["token_policies"], json!(["p"]));
    let root = bao
        .request("GET", &format!("auth/{MOUNT}/role/web"), None)
        .await;
    assert_eq!(root.status, 404, "{:?}", root.body);
    let root_mounts = bao.request("GET", "sys/auth", None).await;
    assert!(root_mounts.body["data"].get(format!("{MOUNT}/")).is_none());
}
