//! The difference between desired and observed state, as a list of actions. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::desired::{DesiredServiceAccounts, ServiceAccountRef};
use crate::role_names::RoleNames;
use crate::roles::{FieldChange, RoleSet, role_changes};
use crate::secret::Secret;

/// What sits at the auth mount path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MountState {
    /// Nothing is mounted there.
    Missing,
    /// A Kubernetes auth method.
    Kubernetes,
    /// Another type of auth method: the controller refuses to touch it.
    Foreign {
        /// Its type, e.g. `approle`.
        kind: String,
    },
}

/// The mount's config as Vault returns it (Vault never returns the JWT).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObservedConfig {
    /// `kubernetes_host` Vault holds.
    pub kubernetes_host: String,
    /// `kubernetes_ca_cert` Vault holds (PEM).
    pub kubernetes_ca_cert: String,
    /// Whether Vault holds a reviewer JWT at all.
    pub token_reviewer_jwt_set: bool,
}

/// The config the controller wants Vault to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredConfig {
    /// Kubernetes API address as Vault must reach it.
    pub kubernetes_host: String,
    /// CA of the Kubernetes API (PEM).
    pub kubernetes_ca_cert: String,
    /// The reviewer ServiceAccount's token; prints as `******`.
    pub token_reviewer_jwt: Secret,
}

impl DesiredConfig {
    /// SHA-256 (hex) over mount, host, CA and JWT: what the controller records as last written,
    /// since Vault never returns the JWT.
    pub fn fingerprint(&self, mount: &str) -> String {
        let mut hasher = Sha256::new();
        let ca = normalize_pem(&self.kubernetes_ca_cert);
        for part in [
            mount,
            &self.kubernetes_host,
            &ca,
            self.token_reviewer_jwt.expose(),
        ] {
            // Length-prefixed, so no two different inputs hash the same bytes.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A ServiceAccount as observed in the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ObservedServiceAccount {
    /// Has the annotation `vak-managed: "true"`.
    pub managed: bool,
    /// Vault role names from the controller's roles annotation (empty if none).
    pub roles: RoleNames,
}

/// Everything observed in Vault and Kubernetes.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// What sits at `auth/kubernetes/<mount>`.
    pub mount: MountState,
    /// The mount's config, `None` when Vault holds none.
    pub config: Option<ObservedConfig>,
    /// [`DesiredConfig::fingerprint`] of the config this controller last wrote, if known.
    pub last_written_fingerprint: Option<String>,
    /// Raw role data read from Vault, by name; a role this controller wrote (or found equal to
    /// its entry) shares the entry's body.
    pub vault_roles: BTreeMap<String, Arc<Map<String, Value>>>,
    /// Every existing ServiceAccount that is managed or desired. Read only when [`plan_with`]
    /// is not given the ServiceAccount half (the controller gives it and leaves this empty).
    pub service_accounts: Arc<BTreeMap<ServiceAccountRef, ObservedServiceAccount>>,
}

/// Inputs of [`plan`].
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// Mount below `kubernetes/`, e.g. `prod/eu1`.
    pub mount: &'a str,
    /// What the config fingerprint covers besides the config: the controller passes Vault's
    /// address, namespace and the mount, so pointing it at another Vault rewrites the config.
    pub fingerprint_scope: &'a str,
    /// `None`: ConfigMap missing or unreadable, or emptied without the opt-in, so nothing is
    /// deleted.
    pub roles: Option<&'a RoleSet>,
    /// `roles` is `None` because the ConfigMap lost every entry and emptiness was not opted in
    /// (said so in the plan's note, instead of "missing").
    pub empty_configmap_held: bool,
    /// `None`: namespaces unknown, so no ServiceAccount is planned.
    pub desired_service_accounts: Option<&'a DesiredServiceAccounts>,
    /// The config Vault must hold.
    pub config: &'a DesiredConfig,
    /// What Vault and Kubernetes hold now.
    pub observed: &'a Observed,
}

