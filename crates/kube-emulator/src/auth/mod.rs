//! Authentication (ServiceAccount JWTs, TokenReview) and RBAC authorization.
//!
//! Pure logic: no HTTP and no storage of its own. The emulator core owns the store and hands a
//! read-only [`ObjectLookup`] to every call, so what is decided here always reflects the objects
//! as they are at that moment (a deleted ServiceAccount invalidates its tokens at once, a new
//! RoleBinding grants at once), as in Kubernetes.
pub mod authn;
pub mod jwt;
pub mod rbac;

#[cfg(test)]
pub(crate) mod testing;

/// Who a request acts as (shape of TokenReview's status.user / UserInfo).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// Read-only view of stored objects, implemented by the core's store. Objects are JSON exactly as
/// the API serves them (apiVersion, kind, metadata, ...). `resource` is the plural resource name
/// ("serviceaccounts", "secrets", "clusterroles", "clusterrolebindings", "roles", "rolebindings").
/// `namespace` is None for cluster-scoped resources (and, in `list`, for all namespaces).
pub trait ObjectLookup {
    fn get(&self, resource: &str, namespace: Option<&str>, name: &str)
    -> Option<serde_json::Value>;
    fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<serde_json::Value>;
}

/// Errors of the auth module's fallible operations.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The RSA signing key could not be generated.
    #[error("generating the RSA signing key")]
    KeyGeneration(#[source] rsa::Error),
    /// The public half of the signing key could not be encoded (DER or PEM).
    #[error("encoding the public signing key")]
    KeyEncoding(#[source] rsa::pkcs8::spki::Error),
}

/// Group every authenticated request carries.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// Group whose members pass every authorization check (Kubernetes' privileged group).
pub const MASTERS_GROUP: &str = "system:masters";
/// Group of all ServiceAccounts.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

const SERVICE_ACCOUNT_USERNAME_PREFIX: &str = "system:serviceaccount:";

/// The username Kubernetes gives a ServiceAccount: `system:serviceaccount:<ns>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}")
}

/// Splits a ServiceAccount username into (namespace, name); None for any other username.
pub fn split_service_account_username(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    if namespace.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some((namespace, name))
}

/// The identity a ServiceAccount token authenticates as, groups included.
pub fn service_account_user(namespace: &str, name: &str, uid: &str) -> UserInfo {
    UserInfo {
        username: service_account_username(namespace, name),
        uid: uid.to_string(),
        groups: vec![
            SERVICE_ACCOUNTS_GROUP.to_string(),
            format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
            AUTHENTICATED_GROUP.to_string(),
        ],
    }
}

/// `metadata.uid` of a stored object ("" if absent).
pub(crate) fn object_uid(object: &serde_json::Value) -> &str {
    object
        .pointer("/metadata/uid")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
}

/// Whether a stored object carries a `metadata.deletionTimestamp` (it is being deleted).
pub(crate) fn deletion_timestamp(object: &serde_json::Value) -> Option<i64> {
    let stamp = object.pointer("/metadata/deletionTimestamp")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_usernames_round_trip() {
        let username = service_account_username("team-a", "builder");
        assert_eq!(username, "system:serviceaccount:team-a:builder");
        assert_eq!(
            split_service_account_username(&username),
            Some(("team-a", "builder"))
        );
        assert_eq!(split_service_account_username("kubernetes-admin"), None);
        assert_eq!(
            split_service_account_username("system:serviceaccount:ns"),
            None
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount::x"),
            None
        );
    }

    #[test]
    fn service_account_user_has_kubernetes_groups() {
        let user = service_account_user("ns", "sa", "u-1");
        assert_eq!(user.username, "system:serviceaccount:ns:sa");
        assert_eq!(user.uid, "u-1");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
    }

    #[test]
    fn deletion_timestamp_is_parsed() {
        let object = serde_json::json!({"metadata": {"deletionTimestamp": "2024-01-02T03:04:05Z"}});
        assert_eq!(deletion_timestamp(&object), Some(1_704_164_645));
        assert_eq!(
            deletion_timestamp(&serde_json::json!({"metadata": {}})),
            None
        );
    }
}
