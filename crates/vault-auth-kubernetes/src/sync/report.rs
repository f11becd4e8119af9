//! What a pass reports: logs, metrics, Events on the ConfigMap and its status annotations.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tracing::{error, info, warn};

use crate::k8s::events::Notice;
use crate::k8s::snapshot::{ClusterSnapshot, ConfigMapState};
use crate::names::ROLES_CONFIGMAP;
use crate::plan::{Plan, RoleAction, ServiceAccountAction};
use crate::roles::Severity;

use super::{Observation, SyncReport, Syncer};

impl Syncer {
    /// Logs, metrics and Events for a pass.
    pub(super) async fn report(
        &self,
        snapshot: &ClusterSnapshot,
        observation: &Observation,
        plan: &Plan,
        report: &SyncReport,
    ) {
        let mut conditions = BTreeSet::new();
        for finding in observation.findings() {
            match finding.severity {
                Severity::Error => {
                    error!(key = %finding.key, field = finding.field.as_deref().unwrap_or(""), problem = %finding.message, "invalid role entry skipped; its Vault role is left as it is");
                    conditions.insert(Notice::warning(
                        "InvalidRole",
                        "Validate",
                        format!("{finding}; entry skipped, Vault role left unchanged"),
                    ));
                }
                Severity::Warning => {
                    warn!(key = %finding.key, field = finding.field.as_deref().unwrap_or(""), problem = %finding.message, "role entry warning");
                    conditions.insert(Notice::warning(
                        "RoleWarning",
                        "Validate",
                        finding.to_string(),
                    ));
                }
            }
        }
        for failure in &report.failures {
            conditions.insert(Notice::warning("SyncFailed", "Sync", failure.clone()));
        }
        if observation.roles.is_none() {
            warn!(namespace = %self.ctx.settings.namespace, "ConfigMap vault-auth-roles not found: no role or ServiceAccount is deleted");
        }
        for note in &plan.notes {
            info!(note = %note, "plan note");
        }

        let roles = observation.roles.as_ref().map_or(0, |r| r.roles.len());
        let managed = snapshot
            .service_accounts
            .iter()
            .filter(|s| s.is_managed())
            .count();
        let sa_delta: i64 = plan
            .service_accounts
            .iter()
            .map(|a| match a {
                ServiceAccountAction::Create { .. } => 1,
                ServiceAccountAction::Delete { .. } => -1,
                ServiceAccountAction::SetRoles { .. } => 0,
            })
            .sum();
        let managed_after = (managed as i64 + sa_delta).max(0) as usize;
        self.ctx
            .metrics
            .set_managed(roles, managed_after, report.invalid_entries);

        let Some(regarding) = configmap_ref(snapshot) else {
            return;
        };
        self.ctx
            .events
            .report_conditions(&regarding, conditions)
            .await;
        for notice in action_notices(plan) {
            self.ctx.events.publish(&regarding, &notice).await;
        }
        let status = status_summary(observation, managed_after, report);
        self.write_status(snapshot, &status).await;
    }

    /// Writes the status annotations on the ConfigMap when they changed (never in a steady
    /// state, so watching the ConfigMap does not loop).
    async fn write_status(&self, snapshot: &ClusterSnapshot, status: &Status) {
        let ConfigMapState::Present(cm) = &snapshot.configmap else {
            return;
        };
        let current = cm.metadata.annotations.clone().unwrap_or_default();
        let same = current.get(STATUS_ANNOTATION) == Some(&status.state)
            && current.get(STATUS_MESSAGE_ANNOTATION) == Some(&status.message);
        if same {
            return;
        }
        let patch = json!({"metadata": {"annotations": {
            STATUS_ANNOTATION: status.state,
            STATUS_MESSAGE_ANNOTATION: status.message,
            STATUS_TIME_ANNOTATION: Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }}});
        let api: Api<ConfigMap> =
            Api::namespaced(self.ctx.client.clone(), &self.ctx.settings.namespace);
        if let Err(error) = api
            .patch(
                ROLES_CONFIGMAP,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            warn!(%error, "could not write the status annotations on the ConfigMap");
        }
    }
}

