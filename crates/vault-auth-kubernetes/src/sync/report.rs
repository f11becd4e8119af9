//! What a pass reports, made from its outcomes only: logs, metrics, Events on the ConfigMap and
//! its status annotations. A step Vault or Kubernetes did not confirm is never announced.
//!
//! - Events are aggregated: one Normal Event per kind of confirmed change per pass ("created 3
//!   Vault roles: a, b, c"), one Warning condition per kind of problem (invalid entries, refused
//!   roles, failed steps, conflicts), naming up to [`NAMED`] objects and a count. A condition is
//!   published when it appears or changes, not again while it persists.
//! - Logs: one line per confirmed change (by the executors), problems when they appear or change;
//!   a steady state writes nothing at INFO.
//! - The status annotations say `Synced` or `Degraded` with the causes, and when that changed.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::Mutex;
use tracing::{error, info, warn};

use super::outcome::{PassReport, Step};
use crate::context::Context;
use crate::error::Error;
use crate::k8s::events::Notice;
use crate::k8s::snapshot::{ClusterSnapshot, ConfigMapState};
use crate::names::{ALLOW_EMPTY_ANNOTATION, ROLES_CONFIGMAP};
use crate::plan::{RoleAction, ServiceAccountAction};
use crate::roles::Severity;

/// Annotation on the ConfigMap: `Synced` or `Degraded`.
pub const STATUS_ANNOTATION: &str = "vault-auth-kubernetes/status";
/// Annotation on the ConfigMap: what is in sync and what is wrong, in one line.
pub const STATUS_MESSAGE_ANNOTATION: &str = "vault-auth-kubernetes/status-message";
/// Annotation on the ConfigMap: when the status last changed (RFC 3339, UTC).
pub const STATUS_TIME_ANNOTATION: &str = "vault-auth-kubernetes/status-time";

/// How many objects an aggregated message names before "and N more".
pub const NAMED: usize = 10;

/// The outcome of a pass as `kubectl get configmap vault-auth-roles -o yaml` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: String,
    pub message: String,
}

/// Remembers what was already logged, so that a persisting problem is logged once per change.
#[derive(Default)]
pub(super) struct Reporter {
    logged: Mutex<BTreeSet<String>>,
}

/// `a, b, c and 7 more` (at most [`NAMED`] items).
pub fn name_some(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(NAMED).map(String::as_str).collect();
    let mut text = shown.join(", ");
    if items.len() > NAMED {
        text.push_str(&format!(" and {} more", items.len() - NAMED));
    }
    text
}

