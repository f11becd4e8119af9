//! Making the captured writes on a fresh cluster and Vault, timed.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{Capture, token_request};
use crate::results::Baseline;
use crate::seed::{CONTROLLER_NAMESPACE, MOUNT, RoleSpec};
use crate::substrate::Substrate;

/// Vault writes in flight.
const VAULT_CONCURRENCY: usize = 32;
/// Kubernetes writes in flight.
const KUBE_CONCURRENCY: usize = 16;

/// Makes the captured writes on `sub` (fresh and seeded), timed from the login to the last
/// answer.
pub async fn replay(sub: &Substrate, capture: &Capture, roles: &[RoleSpec]) -> Result<Baseline> {
    let http = reqwest::Client::builder()
        .build()
        .context("build the baseline's Vault client")?;
    let started = Instant::now();
    let (vault, kube) = tokio::join!(
        replay_vault(sub, &http, capture, roles),
        replay_kube(sub, capture)
    );
    let wall_seconds = started.elapsed().as_secs_f64();
    let vault_writes = vault.context("the baseline's Vault writes")?;
    let kubernetes_writes = kube.context("the baseline's Kubernetes writes")?;
    Ok(Baseline {
        wall_seconds,
        samples: vec![wall_seconds],
        kubernetes_writes,
        vault_writes,
        notes: capture.notes.clone(),
    })
}

async fn vault_post(
    http: &reqwest::Client,
    addr: &str,
    token: Option<&str>,
    path: &str,
    body: &Value,
) -> Result<Value> {
    let url = format!("{addr}/v1/{path}");
    let mut req = http.post(&url).json(body);
    if let Some(token) = token {
        req = req.header("X-Vault-Token", token);
    }
    let resp = req.send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("POST {url}: {status} {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn replay_vault(
    sub: &Substrate,
    http: &reqwest::Client,
    capture: &Capture,
    roles: &[RoleSpec],
) -> Result<BTreeMap<String, u64>> {
    let addr = sub.vault.addr();
    let mut done = BTreeMap::new();
    let login = vault_post(
        http,
        addr,
        None,
        "auth/approle/login",
        &json!({"role_id": sub.creds.role_id, "secret_id": sub.creds.secret_id}),
    )
    .await?;
    let token = login["auth"]["client_token"]
        .as_str()
        .context("AppRole login without a token")?
        .to_string();
    done.insert("login".to_string(), 1);
    let token = Some(token.as_str());
    let w = &capture.vault;
    if w.enable > 0 {
        let body = json!({"type": "kubernetes", "config": {"max_lease_ttl": "8760h"}});
        vault_post(
            http,
            addr,
            token,
            &format!("sys/auth/kubernetes/{MOUNT}"),
            &body,
        )
        .await?;
        done.insert("enable".to_string(), 1);
    }
    let config = json!({
        "kubernetes_host": sub.cluster.url(),
        "kubernetes_ca_cert": sub.cluster.ca_pem(),
        "token_reviewer_jwt": capture.reviewer_jwt,
    });
    for _ in 0..w.config {
        vault_post(
            http,
            addr,
            token,
            &format!("auth/kubernetes/{MOUNT}/config"),
            &config,
        )
        .await?;
    }
    done.insert("config".to_string(), w.config);
    if !roles.is_empty() {
        futures::stream::iter((0..w.roles as usize).map(|i| {
            let role = &roles[i % roles.len()];
            let path = format!("auth/kubernetes/{MOUNT}/role/{}", role.name);
            let body = role.vault_body();
            async move { vault_post(http, addr, token, &path, &body).await }
        }))
        .buffer_unordered(VAULT_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
        done.insert("role".to_string(), w.roles);
    }
    for (path, n) in &w.token {
        for _ in 0..*n {
            vault_post(http, addr, token, path, &json!({})).await?;
        }
        done.insert(path.clone(), *n);
    }
    Ok(done)
}

async fn replay_kube(sub: &Substrate, capture: &Capture) -> Result<BTreeMap<String, u64>> {
    let client = &sub.kube.client;
    let mut done = BTreeMap::new();
    // Creates, one kind after another (ServiceAccounts first), 16 in flight.
    for (kind, objects) in &capture.creates {
        futures::stream::iter(objects.iter().map(|object| async move {
            let namespace = object["metadata"]["namespace"].as_str();
            let dynamic: DynamicObject = serde_json::from_value(object.clone())?;
            kind.api(client, namespace)
                .create(&PostParams::default(), &dynamic)
                .await
                .with_context(|| {
                    format!("create {} {}", kind.plural, object["metadata"]["name"])
                })?;
            Ok::<(), anyhow::Error>(())
        }))
        .buffer_unordered(KUBE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
        *done.entry(format!("create {}", kind.plural)).or_insert(0) += objects.len() as u64;
    }
    if capture.token_requests > 0 {
        // On the first ServiceAccount the controller created in its namespace (its reviewer).
        let reviewer = capture
            .creates
            .iter()
            .filter(|(k, _)| k.plural == "serviceaccounts")
            .flat_map(|(_, objects)| objects)
            .find(|o| o["metadata"]["namespace"] == CONTROLLER_NAMESPACE)
            .and_then(|o| o["metadata"]["name"].as_str())
            .unwrap_or("default")
            .to_string();
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), CONTROLLER_NAMESPACE);
        let request = token_request();
        futures::stream::iter((0..capture.token_requests).map(|_| {
            let (api, request, reviewer) = (&api, &request, &reviewer);
            async move {
                api.create_token_request(reviewer, &PostParams::default(), request)
                    .await
                    .with_context(|| format!("TokenRequest for {reviewer}"))
            }
        }))
        .buffer_unordered(KUBE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
        done.insert(
            "create serviceaccounts/token".to_string(),
            capture.token_requests,
        );
    }
    for (kind, namespace, name, count) in &capture.patches {
        let api = kind.api(client, namespace.as_deref());
        futures::stream::iter((0..*count).map(|k| {
            let (api, name) = (&api, name);
            async move {
                let patch =
                    json!({"metadata": {"annotations": {"vak-bench/replay": k.to_string()}}});
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .with_context(|| format!("patch {} {name}", kind.plural))
            }
        }))
        .buffer_unordered(KUBE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
        *done.entry(format!("patch {}", kind.plural)).or_insert(0) += count;
    }
    Ok(done)
}
