//! Liveness and readiness state, shared by the controller loop and the admin server.

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
    shutting_down: AtomicBool,
}

impl Health {
    /// New state: not synced yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records whether the last pass succeeded (a failed pass, e.g. Vault or Kubernetes
    /// unreachable, makes the controller unready until a pass succeeds again).
    pub fn set_synced(&self, synced: bool) {
        self.inner.synced.store(synced, Ordering::SeqCst);
    }

    /// True when the last pass succeeded.
    pub fn synced(&self) -> bool {
        self.inner.synced.load(Ordering::SeqCst)
    }

    /// Marks the process as shutting down: never ready again.
    pub fn set_shutting_down(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// True once shutdown started.
    pub fn shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }
}
