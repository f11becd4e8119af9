//! What the controller wrote during its cold start, read from the counters, the audit log and
//! the objects in the cluster.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde_json::Value;

use super::{Capture, Kind, Snapshot, VaultWrites, key, token_request};
use crate::measure::{AuditRequest, KubeTally};
use crate::scenarios::ColdWrites;
use crate::seed::{CONFIGMAP, CONTROLLER_NAMESPACE, MOUNT};
use crate::substrate::Substrate;

/// Field managers of what the API server writes by itself (the emulator's and a real control
/// plane's controllers): objects only they wrote were not created by the controller.
const SYSTEM_MANAGERS: &[&str] = &[
    "kube-controller-manager",
    "kube-apiserver",
    "namespace-controller",
    "generic-garbage-collector",
];

/// Sorts audit entries of writes into what the baseline replays. Reads and lists are left
/// out (the baseline reads nothing), and so is the AppRole login (it logs in once itself).
pub fn vault_writes(requests: &[AuditRequest]) -> VaultWrites {
    let mut out = VaultWrites::default();
    let config = format!("auth/kubernetes/{MOUNT}/config");
    let role_prefix = format!("auth/kubernetes/{MOUNT}/role/");
    let enable = format!("sys/auth/kubernetes/{MOUNT}");
    for r in requests {
        let write = matches!(r.operation.as_str(), "create" | "update");
        let path = r.path.trim_end_matches('/');
        if !write && r.operation != "delete" {
            continue;
        }
        if write && path.ends_with("/login") {
            continue;
        }
        if write && path == enable {
            out.enable += 1;
        } else if write && path == config {
            out.config += 1;
        } else if write && path.starts_with(&role_prefix) {
            out.roles += 1;
        } else if write && path.starts_with("auth/token/") {
            *out.token.entry(path.to_string()).or_insert(0) += 1;
        } else {
            *out.other
                .entry(format!("{} {path}", r.operation))
                .or_insert(0) += 1;
        }
    }
    out
}

/// The object as the baseline creates it: the controller's copy without what the server set
/// (uid, resourceVersion, timestamps, managedFields, owner references to objects of the
/// other cluster), a token Secret without the token and the ServiceAccount uid the server
/// filled in, a ServiceAccount
/// without the token Secrets a legacy cluster listed.
pub fn clean_copy(object: &Value) -> Value {
    let mut out = object.clone();
    let Some(map) = out.as_object_mut() else {
        return out;
    };
    map.remove("status");
    let metadata = map
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let kept: serde_json::Map<String, Value> = metadata
        .into_iter()
        .filter(|(k, _)| ["name", "namespace", "labels", "annotations"].contains(&k.as_str()))
        .collect();
    map.insert("metadata".into(), Value::Object(kept));
    if map.get("type").and_then(Value::as_str) == Some("kubernetes.io/service-account-token") {
        map.remove("data");
        // The uid of the other cluster's ServiceAccount: the token controller would delete a
        // Secret that names a uid its ServiceAccount does not have.
        if let Some(Value::Object(annotations)) = map
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
        {
            annotations.remove("kubernetes.io/service-account.uid");
        }
    }
    if map.get("kind").and_then(Value::as_str) == Some("ServiceAccount") {
        map.remove("secrets");
    }
    out
}

/// Whether only the API server's own controllers wrote this object.
fn system_only(object: &DynamicObject) -> bool {
    let managers: Vec<&str> = object
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    !managers.is_empty() && managers.iter().all(|m| SYSTEM_MANAGERS.contains(m))
}

