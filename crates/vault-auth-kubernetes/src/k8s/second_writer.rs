//! A second writer, detected without leader election.
//!
//! Two controllers on the same cluster without `--leader-election` (a second Deployment, a
//! `replicas: 2` without the flag, a forgotten test instance) both write every role and
//! ServiceAccount: every change is doubled and the two fight over the reviewer's config. Such a
//! controller heartbeats on the Lease [`LEASE_NAME`] of its namespace — the one leader election
//! uses — and reports when another holder keeps it fresh: a Warning Event `SecondWriter` on the
//! ConfigMap, a WARN log line and the metric `second_writer`, once when it starts and once when
//! it ends. A controller with leader election is seen the same way, since it renews that Lease.
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

/// How often the heartbeat is renewed and the Lease looked at: a get and a patch every 20 s is
/// the whole cost of a steady state besides the watches.
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// How long a heartbeat counts as fresh: three beats, so one slow beat is not a takeover.
pub const FRESH_FOR: Duration = Duration::from_secs(60);

/// What one look at the Lease found.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// This instance holds the Lease (it was free, expired or already ours).
    Held,
    /// Another holder renewed it within [`FRESH_FOR`].
    Other(String),
}

/// Who holds `lease` at `now`, from this instance's view: the decision, without I/O.
pub fn holder_seen(lease: &Lease, me: &str, now: Timestamp) -> Beat {
    let spec = lease.spec.as_ref();
    let holder = spec
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default();
    let duration = spec
        .and_then(|s| s.lease_duration_seconds)
        .map_or(FRESH_FOR, |s| Duration::from_secs(s.max(1) as u64));
    let fresh = spec
        .and_then(|s| s.renew_time.as_ref())
        .is_some_and(|renewed| {
            now.duration_since(renewed.0).as_secs_f64() < duration.as_secs_f64()
        });
    if holder.is_empty() || holder == me || !fresh {
        Beat::Held
    } else {
        Beat::Other(holder)
    }
}

/// Renews this instance's heartbeat, or finds who else holds the Lease.
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
    match holder_seen(&lease, me, now.0) {
        Beat::Other(holder) => Ok(Beat::Other(holder)),
        Beat::Held => {
            let patch = serde_json::json!({
                "spec": {
                    "holderIdentity": me,
                    "leaseDurationSeconds": FRESH_FOR.as_secs(),
                    "renewTime": now,
                }
            });
            api.patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            Ok(Beat::Held)
        }
    }
}

/// The ConfigMap as the Event's subject (with its uid, so `kubectl describe` shows it).
async fn configmap_ref(ctx: &Context) -> Option<ObjectReference> {
    // Listed by name: the chart's Role allows list/watch on this ConfigMap, not get.
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let by_name = ListParams::default().fields(&format!("metadata.name={ROLES_CONFIGMAP}"));
    let cm = api.list(&by_name).await.ok()?.items.into_iter().next()?;
    Some(cm.object_ref(&()))
}

/// Heartbeats until `shutdown`, reporting a second writer when one appears and when it goes.
pub async fn run(ctx: std::sync::Arc<Context>, me: String, shutdown: CancellationToken) {
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let mut other: Option<String> = None;
    let mut failing = false;
    loop {
        match beat(&api, &me).await {
            Ok(beat) => {
                failing = false;
                let now_other = match beat {
                    Beat::Held => None,
                    Beat::Other(holder) => Some(holder),
                };
                if now_other != other {
                    report(&ctx, &me, now_other.as_deref()).await;
                    other = now_other;
                }
            }
            Err(error) => {
                // Without the heartbeat a second writer goes unseen: say so, once.
                if !failing {
                    warn!(%error, lease = LEASE_NAME, "cannot heartbeat on the writer Lease; a second controller writing the same mount would go unnoticed");
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
        info!("no other controller renews the writer Lease any more");
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
    fn another_fresh_holder_is_a_second_writer() {
        let now = Timestamp::from_second(1_000_000_000).unwrap();
        let ago = |s: i64| Timestamp::from_second(1_000_000_000 - s).unwrap();
        assert_eq!(
            holder_seen(&lease("b", ago(3), 15), "a", now),
            Beat::Other("b".into())
        );
        assert_eq!(holder_seen(&lease("a", ago(3), 15), "a", now), Beat::Held);
        assert_eq!(
            holder_seen(&lease("b", ago(20), 15), "a", now),
            Beat::Held,
            "expired"
        );
        assert_eq!(
            holder_seen(&Lease::default(), "a", now),
            Beat::Held,
            "empty"
        );
    }
}
