//! One synchronisation pass: observe the cluster and Vault, compute the plan, carry it out, and
//! report the outcome (logs, Events on the ConfigMap, metrics).
//!
//! The pass is the same for the controller (fed by its watch caches) and for one-shot commands
//! (fed by list calls); only [`ClusterSnapshot`] differs.

mod observe;
mod report;

pub use observe::{Observation, VaultRead, VaultView};
pub use report::{
    STATUS_ANNOTATION, STATUS_MESSAGE_ANNOTATION, STATUS_TIME_ANNOTATION, Status, action_notices,
    configmap_ref, status_summary,
};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::Mutex;
use tracing::{debug, error, info, warn};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::k8s::events::Notice;
use crate::k8s::reviewer::Reviewer;
use crate::k8s::service_accounts;
use crate::k8s::snapshot::ClusterSnapshot;
use crate::names::{KUBERNETES_AUTH_TYPE, MOUNT_MAX_LEASE_TTL, REVIEWER_TOKEN_SECRET};
use crate::plan::{MountState, Plan, RoleAction};
use crate::vault::KubernetesConfigWrite;

/// Annotation on the reviewer token Secret recording the fingerprint of the auth config last
/// written to Vault. Vault never returns the reviewer JWT, so this is how a restarted controller
/// knows whether Vault already holds the current token (a SHA-256, it reveals nothing).
pub const CONFIG_FINGERPRINT_ANNOTATION: &str = "vault-auth-kubernetes/vault-config-sha256";
/// Vault requests in flight at once when reading or writing many roles.
pub const VAULT_CONCURRENCY: usize = 32;

/// Runs passes: the shared [`Context`] plus what one pass leaves for the next.
pub struct Syncer {
    ctx: Arc<Context>,
    last_written: Mutex<Option<String>>,
    /// What Vault held after the last successful pass (with that pass's writes applied), so a
    /// pass woken by a cluster change need not read every role again; the periodic resync reads
    /// Vault in full and is what finds drift made out of band.
    vault_view: Mutex<Option<VaultView>>,
}

/// The outcome of a pass.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub plan: Plan,
    /// Steps that failed, as messages.
    pub failures: Vec<String>,
    /// Number of rejected ConfigMap entries.
    pub invalid_entries: usize,
    /// ServiceAccount names the valid roles bind (patterns included).
    pub bound_names: Vec<String>,
}

impl SyncReport {
    /// True when every step succeeded.
    pub fn succeeded(&self) -> bool {
        self.failures.is_empty()
    }
}

