//! The ServiceAccount side of a pass: which ServiceAccounts the roles want, which exist, and
//! the ServiceAccount half of the plan ([`plan_service_accounts`]).
//!
//! With thousands of namespaces this is most of a pass's work, and most passes do not change
//! any of its inputs: an edit of a role's policies, TTLs or audience touches no
//! ServiceAccount. So the last result is kept and reused while its inputs are the same ones:
//! the same namespace and ServiceAccount lists (the controller's watch caches hand out the same
//! shared list until their watch sees a change) and the same bindings (each valid role's bound
//! names, namespaces and selector, and the rejected entries). Any other change computes it all
//! again, by the same functions a one-shot `plan` uses.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, Weak};

use crate::desired::{
    DesiredServiceAccounts, NamespaceInfo, ServiceAccountRef, desired_service_accounts,
};
use crate::k8s::snapshot::{ClusterSnapshot, ServiceAccountMeta};
use crate::plan::{ObservedServiceAccount, ServiceAccountPlan, plan_service_accounts};
use crate::roles::{Finding, RoleSet, RoleSpec};

/// What a pass needs of the ServiceAccount side once it is computed. The wanted and observed
/// ServiceAccounts it was computed from are not kept: at 10,000 namespaces they are megabytes,
/// and nothing after the plan reads them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accounts {
    /// Warnings about the bindings (e.g. a name pattern no ServiceAccount can be created for).
    pub findings: Vec<Finding>,
    /// The ServiceAccount half of the plan.
    pub plan: ServiceAccountPlan,
}

impl Accounts {
    /// Computes it from scratch.
    pub fn compute(roles: &RoleSet, snapshot: &ClusterSnapshot) -> Accounts {
        let desired = desired_service_accounts(roles, &snapshot.namespaces);
        let observed = observed_service_accounts(&snapshot.service_accounts, &desired);
        Accounts::of(&roles.rejected, desired, &observed)
    }

    /// From what the valid roles want (`desired`) and the ServiceAccounts observed (the managed
    /// and the wanted ones), with the entries `rejected`.
    pub fn of(
        rejected: &BTreeSet<String>,
        desired: DesiredServiceAccounts,
        observed: &BTreeMap<ServiceAccountRef, ObservedServiceAccount>,
    ) -> Accounts {
        let plan = plan_service_accounts(rejected, &desired, observed);
        Accounts {
            findings: desired.findings,
            plan,
        }
    }
}

/// The existing ServiceAccounts the plan considers: the managed ones and the wanted ones.
fn observed_service_accounts(
    service_accounts: &[ServiceAccountMeta],
    desired: &DesiredServiceAccounts,
) -> BTreeMap<ServiceAccountRef, ObservedServiceAccount> {
    // Looked up by borrowed names: thousands of ServiceAccounts are not copied to be looked up.
    let wanted: HashSet<(&str, &str)> = desired
        .accounts
        .keys()
        .map(|sa| (sa.namespace.as_str(), sa.name.as_str()))
        .collect();
    service_accounts
        .iter()
        .filter(|sa| sa.is_managed() || wanted.contains(&(sa.namespace.as_str(), sa.name.as_str())))
        .map(|sa| (sa.reference(), sa.observed()))
        .collect()
}

/// The last result and what it was computed from. The lists are held weakly: only their
/// identity matters (a held `Weak` keeps the address from being reused), and holding them
/// strongly would keep a superseded copy of the cluster alive.
#[derive(Default)]
pub(super) struct AccountsMemo {
    last: Mutex<Option<Memo>>,
}

struct Memo {
    namespaces: Weak<Vec<NamespaceInfo>>,
    service_accounts: Weak<Vec<ServiceAccountMeta>>,
    bindings: Bindings,
    accounts: Arc<Accounts>,
}

impl AccountsMemo {
    /// The ServiceAccount side for `roles` and `snapshot`: the last one when computed from the
    /// same inputs, else computed again (and kept).
    pub(super) fn get(&self, roles: &RoleSet, snapshot: &ClusterSnapshot) -> Arc<Accounts> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(memo) = last.as_ref()
            && std::ptr::eq(memo.namespaces.as_ptr(), Arc::as_ptr(&snapshot.namespaces))
            && std::ptr::eq(
                memo.service_accounts.as_ptr(),
                Arc::as_ptr(&snapshot.service_accounts),
            )
            && memo.bindings.same_as(roles)
        {
            return memo.accounts.clone();
        }
        let accounts = Arc::new(Accounts::compute(roles, snapshot));
        *last = Some(Memo {
            namespaces: Arc::downgrade(&snapshot.namespaces),
            service_accounts: Arc::downgrade(&snapshot.service_accounts),
            bindings: Bindings::of(roles),
            accounts: accounts.clone(),
        });
        accounts
    }
}

