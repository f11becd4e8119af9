//! Carries out the plan's ServiceAccount actions, with bounded concurrency.
//!
//! Safety: only ServiceAccounts carrying `vak-managed: "true"` are ever changed or deleted, and a
//! delete is conditioned on the uid the controller saw (a precondition), so an account that was
//! deleted and re-created by someone else in between is never removed.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Resource;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use tracing::{info, warn};

use crate::desired::ServiceAccountRef;
use crate::error::Error;
use crate::k8s::snapshot::{ClusterSnapshot, ServiceAccountMeta};
use crate::names::{MANAGED_ANNOTATION, MANAGED_VALUE, ROLES_ANNOTATION};
use crate::plan::ServiceAccountAction;
use crate::reviewer_plan::managed_labels;
use crate::role_names::RoleNames;
use crate::sync::outcome::{Done, Step, StepOutcome};

/// How many ServiceAccount requests run at once.
pub const CONCURRENCY: usize = 16;

/// The object a Create action makes.
pub fn managed_service_account(sa: &ServiceAccountRef, roles: &RoleNames) -> ServiceAccount {
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(sa.name.to_string()),
            namespace: Some(sa.namespace.to_string()),
            labels: Some(managed_labels()),
            annotations: Some(BTreeMap::from([
                (MANAGED_ANNOTATION.to_string(), MANAGED_VALUE.to_string()),
                (ROLES_ANNOTATION.to_string(), roles_annotation(roles)),
            ])),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn roles_annotation(roles: &RoleNames) -> String {
    roles.join(",")
}

/// Runs all actions, at most [`CONCURRENCY`] at a time; one failing does not stop the others.
pub async fn apply(
    client: &kube::Client,
    snapshot: &ClusterSnapshot,
    actions: &[ServiceAccountAction],
) -> Vec<StepOutcome> {
    // Indexed once when an action needs the current object: searching the cached list for each
    // of thousands of actions took quadratic time.
    let current: Current = if actions
        .iter()
        .any(|a| !matches!(a, ServiceAccountAction::Create { .. }))
    {
        snapshot
            .service_accounts
            .iter()
            .map(|sa| ((&*sa.namespace, &*sa.name), sa))
            .collect()
    } else {
        Current::new()
    };
    let current = &current;
    crate::bounded::run(actions, CONCURRENCY, |action| async move {
        let result = apply_one(client, current, action).await;
        StepOutcome {
            step: Step::ServiceAccount(action.clone()),
            result,
        }
    })
    .await
}

fn applied() -> Done {
    Done::Applied {
        warnings: Vec::new(),
    }
}

fn skipped(why: &str) -> Done {
    Done::Skipped(why.to_string())
}

/// Creates `sa` without decoding the created object Kubernetes answers with: nothing here reads
/// it (the watch brings it to the cache), and decoding ten thousand of them was a share of a
/// cold start's CPU. Errors are the same as `Api::create`'s (kube reads a failure's Status).
async fn create(client: &kube::Client, sa: &ServiceAccount) -> kube::Result<()> {
    let namespace = sa.metadata.namespace.as_deref();
    let request = kube::core::Request::new(ServiceAccount::url_path(&(), namespace))
        .create(
            &PostParams::default(),
            serde_json::to_vec(sa).map_err(kube::Error::SerdeError)?,
        )
        .map_err(kube::Error::BuildRequest)?;
    client.request_text(request).await.map(drop)
}

/// The cached ServiceAccounts by namespace and name.
type Current<'a> = HashMap<(&'a str, &'a str), &'a ServiceAccountMeta>;

async fn apply_one(
    client: &kube::Client,
    current: &Current<'_>,
    action: &ServiceAccountAction,
) -> Result<Done, Error> {
    let op = |operation: String| move |source| Error::Kube { operation, source };
    match action {
        ServiceAccountAction::Create { sa, roles } => {
            let result = create(client, &managed_service_account(sa, roles)).await;
            match result {
                Ok(_) => {
                    info!(namespace = %sa.namespace, name = %sa.name, roles = %roles_annotation(roles), "created ServiceAccount");
                    Ok(applied())
                }
                // Created by someone else since the snapshot: it is theirs, leave it alone.
                Err(kube::Error::Api(s)) if s.is_already_exists() => {
                    warn!(namespace = %sa.namespace, name = %sa.name, "ServiceAccount appeared meanwhile; left untouched");
                    Ok(skipped(
                        "appeared meanwhile: someone else's, left untouched",
                    ))
                }
                Err(e) => Err(op(format!("create ServiceAccount {sa}"))(e)),
            }
        }
        ServiceAccountAction::SetRoles { sa, roles } => {
            let Some(current) = current.get(&(&*sa.namespace, &*sa.name)).copied() else {
                return Ok(skipped("gone meanwhile"));
            };
            if !current.is_managed() {
                return Ok(skipped("not managed by this tool"));
            }
            let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &sa.namespace);
            // The resourceVersion-free merge patch only touches our annotation.
            let patch =
                json!({"metadata": {"annotations": {ROLES_ANNOTATION: roles_annotation(roles)}}});
            let result = api
                .patch(&sa.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            match result {
                Ok(_) => {
                    info!(namespace = %sa.namespace, name = %sa.name, roles = %roles_annotation(roles), "updated ServiceAccount roles");
                    Ok(applied())
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => Ok(skipped("gone meanwhile")),
                Err(e) => Err(op(format!("annotate ServiceAccount {sa}"))(e)),
            }
        }
        ServiceAccountAction::Delete { sa } => {
            let Some(current) = current.get(&(&*sa.namespace, &*sa.name)).copied() else {
                return Ok(skipped("gone meanwhile"));
            };
            if !current.is_managed() {
                // The plan never asks for this; refuse anyway, deleting is irreversible.
                warn!(namespace = %sa.namespace, name = %sa.name, "refusing to delete a ServiceAccount without vak-managed annotation");
                return Ok(skipped("not managed by this tool"));
            }
            let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &sa.namespace);
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(current.uid().to_string()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            let result = api.delete(&sa.name, &params).await;
            match result {
                Ok(_) => {
                    info!(namespace = %sa.namespace, name = %sa.name, "deleted ServiceAccount");
                    Ok(applied())
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => Ok(skipped("gone meanwhile")),
                // uid precondition failed: a different object now has this name.
                Err(kube::Error::Api(s)) if s.is_conflict() => {
                    warn!(namespace = %sa.namespace, name = %sa.name, "ServiceAccount was replaced meanwhile; not deleted");
                    Ok(skipped("replaced meanwhile by another object: not deleted"))
                }
                Err(e) => Err(op(format!("delete ServiceAccount {sa}"))(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_accounts_carry_annotation_label_and_roles() {
        let sa = ServiceAccountRef {
            namespace: "team-a".into(),
            name: "vault-agent-injector".into(),
        };
        let roles = RoleNames::new(["web", "default"]);
        let obj = managed_service_account(&sa, &roles);
        let ann = obj.metadata.annotations.unwrap();
        assert_eq!(ann["vak-managed"], "true");
        assert_eq!(ann["vault-auth-kubernetes/roles"], "default,web");
        assert_eq!(
            obj.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
            "vault-auth-kubernetes"
        );
        assert_eq!(obj.metadata.namespace.as_deref(), Some("team-a"));
    }
}
