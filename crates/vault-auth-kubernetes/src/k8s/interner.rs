//! One shared copy of each namespace and ServiceAccount name the watch caches hold.
//!
//! A cluster's names repeat: every namespace has a `default` ServiceAccount, a role's names
//! recur in each namespace it binds, and every ServiceAccount repeats its namespace's name. At
//! 10,000 namespaces that is tens of thousands of copies of a few thousand strings; the caches
//! hold `Arc<str>`s from here instead, and a plan's references share them.

use std::collections::HashSet;
use std::sync::Arc;

/// The names handed out, each once. Names nothing else holds any more are dropped when the
/// set has doubled since the last sweep, so it follows the cluster instead of growing with
/// every name ever seen.
#[derive(Debug, Default)]
pub struct Interner {
    names: HashSet<Arc<str>>,
    /// How many names the last sweep kept.
    kept: usize,
}

impl Interner {
    /// The shared copy of `name`.
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return shared.clone();
        }
        if self.names.len() >= 2 * self.kept.max(512) {
            self.names.retain(|n| Arc::strong_count(n) > 1);
            self.kept = self.names.len();
        }
        let shared: Arc<str> = name.into();
        self.names.insert(shared.clone());
        shared
    }

    /// How many names it holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Holds no name.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_one_copy_and_forgets_names_no_one_holds() {
        let mut interner = Interner::default();
        let a = interner.get("default");
        assert!(Arc::ptr_eq(&a, &interner.get("default")));
        // Names nobody keeps: the set is swept when it doubles, so it stays bounded.
        for i in 0..10_000 {
            interner.get(&format!("gone-{i}"));
        }
        assert!(interner.len() <= 1024, "{}", interner.len());
        assert!(
            Arc::ptr_eq(&a, &interner.get("default")),
            "a held name stays"
        );
    }
}