/// Records what the controller wrote during its cold start, reading the objects it created.
pub async fn capture(sub: &Substrate, before: &Snapshot, writes: &ColdWrites) -> Result<Capture> {
    let mut notes = Vec::new();
    let mut creates = Vec::new();
    let mut patches = Vec::new();
    let mut token_requests = 0;
    let tally: &KubeTally = &writes.kube_success;
    let mut ordered: Vec<(&(String, String), &u64)> = tally.0.iter().collect();
    // ServiceAccounts first: token Secrets and bindings refer to them.
    ordered.sort_by_key(|((verb, resource), _)| (resource != "serviceaccounts", verb.clone()));
    for ((verb, resource), &count) in ordered {
        match (verb.as_str(), resource.as_str()) {
            ("create", "serviceaccounts/token") => token_requests += count,
            ("create", plural) => match Kind::find(plural) {
                Some(kind) => {
                    let objects = created_objects(sub, kind, before, count, &mut notes).await?;
                    creates.push((kind, objects));
                }
                None => notes.push(format!("{count} creates of {plural} not replayed")),
            },
            ("patch" | "update", "configmaps") => {
                let kind = Kind::find("configmaps").expect("listed");
                patches.push((
                    kind,
                    Some(CONTROLLER_NAMESPACE.into()),
                    CONFIGMAP.into(),
                    count,
                ));
            }
            ("patch" | "update", plural) => {
                let target = creates
                    .iter()
                    .find(|(k, objects)| k.plural == plural && !objects.is_empty())
                    .map(|(k, objects)| (*k, &objects[0]));
                match target {
                    Some((kind, object)) => patches.push((
                        kind,
                        object["metadata"]["namespace"].as_str().map(str::to_string),
                        object["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        count,
                    )),
                    None => notes.push(format!(
                        "{count} {verb}s of {plural} not replayed (no object of that kind created)"
                    )),
                }
            }
            ("get" | "list" | "watch", _) => {}
            (verb, resource) => notes.push(format!("{count} {verb}s of {resource} not replayed")),
        }
    }
    let vault = vault_writes(&writes.vault);
    if vault.enable > 1 {
        notes.push(format!(
            "{} enables of the auth mount: replayed once (a second enable fails)",
            vault.enable
        ));
    }
    for (what, n) in &vault.other {
        notes.push(format!("{n} Vault writes {what} not replayed"));
    }
    let reviewer_jwt = token_for_config(sub).await?;
    Ok(Capture {
        creates,
        token_requests,
        patches,
        vault,
        reviewer_jwt,
        notes,
    })
}

/// The `count` objects of `kind` the controller created, copied; when fewer are found (some
/// were deleted again), copies of them under new names make up the count.
async fn created_objects(
    sub: &Substrate,
    kind: &'static Kind,
    before: &Snapshot,
    count: u64,
    notes: &mut Vec<String>,
) -> Result<Vec<Value>> {
    let list = kind
        .api(&sub.kube.client, None)
        .list(&ListParams::default())
        .await
        .with_context(|| format!("list {}", kind.plural))?;
    let old = before.0.get(kind.plural);
    let mut new: Vec<&DynamicObject> = list
        .items
        .iter()
        .filter(|o| !old.is_some_and(|old| old.contains(&key(&o.metadata))))
        .filter(|o| !system_only(o))
        .collect();
    // Objects a client wrote (a field manager) before those without any: a real control
    // plane's own objects may carry none.
    new.sort_by_key(|o| {
        o.metadata
            .managed_fields
            .as_ref()
            .is_none_or(|m| m.is_empty())
    });
    let found: Vec<Value> = new
        .into_iter()
        .map(|o| serde_json::to_value(o).map(|v| clean_copy(&v)))
        .collect::<Result<_, _>>()?;
    if found.is_empty() {
        notes.push(format!(
            "{count} creates of {}: no created object found, not replayed",
            kind.plural
        ));
        return Ok(Vec::new());
    }
    let mut out: Vec<Value> = found.iter().take(count as usize).cloned().collect();
    let mut k = 0;
    while (out.len() as u64) < count {
        let mut copy = found[k % found.len()].clone();
        let name = copy["metadata"]["name"].as_str().unwrap_or("x").to_string();
        copy["metadata"]["name"] = Value::String(format!("{name}-bench-{k}"));
        out.push(copy);
        k += 1;
    }
    if found.len() as u64 != count {
        notes.push(format!(
            "{count} creates of {} but {} such objects exist afterwards: replayed {count} copies",
            kind.plural,
            found.len()
        ));
    }
    Ok(out)
}

/// A valid ServiceAccount JWT (of `vault-auth/default`) for the auth config the baseline
/// writes; Vault stores it without calling Kubernetes.
async fn token_for_config(sub: &Substrate) -> Result<String> {
    let api: Api<ServiceAccount> = Api::namespaced(sub.kube.client.clone(), CONTROLLER_NAMESPACE);
    let request = token_request();
    let answer = api
        .create_token_request("default", &PostParams::default(), &request)
        .await
        .context("TokenRequest for vault-auth/default (the baseline's reviewer JWT)")?;
    Ok(answer.status.context("TokenRequest without status")?.token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(operation: &str, path: &str) -> AuditRequest {
        AuditRequest {
            operation: operation.into(),
            path: path.into(),
        }
    }

    #[test]
    fn sorts_vault_writes() {
        let w = vault_writes(&[
            req("update", "auth/approle/login"),
            req("read", "sys/auth"),
            req("update", "sys/auth/kubernetes/bench/cluster"),
            req("update", "auth/kubernetes/bench/cluster/config"),
            req("create", "auth/kubernetes/bench/cluster/role/role-0"),
            req("update", "auth/kubernetes/bench/cluster/role/role-1"),
            req("list", "auth/kubernetes/bench/cluster/role/"),
            req("update", "auth/token/renew-self"),
            req("delete", "auth/kubernetes/bench/cluster/role/old"),
        ]);
        assert_eq!((w.enable, w.config, w.roles), (1, 1, 2));
        assert_eq!(w.token.get("auth/token/renew-self"), Some(&1));
        assert_eq!(
            w.other.keys().collect::<Vec<_>>(),
            ["delete auth/kubernetes/bench/cluster/role/old"]
        );
    }

    #[test]
    fn copies_leave_out_what_the_server_set() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "token-reviewer-token", "namespace": "vault-auth", "uid": "u",
                         "resourceVersion": "7", "managedFields": [],
                         "annotations": {"kubernetes.io/service-account.name": "token-reviewer",
                                         "kubernetes.io/service-account.uid": "u"}},
            "data": {"token": "eA=="}
        });
        let copy = clean_copy(&secret);
        assert_eq!(
            copy["metadata"],
            json!({"name": "token-reviewer-token", "namespace": "vault-auth",
                   "annotations": {"kubernetes.io/service-account.name": "token-reviewer"}})
        );
        assert!(copy.get("data").is_none());
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "a", "namespace": "b"}, "secrets": [{"name": "x"}]});
        assert!(clean_copy(&sa).get("secrets").is_none());
    }
}
