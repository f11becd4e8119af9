//! What a pass did, step by step, as values: each planned step with the answer Vault or
//! Kubernetes gave. Reports (logs, Events, metrics, status, `sync --once`) are made from these,
//! never from the plan, so a step that failed is never announced as done.

use std::collections::BTreeMap;

use crate::desired::ServiceAccountRef;
use crate::error::Error;
use crate::plan::{Plan, RoleAction, ServiceAccountAction};
use crate::reviewer_plan::{Conflict, KubeChange};
use crate::roles::Finding;

/// One step of a pass.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A change to the reviewer's objects (boxed: the steps of a cold start are mostly the
    /// small ServiceAccount ones, thousands of them).
    Reviewer(Box<KubeChange>),
    /// Enable the auth method at `auth/<path>`.
    EnableMount { path: String },
    /// Write the auth method's config, for these reasons.
    WriteConfig { path: String, reasons: Vec<String> },
    /// Create, update or delete a Vault role.
    Role(RoleAction),
    /// Create, annotate or delete a managed ServiceAccount.
    ServiceAccount(ServiceAccountAction),
}

/// How a step ended when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// Vault or Kubernetes confirmed it.
    Applied {
        /// What Vault said besides (e.g. HashiCorp Vault advises an audience), if anything.
        warnings: Vec<String>,
    },
    /// Nothing was done, and rightly: e.g. a ServiceAccount that appeared meanwhile (someone
    /// else's now) or was already gone.
    Skipped(String),
}

/// A step and its result.
#[derive(Debug)]
pub struct StepOutcome {
    pub step: Step,
    pub result: Result<Done, Error>,
}

impl StepOutcome {
    /// Applied, confirmed by the server.
    pub fn applied(&self) -> bool {
        matches!(self.result, Ok(Done::Applied { .. }))
    }

    /// Failed, and not because Vault refused one entry's content (see [`StepOutcome::refused`]).
    pub fn failed(&self) -> bool {
        self.result.is_err() && !self.refused()
    }

    /// Vault refused a role's body (HTTP 400): that entry is invalid for this server, the
    /// others are not affected, and the pass is not failed by it.
    pub fn refused(&self) -> bool {
        matches!(
            (&self.step, &self.result),
            (
                Step::Role(RoleAction::Create { .. } | RoleAction::Update { .. }),
                Err(Error::VaultStatus { status: 400, .. })
            )
        )
    }
}

/// The outcome of a pass that ran (a pass that could not run at all is an `Err` instead).
#[derive(Debug, Default)]
pub struct PassReport {
    /// What was planned (the last plan of the pass: roles are planned again once a new mount
    /// says which parameters it accepts).
    pub plan: Plan,
    /// Every step attempted, in order, with its result.
    pub outcomes: Vec<StepOutcome>,
    /// Objects of the tool's names left alone because they are not the tool's.
    pub conflicts: Vec<Conflict>,
    /// Errors and warnings of the ConfigMap's entries (rejected entries changed nothing).
    pub findings: Vec<Finding>,
    /// Vault names of rejected entries.
    pub rejected: Vec<String>,
    /// ServiceAccount names the valid roles bind (patterns included).
    pub bound_names: Vec<String>,
    /// Roles Vault holds at the mount after the pass.
    pub vault_roles: usize,
    /// Managed ServiceAccounts after the pass.
    pub managed_service_accounts: usize,
    /// False when the ConfigMap does not exist.
    pub configmap_present: bool,
    /// The ConfigMap has no entry and no opt-in: nothing was deleted (see
    /// `names::ALLOW_EMPTY_ANNOTATION`).
    pub empty_configmap_held: bool,
}

impl PassReport {
    /// Steps that failed (not counting refused entries).
    pub fn failures(&self) -> impl Iterator<Item = &StepOutcome> {
        self.outcomes.iter().filter(|o| o.failed())
    }

    /// Role writes Vault refused, by role name, with Vault's reason.
    pub fn refused(&self) -> BTreeMap<String, String> {
        self.outcomes
            .iter()
            .filter(|o| o.refused())
            .filter_map(|o| match (&o.step, &o.result) {
                (
                    Step::Role(RoleAction::Create { name, .. } | RoleAction::Update { name, .. }),
                    Err(e),
                ) => Some((name.clone(), e.to_string())),
                _ => None,
            })
            .collect()
    }

    /// Every step that was tried succeeded or was rightly skipped: what readiness and
    /// `sync --once` report. Invalid or refused entries and conflicts do not count here; they
    /// make the status `Degraded` (see [`PassReport::degraded`]).
    pub fn succeeded(&self) -> bool {
        self.failures().next().is_none()
    }

    /// Something is wrong that a user must look at: a failed step, a rejected or refused entry,
    /// or an object of the tool's name that is someone else's.
    pub fn degraded(&self) -> bool {
        !self.succeeded()
            || !self.rejected.is_empty()
            || self.outcomes.iter().any(StepOutcome::refused)
            || !self.conflicts.is_empty()
            || self.empty_configmap_held
    }

    /// Confirmed ServiceAccount steps of one kind, by reference.
    pub fn applied_service_accounts(
        &self,
        pick: fn(&ServiceAccountAction) -> bool,
    ) -> Vec<&ServiceAccountRef> {
        self.outcomes
            .iter()
            .filter(|o| o.applied())
            .filter_map(|o| match &o.step {
                Step::ServiceAccount(a) if pick(a) => Some(a.sa()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn role(name: &str) -> Step {
        Step::Role(RoleAction::Create {
            name: name.into(),
            body: Map::new().into(),
        })
    }

    fn vault_error(status: u16) -> Error {
        Error::VaultStatus {
            operation: "write_role".into(),
            status,
            message: "nope".into(),
        }
    }

    #[test]
    fn a_refused_entry_degrades_but_does_not_fail_the_pass() {
        let report = PassReport {
            outcomes: vec![
                StepOutcome {
                    step: role("a"),
                    result: Err(vault_error(400)),
                },
                StepOutcome {
                    step: role("b"),
                    result: Ok(Done::Applied { warnings: vec![] }),
                },
            ],
            ..Default::default()
        };
        assert!(report.succeeded());
        assert!(report.degraded());
        assert_eq!(report.refused().keys().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn a_denied_or_failed_write_fails_the_pass() {
        for status in [403, 500] {
            let report = PassReport {
                outcomes: vec![StepOutcome {
                    step: role("a"),
                    result: Err(vault_error(status)),
                }],
                ..Default::default()
            };
            assert!(!report.succeeded(), "{status}");
            assert!(report.refused().is_empty());
        }
        let clean = PassReport::default();
        assert!(clean.succeeded() && !clean.degraded());
    }
}
