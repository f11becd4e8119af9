//! Liveness and readiness state, shared by the controller loop, the watches and the admin server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Cheap to clone; every clone sees the same state.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    synced: AtomicBool,
    caches_ready: AtomicBool,
    kube_unreachable: AtomicBool,
    leader: AtomicBool,
    shutting_down: AtomicBool,
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
    }

    /// True when the last pass succeeded.
    pub fn synced(&self) -> bool {
        self.inner.synced.load(Ordering::SeqCst)
    }

    /// Records that every watch cache has done its first list.
    pub fn set_caches_ready(&self) {
        self.inner.caches_ready.store(true, Ordering::SeqCst);
    }

    /// Records whether the watches currently fail to reach the Kubernetes API.
    pub fn set_kube_unreachable(&self, unreachable: bool) {
        self.inner
            .kube_unreachable
            .store(unreachable, Ordering::SeqCst);
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
    pub fn readiness(&self, vault_token_valid: bool) -> Result<(), &'static str> {
        let i = &self.inner;
        if i.shutting_down.load(Ordering::SeqCst) {
            return Err("shutting down");
        }
        if !i.caches_ready.load(Ordering::SeqCst) {
            return Err("watch caches not synced yet");
        }
        if i.kube_unreachable.load(Ordering::SeqCst) {
            return Err("Kubernetes API unreachable (watches failing)");
        }
        if !vault_token_valid {
            return Err("no valid Vault token");
        }
        if i.leader.load(Ordering::SeqCst) && !i.synced.load(Ordering::SeqCst) {
            return Err("no successful full sync yet, or the last one failed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_caches_kube_vault_sync_and_shutdown() {
        let h = Health::new();
        h.set_leader(true);
        assert_eq!(h.readiness(true), Err("watch caches not synced yet"));
        h.set_caches_ready();
        assert!(h.readiness(true).unwrap_err().contains("full sync"));
        h.set_synced(true);
        assert_eq!(h.readiness(true), Ok(()));
        assert_eq!(h.readiness(false), Err("no valid Vault token"));
        h.set_kube_unreachable(true);
        assert!(h.readiness(true).unwrap_err().contains("Kubernetes"));
        h.set_kube_unreachable(false);
        h.set_synced(false);
        assert!(h.readiness(true).is_err());
        // A standby does not sync, yet is ready to take over.
        h.set_leader(false);
        assert_eq!(h.readiness(true), Ok(()));
        h.set_shutting_down();
        assert_eq!(h.readiness(true), Err("shutting down"));
    }
}
