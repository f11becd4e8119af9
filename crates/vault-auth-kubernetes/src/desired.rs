//! The ServiceAccounts the roles ask for, given the cluster's namespaces. Pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::Serialize;

use crate::roles::{Finding, RoleSet, RoleSpec, glob_match};

/// A ServiceAccount by namespace and name; displays as `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceAccountRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for ServiceAccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the controller knows of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Name.
    pub name: String,
    /// Labels (matched against namespace selectors).
    pub labels: BTreeMap<String, String>,
    /// True while the namespace is being deleted: it gets no new ServiceAccounts.
    pub terminating: bool,
}

/// The ServiceAccounts the roles want.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DesiredServiceAccounts {
    /// ServiceAccount -> Vault role names that want it.
    pub accounts: BTreeMap<ServiceAccountRef, BTreeSet<String>>,
    /// Warnings, e.g. a name pattern that cannot be created.
    pub findings: Vec<Finding>,
}

/// Computes the ServiceAccounts that the valid roles ask for in the given namespaces.
///
/// For each valid role: every bound namespace that exists (patterns such as `*` and `team-*`
/// expanded against the existing namespaces) and every namespace whose labels match the
/// selector, times every bound name that is not a pattern. Terminating namespaces get nothing
/// (Kubernetes refuses new objects there). Rejected entries contribute nothing; the plan keeps
/// the ServiceAccounts they had.
pub fn desired_service_accounts(
    roles: &RoleSet,
    namespaces: &[NamespaceInfo],
) -> DesiredServiceAccounts {
    let mut desired = DesiredServiceAccounts::default();
    // Exact names are looked up; only patterns and selectors scan every namespace, so a cluster
    // with thousands of namespaces and roles stays cheap (one pass per cluster change).
    let by_name: HashMap<&str, &NamespaceInfo> =
        namespaces.iter().map(|ns| (ns.name.as_str(), ns)).collect();
    for role in roles.roles.values() {
        let mut targets: BTreeSet<&str> = role
            .namespaces
            .iter()
            .filter(|n| !n.contains('*'))
            .filter_map(|n| by_name.get(n.as_str()))
            .filter(|ns| !ns.terminating)
            .map(|ns| ns.name.as_str())
            .collect();
        let scan =
            role.namespace_selector.is_some() || role.namespaces.iter().any(|n| n.contains('*'));
        if scan {
            targets.extend(
                namespaces
                    .iter()
                    .filter(|ns| !ns.terminating && role_selects(role, ns))
                    .map(|ns| ns.name.as_str()),
            );
        }
        for name in &role.service_account_names {
            if name.contains('*') {
                desired.findings.push(Finding::warning(
                    &role.key,
                    Some("bound_service_account_names"),
                    format!(
                        "{name:?} is a pattern: Vault accepts matching ServiceAccounts, but none \
                         can be created for it"
                    ),
                ));
                continue;
            }
            for namespace in &targets {
                let sa = ServiceAccountRef {
                    namespace: (*namespace).to_string(),
                    name: name.clone(),
                };
                desired
                    .accounts
                    .entry(sa)
                    .or_default()
                    .insert(role.name.clone());
            }
        }
    }
    desired
}

/// True when `role` binds namespace `ns` by name, pattern or label selector (ORed, as in Vault).
fn role_selects(role: &RoleSpec, ns: &NamespaceInfo) -> bool {
    let by_name = role
        .namespaces
        .iter()
        .any(|pattern| glob_match(pattern, &ns.name));
    let by_labels = role
        .namespace_selector
        .as_ref()
        .is_some_and(|match_labels| {
            match_labels
                .iter()
                .all(|(key, value)| ns.labels.get(key) == Some(value))
        });
    by_name || by_labels
}