/// `1 role` / `3 roles`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Reporter {
    /// Logs the lines of `lines` not logged while they held before; forgets the others.
    async fn log_changes(&self, lines: Vec<(tracing::Level, String, String)>) {
        let mut logged = self.logged.lock().await;
        let now: BTreeSet<String> = lines.iter().map(|(_, key, _)| key.clone()).collect();
        for (level, key, text) in &lines {
            if logged.contains(key) {
                continue;
            }
            match *level {
                tracing::Level::ERROR => error!("{text}"),
                tracing::Level::WARN => warn!("{text}"),
                _ => info!("{text}"),
            }
        }
        *logged = now;
    }

    /// Reports a pass that ran.
    pub(super) async fn pass(
        &self,
        ctx: &Context,
        snapshot: &ClusterSnapshot,
        report: &PassReport,
    ) {
        let mut lines = Vec::new();
        for finding in &report.findings {
            let (level, what) = match finding.severity {
                Severity::Error => (
                    tracing::Level::ERROR,
                    "invalid role entry skipped; its Vault role and ServiceAccounts are left as they are",
                ),
                Severity::Warning => (tracing::Level::WARN, "role entry warning"),
            };
            lines.push((
                level,
                format!("finding {finding}"),
                format!("{what}: {finding}"),
            ));
        }
        for (name, reason) in report.refused() {
            lines.push((
                tracing::Level::ERROR,
                format!("refused {name} {reason}"),
                format!("Vault refused role {name:?}, left as it was: {reason}"),
            ));
        }
        for conflict in &report.conflicts {
            lines.push((
                tracing::Level::WARN,
                format!("conflict {conflict}"),
                format!("left alone, not this tool's: {conflict}"),
            ));
        }
        for note in &report.plan.notes {
            lines.push((
                tracing::Level::INFO,
                format!("note {note}"),
                format!("plan note: {note}"),
            ));
        }
        if report.empty_configmap_held {
            lines.push((
                tracing::Level::WARN,
                "configmap empty".to_string(),
                empty_configmap_message(&ctx.settings.namespace),
            ));
        }
        if !report.configmap_present {
            lines.push((
                tracing::Level::WARN,
                "configmap missing".to_string(),
                format!(
                    "ConfigMap {}/{ROLES_CONFIGMAP} not found: no role or ServiceAccount is deleted",
                    ctx.settings.namespace
                ),
            ));
        }
        self.log_changes(lines).await;
        for failure in report.failures() {
            if let Err(e) = &failure.result {
                error!(step = %step_name(&failure.step), error = %e, "step failed");
            }
        }

        let refused = report.refused();
        ctx.metrics.set_managed(
            report.vault_roles,
            report.managed_service_accounts,
            report.rejected.len() + refused.len(),
        );

        let Some(regarding) = configmap_ref(snapshot) else {
            return;
        };
        ctx.events
            .report_conditions(&regarding, conditions(report))
            .await;
        for notice in changes(report) {
            ctx.events.publish(&regarding, &notice).await;
        }
        write_status(ctx, snapshot, &status_for_pass(report)).await;
    }

    /// Reports a pass that could not run (Vault or Kubernetes unreachable, login refused, a
    /// conflict that blocks the config, another auth method at the mount).
    pub(super) async fn failed(&self, ctx: &Context, snapshot: &ClusterSnapshot, error: &Error) {
        error!(%error, reason = error.condition_reason(), "sync pass failed");
        let Some(regarding) = configmap_ref(snapshot) else {
            return;
        };
        let notice = Notice::warning(error.condition_reason(), "Sync", error.to_string());
        ctx.events
            .report_conditions(&regarding, BTreeSet::from([notice]))
            .await;
        write_status(ctx, snapshot, &status_for_error(error)).await;
    }
}

/// What failed in a pass that ran, for readiness: how many steps, and which with their
/// causes (a few named, as in the Events).
pub fn failed_steps(report: &PassReport) -> String {
    let items = failed_step_items(report);
    format!(
        "{} of the last pass failed: {}",
        count(items.len(), "step", "steps"),
        name_some(&items)
    )
}

/// Each failed step of a pass with its cause: `create role web: vault: ... HTTP 403: ...`.
fn failed_step_items(report: &PassReport) -> Vec<String> {
    report
        .failures()
        .map(|o| match &o.result {
            Err(e) => format!("{}: {e}", step_name(&o.step)),
            Ok(_) => step_name(&o.step),
        })
        .collect()
}

/// A step for log lines: `create role web`, `delete ServiceAccount team-a/app`.
fn step_name(step: &Step) -> String {
    match step {
        Step::Reviewer(change) => {
            format!("{:?} {}", change.action, change.object_name()).to_lowercase()
        }
        Step::EnableMount { path } => format!("enable auth method at {path}"),
        Step::WriteConfig { path, .. } => format!("write config of {path}"),
        Step::Role(RoleAction::Create { name, .. }) => format!("create role {name}"),
        Step::Role(RoleAction::Update { name, .. }) => format!("update role {name}"),
        Step::Role(RoleAction::Delete { name }) => format!("delete role {name}"),
        Step::ServiceAccount(ServiceAccountAction::Create { sa, .. }) => {
            format!("create ServiceAccount {sa}")
        }
        Step::ServiceAccount(ServiceAccountAction::SetRoles { sa, .. }) => {
            format!("annotate ServiceAccount {sa}")
        }
        Step::ServiceAccount(ServiceAccountAction::Delete { sa }) => {
            format!("delete ServiceAccount {sa}")
        }
    }
}

