//! AppRole set-up on a test server: a policy, a role, and the credentials the controller uses.

use serde_json::{Value, json};

use crate::TestVault;

/// The Vault policy from the original tool's README, verbatim, for a two-segment mount
/// (`--vault-mount <environment>/<cluster>`): all the controller may need.
pub const README_POLICY: &str = r#"path "sys/auth" {
  capabilities = ["list", "read"]
}
path "sys/auth/kubernetes/+/+" {
  capabilities = ["list", "read", "create", "update", "delete", "sudo"]
}
path "auth/kubernetes/+/+/config" {
  capabilities = ["list", "read", "create", "update", "sudo"]
}
path "auth/kubernetes/+/+/role/+" {
  capabilities = ["list", "read", "create", "update", "delete"]
}
"#;

/// Credentials of an AppRole role.
#[derive(Debug, Clone)]
pub struct AppRoleCredentials {
    pub role_id: String,
    pub secret_id: String,
}

/// Name of the README's policy and of the AppRole holding it.
pub const README_APPROLE: &str = "vault-auth-kubernetes";

impl TestVault {
    /// The README's Vault set-up: policy `vault-auth-kubernetes` (verbatim, [`README_POLICY`])
    /// and an AppRole of that name holding only it, with `extra` role parameters (e.g.
    /// `{"token_ttl": "5s"}`); returns its credentials.
    pub async fn readme_approle(&self, extra: Value) -> AppRoleCredentials {
        self.write_policy(None, README_APPROLE, README_POLICY).await;
        let mut params = json!({"token_policies": [README_APPROLE]});
        if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
            params.extend(extra.clone());
        }
        self.approle(None, README_APPROLE, params).await
    }

    /// Sets up [`TestVault::readme_approle`] again with the same role-id and secret-id, as an
    /// operator restoring a Vault that lost its storage would.
    pub async fn restore_readme_approle(&self, creds: &AppRoleCredentials) {
        self.readme_approle(json!({})).await;
        let role = format!("auth/approle/role/{README_APPROLE}");
        let r = self
            .request(
                "POST",
                &format!("{role}/role-id"),
                Some(json!({"role_id": creds.role_id})),
            )
            .await;
        assert!(r.status < 300, "set role-id: {r:?}");
        let r = self
            .request(
                "POST",
                &format!("{role}/custom-secret-id"),
                Some(json!({"secret_id": creds.secret_id})),
            )
            .await;
        assert!(r.status < 300, "set secret-id: {r:?}");
    }

    /// Creates a namespace (OpenBao namespaces, as `bao namespace create`).
    pub async fn create_namespace(&self, name: &str) {
        let resp = self
            .request("POST", &format!("sys/namespaces/{name}"), Some(json!({})))
            .await;
        assert!(resp.status < 300, "create namespace {name}: {resp:?}");
    }

    /// Writes ACL policy `name` in `namespace` (`None`: the root namespace).
    pub async fn write_policy(&self, namespace: Option<&str>, name: &str, hcl: &str) {
        let path = format!("{}sys/policies/acl/{name}", prefix(namespace));
        let resp = self
            .request("POST", &path, Some(json!({ "policy": hcl })))
            .await;
        assert!(resp.status < 300, "write policy {name}: {resp:?}");
    }

    /// Enables AppRole at `approle/` of `namespace` (if not yet there), creates role `name`
    /// with `params` (e.g. `{"token_policies": ["x"], "token_ttl": "5s"}`) and returns its
    /// role-id and a new secret-id.
    pub async fn approle(
        &self,
        namespace: Option<&str>,
        name: &str,
        params: Value,
    ) -> AppRoleCredentials {
        let ns = prefix(namespace);
        let enable = self
            .request(
                "POST",
                &format!("{ns}sys/auth/approle"),
                Some(json!({"type": "approle"})),
            )
            .await;
        let already = enable.body.to_string().contains("already in use");
        assert!(enable.status < 300 || already, "enable approle: {enable:?}");

        let role = format!("{ns}auth/approle/role/{name}");
        let write = self.request("POST", &role, Some(params)).await;
        assert!(write.status < 300, "write approle role {name}: {write:?}");
        let role_id = self.request("GET", &format!("{role}/role-id"), None).await;
        let secret_id = self
            .request("POST", &format!("{role}/secret-id"), Some(json!({})))
            .await;
        let field = |body: &Value, key: &str| {
            body["data"][key]
                .as_str()
                .unwrap_or_else(|| panic!("approle {name}: no data.{key} in {body}"))
                .to_string()
        };
        AppRoleCredentials {
            role_id: field(&role_id.body, "role_id"),
            secret_id: field(&secret_id.body, "secret_id"),
        }
    }

    /// Number of tokens the server holds (`LIST auth/token/accessors` as root): counts logins.
    pub async fn token_count(&self) -> usize {
        let resp = self.request("LIST", "auth/token/accessors", None).await;
        assert_eq!(resp.status, 200, "list token accessors: {resp:?}");
        resp.body["data"]["keys"]
            .as_array()
            .map_or(0, |keys| keys.len())
    }
}

/// Path prefix addressing a namespace (OpenBao accepts it in the path as well as in
/// `X-Vault-Namespace`).
fn prefix(namespace: Option<&str>) -> String {
    namespace.map_or_else(String::new, |ns| format!("{}/", ns.trim_matches('/')))
}
