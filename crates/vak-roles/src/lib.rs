//! The role entries of the `vault-auth-roles` ConfigMap: parsing, validation, normalisation and
//! comparison with what Vault holds. Pure: no I/O, so the controller, `validate FILE` and `plan`
//! share exactly the same rules and messages.
//!
//! A crate of its own so that the fuzz target (`fuzz/`) builds only this and serde, not the
//! controller's Kubernetes and TLS stack. The controller re-exports it as
//! `vault_auth_kubernetes::roles`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

mod diff;
mod duration;
mod fields;
mod json;
mod limits;
mod name;
mod normalize;
mod parse;
mod policy_guard;
mod schema;
mod selector;
mod server;
mod values;

#[cfg(test)]
mod test_util {
    use serde_json::{Map, Value};

    /// The object inside a `json!({...})` literal.
    pub(crate) fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("a JSON object literal")
    }
}

pub use diff::{FieldChange, diff_role, role_changes};
pub use duration::format_duration;
pub use name::glob_match;
pub use normalize::normalize_vault_role;
pub use policy_guard::PolicyGuard;
pub use schema::role_body_schema;
pub use server::ServerParams;

/// True for the parameters Vault holds as durations (in seconds): `token_ttl`, ...
pub fn is_duration_param(name: &str) -> bool {
    fields::PARAMS
        .iter()
        .any(|p| p.name == name && p.kind == fields::Kind::Duration)
}

/// One valid ConfigMap entry, ready to be written to Vault.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleSpec {
    /// ConfigMap data key as written.
    pub key: String,
    /// Vault role name (= key lowercased, as Vault stores it).
    pub name: String,
    /// Full normalised body to write: every parameter Vault accepts, defaults filled, durations
    /// in seconds, lists as arrays, selector as canonical JSON string. Shared: the parse cache,
    /// the plan, the outcomes and the controller's view of Vault hold this one body (a thousand
    /// roles of ~25 fields each are megabytes per copy).
    pub body: Arc<Map<String, Value>>,
    /// `bound_service_account_names` (may hold patterns such as `*` or `app-*`).
    pub service_account_names: Vec<String>,
    /// `bound_service_account_namespaces` (may hold patterns).
    pub namespaces: Vec<String>,
    /// `matchLabels` of `bound_service_account_namespace_selector`, when set.
    pub namespace_selector: Option<BTreeMap<String, String>>,
}

/// How bad a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The entry is rejected; its Vault role and ServiceAccounts are left as they are.
    Error,
    /// The entry is applied, but something deserves the user's attention.
    Warning,
}

/// A problem found in a ConfigMap entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// ConfigMap data key as written.
    pub key: String,
    /// Parameter concerned, when the problem is about one.
    pub field: Option<String>,
    /// Error (entry rejected) or warning (entry applied).
    pub severity: Severity,
    /// What is wrong, in one sentence without the key and field.
    pub message: String,
}

impl Finding {
    /// An error: the entry is rejected.
    pub fn error(key: &str, field: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(key, field, Severity::Error, message)
    }

    /// A warning: the entry is applied.
    pub fn warning(key: &str, field: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(key, field, Severity::Warning, message)
    }

