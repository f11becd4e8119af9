//! The scenarios that change something while the controller runs: single edits, created
//! namespaces, a burst, and the idle phase.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::observe::{Deadline, Window};
use super::{BURST_TIMEOUT, Bench, CHANGE_SETTLE, CHANGE_TIMEOUT, TIGHT_POLL, TRAILING_SETTLE};
use crate::measure::Summary;
use crate::results::{Burst, Idle, Phase, Requests};
use crate::seed::{self, CONFIGMAP, CONTROLLER_NAMESPACE};

impl Bench<'_> {
    /// Gives role `index` new policies with a merge patch of its ConfigMap key.
    async fn patch_role(&mut self, index: usize, policies: Vec<String>) -> Result<()> {
        self.roles[index].policies = policies;
        let role = &self.roles[index];
        let patch = json!({"data": {role.name.clone(): role.configmap_body()}});
        Api::<ConfigMap>::namespaced(self.sub.kube.client.clone(), CONTROLLER_NAMESPACE)
            .patch(CONFIGMAP, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("patch {CONFIGMAP} (role {})", role.name))?;
        Ok(())
    }

    /// Waits until Vault's role `index` has the policies the harness last gave it.
    async fn wait_policies(&mut self, index: usize, timeout: Duration) -> Result<Instant> {
        let role = self.roles[index].clone();
        let sub = self.sub;
        let what = format!(
            "Vault role {} to have token_policies {:?}",
            role.name, role.policies
        );
        let mut deadline = Deadline::new(&mut self.ctrl, what, timeout, TIGHT_POLL);
        loop {
            let data = sub.vault.role(&role.name).await?;
            let now = Instant::now();
            let policies = data.as_ref().and_then(|d| d["token_policies"].as_array());
            let shows = policies.is_some_and(|p| {
                p.iter()
                    .map(|v| v.as_str())
                    .eq(role.policies.iter().map(|s| Some(s.as_str())))
            });
            if shows {
                return Ok(now);
            }
            deadline.tick().await?;
        }
    }

    /// `count` edits one at a time, each of one role's token_policies: the time from the patch
    /// call returning to Vault showing it.
    pub async fn edits(&mut self, count: usize) -> Result<Phase> {
        let window = Window::open(self.sub)?;
        let mut samples = Vec::with_capacity(count);
        for i in 0..count {
            let index = i % self.roles.len();
            self.patch_role(index, seed::edited_policies("edit", i))
                .await?;
            let sent = Instant::now();
            let shown = self.wait_policies(index, CHANGE_TIMEOUT).await?;
            samples.push(ms(shown.saturating_duration_since(sent)));
            tokio::time::sleep(CHANGE_SETTLE).await;
        }
        let (kube, vault) = window.close(self.sub)?;
        Ok(Phase {
            latency: Summary::of(samples),
            per_change: Requests::from_parts(&kube, &vault, count as f64),
        })
    }

    /// Creates each namespace of `created` (which roles bind) and times until its
    /// ServiceAccounts exist, polling each with GET.
    pub async fn namespace_creates(&mut self, created: &[seed::Namespace]) -> Result<Phase> {
        let window = Window::open(self.sub)?;
        let mut samples = Vec::with_capacity(created.len());
        for ns in created {
            let accounts = seed::expected_service_accounts(&self.roles, std::slice::from_ref(ns));
            if accounts.is_empty() {
                bail!("no role binds namespace {} (a bug of the seed)", ns.name);
            }
            self.sub.create_namespace(ns).await?;
            let sent = Instant::now();
            let api: Api<ServiceAccount> = Api::namespaced(self.sub.kube.client.clone(), &ns.name);
            let mut last = sent;
            for (_, name) in &accounts {
                let what = format!("ServiceAccount {}/{name}", ns.name);
                let mut deadline = Deadline::new(&mut self.ctrl, what, CHANGE_TIMEOUT, TIGHT_POLL);
                loop {
                    let found = api
                        .get_opt(name)
                        .await
                        .with_context(|| format!("GET ServiceAccount {}/{name}", ns.name))?;
                    if found.is_some() {
                        last = Instant::now();
                        break;
                    }
                    deadline.tick().await?;
                }
            }
            samples.push(ms(last.saturating_duration_since(sent)));
            tokio::time::sleep(CHANGE_SETTLE).await;
        }
        let (kube, vault) = window.close(self.sub)?;
        Ok(Phase {
            latency: Summary::of(samples),
            per_change: Requests::from_parts(&kube, &vault, created.len() as f64),
        })
    }

    /// `count` edits spread evenly over one second; the time until Vault holds the last state
    /// of every edited role, and how many passes the controller needed.
    pub async fn burst(&mut self, count: usize) -> Result<Burst> {
        let window = Window::open(self.sub)?;
        let passes_before = self.ctrl.passes().await;
        let spacing = Duration::from_secs(1) / count.max(1) as u32;
        let first = Instant::now();
        let mut edited = BTreeSet::new();
        for i in 0..count {
            tokio::time::sleep_until((first + spacing * i as u32).into()).await;
            let index = i % self.roles.len();
            self.patch_role(index, seed::edited_policies("burst", i))
                .await?;
            edited.insert(index);
        }
        let last = Instant::now();
        let mut pending: Vec<usize> = edited.iter().copied().collect();
        let what = format!("Vault to show the last state of the {} roles", edited.len());
        let mut deadline = Deadline::new(&mut self.ctrl, what, BURST_TIMEOUT, TIGHT_POLL);
        let done = loop {
            let mut still = Vec::new();
            for &i in &pending {
                let role = &self.roles[i];
                let shows = self
                    .sub
                    .vault
                    .role(&role.name)
                    .await?
                    .is_some_and(|d| role.matches_vault(&d));
                if !shows {
                    still.push(i);
                }
            }
            pending = still;
            if pending.is_empty() {
                break Instant::now();
            }
            deadline.tick().await?;
        };
        tokio::time::sleep(TRAILING_SETTLE).await;
        let passes = match (passes_before, self.ctrl.passes().await) {
            (Some(before), Some(after)) => Some(after - before),
            _ => None,
        };
        let (kube, vault) = window.close(self.sub)?;
        Ok(Burst {
            edits: count,
            roles_edited: edited.len(),
            from_first_ms: ms(done.saturating_duration_since(first)),
            from_last_ms: ms(done.saturating_duration_since(last)),
            passes,
            requests: Requests::from_parts(&kube, &vault, 1.0),
        })
    }

    /// After `settle`, `duration` with no change: requests per minute, CPU and memory.
    pub async fn idle(&mut self, settle: Duration, duration: Duration) -> Result<Idle> {
        tokio::time::sleep(settle).await;
        self.ctrl.check_running()?;
        let window = Window::open(self.sub)?;
        let before = self.ctrl.sample()?;
        let start = Instant::now();
        while start.elapsed() < duration {
            tokio::time::sleep((duration - start.elapsed()).min(Duration::from_secs(1))).await;
            self.ctrl
                .check_running()
                .context("while the controller was idle")?;
        }
        let after = self.ctrl.sample()?;
        let seconds = start.elapsed().as_secs_f64();
        let (kube, vault) = window.close(self.sub)?;
        let per_minute = 60.0 / seconds;
        let requests = Requests::from_parts(&kube, &vault, 1.0);
        let mut kubernetes: BTreeMap<String, f64> = requests
            .kubernetes
            .into_iter()
            .map(|(k, n)| (k, n * per_minute))
            .collect();
        let watches = kubernetes.remove("watch").unwrap_or(0.0);
        Ok(Idle {
            seconds,
            kubernetes_per_minute: kubernetes,
            watches_per_minute: watches,
            vault_per_minute: requests
                .vault
                .into_iter()
                .map(|(k, n)| (k, n * per_minute))
                .collect(),
            cpu_seconds: after.cpu_seconds - before.cpu_seconds,
            rss_end_bytes: after.rss_bytes,
            peak_rss_bytes: after.peak_rss_bytes,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
