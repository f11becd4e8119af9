//! One synchronisation pass: observe the cluster and Vault, plan, carry the plan out, and report
//! what Vault and Kubernetes confirmed (logs, Events on the ConfigMap, status, metrics).
//!
//! The pass is the same for the controller (fed by its watch caches) and for one-shot commands
//! (fed by list calls); only [`ClusterSnapshot`] differs. Its stages:
//! 1. log in to Vault and learn what it holds (read in full, or the view the last pass left);
//! 2. the reviewer's objects, planned by [`crate::reviewer_plan::plan_reviewer`] and carried out,
//!    which gives the token Vault must hold;
//! 3. the Vault plan ([`crate::plan::plan`]): the mount and its config first (nothing else can be
//!    written without them; a new mount is read right after, since the role bodies depend on
//!    the parameters it accepts), then roles and ServiceAccounts;
//! 4. the report, from the outcomes ([`outcome`]).

mod accounts;
mod apply;
mod entries;
mod observe;
pub mod outcome;
mod report;

pub use accounts::Accounts;
pub use entries::Entries;
pub use observe::{Observation, VaultRead, VaultView};
pub use outcome::{Done, PassReport, Step, StepOutcome};
pub use report::{
    STATUS_ANNOTATION, STATUS_MESSAGE_ANNOTATION, STATUS_TIME_ANNOTATION, Status, configmap_ref,
    empty_configmap_message, failed_steps, status_for_error, status_for_pass,
};

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;
use tracing::{Instrument, debug, info_span};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::k8s::reviewer::Reviewer;
use crate::k8s::service_accounts;
use crate::k8s::snapshot::ClusterSnapshot;
use crate::names::KUBERNETES_AUTH_TYPE;
use crate::plan::{MountState, refuse_foreign_mount};
use crate::reviewer_plan::{ReviewerToken, plan_reviewer};

/// Annotation on the reviewer token Secret recording the fingerprint of the auth config last
/// written to Vault. Vault never returns the reviewer JWT, so this is how a restarted controller
/// knows whether Vault already holds the current token (a SHA-256, it reveals nothing).
pub const CONFIG_FINGERPRINT_ANNOTATION: &str = "vault-auth-kubernetes/vault-config-sha256";
/// Vault requests in flight at once when reading or writing many roles.
pub const VAULT_CONCURRENCY: usize = 32;

/// Why a pass runs (a field of its span).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The first pass after start (or after becoming leader).
    Start,
    /// A change in the cluster woke the controller.
    ClusterChange,
    /// The periodic check of Vault for drift.
    Resync,
    /// The last pass failed.
    Retry,
    /// A one-shot command.
    Command,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::ClusterChange => "cluster-change",
            Trigger::Resync => "resync",
            Trigger::Retry => "retry",
            Trigger::Command => "command",
        }
    }
}

/// Runs passes: the shared [`Context`] plus what one pass leaves for the next.
pub struct Syncer {
    ctx: Arc<Context>,
    last_written: Mutex<Option<String>>,
    /// What Vault held after the last successful pass (with that pass's writes applied), so a
    /// pass woken by a cluster change need not read every role again; the periodic resync reads
    /// Vault in full and is what finds drift made out of band.
    vault_view: Mutex<Option<VaultView>>,
    reporter: report::Reporter,
    passes: std::sync::atomic::AtomicU64,
    /// The entries and the ServiceAccount side the last pass computed, reused while their
    /// inputs are the same (see [`entries`] and [`accounts`]).
    entries: entries::EntriesMemo,
    accounts: accounts::AccountsMemo,
}

impl Syncer {
    /// A syncer that has seen nothing yet.
    pub fn new(ctx: Arc<Context>) -> Self {
        Syncer {
            ctx,
            last_written: Mutex::new(None),
            vault_view: Mutex::new(None),
            reporter: report::Reporter::default(),
            passes: Default::default(),
            entries: Default::default(),
            accounts: Default::default(),
        }
    }

    /// The shared clients and settings.
    pub fn ctx(&self) -> &Arc<Context> {
        &self.ctx
    }

    fn auth_path(&self) -> String {
        self.ctx.settings.mount.auth_path()
    }

