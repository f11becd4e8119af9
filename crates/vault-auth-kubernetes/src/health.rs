//! Liveness and readiness state, shared by the controller loop, the watches and the admin server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long after a failed watch request (not followed by a working one) the Kubernetes API
/// counts as unreachable. The watches retry at least every few seconds (see
/// `backoff::WATCH_RETRY`), so a lasting outage keeps it fresh, while a recovery that
/// brings no event (a resumed watch is silent) still shows within this window.
pub const KUBE_FAILURE_WINDOW: Duration = Duration::from_secs(10);

/// A request unanswered for this long makes the controller unready: Vault or the API server
/// accepts connections but does not answer (a hung Vault kept readiness at 200 for the whole
/// 30 s request timeout). Normal requests answer in milliseconds.
pub const STALLED_REQUEST: Duration = Duration::from_secs(5);

/// Why an instance is not ready without a Vault token.
const NO_TOKEN: &str = "no valid Vault token";

/// Why a leader is not ready when no pass has succeeded and none failed yet.
const NOT_SYNCED: &str = "no successful full sync yet";

/// Cheap to clone; every clone sees the same state.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    synced: AtomicBool,
    caches_ready: AtomicBool,
    /// Unix milliseconds of the last failed and the last working watch request.
    watch_failed_at: AtomicU64,
    watch_ok_at: AtomicU64,
    leader: AtomicBool,
    shutting_down: AtomicBool,
    /// Why the last pass failed, for the readiness answer (cleared by a successful pass).
    failure: std::sync::Mutex<Option<String>>,
}

impl Health {
    /// New state: not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records whether the last pass succeeded (a failed pass, e.g. Vault unreachable, makes
    /// the leader unready until a pass succeeds again).
    pub fn set_synced(&self, synced: bool) {
        self.inner.synced.store(synced, Ordering::SeqCst);
        if synced {
            *self.inner.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Records that the last pass failed, and why (its error's text, which holds no secret):
    /// `/readyz` answers with it.
    pub fn set_failure(&self, cause: String) {
        self.inner.synced.store(false, Ordering::SeqCst);
        *self.inner.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(cause);
    }

    /// Why the last pass failed, while no pass succeeded since.
    pub fn last_failure(&self) -> Option<String> {
        self.inner
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// True when the last pass succeeded.
    pub fn synced(&self) -> bool {
        self.inner.synced.load(Ordering::SeqCst)
    }

    /// Records that every watch cache has done its first list.
    pub fn set_caches_ready(&self) {
        self.inner.caches_ready.store(true, Ordering::SeqCst);
    }

    /// Records that a watch request failed (the watch retries by itself).
    pub fn watch_failed(&self) {
        self.inner
            .watch_failed_at
            .store(now_millis(), Ordering::SeqCst);
    }

    /// Records that a watch delivered something.
    pub fn watch_ok(&self) {
        self.inner.watch_ok_at.store(now_millis(), Ordering::SeqCst);
    }

    /// True when a watch failed recently and none worked since.
    fn kube_unreachable(&self, now: u64) -> bool {
        let failed = self.inner.watch_failed_at.load(Ordering::SeqCst);
        let ok = self.inner.watch_ok_at.load(Ordering::SeqCst);
        failed > ok && now.saturating_sub(failed) < KUBE_FAILURE_WINDOW.as_millis() as u64
    }

    /// Records whether this instance leads (always true without leader election).
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.store(leader, Ordering::SeqCst);
    }

    /// True while this instance leads.
    pub fn leader(&self) -> bool {
        self.inner.leader.load(Ordering::SeqCst)
    }

    /// Marks the process as shutting down: never ready again.
    pub fn set_shutting_down(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Readiness, given whether a valid Vault token is held: `Ok(())` or why not.
    ///
    /// The leader is ready once a full sync succeeded (and while passes keep succeeding); a
    /// standby, which must not write, is ready when its caches are warm and it could take over.
    pub fn readiness(&self, vault_token_valid: bool) -> Result<(), String> {
        self.readiness_at(vault_token_valid, now_millis())
            .map_err(|why| {
                let failure = self.inner.failure.lock().unwrap_or_else(|e| e.into_inner());
                match (why, failure.as_deref()) {
                    (NOT_SYNCED, Some(cause)) => cause.to_string(),
                    // Without a token, why the last pass failed is usually why there is none
                    // (a refused login, a sealed Vault).
                    (NO_TOKEN, Some(cause)) => format!("{NO_TOKEN}: {cause}"),
                    (why, _) => why.to_string(),
                }
            })
    }

    fn readiness_at(&self, vault_token_valid: bool, now: u64) -> Result<(), &'static str> {
        let i = &self.inner;
        if i.shutting_down.load(Ordering::SeqCst) {
            return Err("shutting down");
        }
        if !i.caches_ready.load(Ordering::SeqCst) {
            return Err("watch caches not synced yet");
        }
        if self.kube_unreachable(now) {
            return Err("Kubernetes API unreachable (watches failing)");
        }
        if !vault_token_valid {
            return Err(NO_TOKEN);
        }
        if i.leader.load(Ordering::SeqCst) && !i.synced.load(Ordering::SeqCst) {
            return Err(NOT_SYNCED);
        }
        Ok(())
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_caches_kube_vault_sync_and_shutdown() {
        let h = Health::new();
        h.set_leader(true);
        assert_eq!(
            h.readiness(true),
            Err("watch caches not synced yet".to_string())
        );
        h.set_caches_ready();
        assert!(h.readiness(true).unwrap_err().contains("full sync"));
        h.set_synced(true);
        assert_eq!(h.readiness(true), Ok(()));
        assert_eq!(h.readiness(false), Err("no valid Vault token".to_string()));
        h.watch_failed();
        assert!(h.readiness(true).unwrap_err().contains("Kubernetes"));
        // A resumed watch brings no event: the failure ages out of the window.
        let later = now_millis() + KUBE_FAILURE_WINDOW.as_millis() as u64 + 1;
        assert_eq!(h.readiness_at(true, later), Ok(()));
        h.watch_failed();
        h.watch_ok();
        assert_eq!(h.readiness(true), Ok(()));
        h.set_synced(false);
        assert!(h.readiness(true).is_err());
        // The cause of a failed pass is the answer, until a pass succeeds.
        h.set_failure("the last pass failed: vault: Vault is sealed".into());
        assert!(h.readiness(true).unwrap_err().contains("sealed"));
        h.set_synced(true);
        assert_eq!(h.readiness(true), Ok(()));
        h.set_synced(false);
        // A standby does not sync, yet is ready to take over.
        h.set_leader(false);
        assert_eq!(h.readiness(true), Ok(()));
        h.set_shutting_down();
        assert_eq!(h.readiness(true), Err("shutting down".to_string()));
    }
}
