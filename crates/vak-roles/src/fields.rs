//! The parameters of a Kubernetes auth role, exactly as OpenBao 2.7.2 accepts them
//! (`bao path-help auth/kubernetes/role/x`), with their types and the defaults Vault applies.
//!
//! The table drives parsing, the full body sent on every write and the normalisation of Vault's
//! answers, so the three can never disagree about which parameters exist.

use serde_json::Value;

/// How a parameter's value is read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// List of strings: a JSON array of strings or a comma-separated string.
    List,
    /// List of CIDR blocks or IP addresses.
    CidrList,
    /// Duration: integer seconds or a duration string; stored in seconds.
    Duration,
    /// Non-negative integer.
    Int,
    /// Boolean.
    Bool,
    /// Free-form string.
    Text,
    /// `token_type`.
    TokenType,
    /// `alias_name_source`.
    AliasNameSource,
    /// `bound_service_account_namespace_selector`: a label selector with `matchLabels` only.
    Selector,
}

/// One parameter Vault accepts on `auth/kubernetes/<mount>/role/<name>`.
#[derive(Debug)]
pub(crate) struct Param {
    /// Parameter name.
    pub name: &'static str,
    /// Type.
    pub kind: Kind,
}

/// Every non-deprecated parameter, in the order Vault returns them (alphabetical). The written
/// body holds exactly these keys.
pub(crate) const PARAMS: &[Param] = &[
    p("alias_name_source", Kind::AliasNameSource),
    p("audience", Kind::Text),
    p("bound_service_account_names", Kind::List),
    p("bound_service_account_namespace_selector", Kind::Selector),
    p("bound_service_account_namespaces", Kind::List),
    p("token_bound_cidrs", Kind::CidrList),
    p("token_explicit_max_ttl", Kind::Duration),
    p("token_max_ttl", Kind::Duration),
    p("token_no_default_policy", Kind::Bool),
    p("token_num_uses", Kind::Int),
    p("token_period", Kind::Duration),
    p("token_policies", Kind::List),
    // OpenBao only: HashiCorp Vault ignores it (with a warning), so the IP binding a user asks
    // for would silently not happen there; parse.rs warns when it is set.
    p("token_strictly_bind_ip", Kind::Bool),
    p("token_ttl", Kind::Duration),
    p("token_type", Kind::TokenType),
];

/// Deprecated aliases and the parameter each stands for. Vault still accepts them and echoes
/// them in reads while they are set; when both are given it silently uses the `token_*` one.
pub(crate) const DEPRECATED: &[(&str, &str)] = &[
    ("bound_cidrs", "token_bound_cidrs"),
    ("max_ttl", "token_max_ttl"),
    ("num_uses", "token_num_uses"),
    ("period", "token_period"),
    ("policies", "token_policies"),
    ("ttl", "token_ttl"),
];

/// Parameter names shared with the rest of the module, so a typo is a compile error.
pub(crate) const NAMES: &str = "bound_service_account_names";
pub(crate) const NAMESPACES: &str = "bound_service_account_namespaces";
pub(crate) const SELECTOR: &str = "bound_service_account_namespace_selector";
pub(crate) const TOKEN_TYPE: &str = "token_type";
pub(crate) const TOKEN_TTL: &str = "token_ttl";
pub(crate) const TOKEN_MAX_TTL: &str = "token_max_ttl";
pub(crate) const TOKEN_PERIOD: &str = "token_period";
pub(crate) const TOKEN_NUM_USES: &str = "token_num_uses";
pub(crate) const TOKEN_BOUND_CIDRS: &str = "token_bound_cidrs";
pub(crate) const TOKEN_STRICTLY_BIND_IP: &str = "token_strictly_bind_ip";

/// The role name is taken from the ConfigMap key; Vault ignores a `name` in the body.
pub(crate) const NAME: &str = "name";

const fn p(name: &'static str, kind: Kind) -> Param {
    Param { name, kind }
}

/// The parameter called `name`, if it is a current (non-deprecated) one.
pub(crate) fn param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name == name)
}

/// The current parameter a deprecated alias stands for.
pub(crate) fn deprecated_target(name: &str) -> Option<&'static str> {
    DEPRECATED
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, target)| *target)
}

/// The value Vault gives a parameter that was never set.
pub(crate) fn default_value(kind: Kind) -> Value {
    match kind {
        Kind::List | Kind::CidrList => Value::Array(Vec::new()),
        Kind::Duration | Kind::Int => Value::from(0u64),
        Kind::Bool => Value::Bool(false),
        Kind::Text | Kind::Selector => Value::String(String::new()),
        Kind::TokenType => Value::String("default".into()),
        Kind::AliasNameSource => Value::String("serviceaccount_uid".into()),
    }
}

/// The known parameter closest to an unknown one, for "did you mean" hints.
pub(crate) fn suggest(unknown: &str) -> Option<&'static str> {
    let lower = unknown.to_ascii_lowercase();
    PARAMS
        .iter()
        .map(|p| p.name)
        .chain(DEPRECATED.iter().map(|(alias, _)| *alias))
        .chain([NAME])
        .map(|known| (strsim::damerau_levenshtein(&lower, known), known))
        // Allow about one edit per four characters: catches typos, not unrelated words.
        .filter(|(distance, known)| *distance <= (known.len() / 4).max(2))
        .min_by_key(|(distance, known)| (*distance, *known))
        .map(|(_, known)| known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        let names: Vec<_> = PARAMS.iter().map(|p| p.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for (alias, target) in DEPRECATED {
            assert!(param(alias).is_none(), "{alias} is not current");
            assert!(param(target).is_some(), "{target} is current");
        }
    }

    #[test]
    fn suggestions() {
        let cases = [
            ("token_polices", Some("token_policies")),
            ("token_policy", Some("token_policies")),
            ("Token_TTL", Some("token_ttl")),
            (
                "bound_service_account_name",
                Some("bound_service_account_names"),
            ),
            (
                "bound_service_account_namespace",
                Some("bound_service_account_namespaces"),
            ),
            ("polices", Some("policies")),
            ("audiences", Some("audience")),
            ("tokentype", Some("token_type")),
            ("color", None),
            ("x", None),
        ];
        for (input, want) in cases {
            assert_eq!(suggest(input), want, "{input}");
        }
    }
}
