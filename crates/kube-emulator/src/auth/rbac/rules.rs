//! PolicyRules: matching a request (Kubernetes' `RuleAllows`) and one rule set covering another
//! (the escalation check's `Covers`, with its breakdown and compaction for messages).
use super::Attributes;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// An RBAC PolicyRule (rbac.authorization.k8s.io/v1). Absent and null lists read as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default, deserialize_with = "nullable")]
    pub api_groups: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub resources: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs", default, deserialize_with = "nullable")]
    pub non_resource_urls: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub verbs: Vec<String>,
}

fn nullable<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// The `rules` of a Role or ClusterRole object (rules that do not parse are ignored: the core
/// validates what it stores).
pub fn rules_of(role: &serde_json::Value) -> Vec<PolicyRule> {
    role.get("rules")
        .and_then(serde_json::Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .filter_map(|rule| serde_json::from_value(rule.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

const ALL: &str = "*";

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|item| has(set, item))
}

/// Whether `rule` allows the request (Kubernetes' `RuleAllows`).
pub fn allows(rule: &PolicyRule, attrs: &Attributes) -> bool {
    let verb_matches = has(&rule.verbs, ALL) || has(&rule.verbs, &attrs.verb);
    if !attrs.resource_request {
        return verb_matches
            && rule
                .non_resource_urls
                .iter()
                .any(|url| non_resource_url_covers(url, &attrs.path));
    }
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let group_matches = has(&rule.api_groups, ALL) || has(&rule.api_groups, &attrs.api_group);
    let resource_matches = rule.resources.iter().any(|resource| {
        resource == ALL
            || *resource == combined
            // "*/status" grants the subresource of every resource.
            || (!attrs.subresource.is_empty()
                && resource.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    });
    let name_matches = rule.resource_names.is_empty() || has(&rule.resource_names, &attrs.name);
    verb_matches && group_matches && resource_matches && name_matches
}

/// An exact URL, or a prefix ending in "*" ("*" alone matches every path). Matching a request
/// and covering a rule in the escalation check use the same test.
fn non_resource_url_covers(owner: &str, path: &str) -> bool {
    owner == path
        || owner
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
}

/// Splits a rule into one rule per (group, resource, verb[, name]) and per (url, verb).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| vec![s.clone()];
    let mut atoms = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let atom = PolicyRule {
                    api_groups: one(group),
                    resources: one(resource),
                    verbs: one(verb),
                    ..PolicyRule::default()
                };
                for name in &rule.resource_names {
                    atoms.push(PolicyRule {
                        resource_names: one(name),
                        ..atom.clone()
                    });
                }
                if rule.resource_names.is_empty() {
                    atoms.push(atom);
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            atoms.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: one(verb),
                ..PolicyRule::default()
            });
        }
    }
    atoms
}

fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, ALL) || has_all(&owner.api_groups, &sub.api_groups);
    let resources = has(&owner.resources, ALL)
        || sub.resources.iter().all(|resource| {
            has(&owner.resources, resource)
                || resource
                    .split_once('/')
                    .is_some_and(|(_, sub)| has(&owner.resources, &format!("*/{sub}")))
        });
    let urls = sub.non_resource_urls.iter().all(|url| {
        owner
            .non_resource_urls
            .iter()
            .any(|owned| non_resource_url_covers(owned, url))
    });
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

/// Whether `owner` rules grant everything `servant` rules do; if not, the atoms they lack.
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> = servant
        .iter()
        .flat_map(breakdown)
        .filter(|atom| !owner.iter().any(|rule| rule_covers(rule, atom)))
        .collect();
    (missing.is_empty(), missing)
}

/// Merges atoms of one group/resource/name that differ only in verbs (Kubernetes' CompactRules).
pub fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut compacted = Vec::new();
    let mut simple: BTreeMap<(String, String, Option<String>), PolicyRule> = BTreeMap::new();
    for rule in rules {
        let is_simple = rule.api_groups.len() == 1
            && rule.resources.len() == 1
            && rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty();
        if !is_simple {
            compacted.push(rule);
            continue;
        }
        let key = (
            rule.api_groups[0].clone(),
            rule.resources[0].clone(),
            rule.resource_names.first().cloned(),
        );
        match simple.get_mut(&key) {
            Some(existing) => existing.verbs.extend(rule.verbs),
            None => {
                simple.insert(key, rule);
            }
        }
    }
    compacted.extend(simple.into_values());
    compacted
}

/// A rule as Kubernetes prints it in escalation errors:
/// `{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}`.
pub fn compact_string(rule: &PolicyRule) -> String {
    let fields = [
        ("APIGroups", &rule.api_groups),
        ("Resources", &rule.resources),
        ("NonResourceURLs", &rule.non_resource_urls),
        ("ResourceNames", &rule.resource_names),
        ("Verbs", &rule.verbs),
    ];
    let parts: Vec<String> = fields
        .iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(label, values)| format!("{label}:{}", crate::auth::authn::go_quoted_list(values)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests;
