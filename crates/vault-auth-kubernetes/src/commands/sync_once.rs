//! `sync --once`: one full pass (cluster read with list calls, then exactly the controller's
//! [`Syncer::sync`]), a summary on stdout, and an exit status that says whether every step
//! succeeded: for CronJobs and CI.

use std::time::{Duration, Instant};

use super::plan::{render_service_account_actions, render_vault_actions, role_changes};
use super::status;
use super::style::{Style, stdout_style};
use crate::cli::SyncArgs;
use crate::context::Context;
use crate::error::Result;
use crate::k8s::snapshot::ClusterSnapshot;
use crate::plan::{ConfigChange, RoleAction, ServiceAccountAction};
use crate::settings::Settings;
use crate::sync::{Done, PassReport, Step, StepOutcome, Syncer};

/// What `sync` without `--once` answers: continuous syncing is the controller's job.
pub const NEEDS_ONCE: &str = "`sync` runs one pass and needs --once; to keep Vault in sync \
     continuously, run the controller instead (`vault-auth-kubernetes` or \
     `vault-auth-kubernetes run`)";

/// Checks the arguments before anything is connected.
pub fn check_args(args: &SyncArgs) -> std::result::Result<(), &'static str> {
    if args.once { Ok(()) } else { Err(NEEDS_ONCE) }
}

/// Reads the cluster and runs one pass.
pub async fn sync_once(syncer: &Syncer) -> Result<PassReport> {
    let snapshot =
        ClusterSnapshot::fetch(&syncer.ctx().client, &syncer.ctx().settings.namespace).await?;
    syncer.sync(&snapshot).await
}

/// Runs `sync --once`: 0 when the ConfigMap was applied in full, 1 when a step failed or
/// something was not applied (an invalid entry, a role Vault refused, an object of the tool's
/// name that is someone else's, an emptied ConfigMap held back): a CronJob or CI job that
/// exits 0 must mean Vault and Kubernetes hold what the ConfigMap says. Vault or Kubernetes
/// unreachable is an error (also 1).
pub async fn run(settings: Settings) -> Result<u8> {
    let path = format!("auth/{}", settings.mount.auth_path());
    let ctx = Context::connect(settings).await?;
    let syncer = Syncer::new(ctx.clone());
    let started = Instant::now();
    let report = sync_once(&syncer).await;
    ctx.revoke_token().await;
    let report = report?;
    print!(
        "{}",
        render_summary(
            &report,
            &path,
            &ctx.settings.namespace,
            started.elapsed(),
            stdout_style()
        )
    );
    Ok(if !report.degraded() {
        status::SUCCESS
    } else {
        status::FAILURE
    })
}

/// The summary of a pass, from what Vault and Kubernetes answered: what was done, what was
/// rightly skipped, what Vault refused, what failed (and why).
pub fn render_summary(
    report: &PassReport,
    path: &str,
    namespace: &str,
    took: Duration,
    style: Style,
) -> String {
    let seconds = format!("{:.1}s", took.as_secs_f64());
    let failed: Vec<&StepOutcome> = report.failures().collect();
    let mut out = if failed.is_empty() && !report.degraded() {
        style.bold(&format!("Synced {path} in {seconds}."))
    } else if failed.is_empty() {
        style.removed(&format!(
            "Sync of {path} incomplete: not all of the ConfigMap was applied, see below \
             ({seconds})."
        ))
    } else {
        style.removed(&format!(
            "Sync of {path} failed: {} ({seconds}).",
            count(failed.len(), "step failed", "steps failed")
        ))
    };
    out.push('\n');
    let applied: Vec<&StepOutcome> = report.outcomes.iter().filter(|o| o.applied()).collect();
    if applied.is_empty() && failed.is_empty() && !report.degraded() {
        out += "Nothing to change: Vault and Kubernetes already matched the ConfigMap.\n";
    } else if applied.is_empty() && failed.is_empty() {
        out += "Nothing was changed.\n";
    } else if !applied.is_empty() {
        out += "Done:\n";
        for outcome in &applied {
            for line in step_lines(&outcome.step, style) {
                out += &format!("  {line}\n");
            }
        }
    }
    let skipped: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|o| match &o.result {
            Ok(Done::Skipped(why)) => Some(format!("{}: {why}", step_title(&o.step))),
            _ => None,
        })
        .collect();
    if !skipped.is_empty() {
        out += "Skipped:\n";
        for line in skipped {
            out += &format!("  {line}\n");
        }
    }
    for note in &report.plan.notes {
        out += &format!("note: {note}\n");
    }
    if !report.configmap_present {
        out += &format!(
            "ConfigMap {namespace}/{} not found: no role or ServiceAccount was deleted.\n",
            crate::names::ROLES_CONFIGMAP
        );
    }
    if report.empty_configmap_held {
        out += &style.removed(&crate::sync::empty_configmap_message(namespace));
        out.push('\n');
    }
    if !report.rejected.is_empty() {
        out += &format!(
            "{} skipped: {}; their Vault roles and ServiceAccounts were left as they are \
             (details: `vault-auth-kubernetes validate` or the ConfigMap's Events).\n",
            count(report.rejected.len(), "invalid entry", "invalid entries"),
            report.rejected.join(", ")
        );
    }
    for (name, why) in report.refused() {
        out += &style.removed(&format!("Vault refused role {name}, left as it was: {why}"));
        out.push('\n');
    }
    for conflict in &report.conflicts {
        out += &style.removed(&format!("left alone, not this tool's: {conflict}"));
        out.push('\n');
    }
    if !failed.is_empty() {
        out += &style.removed("Failed steps:");
        out.push('\n');
        for outcome in failed {
            if let Err(e) = &outcome.result {
                out += &format!("  {}: {e}\n", step_title(&outcome.step));
            }
        }
    }
    out
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line naming a step: `create role web`.
fn step_title(step: &Step) -> String {
    match step {
        Step::Reviewer(c) => format!("{:?} {}", c.action, c.object_name()).to_lowercase(),
        Step::EnableMount { path } => format!("enable the auth method at {path}"),
        Step::WriteConfig { path, .. } => format!("write the config of {path}"),
        Step::Role(a) => match a {
            RoleAction::Create { name, .. } => format!("create role {name}"),
            RoleAction::Update { name, .. } => format!("update role {name}"),
            RoleAction::Delete { name } => format!("delete role {name}"),
        },
        Step::ServiceAccount(a) => match a {
            ServiceAccountAction::Create { sa, .. } => format!("create ServiceAccount {sa}"),
            ServiceAccountAction::SetRoles { sa, .. } => {
                format!("set roles of ServiceAccount {sa}")
            }
            ServiceAccountAction::Delete { sa } => format!("delete ServiceAccount {sa}"),
        },
    }
}