/// What an emptied ConfigMap held back means, and how to mean it.
pub fn empty_configmap_message(namespace: &str) -> String {
    format!(
        "ConfigMap {namespace}/{ROLES_CONFIGMAP} has no entry: nothing is deleted, so the roles \
         and managed ServiceAccounts stay as they are. To delete them all, annotate the ConfigMap \
         {ALLOW_EMPTY_ANNOTATION}=\"true\" (or run with {})",
        crate::cli::Setting::AllowEmptyConfigmap.describe()
    )
}

/// The Warning conditions that hold after a pass, one per kind of problem.
pub fn conditions(report: &PassReport) -> BTreeSet<Notice> {
    let mut out = BTreeSet::new();
    if report.empty_configmap_held {
        out.insert(Notice::warning(
            "EmptyConfigMap",
            "Validate",
            format!(
                "the ConfigMap has no entry: nothing deleted; annotate it \
                 {ALLOW_EMPTY_ANNOTATION}=\"true\" to delete every role and managed ServiceAccount"
            ),
        ));
    }
    let errors: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        out.insert(Notice::warning(
            "InvalidEntries",
            "Validate",
            format!(
                "{} skipped, their Vault roles and ServiceAccounts left as they are: {}",
                count(report.rejected.len(), "invalid entry", "invalid entries"),
                name_some(&errors)
            ),
        ));
    }
    let warnings: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .map(ToString::to_string)
        .collect();
    if !warnings.is_empty() {
        out.insert(Notice::warning(
            "EntryWarnings",
            "Validate",
            format!(
                "{} applied with a warning: {}",
                count(warnings.len(), "entry", "entries"),
                name_some(&warnings)
            ),
        ));
    }
    let refused: Vec<String> = report
        .refused()
        .into_iter()
        .map(|(name, why)| format!("{name} ({why})"))
        .collect();
    if !refused.is_empty() {
        out.insert(Notice::warning(
            "RolesRefused",
            "WriteRole",
            format!(
                "Vault refused {}, left as they were: {}",
                count(refused.len(), "role", "roles"),
                name_some(&refused)
            ),
        ));
    }
    let items = failed_step_items(report);
    if !items.is_empty() {
        out.insert(Notice::warning(
            "StepsFailed",
            "Sync",
            format!(
                "{} failed (retried): {}",
                count(items.len(), "step", "steps"),
                name_some(&items)
            ),
        ));
    }
    if !report.conflicts.is_empty() {
        let items: Vec<String> = report.conflicts.iter().map(ToString::to_string).collect();
        out.insert(Notice::warning(
            "Conflicts",
            "Reviewer",
            format!(
                "{} of this tool's names {} someone else's and left alone: {}",
                count(items.len(), "object", "objects"),
                if items.len() == 1 { "is" } else { "are" },
                name_some(&items)
            ),
        ));
    }
    out
}

