//! The ServiceAccount side of a pass: which ServiceAccounts the roles want, which exist, and
//! the ServiceAccount half of the plan ([`plan_service_accounts`]).
//!
//! With thousands of namespaces this is most of a pass's work, and most passes change little
//! of its inputs. So the last result is kept, cut by namespace, and:
//! - reused whole while its inputs are the same ones: the same namespace and ServiceAccount
//!   lists (the controller's watch caches hand out the same shared list until their watch sees
//!   a change) and the same bindings (each valid role's bound names, namespaces and selector,
//!   and the rejected entries): an edit of a role's policies, TTLs or audience touches no
//!   ServiceAccount;
//! - planned again for the changed namespaces only: those the caches' change logs name (a
//!   namespace created, a ServiceAccount's own watch event) and those a changed role bound
//!   before or binds now (an edit of one role's names, namespaces or selector): a namespace's
//!   part depends only on its own objects and the roles that bind it;
//! - computed again whole otherwise (the rejected entries changed, a relist, many namespaces
//!   changed), by the same functions a one-shot `plan` uses.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, Weak};

use tracing::debug;

use crate::desired::{
    DesiredServiceAccounts, NamespaceBinding, NamespaceInfo, ServiceAccountRef,
    desired_service_accounts, namespaces_bound_by,
};
use crate::k8s::compact_store::Version;
use crate::k8s::snapshot::{ClusterSnapshot, ServiceAccountMeta};
use crate::plan::{
    ObservedServiceAccount, ServiceAccountPlan, plan_service_accounts,
    plan_service_accounts_by_namespace,
};
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
        let observed = observed_service_accounts(snapshot.service_accounts.iter(), &desired);
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
fn observed_service_accounts<'a>(
    service_accounts: impl Iterator<Item = &'a ServiceAccountMeta>,
    desired: &DesiredServiceAccounts,
) -> BTreeMap<ServiceAccountRef, ObservedServiceAccount> {
    // A reference shares the cached names: looking one up copies no string.
    service_accounts
        .filter(|sa| sa.is_managed() || desired.accounts.contains_key(&sa.reference()))
        .map(|sa| (sa.reference(), sa.observed()))
        .collect()
}

/// How [`AccountsMemo::get`] came to its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Planned {
    /// The last result, as it was.
    Reused,
    /// The last result with this many namespaces planned again.
    Namespaces(usize),
    /// Everything computed again.
    All,
}

/// At most this share of the namespaces (1/8) is planned again one by one; more changed ones
/// cost less planned all at once.
const INCREMENTAL_SHARE: usize = 8;

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
    /// Where the two lists stood in their caches' change logs (None for listed snapshots).
    versions: Option<(Version, Version)>,
    bindings: Bindings,
    /// The plan by namespace, for the namespaces with something to do or say.
    parts: BTreeMap<Arc<str>, ServiceAccountPlan>,
    accounts: Arc<Accounts>,
}

impl Memo {
    /// The namespaces whose objects changed between this memo's lists and `snapshot`'s, when
    /// the change logs still know.
    fn changed_namespaces(&self, snapshot: &ClusterSnapshot) -> Option<HashSet<Arc<str>>> {
        let (namespaces_at, service_accounts_at) = self.versions?;
        let changes = snapshot.changes.as_ref()?;
        let mut changed = changes.namespaces.changed_since(namespaces_at)?;
        changed.extend(
            changes
                .service_accounts
                .changed_since(service_accounts_at)?,
        );
        Some(changed)
    }
}

impl AccountsMemo {
    /// The ServiceAccount side for `roles` and `snapshot`: the last one when computed from the
    /// same inputs, else computed again, for the changed namespaces or whole (and kept).
    pub(super) fn get(&self, roles: &RoleSet, snapshot: &ClusterSnapshot) -> Arc<Accounts> {
        let (accounts, planned) = self.get_and_tell(roles, snapshot);
        debug!(?planned, "ServiceAccount side of the plan");
        accounts
    }