/// Why the config must be written; never carries the JWT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigChange {
    /// One sentence per difference, e.g. `kubernetes_host differs: "a" -> "b"`.
    pub reasons: Vec<String>,
}

/// An action on a Vault role.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RoleAction {
    /// Write a role Vault does not have.
    Create {
        /// Vault role name.
        name: String,
        /// Full body to write (the entry's own, shared).
        body: Arc<Map<String, Value>>,
    },
    /// Rewrite a role whose fields differ.
    Update {
        /// Vault role name.
        name: String,
        /// Full body to write (never a partial one: Vault keeps fields left out).
        body: Arc<Map<String, Value>>,
        /// What differs, by field.
        changes: Vec<FieldChange>,
    },
    /// Delete a role the ConfigMap no longer lists.
    Delete {
        /// Vault role name.
        name: String,
    },
}

/// An action on a ServiceAccount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ServiceAccountAction {
    /// Create it, managed, recording `roles`.
    Create {
        /// The ServiceAccount.
        sa: ServiceAccountRef,
        /// Vault roles that want it (for the roles annotation).
        roles: RoleNames,
    },
    /// Rewrite the roles annotation of a managed ServiceAccount.
    SetRoles {
        /// The ServiceAccount.
        sa: ServiceAccountRef,
        /// The new set of Vault roles.
        roles: RoleNames,
    },
    /// Delete a managed ServiceAccount no role wants.
    Delete {
        /// The ServiceAccount.
        sa: ServiceAccountRef,
    },
}

impl ServiceAccountAction {
    /// The ServiceAccount it is about.
    pub fn sa(&self) -> &ServiceAccountRef {
        match self {
            ServiceAccountAction::Create { sa, .. }
            | ServiceAccountAction::SetRoles { sa, .. }
            | ServiceAccountAction::Delete { sa } => sa,
        }
    }
}

impl RoleAction {
    /// The Vault role it is about.
    pub fn name(&self) -> &str {
        match self {
            RoleAction::Create { name, .. }
            | RoleAction::Update { name, .. }
            | RoleAction::Delete { name } => name,
        }
    }
}

/// Everything to do, in a deterministic order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Enable the Kubernetes auth method at the mount.
    pub enable_mount: bool,
    /// Write the mount's config (always the full config), and why.
    pub write_config: Option<ConfigChange>,
    /// Role actions, by role name.
    pub roles: Vec<RoleAction>,
    /// ServiceAccount actions, by namespace and name.
    pub service_accounts: Vec<ServiceAccountAction>,
    /// What was deliberately left alone, and why.
    pub notes: Vec<String>,
}

impl Plan {
    /// True when there is nothing to do (notes do not count).
    pub fn is_empty(&self) -> bool {
        !self.enable_mount
            && self.write_config.is_none()
            && self.roles.is_empty()
            && self.service_accounts.is_empty()
    }
}

/// One line per action, then the notes: what `plan` prints.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.enable_mount {
            writeln!(f, "enable auth method kubernetes")?;
        }
        if let Some(change) = &self.write_config {
            writeln!(f, "write config: {}", change.reasons.join("; "))?;
        }
        for action in &self.roles {
            match action {
                RoleAction::Create { name, .. } => writeln!(f, "create role {name}")?,
                RoleAction::Update { name, changes, .. } => {
                    writeln!(f, "update role {name}")?;
                    for c in changes {
                        writeln!(f, "  {}: {} -> {}", c.field, c.from, c.to)?;
                    }
                }
                RoleAction::Delete { name } => writeln!(f, "delete role {name}")?,
            }
        }
        let joined = |roles: &RoleNames| roles.join(", ");
        for action in &self.service_accounts {
            match action {
                ServiceAccountAction::Create { sa, roles } => {
                    writeln!(f, "create ServiceAccount {sa} (roles: {})", joined(roles))?;
                }
                ServiceAccountAction::SetRoles { sa, roles } => {
                    writeln!(f, "set roles of ServiceAccount {sa}: {}", joined(roles))?;
                }
                ServiceAccountAction::Delete { sa } => writeln!(f, "delete ServiceAccount {sa}")?,
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

/// Why no plan can be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Another type of auth method sits at the mount path: nothing may be touched.
    #[error(
        "auth method at auth/{path} is of type {kind:?}, not \"kubernetes\": refusing to touch it"
    )]
    ForeignMount {
        /// Path below `auth/`, e.g. `kubernetes/prod/eu1`.
        path: String,
        /// Type of the auth method found there.
        kind: String,
    },
}