/// Normal Events for what Vault and Kubernetes confirmed in a pass, one per kind of change.
pub fn changes(report: &PassReport) -> Vec<Notice> {
    let mut notices = Vec::new();
    let applied: Vec<&Step> = report
        .outcomes
        .iter()
        .filter(|o| o.applied())
        .map(|o| &o.step)
        .collect();
    for step in &applied {
        match step {
            Step::EnableMount { path } => notices.push(Notice::normal(
                "AuthEnabled",
                "EnableAuth",
                format!("enabled the kubernetes auth method at {path}"),
            )),
            Step::WriteConfig { path, reasons } => notices.push(Notice::normal(
                "AuthConfigured",
                "WriteConfig",
                format!("wrote the config of {path}: {}", reasons.join("; ")),
            )),
            _ => {}
        }
    }
    let reviewer: Vec<String> = applied
        .iter()
        .filter_map(|s| match s {
            Step::Reviewer(c) => Some(format!("{:?} {}", c.action, c.object_name()).to_lowercase()),
            _ => None,
        })
        .collect();
    if !reviewer.is_empty() {
        notices.push(Notice::normal(
            "ReviewerUpdated",
            "Reviewer",
            format!("the token reviewer's objects: {}", name_some(&reviewer)),
        ));
    }
    let roles = |pick: fn(&RoleAction) -> bool| -> Vec<String> {
        applied
            .iter()
            .filter_map(|s| match s {
                Step::Role(a) if pick(a) => Some(a.name().to_string()),
                _ => None,
            })
            .collect()
    };
    for (reason, verb, names) in [
        (
            "RolesCreated",
            "created",
            roles(|a| matches!(a, RoleAction::Create { .. })),
        ),
        (
            "RolesUpdated",
            "updated",
            roles(|a| matches!(a, RoleAction::Update { .. })),
        ),
        (
            "RolesDeleted",
            "deleted (no longer in the ConfigMap)",
            roles(|a| matches!(a, RoleAction::Delete { .. })),
        ),
    ] {
        if !names.is_empty() {
            notices.push(Notice::normal(
                reason,
                "WriteRoles",
                format!(
                    "{verb} {}: {}",
                    count(names.len(), "Vault role", "Vault roles"),
                    name_some(&names)
                ),
            ));
        }
    }
    let accounts = |pick: fn(&ServiceAccountAction) -> bool| -> Vec<String> {
        report
            .applied_service_accounts(pick)
            .into_iter()
            .map(ToString::to_string)
            .collect()
    };
    for (reason, verb, names) in [
        (
            "ServiceAccountsCreated",
            "created",
            accounts(|a| matches!(a, ServiceAccountAction::Create { .. })),
        ),
        (
            "ServiceAccountsUpdated",
            "recorded the roles of",
            accounts(|a| matches!(a, ServiceAccountAction::SetRoles { .. })),
        ),
        (
            "ServiceAccountsDeleted",
            "deleted (no role binds them any more)",
            accounts(|a| matches!(a, ServiceAccountAction::Delete { .. })),
        ),
    ] {
        if !names.is_empty() {
            notices.push(Notice::normal(
                reason,
                "WriteServiceAccounts",
                format!(
                    "{verb} {}: {}",
                    count(names.len(), "ServiceAccount", "ServiceAccounts"),
                    name_some(&names)
                ),
            ));
        }
    }
    notices
}

/// The status of a pass that ran (deterministic: same outcome, same text).
pub fn status_for_pass(report: &PassReport) -> Status {
    let mut parts = vec![format!(
        "{} in Vault, {}",
        count(report.vault_roles, "role", "roles"),
        count(
            report.managed_service_accounts,
            "managed ServiceAccount",
            "managed ServiceAccounts"
        )
    )];
    if !report.configmap_present {
        parts.push("ConfigMap missing: nothing deleted".to_string());
    }
    if report.empty_configmap_held {
        parts.push("ConfigMap has no entry: nothing deleted (no allow-empty opt-in)".to_string());
    }
    if !report.rejected.is_empty() {
        parts.push(format!(
            "{} skipped: {}",
            count(report.rejected.len(), "invalid entry", "invalid entries"),
            name_some(&report.rejected)
        ));
    }
    let refused: Vec<String> = report.refused().into_keys().collect();
    if !refused.is_empty() {
        parts.push(format!(
            "Vault refused {}: {}",
            count(refused.len(), "role", "roles"),
            name_some(&refused)
        ));
    }
    let failed: Vec<String> = report.failures().map(|o| step_name(&o.step)).collect();
    if !failed.is_empty() {
        parts.push(format!(
            "{} failed: {}",
            count(failed.len(), "step", "steps"),
            name_some(&failed)
        ));
    }
    if !report.conflicts.is_empty() {
        let items: Vec<String> = report
            .conflicts
            .iter()
            .map(|c| format!("{} {}", c.kind, c.name))
            .collect();
        parts.push(format!(
            "left alone, not this tool's: {}",
            name_some(&items)
        ));
    }
    let mut message = parts.join("; ");
    if report.degraded() {
        message.push_str(" (see Events)");
    }
    Status {
        state: if report.degraded() {
            "Degraded"
        } else {
            "Synced"
        }
        .to_string(),
        message,
    }
}

