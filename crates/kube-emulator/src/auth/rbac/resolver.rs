//! Which rules apply to a user: ClusterRoleBindings everywhere, RoleBindings in their namespace,
//! each granting the rules of the Role or ClusterRole it references (Kubernetes'
//! `DefaultRuleResolver`).
use super::rules::{PolicyRule, rules_of};
use crate::auth::{ObjectLookup, UserInfo, service_account_username};
use serde::Deserialize;
use serde_json::Value;

/// The `roleRef` of a binding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RoleRef {
    #[serde(rename = "apiGroup", default)]
    pub api_group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// One of a binding's `subjects`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Subject {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// Reads a RoleBinding's or ClusterRoleBinding's roleRef and subjects.
pub fn binding_parts(binding: &Value) -> (RoleRef, Vec<Subject>) {
    let role_ref = binding
        .get("roleRef")
        .and_then(|r| RoleRef::deserialize(r).ok())
        .unwrap_or_default();
    let subjects = binding
        .get("subjects")
        .and_then(Value::as_array)
        .map(|subjects| {
            subjects
                .iter()
                .filter_map(|s| Subject::deserialize(s).ok())
                .collect()
        })
        .unwrap_or_default();
    (role_ref, subjects)
}

/// How a missing role is worded: kube-apiserver's authorizer reads informer caches
/// (`clusterrole.rbac.authorization.k8s.io "x" not found`), the RBAC registry reads storage
/// (`clusterroles.rbac.authorization.k8s.io "x" not found`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wording {
    Authorizer,
    Registry,
}

/// The rules a binding's roleRef grants, resolved in the binding's namespace ("" for
/// ClusterRoleBindings).
pub fn role_reference_rules(
    role_ref: &RoleRef,
    binding_namespace: &str,
    lookup: &dyn ObjectLookup,
    wording: Wording,
) -> Result<Vec<PolicyRule>, String> {
    let (resource, singular, namespace) = match role_ref.kind.as_str() {
        "Role" if binding_namespace.is_empty() => {
            return Err("must provide namespace when getting role".into());
        }
        "Role" => ("roles", "role", Some(binding_namespace)),
        "ClusterRole" => ("clusterroles", "clusterrole", None),
        other => return Err(format!("unsupported role reference kind: {other:?}")),
    };
    let role = lookup
        .get(resource, namespace, &role_ref.name)
        .ok_or_else(|| {
            let word = match wording {
                Wording::Authorizer => singular,
                Wording::Registry => resource,
            };
            format!(
                "{word}.rbac.authorization.k8s.io {:?} not found",
                role_ref.name
            )
        })?;
    Ok(rules_of(&role))
}

/// Whether a binding subject names the user. A ServiceAccount subject without namespace means
/// one in the binding's namespace.
pub fn applies_to_user(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.username == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let namespace = if subject.namespace.is_empty() {
                binding_namespace
            } else {
                &subject.namespace
            };
            !namespace.is_empty()
                && user.username == service_account_username(namespace, &subject.name)
        }
        _ => false,
    }
}

/// All rules that apply to `user` for requests in `namespace` ("" = cluster scope: only
/// ClusterRoleBindings count), and the errors met resolving them (a binding to a missing role).
pub fn rules_for(
    user: &UserInfo,
    namespace: &str,
    lookup: &dyn ObjectLookup,
    wording: Wording,
) -> (Vec<PolicyRule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut visit = |bindings: Vec<Value>, binding_namespace: &str| {
        for binding in bindings {
            let (role_ref, subjects) = binding_parts(&binding);
            if !subjects
                .iter()
                .any(|s| applies_to_user(user, s, binding_namespace))
            {
                continue;
            }
            match role_reference_rules(&role_ref, binding_namespace, lookup, wording) {
                Ok(granted) => rules.extend(granted),
                Err(error) => errors.push(error),
            }
        }
    };
    visit(lookup.list("clusterrolebindings", None), "");
    if !namespace.is_empty() {
        visit(lookup.list("rolebindings", Some(namespace)), namespace);
    }
    (rules, errors)
}