impl Syncer {
    /// A syncer that has seen nothing yet.
    pub fn new(ctx: Arc<Context>) -> Self {
        Syncer {
            ctx,
            last_written: Mutex::new(None),
            vault_view: Mutex::new(None),
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

    /// Reads the state of the auth mount. Refuses (without touching anything) when another type
    /// of auth method sits at the path.
    pub async fn mount_state(&self) -> Result<MountState> {
        let path = self.auth_path();
        Ok(match self.ctx.vault.auth_mount(&path).await? {
            None => MountState::Missing,
            Some(m) if m.kind == KUBERNETES_AUTH_TYPE => MountState::Kubernetes,
            Some(m) => {
                return Err(Error::ForeignMount {
                    path,
                    found: m.kind,
                });
            }
        })
    }

    /// A pass that reads Vault in full: ensure the reviewer, observe, plan, apply, report.
    pub async fn sync(&self, snapshot: &ClusterSnapshot) -> Result<SyncReport> {
        self.sync_with(snapshot, VaultRead::Full).await
    }

    /// A pass; `read` says whether Vault is read in full or taken from the last pass.
    pub async fn sync_with(
        &self,
        snapshot: &ClusterSnapshot,
        read: VaultRead,
    ) -> Result<SyncReport> {
        let started = Instant::now();
        let result = self.sync_inner(snapshot, read).await;
        let ok = matches!(&result, Ok(report) if report.succeeded());
        self.ctx
            .metrics
            .reconciled(ok, started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            let regarding = configmap_ref(snapshot);
            if let Some(regarding) = regarding {
                let notice = Notice::warning("SyncFailed", "Sync", e.to_string());
                self.ctx
                    .events
                    .report_conditions(&regarding, BTreeSet::from([notice]))
                    .await;
            }
        }
        result
    }

    async fn sync_inner(&self, snapshot: &ClusterSnapshot, read: VaultRead) -> Result<SyncReport> {
        self.ctx.vault.login().await?;
        // Taken out: a pass that fails leaves no view behind, so the next one reads in full.
        let cached = self.vault_view.lock().await.take();
        let started = Instant::now();
        let vault = match (read, cached) {
            (VaultRead::Cached, Some(view)) => view,
            // Checked before any write, so a foreign auth method means nothing is touched.
            _ => self.read_vault(self.mount_state().await?).await?,
        };
        let reviewer = Reviewer {
            client: &self.ctx.client,
            namespace: &self.ctx.settings.namespace,
        };
        let jwt = reviewer.ensure(snapshot).await?;
        let mut observation = self.observe_with(snapshot, vault, jwt.clone()).await;
        let observed = started.elapsed();
        let mut plan =
            observation.plan(self.ctx.settings.mount.as_str(), &self.fingerprint_scope())?;
        let planned = started.elapsed() - observed;
        let mut report = SyncReport::default();
        if let Err(failure) = self.apply_mount_and_config(&observation, &plan).await {
            report.failures.push(failure);
        } else if plan.enable_mount {
            // The role bodies depend on what the new mount accepts (HashiCorp Vault and OpenBao
            // differ), which only the mount itself can say: read it, and plan the roles again.
            let (enabled, config) = (plan.enable_mount, plan.write_config.take());
            let vault = self.read_vault(self.mount_state().await?).await?;
            observation = self.observe_with(snapshot, vault, jwt).await;
            plan = observation.plan(self.ctx.settings.mount.as_str(), &self.fingerprint_scope())?;
            plan.enable_mount = enabled;
            plan.write_config = config;
        }
        report.invalid_entries = observation.roles.as_ref().map_or(0, |r| r.rejected.len());
        report.bound_names = observation
            .roles
            .iter()
            .flat_map(|r| r.roles.values())
            .flat_map(|role| role.service_account_names.iter().cloned())
            .collect();
        if report.failures.is_empty() {
            report.failures = self.apply_roles_and_accounts(snapshot, &plan).await;
        }
        debug!(
            observe_ms = observed.as_millis() as u64,
            plan_ms = planned.as_millis() as u64,
            apply_ms = (started.elapsed() - observed - planned).as_millis() as u64,
            "pass timings"
        );

        let selector_needed = observation.roles.as_ref().is_some_and(|r| {
            r.roles
                .values()
                .any(|role| role.namespace_selector.is_some())
        });
        if observation.roles.is_some()
            && let Err(e) = reviewer
                .ensure_namespace_reader(snapshot, selector_needed)
                .await
        {
            report.failures.push(e.to_string());
        }

        self.report(snapshot, &observation, &plan, &report).await;
        if report.succeeded() {
            *self.vault_view.lock().await = Some(VaultView::after(observation, &plan));
        }
        report.plan = plan;
        Ok(report)
    }

    /// Enables the mount and writes its config as the plan says. A failure here stops the pass:
    /// roles cannot be written without them.
    async fn apply_mount_and_config(
        &self,
        observation: &Observation,
        plan: &Plan,
    ) -> std::result::Result<(), String> {
        let path = self.auth_path();
        if plan.enable_mount {
            let description = format!(
                "Kubernetes auth backend for {} cluster (managed by vault-auth-kubernetes)",
                self.ctx.settings.mount
            );
            match self
                .ctx
                .vault
                .enable_auth(
                    &path,
                    KUBERNETES_AUTH_TYPE,
                    &description,
                    MOUNT_MAX_LEASE_TTL,
                )
                .await
            {
                Ok(()) => info!(%path, "enabled kubernetes auth method"),
                Err(e) => return Err(e.to_string()),
            }
        }
        if let Some(change) = &plan.write_config {
            let body = KubernetesConfigWrite {
                kubernetes_host: observation.config.kubernetes_host.clone(),
                kubernetes_ca_cert: observation.config.kubernetes_ca_cert.clone(),
                token_reviewer_jwt: observation.config.token_reviewer_jwt.clone(),
                disable_local_ca_jwt: true,
            };
            match self.ctx.vault.write_kubernetes_config(&path, &body).await {
                Ok(()) => {
                    info!(%path, reasons = %change.reasons.join("; "), "wrote kubernetes auth config");
                    let fingerprint = observation.config.fingerprint(&self.fingerprint_scope());
                    self.record_fingerprint(fingerprint).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    /// Carries out the role and ServiceAccount actions of the plan; returns the failures. One
    /// failure does not stop the other actions.
    async fn apply_roles_and_accounts(
        &self,
        snapshot: &ClusterSnapshot,
        plan: &Plan,
    ) -> Vec<String> {
        let path = self.auth_path();
        let mut failures = Vec::new();

        // Futures built first, then run with bounded concurrency (see `VaultClient::read_roles`
        // for why not a stream closure).
        let writes: Vec<_> = plan
            .roles
            .iter()
            .map(|action| self.apply_role(&path, action))
            .collect();
        let role_results: Vec<(String, Result<()>)> = futures::stream::iter(writes)
            .buffer_unordered(VAULT_CONCURRENCY)
            .collect()
            .await;
        for (name, result) in role_results {
            if let Err(e) = result {
                error!(role = %name, error = %e, "role change failed");
                failures.push(format!("role {name}: {e}"));
            }
        }
        for action in &plan.roles {
            match action {
                RoleAction::Create { name, .. } => info!(%path, role = %name, "created role"),
                RoleAction::Update { name, changes, .. } => {
                    let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
                    info!(%path, role = %name, fields = %fields.join(","), "updated role");
                }
                RoleAction::Delete { name } => info!(%path, role = %name, "deleted role"),
            }
        }

        let outcomes =
            service_accounts::apply(&self.ctx.client, snapshot, &plan.service_accounts).await;
        for outcome in outcomes {
            if let Err(e) = outcome.result {
                error!(error = %e, "ServiceAccount change failed");
                failures.push(e.to_string());
            }
        }
        failures
    }

    async fn apply_role(&self, path: &str, action: &RoleAction) -> (String, Result<()>) {
        match action {
            RoleAction::Create { name, body } | RoleAction::Update { name, body, .. } => (
                name.clone(),
                self.ctx.vault.write_role(path, name, body).await,
            ),
            RoleAction::Delete { name } => {
                (name.clone(), self.ctx.vault.delete_role(path, name).await)
            }
        }
    }

    /// Remembers what config was written, in memory and on the reviewer token Secret.
    async fn record_fingerprint(&self, fingerprint: String) {
        *self.last_written.lock().await = Some(fingerprint.clone());
        let api: Api<Secret> =
            Api::namespaced(self.ctx.client.clone(), &self.ctx.settings.namespace);
        let patch =
            json!({"metadata": {"annotations": {CONFIG_FINGERPRINT_ANNOTATION: fingerprint}}});
        let result = api
            .patch(
                REVIEWER_TOKEN_SECRET,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await;
        if let Err(e) = result {
            // Only costs one extra config write after a restart.
            warn!(error = %e, "could not record the config fingerprint on the reviewer Secret");
        }
    }
}