/// Annotation on the ConfigMap: `Synced` or `Degraded`.
pub const STATUS_ANNOTATION: &str = "vault-auth-kubernetes/status";
/// Annotation on the ConfigMap: what was applied and what was rejected, in one line.
pub const STATUS_MESSAGE_ANNOTATION: &str = "vault-auth-kubernetes/status-message";
/// Annotation on the ConfigMap: when the status last changed (RFC 3339, UTC).
pub const STATUS_TIME_ANNOTATION: &str = "vault-auth-kubernetes/status-time";

/// The outcome of a pass as `kubectl get configmap vault-auth-roles -o yaml` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: String,
    pub message: String,
}

/// Summarises a pass for the status annotations (deterministic: same outcome, same text).
pub fn status_summary(
    observation: &Observation,
    service_accounts: usize,
    report: &SyncReport,
) -> Status {
    let roles = observation.roles.as_ref();
    let applied = roles.map_or(0, |r| r.roles.len());
    let mut parts = vec![format!(
        "{applied} role(s) in sync, {service_accounts} managed ServiceAccount(s)"
    )];
    let rejected: Vec<String> = roles
        .map(|r| r.rejected.iter().cloned().collect())
        .unwrap_or_default();
    if !rejected.is_empty() {
        parts.push(format!(
            "{} invalid entr{} skipped: {} (see Events)",
            rejected.len(),
            if rejected.len() == 1 { "y" } else { "ies" },
            rejected.join(", ")
        ));
    }
    if !report.failures.is_empty() {
        parts.push(format!(
            "{} step(s) failed (see Events)",
            report.failures.len()
        ));
    }
    let state = if rejected.is_empty() && report.failures.is_empty() {
        "Synced"
    } else {
        "Degraded"
    };
    Status {
        state: state.to_string(),
        message: parts.join("; "),
    }
}

/// Reference to the roles ConfigMap for Events, when it exists.
pub fn configmap_ref(snapshot: &ClusterSnapshot) -> Option<ObjectReference> {
    match &snapshot.configmap {
        ConfigMapState::Present(cm) => Some(cm.object_ref(&())),
        ConfigMapState::Missing => None,
    }
}

/// Normal events for what a plan did (one per role action, one per kind of ServiceAccount action).
pub fn action_notices(plan: &Plan) -> Vec<Notice> {
    let mut notices = Vec::new();
    if plan.enable_mount {
        notices.push(Notice::normal(
            "AuthEnabled",
            "EnableAuth",
            "enabled the kubernetes auth method",
        ));
    }
    if let Some(change) = &plan.write_config {
        notices.push(Notice::normal(
            "AuthConfigured",
            "WriteConfig",
            format!("wrote the auth config: {}", change.reasons.join("; ")),
        ));
    }
    for action in &plan.roles {
        notices.push(match action {
            RoleAction::Create { name, .. } => Notice::normal(
                "RoleCreated",
                "CreateRole",
                format!("created Vault role {name}"),
            ),
            RoleAction::Update { name, changes, .. } => {
                let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
                Notice::normal(
                    "RoleUpdated",
                    "UpdateRole",
                    format!("updated Vault role {name}: {}", fields.join(", ")),
                )
            }
            RoleAction::Delete { name } => Notice::normal(
                "RoleDeleted",
                "DeleteRole",
                format!("deleted Vault role {name}: no longer in the ConfigMap"),
            ),
        });
    }
    let list = |pick: fn(&ServiceAccountAction) -> Option<String>| -> Vec<String> {
        plan.service_accounts.iter().filter_map(pick).collect()
    };
    let created = list(|a| match a {
        ServiceAccountAction::Create { sa, .. } => Some(sa.to_string()),
        _ => None,
    });
    let deleted = list(|a| match a {
        ServiceAccountAction::Delete { sa } => Some(sa.to_string()),
        _ => None,
    });
    if !created.is_empty() {
        notices.push(Notice::normal(
            "ServiceAccountsCreated",
            "CreateServiceAccounts",
            format!(
                "created {} ServiceAccount(s): {}",
                created.len(),
                created.join(", ")
            ),
        ));
    }
    if !deleted.is_empty() {
        notices.push(Notice::normal(
            "ServiceAccountsDeleted",
            "DeleteServiceAccounts",
            format!(
                "deleted {} ServiceAccount(s): {}",
                deleted.len(),
                deleted.join(", ")
            ),
        ));
    }
    notices
}