/// What of the entries the ServiceAccount side reads: every valid role's key, bound names,
/// bound namespaces and selector (by Vault name), and the rejected names.
#[derive(Debug, PartialEq)]
struct Bindings {
    roles: Vec<(String, Binding)>,
    rejected: BTreeSet<String>,
}

#[derive(Debug, PartialEq)]
struct Binding {
    key: String,
    names: Vec<String>,
    namespaces: Vec<String>,
    selector: Option<BTreeMap<String, String>>,
}

impl Binding {
    fn of(spec: &RoleSpec) -> Binding {
        Binding {
            key: spec.key.clone(),
            names: spec.service_account_names.clone(),
            namespaces: spec.namespaces.clone(),
            selector: spec.namespace_selector.clone(),
        }
    }

    fn same_as(&self, spec: &RoleSpec) -> bool {
        self.key == spec.key
            && self.names == spec.service_account_names
            && self.namespaces == spec.namespaces
            && self.selector == spec.namespace_selector
    }
}

impl Bindings {
    fn of(roles: &RoleSet) -> Bindings {
        Bindings {
            roles: roles
                .roles
                .iter()
                .map(|(name, spec)| (name.clone(), Binding::of(spec)))
                .collect(),
            rejected: roles.rejected.clone(),
        }
    }

    /// True when `roles` binds exactly what these bindings do. Compared without building the
    /// bindings of `roles`: this runs on every pass.
    fn same_as(&self, roles: &RoleSet) -> bool {
        self.rejected == roles.rejected
            && self.roles.len() == roles.roles.len()
            && self
                .roles
                .iter()
                .zip(&roles.roles)
                .all(|((name, binding), (other, spec))| name == other && binding.same_as(spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::snapshot::ConfigMapState;
    use crate::roles::parse_roles;

    /// The entry `web` with that body, and `bad` when `broken`.
    fn roles_with(web: &str, broken: bool) -> RoleSet {
        let mut data = BTreeMap::from([("web".to_string(), web.to_string())]);
        if broken {
            data.insert("bad".into(), "{".into());
        }
        parse_roles(&data)
    }

    fn roles(web: &str) -> RoleSet {
        roles_with(web, false)
    }

    fn namespace(name: &str) -> NamespaceInfo {
        NamespaceInfo {
            name: name.into(),
            labels: [("team".to_string(), name.to_string())]
                .into_iter()
                .collect(),
            terminating: false,
        }
    }

    fn snapshot(namespaces: &[&str]) -> ClusterSnapshot {
        ClusterSnapshot {
            configmap: ConfigMapState::Missing,
            namespaces: Arc::new(namespaces.iter().map(|n| namespace(n)).collect()),
            service_accounts: Arc::new(vec![ServiceAccountMeta {
                namespace: "a".into(),
                name: "old".into(),
                uid: "u".into(),
                annotations: [(
                    crate::names::MANAGED_ANNOTATION.to_string(),
                    crate::names::MANAGED_VALUE.to_string(),
                )]
                .into_iter()
                .collect(),
                labels: Default::default(),
            }]),
            reviewer_secret: None,
            cluster_role_bindings: vec![],
            cluster_roles: vec![],
        }
    }

    const WEB: &str = r#"{"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["a"], "token_policies": ["p1"]}"#;

    /// Reused while only what the ServiceAccounts do not depend on changes (a role's policies);
    /// computed again, equal to a fresh computation, when a binding, the rejected entries, the
    /// namespaces or the ServiceAccounts change.
    #[test]
    fn reused_only_while_its_inputs_are_the_same() {
        let memo = AccountsMemo::default();
        let snap = snapshot(&["a", "b"]);
        let first = memo.get(&roles(WEB), &snap);
        assert_eq!(first.plan.actions.len(), 2, "{:?}", first.plan);

        let policies = roles(&WEB.replace("p1", "p2"));
        let again = memo.get(&policies, &snap);
        assert!(Arc::ptr_eq(&first, &again), "a policy edit reuses it");

        let cases: Vec<(&str, RoleSet, ClusterSnapshot)> = vec![
            (
                "bound namespaces",
                roles(&WEB.replace(r#"["a"]"#, r#"["a", "b"]"#)),
                snap.clone(),
            ),
            (
                "bound names",
                roles(&WEB.replace("app", "api")),
                snap.clone(),
            ),
            (
                "a selector",
                roles(&WEB.replace(
                    r#""bound_service_account_namespaces": ["a"]"#,
                    r#""bound_service_account_namespace_selector": {"matchLabels": {"team": "b"}}"#,
                )),
                snap.clone(),
            ),
            ("a rejected entry", roles_with(WEB, true), snap.clone()),
            ("the namespaces", roles(WEB), snapshot(&["a", "b"])),
        ];
        let mut previous = again;
        for (what, roles, snap) in cases {
            let got = memo.get(&roles, &snap);
            assert!(!Arc::ptr_eq(&previous, &got), "{what}: computed again");
            assert_eq!(*got, Accounts::compute(&roles, &snap), "{what}");
            previous = got;
        }
    }
}
