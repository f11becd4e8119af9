//! Authorization (Kubernetes' RBAC authorizer), privilege-escalation checks for writes of RBAC
//! objects, the 403 message, and the built-in roles every cluster has.
mod bootstrap;
mod escalation;
pub mod resolver;
pub mod rules;

use super::{MASTERS_GROUP, ObjectLookup, UserInfo};
use resolver::{Wording, aggregate, rules_for};

/// The API group of RBAC objects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Request attributes, as Kubernetes' authorizer sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// get list watch create update patch delete deletecollection (+ bind, escalate, impersonate);
    /// for non-resource requests the lower-cased HTTP method (get, post, put, delete...).
    pub verb: String,
    /// "" for core.
    pub api_group: String,
    /// Plural, e.g. "serviceaccounts"; "" for non-resource requests.
    pub resource: String,
    /// e.g. "token", "" if none.
    pub subresource: String,
    /// "" for cluster-scoped or all-namespaces requests.
    pub namespace: String,
    /// "" when the request has no name (list, create without name).
    pub name: String,
    /// URL path, used for non-resource requests (e.g. "/api", "/version").
    pub path: String,
    pub resource_request: bool,
}

/// An authorization decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// `reason` is the complete message of the 403 Status to send, worded as Kubernetes words it
    /// (for `authorize` that is [`forbidden_message`], plus `: RBAC: <errors>` when bindings
    /// refer to missing roles, as kube-apiserver appends them).
    Deny {
        reason: String,
    },
}

/// RBAC evaluation: ClusterRoles via ClusterRoleBindings (cluster-wide) and via RoleBindings (in
/// the binding's namespace), Roles via RoleBindings; subjects User, Group, ServiceAccount; rules
/// with apiGroups, resources (incl. "resource/subresource" and "*"), resourceNames, verbs,
/// nonResourceURLs (with trailing "*" prefix match); aggregationRule need not be supported.
/// Members of `system:masters` are always allowed, as kube-apiserver's privileged-group
/// authorizer (which runs before RBAC) allows them.
pub fn authorize(user: &UserInfo, attrs: &Attributes, lookup: &dyn ObjectLookup) -> Decision {
    if user.groups.iter().any(|g| g == MASTERS_GROUP) {
        return Decision::Allow;
    }
    let (granted, errors) = rules_for(user, &attrs.namespace, lookup, Wording::Authorizer);
    if granted.iter().any(|rule| rules::allows(rule, attrs)) {
        return Decision::Allow;
    }
    let mut reason = forbidden_message(user, attrs);
    if !errors.is_empty() {
        reason = format!("{reason}: RBAC: {}", aggregate(&errors));
    }
    Decision::Deny { reason }
}

/// Kubernetes' privilege-escalation checks for writes of RBAC objects: creating/updating a
/// (Cluster)RoleBinding needs the `bind` verb on the referenced role or all of the role's
/// permissions; creating/updating a (Cluster)Role needs `escalate` on it or all of its rules.
/// `resource` is "roles"|"rolebindings"|"clusterroles"|"clusterrolebindings".
///
/// Differences from kube-apiserver, which the signature cannot carry: the `escalate` check uses
/// the object's name also on create (Kubernetes checks create with an empty name, so there only
/// an unrestricted `escalate` grant helps), and a binding to a role that does not exist is
/// denied here with the `... not found` message, where Kubernetes answers 404.
pub fn check_rbac_write(
    user: &UserInfo,
    resource: &str,
    namespace: Option<&str>,
    new_object: &serde_json::Value,
    lookup: &dyn ObjectLookup,
) -> Decision {
    escalation::check(
        user,
        resource,
        namespace.unwrap_or_default(),
        new_object,
        lookup,
    )
}

/// The message Kubernetes puts in a 403 Status, e.g.
/// `serviceaccounts "x" is forbidden: User "system:serviceaccount:ns:sa" cannot create resource "serviceaccounts" in API group "" in the namespace "default"`
/// (and the non-resource / cluster-scope / subresource variants, worded as Kubernetes words them).
pub fn forbidden_message(user: &UserInfo, attrs: &Attributes) -> String {
    let username = &user.username;
    let verb = &attrs.verb;
    let detail = if !attrs.resource_request {
        format!("User {username:?} cannot {verb} path {:?}", attrs.path)
    } else {
        let mut resource = attrs.resource.clone();
        if !attrs.subresource.is_empty() {
            resource = format!("{resource}/{}", attrs.subresource);
        }
        let group = &attrs.api_group;
        let scope = if attrs.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", attrs.namespace)
        };
        format!(
            "User {username:?} cannot {verb} resource {resource:?} in API group {group:?} {scope}"
        )
    };
    // kube-apiserver HTML-escapes the authorizer's part of the message.
    let detail = detail
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let target = qualified_resource(&attrs.resource, &attrs.api_group);
    forbidden_status_message(&target, &attrs.name, &detail)
}

/// `resource.group`, or just `resource` for the core group (Go's `GroupResource.String()`).
fn qualified_resource(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// The message of Kubernetes' `NewForbidden(groupResource, name, err)`.
fn forbidden_status_message(qualified_resource: &str, name: &str, detail: &str) -> String {
    match (qualified_resource.is_empty(), name.is_empty()) {
        (true, _) => format!("forbidden: {detail}"),
        (false, true) => format!("{qualified_resource} is forbidden: {detail}"),
        (false, false) => format!("{qualified_resource} {name:?} is forbidden: {detail}"),
    }
}

/// Built-in objects every cluster has, as (resource, object) pairs, with the rules Kubernetes ships:
/// ClusterRoles cluster-admin, admin, edit, view, system:auth-delegator, system:discovery,
/// system:basic-user, system:public-info-viewer; ClusterRoleBindings cluster-admin (group
/// system:masters), system:discovery, system:basic-user, system:public-info-viewer (group
/// system:authenticated / system:unauthenticated as Kubernetes binds them). Labelled
/// kubernetes.io/bootstrapping=rbac-defaults and annotated rbac.authorization.kubernetes.io/autoupdate=true.
/// Also the `system:aggregate-to-{admin,edit,view}` roles admin/edit/view are aggregated from;
/// admin/edit/view carry their aggregationRule and, already filled in, the rules Kubernetes'
/// aggregation controller would give them.
pub fn bootstrap_objects() -> Vec<(String, serde_json::Value)> {
    bootstrap::objects()
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