    /// What the fingerprint covers besides the config itself: which Vault and which mount.
    pub fn fingerprint_scope(&self) -> String {
        format!(
            "{}|{}|{}",
            self.ctx.settings.vault.addr,
            self.ctx.settings.vault.namespace.as_deref().unwrap_or(""),
            self.auth_path()
        )
    }

    /// What sits at the mount path (whether the controller may touch it is the plan's call).
    pub async fn mount_state(&self) -> Result<MountState> {
        Ok(match self.ctx.vault.auth_mount(&self.auth_path()).await? {
            None => MountState::Missing,
            Some(m) if m.kind == KUBERNETES_AUTH_TYPE => MountState::Kubernetes,
            Some(m) => MountState::Foreign { kind: m.kind },
        })
    }

    /// A pass that reads Vault in full.
    pub async fn sync(&self, snapshot: &ClusterSnapshot) -> Result<PassReport> {
        self.sync_with(snapshot, VaultRead::Full, Trigger::Command)
            .await
    }

    /// A pass; `read` says whether Vault is read in full or taken from the last pass. Its log
    /// lines carry a span with the pass number and what triggered it.
    pub async fn sync_with(
        &self,
        snapshot: &ClusterSnapshot,
        read: VaultRead,
        trigger: Trigger,
    ) -> Result<PassReport> {
        let pass = self
            .passes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .saturating_add(1);
        let span = info_span!("pass", pass, trigger = trigger.as_str());
        async {
            let started = Instant::now();
            let result = self.run_pass(snapshot, read).await;
            let ok = matches!(&result, Ok(report) if report.succeeded());
            self.ctx
                .metrics
                .reconciled(ok, started.elapsed().as_secs_f64());
            match &result {
                Ok(report) => self.reporter.pass(&self.ctx, snapshot, report).await,
                Err(error) => self.reporter.failed(&self.ctx, snapshot, error).await,
            }
            debug!(
                took_ms = started.elapsed().as_millis() as u64,
                ok, "pass finished"
            );
            result
        }
        .instrument(span)
        .await
    }

