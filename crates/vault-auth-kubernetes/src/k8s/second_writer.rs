//! A second writer, detected without leader election.
//!
//! Two controllers on the same cluster without `--leader-election` (a second Deployment, a
//! `replicas: 2` without the flag, a forgotten test instance) both write every role and
//! ServiceAccount: every change is doubled and the two fight over the reviewer's config. Such a
//! controller claims the Lease [`LEASE_NAME`] of its namespace — the one leader election uses —
//! and reports when another holder claims it: a Warning Event `SecondWriter` on the ConfigMap,
//! a WARN log line and the metric `second_writer`, once when it starts and once when it ends.
//!
//! Without writes when alone: the Lease is claimed (written) once at start and then only read,
//! every [`HEARTBEAT`]. A claim is renewed only when another holder's claim is found, older than
//! [`RECENT`]: so while two controllers run, each claims again after seeing the other's claim,
//! and each keeps seeing the other's within [`FRESH_FOR`]; when one stops, the other's claim
//! stands and the report ends. A steady state alone costs one Lease read per beat, no write
//! (the benchmark's idle goal). A holder renewing more often than [`RECENT`] (leader election)
//! is never overwritten, only reported: taking its Lease would make it step down.
//!
//! Nothing is stopped: which one is right cannot be known here; the user is told how to fix it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::context::Context;
use crate::k8s::events::Notice;
use crate::names::ROLES_CONFIGMAP;
use crate::settings::LEASE_NAME;

/// How often the Lease is looked at: one get every 20 s is the whole cost of a steady state
/// besides the watches.
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// How long a claim counts as another controller's sign of life: three beats, so a claim
/// made again every one or two beats (see the module documentation) keeps counting.
pub const FRESH_FOR: Duration = Duration::from_secs(60);
/// Another holder's claim younger than this is left as it is: half a beat, less than leader
/// election's renewal interval, so a leader's Lease is never taken from it.
pub const RECENT: Duration = Duration::from_secs(10);

/// What one look at the Lease found.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// This instance holds the Lease, or may take it (free, or its holder's claim expired).
    Held,
    /// Another holder claimed or renewed it within [`FRESH_FOR`].
    Other(String),
}

/// Who holds `lease` at `now`, from this instance's view: the decision, without I/O.
pub fn holder_seen(lease: &Lease, me: &str, now: Timestamp) -> Beat {
    let (holder, age) = claim(lease, now);
    match age {
        Some(age) if !holder.is_empty() && holder != me && age < FRESH_FOR => Beat::Other(holder),
        _ => Beat::Held,
    }
}

/// Whether this instance writes its claim after seeing `lease` at `now`: when it is missing
/// its claim (free, or another's, older than [`RECENT`]).
pub fn claims(lease: &Lease, me: &str, now: Timestamp) -> bool {
    let (holder, age) = claim(lease, now);
    holder != me && age.is_none_or(|age| age >= RECENT)
}

/// The Lease's holder and the age of its last claim or renewal (`None`: never).
fn claim(lease: &Lease, now: Timestamp) -> (String, Option<Duration>) {
    let spec = lease.spec.as_ref();
    let holder = spec
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default();
    let age = spec.and_then(|s| s.renew_time.as_ref()).map(|renewed| {
        let seconds = now.duration_since(renewed.0).as_secs_f64();
        Duration::from_secs_f64(seconds.max(0.0))
    });
    (holder, age)
}

/// Looks at the Lease and claims it when [`claims`] says so; tells who else holds it.
async fn beat(api: &Api<Lease>, me: &str) -> kube::Result<Beat> {
    let now = MicroTime(Timestamp::now());
    let Some(lease) = api.get_opt(LEASE_NAME).await? else {
        let lease = Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(LEASE_NAME.to_string()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(me.to_string()),
                lease_duration_seconds: Some(FRESH_FOR.as_secs() as i32),
                acquire_time: Some(now.clone()),
                renew_time: Some(now.clone()),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Beat::Held),
            // Someone created it meanwhile: look again at the next beat.
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(Beat::Held),
            Err(e) => Err(e),
        };
    };
    let seen = holder_seen(&lease, me, now.0);
    if claims(&lease, me, now.0) {
        let patch = serde_json::json!({
            "spec": {
                "holderIdentity": me,
                "leaseDurationSeconds": FRESH_FOR.as_secs(),
                "renewTime": now,
            }
        });
        api.patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(seen)
}

