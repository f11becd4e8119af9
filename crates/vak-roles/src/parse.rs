//! Parsing and validating one ConfigMap entry into a [`RoleSpec`] and its findings.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fields::{
    self, DEPRECATED, NAME, NAMES, NAMESPACES, PARAMS, SELECTOR, TOKEN_BOUND_CIDRS, TOKEN_MAX_TTL,
    TOKEN_NUM_USES, TOKEN_PERIOD, TOKEN_STRICTLY_BIND_IP, TOKEN_TTL, TOKEN_TYPE,
};
use super::json::parse_object;
use super::name::{namespace_name_problem, role_name_problem, service_account_name_problem};
use super::selector::parse_selector;
use super::values::convert;
use super::{Finding, RoleSpec};

/// The outcome of one entry: the role when it is valid, and what was found either way.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub spec: Option<RoleSpec>,
    pub findings: Vec<Finding>,
}

/// Parses the entry `key` (the role name as written) with JSON body `text`.
pub(crate) fn parse_entry(key: &str, text: &str) -> Entry {
    let mut p = Parser {
        key,
        name: key.to_lowercase(),
        findings: Vec::new(),
        given: BTreeMap::new(),
    };
    let spec = p.run(text);
    let spec = spec.filter(|_| !p.findings.iter().any(Finding::is_error));
    let mut findings = p.findings;
    // "Applied as role x" is news only when the entry is applied: a rejected entry is not.
    if spec.is_none() {
        findings.retain(|f| f.is_error() || !f.message.starts_with(LOWERCASED));
    }
    Entry { spec, findings }
}

/// The start of the warning for a key with capitals.
const LOWERCASED: &str = "Vault stores role names lowercased: applied as role";

struct Parser<'a> {
    key: &'a str,
    name: String,
    findings: Vec<Finding>,
    /// Valid, normalised values by current parameter name.
    given: BTreeMap<&'static str, Value>,
}