/// The foreign-mount rule, the one place it is decided: an auth method of another type at the
/// mount path means nothing may be touched — not the mount, its config or roles, and not the
/// reviewer's objects either (a pass checks it before anything else; cleanup too). `mount` is
/// the `--vault-mount` value, e.g. `prod/eu1`.
pub fn refuse_foreign_mount(state: &MountState, mount: &str) -> Result<(), PlanError> {
    match state {
        MountState::Foreign { kind } => Err(PlanError::ForeignMount {
            path: format!("{}/{}", crate::names::AUTH_PATH_PREFIX, mount),
            kind: kind.clone(),
        }),
        MountState::Missing | MountState::Kubernetes => Ok(()),
    }
}

impl From<PlanError> for crate::error::Error {
    fn from(error: PlanError) -> Self {
        match error {
            PlanError::ForeignMount { path, kind } => {
                crate::error::Error::ForeignMount { path, found: kind }
            }
        }
    }
}

/// PEM text with line endings and surrounding whitespace made uniform, so a CA that differs
/// only in formatting is not rewritten.
pub fn normalize_pem(pem: &str) -> String {
    pem.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Computes the actions that bring Vault and Kubernetes to the desired state.
///
/// Rejected entries are protected: their Vault roles are not deleted and ServiceAccounts that
/// record one of them are neither deleted nor stripped of it; while any entry is rejected,
/// managed ServiceAccounts that record no roles (made by the original tool) are left alone. Without a ConfigMap (`roles` is
/// `None`) nothing at all is deleted.
pub fn plan(input: &PlanInput) -> Result<Plan, PlanError> {
    plan_with(input, None)
}

/// [`plan`], with the ServiceAccount half given when the caller has it already: it must be
/// what [`plan_service_accounts`] computes from the same inputs (the controller keeps the last
/// one while the bindings, rejected entries, namespaces and ServiceAccounts stay the same).
pub fn plan_with(
    input: &PlanInput,
    service_accounts: Option<&ServiceAccountPlan>,
) -> Result<Plan, PlanError> {
    let observed = input.observed;
    refuse_foreign_mount(&observed.mount, input.mount)?;
    let mut plan = Plan {
        enable_mount: observed.mount == MountState::Missing,
        write_config: config_change(input),
        ..Plan::default()
    };
    match input.roles {
        Some(roles) => plan_roles(&mut plan, roles, observed),
        None if input.empty_configmap_held => plan.notes.push(
            "ConfigMap has no entry and emptiness is not opted in: no role or ServiceAccount \
             changed or deleted"
                .into(),
        ),
        None => plan.notes.push(
            "ConfigMap missing or unreadable: no role or ServiceAccount changed or deleted".into(),
        ),
    }
    let computed;
    let accounts = match (
        input.roles,
        service_accounts,
        input.desired_service_accounts,
    ) {
        (Some(_), Some(given), _) => Some(given),
        (Some(roles), None, Some(desired)) => {
            computed = plan_service_accounts(&roles.rejected, desired, &observed.service_accounts);
            Some(&computed)
        }
        (Some(_), None, None) => {
            plan.notes
                .push("namespaces unknown: ServiceAccounts not planned".into());
            None
        }
        (None, _, _) => None,
    };
    if let Some(accounts) = accounts {
        plan.service_accounts
            .extend(accounts.actions.iter().cloned());
        plan.notes.extend(accounts.notes.iter().cloned());
    }
    Ok(plan)
}

fn config_change(input: &PlanInput) -> Option<ConfigChange> {
    let observed = input.observed;
    let desired = input.config;
    let mut reasons = Vec::new();
    match (&observed.mount, &observed.config) {
        (MountState::Missing, _) => reasons.push("the auth method is new".to_string()),
        (_, None) => reasons.push("Vault holds no config".to_string()),
        (_, Some(config)) => {
            if config.kubernetes_host != desired.kubernetes_host {
                reasons.push(format!(
                    "kubernetes_host differs: {:?} -> {:?}",
                    config.kubernetes_host, desired.kubernetes_host
                ));
            }
            if normalize_pem(&config.kubernetes_ca_cert)
                != normalize_pem(&desired.kubernetes_ca_cert)
            {
                reasons.push("kubernetes_ca_cert differs".to_string());
            }
            if !config.token_reviewer_jwt_set {
                reasons.push("token_reviewer_jwt is not set in Vault".to_string());
            }
        }
    }
    let fingerprint = desired.fingerprint(input.fingerprint_scope);
    // Whether this tool wrote what Vault holds matters only when Vault holds a config at all.
    let written_anyway = observed.mount == MountState::Missing || observed.config.is_none();
    match &observed.last_written_fingerprint {
        _ if written_anyway => {}
        None => reasons.push(
            "this tool has no record of writing it (written by hand, or by the original tool): \
             written once so Vault surely holds the current reviewer token"
                .to_string(),
        ),
        Some(last) if *last != fingerprint => reasons.push(
            "config inputs changed since the last write (reviewer token, host or CA)".to_string(),
        ),
        Some(_) => {}
    }
    (!reasons.is_empty()).then_some(ConfigChange { reasons })
}

fn plan_roles(plan: &mut Plan, roles: &RoleSet, observed: &Observed) {
    // A missing mount has no roles, whatever the caller listed.
    let empty = BTreeMap::new();
    let existing = match observed.mount {
        MountState::Missing => &empty,
        _ => &observed.vault_roles,
    };
    let names: BTreeSet<&String> = roles.roles.keys().chain(existing.keys()).collect();
    for name in names {
        let action = match (roles.roles.get(name), existing.get(name)) {
            (Some(spec), None) => RoleAction::Create {
                name: name.clone(),
                body: spec.body.clone(),
            },
            // The very body the entry holds: written by this controller, nothing to compare.
            (Some(spec), Some(actual)) if Arc::ptr_eq(&spec.body, actual) => continue,
            (Some(spec), Some(actual)) => {
                let changes = role_changes(&spec.body, actual);
                if changes.is_empty() {
                    continue;
                }
                RoleAction::Update {
                    name: name.clone(),
                    body: spec.body.clone(),
                    changes,
                }
            }
            (None, Some(_)) if roles.rejected.contains(name) => {
                plan.notes.push(format!(
                    "role {name:?} left as it is: its ConfigMap entry is rejected"
                ));
                continue;
            }
            (None, Some(_)) => RoleAction::Delete { name: name.clone() },
            (None, None) => continue,
        };
        plan.roles.push(action);
    }
}

/// The ServiceAccount half of a plan: a function of the rejected entries, the ServiceAccounts
/// the valid roles want and the ServiceAccounts observed, nothing else. So the controller
/// computes it again only when one of those changed (an edit of a role's policies leaves it
/// as it is), and passes it to [`plan_with`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceAccountPlan {
    /// Actions, by namespace and name.
    pub actions: Vec<ServiceAccountAction>,
    /// What was left alone, and why.
    pub notes: Vec<String>,
}

