//! One synchronisation pass: observe the cluster and Vault, compute the plan, carry it out, and
//! report the outcome (logs, Events on the ConfigMap, metrics).
//!
//! The pass is the same for the controller (fed by its watch caches) and for one-shot commands
//! (fed by list calls); only [`ClusterSnapshot`] differs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use tracing::{debug, error, info, warn};

use crate::desired::{DesiredServiceAccounts, desired_service_accounts};
use crate::error::{Error, Result};
use crate::k8s::cluster::ClusterInfo;
use crate::k8s::events::{EventPublisher, Notice};
use crate::k8s::reviewer::Reviewer;
use crate::k8s::service_accounts;
use crate::k8s::snapshot::{ClusterSnapshot, ConfigMapState};
use crate::metrics::Metrics;
use crate::names::{
    KUBERNETES_AUTH_TYPE, MOUNT_MAX_LEASE_TTL, REVIEWER_TOKEN_SECRET, ROLES_CONFIGMAP,
};
use crate::plan::{
    DesiredConfig, MountState, Observed, ObservedConfig, Plan, PlanError, PlanInput, RoleAction,
    ServiceAccountAction, plan,
};
use crate::roles::{Finding, RoleSet, Severity, parse_roles};
use crate::secret::Secret as SecretString;
use crate::settings::Settings;
use crate::vault::{KubernetesConfigWrite, VaultClient};

/// Annotation on the reviewer token Secret recording the fingerprint of the auth config last
/// written to Vault. Vault never returns the reviewer JWT, so this is how a restarted controller
/// knows whether Vault already holds the current token (a SHA-256, it reveals nothing).
pub const CONFIG_FINGERPRINT_ANNOTATION: &str = "vault-auth-kubernetes/vault-config-sha256";
/// Vault requests in flight at once when reading or writing many roles.
pub const VAULT_CONCURRENCY: usize = 32;

/// Everything a pass needs; shared by the controller and the one-shot commands.
pub struct Syncer {
    pub client: kube::Client,
    pub vault: VaultClient,
    pub settings: Settings,
    pub cluster: ClusterInfo,
    pub metrics: Metrics,
    pub events: EventPublisher,
    last_written: Mutex<Option<String>>,
    /// What Vault held after the last successful pass (with that pass's writes applied), so a
    /// pass woken by a cluster change need not read every role again; the periodic resync reads
    /// Vault in full and is what finds drift made out of band.
    vault_view: Mutex<Option<VaultView>>,
}

/// How a pass learns what Vault holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultRead {
    /// Read the mount, config and every role (the periodic resync, the first pass, after a failure).
    Full,
    /// Use the view the last successful pass left (a pass woken by a cluster change); falls back
    /// to a full read when there is none.
    Cached,
}

/// What Vault holds at the mount.
#[derive(Clone, Debug)]
pub struct VaultView {
    pub mount: MountState,
    pub config: Option<ObservedConfig>,
    pub roles: BTreeMap<String, Map<String, Value>>,
}

impl VaultView {
    /// The view after a successful pass carried out `plan`: what it observed plus what it wrote.
    /// Written role bodies stand in for Vault's answer; they compare equal after normalisation
    /// (`tests/roles_roundtrip.rs` proves it against OpenBao).
    fn after(observation: Observation, plan: &Plan) -> VaultView {
        let Observed {
            mut mount,
            mut config,
            mut vault_roles,
            ..
        } = observation.observed;
        if plan.enable_mount {
            mount = MountState::Kubernetes;
        }
        if plan.write_config.is_some() {
            config = Some(ObservedConfig {
                kubernetes_host: observation.config.kubernetes_host,
                kubernetes_ca_cert: observation.config.kubernetes_ca_cert,
                token_reviewer_jwt_set: true,
            });
        }
        for action in &plan.roles {
            match action {
                RoleAction::Create { name, body } | RoleAction::Update { name, body, .. } => {
                    vault_roles.insert(name.clone(), body.clone());
                }
                RoleAction::Delete { name } => {
                    vault_roles.remove(name);
                }
            }
        }
        VaultView {
            mount,
            config,
            roles: vault_roles,
        }
    }
}

