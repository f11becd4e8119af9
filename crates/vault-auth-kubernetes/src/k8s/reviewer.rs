//! The token reviewer: the ServiceAccount whose token Vault uses to call TokenReview, its
//! ClusterRoleBinding to `system:auth-delegator`, and a long-lived token Secret.
//!
//! Since Kubernetes 1.24 ServiceAccounts no longer get token Secrets automatically (the original
//! relied on that). A Secret of type `kubernetes.io/service-account-token` annotated with the
//! ServiceAccount's name is the documented way to get a non-expiring token: Kubernetes' token
//! controller fills in `data.token`. Vault keeps that token, so it must not expire.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::k8s::snapshot::ClusterSnapshot;
use crate::names::{
    AUTH_DELEGATOR_CLUSTER_ROLE, MANAGED_BY_LABEL, MANAGED_BY_VALUE, NAMESPACE_READER,
    REVIEWER_CLUSTER_ROLE_BINDING, REVIEWER_SERVICE_ACCOUNT, REVIEWER_TOKEN_SECRET,
};
use crate::secret::Secret as SecretString;

/// Annotation Kubernetes' token controller reads to know which ServiceAccount a token Secret is for.
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// Secret type whose token Kubernetes fills in.
const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
/// How long to wait for Kubernetes to fill in a new token Secret.
pub const TOKEN_WAIT: Duration = Duration::from_secs(30);

/// Labels on everything the controller creates.
pub fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string())])
}

/// The reviewer binding as it must be.
pub fn desired_reviewer_binding(namespace: &str) -> ClusterRoleBinding {
    binding(
        REVIEWER_CLUSTER_ROLE_BINDING,
        AUTH_DELEGATOR_CLUSTER_ROLE,
        namespace,
    )
}

fn binding(name: &str, cluster_role: &str, namespace: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(managed_labels()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_string(),
            kind: "ClusterRole".to_string(),
            name: cluster_role.to_string(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_string(),
            name: REVIEWER_SERVICE_ACCOUNT.to_string(),
            namespace: Some(namespace.to_string()),
            api_group: None,
        }]),
    }
}

/// How an existing binding differs from the desired one.
#[derive(Debug, PartialEq, Eq)]
pub enum BindingDrift {
    /// As desired.
    None,
    /// Subjects or labels differ: an update fixes it.
    Update,
    /// roleRef differs: it is immutable, so delete and create.
    Recreate,
}

/// Compares a binding with the desired one.
pub fn binding_drift(actual: &ClusterRoleBinding, desired: &ClusterRoleBinding) -> BindingDrift {
    if actual.role_ref != desired.role_ref {
        return BindingDrift::Recreate;
    }
    let labelled = actual
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .map(String::as_str)
        == Some(MANAGED_BY_VALUE);
    let subjects = |b: &ClusterRoleBinding| {
        b.subjects
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.kind, s.name, s.namespace.unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    if !labelled || subjects(actual) != subjects(desired) {
        return BindingDrift::Update;
    }
    BindingDrift::None
}

/// Kubernetes side of the reviewer, driven by the controller's snapshot.
pub struct Reviewer<'a> {
    pub client: &'a kube::Client,
    pub namespace: &'a str,
}

