//! The Vault operations the controller needs, each allowed by the original README's policy for a
//! two-segment mount (`sys/auth` read; `sys/auth/kubernetes/+/+`; `auth/kubernetes/+/+/config`;
//! `auth/kubernetes/+/+/role/+`).
//!
//! `path` arguments are the auth method's path below `auth/` (and `sys/auth/`), e.g.
//! `kubernetes/prod/eu1`, as [`crate::mount::Mount::auth_path`] gives it.
//!
//! How OpenBao (2.x) answers, found with the real server (tests in `tests/vault_api.rs`):
//! - a missing object (role, or the config of a fresh mount) is `404` with `{"errors":[]}`;
//! - a missing *mount* is `404` with `no handler for route "..."`: reported as
//!   [`Error::VaultMountMissing`] so it is never mistaken for "no roles" or "no config";
//! - listing the roles of an empty mount is `404` with `{"errors":[]}`, i.e. an empty list;
//! - role names are case-insensitive: a role written as `MyRole` is stored, listed and returned
//!   as `myrole`, and reading or deleting `MyRole` reaches it;
//! - enabling a path that is already mounted is `400 path is already in use at <path>/`;
//! - deleting a missing role, or disabling a missing mount, is `204`.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::VaultClient;
use super::http::{Answer, Method, VaultPath};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// An auth method as listed by `GET sys/auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMount {
    /// Auth method type, e.g. `kubernetes` or `approle`.
    pub kind: String,
    pub description: String,
    pub accessor: String,
    /// `config.max_lease_ttl` in seconds (0: the system default).
    pub max_lease_ttl: u64,
}

/// The Kubernetes auth config as Vault returns it (never with the reviewer JWT itself).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct KubernetesConfig {
    #[serde(default)]
    pub kubernetes_host: String,
    #[serde(default)]
    pub kubernetes_ca_cert: String,
    /// Whether a reviewer JWT is configured.
    #[serde(default)]
    pub token_reviewer_jwt_set: bool,
    #[serde(default)]
    pub disable_local_ca_jwt: bool,
    /// Every other field as returned (`issuer`, `pem_keys`, `disable_iss_validation`, ...).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The complete Kubernetes auth config the controller writes. A config write replaces the
/// whole config (a field left out, the JWT included, is reset), so this is always sent in full.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesConfigWrite {
    pub kubernetes_host: String,
    /// PEM of the CA(s) of the Kubernetes API.
    pub kubernetes_ca_cert: String,
    /// JWT Vault presents to the TokenReview API.
    pub token_reviewer_jwt: Secret,
    /// When true, Vault does not fall back to the CA and token of its own pod.
    pub disable_local_ca_jwt: bool,
}

/// One role body read from or written to Vault.
pub type RoleBody = Map<String, Value>;

/// `answer` if its status is one of `ok`, else the error for `operation` (a missing mount
/// becoming [`Error::VaultMountMissing`]).
fn expect(answer: Answer, operation: &str, mount: &str, ok: &[u16]) -> Result<Answer> {
    if ok.contains(&answer.status) {
        Ok(answer)
    } else if answer.is_unrouted() {
        Err(Error::VaultMountMissing {
            operation: operation.to_string(),
            path: mount.to_string(),
        })
    } else {
        Err(answer.into_error(operation))
    }
}

/// The `data` object of an answer.
fn data(answer: Answer, operation: &str) -> Result<Map<String, Value>> {
    match answer.body {
        Value::Object(mut body) => match body.remove("data") {
            Some(Value::Object(data)) => Ok(data),
            _ => Err(unexpected(operation, "no `data` object")),
        },
        _ => Err(unexpected(operation, "not a JSON object")),
    }
}

/// Path of role `name`: a single segment, so a name cannot reach another path of the mount.
fn role_path(operation: &str, path: &str, name: &str) -> Result<VaultPath> {
    if name.contains('/') {
        return Err(Error::VaultInvalidPath {
            operation: operation.to_string(),
            path: format!("auth/{path}/role/{name}"),
            message: "a role name cannot contain '/'".to_string(),
        });
    }
    VaultPath::new(operation, &["auth", path, "role", name])
}

fn unexpected(operation: &str, message: &str) -> Error {
    Error::VaultResponse {
        operation: operation.to_string(),
        message: message.to_string(),
    }
}

