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
    /// Labels (matched against namespace selectors), but [`NAME_LABEL`] when it holds the name.
    pub labels: SmallMap,
    /// True while the namespace is being deleted: it gets no new ServiceAccounts.
    pub terminating: bool,
    /// Labelled [`NAME_LABEL`] with its own name, as Kubernetes labels every namespace since
    /// 1.21: answered from the name instead of kept in `labels` (at 10,000 namespaces the
    /// copies of that label and their index were megabytes).
    pub name_label: bool,
}

/// The label Kubernetes sets on every namespace to its name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

impl NamespaceInfo {
    /// A namespace called `name` with these labels, not being deleted.
    pub fn new(name: &str, labels: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut labels: std::collections::BTreeMap<String, String> = labels.into_iter().collect();
        let name_label = labels.get(NAME_LABEL).is_some_and(|v| v == name);
        if name_label {
            labels.remove(NAME_LABEL);
        }
        NamespaceInfo {
            name: name.into(),
            labels: labels.into(),
            terminating: false,
            name_label,
        }
    }

    /// The value of its label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        match self.labels.get(key) {
            Some(value) => Some(value),
            None if self.name_label && key == NAME_LABEL => Some(&self.name),
            None => None,
        }
    }
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
    // Gathered as pairs, then grouped: a map of growing lists held every ServiceAccount's list
    // beside the result, megabytes at a cold start of 10,000 namespaces.
    let mut wanted: Vec<(ServiceAccountRef, Arc<str>)> = Vec::new();
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
                let sa = ServiceAccountRef {
                    namespace: namespace.name.clone(),
                    name: name.clone(),
                };
                wanted.push((sa, role_name.clone()));
            }
        }
    }
    wanted.sort_unstable();
    let distinct = 1 + wanted.windows(2).filter(|w| w[0].0 != w[1].0).count();
    let mut grouped = Vec::with_capacity(distinct.min(wanted.len()));
    let mut pairs = wanted.into_iter().peekable();
    while let Some((sa, first)) = pairs.next() {
        let mut roles = vec![first];
        while let Some((_, role)) = pairs.next_if(|(next, _)| *next == sa) {
            roles.push(role);
        }
        grouped.push((sa, RoleNames::new(roles)));
    }
    // Collected at once, the map is built from the sorted pairs with full nodes (inserted one
    // by one in order, its nodes would be left half empty).
    DesiredServiceAccounts {
        accounts: grouped.into_iter().collect(),
        findings,
    }
}

/// What of a role binds namespaces: its bound names and patterns, and its selector.
pub type NamespaceBinding<'a> = (&'a [String], Option<&'a BTreeMap<String, String>>);

/// The namespaces (not being deleted) that any of these bindings binds: what a change of those
/// bindings can change.
pub fn namespaces_bound_by<'b>(
    bindings: impl IntoIterator<Item = NamespaceBinding<'b>>,
    namespaces: &[NamespaceInfo],
) -> std::collections::HashSet<Arc<str>> {
    let index = NamespaceIndex::new(namespaces);
    bindings
        .into_iter()
        .flat_map(|(patterns, selector)| index.bound(patterns, selector))
        .map(|ns| ns.0.name.clone())
        .collect()
}

/// The namespaces that are not being deleted, indexed for what a role looks up: by name, by
/// name prefix (a pattern's text before its first `*`) and by label. With thousands of
/// namespaces and roles, scanning every namespace for every pattern or selector role was most
/// of a pass; with the index a role costs what it binds.
struct NamespaceIndex<'a> {
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
        NamespaceIndex { sorted, by_label }
    }

    /// The namespace called `name`, if it exists and is not being deleted (a binary search of
    /// the sorted list: a map by name cost as much memory again as the list).
    fn named(&self, name: &str) -> Option<&'a NamespaceInfo> {
        self.sorted
            .binary_search_by(|ns| (*ns.name).cmp(name))
            .ok()
            .map(|at| self.sorted[at])
    }

    /// The namespaces `role` binds: by name, by pattern or by its selector (ORed, as in Vault).
    fn bound_by(&self, role: &RoleSpec) -> BTreeSet<ByName<'a>> {
        self.bound(&role.namespaces, role.namespace_selector.as_ref())
    }

    /// The namespaces bound by these names and patterns or by this selector.
    fn bound(
        &self,
        patterns: &[String],
        selector: Option<&BTreeMap<String, String>>,
    ) -> BTreeSet<ByName<'a>> {
        let mut targets = BTreeSet::new();
        for bound in patterns {
            match bound.split_once('*') {
                None => targets.extend(self.named(bound).map(ByName)),
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
        if let Some(match_labels) = selector {
            // The namespaces with the rarest of the pairs, checked for the others; no pair at
            // all selects every namespace.
            let named: Vec<&NamespaceInfo>;
            let candidates: &[&NamespaceInfo] = match match_labels.get(NAME_LABEL) {
                // The name label selects the namespace of that name (kept out of `by_label`)
                // and any other labelled so by hand.
                Some(name) => {
                    let by_hand = self.by_label.get(&(NAME_LABEL, name.as_str()));
                    named = (self.named(name).into_iter())
                        .chain(by_hand.into_iter().flatten().copied())
                        .collect();
                    &named
                }
                None => match match_labels
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
                },
            };
            targets.extend(
                candidates
                    .iter()
                    .filter(|ns| {
                        match_labels
                            .iter()
                            .all(|(key, value)| ns.label(key) == Some(value.as_str()))
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

    /// The rule as written: `role` binds the namespace `name` with the labels `labels` (as
    /// Kubernetes holds them) by name, pattern or label selector (ORed).
    fn role_selects(role: &RoleSpec, name: &str, labels: &BTreeMap<String, String>) -> bool {
        let by_name = role
            .namespaces
            .iter()
            .any(|pattern| glob_match(pattern, name));
        let by_labels = role.namespace_selector.as_ref().is_some_and(|selector| {
            selector
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
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
            name_labels in proptest::collection::vec(0..3u8, 24),
            terminating in proptest::collection::vec(any::<bool>(), 24),
            bound in proptest::collection::vec("[ab*-]{0,4}", 0..4),
            selector in proptest::option::of(proptest::collection::btree_map(
                prop_oneof!["[kl]".prop_map(String::from), Just(NAME_LABEL.to_string())],
                "[xy]|[ab-]{0,4}",
                0..3,
            )),
        ) {
            // Kubernetes' labels of each namespace: most carry the name label with their own
            // name (kept out of `labels` by `NamespaceInfo::new`), some none, some another value.
            let labelled: Vec<(String, BTreeMap<String, String>)> = names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let mut labels = labels[i].clone();
                    match name_labels[i] {
                        0 => {}
                        1 => {
                            labels.insert(NAME_LABEL.into(), name.clone());
                        }
                        _ => {
                            labels.insert(NAME_LABEL.into(), format!("{name}x"));
                        }
                    }
                    (name.clone(), labels)
                })
                .collect();
            let namespaces: Vec<NamespaceInfo> = labelled
                .iter()
                .enumerate()
                .map(|(i, (name, labels))| NamespaceInfo {
                    terminating: terminating[i],
                    ..NamespaceInfo::new(name, labels.clone())
                })
                .collect();
            let role = role(bound, selector);
            let expected: BTreeSet<&str> = labelled
                .iter()
                .zip(&terminating)
                .filter(|((name, labels), gone)| !**gone && role_selects(&role, name, labels))
                .map(|((name, _), _)| name.as_str())
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