/// The status of a pass that could not run.
pub fn status_for_error(error: &Error) -> Status {
    Status {
        state: "Degraded".to_string(),
        message: format!("{}: {error}", error.condition_reason()),
    }
}

/// Reference to the roles ConfigMap for Events, when it exists.
pub fn configmap_ref(snapshot: &ClusterSnapshot) -> Option<ObjectReference> {
    match &snapshot.configmap {
        ConfigMapState::Present(cm) => Some(cm.object_ref(&())),
        ConfigMapState::Missing => None,
    }
}

/// Writes the status annotations on the ConfigMap when they changed (never in a steady
/// state, so watching the ConfigMap does not loop).
async fn write_status(ctx: &Context, snapshot: &ClusterSnapshot, status: &Status) {
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
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::outcome::{Done, StepOutcome};
    use serde_json::Map;

    fn role_outcome(name: &str, result: Result<Done, Error>) -> StepOutcome {
        StepOutcome {
            step: Step::Role(RoleAction::Create {
                name: name.into(),
                body: Map::new().into(),
            }),
            result,
        }
    }

    #[test]
    fn only_confirmed_writes_are_announced() {
        let report = PassReport {
            outcomes: vec![
                role_outcome("ok", Ok(Done::Applied { warnings: vec![] })),
                role_outcome(
                    "down",
                    Err(Error::VaultStatus {
                        operation: "write_role".into(),
                        status: 503,
                        message: "sealed".into(),
                    }),
                ),
            ],
            vault_roles: 1,
            configmap_present: true,
            ..Default::default()
        };
        let notices = changes(&report);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].message, "created 1 Vault role: ok");
        let conditions = conditions(&report);
        let failed = conditions
            .iter()
            .find(|n| n.reason == "StepsFailed")
            .unwrap();
        assert!(
            failed.message.contains("create role down"),
            "{}",
            failed.message
        );
        assert!(failed.message.contains("sealed"), "{}", failed.message);
        let status = status_for_pass(&report);
        assert_eq!(status.state, "Degraded");
        assert!(
            status.message.contains("1 step failed: create role down"),
            "{}",
            status.message
        );
    }

    #[test]
    fn thousands_of_changes_make_one_event_per_kind() {
        let report = PassReport {
            outcomes: (0..5000)
                .map(|i| role_outcome(&format!("r{i:04}"), Ok(Done::Applied { warnings: vec![] })))
                .collect(),
            configmap_present: true,
            ..Default::default()
        };
        let notices = changes(&report);
        assert_eq!(notices.len(), 1);
        assert!(
            notices[0].message.ends_with("r0009 and 4990 more"),
            "{}",
            notices[0].message
        );
        assert!(
            notices[0]
                .message
                .starts_with("created 5000 Vault roles: r0000, r0001")
        );
    }

    #[test]
    fn a_failed_pass_is_degraded_with_its_cause() {
        let error = Error::VaultStatus {
            operation: "login".into(),
            status: 503,
            message: "Vault is sealed".into(),
        };
        let status = status_for_error(&error);
        assert_eq!(status.state, "Degraded");
        assert!(
            status.message.contains("Vault is sealed"),
            "{}",
            status.message
        );
    }
}
