//! `plan`: what a sync would do, found by reading the cluster and Vault exactly as a sync does,
//! without writing anything; rendered for people (colour on a terminal) or as JSON.
//!
//! The reviewer's objects are planned by the same pure function a sync carries out
//! ([`plan_reviewer`]). When the reviewer's token does not exist yet, the plan says that the
//! config would be written with the new token.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::proposed::{Proposed, read_proposed};
use super::status;
use super::style::{Style, stdout_style};
use crate::cli::{OutputFormat, PlanArgs};
use crate::context::Context;
use crate::error::Result;
use crate::k8s::snapshot::{ClusterSnapshot, ConfigMapState};
use crate::names::{MOUNT_MAX_LEASE_TTL, ROLES_CONFIGMAP};
use crate::plan::{ConfigChange, MountState, Plan, RoleAction, ServiceAccountAction};
use crate::reviewer_plan::{
    Conflict, KubeChange, KubeVerb, ReviewerPlan, ReviewerToken, plan_reviewer,
};
use crate::roles::{
    FieldChange, Finding, diff_role, format_duration, is_duration_param, normalize_vault_role,
};
use crate::secret::Secret as SecretString;
use crate::settings::Settings;
use crate::sync::{Observation, Syncer};

/// Version of the JSON report's shape: raised when a field changes meaning or goes away
/// (new fields may be added without it).
pub const FORMAT_VERSION: u32 = 1;

/// Everything `plan` reports. Holds no secret: the reviewer JWT stays in the observation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanReport {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// What was planned: `cluster` (the live ConfigMap) or `file:line` of `-f`.
    pub source: String,
    /// The ConfigMap planned: `present`, `missing` (nothing is deleted) or `empty-held`
    /// (emptied without the opt-in: nothing is deleted).
    pub configmap: &'static str,
    /// True when a sync would change anything in Vault or Kubernetes.
    pub changes_pending: bool,
    /// How many changes of each kind, and how many problems.
    pub summary: Summary,
    pub vault: VaultPlan,
    pub kubernetes: KubernetesPlan,
    /// Rejected entries (errors): their Vault roles and ServiceAccounts are left as they are.
    pub invalid_entries: Vec<Finding>,
    /// Entries applied with a warning (their findings).
    pub warnings: Vec<Finding>,
    /// Objects of the tool's names that are someone else's: a sync leaves them alone.
    pub conflicts: Vec<Conflict>,
    /// What a sync would deliberately leave alone, and why.
    pub notes: Vec<String>,
}

/// Counts of a plan, by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Vault roles to create, update or delete.
    pub roles: Counts,
    /// Managed ServiceAccounts to create, change (`update`: their recorded roles) or delete.
    pub service_accounts: Counts,
    /// The reviewer's objects (and the namespace reader) to create, update/replace or delete.
    pub reviewer_objects: Counts,
    /// Whether the auth method is enabled, and its config written.
    pub enable_mount: bool,
    pub write_config: bool,
    pub invalid_entries: usize,
    pub warnings: usize,
    pub conflicts: usize,
}

/// Creates, updates and deletes of one kind of object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
}

impl Counts {
    fn total(self) -> usize {
        self.create + self.update + self.delete
    }
}

/// The Vault side of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VaultPlan {
    pub address: String,
    /// Vault namespace (`X-Vault-Namespace`), when set.
    pub namespace: Option<String>,
    /// E.g. `auth/kubernetes/prod/eu1`.
    pub path: String,
    /// What sits at the path now.
    pub mount: MountState,
    pub enable_mount: bool,
    pub write_config: Option<ConfigChange>,
    pub roles: Vec<RoleChange>,
}

/// One role to create, update or delete.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleChange {
    /// `create`, `update` or `delete`.
    pub action: &'static str,
    pub name: String,
    /// The full body a sync would write (absent for a delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Map<String, Value>>,
    /// Field by field, old -> new; for a create, the fields that differ from Vault's defaults.
    pub changes: Vec<FieldChange>,
}

/// The Kubernetes side of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KubernetesPlan {
    /// Namespace of the controller and of the ConfigMap.
    pub namespace: String,
    /// The reviewer's objects and the namespace reader.
    pub objects: Vec<KubeChange>,
    /// Managed ServiceAccounts bound by the roles.
    pub service_accounts: Vec<ServiceAccountAction>,
}

