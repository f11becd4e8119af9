//! What one Vault server accepts: the parameters of its Kubernetes auth role endpoint differ
//! between HashiCorp Vault and OpenBao (only OpenBao has `token_strictly_bind_ip`) and between
//! plugin versions. The controller reads them from the mount (its Vault client's
//! `role_parameters`); this module applies them to parsed entries, so that a parameter the
//! server does not know is never sent to it, and an entry that relies on one is rejected
//! rather than silently weakened.

use std::collections::BTreeSet;

use serde_json::Value;

use super::fields::{self, PARAMS};
use super::{Finding, RoleSet};

/// The current role parameters a server accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerParams {
    accepted: BTreeSet<String>,
}

impl ServerParams {
    /// From the parameter names the server's role endpoint describes (deprecated aliases and
    /// names this tool does not know are ignored).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a String>) -> ServerParams {
        let names: BTreeSet<&str> = names.into_iter().map(String::as_str).collect();
        ServerParams {
            accepted: PARAMS
                .iter()
                .filter(|p| names.contains(p.name))
                .map(|p| p.name.to_string())
                .collect(),
        }
    }

    /// Every parameter of this tool's table (what OpenBao 2.7 accepts).
    pub fn all() -> ServerParams {
        ServerParams {
            accepted: PARAMS.iter().map(|p| p.name.to_string()).collect(),
        }
    }

    /// True when the server accepts `name`.
    pub fn accepts(&self, name: &str) -> bool {
        self.accepted.contains(name)
    }

    /// The parameters of the table the server does not accept.
    pub fn missing(&self) -> Vec<&'static str> {
        PARAMS
            .iter()
            .map(|p| p.name)
            .filter(|name| !self.accepts(name))
            .collect()
    }
}

impl RoleSet {
    /// The entries as this server can hold them: a parameter it does not accept is left out of
    /// the body when the entry leaves it at its default, and rejects the entry when the entry
    /// sets it (the server would ignore it, so the role would grant more than written).
    pub fn for_server(mut self, server: &ServerParams) -> RoleSet {
        let missing = server.missing();
        if missing.is_empty() {
            return self;
        }
        let names: Vec<String> = self.roles.keys().cloned().collect();
        for name in names {
            let spec = self.roles.get_mut(&name).expect("key just listed");
            let mut refused = Vec::new();
            for param in &missing {
                let kind = fields::param(param).expect("from the table").kind;
                if !spec.body.contains_key(*param) {
                    continue;
                }
                match std::sync::Arc::make_mut(&mut spec.body).remove(*param) {
                    Some(value) if value != fields::default_value(kind) && value != Value::Null => {
                        refused.push(*param);
                    }
                    _ => {}
                }
            }
            if refused.is_empty() {
                continue;
            }
            let spec = self.roles.remove(&name).expect("key just listed");
            for param in refused {
                self.findings.push(Finding::error(
                    &spec.key,
                    Some(param),
                    "this Vault server does not know this parameter and would ignore it \
                     (HashiCorp Vault has no token_strictly_bind_ip; OpenBao does): remove it, \
                     or use token_bound_cidrs",
                ));
            }
            // Its Vault role and ServiceAccounts stay as they are, as for any rejected entry.
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

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn without_strict_ip() -> ServerParams {
        let names: Vec<String> = PARAMS
            .iter()
            .map(|p| p.name.to_string())
            .filter(|n| n != "token_strictly_bind_ip")
            .chain(["ttl".to_string(), "policies".to_string()])
            .collect();
        ServerParams::from_names(&names)
    }

    #[test]
    fn unknown_parameters_at_their_default_are_not_sent() {
        let set = parse_roles(&data(&[(
            "web",
            r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["b"]}"#,
        )]));
        assert!(set.roles["web"].body.contains_key("token_strictly_bind_ip"));
        let set = set.for_server(&without_strict_ip());
        assert!(!set.has_errors(), "{:?}", set.findings);
        assert!(!set.roles["web"].body.contains_key("token_strictly_bind_ip"));
        assert_eq!(without_strict_ip().missing(), ["token_strictly_bind_ip"]);
    }

    #[test]
    fn an_entry_relying_on_an_unknown_parameter_is_rejected() {
        let set = parse_roles(&data(&[
            (
                "strict",
                r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["b"], "token_strictly_bind_ip": true}"#,
            ),
            (
                "plain",
                r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["b"]}"#,
            ),
        ]))
        .for_server(&without_strict_ip());
        assert!(set.roles.contains_key("plain"));
        assert!(!set.roles.contains_key("strict"));
        assert!(set.rejected.contains("strict"));
        let finding = set.findings.iter().find(|f| f.is_error()).unwrap();
        assert_eq!(finding.key, "strict");
        assert_eq!(finding.field.as_deref(), Some("token_strictly_bind_ip"));
    }

    #[test]
    fn a_server_with_every_parameter_changes_nothing() {
        let set = parse_roles(&data(&[(
            "strict",
            r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["b"], "token_strictly_bind_ip": true}"#,
        )]));
        assert_eq!(set.clone().for_server(&ServerParams::all()), set);
    }
}
