//! `cleanup`: removes what the tool created, and nothing else.
//!
//! What counts as the tool's: ServiceAccounts annotated `vak-managed: "true"` (the original's
//! mark, kept by this tool); the reviewer's ServiceAccount, token Secret and ClusterRoleBinding
//! and the namespace-reader ClusterRole and ClusterRoleBinding only when labelled
//! `app.kubernetes.io/managed-by=vault-auth-kubernetes`; the status annotations it wrote on the
//! ConfigMap (the ConfigMap is the user's and stays); the roles of the auth mount it manages; and
//! the mount itself only when asked. Kubernetes objects are deleted with a uid precondition, so
//! an object re-created by someone else after the listing is never removed.

use std::fmt;
use std::io::IsTerminal;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::status;
use super::style::{Style, confirm, stdout_style};
use crate::cli::{CleanupArgs, OutputFormat};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::k8s::second_writer::{Beat, holder_seen};
use crate::k8s::snapshot::{ClusterSnapshot, ConfigMapState};
use crate::names::{
    MANAGED_SELECTOR, NAMESPACE_READER, REVIEWER_CLUSTER_ROLE_BINDING, REVIEWER_SERVICE_ACCOUNT,
    ROLES_CONFIGMAP,
};
use crate::plan::{MountState, refuse_foreign_mount};
use crate::reviewer_plan::has_managed_label;
use crate::settings::{LEASE_NAME, Settings};
use crate::sync::{STATUS_ANNOTATION, STATUS_MESSAGE_ANNOTATION, STATUS_TIME_ANNOTATION, Syncer};

/// Kinds of Kubernetes objects cleanup removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ServiceAccount,
    Secret,
    ClusterRoleBinding,
    ClusterRole,
}

/// A Kubernetes object to remove, identified down to its uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeObject {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    /// The mark that makes it the tool's.
    pub mark: &'static str,
}

impl fmt::Display for KubeObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ", self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        f.write_str(&self.name)
    }
}

/// Everything cleanup would remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    /// E.g. `auth/kubernetes/prod/eu1`; what sits there.
    pub vault_path: String,
    pub mount: MountState,
    /// Roles of the mount.
    pub vault_roles: Vec<String>,
    /// Disable the mount (only with `--delete-mount`, only when it is a Kubernetes one).
    pub delete_mount: bool,
    /// In removal order: managed ServiceAccounts, bindings, roles, the Secret, the reviewer.
    pub objects: Vec<KubeObject>,
    /// Namespace of the ConfigMap when it carries status annotations to remove.
    pub configmap_status: Option<String>,
}

impl Inventory {
    /// Number of things to remove.
    pub fn len(&self) -> usize {
        let vault = if self.delete_mount {
            1
        } else {
            self.vault_roles.len()
        };
        vault + self.objects.len() + usize::from(self.configmap_status.is_some())
    }

    /// True when there is nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const LABEL_MARK: &str = MANAGED_SELECTOR;
const ANNOTATION_MARK: &str = "vak-managed: \"true\"";

/// What cleanup would remove, from a snapshot and the roles listed at the mount (pure).
pub fn inventory(
    snapshot: &ClusterSnapshot,
    namespace: &str,
    vault_path: String,
    mount: MountState,
    vault_roles: Vec<String>,
    delete_mount: bool,
) -> Inventory {
    let object = |kind, namespace: Option<&str>, name: &str, uid: &str, mark| KubeObject {
        kind,
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        uid: uid.to_string(),
        mark,
    };
    let mut objects: Vec<KubeObject> = snapshot
        .service_accounts
        .iter()
        .filter(|sa| sa.is_managed())
        .map(|sa| {
            let ns = Some(&*sa.namespace);
            object(
                Kind::ServiceAccount,
                ns,
                &sa.name,
                sa.uid(),
                ANNOTATION_MARK,
            )
        })
        .collect();
    // Snapshots hold the RBAC objects of the tool's names; only labelled ones are the tool's.
    let bindings: &[&str] = &[REVIEWER_CLUSTER_ROLE_BINDING, NAMESPACE_READER];
    let rbac = (snapshot.cluster_role_bindings.iter())
        .map(|b| (Kind::ClusterRoleBinding, &b.metadata, bindings))
        .chain(
            (snapshot.cluster_roles.iter())
                .map(|r| (Kind::ClusterRole, &r.metadata, &[NAMESPACE_READER][..])),
        );
    for (kind, meta, names) in rbac {
        let name = meta.name.as_deref().unwrap_or_default();
        if names.contains(&name) && has_managed_label(meta.labels.as_ref()) {
            let uid = meta.uid.as_deref().unwrap_or_default();
            objects.push(object(kind, None, name, uid, LABEL_MARK));
        }
    }
    let ns = namespace.to_string();
    if let Some(secret) = &snapshot.reviewer_secret
        && has_managed_label(secret.metadata.labels.as_ref())
    {
        let name = secret.metadata.name.as_deref().unwrap_or_default();
        let uid = secret.metadata.uid.as_deref().unwrap_or_default();
        objects.push(object(
            Kind::Secret,
            Some(ns.as_str()),
            name,
            uid,
            LABEL_MARK,
        ));
    }
    if let Some(sa) = snapshot.service_account(namespace, REVIEWER_SERVICE_ACCOUNT)
        && sa.labelled
        && !sa.is_managed()
    {
        objects.push(object(
            Kind::ServiceAccount,
            Some(ns.as_str()),
            &sa.name,
            sa.uid(),
            LABEL_MARK,
        ));
    }
    let configmap_status = match &snapshot.configmap {
        ConfigMapState::Present(cm) => cm
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| STATUS_ANNOTATIONS.iter().any(|k| a.contains_key(*k)))
            .then(|| ns.clone()),
        ConfigMapState::Missing => None,
    };
    let kubernetes = mount == MountState::Kubernetes;
    Inventory {
        vault_path,
        delete_mount: delete_mount && kubernetes,
        vault_roles: if kubernetes { vault_roles } else { Vec::new() },
        mount,
        objects,
        configmap_status,
    }
}

