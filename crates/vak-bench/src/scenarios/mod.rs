//! The measured scenarios: cold start, single edits, created namespaces, a burst of edits, and
//! an idle controller.
//!
//! Every wait polls what a user would see (Vault's roles, the ServiceAccounts) with a timeout,
//! and fails naming what it waited for and the controller's log. Requests are counted over a
//! [`Window`]: the API server's counters minus what the harness sent, and Vault's audit log
//! without the harness's root token.

mod changes;
mod observe;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::cli::{ControllerSpec, EnvVar};
use crate::controller::Controller;
use crate::measure::{AuditRequest, KubeTally};
use crate::results::{ColdStart, Requests};
use crate::seed::RoleSpec;
use crate::substrate::Substrate;
use observe::{AccountWatch, Deadline, Window, vault_matches};

/// How long a controller may take to converge from start.
const COLD_START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one edit or one namespace may take to show.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a burst may take to show.
const BURST_TIMEOUT: Duration = Duration::from_secs(60);
/// Polling interval of latency measurements: the resolution of the numbers.
const TIGHT_POLL: Duration = Duration::from_millis(1);
/// Polling interval of Vault's role list during the cold start: tighter would take CPU from
/// the controller on a small machine.
const COLD_POLL: Duration = Duration::from_millis(10);
/// Quiet time after a change shows, so what the controller does after it (status, Events) is
/// counted for that change and does not overlap the next one.
const CHANGE_SETTLE: Duration = Duration::from_millis(200);
/// Quiet time after convergence and after the burst before their requests are counted.
const TRAILING_SETTLE: Duration = Duration::from_secs(1);
/// Role bodies checked at once after the role list matches.
const VERIFY_CONCURRENCY: usize = 8;

/// A running controller on its substrate, and the state it should converge to.
pub struct Bench<'a> {
    pub sub: &'a Substrate,
    pub ctrl: Controller,
    /// The roles as the ConfigMap holds them now.
    pub roles: Vec<RoleSpec>,
}

/// What the cold start leaves for the baseline: the controller's successful Kubernetes
/// requests and its Vault requests.
pub struct ColdWrites {
    pub kube_success: KubeTally,
    pub vault: Vec<AuditRequest>,
}

/// The raw-writer baseline, observed as the controller's cold start is: the harness's
/// ServiceAccount watch runs and Vault is polled for the roles, in this process beside the
/// emulator, exactly as while a controller starts, and the time is taken the same way (until
/// Vault matched and the last ServiceAccount appeared). Without the same observers the
/// controller was charged the harness's own watch (ten thousand more watch events for the
/// emulator to send and the harness to read on the same two cores) and the baseline was not.
pub async fn observed_baseline(
    sub: &Substrate,
    capture: &crate::baseline::Capture,
    roles: &[RoleSpec],
    expected: &BTreeSet<(String, String)>,
) -> Result<crate::results::Baseline> {
    let watch = AccountWatch::synced(sub, expected).await?;
    let started = Instant::now();
    let observe = async {
        let mut vault_at: Option<Instant> = None;
        loop {
            if vault_at.is_none() {
                let polled = Instant::now();
                if vault_matches(sub, roles).await? {
                    vault_at = Some(polled);
                }
            }
            if let (Some(vault_at), (Some(accounts_at), _)) = (vault_at, watch.progress()) {
                return Ok::<Instant, anyhow::Error>(vault_at.max(accounts_at));
            }
            if started.elapsed() > COLD_START_TIMEOUT {
                bail!("the baseline did not converge within {COLD_START_TIMEOUT:?}");
            }
            tokio::time::sleep(COLD_POLL).await;
        }
    };
    let (replayed, converged) = tokio::join!(crate::baseline::replay(sub, capture, roles), observe);
    let mut baseline = replayed?;
    let converged = converged?;
    baseline.wall_seconds = converged.duration_since(started).as_secs_f64();
    baseline.samples = vec![baseline.wall_seconds];
    Ok(baseline)
}

/// Starts the controller and waits until Vault holds exactly the seed's roles and every
/// expected ServiceAccount exists.
pub async fn cold_start<'a>(
    sub: &'a Substrate,
    spec: &ControllerSpec,
    env: &[EnvVar],
    log: &std::path::Path,
    roles: Vec<RoleSpec>,
    expected: &BTreeSet<(String, String)>,
) -> Result<(Bench<'a>, ColdStart, ColdWrites)> {
    let watch = AccountWatch::synced(sub, expected).await?;
    sub.cluster.reset_counters();
    let window = Window::open(sub)?;
    let success_before = sub.server_tally(true);
    let sent_before = sub.kube.sent();
    let mut ctrl = Controller::spawn(spec, env, sub, log)?;
    let started = ctrl.started;

    let what = format!(
        "Vault to hold the {} roles and the {} ServiceAccounts to exist",
        roles.len(),
        expected.len()
    );
    let mut vault_at: Option<Instant> = None;
    let mut deadline = Deadline::new(&mut ctrl, what, COLD_START_TIMEOUT, COLD_POLL);
    let accounts_at = loop {
        if vault_at.is_none() {
            let polled = Instant::now();
            if vault_matches(sub, &roles).await? {
                vault_at = Some(polled);
            }
        }
        let (accounts_at, missing) = watch.progress();
        if let (Some(_), Some(at)) = (vault_at, accounts_at) {
            break at;
        }
        deadline.progress(format!(
            "Vault {}, {missing} ServiceAccounts missing",
            if vault_at.is_some() {
                "done"
            } else {
                "not yet"
            }
        ));
        deadline.tick().await?;
    };
    let vault_at = vault_at.expect("the loop ends once Vault matched");
    let converged = vault_at.max(accounts_at);
    let sample = ctrl.sample()?;
    drop(watch);
    tokio::time::sleep(TRAILING_SETTLE).await;
    let (kube, vault) = window.close(sub)?;
    let kube_success = sub
        .server_tally(true)
        .minus(&success_before)
        .minus(&sub.kube.sent().minus(&sent_before));
    let secs = |t: Instant| t.saturating_duration_since(started).as_secs_f64();
    let cold = ColdStart {
        wall_seconds: secs(converged),
        samples: vec![secs(converged)],
        vault_done_seconds: secs(vault_at),
        service_accounts_done_seconds: secs(accounts_at),
        cpu_seconds: sample.cpu_seconds,
        peak_rss_bytes: sample.peak_rss_bytes,
        requests: Requests::from_parts(&kube, &vault, 1.0),
        kubernetes_by_resource: kube.flat(),
    };
    Ok((
        Bench { sub, ctrl, roles },
        cold,
        ColdWrites {
            kube_success,
            vault,
        },
    ))
}
