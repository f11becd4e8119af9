//! What a benchmark run produced: the contents of results.json, from which results.md and the
//! plots are rendered (also later, with `--render`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cli::{Plan, Size};
use crate::measure::{AuditRequest, KubeTally, Summary, count_operations};

/// Bumped when a field changes meaning, so `--render` can refuse what it cannot read.
pub const FORMAT: u32 = 1;

/// Everything of one invocation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    pub format: u32,
    /// UTC, RFC 3339.
    pub started: String,
    pub finished: String,
    pub machine: Machine,
    pub plan: Plan,
    pub controllers: Vec<ControllerInfo>,
    pub runs: Vec<Run>,
}

impl Results {
    /// Whether every scenario of every run converged.
    pub fn all_ok(&self) -> bool {
        self.runs.iter().all(|r| r.error.is_none())
    }
}

/// The machine the numbers were taken on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub memory_bytes: u64,
    pub kernel: String,
    pub git_commit: Option<String>,
    /// Whether the work tree had uncommitted changes.
    pub git_dirty: Option<bool>,
}

/// A benchmarked binary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ControllerInfo {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// One controller at one size: every scenario, each `None` if it did not run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub controller: String,
    pub size: Size,
    /// ServiceAccounts the seed's roles call for at the start.
    pub service_accounts: usize,
    /// The controller's log.
    pub log: String,
    pub cold_start: Option<ColdStart>,
    pub baseline: Option<Baseline>,
    pub edits: Option<Phase>,
    pub namespace_creates: Option<Phase>,
    pub burst: Option<Burst>,
    pub idle: Option<Idle>,
    /// VmHWM when the controller was stopped.
    pub peak_rss_bytes: Option<u64>,
    /// Why the run stopped early (the scenarios after it did not run).
    pub error: Option<String>,
    pub seconds: f64,
}

impl Run {
    pub fn new(controller: &str, size: Size, service_accounts: usize, log: String) -> Run {
        Run {
            controller: controller.to_string(),
            size,
            service_accounts,
            log,
            cold_start: None,
            baseline: None,
            edits: None,
            namespace_creates: None,
            burst: None,
            idle: None,
            peak_rss_bytes: None,
            error: None,
            seconds: 0.0,
        }
    }

    /// Cold-start wall time over the baseline's (their medians).
    pub fn baseline_ratio(&self) -> Option<f64> {
        let ours = self.cold_start.as_ref()?.wall_seconds;
        let base = self.baseline.as_ref()?.wall_seconds;
        (base > 0.0).then(|| ours / base)
    }
}

/// Requests of a controller: Kubernetes by verb, Vault by operation (possibly averaged).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    pub kubernetes: BTreeMap<String, f64>,
    pub vault: BTreeMap<String, f64>,
}

impl Requests {
    /// From a tally and audit entries, divided by `per` (e.g. the number of edits).
    pub fn from_parts(kube: &KubeTally, vault: &[AuditRequest], per: f64) -> Requests {
        let per = if per > 0.0 { per } else { 1.0 };
        Requests {
            kubernetes: kube
                .by_verb()
                .into_iter()
                .map(|(k, n)| (k, n as f64 / per))
                .collect(),
            vault: count_operations(vault)
                .into_iter()
                .map(|(k, n)| (k, n as f64 / per))
                .collect(),
        }
    }

    pub fn kubernetes_total(&self) -> f64 {
        self.kubernetes.values().sum()
    }

    pub fn vault_total(&self) -> f64 {
        self.vault.values().sum()
    }
}

/// From process start to converged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ColdStart {
    /// The median of `samples`.
    pub wall_seconds: f64,
    /// Every cold start's time, in the order they ran (the first one's requests are counted).
    #[serde(default)]
    pub samples: Vec<f64>,
    /// When Vault held every role / every ServiceAccount existed, from process start.
    pub vault_done_seconds: f64,
    pub service_accounts_done_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    /// Counted until one second after convergence, so trailing writes (status, Events) count.
    pub requests: Requests,
    /// Kubernetes requests by "verb resource".
    pub kubernetes_by_resource: BTreeMap<String, u64>,
}

/// The raw-writer baseline: the same writes, done by the harness as fast as it can.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// The median of `samples`.
    pub wall_seconds: f64,
    /// Every baseline's time, in the order they ran.
    #[serde(default)]
    pub samples: Vec<f64>,
    /// Kubernetes writes replayed, by "verb resource".
    pub kubernetes_writes: BTreeMap<String, u64>,
    /// Vault writes replayed, by kind (login, enable, config, role, ...).
    pub vault_writes: BTreeMap<String, u64>,
    /// What the controller wrote that the baseline did not replay, and why.
    pub notes: Vec<String>,
}

/// A sequence of single changes (edits, namespace creations).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Phase {
    pub latency: Summary,
    /// Requests per change, averaged over the phase.
    pub per_change: Requests,
}

/// Many edits within one second.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Burst {
    pub edits: usize,
    pub roles_edited: usize,
    /// From the first edit sent until Vault held the last state of every edited role.
    pub from_first_ms: f64,
    pub from_last_ms: f64,
    /// Synchronisation passes the controller ran, if it reports them.
    pub passes: Option<f64>,
    pub requests: Requests,
}

/// Nothing changes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Idle {
    pub seconds: f64,
    /// Kubernetes requests per minute by verb, watches left out.
    pub kubernetes_per_minute: BTreeMap<String, f64>,
    pub watches_per_minute: f64,
    pub vault_per_minute: BTreeMap<String, f64>,
    pub cpu_seconds: f64,
    pub rss_end_bytes: u64,
    pub peak_rss_bytes: u64,
}