/// The property names of the role write request in a `?help=1` answer: the OpenAPI document's
/// `POST /role/{name}` body schema, inline or by `$ref` into `components.schemas`.
pub fn role_parameters_from_help(body: &Value) -> Option<BTreeSet<String>> {
    let openapi = body.get("openapi")?;
    let schema = openapi
        .get("paths")?
        .as_object()?
        .iter()
        .find(|(route, _)| route.starts_with("/role/"))?
        .1
        .pointer("/post/requestBody/content/application~1json/schema")?;
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/schemas/")?;
            openapi.get("components")?.get("schemas")?.get(name)?
        }
        None => schema,
    };
    let names: BTreeSet<String> = schema
        .get("properties")?
        .as_object()?
        .keys()
        .cloned()
        .collect();
    (!names.is_empty()).then_some(names)
}

/// Reads one mount out of the `sys/auth` listing (pure, for tests).
fn find_mount(mounts: &Map<String, Value>, path: &str) -> Option<AuthMount> {
    let entry = mounts.get(&format!("{}/", path.trim_end_matches('/')))?;
    let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or_default();
    Some(AuthMount {
        kind: text("type").to_string(),
        description: text("description").to_string(),
        accessor: text("accessor").to_string(),
        max_lease_ttl: entry
            .pointer("/config/max_lease_ttl")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

impl VaultClient {
    /// The auth method mounted at `path` (e.g. `kubernetes/prod/eu1`), if any, from
    /// `GET sys/auth` (the README's policy grants `read` there, not on `sys/auth/<path>`).
    pub async fn auth_mount(&self, path: &str) -> Result<Option<AuthMount>> {
        const OP: &str = "read_auth_mounts";
        VaultPath::new(OP, &[path])?; // checked even though only used as a key
        let answer = self
            .call(OP, Method::Get, &VaultPath::new(OP, &["sys/auth"])?, None)
            .await?;
        let mounts = data(expect(answer, OP, path, &[200])?, OP)?;
        Ok(find_mount(&mounts, path))
    }

    /// Enables an auth method of type `kind` at `path`. `max_lease_ttl` goes in the enable
    /// call's `config`: the README's policy does not allow `sys/mounts/.../tune`.
    ///
    /// Idempotent: if a method of the same type is already there (another replica was faster),
    /// this succeeds without changing it; a method of another type is [`Error::ForeignMount`]
    /// (the rule is the plan's, `plan::refuse_foreign_mount`: this only reports what Vault
    /// answered when a mount appeared between the plan and the write).
    pub async fn enable_auth(
        &self,
        path: &str,
        kind: &str,
        description: &str,
        max_lease_ttl: &str,
    ) -> Result<()> {
        const OP: &str = "enable_auth";
        let body = json!({
            "type": kind,
            "description": description,
            "config": { "max_lease_ttl": max_lease_ttl },
        });
        let target = VaultPath::new(OP, &["sys/auth", path])?;
        let answer = self.call(OP, Method::Post, &target, Some(&body)).await?;
        if answer.status == 400 && answer.errors().contains("already in use") {
            return match self.auth_mount(path).await? {
                Some(existing) if existing.kind == kind => Ok(()),
                Some(existing) => Err(Error::ForeignMount {
                    path: path.to_string(),
                    found: existing.kind,
                }),
                None => Err(answer.into_error(OP)),
            };
        }
        expect(answer, OP, path, &[200, 204]).map(drop)
    }

    /// Disables the auth method at `path` (and deletes its config and roles). Succeeds when
    /// nothing is mounted there.
    pub async fn disable_auth(&self, path: &str) -> Result<()> {
        const OP: &str = "disable_auth";
        let target = VaultPath::new(OP, &["sys/auth", path])?;
        let answer = self.call(OP, Method::Delete, &target, None).await?;
        expect(answer, OP, path, &[200, 204]).map(drop)
    }

    /// The Kubernetes auth config at `path`; `None` for a mount never configured.
    pub async fn read_kubernetes_config(&self, path: &str) -> Result<Option<KubernetesConfig>> {
        const OP: &str = "read_config";
        let target = VaultPath::new(OP, &["auth", path, "config"])?;
        let answer = self.call(OP, Method::Get, &target, None).await?;
        if answer.status == 404 && !answer.is_unrouted() {
            return Ok(None);
        }
        let data = data(expect(answer, OP, path, &[200])?, OP)?;
        serde_json::from_value(Value::Object(data))
            .map(Some)
            .map_err(|e| unexpected(OP, &format!("config: {e}")))
    }

    /// Writes the whole Kubernetes auth config at `path`.
    pub async fn write_kubernetes_config(
        &self,
        path: &str,
        config: &KubernetesConfigWrite,
    ) -> Result<()> {
        const OP: &str = "write_config";
        let target = VaultPath::new(OP, &["auth", path, "config"])?;
        let body = json!({
            "kubernetes_host": config.kubernetes_host,
            "kubernetes_ca_cert": config.kubernetes_ca_cert,
            "token_reviewer_jwt": config.token_reviewer_jwt.expose(),
            "disable_local_ca_jwt": config.disable_local_ca_jwt,
        });
        let answer = self.call(OP, Method::Post, &target, Some(&body)).await?;
        expect(answer, OP, path, &[200, 204]).map(drop)
    }

    /// Names of the roles at `path` (as Vault stores them: lowercase); empty when none.
    pub async fn list_roles(&self, path: &str) -> Result<Vec<String>> {
        const OP: &str = "list_roles";
        let target = VaultPath::new(OP, &["auth", path, "role"])?;
        let answer = self.call(OP, Method::List, &target, None).await?;
        if answer.status == 404 && !answer.is_unrouted() {
            return Ok(Vec::new());
        }
        let data = data(expect(answer, OP, path, &[200])?, OP)?;
        match data.get("keys") {
            Some(Value::Array(keys)) => keys
                .iter()
                .map(|k| {
                    k.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| unexpected(OP, "a role name is not a string"))
                })
                .collect(),
            _ => Err(unexpected(OP, "no `keys` list")),
        }
    }

    /// The role `name` at `path` exactly as Vault returns it; `None` if there is none.
    pub async fn read_role(&self, path: &str, name: &str) -> Result<Option<RoleBody>> {
        const OP: &str = "read_role";
        let target = role_path(OP, path, name)?;
        let answer = self.call(OP, Method::Get, &target, None).await?;
        if answer.status == 404 && !answer.is_unrouted() {
            return Ok(None);
        }
        data(expect(answer, OP, path, &[200])?, OP).map(Some)
    }

    /// Creates or replaces role `name` with `body`; returns what Vault warned about (HashiCorp
    /// Vault answers 200 with advice, OpenBao 204 without). Send the full body: fields left out
    /// keep their old value in Vault (except the namespace selector, which is reset).
    pub async fn write_role(&self, path: &str, name: &str, body: &RoleBody) -> Result<Vec<String>> {
        const OP: &str = "write_role";
        let target = role_path(OP, path, name)?;
        let body = Value::Object(body.clone());
        let answer = self.call(OP, Method::Post, &target, Some(&body)).await?;
        let answer = expect(answer, OP, path, &[200, 204])?;
        Ok(answer
            .body
            .get("warnings")
            .and_then(Value::as_array)
            .map(|w| {
                w.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Deletes role `name`; a role (or mount) that is already gone is success.
    pub async fn delete_role(&self, path: &str, name: &str) -> Result<()> {
        const OP: &str = "delete_role";
        let target = role_path(OP, path, name)?;
        let answer = self.call(OP, Method::Delete, &target, None).await?;
        expect(answer, OP, path, &[200, 204, 404]).map(drop)
    }

    /// The parameters the role endpoint of the auth method at `path` accepts, from the
    /// endpoint's own API description (`GET auth/<path>/role/<x>?help=1`, which Vault and
    /// OpenBao answer for every token): HashiCorp Vault and OpenBao differ (only OpenBao has
    /// `token_strictly_bind_ip`), and so may plugin versions. Deprecated aliases are included.
    pub async fn role_parameters(&self, path: &str) -> Result<BTreeSet<String>> {
        const OP: &str = "describe_role_endpoint";
        let target = role_path(OP, path, "parameters")?;
        let answer = self.call(OP, Method::Help, &target, None).await?;
        let answer = expect(answer, OP, path, &[200])?;
        role_parameters_from_help(&answer.body).ok_or_else(|| {
            unexpected(
                OP,
                "the endpoint's description has no request body properties",
            )
        })
    }

    /// Reads the roles `names` with at most `concurrency` requests in flight. Roles that do not
    /// exist are left out of the map; the first failure fails the whole read.
    pub async fn read_roles(
        &self,
        path: &str,
        names: &[String],
        concurrency: usize,
    ) -> Result<BTreeMap<String, RoleBody>> {
        // The futures are built first: a stream closure returning a borrowing async block makes
        // the caller's future fail rustc's higher-ranked `Send` check (rust-lang/rust#102211).
        let reads: Vec<_> = names
            .iter()
            .map(|name| async move {
                let role = self.read_role(path, name).await?;
                Ok::<_, Error>(role.map(|body| (name.clone(), body)))
            })
            .collect();
        futures::stream::iter(reads)
            .buffer_unordered(concurrency.max(1))
            .try_filter_map(|found| async move { Ok(found) })
            .try_collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_mount_by_path_in_the_sys_auth_listing() {
        let listing = json!({
            "token/": {"type": "token", "description": "token based credentials",
                       "accessor": "auth_token_1", "config": {"max_lease_ttl": 0}},
            "kubernetes/prod/eu1/": {"type": "kubernetes", "description": "d",
                       "accessor": "auth_kubernetes_2", "config": {"max_lease_ttl": 31536000}},
        });
        let Value::Object(listing) = listing else {
            unreachable!()
        };
        let found = find_mount(&listing, "kubernetes/prod/eu1").unwrap();
        assert_eq!(
            found,
            AuthMount {
                kind: "kubernetes".into(),
                description: "d".into(),
                accessor: "auth_kubernetes_2".into(),
                max_lease_ttl: 31_536_000,
            }
        );
        assert_eq!(find_mount(&listing, "kubernetes/prod"), None);
        assert_eq!(find_mount(&listing, "token").unwrap().kind, "token");
    }

    #[test]
    fn a_missing_mount_is_not_a_missing_object() {
        let unrouted = Answer {
            status: 404,
            body: json!({"errors": ["no handler for route \"auth/kubernetes/x/role/\". route entry not found."]}),
        };
        let Err(err) = expect(unrouted, "list_roles", "kubernetes/x", &[200]) else {
            panic!("a 404 without route must be an error")
        };
        assert_eq!(
            err.to_string(),
            "vault: list_roles failed: no auth method is mounted at auth/kubernetes/x"
        );
        let denied = Answer {
            status: 403,
            body: json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]}),
        };
        let Err(err) = expect(denied, "write_role", "kubernetes/x", &[204]) else {
            panic!("a 403 must be an error")
        };
        assert!(err.to_string().contains("HTTP 403"), "{err}");
        assert!(err.to_string().contains("permission denied"), "{err}");
    }

    #[test]
    fn role_parameters_are_read_from_the_endpoint_description() {
        // The shape OpenBao 2.7.2 and Vault 1.21 answer (trimmed).
        let help = json!({"openapi": {
            "paths": {"/role/{name}": {"post": {"requestBody": {"content": {"application/json":
                {"schema": {"$ref": "#/components/schemas/KubernetesWriteAuthRoleRequest"}}}}}}},
            "components": {"schemas": {"KubernetesWriteAuthRoleRequest": {"properties": {
                "audience": {}, "token_policies": {}, "ttl": {}}}}}
        }});
        let names = role_parameters_from_help(&help).unwrap();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["audience", "token_policies", "ttl"]
        );
        let inline = json!({"openapi": {"paths": {"/role/{name}": {"post": {"requestBody":
            {"content": {"application/json": {"schema": {"properties": {"a": {}}}}}}}}}}});
        assert_eq!(role_parameters_from_help(&inline).unwrap().len(), 1);
        assert_eq!(role_parameters_from_help(&json!({"help": "text"})), None);
    }

    #[test]
    fn the_config_write_body_is_redacted_in_debug() {
        let write = KubernetesConfigWrite {
            kubernetes_host: "https://k:6443".into(),
            token_reviewer_jwt: Secret::new("eyJhbGciOi.secret.jwt"),
            ..Default::default()
        };
        assert!(!format!("{write:?}").contains("eyJhbGciOi"));
    }
}