    /// [`AccountsMemo::get`], telling how it came to its answer.
    pub(super) fn get_and_tell(
        &self,
        roles: &RoleSet,
        snapshot: &ClusterSnapshot,
    ) -> (Arc<Accounts>, Planned) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let versions = snapshot.changes.as_ref().map(|changes| {
            (
                changes.namespaces.version(),
                changes.service_accounts.version(),
            )
        });
        if let Some(memo) = last.as_mut() {
            let same_bindings = memo.bindings.same_as(roles);
            if same_bindings
                && std::ptr::eq(memo.namespaces.as_ptr(), Arc::as_ptr(&snapshot.namespaces))
                && std::ptr::eq(
                    memo.service_accounts.as_ptr(),
                    Arc::as_ptr(&snapshot.service_accounts),
                )
            {
                return (memo.accounts.clone(), Planned::Reused);
            }
            let rebound = match same_bindings {
                true => Some(HashSet::new()),
                false => memo.bindings.rebound(roles, &snapshot.namespaces),
            };
            if let Some(rebound) = rebound
                && let Some(mut changed) = memo.changed_namespaces(snapshot)
            {
                changed.extend(rebound);
                if changed.len() * INCREMENTAL_SHARE <= snapshot.namespaces.len().max(64) {
                    let findings = memo.replan(roles, snapshot, &changed);
                    memo.namespaces = Arc::downgrade(&snapshot.namespaces);
                    memo.service_accounts = Arc::downgrade(&snapshot.service_accounts);
                    memo.versions = versions;
                    if !same_bindings {
                        memo.bindings = Bindings::of(roles);
                    }
                    memo.accounts = Arc::new(Accounts {
                        findings,
                        plan: ServiceAccountPlan::concat(memo.parts.values().cloned()),
                    });
                    return (memo.accounts.clone(), Planned::Namespaces(changed.len()));
                }
            }
        }
        let (findings, parts) = plan_parts(
            roles,
            &snapshot.namespaces,
            snapshot.service_accounts.iter(),
        );
        let parts: BTreeMap<Arc<str>, ServiceAccountPlan> = parts.into_iter().collect();
        let accounts = Arc::new(Accounts {
            findings,
            plan: ServiceAccountPlan::concat(parts.values().cloned()),
        });
        *last = Some(Memo {
            namespaces: Arc::downgrade(&snapshot.namespaces),
            service_accounts: Arc::downgrade(&snapshot.service_accounts),
            versions,
            bindings: Bindings::of(roles),
            parts,
            accounts: accounts.clone(),
        });
        (accounts, Planned::All)
    }
}

impl Memo {
    /// Plans the `changed` namespaces again into `parts`, by the same functions as a whole
    /// computation restricted to them; returns the findings (which depend on the roles only).
    fn replan(
        &mut self,
        roles: &RoleSet,
        snapshot: &ClusterSnapshot,
        changed: &HashSet<Arc<str>>,
    ) -> Vec<Finding> {
        let namespaces: Vec<NamespaceInfo> = snapshot
            .namespaces
            .iter()
            .filter(|ns| changed.contains(&ns.name))
            .cloned()
            .collect();
        let (findings, parts) = plan_parts(
            roles,
            &namespaces,
            snapshot
                .service_accounts
                .iter()
                .filter(|sa| changed.contains(&sa.namespace)),
        );
        for namespace in changed {
            self.parts.remove(namespace);
        }
        self.parts.extend(parts);
        findings
    }
}