/// A done step as the plan renders it (with field changes below a role).
fn step_lines(step: &Step, style: Style) -> Vec<String> {
    match step {
        Step::EnableMount { .. } => render_vault_actions(true, None, &[], style),
        Step::WriteConfig { reasons, .. } => render_vault_actions(
            false,
            Some(&ConfigChange {
                reasons: reasons.clone(),
            }),
            &[],
            style,
        ),
        Step::Role(action) => render_vault_actions(
            false,
            None,
            &role_changes(std::slice::from_ref(action)),
            style,
        ),
        Step::ServiceAccount(action) => {
            render_service_account_actions(std::slice::from_ref(action), style)
        }
        Step::Reviewer(change) => vec![style.changed(&format!("~ {}", step_title(step)))]
            .into_iter()
            .map(|l| format!("{l} ({})", change.reason))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::desired::ServiceAccountRef;
    use crate::error::Error;
    use crate::roles::FieldChange;

    fn done() -> Result<Done, Error> {
        Ok(Done::Applied { warnings: vec![] })
    }

    fn report(failed_role: bool) -> PassReport {
        let body = json!({"token_policies": ["a", "b"]})
            .as_object()
            .unwrap()
            .clone();
        let update = RoleAction::Update {
            name: "web".into(),
            body: body.into(),
            changes: vec![FieldChange {
                field: "token_policies".into(),
                from: json!(["a"]),
                to: json!(["a", "b"]),
            }],
        };
        let update_result = if failed_role {
            Err(Error::VaultStatus {
                operation: "write_role".into(),
                status: 403,
                message: "permission denied".into(),
            })
        } else {
            done()
        };
        PassReport {
            outcomes: vec![
                StepOutcome {
                    step: Step::WriteConfig {
                        path: "auth/kubernetes/prod/eu1".into(),
                        reasons: vec!["Vault holds no config".into()],
                    },
                    result: done(),
                },
                StepOutcome {
                    step: Step::Role(update),
                    result: update_result,
                },
                StepOutcome {
                    step: Step::Role(RoleAction::Delete { name: "old".into() }),
                    result: done(),
                },
                StepOutcome {
                    step: Step::ServiceAccount(ServiceAccountAction::Create {
                        sa: ServiceAccountRef {
                            namespace: "team-a".into(),
                            name: "web".into(),
                        },
                        roles: crate::role_names::RoleNames::new(["web"]),
                    }),
                    result: done(),
                },
            ],
            plan: crate::plan::Plan {
                notes: vec!["role \"x\" left as it is: its ConfigMap entry is rejected".into()],
                ..Default::default()
            },
            rejected: vec!["x".into()],
            configmap_present: true,
            ..Default::default()
        }
    }

    #[test]
    fn summary_of_a_pass_with_an_invalid_entry_is_incomplete() {
        let text = render_summary(
            &report(false),
            "auth/kubernetes/prod/eu1",
            "vault-auth",
            Duration::from_millis(1234),
            Style::default(),
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn summary_of_a_failed_pass_names_only_what_was_done_and_the_failures() {
        let text = render_summary(
            &report(true),
            "p",
            "vault-auth",
            Duration::ZERO,
            Style::default(),
        );
        assert!(
            text.starts_with("Sync of p failed: 1 step failed (0.0s).\n"),
            "{text}"
        );
        assert!(
            !text.contains("update role web\n"),
            "the failed update is not listed as done: {text}"
        );
        assert!(text.contains("- delete role old"), "{text}");
        assert!(
            text.ends_with("Failed steps:\n  update role web: vault: write_role failed with HTTP 403: permission denied\n"),
            "{text}"
        );
    }

    #[test]
    fn nothing_to_do() {
        let empty = PassReport {
            configmap_present: true,
            ..Default::default()
        };
        let text = render_summary(&empty, "p", "vault-auth", Duration::ZERO, Style::default());
        assert_eq!(
            text,
            "Synced p in 0.0s.\nNothing to change: Vault and Kubernetes already matched the ConfigMap.\n"
        );
    }

    #[test]
    fn sync_needs_once() {
        assert_eq!(
            check_args(&SyncArgs {
                once: true,
                connection: Default::default(),
                token: Default::default(),
                policy: Default::default(),
            }),
            Ok(())
        );
        assert_eq!(
            check_args(&SyncArgs {
                once: false,
                connection: Default::default(),
                token: Default::default(),
                policy: Default::default(),
            }),
            Err(NEEDS_ONCE)
        );
    }
}
