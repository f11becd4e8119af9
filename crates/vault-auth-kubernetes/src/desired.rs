//! The ServiceAccounts the roles ask for, given the cluster's namespaces. Pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::role_names::RoleNames;
use crate::roles::{Finding, RoleSet, RoleSpec, glob_match};
use crate::small_map::SmallMap;

/// A ServiceAccount by namespace and name; displays as `namespace/name`. The names are shared
/// (`Arc<str>`) with the caches and the other references to the same namespace and name, so
/// the thousands of references a pass plans with cost no string copies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceAccountRef {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
}

impl ServiceAccountRef {
    /// The ServiceAccount `name` in `namespace`.
    pub fn new(namespace: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        ServiceAccountRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceAccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the controller knows of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Name (shared with the ServiceAccounts planned in it).
    pub name: Arc<str>,
    /// Labels (matched against namespace selectors).
    pub labels: SmallMap,
    /// True while the namespace is being deleted: it gets no new ServiceAccounts.
    pub terminating: bool,
}

/// The ServiceAccounts the roles want.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DesiredServiceAccounts {
    /// ServiceAccount -> Vault role names that want it.
    pub accounts: BTreeMap<ServiceAccountRef, RoleNames>,
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
    let mut findings = Vec::new();
    // Each role's name and each bound name made once, and shared by every reference to them.
    let mut wanted: BTreeMap<ServiceAccountRef, Vec<Arc<str>>> = BTreeMap::new();
    let index = NamespaceIndex::new(namespaces);
    for role in roles.roles.values() {
        let targets = index.bound_by(role);
        let role_name: Arc<str> = role.name.as_str().into();
        for name in &role.service_account_names {
            if name.contains('*') {
                findings.push(Finding::warning(
                    &role.key,
                    Some("bound_service_account_names"),
                    format!(
                        "{name:?} is a pattern: Vault accepts matching ServiceAccounts, but none \
                         can be created for it"
                    ),
                ));
                continue;
            }
            let name: Arc<str> = name.as_str().into();
            for namespace in &targets {
                wanted
                    .entry(ServiceAccountRef {
                        namespace: namespace.name.clone(),
                        name: name.clone(),
                    })
                    .or_default()
                    .push(role_name.clone());
            }
        }
    }
    DesiredServiceAccounts {
        accounts: wanted
            .into_iter()
            .map(|(sa, roles)| (sa, RoleNames::new(roles)))
            .collect(),
        findings,
    }
}

/// The namespaces that are not being deleted, indexed for what a role looks up: by name, by
/// name prefix (a pattern's text before its first `*`) and by label. With thousands of
/// namespaces and roles, scanning every namespace for every pattern or selector role was most
/// of a pass; with the index a role costs what it binds.
struct NamespaceIndex<'a> {
    by_name: HashMap<&'a str, &'a NamespaceInfo>,
    /// Sorted by name.
    sorted: Vec<&'a NamespaceInfo>,
    by_label: HashMap<(&'a str, &'a str), Vec<&'a NamespaceInfo>>,
}

impl<'a> NamespaceIndex<'a> {
    fn new(namespaces: &'a [NamespaceInfo]) -> Self {
        let mut sorted: Vec<&NamespaceInfo> =
            namespaces.iter().filter(|ns| !ns.terminating).collect();
        sorted.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut by_label: HashMap<(&str, &str), Vec<&NamespaceInfo>> = HashMap::new();
        for ns in &sorted {
            for (key, value) in &ns.labels {
                by_label
                    .entry((key.as_str(), value.as_str()))
                    .or_default()
                    .push(ns);
            }
        }
        NamespaceIndex {
            by_name: sorted.iter().map(|ns| (&*ns.name, *ns)).collect(),
            sorted,
            by_label,
        }
    }