impl Parser<'_> {
    fn error(&mut self, field: Option<&str>, message: impl Into<String>) {
        self.findings.push(Finding::error(self.key, field, message));
    }

    fn warning(&mut self, field: Option<&str>, message: impl Into<String>) {
        self.findings
            .push(Finding::warning(self.key, field, message));
    }

    fn run(&mut self, text: &str) -> Option<RoleSpec> {
        if let Some(problem) = role_name_problem(self.key) {
            self.error(None, problem);
        } else if self.name != self.key {
            let message = format!("{LOWERCASED} {:?}", self.name);
            self.warning(None, message);
        }
        let obj = match parse_object(text) {
            Ok(obj) => obj,
            Err(message) => {
                self.error(None, message);
                return None;
            }
        };
        for (field, value) in &obj {
            self.read_param(&obj, field, value);
        }
        self.check_bindings();
        self.check_token_fields();
        self.build()
    }

    fn read_param(&mut self, obj: &Map<String, Value>, field: &str, value: &Value) {
        let target = if let Some(param) = fields::param(field) {
            param
        } else if let Some(target) = fields::deprecated_target(field) {
            if obj.contains_key(target) {
                // Vault would silently use the token_* one; say which of the two will not count.
                let message =
                    format!("both {field:?} and {target:?} are given: keep only {target:?}");
                return self.error(Some(field), message);
            }
            self.warning(Some(field), format!("deprecated: use {target:?} instead"));
            fields::param(target).expect("deprecated aliases point at current parameters")
        } else if field == NAME {
            return self.read_name_param(value);
        } else {
            let message = match fields::suggest(field) {
                Some(known) => format!("unknown parameter (did you mean {known:?}?)"),
                None => "unknown parameter".to_string(),
            };
            return self.error(Some(field), message);
        };
        // null leaves the parameter at its default, like leaving it out.
        if value.is_null() {
            return;
        }
        match convert(target.kind, value) {
            Ok(v) => {
                self.given.insert(target.name, v);
            }
            Err(message) => self.error(Some(field), message),
        }
    }

    /// Vault takes the role name from the path and ignores `name` in the body.
    fn read_name_param(&mut self, value: &Value) {
        if value
            .as_str()
            .is_some_and(|n| n.to_lowercase() == self.name)
        {
            self.warning(Some(NAME), "ignored: the role name is the ConfigMap key");
        } else {
            let message = format!(
                "the role name is the ConfigMap key ({:?}): remove \"name\" or make it match",
                self.key
            );
            self.error(Some(NAME), message);
        }
    }

    fn list(&self, param: &str) -> Vec<String> {
        self.given
            .get(param)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn number(&self, param: &str) -> u64 {
        self.given.get(param).and_then(Value::as_u64).unwrap_or(0)
    }

    fn check_bindings(&mut self) {
        let names = self.list(NAMES);
        let namespaces = self.list(NAMESPACES);
        let has_selector = self
            .given
            .get(SELECTOR)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if names.is_empty() && !self.has_error(NAMES) {
            self.error(
                Some(NAMES),
                "must list at least one ServiceAccount name (\"*\" for any)",
            );
        }
        for name in &names {
            if let Some(problem) = service_account_name_problem(name) {
                self.error(Some(NAMES), problem);
            }
        }
        for namespace in &namespaces {
            if let Some(problem) = namespace_name_problem(namespace) {
                self.error(Some(NAMESPACES), problem);
            }
        }
        for (field, list) in [(NAMES, &names), (NAMESPACES, &namespaces)] {
            if list.len() > 1 && list.iter().any(|v| v == "*") {
                self.error(Some(field), "\"*\" cannot be mixed with other values");
            }
        }
        if namespaces.is_empty() && !has_selector && !self.has_error(NAMESPACES) {
            let message = format!(
                "no namespaces and no namespace selector: list namespaces here or set {SELECTOR:?}"
            );
            self.error(Some(NAMESPACES), message);
        }
        if names.iter().any(|n| n == "*") && namespaces.iter().any(|n| n == "*") {
            self.error(
                None,
                format!(
                    "\"*\" in both {NAMES:?} and {NAMESPACES:?} would let every ServiceAccount \
                     of the cluster log in"
                ),
            );
        }
    }

    fn check_token_fields(&mut self) {
        let ttl = self.number(TOKEN_TTL);
        let max_ttl = self.number(TOKEN_MAX_TTL);
        if max_ttl > 0 && ttl > max_ttl {
            let message = format!("{ttl} s is longer than {TOKEN_MAX_TTL} ({max_ttl} s)");
            self.error(Some(TOKEN_TTL), message);
        }
        if self.given.get(TOKEN_TYPE).and_then(Value::as_str) == Some("batch") {
            for (param, what) in [(TOKEN_PERIOD, "periodic"), (TOKEN_NUM_USES, "use-limited")] {
                if self.number(param) > 0 {
                    let message = format!("batch tokens cannot be {what}: {param} must be 0");
                    self.error(Some(TOKEN_TYPE), message);
                }
            }
        }
        if self.given.get(TOKEN_STRICTLY_BIND_IP) == Some(&Value::Bool(true)) {
            if !self.list(TOKEN_BOUND_CIDRS).is_empty() {
                let message = format!("conflicts with {TOKEN_BOUND_CIDRS:?}: set only one");
                self.error(Some(TOKEN_STRICTLY_BIND_IP), message);
            }
            self.warning(
                Some(TOKEN_STRICTLY_BIND_IP),
                "only OpenBao enforces this; HashiCorp Vault ignores it",
            );
        }
    }

    fn has_error(&self, field: &str) -> bool {
        // Errors are recorded under the name the user wrote, which may be a deprecated alias.
        self.findings.iter().any(|f| {
            f.is_error()
                && f.field.as_deref().is_some_and(|w| {
                    w == field || DEPRECATED.iter().any(|(a, t)| *a == w && *t == field)
                })
        })
    }

    /// The full body: every current parameter, given or defaulted.
    fn build(&mut self) -> Option<RoleSpec> {
        let body: Map<String, Value> = PARAMS
            .iter()
            .map(|p| {
                let value = self
                    .given
                    .remove(p.name)
                    .unwrap_or_else(|| fields::default_value(p.kind));
                (p.name.to_string(), value)
            })
            .collect();
        let strings = |param: &str| -> Vec<String> {
            body[param]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        if let Some(problem) = super::limits::body_problem(&body) {
            self.error(None, problem);
            return None;
        }
        let namespace_selector = parse_selector(&body[SELECTOR]).ok().flatten().map(|m| m.0);
        Some(RoleSpec {
            key: self.key.to_string(),
            name: self.name.clone(),
            service_account_names: strings(NAMES),
            namespaces: strings(NAMESPACES),
            namespace_selector,
            body: body.into(),
        })
    }
}