/// Where a plan applies.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// Vault's address.
    pub address: &'a str,
    /// Vault namespace, when set.
    pub vault_namespace: Option<&'a str>,
    /// Path of the auth method, e.g. `auth/kubernetes/prod/eu1`.
    pub path: String,
    /// Kubernetes namespace of the controller.
    pub namespace: &'a str,
    /// `cluster`, or where `-f` found the ConfigMap.
    pub source: String,
}

impl PlanReport {
    /// Builds the report from what a sync would see and plan (pure).
    pub fn new(
        target: Target<'_>,
        observation: &Observation,
        mut plan: Plan,
        reviewer: ReviewerPlan,
    ) -> PlanReport {
        let new_secret = reviewer
            .changes
            .iter()
            .any(|c| c.kind == "Secret" && c.action != KubeVerb::Delete);
        let extra = match &reviewer.token {
            ReviewerToken::Ready(_) => None,
            ReviewerToken::Pending if new_secret => {
                Some("the reviewer's token Secret is new: Vault gets its token")
            }
            ReviewerToken::Pending => Some(
                "the reviewer's token is not filled in yet: Vault gets it once Kubernetes does",
            ),
            ReviewerToken::Blocked => None,
        };
        if let Some(reason) = extra {
            let change = plan.write_config.get_or_insert_with(|| ConfigChange {
                reasons: Vec::new(),
            });
            change.reasons.push(reason.to_string());
        }
        let roles = role_changes(&plan.roles);
        if observation.role_params.is_none() && !roles.is_empty() {
            plan.notes.push(
                "the auth mount does not exist yet: a sync enables it first and then checks the \
                 role bodies against the parameters it accepts (HashiCorp Vault has no \
                 token_strictly_bind_ip)"
                    .to_string(),
            );
        }
        let findings: Vec<&Finding> = observation.findings().collect();
        let pick = |error: bool| -> Vec<Finding> {
            findings
                .iter()
                .filter(|f| f.is_error() == error)
                .map(|f| (*f).clone())
                .collect()
        };
        let configmap = match (&observation.roles, observation.empty_configmap_held) {
            (Some(_), _) => "present",
            (None, true) => "empty-held",
            (None, false) => "missing",
        };
        let invalid_entries = pick(true);
        let warnings = pick(false);
        let mut summary = Summary {
            enable_mount: plan.enable_mount,
            write_config: plan.write_config.is_some(),
            // Entries, not findings: one entry may have several.
            invalid_entries: invalid_entries
                .iter()
                .map(|f| f.key.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            warnings: warnings.len(),
            conflicts: reviewer.conflicts.len(),
            ..Summary::default()
        };
        for role in &roles {
            let c = &mut summary.roles;
            *match role.action {
                "create" => &mut c.create,
                "update" => &mut c.update,
                _ => &mut c.delete,
            } += 1;
        }
        for action in &plan.service_accounts {
            let c = &mut summary.service_accounts;
            *match action {
                ServiceAccountAction::Create { .. } => &mut c.create,
                ServiceAccountAction::SetRoles { .. } => &mut c.update,
                ServiceAccountAction::Delete { .. } => &mut c.delete,
            } += 1;
        }
        for change in &reviewer.changes {
            let c = &mut summary.reviewer_objects;
            *match change.action {
                KubeVerb::Create => &mut c.create,
                KubeVerb::Update | KubeVerb::Replace => &mut c.update,
                KubeVerb::Delete => &mut c.delete,
            } += 1;
        }
        PlanReport {
            format_version: FORMAT_VERSION,
            source: target.source,
            configmap,
            changes_pending: !plan.is_empty() || !reviewer.changes.is_empty(),
            summary,
            vault: VaultPlan {
                address: target.address.to_string(),
                namespace: target.vault_namespace.map(str::to_string),
                path: target.path,
                mount: observation.observed.mount.clone(),
                enable_mount: plan.enable_mount,
                write_config: plan.write_config,
                roles,
            },
            kubernetes: KubernetesPlan {
                namespace: target.namespace.to_string(),
                objects: reviewer.changes,
                service_accounts: plan.service_accounts,
            },
            invalid_entries,
            warnings,
            conflicts: reviewer.conflicts,
            notes: plan.notes,
        }
    }
}

/// The role actions of a plan with their field changes; for a create, the fields that differ
/// from what Vault would hold for an empty role.
pub fn role_changes(actions: &[RoleAction]) -> Vec<RoleChange> {
    let defaults = normalize_vault_role(&Map::new());
    actions
        .iter()
        .map(|action| match action {
            RoleAction::Create { name, body } => {
                // Against the defaults of the parameters the body holds (the server may not
                // accept every parameter this tool knows).
                let mut defaults = defaults.clone();
                defaults.retain(|field, _| body.contains_key(field));
                RoleChange {
                    action: "create",
                    name: name.clone(),
                    body: Some(Map::clone(body)),
                    changes: diff_role(body, &defaults),
                }
            }
            RoleAction::Update {
                name,
                body,
                changes,
            } => RoleChange {
                action: "update",
                name: name.clone(),
                body: Some(Map::clone(body)),
                changes: changes.clone(),
            },
            RoleAction::Delete { name } => RoleChange {
                action: "delete",
                name: name.clone(),
                body: None,
                changes: Vec::new(),
            },
        })
        .collect()
}

/// Observes the cluster and Vault as a sync would and plans, writing nothing (the AppRole login
/// is the only request that is not a read).
///
/// With `proposed` (`plan -f`), the cluster's ConfigMap is replaced by the proposed one before
/// anything is planned, so the proposal goes through exactly the sync's decisions.
pub async fn observe(syncer: &Syncer, proposed: Option<&Proposed>) -> Result<PlanReport> {
    let settings = &syncer.ctx().settings;
    syncer.ctx().vault.login().await?;
    let mount = syncer.mount_state().await?;
    let mut snapshot = ClusterSnapshot::fetch(&syncer.ctx().client, &settings.namespace).await?;
    if let Some(proposed) = proposed {
        let live = std::mem::replace(&mut snapshot.configmap, ConfigMapState::Missing);
        snapshot.configmap = proposed.apply_to(live, &settings.namespace);
    }
    // In the sync's order: Vault first, then the entries as the mount takes them, for the
    // reviewer's plan and the rest alike.
    let vault = syncer.read_vault(mount).await?;
    let entries = syncer.entries(&snapshot, vault.role_params.as_ref());
    let reviewer = plan_reviewer(&snapshot, &settings.namespace, entries.roles.as_deref());
    // Without a token the fingerprint cannot match: the config is planned to be written.
    let jwt = match &reviewer.token {
        ReviewerToken::Ready(jwt) => jwt.clone(),
        ReviewerToken::Pending | ReviewerToken::Blocked => SecretString::default(),
    };
    let observation = syncer.observe_with(&snapshot, vault, entries, jwt).await;
    let plan = observation.plan(settings.mount.as_str(), &syncer.fingerprint_scope())?;
    let target = Target {
        address: &settings.vault.addr,
        vault_namespace: settings.vault.namespace.as_deref(),
        path: format!("auth/{}", settings.mount.auth_path()),
        namespace: &settings.namespace,
        source: proposed.map_or_else(|| "cluster".to_string(), |p| p.source.clone()),
    };
    Ok(PlanReport::new(target, &observation, plan, reviewer))
}

/// Runs `plan`: prints the report, returns 0 (no changes), 2 (changes pending) or 1 (an entry
/// is invalid: a merge would leave it unapplied). A `-f` file that cannot be planned is an
/// error before anything is connected.
pub async fn run(settings: Settings, args: &PlanArgs) -> Result<u8> {
    let proposed = match args.files.as_slice() {
        [] => None,
        files => Some(
            read_proposed(files, &settings.namespace).map_err(|message| {
                crate::Error::InvalidSetting {
                    setting: "--file".to_string(),
                    message,
                }
            })?,
        ),
    };
    let ctx = Context::connect(settings).await?;
    let syncer = Syncer::new(ctx.clone());
    let report = observe(&syncer, proposed.as_ref()).await;
    ctx.revoke_token().await;
    let report = report?;
    let text = match args.output {
        OutputFormat::Text => render_text(&report, stdout_style()),
        OutputFormat::Json => render_json(&report),
    };
    print!("{text}");
    Ok(exit_status(&report))
}

/// 1 when an entry is invalid, else 2 when changes are pending, else 0.
pub fn exit_status(report: &PlanReport) -> u8 {
    if report.summary.invalid_entries > 0 {
        status::FAILURE
    } else if report.changes_pending {
        status::CHANGES_PENDING
    } else {
        status::SUCCESS
    }
}

/// The JSON report (pretty, one document).
pub fn render_json(report: &PlanReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a plan serialises");
    text.push('\n');
    text
}

/// A role field's value as the user wrote it: durations in their units (`1h`, not 3600), and
/// `(unset)` where the value is Vault's default for the field (0, an empty list, ...).
pub fn show_value(field: &str, value: &Value) -> String {
    let defaults = normalize_vault_role(&Map::new());
    if defaults.get(field) == Some(value) {
        return "(unset)".to_string();
    }
    match value.as_u64() {
        Some(seconds) if is_duration_param(field) => format_duration(seconds),
        _ => value.to_string(),
    }
}

/// The Vault part of a plan: one line per action, field changes indented below their role.
pub fn render_vault_actions(
    enable_mount: bool,
    write_config: Option<&ConfigChange>,
    roles: &[RoleChange],
    style: Style,
) -> Vec<String> {
    let mut lines = Vec::new();
    if enable_mount {
        lines.push(style.added(&format!(
            "+ enable auth method kubernetes (max_lease_ttl {MOUNT_MAX_LEASE_TTL})"
        )));
    }
    if let Some(change) = write_config {
        lines.push(style.changed("~ write config"));
        for reason in &change.reasons {
            lines.push(style.dim(&format!("    {reason}")));
        }
    }
    for role in roles {
        let (head, arrow) = match role.action {
            "create" => (style.added(&format!("+ create role {}", role.name)), false),
            "update" => (style.changed(&format!("~ update role {}", role.name)), true),
            _ => (
                style.removed(&format!("- delete role {}", role.name)),
                false,
            ),
        };
        lines.push(head);
        for c in &role.changes {
            lines.push(if arrow {
                format!(
                    "    {}: {} -> {}",
                    c.field,
                    show_value(&c.field, &c.from),
                    show_value(&c.field, &c.to)
                )
            } else {
                format!("    {}: {}", c.field, show_value(&c.field, &c.to))
            });
        }
    }
    lines
}

/// The ServiceAccount part of a plan (shared with `sync --once`'s summary).
pub fn render_service_account_actions(
    actions: &[ServiceAccountAction],
    style: Style,
) -> Vec<String> {
    let joined = |roles: &crate::role_names::RoleNames| roles.join(", ");
    actions
        .iter()
        .map(|action| match action {
            ServiceAccountAction::Create { sa, roles } => style.added(&format!(
                "+ create ServiceAccount {sa} (roles: {})",
                joined(roles)
            )),
            ServiceAccountAction::SetRoles { sa, roles } => style.changed(&format!(
                "~ set roles of ServiceAccount {sa}: {}",
                joined(roles)
            )),
            ServiceAccountAction::Delete { sa } => {
                style.removed(&format!("- delete ServiceAccount {sa}"))
            }
        })
        .collect()
}

fn render_object(change: &KubeChange, style: Style) -> String {
    let name = match &change.namespace {
        Some(ns) => format!("{ns}/{}", change.name),
        None => change.name.clone(),
    };
    let what = format!("{} {name}", change.kind);
    let line = |sign: &str, verb: &str| format!("{sign} {verb} {what}");
    let head = match change.action {
        KubeVerb::Create => style.added(&line("+", "create")),
        KubeVerb::Update => style.changed(&line("~", "update")),
        KubeVerb::Replace => style.changed(&line("~", "replace")),
        KubeVerb::Delete => style.removed(&line("-", "delete")),
    };
    format!("{head} {}", style.dim(&format!("({})", change.reason)))
}

/// The human report.
pub fn render_text(report: &PlanReport, style: Style) -> String {
    let mut out = String::new();
    let mut section = |title: String, lines: Vec<String>| {
        if lines.is_empty() {
            return;
        }
        out += &style.bold(&title);
        out.push('\n');
        for line in lines {
            out += &format!("  {line}\n");
        }
        out.push('\n');
    };
    let vault = &report.vault;
    let namespace = vault
        .namespace
        .as_ref()
        .map(|ns| format!(" (namespace {ns})"))
        .unwrap_or_default();
    section(
        format!("Vault {}{namespace}, {}:", vault.address, vault.path),
        render_vault_actions(
            vault.enable_mount,
            vault.write_config.as_ref(),
            &vault.roles,
            style,
        ),
    );
    let kube = &report.kubernetes;
    section(
        format!(
            "Kubernetes, the token reviewer (namespace {}, and cluster-wide):",
            kube.namespace
        ),
        kube.objects
            .iter()
            .map(|c| render_object(c, style))
            .collect(),
    );
    // ServiceAccounts under their namespace, as `kubectl get -A` groups them.
    let mut by_namespace: BTreeMap<&str, Vec<ServiceAccountAction>> = BTreeMap::new();
    for action in &kube.service_accounts {
        by_namespace
            .entry(&*action.sa().namespace)
            .or_default()
            .push(action.clone());
    }
    for (namespace, actions) in by_namespace {
        section(
            format!("Kubernetes, namespace {namespace}:"),
            render_service_account_actions(&actions, style),
        );
    }
    let show = |findings: &[Finding]| -> Vec<String> {
        findings.iter().map(ToString::to_string).collect()
    };
    section(
        "Invalid entries (skipped; their Vault roles and ServiceAccounts stay as they are):"
            .to_string(),
        show(&report.invalid_entries)
            .into_iter()
            .map(|l| style.removed(&l))
            .collect(),
    );
    section("Warnings:".to_string(), show(&report.warnings));
    section(
        "Left alone (these objects have this tool's names but are someone else's):".to_string(),
        report
            .conflicts
            .iter()
            .map(|c| style.removed(&c.to_string()))
            .collect(),
    );
    section("Notes:".to_string(), report.notes.clone());
    out += &summary(report);
    out.push('\n');
    out
}

/// The summary: a line per kind of change, and what holds the plan back.
fn summary(report: &PlanReport) -> String {
    let s = &report.summary;
    let configmap = match report.configmap {
        "missing" => Some(format!(
            "ConfigMap {}/{ROLES_CONFIGMAP} does not exist: a sync changes and deletes no role \
             or ServiceAccount.",
            report.kubernetes.namespace
        )),
        "empty-held" => Some(format!(
            "ConfigMap {}/{ROLES_CONFIGMAP} has no entry and emptiness is not opted in: a sync \
             deletes nothing.",
            report.kubernetes.namespace
        )),
        _ => None,
    };
    let mut lines = Vec::new();
    if !report.changes_pending {
        lines.push(match &configmap {
            Some(_) => "No changes.".to_string(),
            None if s.invalid_entries > 0 => {
                "No changes for the valid entries: Vault and Kubernetes match them.".to_string()
            }
            None => "No changes: Vault and Kubernetes match the ConfigMap.".to_string(),
        });
    } else {
        lines.push("Plan:".to_string());
        let mut vault = Vec::new();
        if s.enable_mount {
            vault.push("enable it".to_string());
        }
        if s.write_config {
            vault.push("write its config".to_string());
        }
        if !vault.is_empty() {
            lines.push(format!("  Vault auth method: {}", vault.join(", ")));
        }
        let kinds = [
            ("Vault roles", s.roles, "update"),
            ("ServiceAccounts", s.service_accounts, "change roles of"),
            ("Token reviewer objects", s.reviewer_objects, "update"),
        ];
        for (kind, counts, update) in kinds {
            if counts.total() > 0 {
                lines.push(format!(
                    "  {kind}: {} to create, {} to {update}, {} to delete",
                    counts.create, counts.update, counts.delete
                ));
            }
        }
    }
    lines.extend(configmap);
    if s.invalid_entries > 0 {
        let names: Vec<&str> = report
            .invalid_entries
            .iter()
            .map(|f| f.key.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        lines.push(format!(
            "Invalid: {} ({}), left unapplied: exit status 1.",
            plural(names.len(), "entry", "entries"),
            names.join(", ")
        ));
    }
    if s.conflicts > 0 {
        lines.push(format!(
            "Left alone: {} of this tool's names that {} someone else's.",
            plural(s.conflicts, "object", "objects"),
            if s.conflicts == 1 { "is" } else { "are" }
        ));
    }
    lines.join("\n")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