    /// The names of the namespaces `role` binds: by name, by pattern or by its selector (ORed,
    /// as in Vault).
    fn bound_by(&self, role: &RoleSpec) -> BTreeSet<ByName<'a>> {
        let mut targets = BTreeSet::new();
        for bound in &role.namespaces {
            match bound.split_once('*') {
                None => targets.extend(self.by_name.get(bound.as_str()).copied().map(ByName)),
                Some((prefix, _)) => {
                    let start = self.sorted.partition_point(|ns| &*ns.name < prefix);
                    targets.extend(
                        self.sorted[start..]
                            .iter()
                            .take_while(|ns| ns.name.starts_with(prefix))
                            .filter(|ns| glob_match(bound, &ns.name))
                            .copied()
                            .map(ByName),
                    );
                }
            }
        }
        if let Some(match_labels) = &role.namespace_selector {
            // The namespaces with the rarest of the pairs, checked for the others; no pair at
            // all selects every namespace.
            let candidates: &[&NamespaceInfo] = match match_labels
                .iter()
                .map(|(k, v)| {
                    self.by_label
                        .get(&(k.as_str(), v.as_str()))
                        .map_or(&[][..], Vec::as_slice)
                })
                .min_by_key(|list| list.len())
            {
                Some(rarest) => rarest,
                None => &self.sorted,
            };
            targets.extend(
                candidates
                    .iter()
                    .filter(|ns| {
                        match_labels
                            .iter()
                            .all(|(key, value)| ns.labels.get(key) == Some(value))
                    })
                    .copied()
                    .map(ByName),
            );
        }
        targets
    }
}

/// A namespace ordered and compared by its name.
struct ByName<'a>(&'a NamespaceInfo);

impl std::ops::Deref for ByName<'_> {
    type Target = NamespaceInfo;
    fn deref(&self) -> &NamespaceInfo {
        self.0
    }
}

impl PartialEq for ByName<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for ByName<'_> {}

impl PartialOrd for ByName<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByName<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(&other.0.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rule as written: `role` binds `ns` by name, pattern or label selector (ORed).
    fn role_selects(role: &RoleSpec, ns: &NamespaceInfo) -> bool {
        let by_name = role
            .namespaces
            .iter()
            .any(|pattern| glob_match(pattern, &ns.name));
        let by_labels = role.namespace_selector.as_ref().is_some_and(|labels| {
            labels
                .iter()
                .all(|(key, value)| ns.labels.get(key) == Some(value))
        });
        by_name || by_labels
    }

    fn role(namespaces: Vec<String>, selector: Option<BTreeMap<String, String>>) -> RoleSpec {
        RoleSpec {
            key: "r".into(),
            name: "r".into(),
            body: Default::default(),
            service_account_names: vec!["sa".into()],
            namespaces,
            namespace_selector: selector,
        }
    }

    proptest! {
        /// The index finds exactly the namespaces the rule selects, among those not being
        /// deleted, for names, patterns (anywhere in the text) and selectors (none, one or two
        /// pairs).
        #[test]
        fn the_index_binds_what_the_rule_selects(
            names in proptest::collection::btree_set("[ab-]{0,4}", 0..24),
            labels in proptest::collection::vec(proptest::collection::btree_map("[kl]", "[xy]", 0..3), 24),
            terminating in proptest::collection::vec(any::<bool>(), 24),
            bound in proptest::collection::vec("[ab*-]{0,4}", 0..4),
            selector in proptest::option::of(proptest::collection::btree_map("[kl]", "[xy]", 0..3)),
        ) {
            let namespaces: Vec<NamespaceInfo> = names
                .iter()
                .enumerate()
                .map(|(i, name)| NamespaceInfo {
                    name: name.as_str().into(),
                    labels: labels[i].clone().into(),
                    terminating: terminating[i],
                })
                .collect();
            let role = role(bound, selector);
            let expected: BTreeSet<&str> = namespaces
                .iter()
                .filter(|ns| !ns.terminating && role_selects(&role, ns))
                .map(|ns| &*ns.name)
                .collect();
            let bound: BTreeSet<&str> = NamespaceIndex::new(&namespaces)
                .bound_by(&role)
                .into_iter()
                .map(|ns| &*ns.0.name)
                .collect();
            prop_assert_eq!(bound, expected);
        }
    }
}