    async fn run_pass(&self, snapshot: &ClusterSnapshot, read: VaultRead) -> Result<PassReport> {
        self.ctx.vault.login().await?;
        // Taken out: a pass that fails leaves no view behind, so the next one reads in full.
        let cached = self.vault_view.lock().await.take();
        let vault = match (read, cached) {
            (VaultRead::Cached, Some(view)) => view,
            _ => self.read_vault(self.mount_state().await?).await?,
        };
        // The plan's rule, checked first: a foreign mount means not even the reviewer is touched.
        refuse_foreign_mount(&vault.mount, self.ctx.settings.mount.as_str())?;

        let mut report = PassReport {
            configmap_present: snapshot.roles_data().is_some(),
            ..Default::default()
        };
        // The entries as the plan will take them (guarded, fitted to the mount): whether the
        // reviewer needs to read namespaces follows from the same valid roles.
        let entries = self.entries(snapshot, vault.role_params.as_ref());
        let namespace = &self.ctx.settings.namespace;
        let reviewer_plan = plan_reviewer(snapshot, namespace, entries.roles.as_deref());
        let reviewer = Reviewer {
            client: &self.ctx.client,
            namespace,
        };
        let mut outcomes = reviewer.apply(&reviewer_plan.changes).await;
        // Without its ServiceAccount or token Secret the reviewer has no token to wait for: the
        // pass stops with the reason the object could not be made.
        let secret_failed = outcomes.iter().position(|o| {
            matches!(&o.step, Step::Reviewer(c) if c.kind == "Secret" || c.kind == "ServiceAccount")
                && o.result.is_err()
        });
        if let Some(i) = secret_failed {
            let failed = outcomes.swap_remove(i);
            return Err(failed.result.expect_err("found as failed"));
        }
        report.outcomes.extend(outcomes);
        report.conflicts = reviewer_plan.conflicts;
        let jwt = match reviewer_plan.token {
            ReviewerToken::Ready(jwt) => jwt,
            ReviewerToken::Pending => reviewer.wait_for_token().await?,
            ReviewerToken::Blocked => {
                return Err(Error::Conflict(
                    report
                        .conflicts
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ));
            }
        };

        let mut observation = self
            .observe_with(snapshot, vault, entries, jwt.clone())
            .await;
        let mut plan =
            observation.plan(self.ctx.settings.mount.as_str(), &self.fingerprint_scope())?;
        let mut stopped = self.enable_mount(&plan, &mut report).await;
        if !stopped {
            // The role bodies depend on what a new mount accepts (HashiCorp Vault and OpenBao
            // differ), which only the mount itself can say: it is read while its config is
            // written (the config it reads may predate the write; the written one is what the
            // plan keeps), and the roles are planned again. Vault has just confirmed the
            // enable: the mount is a kubernetes one, not looked up again.
            let reread = async {
                match plan.enable_mount {
                    true => Some(self.read_vault(MountState::Kubernetes).await),
                    false => None,
                }
            };
            let (config_failed, reread) =
                futures::join!(self.write_config(&observation, &plan, &mut report), reread);
            stopped = config_failed;
            if let (false, Some(vault)) = (stopped, reread) {
                let (enabled, config) = (plan.enable_mount, plan.write_config.take());
                let vault = vault?;
                let entries = self.entries(snapshot, vault.role_params.as_ref());
                observation = self.observe_with(snapshot, vault, entries, jwt).await;
                plan = observation
                    .plan(self.ctx.settings.mount.as_str(), &self.fingerprint_scope())?;
                plan.enable_mount = enabled;
                plan.write_config = config;
            }
        }
        if let Some(roles) = &observation.roles {
            report.rejected = roles.rejected.iter().cloned().collect();
            report.bound_names = roles
                .roles
                .values()
                .flat_map(|role| role.service_account_names.iter().cloned())
                .collect();
        }
        report.findings = observation.findings().cloned().collect();
        report.empty_configmap_held = observation.empty_configmap_held;
        let managed_before = match &snapshot.pending {
            None => {
                if !stopped {
                    self.apply_roles_and_accounts(snapshot, &plan, &mut report)
                        .await;
                }
                managed(snapshot)
            }
            // The namespaces and ServiceAccounts were still being listed: the roles are written
            // meanwhile, and the ServiceAccount half is planned, by the same function as any
            // pass's, and carried out once the lists are in.
            Some(pending) => {
                let roles = async {
                    match stopped {
                        true => Vec::new(),
                        false => self.apply_roles(&plan).await,
                    }
                };
                let accounts = async {
                    let listed = pending.complete(snapshot).await?;
                    let accounts =
                        (observation.roles.as_ref()).map(|roles| self.accounts.get(roles, &listed));
                    let outcomes = match (&accounts, stopped) {
                        (Some(accounts), false) => {
                            let actions = &accounts.plan.actions;
                            service_accounts::apply(&self.ctx.client, &listed, actions).await
                        }
                        _ => Vec::new(),
                    };
                    Ok::<_, Error>((managed(&listed), accounts, outcomes))
                };
                let (role_outcomes, accounts) = futures::join!(roles, accounts);
                report.outcomes.extend(role_outcomes);
                let (managed_before, accounts, outcomes) = accounts?;
                report.outcomes.extend(outcomes);
                if let Some(accounts) = &accounts {
                    plan.service_accounts = accounts.plan.actions.clone();
                    plan.notes.extend(accounts.plan.notes.iter().cloned());
                    report.findings.extend(accounts.findings.iter().cloned());
                }
                observation.service_accounts = accounts;
                managed_before
            }
        };
        report.managed_service_accounts = managed_after(managed_before, &report);
        let view = VaultView::after(observation, &plan, &report);
        report.vault_roles = view.roles.len();
        if report.succeeded() {
            *self.vault_view.lock().await = Some(view);
        }
        report.plan = plan;
        Ok(report)
    }
}

/// Managed ServiceAccounts in a snapshot.
fn managed(snapshot: &ClusterSnapshot) -> usize {
    snapshot
        .service_accounts
        .iter()
        .filter(|s| s.is_managed())
        .count()
}

/// Managed ServiceAccounts after the pass: before, plus confirmed creates, minus confirmed
/// deletes.
fn managed_after(before: usize, report: &PassReport) -> usize {
    use crate::plan::ServiceAccountAction as A;
    let created = report
        .applied_service_accounts(|a| matches!(a, A::Create { .. }))
        .len();
    let deleted = report
        .applied_service_accounts(|a| matches!(a, A::Delete { .. }))
        .len();
    (before + created).saturating_sub(deleted)
}
