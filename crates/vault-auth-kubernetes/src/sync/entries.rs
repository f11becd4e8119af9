//! The ConfigMap's entries as a pass plans with them: parsed, checked against the policy guard
//! and fitted to what the server accepts. The one place this is done, for the reviewer's plan,
//! the Vault plan and the ServiceAccounts alike, so they can never disagree about an entry.
//!
//! Kept from one pass to the next: a pass woken by a namespace or ServiceAccount change reuses
//! the last result as it is (same entries, same guard, same server), and an edit of one entry
//! parses that entry only ([`ParseCache`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;

use crate::k8s::snapshot::ClusterSnapshot;
use crate::roles::{ParseCache, PolicyGuard, RoleSet, ServerParams, parse_roles_cached};
use crate::settings::Settings;

/// The entries to plan with.
#[derive(Clone, Debug)]
pub struct Entries {
    /// `None`: the ConfigMap is missing, or emptied without the opt-in (nothing is deleted).
    pub roles: Option<Arc<RoleSet>>,
    /// The ConfigMap has no entry and no opt-in to delete everything: planned as if missing.
    pub held: bool,
}

/// What the last call computed, and from what.
#[derive(Default)]
pub(super) struct EntriesMemo {
    inner: Mutex<MemoState>,
}

#[derive(Default)]
struct MemoState {
    cache: ParseCache,
    last: Option<(Inputs, Option<Arc<RoleSet>>)>,
}

/// Everything the result depends on besides the fixed settings.
struct Inputs {
    /// The ConfigMap to plan with (`None`: missing, or emptied and held back), shared with the
    /// watch cache: the same object until the ConfigMap changes, so usually compared by
    /// address, not entry by entry.
    configmap: Option<Arc<ConfigMap>>,
    own_policies: Vec<String>,
    params: Option<ServerParams>,
}

impl PartialEq for Inputs {
    fn eq(&self, other: &Self) -> bool {
        let same_entries = match (&self.configmap, &other.configmap) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || entries_of(a) == entries_of(b),
            _ => false,
        };
        same_entries && self.own_policies == other.own_policies && self.params == other.params
    }
}

fn entries_of(configmap: &ConfigMap) -> &BTreeMap<String, String> {
    static NONE: BTreeMap<String, String> = BTreeMap::new();
    configmap.data.as_ref().unwrap_or(&NONE)
}

impl EntriesMemo {
    /// The entries of `snapshot`'s ConfigMap, guarded by the controller's own policies
    /// (`own_policies`) and the settings' allow and deny lists, and fitted to `params` (the
    /// parameters the mount accepts; `None` while it does not exist).
    pub(super) fn get(
        &self,
        settings: &Settings,
        own_policies: Vec<String>,
        snapshot: &ClusterSnapshot,
        params: Option<&ServerParams>,
    ) -> Entries {
        let (configmap, held) = snapshot.configmap_to_plan(settings.allow_empty_configmap);
        let inputs = Inputs {
            configmap: configmap.cloned(),
            own_policies,
            params: params.cloned(),
        };
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((last, roles)) = &state.last
            && *last == inputs
        {
            return Entries {
                roles: roles.clone(),
                held,
            };
        }
        let roles = inputs.configmap.as_deref().map(entries_of).map(|data| {
            let guard = PolicyGuard::new(
                &inputs.own_policies,
                &settings.allowed_policies,
                &settings.denied_policies,
            );
            let parsed = parse_roles_cached(data, &mut state.cache).guard_policies(&guard);
            Arc::new(match &inputs.params {
                Some(params) => parsed.for_server(params),
                None => parsed,
            })
        });
        state.last = Some((inputs, roles.clone()));
        Entries { roles, held }
    }
}
