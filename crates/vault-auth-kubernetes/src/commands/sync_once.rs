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
use crate::settings::Settings;
use crate::sync::{SyncReport, Syncer};

/// What `sync` without `--once` answers: continuous syncing is the controller's job.
pub const NEEDS_ONCE: &str = "`sync` runs one pass and needs --once; to keep Vault in sync \
     continuously, run the controller instead (`vault-auth-kubernetes` or \
     `vault-auth-kubernetes run`)";

/// Checks the arguments before anything is connected.
pub fn check_args(args: &SyncArgs) -> std::result::Result<(), &'static str> {
    if args.once { Ok(()) } else { Err(NEEDS_ONCE) }
}

/// Reads the cluster and runs one pass.
pub async fn sync_once(syncer: &Syncer) -> Result<SyncReport> {
    let snapshot =
        ClusterSnapshot::fetch(&syncer.ctx().client, &syncer.ctx().settings.namespace).await?;
    syncer.sync(&snapshot).await
}

/// Runs `sync --once`: 0 when every step succeeded, 1 when one failed. Vault or Kubernetes
/// unreachable is an error (also 1).
pub async fn run(settings: Settings) -> Result<u8> {
    let path = format!("auth/{}", settings.mount.auth_path());
    let syncer = Syncer::new(Context::connect(settings).await?);
    let started = Instant::now();
    let report = sync_once(&syncer).await?;
    print!(
        "{}",
        render_summary(&report, &path, started.elapsed(), stdout_style())
    );
    Ok(if report.succeeded() {
        status::SUCCESS
    } else {
        status::FAILURE
    })
}

/// The summary of a pass: what was applied, what was skipped, what failed.
pub fn render_summary(report: &SyncReport, path: &str, took: Duration, style: Style) -> String {
    let plan = &report.plan;
    let mut lines = render_vault_actions(
        plan.enable_mount,
        plan.write_config.as_ref(),
        &role_changes(&plan.roles),
        style,
    );
    lines.extend(render_service_account_actions(
        &plan.service_accounts,
        style,
    ));
    let seconds = format!("{:.1}s", took.as_secs_f64());
    let mut out = if report.succeeded() {
        style.bold(&format!("Synced {path} in {seconds}."))
    } else {
        style.removed(&format!(
            "Sync of {path} failed: {} step(s) failed ({seconds}).",
            report.failures.len()
        ))
    };
    out.push('\n');
    if lines.is_empty() {
        out += "Nothing to change: Vault and Kubernetes already matched the ConfigMap.\n";
    } else {
        out += if report.succeeded() {
            "Changes:\n"
        } else {
            "Changes attempted (see the failed steps below):\n"
        };
        for line in lines {
            out += &format!("  {line}\n");
        }
    }
    for note in &plan.notes {
        out += &format!("note: {note}\n");
    }
    if report.invalid_entries > 0 {
        out += &format!(
            "{} invalid entr{} skipped: their Vault roles and ServiceAccounts were left as they \
             are (details: `vault-auth-kubernetes validate` or the ConfigMap's Events).\n",
            report.invalid_entries,
            if report.invalid_entries == 1 {
                "y"
            } else {
                "ies"
            }
        );
    }
    if !report.failures.is_empty() {
        out += &style.removed("Failed steps:");
        out.push('\n');
        for failure in &report.failures {
            out += &format!("  {failure}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::desired::ServiceAccountRef;
    use crate::plan::{ConfigChange, Plan, RoleAction, ServiceAccountAction};
    use crate::roles::FieldChange;

    fn report(failures: Vec<String>) -> SyncReport {
        let body = json!({"token_policies": ["a", "b"]})
            .as_object()
            .unwrap()
            .clone();
        SyncReport {
            plan: Plan {
                enable_mount: false,
                write_config: Some(ConfigChange {
                    reasons: vec!["Vault holds no config".into()],
                }),
                roles: vec![
                    RoleAction::Update {
                        name: "web".into(),
                        body,
                        changes: vec![FieldChange {
                            field: "token_policies".into(),
                            from: json!(["a"]),
                            to: json!(["a", "b"]),
                        }],
                    },
                    RoleAction::Delete { name: "old".into() },
                ],
                service_accounts: vec![ServiceAccountAction::Create {
                    sa: ServiceAccountRef {
                        namespace: "team-a".into(),
                        name: "web".into(),
                    },
                    roles: BTreeSet::from(["web".to_string()]),
                }],
                notes: vec!["role \"x\" left as it is: its ConfigMap entry is rejected".into()],
            },
            failures,
            invalid_entries: 1,
            bound_names: vec!["web".into()],
        }
    }

    #[test]
    fn summary_of_a_successful_pass() {
        let text = render_summary(
            &report(vec![]),
            "auth/kubernetes/prod/eu1",
            Duration::from_millis(1234),
            Style::default(),
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn summary_of_a_failed_pass_lists_the_failures() {
        let failed =
            vec!["role web: vault: write_role failed with HTTP 403: permission denied".into()];
        let text = render_summary(&report(failed), "p", Duration::ZERO, Style::default());
        assert!(
            text.starts_with("Sync of p failed: 1 step(s) failed (0.0s).\n"),
            "{text}"
        );
        assert!(text.contains("Changes attempted"), "{text}");
        assert!(text.ends_with("Failed steps:\n  role web: vault: write_role failed with HTTP 403: permission denied\n"), "{text}");
    }

    #[test]
    fn nothing_to_do() {
        let empty = SyncReport::default();
        let text = render_summary(&empty, "p", Duration::ZERO, Style::default());
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
                connection: Default::default()
            }),
            Ok(())
        );
        assert_eq!(
            check_args(&SyncArgs {
                once: false,
                connection: Default::default()
            }),
            Err(NEEDS_ONCE)
        );
    }
}
