//! Fixed names shared with the original Go tool: users switch without editing anything, so these
//! must not change.

/// ConfigMap holding one Vault role per data key.
pub const ROLES_CONFIGMAP: &str = "vault-auth-roles";
/// Default namespace of the controller (and of the ConfigMap) outside a cluster.
pub const DEFAULT_NAMESPACE: &str = "vault-auth";
/// ServiceAccount whose token Vault uses to call the TokenReview API.
pub const REVIEWER_SERVICE_ACCOUNT: &str = "token-reviewer";
/// ClusterRoleBinding giving the reviewer `system:auth-delegator`.
pub const REVIEWER_CLUSTER_ROLE_BINDING: &str = "vault-auth-token-reviewer";
/// The built-in ClusterRole that allows TokenReview and SubjectAccessReview.
pub const AUTH_DELEGATOR_CLUSTER_ROLE: &str = "system:auth-delegator";
/// Annotation the original put on every ServiceAccount it created; only those are ever deleted.
pub const MANAGED_ANNOTATION: &str = "vak-managed";
/// Value of [`MANAGED_ANNOTATION`].
pub const MANAGED_VALUE: &str = "true";
/// Label on everything this tool creates, so watches and lists can select exactly what it owns
/// (annotations cannot be selected on).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "vault-auth-kubernetes";
/// Auth method type this tool manages.
pub const KUBERNETES_AUTH_TYPE: &str = "kubernetes";
/// Vault path prefix of the auth mount: the mount is `auth/kubernetes/<mount>`.
pub const AUTH_PATH_PREFIX: &str = "kubernetes";
/// `max_lease_ttl` the original set when enabling the mount.
pub const MOUNT_MAX_LEASE_TTL: &str = "8760h";
/// Annotation on managed ServiceAccounts listing the Vault roles that want them (comma-separated).
/// It lets an invalid ConfigMap entry protect the ServiceAccounts its role created.
pub const ROLES_ANNOTATION: &str = "vault-auth-kubernetes/roles";
/// Annotation on the roles ConfigMap saying that having no entry is meant: then, and with
/// `--allow-empty-configmap`, an emptied ConfigMap deletes every role and managed
/// ServiceAccount. Without it nothing is deleted (a ConfigMap emptied by mistake, e.g. by a
/// bad template, must not wipe the cluster's Vault access).
pub const ALLOW_EMPTY_ANNOTATION: &str = "vault-auth-kubernetes/allow-empty";
/// Secret of type `kubernetes.io/service-account-token` holding the reviewer's long-lived token.
pub const REVIEWER_TOKEN_SECRET: &str = "token-reviewer-token";
/// ClusterRole and ClusterRoleBinding letting the reviewer `get` namespaces, needed only when a
/// role uses `bound_service_account_namespace_selector` (Vault then reads namespace labels).
pub const NAMESPACE_READER: &str = "vault-auth-token-reviewer-namespaces";
/// Label selector matching everything this tool creates.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=vault-auth-kubernetes";
