//! A set of Vault role names as a ServiceAccount records them: sorted, without duplicates,
//! shared.
//!
//! Why not a `BTreeSet<String>`: a cold start at 10,000 namespaces plans ten thousand
//! ServiceAccounts, each with its set of roles, and the wanted state, the plan and the outcomes
//! each hold it. A `BTreeSet`'s first element allocates a ~300-byte node and every copy copies
//! its strings; this is one small allocation, cloned by a reference count, holding the pass's
//! own `Arc<str>` names.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// Sorted, distinct role names (see the module documentation).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleNames(Arc<[Arc<str>]>);

impl RoleNames {
    /// The names, sorted and without duplicates.
    pub fn new<I>(names: I) -> RoleNames
    where
        I: IntoIterator,
        I::Item: Into<Arc<str>>,
    {
        let mut names: Vec<Arc<str>> = names.into_iter().map(Into::into).collect();
        names.sort_unstable();
        names.dedup();
        RoleNames(names.into())
    }

    /// The names in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.0.iter().map(|name| &**name)
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No name.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|n| (**n).cmp(name)).is_ok()
    }

    /// The names that are also in `other`.
    pub fn intersection(&self, other: &BTreeSet<String>) -> RoleNames {
        if self.iter().all(|name| other.contains(name)) {
            return self.clone();
        }
        RoleNames(
            self.0
                .iter()
                .filter(|name| other.contains(&***name))
                .cloned()
                .collect(),
        )
    }

    /// The names of both (this set itself when `other` adds nothing).
    pub fn union(&self, other: &RoleNames) -> RoleNames {
        if other.iter().all(|name| self.contains(name)) {
            return self.clone();
        }
        RoleNames::new(self.0.iter().chain(other.0.iter()).cloned())
    }

    /// The names joined by `separator`, in order.
    pub fn join(&self, separator: &str) -> String {
        self.iter().collect::<Vec<_>>().join(separator)
    }
}

impl<S: Into<Arc<str>>> FromIterator<S> for RoleNames {
    fn from_iter<I: IntoIterator<Item = S>>(names: I) -> Self {
        RoleNames::new(names)
    }
}

impl fmt::Debug for RoleNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// As a list of names, like the set it stands for.
impl Serialize for RoleNames {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Answers as a `BTreeSet<String>` of the same names does.
        #[test]
        fn answers_as_a_btreeset(
            a in proptest::collection::vec("[a-d]{1,2}", 0..6),
            b in proptest::collection::vec("[a-d]{1,2}", 0..6),
            probe in "[a-d]{1,2}",
        ) {
            let (sa, sb): (BTreeSet<String>, BTreeSet<String>) =
                (a.iter().cloned().collect(), b.iter().cloned().collect());
            let (na, nb) = (RoleNames::new(a.iter().map(String::as_str)), RoleNames::new(b.iter().map(String::as_str)));
            prop_assert_eq!(na.iter().collect::<Vec<_>>(), sa.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(na.len(), sa.len());
            prop_assert_eq!(na.is_empty(), sa.is_empty());
            prop_assert_eq!(na.contains(&probe), sa.contains(&probe));
            let (meet, join) = (na.intersection(&sb), na.union(&nb));
            prop_assert_eq!(
                meet.iter().collect::<Vec<_>>(),
                sa.intersection(&sb).map(String::as_str).collect::<Vec<_>>()
            );
            prop_assert_eq!(
                join.iter().collect::<Vec<_>>(),
                sa.union(&sb).map(String::as_str).collect::<Vec<_>>()
            );
            prop_assert_eq!(na == nb, sa == sb);
            prop_assert_eq!(
                serde_json::to_string(&na).unwrap(),
                serde_json::to_string(&sa).unwrap()
            );
            prop_assert_eq!(format!("{na:?}"), format!("{sa:?}"));
        }
    }
}