impl Reviewer<'_> {
    fn op(&self, operation: &str) -> impl FnOnce(kube::Error) -> Error {
        let operation = operation.to_string();
        move |source| Error::Kube { operation, source }
    }

    /// Ensures ServiceAccount, binding and token Secret; returns the reviewer's token once
    /// Kubernetes has filled it in. Idempotent: with everything in place it makes no request.
    pub async fn ensure(&self, snapshot: &ClusterSnapshot) -> Result<SecretString> {
        self.ensure_service_account(snapshot).await?;
        self.ensure_binding(snapshot, &desired_reviewer_binding(self.namespace))
            .await?;
        self.ensure_token(snapshot).await
    }

    async fn ensure_service_account(&self, snapshot: &ClusterSnapshot) -> Result<()> {
        if snapshot
            .service_account(self.namespace, REVIEWER_SERVICE_ACCOUNT)
            .is_some()
        {
            return Ok(());
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), self.namespace);
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(REVIEWER_SERVICE_ACCOUNT.to_string()),
                labels: Some(managed_labels()),
                ..Default::default()
            },
            ..Default::default()
        };
        let result = api.create(&PostParams::default(), &sa).await;
        match result {
            Ok(_) => {
                info!(namespace = %self.namespace, name = REVIEWER_SERVICE_ACCOUNT, "created reviewer ServiceAccount");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
            Err(e) => Err(self.op("create reviewer ServiceAccount")(e)),
        }
    }

    /// Creates the binding, or corrects it when it drifted (also adopting one the original tool
    /// created without labels).
    pub async fn ensure_binding(
        &self,
        snapshot: &ClusterSnapshot,
        desired: &ClusterRoleBinding,
    ) -> Result<()> {
        let name = desired.metadata.name.clone().unwrap_or_default();
        let api: Api<ClusterRoleBinding> = Api::all(self.client.clone());
        let observed = snapshot
            .cluster_role_bindings
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some(name.as_str()))
            .cloned();
        let actual = match observed {
            Some(b) => Some(b),
            None => {
                let result = api.create(&PostParams::default(), desired).await;
                match result {
                    Ok(_) => {
                        info!(%name, "created ClusterRoleBinding");
                        return Ok(());
                    }
                    // Exists without our label (e.g. made by the original tool): adopt it below.
                    Err(kube::Error::Api(s)) if s.is_already_exists() => {
                        let got = api.get_opt(&name).await;
                        got.map_err(self.op("get ClusterRoleBinding"))?
                    }
                    Err(e) => return Err(self.op("create ClusterRoleBinding")(e)),
                }
            }
        };
        let Some(actual) = actual else {
            return Ok(());
        };
        match binding_drift(&actual, desired) {
            BindingDrift::None => Ok(()),
            BindingDrift::Update => {
                let mut fixed = desired.clone();
                fixed.metadata.resource_version = actual.metadata.resource_version.clone();
                let result = api.replace(&name, &PostParams::default(), &fixed).await;
                result.map_err(self.op("update ClusterRoleBinding"))?;
                warn!(%name, "corrected drifted ClusterRoleBinding");
                Ok(())
            }
            BindingDrift::Recreate => {
                let result = api.delete(&name, &DeleteParams::default()).await;
                match result {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.is_not_found() => {}
                    Err(e) => return Err(self.op("delete ClusterRoleBinding")(e)),
                }
                let result = api.create(&PostParams::default(), desired).await;
                result.map_err(self.op("recreate ClusterRoleBinding"))?;
                warn!(%name, "recreated ClusterRoleBinding whose roleRef had drifted");
                Ok(())
            }
        }
    }

    async fn ensure_token(&self, snapshot: &ClusterSnapshot) -> Result<SecretString> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), self.namespace);
        match &snapshot.reviewer_secret {
            Some(secret) if is_reviewer_token_secret(secret) => {
                if let Some(token) = token_of(secret) {
                    return Ok(token);
                }
                // Kubernetes has not filled in the token yet: wait for it below.
            }
            Some(secret) => {
                // Same name, wrong kind of Secret: only replace it if this tool made it.
                let ours = secret
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(MANAGED_BY_LABEL))
                    .is_some_and(|v| v == MANAGED_BY_VALUE);
                if !ours {
                    return Err(Error::Conflict(format!(
                        "Secret {}/{REVIEWER_TOKEN_SECRET} exists but is not a token Secret for \
                         {REVIEWER_SERVICE_ACCOUNT} and was not created by this tool; remove or rename it",
                        self.namespace
                    )));
                }
                match api
                    .delete(REVIEWER_TOKEN_SECRET, &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.is_not_found() => {}
                    Err(e) => return Err(self.op("delete reviewer token Secret")(e)),
                }
                self.create_token_secret(&api).await?;
            }
            None => self.create_token_secret(&api).await?,
        }
        self.wait_for_token(&api).await
    }

    async fn create_token_secret(&self, api: &Api<Secret>) -> Result<()> {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(REVIEWER_TOKEN_SECRET.to_string()),
                labels: Some(managed_labels()),
                annotations: Some(BTreeMap::from([(
                    SA_NAME_ANNOTATION.to_string(),
                    REVIEWER_SERVICE_ACCOUNT.to_string(),
                )])),
                ..Default::default()
            },
            type_: Some(SA_TOKEN_TYPE.to_string()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                info!(namespace = %self.namespace, name = REVIEWER_TOKEN_SECRET, "created reviewer token Secret");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
            Err(e) => Err(self.op("create reviewer token Secret")(e)),
        }
    }

    /// Polls the Secret until Kubernetes' token controller has filled in the token.
    async fn wait_for_token(&self, api: &Api<Secret>) -> Result<SecretString> {
        let deadline = tokio::time::Instant::now() + TOKEN_WAIT;
        loop {
            let got = api.get_opt(REVIEWER_TOKEN_SECRET).await;
            if let Some(secret) = got.map_err(self.op("get reviewer token Secret"))?
                && let Some(token) = token_of(&secret)
            {
                return Ok(token);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::ReviewerTokenTimeout {
                    namespace: self.namespace.to_string(),
                    name: REVIEWER_TOKEN_SECRET.to_string(),
                    seconds: TOKEN_WAIT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Grants (or withdraws) `get` on namespaces to the reviewer: Vault reads namespace labels
    /// when a role uses `bound_service_account_namespace_selector`.
    pub async fn ensure_namespace_reader(
        &self,
        snapshot: &ClusterSnapshot,
        needed: bool,
    ) -> Result<()> {
        let roles: Api<ClusterRole> = Api::all(self.client.clone());
        let bindings: Api<ClusterRoleBinding> = Api::all(self.client.clone());
        let has_role = snapshot
            .cluster_roles
            .iter()
            .any(|r| r.metadata.name.as_deref() == Some(NAMESPACE_READER));
        let has_binding = snapshot
            .cluster_role_bindings
            .iter()
            .any(|b| b.metadata.name.as_deref() == Some(NAMESPACE_READER));
        if needed {
            if !has_role {
                let role = ClusterRole {
                    metadata: ObjectMeta {
                        name: Some(NAMESPACE_READER.to_string()),
                        labels: Some(managed_labels()),
                        ..Default::default()
                    },
                    rules: Some(vec![PolicyRule {
                        api_groups: Some(vec![String::new()]),
                        resources: Some(vec!["namespaces".to_string()]),
                        verbs: vec!["get".to_string()],
                        ..Default::default()
                    }]),
                    aggregation_rule: None,
                };
                let result = roles.create(&PostParams::default(), &role).await;
                match result {
                    Ok(_) => info!(name = NAMESPACE_READER, "created ClusterRole"),
                    Err(kube::Error::Api(s)) if s.is_already_exists() => {}
                    Err(e) => return Err(self.op("create namespace-reader ClusterRole")(e)),
                }
            }
            let desired = binding(NAMESPACE_READER, NAMESPACE_READER, self.namespace);
            return self.ensure_binding(snapshot, &desired).await;
        }
        if has_binding {
            self.delete_namespace_reader(&bindings, "ClusterRoleBinding")
                .await?;
        }
        if has_role {
            self.delete_namespace_reader(&roles, "ClusterRole").await?;
        }
        Ok(())
    }

    /// Deletes the namespace-reader object of this kind (a 404 is success).
    async fn delete_namespace_reader<K>(&self, api: &Api<K>, kind: &str) -> Result<()>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        match api.delete(NAMESPACE_READER, &DeleteParams::default()).await {
            Ok(_) => {
                info!(name = NAMESPACE_READER, %kind, "deleted, no role uses a namespace selector");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
            Err(e) => Err(self.op(&format!("delete namespace-reader {kind}"))(e)),
        }
    }
}

/// True when the Secret is a ServiceAccount token Secret for the reviewer.
pub fn is_reviewer_token_secret(secret: &Secret) -> bool {
    secret.type_.as_deref() == Some(SA_TOKEN_TYPE)
        && secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SA_NAME_ANNOTATION))
            .map(String::as_str)
            == Some(REVIEWER_SERVICE_ACCOUNT)
}

/// The token Kubernetes filled in, if any.
pub fn token_of(secret: &Secret) -> Option<SecretString> {
    let bytes = secret.data.as_ref()?.get("token")?;
    let token = String::from_utf8(bytes.0.clone()).ok()?;
    (!token.trim().is_empty()).then(|| SecretString::new(token.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_drift_detects_subjects_labels_and_role_ref() {
        let desired = desired_reviewer_binding("vault-auth");
        assert_eq!(binding_drift(&desired, &desired), BindingDrift::None);

        let mut other_ns = desired.clone();
        other_ns.subjects.as_mut().unwrap()[0].namespace = Some("elsewhere".into());
        assert_eq!(binding_drift(&other_ns, &desired), BindingDrift::Update);

        let mut unlabelled = desired.clone();
        unlabelled.metadata.labels = None;
        assert_eq!(binding_drift(&unlabelled, &desired), BindingDrift::Update);

        let mut other_role = desired.clone();
        other_role.role_ref.name = "cluster-admin".into();
        assert_eq!(binding_drift(&other_role, &desired), BindingDrift::Recreate);
    }

    #[test]
    fn token_secret_recognised_and_token_read() {
        let mut s = Secret {
            type_: Some(SA_TOKEN_TYPE.into()),
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([(
                    SA_NAME_ANNOTATION.to_string(),
                    REVIEWER_SERVICE_ACCOUNT.to_string(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(is_reviewer_token_secret(&s));
        assert!(token_of(&s).is_none());
        s.data = Some(BTreeMap::from([(
            "token".to_string(),
            k8s_openapi::ByteString(b"eyJhbGciOi.x.y".to_vec()),
        )]));
        assert_eq!(token_of(&s).unwrap().expose(), "eyJhbGciOi.x.y");
        s.type_ = Some("Opaque".into());
        assert!(!is_reviewer_token_secret(&s));
    }
}
