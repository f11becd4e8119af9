//! Carrying out the Vault side of a plan and the ServiceAccounts, one outcome per step.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tracing::{info, warn};

use super::outcome::{Done, PassReport, Step, StepOutcome};
use super::{CONFIG_FINGERPRINT_ANNOTATION, Observation, Syncer, VAULT_CONCURRENCY};
use crate::error::Result;
use crate::k8s::service_accounts;
use crate::k8s::snapshot::ClusterSnapshot;
use crate::names::{KUBERNETES_AUTH_TYPE, MOUNT_MAX_LEASE_TTL, REVIEWER_TOKEN_SECRET};
use crate::plan::{Plan, RoleAction};
use crate::vault::KubernetesConfigWrite;

fn applied(warnings: Vec<String>) -> Done {
    Done::Applied { warnings }
}

impl Syncer {
    /// Enables the mount when the plan says so. Returns true when that failed: the pass stops
    /// there, nothing else can be written without the mount.
    pub(super) async fn enable_mount(&self, plan: &Plan, report: &mut PassReport) -> bool {
        let path = self.auth_path();
        if plan.enable_mount {
            let description = format!(
                "Kubernetes auth backend for {} cluster (managed by vault-auth-kubernetes)",
                self.ctx.settings.mount
            );
            let result = self
                .ctx
                .vault
                .enable_auth(
                    &path,
                    KUBERNETES_AUTH_TYPE,
                    &description,
                    MOUNT_MAX_LEASE_TTL,
                )
                .await;
            if result.is_ok() {
                info!(path = %format!("auth/{path}"), "enabled the kubernetes auth method");
            }
            let failed = result.is_err();
            report.outcomes.push(StepOutcome {
                step: Step::EnableMount {
                    path: format!("auth/{path}"),
                },
                result: result.map(|()| applied(Vec::new())),
            });
            if failed {
                return true;
            }
        }
        false
    }

    /// Writes the mount's config when the plan says so. Returns true when that failed: the
    /// pass stops there, the roles are not written to a mount that cannot review tokens.
    pub(super) async fn write_config(
        &self,
        observation: &Observation,
        plan: &Plan,
        report: &mut PassReport,
    ) -> bool {
        let path = self.auth_path();
        if let Some(change) = &plan.write_config {
            let body = KubernetesConfigWrite {
                kubernetes_host: observation.config.kubernetes_host.clone(),
                kubernetes_ca_cert: observation.config.kubernetes_ca_cert.clone(),
                token_reviewer_jwt: observation.config.token_reviewer_jwt.clone(),
                disable_local_ca_jwt: true,
            };
            let result = if body.kubernetes_ca_cert.trim().is_empty() {
                // Vault (with disable_local_ca_jwt) needs the CA to verify the API when it
                // reviews tokens, and refuses the write without one; say what to give.
                Err(crate::k8s::cluster::missing_kubernetes_ca())
            } else {
                self.ctx.vault.write_kubernetes_config(&path, &body).await
            };
            if result.is_ok() {
                info!(path = %format!("auth/{path}"), reasons = %change.reasons.join("; "), "wrote the kubernetes auth config");
                let fingerprint = observation.config.fingerprint(&self.fingerprint_scope());
                self.record_fingerprint(fingerprint).await;
            }
            let failed = result.is_err();
            report.outcomes.push(StepOutcome {
                step: Step::WriteConfig {
                    path: format!("auth/{path}"),
                    reasons: change.reasons.clone(),
                },
                result: result.map(|()| applied(Vec::new())),
            });
            if failed {
                return true;
            }
        }
        false
    }

    /// Carries out the role and ServiceAccount actions of the plan. One failure does not stop
    /// the other actions.
    pub(super) async fn apply_roles_and_accounts(
        &self,
        snapshot: &ClusterSnapshot,
        plan: &Plan,
        report: &mut PassReport,
    ) {
        let roles = self.apply_roles(plan);
        // Vault and Kubernetes are written at the same time: neither waits for the other (a
        // ServiceAccount does not need its role to exist, nor the reverse), so a cold start
        // takes as long as the longer of the two, not their sum.
        let accounts = service_accounts::apply(&self.ctx.client, snapshot, &plan.service_accounts);
        let (roles, accounts) = futures::join!(roles, accounts);
        // Sized once: at a cold start these are thousands of outcomes.
        report.outcomes.reserve_exact(roles.len() + accounts.len());
        report.outcomes.extend(roles);
        report.outcomes.extend(accounts);
    }

    /// Carries out the role actions of the plan, at most [`VAULT_CONCURRENCY`] at a time.
    pub(super) async fn apply_roles(&self, plan: &Plan) -> Vec<StepOutcome> {
        let path = self.auth_path();
        let path = &path;
        crate::bounded::run(&plan.roles, VAULT_CONCURRENCY, |action| {
            self.apply_role(path, action)
        })
        .await
    }

    async fn apply_role(&self, path: &str, action: &RoleAction) -> StepOutcome {
        let result: Result<Done> = match action {
            RoleAction::Create { name, body } | RoleAction::Update { name, body, .. } => self
                .ctx
                .vault
                .write_role(path, name, body)
                .await
                .map(applied),
            RoleAction::Delete { name } => self
                .ctx
                .vault
                .delete_role(path, name)
                .await
                .map(|()| applied(Vec::new())),
        };
        if let Ok(Done::Applied { warnings }) = &result {
            let verb = match action {
                RoleAction::Create { .. } => "created",
                RoleAction::Update { .. } => "updated",
                RoleAction::Delete { .. } => "deleted",
            };
            info!(path = %format!("auth/{path}"), role = %action.name(), "{verb} role");
            // Advice (HashiCorp Vault suggests an audience on every role without one), not a
            // failure: kept in the log, the role is written as asked.
            for warning in warnings {
                info!(role = %action.name(), %warning, "Vault's note on the role write");
            }
        }
        StepOutcome {
            step: Step::Role(action.clone()),
            result,
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
        if let Err(error) = result {
            // Only costs one extra config write after a restart.
            warn!(%error, "could not record the config fingerprint on the reviewer Secret");
        }
    }
}