/// The findings and the plan by namespace for these namespaces and ServiceAccounts: the
/// whole cluster, or only the namespaces that changed (the same steps either way).
fn plan_parts<'a>(
    roles: &RoleSet,
    namespaces: &[NamespaceInfo],
    service_accounts: impl Iterator<Item = &'a ServiceAccountMeta>,
) -> (Vec<Finding>, Vec<(Arc<str>, ServiceAccountPlan)>) {
    let desired = desired_service_accounts(roles, namespaces);
    let observed = observed_service_accounts(service_accounts, &desired);
    let parts = plan_service_accounts_by_namespace(&roles.rejected, &desired, &observed);
    (desired.findings, parts)
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

    /// The namespaces whose part of the plan a change from these bindings to those of `roles`
    /// can change: the ones a changed role bound before or binds now (a namespace's part is a
    /// function of the roles that bind it). `None` when the rejected entries changed, which can
    /// change any namespace's part (what an entry's old ServiceAccounts record, and whether
    /// untracked ones are kept, reach beyond its bindings).
    fn rebound(&self, roles: &RoleSet, namespaces: &[NamespaceInfo]) -> Option<HashSet<Arc<str>>> {
        if self.rejected != roles.rejected {
            return None;
        }
        let before: BTreeMap<&str, &Binding> =
            self.roles.iter().map(|(n, b)| (n.as_str(), b)).collect();
        let mut changed: Vec<NamespaceBinding> = Vec::new();
        for (name, spec) in &roles.roles {
            match before.get(name.as_str()) {
                Some(binding) if binding.same_as(spec) => continue,
                Some(binding) => changed.push((&binding.namespaces, binding.selector.as_ref())),
                None => {}
            }
            changed.push((&spec.namespaces, spec.namespace_selector.as_ref()));
        }
        for (name, binding) in &self.roles {
            if !roles.roles.contains_key(name) {
                changed.push((&binding.namespaces, binding.selector.as_ref()));
            }
        }
        Some(namespaces_bound_by(changed, namespaces))
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
        NamespaceInfo::new(name, [("team".to_string(), name.to_string())])
    }

    fn snapshot(namespaces: &[&str]) -> ClusterSnapshot {
        ClusterSnapshot {
            configmap: ConfigMapState::Missing,
            namespaces: Arc::new(namespaces.iter().map(|n| namespace(n)).collect()),
            service_accounts: Arc::new(vec![ServiceAccountMeta::with(
                "a",
                "old",
                "u",
                &[(
                    crate::names::MANAGED_ANNOTATION,
                    crate::names::MANAGED_VALUE,
                )],
                &[],
            )]),
            reviewer_secret: None,
            cluster_role_bindings: vec![],
            cluster_roles: vec![],
            changes: None,
            pending: None,
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

    /// What the controller's caches do, in small: a store per list, changed by events.
    struct Caches {
        namespaces: crate::k8s::compact_store::CompactStore<NamespaceInfo>,
        namespace_writer: crate::k8s::compact_store::Writer<NamespaceInfo>,
        service_accounts: crate::k8s::compact_store::CompactStore<ServiceAccountMeta>,
        service_account_writer: crate::k8s::compact_store::Writer<ServiceAccountMeta>,
    }

    impl Caches {
        fn new() -> Caches {
            let (namespaces, namespace_writer) = crate::k8s::compact_store::store();
            let (service_accounts, service_account_writer) = crate::k8s::compact_store::store();
            let caches = Caches {
                namespaces,
                namespace_writer,
                service_accounts,
                service_account_writer,
            };
            caches.relist();
            caches
        }

        /// A relist of both that finds what the stores hold.
        fn relist(&self) {
            let (namespaces, service_accounts) =
                (self.namespaces.list(), self.service_accounts.list());
            self.namespace_writer.relist_started();
            namespaces
                .iter()
                .for_each(|ns| self.namespace_writer.relisted(ns.clone()));
            self.namespace_writer.relist_done();
            self.service_account_writer.relist_started();
            service_accounts
                .iter()
                .for_each(|sa| self.service_account_writer.relisted(sa.clone()));
            self.service_account_writer.relist_done();
        }

        /// As `Stores::snapshot` builds it.
        fn snapshot(&self) -> ClusterSnapshot {
            let (namespaces, namespace_cursor) = self.namespaces.listing();
            let (service_accounts, service_account_cursor) = self.service_accounts.listing();
            ClusterSnapshot {
                namespaces,
                service_accounts,
                changes: Some(crate::k8s::snapshot::ListChanges {
                    namespaces: namespace_cursor,
                    service_accounts: service_account_cursor,
                }),
                ..snapshot(&[])
            }
        }
    }

    fn account(namespace: &str, name: &str, managed: bool, roles: &str) -> ServiceAccountMeta {
        let mut annotations = vec![(crate::names::ROLES_ANNOTATION, roles)];
        if managed {
            annotations.push((
                crate::names::MANAGED_ANNOTATION,
                crate::names::MANAGED_VALUE,
            ));
        }
        ServiceAccountMeta::with(
            namespace,
            name,
            &format!("{namespace}/{name}"),
            &annotations,
            &[],
        )
    }

    /// Bindings by name list, pattern and selector, and (`broken`) a rejected entry.
    fn role_set(which: u8) -> RoleSet {
        let mut data = BTreeMap::from([
            (
                "web".to_string(),
                r#"{"bound_service_account_names": ["app", "api"], "bound_service_account_namespaces": ["n0", "n2", "n9"]}"#.to_string(),
            ),
            (
                "pat".to_string(),
                r#"{"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["n1*", "n3"]}"#.to_string(),
            ),
        ]);
        if which & 1 == 1 {
            data.insert(
                "sel".into(),
                r#"{"bound_service_account_names": ["api", "x*"], "bound_service_account_namespace_selector": "{\"matchLabels\": {\"team\": \"x\"}}"}"#.into(),
            );
        }
        if which & 2 == 2 {
            data.insert("bad".into(), "{".into());
        }
        if which & 4 == 4 {
            // The same role bound elsewhere: only its old and new namespaces are planned again.
            data.insert(
                "web".into(),
                r#"{"bound_service_account_names": ["app", "new"], "bound_service_account_namespaces": ["n2", "n5", "n1*"]}"#.into(),
            );
        }
        parse_roles(&data)
    }

    #[derive(Clone, Debug)]
    enum Change {
        Namespace {
            n: u8,
            team_x: bool,
            terminating: bool,
        },
        NamespaceGone(u8),
        Account {
            n: u8,
            name: u8,
            managed: bool,
            roles: u8,
        },
        AccountGone {
            n: u8,
            name: u8,
        },
        Roles(u8),
        Relist,
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            3 => (0..12u8, any::<bool>(), any::<bool>()).prop_map(|(n, team_x, terminating)| {
                Change::Namespace { n, team_x, terminating }
            }),
            1 => (0..12u8).prop_map(Change::NamespaceGone),
            4 => (0..13u8, 0..3u8, any::<bool>(), 0..8u8).prop_map(|(n, name, managed, roles)| {
                Change::Account { n, name, managed, roles }
            }),
            2 => (0..13u8, 0..3u8).prop_map(|(n, name)| Change::AccountGone { n, name }),
            1 => (0..8u8).prop_map(Change::Roles),
            1 => Just(Change::Relist),
        ]
    }

    const NAMES: [&str; 3] = ["app", "api", "other"];
    const ROLE_NAMES: [&str; 3] = ["web", "sel", "bad"];

    use proptest::prelude::*;

    proptest! {
        /// Whatever changes arrive, and however the memo answers (reused, some namespaces
        /// again, everything), the answer is what a computation from scratch gives.
        #[test]
        fn answers_as_computed_from_scratch(changes in proptest::collection::vec(change(), 1..40)) {
            let caches = Caches::new();
            let memo = AccountsMemo::default();
            let mut roles = role_set(0);
            for change in changes {
                match change {
                    Change::Namespace { n, team_x, terminating } => {
                        caches.namespace_writer.apply(NamespaceInfo {
                            terminating,
                            ..NamespaceInfo::new(
                                &format!("n{n}"),
                                [("team".to_string(), if team_x { "x" } else { "y" }.to_string())],
                            )
                        });
                    }
                    Change::NamespaceGone(n) => caches.namespace_writer.delete(&namespace(&format!("n{n}"))),
                    Change::Account { n, name, managed, roles } => {
                        let recorded: Vec<&str> = (0..3)
                            .filter(|bit| roles & (1 << bit) != 0)
                            .map(|bit| ROLE_NAMES[bit])
                            .collect();
                        caches.service_account_writer.apply(account(
                            &format!("n{n}"),
                            NAMES[usize::from(name)],
                            managed,
                            &recorded.join(","),
                        ));
                    }
                    Change::AccountGone { n, name } => caches
                        .service_account_writer
                        .delete(&account(&format!("n{n}"), NAMES[usize::from(name)], true, "")),
                    Change::Roles(which) => roles = role_set(which),
                    Change::Relist => caches.relist(),
                }
                let snap = caches.snapshot();
                let (got, _) = memo.get_and_tell(&roles, &snap);
                prop_assert_eq!(&*got, &Accounts::compute(&roles, &snap));
            }
        }
    }

    /// A namespace created, then the ServiceAccounts created in it: each plans that one
    /// namespace again, not the others.
    #[test]
    fn a_change_in_one_namespace_plans_that_namespace_again() {
        let caches = Caches::new();
        for n in 0..9 {
            caches.namespace_writer.apply(namespace(&format!("n{n}")));
        }
        for n in 0..100 {
            caches
                .namespace_writer
                .apply(namespace(&format!("other{n}")));
        }
        let memo = AccountsMemo::default();
        let roles = role_set(0);
        let (first, planned) = memo.get_and_tell(&roles, &caches.snapshot());
        assert_eq!(planned, Planned::All);
        assert_eq!(first.plan.actions.len(), 4 + 2, "{:?}", first.plan);

        let (again, planned) = memo.get_and_tell(&roles, &caches.snapshot());
        assert_eq!(planned, Planned::Reused);
        assert!(Arc::ptr_eq(&first, &again));

        caches.namespace_writer.apply(namespace("n9"));
        let snap = caches.snapshot();
        let (got, planned) = memo.get_and_tell(&roles, &snap);
        assert_eq!(planned, Planned::Namespaces(1));
        assert_eq!(got.plan.actions.len(), first.plan.actions.len() + 2);
        assert_eq!(*got, Accounts::compute(&roles, &snap));

        for name in ["app", "api"] {
            caches
                .service_account_writer
                .apply(account("n9", name, true, "web"));
        }
        let snap = caches.snapshot();
        let (got, planned) = memo.get_and_tell(&roles, &snap);
        assert_eq!(planned, Planned::Namespaces(1));
        assert_eq!(got.plan.actions.len(), first.plan.actions.len());
        assert_eq!(*got, Accounts::compute(&roles, &snap));

        caches.relist();
        let (_, planned) = memo.get_and_tell(&roles, &caches.snapshot());
        assert_eq!(planned, Planned::All, "a relist leaves no log to go by");
    }
}
