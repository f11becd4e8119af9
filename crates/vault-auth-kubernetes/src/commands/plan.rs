//! `plan`: what a sync would do, found by reading the cluster and Vault exactly as a sync does,
//! without writing anything; rendered for people (colour on a terminal) or as JSON.
//!
//! The reviewer's objects are planned by the same pure function a sync carries out
//! ([`plan_reviewer`]). When the reviewer's token does not exist yet, the plan says that the
//! config would be written with the new token.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::status;
use super::style::{Style, stdout_style};
use crate::cli::{OutputFormat, PlanArgs};
use crate::context::Context;
use crate::error::Result;
use crate::k8s::snapshot::ClusterSnapshot;
use crate::names::MOUNT_MAX_LEASE_TTL;
use crate::plan::{ConfigChange, MountState, Plan, RoleAction, ServiceAccountAction};
use crate::reviewer_plan::{
    Conflict, KubeChange, KubeVerb, ReviewerPlan, ReviewerToken, plan_reviewer,
};
use crate::roles::{FieldChange, Finding, diff_role, normalize_vault_role, parse_roles};
use crate::secret::Secret as SecretString;
use crate::settings::Settings;
use crate::sync::{Observation, Syncer};

/// Everything `plan` reports. Holds no secret: the reviewer JWT stays in the observation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanReport {
    /// True when a sync would change anything in Vault or Kubernetes.
    pub changes_pending: bool,
    pub vault: VaultPlan,
    pub kubernetes: KubernetesPlan,
    /// Rejected entries (errors): their Vault roles and ServiceAccounts are left as they are.
    pub invalid_entries: Vec<Finding>,
    /// Entries applied with a warning.
    pub warnings: Vec<Finding>,
    /// Objects of the tool's names that are someone else's: a sync leaves them alone.
    pub conflicts: Vec<Conflict>,
    /// What a sync would deliberately leave alone, and why.
    pub notes: Vec<String>,
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
        PlanReport {
            changes_pending: !plan.is_empty() || !reviewer.changes.is_empty(),
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
            invalid_entries: pick(true),
            warnings: pick(false),
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
                    body: Some(body.clone()),
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
                body: Some(body.clone()),
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
pub async fn observe(syncer: &Syncer) -> Result<PlanReport> {
    let settings = &syncer.ctx().settings;
    syncer.ctx().vault.login().await?;
    let mount = syncer.mount_state().await?;
    let snapshot = ClusterSnapshot::fetch(&syncer.ctx().client, &settings.namespace).await?;
    let (data, _) = snapshot.roles_to_plan(settings.allow_empty_configmap);
    let roles = data.map(|data| parse_roles(&data));
    let reviewer = plan_reviewer(&snapshot, &settings.namespace, roles.as_ref());
    // Without a token the fingerprint cannot match: the config is planned to be written.
    let jwt = match &reviewer.token {
        ReviewerToken::Ready(jwt) => jwt.clone(),
        ReviewerToken::Pending | ReviewerToken::Blocked => SecretString::default(),
    };
    let observation = syncer.observe(&snapshot, mount, jwt).await?;
    let plan = observation.plan(settings.mount.as_str(), &syncer.fingerprint_scope())?;
    let target = Target {
        address: &settings.vault.addr,
        vault_namespace: settings.vault.namespace.as_deref(),
        path: format!("auth/{}", settings.mount.auth_path()),
        namespace: &settings.namespace,
    };
    Ok(PlanReport::new(target, &observation, plan, reviewer))
}

/// Runs `plan`: prints the report, returns 0 (no changes) or 2 (changes pending).
pub async fn run(settings: Settings, args: &PlanArgs) -> Result<u8> {
    let ctx = Context::connect(settings).await?;
    let syncer = Syncer::new(ctx.clone());
    let report = observe(&syncer).await;
    ctx.revoke_token().await;
    let report = report?;
    let text = match args.output {
        OutputFormat::Text => render_text(&report, stdout_style()),
        OutputFormat::Json => render_json(&report),
    };
    print!("{text}");
    Ok(if report.changes_pending {
        status::CHANGES_PENDING
    } else {
        status::SUCCESS
    })
}

/// The JSON report (pretty, one document).
pub fn render_json(report: &PlanReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a plan serialises");
    text.push('\n');
    text
}

fn json(value: &Value) -> String {
    value.to_string()
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
                format!("    {}: {} -> {}", c.field, json(&c.from), json(&c.to))
            } else {
                format!("    {}: {}", c.field, json(&c.to))
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
    let joined = |roles: &std::collections::BTreeSet<String>| {
        roles.iter().cloned().collect::<Vec<_>>().join(", ")
    };
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
    let mut kube_lines: Vec<String> = kube
        .objects
        .iter()
        .map(|c| render_object(c, style))
        .collect();
    kube_lines.extend(render_service_account_actions(
        &kube.service_accounts,
        style,
    ));
    section(
        format!("Kubernetes (namespace {}):", kube.namespace),
        kube_lines,
    );
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

/// The last line: counts by kind of change.
fn summary(report: &PlanReport) -> String {
    if !report.changes_pending {
        return "No changes: Vault and Kubernetes match the ConfigMap.".to_string();
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for role in &report.vault.roles {
        *counts.entry(role.action).or_default() += 1;
    }
    let mut parts = Vec::new();
    if report.vault.enable_mount {
        parts.push("enable the auth method".to_string());
    }
    if report.vault.write_config.is_some() {
        parts.push("write the config".to_string());
    }
    for action in ["create", "update", "delete"] {
        if let Some(n) = counts.get(action) {
            parts.push(format!("{action} {n} role(s)"));
        }
    }
    let objects = report.kubernetes.objects.len() + report.kubernetes.service_accounts.len();
    if objects > 0 {
        parts.push(format!("change {objects} Kubernetes object(s)"));
    }
    format!("Plan: {}.", parts.join(", "))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
