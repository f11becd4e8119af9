//! Fault injection: fail the next N matching requests with a chosen status, add latency to every
//! request, end every open watch, or move the emulator's clock, so clients' retry and resume
//! paths, and token expiry, can be tested.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;

use crate::context::Shared;

#[derive(Debug)]
struct Rule {
    verb: String,
    resource: String,
    remaining: u32,
    status: u16,
}

/// The fault state of a running emulator.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    rules: Mutex<Vec<Rule>>,
    latency_micros: AtomicU64,
    /// Seconds added to the real clock wherever tokens are minted or checked.
    clock_offset_seconds: AtomicI64,
}

impl FaultState {
    /// If a rule matches, consumes one use of it and returns the status to fail with.
    pub fn take(&self, verb: &str, resource: &str) -> Option<u16> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let i = rules.iter().position(|r| {
            (r.verb == "*" || r.verb == verb) && (r.resource == "*" || r.resource == resource)
        })?;
        let status = rules[i].status;
        rules[i].remaining -= 1;
        if rules[i].remaining == 0 {
            rules.remove(i);
        }
        Some(status)
    }

    /// The latency added to every request.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::Relaxed))
    }

    /// Seconds the emulator's token clock is ahead of the real clock (negative: behind).
    pub fn clock_offset(&self) -> i64 {
        self.clock_offset_seconds.load(Ordering::Relaxed)
    }

    fn set_clock_offset(&self, seconds: i64) {
        self.clock_offset_seconds.store(seconds, Ordering::Relaxed);
    }

    fn add(&self, verb: &str, resource: &str, count: u32, status: u16) {
        if count == 0 {
            return;
        }
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Rule {
                verb: verb.to_string(),
                resource: resource.to_string(),
                remaining: count,
                status,
            });
    }

    fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros.store(micros, Ordering::Relaxed);
    }

    fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.latency_micros.store(0, Ordering::Relaxed);
        self.clock_offset_seconds.store(0, Ordering::Relaxed);
    }
}

/// Handle to inject faults into a running emulator.
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("state", &self.shared.faults)
            .finish()
    }
}

impl Faults {
    /// The next `count` requests matching verb and resource ("*" = any) fail with `status`
    /// (a proper Kubernetes Status body with the matching reason).
    pub fn fail_next(&self, verb: &str, resource: &str, count: u32, status: u16) {
        self.shared.faults.add(verb, resource, count, status);
    }

    /// Adds `latency` to every request (zero removes it).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.faults.set_latency(latency);
    }

    /// Ends all open watches now (clients see the stream end and re-watch).
    pub fn close_watches(&self) {
        self.shared.store.close_watches();
    }

    /// Moves the emulator's clock `seconds` ahead of the real clock (negative: behind; zero:
    /// back to the real clock), replacing any earlier offset.
    ///
    /// The moved clock is the "now" of everything that mints or checks ServiceAccount tokens:
    /// TokenRequest (`iat`, `nbf`, `exp` and `status.expirationTimestamp`), the authentication of
    /// every API request, and TokenReview. So a token can be made to expire without waiting:
    /// mint one with the minimum lifetime (600 s), then move the clock past its `exp` plus
    /// Kubernetes' 60 s leeway (`set_clock_offset(661)` or more) and it is refused (401 on API
    /// requests, `authenticated: false` in TokenReview). Object timestamps (creationTimestamp,
    /// deletionTimestamp), watch timeouts and bookmarks keep the real clock.
    ///
    /// A client that checks tokens against its own clock (OpenBao checks `iat`, `nbf` and `exp`
    /// with 60 s of leeway before it asks TokenReview) sees the emulator's clock skewed by the
    /// offset: tokens minted while the clock is ahead look issued in the future to it.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.shared.faults.set_clock_offset(seconds);
    }

    /// The current clock offset in seconds (see [`Faults::set_clock_offset`]).
    pub fn clock_offset(&self) -> i64 {
        self.shared.faults.clock_offset()
    }

    /// Removes pending failures and latency, and puts the clock back to the real one.
    pub fn clear(&self) {
        self.shared.faults.clear();
    }
}

/// The body of `POST /emulator/faults`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FaultRequest {
    fail_next: Option<FailNext>,
    latency_ms: Option<u64>,
    close_watches: Option<bool>,
    clock_offset_seconds: Option<i64>,
    clear: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNext {
    verb: String,
    resource: String,
    count: u32,
    status: u16,
}

impl FaultRequest {
    /// Applies the request; Err names what was malformed.
    pub fn apply(self, faults: &Faults) -> Result<(), String> {
        let mut did = false;
        if let Some(f) = self.fail_next {
            if !(400..=599).contains(&f.status) {
                return Err(format!("status {} is not an error status", f.status));
            }
            faults.fail_next(&f.verb, &f.resource, f.count, f.status);
            did = true;
        }
        if let Some(ms) = self.latency_ms {
            faults.set_latency(Duration::from_millis(ms));
            did = true;
        }
        if self.close_watches == Some(true) {
            faults.close_watches();
            did = true;
        }
        if let Some(seconds) = self.clock_offset_seconds {
            faults.set_clock_offset(seconds);
            did = true;
        }
        if self.clear == Some(true) {
            faults.clear();
            did = true;
        }
        if did {
            Ok(())
        } else {
            Err(
                "expected one of failNext, latencyMs, closeWatches, clockOffsetSeconds, clear"
                    .into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_consumed_in_order() {
        let s = FaultState::default();
        s.add("get", "configmaps", 2, 500);
        s.add("*", "*", 1, 503);
        assert_eq!(s.take("list", "secrets"), Some(503));
        assert_eq!(s.take("get", "configmaps"), Some(500));
        assert_eq!(s.take("get", "configmaps"), Some(500));
        assert_eq!(s.take("get", "configmaps"), None);
        s.set_latency(Duration::from_millis(5));
        assert_eq!(s.latency(), Duration::from_millis(5));
        s.set_clock_offset(-30);
        assert_eq!(s.clock_offset(), -30);
        s.add("get", "x", 1, 500);
        s.clear();
        assert_eq!(s.take("get", "x"), None);
        assert_eq!(s.latency(), Duration::ZERO);
        assert_eq!(s.clock_offset(), 0);
    }

    #[test]
    fn http_requests_parse() {
        let r: FaultRequest = serde_json::from_str(
            r#"{"failNext": {"verb": "get", "resource": "secrets", "count": 1, "status": 500}}"#,
        )
        .unwrap();
        assert!(r.fail_next.is_some());
        let r: FaultRequest = serde_json::from_str(r#"{"clockOffsetSeconds": -700}"#).unwrap();
        assert_eq!(r.clock_offset_seconds, Some(-700));
        assert!(serde_json::from_str::<FaultRequest>(r#"{"clockOffsetSeconds": 1.5}"#).is_err());
        assert!(serde_json::from_str::<FaultRequest>(r#"{"bogus": 1}"#).is_err());
    }
}
