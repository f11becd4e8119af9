//! Privilege-escalation prevention for writes of RBAC objects (Kubernetes' policy-based RBAC
//! storage): a user may only create a role holding rules they hold themselves, or bind a role
//! whose rules they hold, unless granted `escalate` / `bind` on that role.
use super::resolver::{
    RoleRef, Wording, aggregate, binding_parts, role_reference_rules, rules_for,
};
use super::rules::{PolicyRule, compact, compact_string, covers, rules_of};
use super::{
    Attributes, Decision, RBAC_GROUP, authorize, forbidden_status_message, qualified_resource,
};
use crate::auth::authn::go_quoted_list;
use crate::auth::{MASTERS_GROUP, ObjectLookup, UserInfo};
use serde_json::Value;
use std::collections::BTreeSet;

/// See [`super::check_rbac_write`]. `namespace` is "" for cluster-scoped objects.
pub(super) fn check(
    user: &UserInfo,
    resource: &str,
    namespace: &str,
    object: &Value,
    lookup: &dyn ObjectLookup,
) -> Decision {
    // Kubernetes' EscalationAllowed: the privileged group may grant anything.
    if user.groups.iter().any(|g| g == MASTERS_GROUP) {
        return Decision::Allow;
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let result = match resource {
        "roles" => check_role(user, resource, namespace, name, object, lookup),
        "clusterroles" => check_role(user, resource, "", name, object, lookup)
            .and_then(|()| check_aggregation_rule(user, object, lookup)),
        "rolebindings" => check_binding(user, namespace, object, lookup),
        "clusterrolebindings" => check_binding(user, "", object, lookup),
        _ => Ok(()),
    };
    match result {
        Ok(()) => Decision::Allow,
        Err(Refusal::Forbidden(detail)) => Decision::Deny {
            reason: forbidden_status_message(
                &qualified_resource(resource, RBAC_GROUP),
                name,
                &detail,
            ),
        },
        Err(Refusal::Other(message)) => Decision::Deny { reason: message },
    }
}

enum Refusal {
    /// Becomes `<resource> "<name>" is forbidden: <detail>`.
    Forbidden(String),
    /// A message that stands on its own (e.g. the referenced role does not exist).
    Other(String),
}

fn check_role(
    user: &UserInfo,
    resource: &str,
    namespace: &str,
    name: &str,
    object: &Value,
    lookup: &dyn ObjectLookup,
) -> Result<(), Refusal> {
    let escalate = Attributes {
        verb: "escalate".into(),
        api_group: RBAC_GROUP.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        resource_request: true,
        ..Attributes::default()
    };
    if authorize(user, &escalate, lookup) == Decision::Allow {
        return Ok(());
    }
    confirm_no_escalation(user, namespace, &rules_of(object), lookup).map_err(Refusal::Forbidden)
}

/// An aggregationRule can gather any rule, so setting one takes every permission there is.
fn check_aggregation_rule(
    user: &UserInfo,
    object: &Value,
    lookup: &dyn ObjectLookup,
) -> Result<(), Refusal> {
    if object.get("aggregationRule").is_none_or(Value::is_null) {
        return Ok(());
    }
    let full_authority = [
        PolicyRule {
            api_groups: vec!["*".into()],
            resources: vec!["*".into()],
            verbs: vec!["*".into()],
            ..PolicyRule::default()
        },
        PolicyRule {
            non_resource_urls: vec!["*".into()],
            verbs: vec!["*".into()],
            ..PolicyRule::default()
        },
    ];
    confirm_no_escalation(user, "", &full_authority, lookup).map_err(|_| {
        Refusal::Forbidden("must have cluster-admin privileges to use the aggregationRule".into())
    })
}

fn check_binding(
    user: &UserInfo,
    namespace: &str,
    object: &Value,
    lookup: &dyn ObjectLookup,
) -> Result<(), Refusal> {
    let (role_ref, _) = binding_parts(object);
    if bind_authorized(user, &role_ref, namespace, lookup) {
        return Ok(());
    }
    let rules = role_reference_rules(&role_ref, namespace, lookup, Wording::Registry)
        .map_err(Refusal::Other)?;
    confirm_no_escalation(user, namespace, &rules, lookup).map_err(Refusal::Forbidden)
}

/// Kubernetes' BindingAuthorized: `bind` on the referenced role, checked in the binding's
/// namespace so a RoleBinding may be delegated per namespace.
fn bind_authorized(
    user: &UserInfo,
    role_ref: &RoleRef,
    namespace: &str,
    lookup: &dyn ObjectLookup,
) -> bool {
    let resource = match role_ref.kind.as_str() {
        "ClusterRole" => "clusterroles",
        "Role" => "roles",
        _ => return false,
    };
    let bind = Attributes {
        verb: "bind".into(),
        api_group: role_ref.api_group.clone(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: role_ref.name.clone(),
        resource_request: true,
        ..Attributes::default()
    };
    authorize(user, &bind, lookup) == Decision::Allow
}

/// Kubernetes' ConfirmNoEscalation: the user's own rules in `namespace` must cover `rules`.
fn confirm_no_escalation(
    user: &UserInfo,
    namespace: &str,
    rules: &[PolicyRule],
    lookup: &dyn ObjectLookup,
) -> Result<(), String> {
    let (owned, errors) = rules_for(user, namespace, lookup, Wording::Registry);
    let (covered, missing) = covers(&owned, rules);
    if covered {
        return Ok(());
    }
    let missing: BTreeSet<String> = compact(missing).iter().map(compact_string).collect();
    let mut message = format!(
        "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        user.username,
        go_quoted_list(&user.groups),
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
    if !errors.is_empty() {
        message = format!("{message}; resolution errors: [{}]", aggregate(&errors));
    }
    Err(message)
}

#[cfg(test)]
mod tests;