const STATUS_ANNOTATIONS: [&str; 3] = [
    STATUS_ANNOTATION,
    STATUS_MESSAGE_ANNOTATION,
    STATUS_TIME_ANNOTATION,
];

/// The list shown before asking.
pub fn render_inventory(inv: &Inventory, address: &str, style: Style) -> String {
    let mut out = style.bold(&format!("Vault {address}, {}:", inv.vault_path));
    out.push('\n');
    let mount = &inv.vault_path;
    if inv.mount != MountState::Kubernetes {
        out += "  nothing: no auth method is mounted there\n";
    } else if inv.delete_mount {
        out += &style.removed(&format!(
            "  - auth method {mount}, with its config and {} role(s)",
            inv.vault_roles.len()
        ));
        out.push('\n');
    } else {
        for role in &inv.vault_roles {
            out += &style.removed(&format!("  - role {role}"));
            out.push('\n');
        }
        out += &style.dim("  kept: the auth method and its config (--delete-mount removes them)");
        out.push('\n');
    }
    out += &style.bold("Kubernetes:");
    out.push('\n');
    for object in &inv.objects {
        out += &format!(
            "  {} {}\n",
            style.removed(&format!("- {object}")),
            style.dim(&format!("({})", object.mark))
        );
    }
    if let Some(ns) = &inv.configmap_status {
        out += &style.removed(&format!(
            "  - status annotations of ConfigMap {ns}/{ROLES_CONFIGMAP} (the ConfigMap stays)"
        ));
        out.push('\n');
    }
    if inv.objects.is_empty() && inv.configmap_status.is_none() {
        out += "  nothing made by this tool\n";
    }
    out
}

/// What to do after listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Proceed,
    Ask,
    Refuse,
}

/// `--yes` proceeds; otherwise ask on a terminal, and refuse without one (no one can answer).
pub fn decide(yes: bool, stdin_is_terminal: bool) -> Decision {
    match (yes, stdin_is_terminal) {
        (true, _) => Decision::Proceed,
        (false, true) => Decision::Ask,
        (false, false) => Decision::Refuse,
    }
}

/// What happened to one item.
#[derive(Debug)]
pub enum Outcome {
    Removed,
    /// Not removed on purpose (e.g. replaced by another object since the listing).
    Skipped(String),
    Failed(Error),
}

async fn delete_object<K>(api: Api<K>, object: &KubeObject) -> Outcome
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug,
{
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(object.uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&object.name, &params).await {
        Ok(_) => Outcome::Removed,
        Err(kube::Error::Api(s)) if s.is_not_found() => Outcome::Skipped("already gone".into()),
        Err(kube::Error::Api(s)) if s.is_conflict() => {
            Outcome::Skipped("replaced by another object since the listing: left alone".into())
        }
        Err(source) => Outcome::Failed(Error::Kube {
            operation: format!("delete {object}"),
            source,
        }),
    }
}

fn outcome(result: Result<()>) -> Outcome {
    result.map_or_else(Outcome::Failed, |()| Outcome::Removed)
}