/// What a pass saw: the inputs of the plan.
pub struct Observation {
    pub roles: Option<RoleSet>,
    pub desired_service_accounts: Option<DesiredServiceAccounts>,
    pub config: DesiredConfig,
    pub observed: Observed,
}

impl Observation {
    /// Everything validation found: the entries' errors and warnings, then the ServiceAccount
    /// warnings (e.g. a name pattern that cannot be created).
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.roles.iter().flat_map(|r| r.findings.iter()).chain(
            self.desired_service_accounts
                .iter()
                .flat_map(|d| d.findings.iter()),
        )
    }

    /// The plan for this observation; `scope` is what the config fingerprint covers besides the
    /// config (see [`Syncer::fingerprint_scope`]).
    pub fn plan(&self, mount: &str, scope: &str) -> Result<Plan> {
        plan(&PlanInput {
            mount,
            fingerprint_scope: scope,
            roles: self.roles.as_ref(),
            desired_service_accounts: self.desired_service_accounts.as_ref(),
            config: &self.config,
            observed: &self.observed,
        })
        .map_err(|PlanError::ForeignMount { path, kind }| Error::ForeignMount { path, found: kind })
    }
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
    /// Wires a syncer.
    pub fn new(
        client: kube::Client,
        vault: VaultClient,
        settings: Settings,
        cluster: ClusterInfo,
        metrics: Metrics,
        events: EventPublisher,
    ) -> Self {
        Syncer {
            client,
            vault,
            settings,
            cluster,
            metrics,
            events,
            last_written: Mutex::new(None),
            vault_view: Mutex::new(None),
        }
    }

    fn auth_path(&self) -> String {
        self.settings.mount.auth_path()
    }

    /// What the fingerprint covers besides the config itself: which Vault and which mount.
    pub fn fingerprint_scope(&self) -> String {
        format!(
            "{}|{}|{}",
            self.settings.vault.addr,
            self.settings.vault.namespace.as_deref().unwrap_or(""),
            self.auth_path()
        )
    }

    /// Reads the state of the auth mount. Refuses (without touching anything) when another type
    /// of auth method sits at the path.
    pub async fn mount_state(&self) -> Result<MountState> {
        let path = self.auth_path();
        Ok(match self.vault.auth_mount(&path).await? {
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

    /// Observes Vault and combines it with the cluster snapshot. Read-only.
    pub async fn observe(
        &self,
        snapshot: &ClusterSnapshot,
        mount: MountState,
        reviewer_jwt: SecretString,
    ) -> Result<Observation> {
        let vault = self.read_vault(mount).await?;
        Ok(self.observe_with(snapshot, vault, reviewer_jwt).await)
    }

    /// Reads what Vault holds at the mount: config and every role (with bounded concurrency).
    pub async fn read_vault(&self, mount: MountState) -> Result<VaultView> {
        let path = self.auth_path();
        if mount != MountState::Kubernetes {
            return Ok(VaultView {
                mount,
                config: None,
                roles: BTreeMap::new(),
            });
        }
        let config = self
            .vault
            .read_kubernetes_config(&path)
            .await?
            .map(|c| ObservedConfig {
                kubernetes_host: c.kubernetes_host,
                kubernetes_ca_cert: c.kubernetes_ca_cert,
                token_reviewer_jwt_set: c.token_reviewer_jwt_set,
            });
        let names = self.vault.list_roles(&path).await?;
        let roles = self
            .vault
            .read_roles(&path, &names, VAULT_CONCURRENCY)
            .await?;
        Ok(VaultView {
            mount,
            config,
            roles,
        })
    }

    /// Combines what Vault holds with the cluster snapshot. No request.
    pub async fn observe_with(
        &self,
        snapshot: &ClusterSnapshot,
        vault: VaultView,
        reviewer_jwt: SecretString,
    ) -> Observation {
        let roles = snapshot.roles_data().map(|data| parse_roles(&data));
        let desired_service_accounts = roles
            .as_ref()
            .map(|r| desired_service_accounts(r, &snapshot.namespaces));

        let mut wanted: BTreeSet<_> = BTreeSet::new();
        if let Some(d) = &desired_service_accounts {
            wanted.extend(d.accounts.keys().cloned());
        }
        let service_accounts = snapshot
            .service_accounts
            .iter()
            .filter(|sa| sa.is_managed() || wanted.contains(&sa.reference()))
            .map(|sa| (sa.reference(), sa.observed()))
            .collect();

        let mut last_written = self.last_written.lock().await.clone();
        if last_written.is_none() {
            last_written = snapshot
                .reviewer_secret
                .as_ref()
                .and_then(|s| s.metadata.annotations.as_ref())
                .and_then(|a| a.get(CONFIG_FINGERPRINT_ANNOTATION))
                .cloned();
        }

        Observation {
            roles,
            desired_service_accounts,
            config: DesiredConfig {
                kubernetes_host: self.cluster.host.clone(),
                kubernetes_ca_cert: self.cluster.ca_pem.clone(),
                token_reviewer_jwt: reviewer_jwt,
            },
            observed: Observed {
                mount: vault.mount,
                config: vault.config,
                last_written_fingerprint: last_written,
                vault_roles: vault.roles,
                service_accounts,
            },
        }
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
        self.metrics.reconciled(ok, started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            let regarding = configmap_ref(snapshot);
            if let Some(regarding) = regarding {
                let notice = Notice::warning("SyncFailed", "Sync", e.to_string());
                self.events
                    .report_conditions(&regarding, BTreeSet::from([notice]))
                    .await;
            }
        }
        result
    }

    async fn sync_inner(&self, snapshot: &ClusterSnapshot, read: VaultRead) -> Result<SyncReport> {
        self.vault.login().await?;
        // Taken out: a pass that fails leaves no view behind, so the next one reads in full.
        let cached = self.vault_view.lock().await.take();
        let started = Instant::now();
        let vault = match (read, cached) {
            (VaultRead::Cached, Some(view)) => view,
            // Checked before any write, so a foreign auth method means nothing is touched.
            _ => self.read_vault(self.mount_state().await?).await?,
        };
        let reviewer = Reviewer {
            client: &self.client,
            namespace: &self.settings.namespace,
        };
        let jwt = reviewer.ensure(snapshot).await?;
        let observation = self.observe_with(snapshot, vault, jwt).await;
        let observed = started.elapsed();
        let plan = observation.plan(self.settings.mount.as_str(), &self.fingerprint_scope())?;
        let planned = started.elapsed() - observed;
        let mut report = SyncReport {
            invalid_entries: observation.roles.as_ref().map_or(0, |r| r.rejected.len()),
            bound_names: observation
                .roles
                .iter()
                .flat_map(|r| r.roles.values())
                .flat_map(|role| role.service_account_names.iter().cloned())
                .collect(),
            ..Default::default()
        };
        let applied = self.apply(snapshot, &observation, &plan).await;
        report.failures = applied;
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

    /// Carries out the plan; returns the failures. Mount and config failures stop the pass
    /// (roles cannot be written without them); role and ServiceAccount failures do not stop the
    /// other actions.
    pub async fn apply(
        &self,
        snapshot: &ClusterSnapshot,
        observation: &Observation,
        plan: &Plan,
    ) -> Vec<String> {
        let path = self.auth_path();
        let mut failures = Vec::new();
        if plan.enable_mount {
            let description = format!(
                "Kubernetes auth backend for {} cluster (managed by vault-auth-kubernetes)",
                self.settings.mount
            );
            match self
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
                Err(e) => return vec![e.to_string()],
            }
        }
        if let Some(change) = &plan.write_config {
            let body = KubernetesConfigWrite {
                kubernetes_host: observation.config.kubernetes_host.clone(),
                kubernetes_ca_cert: observation.config.kubernetes_ca_cert.clone(),
                token_reviewer_jwt: observation.config.token_reviewer_jwt.clone(),
                disable_local_ca_jwt: true,
            };
            match self.vault.write_kubernetes_config(&path, &body).await {
                Ok(()) => {
                    info!(%path, reasons = %change.reasons.join("; "), "wrote kubernetes auth config");
                    let fingerprint = observation.config.fingerprint(&self.fingerprint_scope());
                    self.record_fingerprint(fingerprint).await;
                }
                Err(e) => return vec![e.to_string()],
            }
        }

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
            service_accounts::apply(&self.client, snapshot, &plan.service_accounts).await;
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
            RoleAction::Create { name, body } | RoleAction::Update { name, body, .. } => {
                (name.clone(), self.vault.write_role(path, name, body).await)
            }
            RoleAction::Delete { name } => (name.clone(), self.vault.delete_role(path, name).await),
        }
    }

    /// Remembers what config was written, in memory and on the reviewer token Secret.
    async fn record_fingerprint(&self, fingerprint: String) {
        *self.last_written.lock().await = Some(fingerprint.clone());
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.settings.namespace);
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

    /// Logs, metrics and Events for a pass.
    async fn report(
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
            warn!(namespace = %self.settings.namespace, "ConfigMap vault-auth-roles not found: no role or ServiceAccount is deleted");
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
        self.metrics
            .set_managed(roles, managed_after, report.invalid_entries);

        let Some(regarding) = configmap_ref(snapshot) else {
            return;
        };
        self.events.report_conditions(&regarding, conditions).await;
        for notice in action_notices(plan) {
            self.events.publish(&regarding, &notice).await;
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
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.settings.namespace);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::NamespaceInfo;

    /// A pass woken by a cluster change plans against the view the last pass left. That view
    /// holds the bodies the pass wrote, not Vault's answers: they must compare equal, or every
    /// incremental pass would rewrite every role.
    #[test]
    fn view_after_a_pass_plans_nothing_more() {
        let data: BTreeMap<String, String> = [
            ("plain", r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["ns"], "token_policies": "p1, p2"}"#),
            ("durations", r#"{"bound_service_account_names": "a,b", "bound_service_account_namespaces": ["team-*"], "token_ttl": "1h30m", "token_max_ttl": "1d", "token_period": 60}"#),
            ("selector", r#"{"bound_service_account_names": ["*"], "bound_service_account_namespace_selector": {"matchLabels": {"b": "2", "a": "1"}}, "token_type": "batch", "audience": "vault"}"#),
            ("cidrs", r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["*"], "token_bound_cidrs": "10.0.0.1/32, 10.1.0.0/16", "token_no_default_policy": true, "alias_name_source": "serviceaccount_name"}"#),
            ("Upper", r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["ns"], "policies": ["old"]}"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let roles = parse_roles(&data);
        assert!(!roles.has_errors(), "{:?}", roles.findings);
        let namespaces = vec![NamespaceInfo {
            name: "ns".into(),
            labels: BTreeMap::new(),
            terminating: false,
        }];
        let desired = desired_service_accounts(&roles, &namespaces);
        let observation = |vault: VaultView| Observation {
            roles: Some(roles.clone()),
            desired_service_accounts: Some(desired.clone()),
            config: DesiredConfig {
                kubernetes_host: "https://k:6443".into(),
                kubernetes_ca_cert: String::new(),
                token_reviewer_jwt: SecretString::new("jwt"),
            },
            observed: Observed {
                mount: vault.mount,
                config: vault.config,
                last_written_fingerprint: None,
                vault_roles: vault.roles,
                service_accounts: BTreeMap::new(),
            },
        };
        let empty = VaultView {
            mount: MountState::Missing,
            config: None,
            roles: BTreeMap::new(),
        };
        let first = observation(empty);
        let plan1 = first.plan("prod/eu1", "scope").unwrap();
        assert_eq!(plan1.roles.len(), 5);
        let view = VaultView::after(first, &plan1);
        let second = observation(view);
        let plan2 = second.plan("prod/eu1", "scope").unwrap();
        assert!(plan2.roles.is_empty(), "{:#?}", plan2.roles);
        assert!(!plan2.enable_mount);
    }
}
