//! User impersonation (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` headers, what
//! `kubectl --as` sends): with RBAC on, the requester needs the `impersonate` verb on each of
//! them; the request then acts as the impersonated user.

use http::HeaderMap;

use crate::auth::UserInfo;
use crate::auth::rbac::{self, Attributes, Decision};
use crate::context::Shared;
use crate::status::ApiError;

const SA_PREFIX: &str = "system:serviceaccount:";

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

fn impersonate_attributes(
    api_group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> Attributes {
    Attributes {
        verb: "impersonate".into(),
        api_group: api_group.into(),
        resource: resource.into(),
        subresource: String::new(),
        namespace: namespace.into(),
        name: name.into(),
        path: String::new(),
        resource_request: true,
    }
}

/// The identity a request acts as: `user`, or whom it impersonates (if allowed).
pub fn apply(shared: &Shared, user: UserInfo, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let target = values(headers, "impersonate-user").into_iter().next();
    let groups = values(headers, "impersonate-group");
    let uid = values(headers, "impersonate-uid").into_iter().next();
    let Some(username) = target else {
        if groups.is_empty() && uid.is_none() {
            return Ok(user);
        }
        return Err(ApiError::bad_request(
            "requested impersonation of groups or a uid without impersonating a user",
        ));
    };
    let sa = username
        .strip_prefix(SA_PREFIX)
        .and_then(|rest| rest.split_once(':'));
    let mut checks = vec![match sa {
        Some((ns, name)) => impersonate_attributes("", "serviceaccounts", ns, name),
        None => impersonate_attributes("", "users", "", &username),
    }];
    checks.extend(
        groups
            .iter()
            .map(|g| impersonate_attributes("", "groups", "", g)),
    );
    if let Some(uid) = &uid {
        checks.push(impersonate_attributes(
            "authentication.k8s.io",
            "uids",
            "",
            uid,
        ));
    }
    if shared.rbac {
        for attrs in &checks {
            if let Decision::Deny { .. } = rbac::authorize(&user, attrs, &shared.store) {
                return Err(ApiError::forbidden(
                    rbac::forbidden_message(&user, attrs),
                    None,
                    &attrs.name,
                ));
            }
        }
    }
    let mut impersonated = groups;
    if let Some((ns, _)) = sa
        && impersonated.is_empty()
    {
        impersonated.push("system:serviceaccounts".into());
        impersonated.push(format!("system:serviceaccounts:{ns}"));
    }
    if username != "system:anonymous" && !impersonated.iter().any(|g| g == "system:authenticated") {
        impersonated.push("system:authenticated".into());
    }
    tracing::debug!(requester = %user.username, impersonated = %username, "impersonating");
    Ok(UserInfo {
        username,
        uid: uid.unwrap_or_default(),
        groups: impersonated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_all_read() {
        let mut h = HeaderMap::new();
        h.append("impersonate-group", "a".parse().unwrap());
        h.append("impersonate-group", "b".parse().unwrap());
        assert_eq!(values(&h, "impersonate-group"), ["a", "b"]);
        assert!(values(&h, "impersonate-user").is_empty());
    }

    #[test]
    fn service_account_usernames_are_checked_as_service_accounts() {
        let a = impersonate_attributes("", "serviceaccounts", "ns", "sa");
        assert_eq!(
            (a.verb.as_str(), a.namespace.as_str()),
            ("impersonate", "ns")
        );
    }
}
