//! A string map for the few labels or annotations each cached namespace and ServiceAccount
//! carries.
//!
//! Why not `BTreeMap`: its first entry allocates a whole node (eleven keys and values, about
//! 540 bytes), so a map of one or two entries costs several times its content; with tens of
//! thousands of cached objects that was a large part of the controller's memory. A sorted
//! `Vec` holds the same pairs in what they take, and looking up one of a few keys is as fast.

/// Pairs sorted by key, each key once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmallMap(Vec<(String, String)>);

impl SmallMap {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The pairs, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// True when there is no pair.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the pairs whose key `keep` accepts.
    pub fn retain_keys(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|(k, _)| keep(k));
        self.0.shrink_to_fit();
    }
}

impl FromIterator<(String, String)> for SmallMap {
    /// The last value of a key given twice wins, as in a `BTreeMap`.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        // Stable: pairs of one key keep their order, and the last is kept.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match unique.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => unique.push(pair),
            }
        }
        SmallMap(unique)
    }
}

impl From<std::collections::BTreeMap<String, String>> for SmallMap {
    fn from(map: std::collections::BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        SmallMap(map.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a SmallMap {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Built from any pairs, it answers as a `BTreeMap` built from them does.
        #[test]
        fn answers_as_a_btreemap(
            pairs in proptest::collection::vec(("[abc]{0,2}", "[xy]{0,2}"), 0..8),
            keys in proptest::collection::vec("[abc]{0,2}", 0..6),
        ) {
            let map: BTreeMap<String, String> = pairs.iter().cloned().collect();
            let small: SmallMap = pairs.into_iter().collect();
            prop_assert_eq!(small.iter().collect::<Vec<_>>(), map.iter().collect::<Vec<_>>());
            prop_assert_eq!(&small, &SmallMap::from(map.clone()));
            for key in keys {
                prop_assert_eq!(small.get(&key), map.get(&key));
            }
        }
    }

    #[test]
    fn retain_keys_keeps_the_accepted_ones() {
        let mut small: SmallMap = [("a", "1"), ("b", "2"), ("c", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        small.retain_keys(|k| k != "b");
        assert_eq!(small.get("a").map(String::as_str), Some("1"));
        assert!(!small.contains_key("b"));
        assert_eq!(small.iter().count(), 2);
    }
}