    fn new(key: &str, field: Option<&str>, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            key: key.to_string(),
            field: field.map(str::to_string),
            severity,
            message: message.into(),
        }
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {:?}", self.key)?;
        if let Some(field) = &self.field {
            write!(f, ": field {field:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every entry of the ConfigMap, parsed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RoleSet {
    /// Valid roles by Vault name.
    pub roles: BTreeMap<String, RoleSpec>,
    /// Errors (rejected entries) and warnings (e.g. a lowercased name).
    pub findings: Vec<Finding>,
    /// Vault names of rejected entries: their Vault roles and ServiceAccounts must be left exactly
    /// as they are.
    pub rejected: BTreeSet<String>,
}

impl RoleSet {
    /// True when at least one entry was rejected.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }
}

/// Parses and validates every entry of the ConfigMap's data (key = role name, value = JSON
/// body). A bad entry is rejected with its findings and never hides the others. Two keys that
/// Vault would store under the same lowercased name are both rejected: which one is meant
/// cannot be known, and applying either would flap.
pub fn parse_roles(data: &BTreeMap<String, String>) -> RoleSet {
    parse_roles_cached(data, &mut ParseCache::default())
}

/// The entries a [`parse_roles_cached`] call parsed, by key, with the text each was parsed
/// from. An entry is a pure function of its key and text, so one whose text did not change is
/// not parsed again: the controller parses the ConfigMap on every pass, and an edit of one of a
/// thousand entries then costs one parse, not a thousand.
#[derive(Default)]
pub struct ParseCache {
    entries: std::collections::HashMap<String, (String, parse::Entry)>,
}

/// [`parse_roles`], reusing the entries `cache` holds for the same key and text; the cache is
/// left holding this call's entries only (a removed key is forgotten). The result is the same
/// as `parse_roles(data)`.
pub fn parse_roles_cached(data: &BTreeMap<String, String>, cache: &mut ParseCache) -> RoleSet {
    let mut previous = std::mem::take(&mut cache.entries);
    for (key, text) in data {
        let entry = match previous.remove_entry(key) {
            Some((key, (old, entry))) if old == *text => (key, (old, entry)),
            _ => (key.clone(), (text.clone(), parse::parse_entry(key, text))),
        };
        cache.entries.insert(entry.0, entry.1);
    }
    let mut keys_by_name: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for key in data.keys() {
        keys_by_name
            .entry(key.to_lowercase())
            .or_default()
            .push(key);
    }
    let mut set = RoleSet::default();
    for key in data.keys() {
        let name = key.to_lowercase();
        let (_, entry) = &cache.entries[key];
        set.findings.extend(entry.findings.iter().cloned());
        let others: Vec<&str> = keys_by_name[&name]
            .iter()
            .copied()
            .filter(|k| k != key)
            .collect();
        if !others.is_empty() {
            set.findings.push(Finding::error(
                key,
                None,
                format!(
                    "Vault stores role names lowercased and key(s) {others:?} name the same role \
                     {name:?}: all of them are rejected"
                ),
            ));
        }
        match &entry.spec {
            Some(spec) if others.is_empty() => {
                set.roles.insert(name, spec.clone());
            }
            _ => {
                set.rejected.insert(name);
            }
        }
    }
    set
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Through a sequence of edits (an entry changed, added, made invalid, colliding with
    /// another's lowercased name, removed), the cached parse equals a fresh one every time,
    /// and the cache holds exactly the current keys.
    #[test]
    fn cached_parse_equals_a_fresh_one_through_edits() {
        let a =
            r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["ns"]}"#;
        let b = r#"{"bound_service_account_names": ["b"], "bound_service_account_namespaces": ["ns"], "token_ttl": "1h"}"#;
        let steps = [
            data(&[("web", a), ("api", b)]),
            data(&[("web", b), ("api", b)]),
            data(&[("web", b), ("api", b), ("Web", a)]),
            data(&[("web", "{not json"), ("api", b), ("Web", a)]),
            data(&[("api", b)]),
            data(&[]),
            data(&[("web", a)]),
        ];
        let mut cache = ParseCache::default();
        for (i, step) in steps.iter().enumerate() {
            assert_eq!(
                parse_roles_cached(step, &mut cache),
                parse_roles(step),
                "step {i}"
            );
            let mut cached: Vec<&String> = cache.entries.keys().collect();
            cached.sort();
            assert_eq!(cached, step.keys().collect::<Vec<_>>(), "step {i}");
        }
    }

    /// An entry whose text changed is parsed again, not served from the cache.
    #[test]
    fn a_changed_text_is_parsed_again() {
        let mut cache = ParseCache::default();
        let first = parse_roles_cached(
            &data(&[(
                "web",
                r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["ns"], "token_ttl": "1h"}"#,
            )]),
            &mut cache,
        );
        let second = parse_roles_cached(
            &data(&[(
                "web",
                r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["ns"], "token_ttl": "2h"}"#,
            )]),
            &mut cache,
        );
        assert_eq!(first.roles["web"].body["token_ttl"], 3600);
        assert_eq!(second.roles["web"].body["token_ttl"], 7200);
    }
}
