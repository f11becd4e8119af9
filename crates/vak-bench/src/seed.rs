//! What a benchmark cluster holds, and what a controller must make of it: computed here from
//! the seed's own description, never read back from a controller, so convergence means the
//! same thing for every controller.
//!
//! For `N` namespaces and `R` roles:
//! - namespaces `ns-0` .. `ns-<N-1>` and `vault-auth`; every 10th `ns-<i>` is labelled
//!   `team=t<k>` with `max(1, N/100)` teams, so a team has about ten namespaces;
//! - role `role-<r>` binds `sa-<r>` (odd roles also `shared`) in five namespaces spread over the
//!   range; with the full flavor, every 10th role (r % 10 == 1) also binds a pattern `ns-<p>*`
//!   that matches about eleven namespaces, and every 10th another (r % 10 == 2) a namespace
//!   selector on a team;
//! - the namespaces the namespace-created scenario adds (`new-<j>`, bound by name by role
//!   `j % R`; with the full flavor odd `j` are `ns-<p>-new-<j>`, which a pattern binds) do not
//!   exist at first.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::cli::Flavor;

/// The namespace of the controller and of its ConfigMap (the original tool's default).
pub const CONTROLLER_NAMESPACE: &str = "vault-auth";
/// The ConfigMap of roles.
pub const CONFIGMAP: &str = "vault-auth-roles";
/// The `--vault-mount` every controller gets: two segments, as the README's policy expects.
pub const MOUNT: &str = "bench/cluster";
/// How many namespaces each role lists by name.
const EXPLICIT_PER_ROLE: usize = 5;

/// A namespace and its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Namespace {
    fn new(name: String) -> Namespace {
        Namespace {
            name,
            labels: BTreeMap::new(),
        }
    }
}

/// One role of the ConfigMap, in the terms the seed describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSpec {
    /// ConfigMap key and Vault role name.
    pub name: String,
    /// `bound_service_account_names`.
    pub names: Vec<String>,
    /// `bound_service_account_namespaces`: names and patterns with a trailing `*`.
    pub namespaces: Vec<String>,
    /// `bound_service_account_namespace_selector` as one `matchLabels` pair.
    pub selector: Option<(String, String)>,
    /// `token_policies`: what edits change.
    pub policies: Vec<String>,
}

impl RoleSpec {
    /// The ConfigMap value: the README's format, the selector as an object.
    pub fn configmap_body(&self) -> String {
        let mut body = self.common_body();
        if let Some((k, v)) = &self.selector {
            body["bound_service_account_namespace_selector"] = json!({"matchLabels": {k: v}});
        }
        body.to_string()
    }

    /// The body to write to Vault directly (the baseline): Vault's API takes the selector as a
    /// JSON string.
    pub fn vault_body(&self) -> Value {
        let mut body = self.common_body();
        if let Some((k, v)) = &self.selector {
            body["bound_service_account_namespace_selector"] =
                Value::String(json!({"matchLabels": {k: v}}).to_string());
        }
        body
    }

    fn common_body(&self) -> Value {
        json!({
            "bound_service_account_names": self.names,
            "bound_service_account_namespaces": self.namespaces,
            "token_policies": self.policies,
            "token_ttl": "1h",
        })
    }

    /// Whether the role binds ServiceAccounts in `ns`: listed by name, matched by a trailing-`*`
    /// pattern (the only patterns the seed writes), or selected by its labels.
    pub fn binds(&self, ns: &Namespace) -> bool {
        let listed = self.namespaces.iter().any(|n| match n.strip_suffix('*') {
            Some(prefix) => ns.name.starts_with(prefix),
            None => *n == ns.name,
        });
        let selected = self
            .selector
            .as_ref()
            .is_some_and(|(k, v)| ns.labels.get(k) == Some(v));
        listed || selected
    }

    /// Whether Vault's answer for this role (`data` of a GET) holds what the seed says:
    /// the same policies (in order), names and namespaces (as sets) and a selector exactly
    /// when the role has one.
    pub fn matches_vault(&self, data: &Value) -> bool {
        let strings = |key: &str| -> Option<Vec<String>> {
            data[key]
                .as_array()?
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
        let selector_set = data["bound_service_account_namespace_selector"]
            .as_str()
            .is_some_and(|s| !s.is_empty());
        strings("token_policies").as_deref() == Some(self.policies.as_slice())
            && strings("bound_service_account_names").map(|v| set(&v)) == Some(set(&self.names))
            && strings("bound_service_account_namespaces").map(|v| set(&v))
                == Some(set(&self.namespaces))
            && selector_set == self.selector.is_some()
    }
}

/// The seed of one size.
#[derive(Clone, Debug)]
pub struct Seed {
    pub namespaces: usize,
    pub roles: usize,
    pub flavor: Flavor,
    pub namespace_creates: usize,
}

impl Seed {
    /// Teams of the labelled namespaces.
    fn teams(&self) -> usize {
        (self.namespaces / 100).max(1)
    }