/// The ConfigMap as the Event's subject (with its uid, so `kubectl describe` shows it).
async fn configmap_ref(ctx: &Context) -> Option<ObjectReference> {
    // Listed by name: the chart's Role allows list/watch on this ConfigMap, not get.
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let by_name = ListParams::default().fields(&format!("metadata.name={ROLES_CONFIGMAP}"));
    let cm = api.list(&by_name).await.ok()?.items.into_iter().next()?;
    Some(cm.object_ref(&()))
}

/// Looks at the Lease every [`HEARTBEAT`] until `shutdown`, reporting a second writer when one
/// appears and when it goes.
pub async fn run(ctx: std::sync::Arc<Context>, me: String, shutdown: CancellationToken) {
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let mut other: Option<String> = None;
    let mut seen_at = tokio::time::Instant::now();
    let mut failing = false;
    loop {
        match beat(&api, &me).await {
            Ok(beat) => {
                failing = false;
                match beat {
                    Beat::Other(holder) => {
                        seen_at = tokio::time::Instant::now();
                        if other.as_ref() != Some(&holder) {
                            report(&ctx, &me, Some(&holder)).await;
                            other = Some(holder);
                        }
                    }
                    // While two run, each finds its own claim at some beats (see the module
                    // documentation): the other is gone once none of its claims was seen for
                    // two FRESH_FOR.
                    Beat::Held if other.is_some() && seen_at.elapsed() >= 2 * FRESH_FOR => {
                        report(&ctx, &me, None).await;
                        other = None;
                    }
                    Beat::Held => {}
                }
            }
            Err(error) => {
                // Without the Lease a second writer goes unseen: say so, once.
                if !failing {
                    warn!(%error, lease = LEASE_NAME, "cannot read or claim the writer Lease; a second controller writing the same mount would go unnoticed");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}

async fn report(ctx: &Context, me: &str, other: Option<&str>) {
    ctx.metrics.set_second_writer(other.is_some());
    let Some(other) = other else {
        info!("no other controller claims the writer Lease any more");
        return;
    };
    let message = format!(
        "another controller ({other}) is writing in namespace {} without leader election, \
         beside this one ({me}): every change is made twice and the two may undo each other; \
         stop one, or run all of them with {}",
        ctx.settings.namespace,
        crate::cli::Setting::LeaderElection.describe()
    );
    warn!(other, "second writer: {message}");
    match configmap_ref(ctx).await {
        Some(regarding) => {
            ctx.events
                .publish(
                    &regarding,
                    &Notice::warning("SecondWriter", "Heartbeat", message),
                )
                .await
        }
        None => debug!("no ConfigMap to report the second writer on"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: Timestamp, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn another_recent_claim_is_a_second_writer() {
        let now = Timestamp::from_second(1_000_000_000).unwrap();
        let ago = |s: i64| Timestamp::from_second(1_000_000_000 - s).unwrap();
        assert_eq!(
            holder_seen(&lease("b", ago(3), 15), "a", now),
            Beat::Other("b".into())
        );
        assert_eq!(
            holder_seen(&lease("b", ago(45), 60), "a", now),
            Beat::Other("b".into()),
            "a claim made again every one or two beats"
        );
        assert_eq!(holder_seen(&lease("a", ago(3), 15), "a", now), Beat::Held);
        assert_eq!(
            holder_seen(&lease("b", ago(61), 60), "a", now),
            Beat::Held,
            "expired"
        );
        assert_eq!(
            holder_seen(&Lease::default(), "a", now),
            Beat::Held,
            "empty"
        );
    }

    /// Alone, an instance writes nothing once it holds the Lease; it claims a free or stale
    /// Lease, and another's after RECENT (never a leader's, renewed more often).
    #[test]
    fn claims_only_what_is_not_its_own_and_not_recent() {
        let now = Timestamp::from_second(1_000_000_000).unwrap();
        let ago = |s: i64| Timestamp::from_second(1_000_000_000 - s).unwrap();
        assert!(!claims(&lease("a", ago(3600), 60), "a", now), "its own");
        assert!(claims(&Lease::default(), "a", now), "free");
        assert!(claims(&lease("b", ago(3600), 60), "a", now), "stale");
        assert!(
            claims(&lease("b", ago(25), 60), "a", now),
            "another's claim"
        );
        assert!(
            !claims(&lease("b", ago(4), 15), "a", now),
            "a leader's renewal"
        );
    }
}
