//! Helpers of the operator-command tests: run the built binary against the test environment
//! of `tests/support` (OpenBao + emulator), and capture what Vault and Kubernetes hold.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::process::Stdio;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::support::{AUTH_PATH, Env};

/// What a run of the binary left.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout as JSON (for `--output json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Runs `vault-auth-kubernetes ARGS` configured for `env` through environment variables (as the
/// Helm chart does), with stdin closed (no terminal) and nothing else of this process's
/// environment.
pub async fn vak(env: &Env, args: &[&str]) -> Run {
    vak_with(env, args, &[]).await
}

/// [`vak`] with `input` on its stdin.
pub async fn vak_stdin(env: &Env, args: &[&str], input: &str) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vault-auth-kubernetes"))
        .args(args)
        .env_clear()
        .envs(env.controller_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vault-auth-kubernetes");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A manifest of ConfigMap `vault-auth-roles` holding `entries`, as a pull request would.
pub fn roles_manifest(entries: &[(&str, Value)]) -> String {
    let mut text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vault-auth-roles\n  \
                    namespace: vault-auth\ndata:\n"
        .to_string();
    for (key, body) in entries {
        let json = match body {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text += &format!("  {key}: '{}'\n", json.replace('\'', "''"));
    }
    text
}

/// [`vak`] with more environment variables, or other values for its own.
pub async fn vak_with(env: &Env, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vault-auth-kubernetes"))
        .args(args)
        .env_clear()
        .envs(env.controller_env())
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run vault-auth-kubernetes");
    let run = Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // The secret-id is passed in; it must never come back out.
    assert!(
        !run.stdout.contains(&env.creds.secret_id) && !run.stderr.contains(&env.creds.secret_id),
        "secret-id printed: {run:?}"
    );
    run
}

/// Runs `vault-auth-kubernetes ARGS` like [`vak`], but on a pseudo-terminal (util-linux
/// `script`), typing `input`; `extra_env` adds variables (e.g. `NO_COLOR`). The terminal merges
/// stdout and stderr and echoes the input.
pub async fn vak_on_terminal(
    env: &Env,
    args: &[&str],
    input: &str,
    extra_env: &[(&str, &str)],
) -> Run {
    use tokio::io::AsyncWriteExt;
    let command = std::iter::once(env!("CARGO_BIN_EXE_vault-auth-kubernetes"))
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = tokio::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.controller_env())
        .envs(extra_env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run `script` (util-linux; Debian package bsdutils) to get a terminal");
    // Kept open until the program ends: `script` ends the session at the end of its input.
    let mut stdin = child.stdin.take().expect("stdin pipe");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("type the input");
    let out = child.wait_with_output().await.expect("wait for script");
    drop(stdin);
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Everything Vault holds for the test mount, read as root: the `sys/auth` listing, the
/// mount's config, and every role.
pub async fn vault_state(env: &Env) -> Value {
    let mounts = env.bao.request("GET", "sys/auth", None).await.body["data"].clone();
    let config = env
        .bao
        .request("GET", &format!("auth/{AUTH_PATH}/config"), None)
        .await;
    let mut roles = serde_json::Map::new();
    for name in env.vault_role_names().await {
        roles.insert(
            name.clone(),
            env.vault_role(&name).await.unwrap_or(Value::Null),
        );
    }
    serde_json::json!({
        "sys/auth": mounts,
        "config": [config.status, config.body["data"]],
        "roles": roles,
    })
}

/// The objects of the kinds the tool touches, by `kind namespace/name`: uid, resourceVersion,
/// labels, annotations (and a ConfigMap's data).
pub async fn cluster_state(env: &Env) -> BTreeMap<String, Value> {
    let client = env.client();
    let mut state = BTreeMap::new();
    let lp = ListParams::default();
    macro_rules! collect {
        ($kind:ty, $name:literal, $extra:expr) => {
            for o in Api::<$kind>::all(client.clone()).list(&lp).await.expect("list").items {
                let m = &o.metadata;
                let key = format!(
                    "{} {}/{}",
                    $name,
                    m.namespace.clone().unwrap_or_default(),
                    m.name.clone().unwrap_or_default()
                );
                let extra: Value = $extra(&o);
                // An emptied map (e.g. after the last annotation was removed) is no map.
                let empty = |m: &Option<BTreeMap<String, String>>| m.as_ref().is_none_or(|m| m.is_empty());
                let labels = if empty(&m.labels) { None } else { m.labels.clone() };
                let annotations = if empty(&m.annotations) { None } else { m.annotations.clone() };
                state.insert(
                    key,
                    serde_json::json!({
                        "uid": m.uid, "resourceVersion": m.resource_version,
                        "labels": labels, "annotations": annotations, "extra": extra,
                    }),
                );
            }
        };
    }
    collect!(ServiceAccount, "ServiceAccount", |_: &ServiceAccount| {
        Value::Null
    });
    collect!(Secret, "Secret", |s: &Secret| serde_json::json!(s.type_));
    collect!(
        ClusterRoleBinding,
        "ClusterRoleBinding",
        |b: &ClusterRoleBinding| { serde_json::json!([b.role_ref, b.subjects]) }
    );
    collect!(
        ClusterRole,
        "ClusterRole",
        |r: &ClusterRole| serde_json::json!(r.rules)
    );
    collect!(ConfigMap, "ConfigMap", |c: &ConfigMap| serde_json::json!(
        c.data
    ));
    state
}

/// The objects that differ between two states, one line each (empty when equal).
pub fn state_diff(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| format!("{k}: {:?} -> {:?}", before.get(k), after.get(k)))
        .collect()
}

/// Keys present in `after` but not in `before`, and the other way round.
pub fn added_and_removed(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
) -> (Vec<String>, Vec<String>) {
    let added = after
        .keys()
        .filter(|k| !before.contains_key(*k))
        .cloned()
        .collect();
    let removed = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    (added, removed)
}

/// The Kubernetes writes counted, other than the reports and the controller's own Lease:
/// Events, the status annotations patched onto the roles ConfigMap, and the claim (or
/// leader election) on the Lease `vault-auth-kubernetes`.
pub fn writes_besides_reports(env: &Env) -> Vec<(String, String, u16, u64)> {
    env.kube
        .counters()
        .entries()
        .into_iter()
        .filter(|(verb, resource, ..)| {
            ["create", "update", "patch", "delete", "deletecollection"].contains(&verb.as_str())
                && resource != "events"
                && resource != "leases"
                && !(verb == "patch" && resource == "configmaps")
        })
        .collect()
}

/// The status annotations of the roles ConfigMap: (status, message).
pub async fn configmap_status(env: &Env) -> (String, String) {
    let cm = Api::<ConfigMap>::namespaced(env.client(), crate::support::NAMESPACE)
        .get("vault-auth-roles")
        .await
        .expect("get ConfigMap");
    let annotations = cm.metadata.annotations.unwrap_or_default();
    (
        annotations
            .get("vault-auth-kubernetes/status")
            .cloned()
            .unwrap_or_default(),
        annotations
            .get("vault-auth-kubernetes/status-message")
            .cloned()
            .unwrap_or_default(),
    )
}