/// Why RBAC allows `attrs` for `user`, worded as kube-apiserver's RBAC authorizer words it in
/// an access review: the first binding (ClusterRoleBindings, then the namespace's
/// RoleBindings) whose role has a rule that allows the request, e.g.
/// `RBAC: allowed by RoleBinding "b/ns" of Role "r" to ServiceAccount "sa/ns"`.
pub fn allowed_by(
    user: &UserInfo,
    attrs: &super::Attributes,
    lookup: &dyn ObjectLookup,
) -> Option<String> {
    let scopes = [
        (
            "ClusterRoleBinding",
            lookup.list("clusterrolebindings", None),
            "",
        ),
        (
            "RoleBinding",
            if attrs.namespace.is_empty() {
                Vec::new()
            } else {
                lookup.list("rolebindings", Some(&attrs.namespace))
            },
            attrs.namespace.as_str(),
        ),
    ];
    for (binding_kind, bindings, namespace) in scopes {
        for binding in bindings {
            let (role_ref, subjects) = binding_parts(&binding);
            let Some(subject) = subjects
                .iter()
                .find(|s| applies_to_user(user, s, namespace))
            else {
                continue;
            };
            let Ok(rules) = role_reference_rules(&role_ref, namespace, lookup, Wording::Authorizer)
            else {
                continue;
            };
            if !rules.iter().any(|r| super::rules::allows(r, attrs)) {
                continue;
            }
            let with_namespace = |name: &str, ns: &str| {
                if ns.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}/{ns}")
                }
            };
            let name = binding
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let subject_ns = if subject.kind == "ServiceAccount" && subject.namespace.is_empty() {
                namespace
            } else {
                subject.namespace.as_str()
            };
            return Some(format!(
                "RBAC: allowed by {binding_kind} {:?} of {} {:?} to {} {:?}",
                with_namespace(name, namespace),
                role_ref.kind,
                role_ref.name,
                subject.kind,
                with_namespace(&subject.name, subject_ns),
            ));
        }
    }
    None
}

/// Go's `utilerrors.NewAggregate(errs).Error()`: one error as is, several as `[a, b]`.
pub fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::service_account_user;
    use crate::auth::testing::MemoryLookup;
    use serde_json::json;

    fn subject(kind: &str, name: &str, namespace: &str) -> Subject {
        Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let sa = service_account_user("ns", "sa", "u");
        // (kind, name, subject namespace, binding namespace, applies)
        let cases = [
            ("ServiceAccount", "sa", "ns", "", true),
            ("ServiceAccount", "sa", "", "ns", true),
            ("ServiceAccount", "sa", "", "", false),
            ("ServiceAccount", "sa", "other", "ns", false),
            ("Group", "system:serviceaccounts:ns", "", "", true),
            ("Group", "system:serviceaccounts:other", "", "", false),
            ("User", "system:serviceaccount:ns:sa", "", "", true),
            ("User", "sa", "", "", false),
            ("Robot", "sa", "ns", "", false),
        ];
        for (kind, name, namespace, binding_namespace, applies) in cases {
            let subject = subject(kind, name, namespace);
            assert_eq!(
                applies_to_user(&sa, &subject, binding_namespace),
                applies,
                "{subject:?} in {binding_namespace:?}"
            );
        }
    }

    #[test]
    fn missing_roles_are_reported_in_each_wording() {
        let lookup = MemoryLookup::default();
        let role_ref = RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "gone".into(),
        };
        assert_eq!(
            role_reference_rules(&role_ref, "", &lookup, Wording::Authorizer),
            Err(r#"clusterrole.rbac.authorization.k8s.io "gone" not found"#.into())
        );
        let role_ref = RoleRef {
            kind: "Role".into(),
            ..role_ref
        };
        assert_eq!(
            role_reference_rules(&role_ref, "ns", &lookup, Wording::Registry),
            Err(r#"roles.rbac.authorization.k8s.io "gone" not found"#.into())
        );
    }

    #[test]
    fn access_reviews_name_the_binding_that_allows() {
        let mut lookup = MemoryLookup::default();
        lookup.put(
            "roles",
            json!({"metadata": {"name": "r", "namespace": "a"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
        );
        lookup.put(
            "rolebindings",
            json!({"metadata": {"name": "b", "namespace": "a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "a"}]}),
        );
        let user = service_account_user("a", "sa", "u");
        let mut attrs = crate::auth::rbac::Attributes {
            verb: "get".into(),
            resource: "configmaps".into(),
            namespace: "a".into(),
            resource_request: true,
            ..Default::default()
        };
        assert_eq!(
            allowed_by(&user, &attrs, &lookup).as_deref(),
            Some(r#"RBAC: allowed by RoleBinding "b/a" of Role "r" to ServiceAccount "sa/a""#)
        );
        attrs.verb = "delete".into();
        assert_eq!(allowed_by(&user, &attrs, &lookup), None);
    }

    #[test]
    fn role_bindings_only_count_in_their_namespace() {
        let mut lookup = MemoryLookup::default();
        lookup.put(
            "roles",
            json!({"metadata": {"name": "r", "namespace": "a"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
        );
        lookup.put(
            "rolebindings",
            json!({"metadata": {"name": "b", "namespace": "a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]}),
        );
        let user = service_account_user("ns", "sa", "u");
        assert_eq!(
            rules_for(&user, "a", &lookup, Wording::Authorizer).0.len(),
            1
        );
        assert!(
            rules_for(&user, "b", &lookup, Wording::Authorizer)
                .0
                .is_empty()
        );
        assert!(
            rules_for(&user, "", &lookup, Wording::Authorizer)
                .0
                .is_empty()
        );
    }

    #[test]
    fn aggregate_matches_go() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