    /// The namespaces created before the controller starts (`vault-auth` last).
    pub fn namespaces(&self) -> Vec<Namespace> {
        let mut all: Vec<Namespace> = (0..self.namespaces)
            .map(|i| {
                let mut ns = Namespace::new(format!("ns-{i}"));
                if i % 10 == 0 {
                    let team = (i / 10) % self.teams();
                    ns.labels.insert("team".into(), format!("t{team}"));
                }
                ns
            })
            .collect();
        all.push(Namespace::new(CONTROLLER_NAMESPACE.into()));
        all
    }

    /// The prefix `p` of pattern `ns-<p>*` for the `k`-th pattern role: `ns-<p>` and
    /// `ns-<p>0` .. `ns-<p>9` exist and `ns-<p>00` does not, so it matches eleven namespaces.
    /// None when there are too few namespaces for such a pattern.
    fn pattern_prefix(&self, k: usize) -> Option<usize> {
        let n = self.namespaces;
        let lo = n.div_ceil(100).max(1);
        let hi = n.checked_sub(10)? / 10;
        (lo <= hi).then(|| lo + k % (hi - lo + 1))
    }

    fn has_patterns(&self) -> bool {
        self.flavor == Flavor::Full && self.roles > 1 && self.pattern_prefix(0).is_some()
    }

    /// The roles as seeded (initial policies `p-<r>`).
    pub fn roles(&self) -> Vec<RoleSpec> {
        let n = self.namespaces;
        let stride = (n / EXPLICIT_PER_ROLE).max(1);
        (0..self.roles)
            .map(|r| {
                let mut names = vec![format!("sa-{r}")];
                if r % 2 == 1 {
                    names.push("shared".into());
                }
                let mut namespaces: Vec<String> = Vec::new();
                for k in 0..EXPLICIT_PER_ROLE {
                    let name = format!("ns-{}", (r * 7 + k * stride) % n);
                    if !namespaces.contains(&name) {
                        namespaces.push(name);
                    }
                }
                let mut selector = None;
                if self.flavor == Flavor::Full && r % 10 == 1 {
                    if let Some(p) = self.pattern_prefix(r / 10) {
                        namespaces.push(format!("ns-{p}*"));
                    }
                } else if self.flavor == Flavor::Full && r % 10 == 2 {
                    selector = Some(("team".into(), format!("t{}", (r / 10) % self.teams())));
                }
                for j in 0..self.namespace_creates {
                    if !self.created_by_pattern(j) && j % self.roles == r {
                        namespaces.push(format!("new-{j}"));
                    }
                }
                RoleSpec {
                    name: format!("role-{r}"),
                    names,
                    namespaces,
                    selector,
                    policies: vec![format!("p-{r}")],
                }
            })
            .collect()
    }

    /// Whether the `j`-th created namespace is one a pattern binds (not named in any role).
    fn created_by_pattern(&self, j: usize) -> bool {
        j % 2 == 1 && self.has_patterns()
    }

    /// The namespaces the namespace-created scenario adds, in order.
    pub fn created_namespaces(&self) -> Vec<Namespace> {
        (0..self.namespace_creates)
            .map(|j| {
                if self.created_by_pattern(j) {
                    // The pattern of the ((j / 2) % pattern roles)-th pattern role.
                    let pattern_roles = self.roles.saturating_sub(1) / 10 + 1;
                    let p = self
                        .pattern_prefix((j / 2) % pattern_roles)
                        .expect("has_patterns checked there is a pattern");
                    Namespace::new(format!("ns-{p}-new-{j}"))
                } else {
                    Namespace::new(format!("new-{j}"))
                }
            })
            .collect()
    }

