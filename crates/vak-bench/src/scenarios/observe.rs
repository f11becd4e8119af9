//! How the harness observes a controller: request windows, deadlines of waits, a watch of
//! ServiceAccounts, and Vault's roles.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};

use super::VERIFY_CONCURRENCY;
use crate::controller::Controller;
use crate::measure::{AuditRequest, KubeTally};
use crate::seed::RoleSpec;
use crate::substrate::Substrate;

/// Requests counted between [`Window::open`] and [`Window::close`].
pub struct Window {
    server: KubeTally,
    sent: KubeTally,
}

impl Window {
    /// Starts counting (Vault requests logged before now are discarded).
    pub fn open(sub: &Substrate) -> Result<Window> {
        sub.vault.take_requests()?;
        Ok(Window {
            server: sub.server_tally(false),
            sent: sub.kube.sent(),
        })
    }

    /// The controller's requests since [`Window::open`].
    pub fn close(self, sub: &Substrate) -> Result<(KubeTally, Vec<AuditRequest>)> {
        let server = sub.server_tally(false).minus(&self.server);
        let sent = sub.kube.sent().minus(&self.sent);
        Ok((server.minus(&sent), sub.vault.take_requests()?))
    }
}

/// The deadline of one wait: [`Deadline::tick`] waits for the next poll, and fails after
/// the timeout naming what was awaited and the controller's log, or as soon as the controller
/// has exited. Polls are on a fixed schedule (an interval, not a sleep after each check), so
/// the time a check takes does not stretch the resolution.
pub(super) struct Deadline<'c> {
    ctrl: &'c mut Controller,
    what: String,
    timeout: Duration,
    every: Duration,
    interval: tokio::time::Interval,
    start: Instant,
    polls: u64,
    /// How far it got, for the error ("12 ServiceAccounts still missing").
    progress: String,
}

impl<'c> Deadline<'c> {
    pub(super) fn new(
        ctrl: &'c mut Controller,
        what: String,
        timeout: Duration,
        every: Duration,
    ) -> Self {
        let start = Instant::now();
        let mut interval = tokio::time::interval_at((start + every).into(), every);
        // A check slower than the interval is followed by the next one at once, not by a burst.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Deadline {
            ctrl,
            what,
            timeout,
            every,
            interval,
            start,
            polls: 0,
            progress: String::new(),
        }
    }

    /// What the error says about how far it got.
    pub(super) fn progress(&mut self, progress: String) {
        self.progress = progress;
    }

    /// "<what> (<progress>)".
    fn describe(&self) -> String {
        if self.progress.is_empty() {
            self.what.clone()
        } else {
            format!("{} ({})", self.what, self.progress)
        }
    }

    pub(super) async fn tick(&mut self) -> Result<()> {
        self.polls += 1;
        // Checking the process costs a syscall: not on every 1 ms poll.
        if self.polls.is_multiple_of(50) || self.every >= Duration::from_millis(10) {
            let what = self.describe();
            self.ctrl
                .check_running()
                .with_context(|| format!("while waiting for {what}"))?;
        }
        if self.start.elapsed() > self.timeout {
            bail!(
                "timed out after {:?} waiting for {} (controller {}, log: {})",
                self.timeout,
                self.describe(),
                self.ctrl.name,
                self.ctrl.log.display()
            );
        }
        self.interval.tick().await;
        Ok(())
    }
}

/// Follows ServiceAccounts with a metadata watch and records when the last expected one
/// appeared: exact, and far cheaper than listing thousands of them again and again.
pub(super) struct AccountWatch {
    task: tokio::task::JoinHandle<()>,
    state: Arc<Mutex<WatchState>>,
}

struct WatchState {
    missing: HashSet<(String, String)>,
    synced: bool,
    complete_at: Option<Instant>,
}

impl AccountWatch {
    fn start(sub: &Substrate, expected: &BTreeSet<(String, String)>) -> AccountWatch {
        let state = Arc::new(Mutex::new(WatchState {
            missing: expected.iter().cloned().collect(),
            synced: false,
            complete_at: None,
        }));
        let shared = state.clone();
        // Api<PartialObjectMeta<_>> makes metadata-only requests.
        let api: Api<PartialObjectMeta<ServiceAccount>> = Api::all(sub.kube.client.clone());
        let task = tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default()).default_backoff();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                let Ok(event) = event else { continue };
                let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                let key = |m: &kube::api::ObjectMeta| {
                    (
                        m.namespace.clone().unwrap_or_default(),
                        m.name.clone().unwrap_or_default(),
                    )
                };
                match event {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                        s.missing.remove(&key(&o.metadata));
                    }
                    watcher::Event::InitDone => s.synced = true,
                    watcher::Event::Init | watcher::Event::Delete(_) => {}
                }
                if s.synced && s.missing.is_empty() && s.complete_at.is_none() {
                    s.complete_at = Some(Instant::now());
                }
            }
        });
        AccountWatch { task, state }
    }

    /// A watch started and past its first list, so what it counts from now on is what
    /// appeared after this call; fails after 60 s.
    pub(super) async fn synced(
        sub: &Substrate,
        expected: &BTreeSet<(String, String)>,
    ) -> Result<AccountWatch> {
        let watch = AccountWatch::start(sub, expected);
        let started = Instant::now();
        while !watch.state.lock().unwrap_or_else(|p| p.into_inner()).synced {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the harness's ServiceAccount watch did not sync within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(watch)
    }

    /// When the last expected ServiceAccount appeared, and how many are still missing.
    pub(super) fn progress(&self) -> (Option<Instant>, usize) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (s.complete_at, s.missing.len())
    }
}

impl Drop for AccountWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether Vault holds exactly `roles` with the seed's bodies; checks bodies only once the
/// names match.
pub(super) async fn vault_matches(sub: &Substrate, roles: &[RoleSpec]) -> Result<bool> {
    let names: BTreeSet<String> = sub.vault.role_names().await?.into_iter().collect();
    let want: BTreeSet<String> = roles.iter().map(|r| r.name.clone()).collect();
    if names != want {
        return Ok(false);
    }
    let checks = futures::stream::iter(roles.iter().map(|role| async move {
        Ok::<bool, anyhow::Error>(
            sub.vault
                .role(&role.name)
                .await?
                .is_some_and(|data| role.matches_vault(&data)),
        )
    }))
    .buffer_unordered(VERIFY_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    for ok in checks {
        if !ok? {
            return Ok(false);
        }
    }
    Ok(true)
}