/// Removes everything in the inventory, Vault first; one failure does not stop the others.
pub async fn remove(syncer: &Syncer, inv: &Inventory) -> Vec<(String, Outcome)> {
    let mut done = Vec::new();
    let path = syncer.ctx().settings.mount.auth_path();
    if inv.delete_mount {
        let result = syncer.ctx().vault.disable_auth(&path).await;
        done.push((format!("auth method {}", inv.vault_path), outcome(result)));
    } else {
        for role in &inv.vault_roles {
            let result = syncer.ctx().vault.delete_role(&path, role).await;
            done.push((format!("role {role}"), outcome(result)));
        }
    }
    let client = &syncer.ctx().client;
    for object in &inv.objects {
        let ns = object.namespace.as_deref().unwrap_or_default();
        let result = match object.kind {
            Kind::ServiceAccount => {
                delete_object(
                    Api::<ServiceAccount>::namespaced(client.clone(), ns),
                    object,
                )
                .await
            }
            Kind::Secret => {
                delete_object(Api::<Secret>::namespaced(client.clone(), ns), object).await
            }
            Kind::ClusterRoleBinding => {
                delete_object(Api::<ClusterRoleBinding>::all(client.clone()), object).await
            }
            Kind::ClusterRole => {
                delete_object(Api::<ClusterRole>::all(client.clone()), object).await
            }
        };
        done.push((object.to_string(), result));
    }
    if let Some(ns) = &inv.configmap_status {
        // A merge patch with nulls removes exactly these keys and nothing else of the user's.
        let annotations: serde_json::Map<String, serde_json::Value> = STATUS_ANNOTATIONS
            .iter()
            .map(|k| (k.to_string(), serde_json::Value::Null))
            .collect();
        let patch = json!({"metadata": {"annotations": annotations}});
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let result = api
            .patch(
                ROLES_CONFIGMAP,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(drop)
            .map_err(|source| Error::Kube {
                operation: format!(
                    "remove the status annotations of ConfigMap {ns}/{ROLES_CONFIGMAP}"
                ),
                source,
            });
        done.push((
            format!("status annotations of ConfigMap {ns}/{ROLES_CONFIGMAP}"),
            outcome(result),
        ));
    }
    done
}

/// One line per item and a total; the exit status is 1 when anything failed.
pub fn render_outcomes(done: &[(String, Outcome)], style: Style) -> (String, u8) {
    let mut out = String::new();
    let mut failed = 0;
    for (what, result) in done {
        out += &match result {
            Outcome::Removed => format!("removed {what}\n"),
            Outcome::Skipped(why) => style.dim(&format!("skipped {what}: {why}\n")),
            Outcome::Failed(error) => {
                failed += 1;
                style.removed(&format!("FAILED {what}: {error}\n"))
            }
        };
    }
    let removed = done
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Removed))
        .count();
    out += &format!("Removed {removed} of {}; {failed} failed.\n", done.len());
    let code = if failed == 0 {
        status::SUCCESS
    } else {
        status::FAILURE
    };
    (out, code)
}

/// Why cleanup stops when no one can confirm.
pub const REFUSAL: &str = "refusing to remove anything: stdin is not a terminal, so no one can \
     confirm; pass --yes to remove without asking (or --dry-run to only list)";

/// Runs `cleanup`.
pub async fn run(settings: Settings, args: &CleanupArgs) -> Result<u8> {
    let address = settings.vault.addr.clone();
    let ctx = Context::connect(settings).await?;
    let result = run_with(&Syncer::new(ctx.clone()), &address, args).await;
    ctx.revoke_token().await;
    result
}

async fn run_with(syncer: &Syncer, address: &str, args: &CleanupArgs) -> Result<u8> {
    syncer.ctx().vault.login().await?;
    let mount = syncer.mount_state().await?;
    let path = syncer.ctx().settings.mount.auth_path();
    // Not this tool's: nothing of it may be touched, nor anything it would be undone with.
    refuse_foreign_mount(&mount, syncer.ctx().settings.mount.as_str())?;
    let roles = if mount == MountState::Kubernetes {
        syncer.ctx().vault.list_roles(&path).await?
    } else {
        Vec::new()
    };
    let namespace = &syncer.ctx().settings.namespace;
    let snapshot = ClusterSnapshot::fetch(&syncer.ctx().client, namespace).await?;
    let inv = inventory(
        &snapshot,
        namespace,
        format!("auth/{path}"),
        mount,
        roles,
        args.delete_mount,
    );
    let running = running_controller(syncer).await;
    if let Some(warning) = &running {
        eprintln!("vault-auth-kubernetes cleanup: warning: {warning}");
    }
    let json = args.output == OutputFormat::Json;
    let style = stdout_style();
    let report = |done: &[(String, Outcome)]| {
        print!(
            "{}",
            render_json(&inv, args.dry_run, running.as_deref(), done)
        );
    };
    if !json {
        print!("{}", render_inventory(&inv, address, style));
    }
    if inv.is_empty() || args.dry_run {
        if json {
            report(&[]);
        } else if inv.is_empty() {
            println!("Nothing to remove.");
        } else {
            println!(
                "Dry run: {} item(s) would be removed; nothing was.",
                inv.len()
            );
        }
        return Ok(status::SUCCESS);
    }
    match decide(args.yes, std::io::stdin().is_terminal()) {
        Decision::Proceed => {}
        Decision::Refuse => {
            eprintln!("vault-auth-kubernetes cleanup: {REFUSAL}");
            return Ok(status::FAILURE);
        }
        Decision::Ask => {
            let question = format!("Remove these {} item(s)?", inv.len());
            let stdin = std::io::stdin();
            if !confirm(&question, &mut stdin.lock(), &mut std::io::stderr()) {
                eprintln!("Aborted: nothing was removed.");
                return Ok(status::FAILURE);
            }
        }
    }
    let done = remove(syncer, &inv).await;
    let (text, code) = render_outcomes(&done, style);
    if json {
        report(&done);
    } else {
        print!("{text}");
    }
    Ok(code)
}