    /// The ConfigMap's data.
    pub fn configmap_data(roles: &[RoleSpec]) -> BTreeMap<String, String> {
        roles
            .iter()
            .map(|r| (r.name.clone(), r.configmap_body()))
            .collect()
    }
}

/// The ServiceAccounts (namespace, name) the roles call for in these namespaces.
pub fn expected_service_accounts(
    roles: &[RoleSpec],
    namespaces: &[Namespace],
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for ns in namespaces {
        for role in roles.iter().filter(|r| r.binds(ns)) {
            for name in &role.names {
                out.insert((ns.name.clone(), name.clone()));
            }
        }
    }
    out
}

/// The policies edit `i` gives role `i % roles`, with a prefix per scenario (`edit`, `burst`)
/// so no two edits of a run write the same value.
pub fn edited_policies(prefix: &str, i: usize) -> Vec<String> {
    vec![format!("{prefix}-{i}")]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(namespaces: usize, roles: usize, flavor: Flavor) -> Seed {
        Seed {
            namespaces,
            roles,
            flavor,
            namespace_creates: 3,
        }
    }

    #[test]
    fn quick_size_uses_every_feature() {
        let s = seed(30, 5, Flavor::Full);
        let roles = s.roles();
        assert_eq!(roles.len(), 5);
        assert!(roles[1].namespaces.contains(&"ns-1*".to_string()));
        assert_eq!(roles[2].selector, Some(("team".into(), "t0".into())));
        let namespaces = s.namespaces();
        assert_eq!(namespaces.len(), 31);
        // ns-1* matches ns-1 and ns-10..ns-19.
        let matched = namespaces.iter().filter(|n| roles[1].binds(n)).count();
        assert!(matched >= 11, "{matched}");
        // The selector picks ns-0, ns-10, ns-20 (one team).
        let selected: Vec<_> = namespaces
            .iter()
            .filter(|n| roles[2].binds(n))
            .map(|n| n.name.as_str())
            .collect();
        for ns in ["ns-0", "ns-10", "ns-20"] {
            assert!(selected.contains(&ns), "{selected:?}");
        }
        let created = s.created_namespaces();
        assert_eq!(
            created.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["new-0", "ns-1-new-1", "new-2"]
        );
        // Each created namespace is bound by some role, by name or by the pattern.
        for ns in &created {
            assert!(
                !expected_service_accounts(&roles, std::slice::from_ref(ns)).is_empty(),
                "{}",
                ns.name
            );
        }
        // None of them exists at first, so nothing is expected there yet.
        let expected = expected_service_accounts(&roles, &namespaces);
        assert!(expected.iter().all(|(ns, _)| ns.starts_with("ns-")));
    }

    #[test]
    fn explicit_flavor_lists_namespaces_by_name_only() {
        let s = seed(1000, 100, Flavor::Explicit);
        for role in s.roles() {
            assert!(role.selector.is_none());
            assert!(role.namespaces.iter().all(|n| !n.contains('*')));
        }
        assert!(
            s.created_namespaces()
                .iter()
                .all(|n| n.name.starts_with("new-"))
        );
        // 100 roles x 5 namespaces x 1.5 names, some shared names coincide.
        let expected = expected_service_accounts(&s.roles(), &s.namespaces());
        assert!((500..=750).contains(&expected.len()), "{}", expected.len());
    }

    #[test]
    fn patterns_stay_small_at_every_size() {
        for n in [30, 100, 1000, 10000] {
            let s = seed(n, n / 10, Flavor::Full);
            let namespaces = s.namespaces();
            for role in s.roles().iter().filter(|r| r.name.ends_with('1')) {
                let matched = namespaces.iter().filter(|ns| role.binds(ns)).count();
                assert!(
                    (11..=16).contains(&matched),
                    "n={n} {}: {matched}",
                    role.name
                );
            }
        }
    }

    #[test]
    fn bodies_for_the_configmap_and_for_vault() {
        let role = &seed(100, 10, Flavor::Full).roles()[2];
        let cm: Value = serde_json::from_str(&role.configmap_body()).unwrap();
        assert_eq!(
            cm["bound_service_account_namespace_selector"],
            json!({"matchLabels": {"team": "t0"}})
        );
        let vault = role.vault_body();
        assert_eq!(
            vault["bound_service_account_namespace_selector"],
            json!(r#"{"matchLabels":{"team":"t0"}}"#)
        );
        // What Vault answers: lists as written, the selector as a string, durations in seconds.
        let mut answer = vault.clone();
        answer["token_ttl"] = json!(3600);
        assert!(role.matches_vault(&answer));
        answer["token_policies"] = json!(["other"]);
        assert!(!role.matches_vault(&answer));
    }
}
