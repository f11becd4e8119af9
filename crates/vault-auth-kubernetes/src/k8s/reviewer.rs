//! Carries out the reviewer's part of a plan ([`crate::reviewer_plan`]) and waits for the
//! token Kubernetes fills in. Decides nothing: every change comes with the object to write.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use tracing::info;

use crate::error::{Error, Result};
use crate::names::{NAMESPACE_READER, REVIEWER_SERVICE_ACCOUNT, REVIEWER_TOKEN_SECRET};
use crate::reviewer_plan::{Desired, KubeChange, KubeVerb, managed_labels, token_of};
use crate::secret::Secret as SecretString;
use crate::sync::outcome::{Done, Step, StepOutcome};

/// How long to wait for Kubernetes to fill in a new token Secret.
pub const TOKEN_WAIT: Duration = Duration::from_secs(30);

/// The reviewer's objects in the controller's namespace.
pub struct Reviewer<'a> {
    pub client: &'a kube::Client,
    pub namespace: &'a str,
}

fn kube_error(operation: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { operation, source }
}

/// The change's object, which the plan always gives for what it writes.
fn object(change: &KubeChange) -> Result<&Desired> {
    change.object.as_ref().ok_or_else(|| {
        Error::Conflict(format!(
            "internal: no object to write for {}",
            change.object_name()
        ))
    })
}

impl Reviewer<'_> {
    /// Carries out the changes; one failing does not stop the others (each is about another
    /// object), and each result is reported as it came back, in the plan's order.
    ///
    /// The ServiceAccount and its token Secret are made one after the other, in the plan's
    /// order: Kubernetes fills in (or, for a ServiceAccount that does not exist, deletes) a
    /// token Secret by the account it names. The cluster roles and bindings depend on nothing
    /// and are made meanwhile: a cold start waits for the slowest chain, not for the sum.
    pub async fn apply(&self, changes: &[KubeChange]) -> Vec<StepOutcome> {
        let (token, independent): (Vec<_>, Vec<_>) = changes
            .iter()
            .enumerate()
            .partition(|(_, change)| matches!(change.kind, "ServiceAccount" | "Secret"));
        let token = async {
            let mut outcomes = Vec::with_capacity(token.len());
            for (i, change) in token {
                outcomes.push((i, self.apply_logged(change).await));
            }
            outcomes
        };
        let independent = futures::future::join_all(
            (independent.into_iter())
                .map(|(i, change)| async move { (i, self.apply_logged(change).await) }),
        );
        let (mut outcomes, others) = futures::join!(token, independent);
        outcomes.extend(others);
        outcomes.sort_unstable_by_key(|(i, _)| *i);
        outcomes.into_iter().map(|(_, outcome)| outcome).collect()
    }

    async fn apply_logged(&self, change: &KubeChange) -> StepOutcome {
        let result = self.apply_one(change).await;
        if result.is_ok() {
            info!(
                action = ?change.action,
                kind = change.kind,
                name = %change.name,
                reason = %change.reason,
                "reviewer object changed"
            );
        }
        StepOutcome {
            step: Step::Reviewer(Box::new(change.clone())),
            result: result.map(|()| Done::Applied {
                warnings: Vec::new(),
            }),
        }
    }

    async fn apply_one(&self, change: &KubeChange) -> Result<()> {
        let what = change.object_name();
        match (change.action, change.kind) {
            (KubeVerb::Create, "ServiceAccount") => {
                let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), self.namespace);
                let sa = ServiceAccount {
                    metadata: ObjectMeta {
                        name: Some(REVIEWER_SERVICE_ACCOUNT.to_string()),
                        labels: Some(managed_labels()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &sa).await {
                    Ok(_) => Ok(()),
                    // Made meanwhile (by another replica, or a user): the reviewer exists.
                    Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
                    Err(e) => Err(kube_error(format!("create {what}"))(e)),
                }
            }
            (KubeVerb::Create | KubeVerb::Update | KubeVerb::Replace, "ClusterRoleBinding") => {
                let Desired::Binding(binding) = object(change)? else {
                    return Err(Error::Conflict(format!("internal: {what} is no binding")));
                };
                let api: Api<ClusterRoleBinding> = Api::all(self.client.clone());
                match change.action {
                    KubeVerb::Create => api
                        .create(&PostParams::default(), binding)
                        .await
                        .map(drop)
                        .map_err(kube_error(format!("create {what}"))),
                    // With the resourceVersion the plan saw: a binding changed since is not
                    // overwritten (409), the next pass looks at it again.
                    KubeVerb::Update => api
                        .replace(&change.name, &PostParams::default(), binding)
                        .await
                        .map(drop)
                        .map_err(kube_error(format!("update {what}"))),
                    _ => {
                        delete(&api, &change.name, &what).await?;
                        api.create(&PostParams::default(), binding)
                            .await
                            .map(drop)
                            .map_err(kube_error(format!("re-create {what}")))
                    }
                }
            }
            (KubeVerb::Delete, "ClusterRoleBinding") => {
                let api: Api<ClusterRoleBinding> = Api::all(self.client.clone());
                delete(&api, NAMESPACE_READER, &what).await
            }
            (KubeVerb::Create, "ClusterRole") => {
                let Desired::Role(role) = object(change)? else {
                    return Err(Error::Conflict(format!("internal: {what} is no role")));
                };
                let api: Api<ClusterRole> = Api::all(self.client.clone());
                api.create(&PostParams::default(), role)
                    .await
                    .map(drop)
                    .map_err(kube_error(format!("create {what}")))
            }
            (KubeVerb::Delete, "ClusterRole") => {
                let api: Api<ClusterRole> = Api::all(self.client.clone());
                delete(&api, NAMESPACE_READER, &what).await
            }
            (KubeVerb::Create | KubeVerb::Replace, "Secret") => {
                let Desired::TokenSecret(secret) = object(change)? else {
                    return Err(Error::Conflict(format!("internal: {what} is no Secret")));
                };
                let api: Api<Secret> = Api::namespaced(self.client.clone(), self.namespace);
                if change.action == KubeVerb::Replace {
                    delete(&api, REVIEWER_TOKEN_SECRET, &what).await?;
                }
                api.create(&PostParams::default(), secret)
                    .await
                    .map(drop)
                    .map_err(kube_error(format!("create {what}")))
            }
            _ => Err(Error::Conflict(format!(
                "internal: no way to {:?} {what}",
                change.action
            ))),
        }
    }

    /// Polls the token Secret until Kubernetes' token controller has filled in the token.
    pub async fn wait_for_token(&self) -> Result<SecretString> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), self.namespace);
        let deadline = tokio::time::Instant::now() + TOKEN_WAIT;
        // Kubernetes fills a new token Secret in within milliseconds: look again soon, then
        // less and less often (10 ms doubling up to 200 ms).
        let mut pause = Duration::from_millis(10);
        loop {
            let got = api
                .get_opt(REVIEWER_TOKEN_SECRET)
                .await
                .map_err(kube_error(format!(
                    "get Secret {}/{REVIEWER_TOKEN_SECRET}",
                    self.namespace
                )))?;
            if let Some(token) = got.as_ref().and_then(token_of) {
                return Ok(token);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::ReviewerTokenTimeout {
                    namespace: self.namespace.to_string(),
                    name: REVIEWER_TOKEN_SECRET.to_string(),
                    seconds: TOKEN_WAIT.as_secs(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// Deletes one object; one already gone is success.
async fn delete<K>(api: &Api<K>, name: &str, what: &str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(e) => Err(kube_error(format!("delete {what}"))(e)),
    }
}
