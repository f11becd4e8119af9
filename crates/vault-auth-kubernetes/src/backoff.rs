//! Retry delays: one policy type ([`Backoff`]), one named policy per kind of retry.
//!
//! Every retry here doubles its delay from a first value up to a cap, with "equal jitter" (half
//! fixed, half random) so that replicas and restarted controllers do not retry in lockstep.
//! What differs between the policies is only their numbers, and why:
//! - [`PASS_RETRY`]: a sync pass that failed. Capped low (10 s), so that once the cause is gone
//!   (Vault back, a blip at start over) the controller catches up within seconds; a pass that
//!   keeps failing costs one read of Vault every 10 s.
//! - [`TOKEN_RETRY`]: renewing the Vault token failed (Vault unreachable). Up to a minute.
//! - [`WATCH_RETRY`]: a Kubernetes watch or list failed. Up to 5 s, so readiness follows an
//!   outage closely (see `health::KUBE_FAILURE_WINDOW`); see [`WatchBackoff`] for why kube's
//!   own reset-on-any-event is not used.
//!
//! Logins are not retried by a backoff of this kind: [`LoginThrottle`] spaces failed logins so
//! that Vault's AppRole lockout can never trigger.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Exponential delays from `first` to `max`, with equal jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub first: Duration,
    /// Longest delay (before jitter).
    pub max: Duration,
}

/// A failed sync pass.
pub const PASS_RETRY: Backoff = Backoff {
    first: Duration::from_millis(500),
    max: Duration::from_secs(10),
};
/// A failed renewal of the Vault token.
pub const TOKEN_RETRY: Backoff = Backoff {
    first: Duration::from_millis(500),
    max: Duration::from_secs(60),
};
/// A failed Kubernetes watch or list.
pub const WATCH_RETRY: Backoff = Backoff {
    first: Duration::from_millis(500),
    max: Duration::from_secs(5),
};

impl Backoff {
    /// Delay before retry number `attempt` (1-based); `unit` in `[0, 1)` picks the jitter.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .first
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max);
        full / 2 + full.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }

    /// [`Backoff::delay`] with a random jitter.
    pub fn delay_for(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

/// The backoff of one watch, for kube's watcher.
///
/// kube's `StreamBackoff` calls `reset()` on every `Ok` item, and a watcher yields one (`Init`)
/// at the start of every relist, before the list request that then fails: with kube's own
/// backoffs a failing list is retried at the first delay forever (41 times in 30 s, measured).
/// Here `reset()` is ignored; the controller calls [`WatchBackoff::succeeded`] when the watch
/// really delivered (a completed list or an object), which is what ends an outage.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    policy: Backoff,
    failures: Arc<AtomicU32>,
}

impl WatchBackoff {
    /// A backoff following `policy`.
    pub fn new(policy: Backoff) -> Self {
        WatchBackoff {
            policy,
            failures: Arc::default(),
        }
    }

    /// The watch delivered something: the next failure starts from the first delay again.
    pub fn succeeded(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let attempt = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        Some(self.policy.delay_for(attempt))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        // Deliberately nothing: see the type's documentation.
    }
}

/// Spaces failed AppRole logins so that Vault's lockout never triggers.
///
/// Vault and OpenBao lock an AppRole role-id out after 5 failed logins (by default), and reset
/// the count only after 15 minutes without a failure; a locked-out role-id is refused even with
/// a correct secret-id. So: up to [`LoginThrottle::QUICK_FAILURES`] failures in quick succession
/// (a typo fixed by a restart, a Vault that was still starting), then one attempt per
/// [`LoginThrottle::QUIET`] — longer than the reset period, so the count is back to zero before
/// each further failure and never reaches the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Delays before the quick retries, in order.
    pub quick: [Duration; 2],
    /// Delay before every attempt after the quick ones.
    pub quiet: Duration,
}

impl LoginThrottle {
    /// Failed logins allowed in quick succession (below Vault's default threshold of 5, with a
    /// margin for a second replica and an operator's own attempts).
    pub const QUICK_FAILURES: u32 = 3;
    /// Vault's default `lockout_counter_reset` (15 min) and a minute of margin.
    pub const QUIET: Duration = Duration::from_secs(16 * 60);

    /// The default: retries after 2 s and 10 s, then every 16 minutes.
    pub const DEFAULT: LoginThrottle = LoginThrottle {
        quick: [Duration::from_secs(2), Duration::from_secs(10)],
        quiet: Self::QUIET,
    };

    /// How long to wait after `failures` consecutive failed logins (1-based).
    pub fn delay_after(&self, failures: u32) -> Duration {
        match failures {
            0 => Duration::ZERO,
            n if n < Self::QUICK_FAILURES => self.quick[(n - 1) as usize],
            _ => self.quiet,
        }
    }

    /// The most failed logins this throttle makes in any window of `window` (for tests and the
    /// documentation of the guarantee).
    pub fn max_failures_in(&self, window: Duration) -> u32 {
        // The worst window starts at the first failure and takes the quick ones with it.
        let quick: Duration = self.quick.iter().sum();
        let mut count = Self::QUICK_FAILURES;
        let mut t = quick;
        while t + self.quiet <= window {
            t += self.quiet;
            count += 1;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_equal_jitter_up_to_the_cap() {
        let b = Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(60),
        };
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(250));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(500));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(1500));
        assert_eq!(b.delay(30, 1.0), Duration::from_secs(60));
        assert_eq!(b.delay(30, 0.0), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX, 0.99), b.delay(21, 0.99));
        for attempt in 1..40 {
            let d = PASS_RETRY.delay_for(attempt);
            assert!(d <= PASS_RETRY.max, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn a_watch_backoff_grows_until_the_watch_delivers() {
        let mut b = WatchBackoff::new(WATCH_RETRY);
        let first = b.next().unwrap();
        kube::runtime::utils::Backoff::reset(&mut b); // what kube does on every Ok
        let later: Vec<Duration> = (0..5).map(|_| b.next().unwrap()).collect();
        assert!(first <= Duration::from_millis(500));
        assert!(later[4] >= WATCH_RETRY.max / 2, "{later:?}");
        b.succeeded();
        assert!(b.next().unwrap() <= Duration::from_millis(500));
    }

    #[test]
    fn logins_never_reach_the_default_lockout_threshold() {
        let t = LoginThrottle::DEFAULT;
        assert_eq!(t.delay_after(1), Duration::from_secs(2));
        assert_eq!(t.delay_after(2), Duration::from_secs(10));
        assert_eq!(t.delay_after(3), LoginThrottle::QUIET);
        assert_eq!(t.delay_after(50), LoginThrottle::QUIET);
        // Vault counts failures until 15 minutes pass without one: after the quick ones, every
        // further failure comes after more than that, so the count never exceeds 3 (< 5).
        assert!(t.quiet > Duration::from_secs(15 * 60));
        assert_eq!(t.max_failures_in(Duration::from_secs(15 * 60)), 3);
        assert!(t.max_failures_in(Duration::from_secs(60 * 60)) <= 6);
    }
}