/// Computes the [`ServiceAccountPlan`]: what [`plan`] does for the ServiceAccounts.
pub fn plan_service_accounts(
    rejected: &BTreeSet<String>,
    desired: &DesiredServiceAccounts,
    observed: &BTreeMap<ServiceAccountRef, ObservedServiceAccount>,
) -> ServiceAccountPlan {
    ServiceAccountPlan::concat(
        plan_service_accounts_by_namespace(rejected, desired, observed)
            .into_iter()
            .map(|(_, part)| part),
    )
}

impl ServiceAccountPlan {
    /// The parts one after the other (namespaces in order give the whole plan in order).
    pub fn concat(parts: impl IntoIterator<Item = ServiceAccountPlan>) -> ServiceAccountPlan {
        let mut plan = ServiceAccountPlan::default();
        for part in parts {
            plan.actions.extend(part.actions);
            plan.notes.extend(part.notes);
        }
        plan
    }

    fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.notes.is_empty()
    }
}

/// The [`ServiceAccountPlan`] cut by namespace, in namespace order, leaving out the namespaces
/// with nothing to do or say. A ServiceAccount's action depends only on what is wanted and
/// observed of it and on the rejected entries, so the part of a namespace is the same whatever
/// other namespaces the inputs hold: the controller plans again only the namespaces that
/// changed and keeps the other parts.
pub fn plan_service_accounts_by_namespace(
    rejected: &BTreeSet<String>,
    desired: &DesiredServiceAccounts,
    observed: &BTreeMap<ServiceAccountRef, ObservedServiceAccount>,
) -> Vec<(Arc<str>, ServiceAccountPlan)> {
    let mut parts: Vec<(Arc<str>, ServiceAccountPlan)> = Vec::new();
    let mut keep = |part: Option<(Arc<str>, ServiceAccountPlan)>| {
        parts.extend(part.filter(|(_, part)| !part.is_empty()));
    };
    // The refs come sorted by namespace, so each namespace's part is built in one run.
    let mut current: Option<(Arc<str>, ServiceAccountPlan)> = None;
    let refs: BTreeSet<&ServiceAccountRef> =
        desired.accounts.keys().chain(observed.keys()).collect();
    for sa in refs {
        if current.as_ref().is_some_and(|(ns, _)| *ns != sa.namespace) {
            keep(current.take());
        }
        let (_, plan) =
            current.get_or_insert_with(|| (sa.namespace.clone(), ServiceAccountPlan::default()));
        let wanted = desired.accounts.get(sa);
        let action = match (wanted, observed.get(sa)) {
            (Some(wanted), None) => ServiceAccountAction::Create {
                sa: sa.clone(),
                roles: wanted.clone(),
            },
            (_, Some(existing)) if !existing.managed => {
                if wanted.is_some() {
                    plan.notes.push(format!(
                        "{sa} exists without the {}: \"{}\" annotation: left untouched",
                        crate::names::MANAGED_ANNOTATION,
                        crate::names::MANAGED_VALUE
                    ));
                }
                continue;
            }
            (_, Some(existing)) if existing.roles.is_empty() && !rejected.is_empty() => {
                // Made by the original tool (no roles record): it may belong to a rejected
                // entry, so it stays exactly as it is until no entry is rejected.
                plan.notes.push(format!(
                    "{sa} kept as it is: it records no roles and entries {:?} are rejected",
                    rejected.iter().collect::<Vec<_>>()
                ));
                continue;
            }
            (wanted, Some(existing)) => {
                // Keep the record of rejected roles, so the protection outlives this pass.
                let protected = existing.roles.intersection(rejected);
                match wanted {
                    None if !protected.is_empty() => {
                        plan.notes.push(format!(
                            "{sa} kept: it belongs to rejected role(s) {:?}",
                            protected.iter().collect::<Vec<_>>()
                        ));
                        continue;
                    }
                    None => ServiceAccountAction::Delete { sa: sa.clone() },
                    Some(wanted) => {
                        let roles = wanted.union(&protected);
                        if roles == existing.roles {
                            continue;
                        }
                        ServiceAccountAction::SetRoles {
                            sa: sa.clone(),
                            roles,
                        }
                    }
                }
            }
            (None, None) => continue,
        };
        plan.actions.push(action);
    }
    keep(current);
    parts
}