/// A controller that is running re-creates what cleanup removes, at its next pass: one that
/// claimed the Lease `vault-auth-kubernetes` of the namespace recently (leader election renews
/// it; a controller without claims it at start), or whose Pod holds it, is named, with how to
/// stop it. `None` when none is seen.
async fn running_controller(syncer: &Syncer) -> Option<String> {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::jiff::Timestamp;
    let namespace = &syncer.ctx().settings.namespace;
    let api: Api<Lease> = Api::namespaced(syncer.ctx().client.clone(), namespace);
    let lease = match api.get_opt(LEASE_NAME).await {
        Ok(lease) => lease?,
        Err(error) => {
            return Some(format!(
                "could not read Lease {namespace}/{LEASE_NAME} to see whether a controller runs \
                 ({error}); a running controller re-creates what cleanup removes"
            ));
        }
    };
    let stop_it = format!(
        "it re-creates what cleanup removes at its next pass; stop it first (e.g. kubectl -n \
         {namespace} scale deployment vault-auth-kubernetes --replicas=0)"
    );
    if let Beat::Other(holder) = holder_seen(&lease, "", Timestamp::now()) {
        return Some(format!(
            "a controller is running ({holder} claimed Lease {namespace}/{LEASE_NAME} within the \
             last minute): {stop_it}"
        ));
    }
    // A controller alone claims the Lease once, when it starts (it writes nothing while idle),
    // so an old claim proves nothing: in a cluster, the holder is the controller's Pod.
    let holder = lease.spec?.holder_identity.filter(|h| !h.is_empty())?;
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(syncer.ctx().client.clone(), namespace);
    match pods.get_opt(&holder).await {
        Ok(Some(pod)) if pod.metadata.deletion_timestamp.is_none() => Some(format!(
            "a controller is running (its Pod {namespace}/{holder} holds Lease \
             {namespace}/{LEASE_NAME}): {stop_it}"
        )),
        Ok(_) => None,
        Err(error) => Some(format!(
            "Lease {namespace}/{LEASE_NAME} is held by {holder}, and whether that Pod runs could \
             not be read ({error}); a running controller re-creates what cleanup removes"
        )),
    }
}

/// The JSON report: what was found, and what became of each item (empty for a dry run).
pub fn render_json(
    inv: &Inventory,
    dry_run: bool,
    running_controller: Option<&str>,
    done: &[(String, Outcome)],
) -> String {
    let objects: Vec<serde_json::Value> = inv
        .objects
        .iter()
        .map(|o| {
            json!({
                "kind": format!("{:?}", o.kind),
                "namespace": o.namespace,
                "name": o.name,
                "mark": o.mark,
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = done
        .iter()
        .map(|(what, outcome)| match outcome {
            Outcome::Removed => json!({"item": what, "result": "removed"}),
            Outcome::Skipped(why) => json!({"item": what, "result": "skipped", "reason": why}),
            Outcome::Failed(error) => {
                json!({"item": what, "result": "failed", "error": error.to_string()})
            }
        })
        .collect();
    let report = json!({
        "format_version": 1,
        "dry_run": dry_run,
        "running_controller": running_controller,
        "vault": {
            "path": inv.vault_path,
            "mount": inv.mount,
            "roles": inv.vault_roles,
            "delete_mount": inv.delete_mount,
        },
        "kubernetes": {
            "objects": objects,
            "configmap_status_annotations": inv.configmap_status,
        },
        "items": inv.len(),
        "results": results,
        "removed": done.iter().filter(|(_, o)| matches!(o, Outcome::Removed)).count(),
        "failed": done.iter().filter(|(_, o)| matches!(o, Outcome::Failed(_))).count(),
    });
    let mut text = serde_json::to_string_pretty(&report).expect("a report serialises");
    text.push('\n');
    text
}

#[cfg(test)]
#[path = "cleanup_tests.rs"]
mod tests;
