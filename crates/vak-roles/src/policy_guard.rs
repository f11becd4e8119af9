//! The policy guard-rail: what a ConfigMap entry may grant.
//!
//! Whoever can edit the ConfigMap decides which Vault policies a ServiceAccount's login gets.
//! Without a limit, that is a way to obtain the controller's own policy (and with it the power
//! to rewrite every role and disable the auth mount) or `root`. So an entry is rejected —
//! reported, and nothing of it applied or deleted — when it grants:
//! - `root`, always;
//! - a policy of the controller's own token (read at login), except `default`, which Vault
//!   gives every token anyway;
//! - a policy matching `--denied-policies`, or, when `--allowed-policies` is set, one that
//!   matches none of its patterns.
//!
//! `validate` applies the same rules offline, without the controller's own policies (it has no
//! token); `plan` and the controller apply all of them.

use std::collections::BTreeSet;

use super::{Finding, RoleSet, glob_match};

/// The policies every token has; granting it grants nothing more.
const DEFAULT_POLICY: &str = "default";

/// What entries may grant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyGuard {
    /// The controller's own policies (never grantable).
    own: BTreeSet<String>,
    /// Glob patterns; when not empty, a granted policy must match one.
    allowed: Vec<String>,
    /// Glob patterns no granted policy may match.
    denied: Vec<String>,
}

impl PolicyGuard {
    /// The guard for a controller whose token holds `own` policies, with the platform team's
    /// `allowed` and `denied` patterns (`*` matches any run of characters).
    pub fn new(own: &[String], allowed: &[String], denied: &[String]) -> PolicyGuard {
        let clean = |patterns: &[String]| -> Vec<String> {
            patterns
                .iter()
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        };
        PolicyGuard {
            own: own
                .iter()
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty() && p != DEFAULT_POLICY)
                .collect(),
            allowed: clean(allowed),
            denied: clean(denied),
        }
    }

    /// Why `policy` may not be granted, or `None` when it may.
    pub fn refusal(&self, policy: &str) -> Option<String> {
        if policy == "root" {
            return Some("the root policy grants everything and is never granted".to_string());
        }
        if self.own.contains(policy) {
            return Some(format!(
                "{policy:?} is a policy of the controller's own Vault token: granting it would let \
                 the ServiceAccount rewrite every role and the auth mount"
            ));
        }
        if let Some(pattern) = self.denied.iter().find(|p| glob_match(p, policy)) {
            return Some(format!(
                "{policy:?} matches the denied pattern {pattern:?} (--denied-policies)"
            ));
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|p| glob_match(p, policy)) {
            return Some(format!(
                "{policy:?} matches none of the allowed patterns {:?} (--allowed-policies)",
                self.allowed
            ));
        }
        None
    }
}

impl RoleSet {
    /// Rejects every entry granting a policy `guard` refuses (one finding per policy); its Vault
    /// role and ServiceAccounts are left exactly as they are, as for any rejected entry.
    pub fn guard_policies(mut self, guard: &PolicyGuard) -> RoleSet {
        let names: Vec<String> = self.roles.keys().cloned().collect();
        for name in names {
            let spec = &self.roles[&name];
            let refusals: Vec<String> = spec
                .body
                .get("token_policies")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .filter_map(|policy| guard.refusal(policy))
                .collect();
            if refusals.is_empty() {
                continue;
            }
            let spec = self.roles.remove(&name).expect("key just listed");
            for refusal in refusals {
                self.findings
                    .push(Finding::error(&spec.key, Some("token_policies"), refusal));
            }
            self.rejected.insert(name);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_roles;
    use std::collections::BTreeMap;

    fn set(entries: &[(&str, &str)]) -> RoleSet {
        let data: BTreeMap<String, String> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_roles(&data)
    }

    fn entry(policies: &str) -> String {
        format!(
            r#"{{"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["team"], "token_policies": {policies}}}"#
        )
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn root_and_the_controllers_own_policies_are_refused() {
        let guard = PolicyGuard::new(&strings(&["default", "vault-auth-kubernetes"]), &[], &[]);
        let a = entry(r#"["app-read", "default"]"#);
        let b = entry(r#"["vault-auth-kubernetes"]"#);
        let c = entry(r#""root""#);
        let d = entry(r#"["Vault-Auth-Kubernetes"]"#);
        let guarded =
            set(&[("ok", &a), ("own", &b), ("root", &c), ("other", &d)]).guard_policies(&guard);
        assert_eq!(
            guarded.roles.keys().collect::<Vec<_>>(),
            ["ok", "other"],
            "{:?}",
            guarded.findings
        );
        assert!(guarded.rejected.contains("own") && guarded.rejected.contains("root"));
        let messages: Vec<String> = guarded.findings.iter().map(|f| f.to_string()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("key \"own\": field \"token_policies\"")
                    && m.contains("controller's own")),
            "{messages:?}"
        );
    }

    #[test]
    fn allowed_and_denied_patterns() {
        let guard = PolicyGuard::new(
            &[],
            &strings(&["team-*", "default"]),
            &strings(&["team-admin*"]),
        );
        assert_eq!(guard.refusal("team-read"), None);
        assert_eq!(guard.refusal("default"), None);
        assert!(
            guard
                .refusal("team-admin")
                .unwrap()
                .contains("--denied-policies")
        );
        assert!(
            guard
                .refusal("payments")
                .unwrap()
                .contains("--allowed-policies")
        );
        // The deprecated `policies` alias is guarded too: it is normalised to token_policies.
        let e = r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["n"], "policies": ["payments"]}"#;
        let guarded = set(&[("alias", e)]).guard_policies(&guard);
        assert!(guarded.roles.is_empty() && guarded.rejected.contains("alias"));
    }

    #[test]
    fn no_patterns_allow_everything_but_root() {
        let guard = PolicyGuard::new(&[], &[], &[]);
        assert_eq!(guard.refusal("anything"), None);
        assert!(guard.refusal("root").is_some());
    }
}
