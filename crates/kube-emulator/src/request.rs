//! Turning a request line into what it addresses: a discovery document, a resource (kind,
//! namespace, name, subresource), or an emulator endpoint; plus the query parameters Kubernetes
//! defines for lists, watches and writes, and the audit-style verb.

use http::Method;

use crate::kinds::{self, Kind, NameRule};
use crate::selectors::{self, LabelSelector};
use crate::validation::name_problems;

/// What a request path addresses.
#[derive(Debug)]
pub enum Route {
    Version,
    Health,
    CoreVersions,
    GroupList,
    Group(String),
    ResourceList {
        group: String,
        version: String,
    },
    Resource(Target),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`: the index.
    OpenApiV3Index,
    /// `/openapi/v3/<name>`: one document (`api/v1`, `apis/<group>/<version>`, `version`...).
    OpenApiV3(String),
    Emulator(String),
    NotFound,
}

/// A resource request's target.
#[derive(Debug)]
pub struct Target {
    pub kind: &'static Kind,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Requested through the deprecated `/watch/` path prefix.
    pub watch_prefix: bool,
}

fn decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Parses a request path.
pub fn route(path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::GroupList,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", "v1"] => Route::ResourceList {
            group: String::new(),
            version: "v1".into(),
        },
        ["apis", group, version] => Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", "v1", rest @ ..] => resource_route("", "v1", rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["emulator", rest @ ..] => Route::Emulator(rest.join("/")),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let target = |plural: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        let kind = kinds::find(group, version, plural)?;
        if namespace.is_some() && !kind.namespaced {
            return None;
        }
        Some(Target {
            kind,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
            watch_prefix,
        })
    };
    let namespaced_plural = |p: &str| kinds::find(group, version, p).is_some_and(|k| k.namespaced);
    let found = match rest {
        ["namespaces", ns, plural] if namespaced_plural(plural) => {
            target(plural, Some(ns), None, None)
        }
        ["namespaces", ns, plural, name] if namespaced_plural(plural) => {
            target(plural, Some(ns), Some(name), None)
        }
        ["namespaces", ns, plural, name, sub] if namespaced_plural(plural) => {
            target(plural, Some(ns), Some(name), Some(sub))
        }
        [plural] => target(plural, None, None, None),
        [plural, name] => target(plural, None, Some(name), None),
        [plural, name, sub] => target(plural, None, Some(name), Some(sub)),
        _ => None,
    };
    match found {
        // A namespaced kind is addressed by name only inside a namespace.
        Some(t) if t.kind.namespaced && t.namespace.is_none() && t.name.is_some() => {
            Route::NotFound
        }
        Some(t) => Route::Resource(t),
        None => Route::NotFound,
    }
}

/// The query parameters the emulator understands.
#[derive(Debug, Default)]
pub struct Query {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub watch: bool,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub allow_watch_bookmarks: bool,
    pub send_initial_events: bool,
    pub dry_run: bool,
    /// A `dryRun` value other than "All" (refused with 422 by the write it comes with).
    pub dry_run_invalid: Option<String>,
    pub field_manager: Option<String>,
    pub force: bool,
    pub include_object: Option<String>,
    pub field_validation: Option<String>,
    pub propagation_policy: Option<String>,
}

fn truthy(v: &str) -> bool {
    v.is_empty() || v == "true" || v == "1"
}

impl Query {
    /// Parses a query string; Err is the message of a 400.
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut q = Query::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "labelSelector" => q.label_selector = Some(value),
                "fieldSelector" => q.field_selector = Some(value),
                "limit" => {
                    q.limit = Some(
                        value
                            .parse()
                            .map_err(|_| format!("invalid limit: {value:?}"))?,
                    );
                }
                "continue" => q.continue_token = Some(value).filter(|v| !v.is_empty()),
                "watch" => q.watch = truthy(&value),
                "resourceVersion" => q.resource_version = Some(value),
                "resourceVersionMatch" => {
                    q.resource_version_match = Some(value).filter(|v| !v.is_empty())
                }
                "timeoutSeconds" => {
                    q.timeout_seconds = Some(
                        value
                            .parse()
                            .map_err(|_| format!("invalid timeoutSeconds: {value:?}"))?,
                    );
                }
                "allowWatchBookmarks" => q.allow_watch_bookmarks = truthy(&value),
                "sendInitialEvents" => q.send_initial_events = truthy(&value),
                "dryRun" if value == "All" => q.dry_run = true,
                "dryRun" => q.dry_run_invalid = Some(value),
                "fieldManager" => q.field_manager = Some(value),
                "force" => q.force = truthy(&value),
                "includeObject" => q.include_object = Some(value),
                "fieldValidation" => q.field_validation = Some(value),
                "propagationPolicy" => q.propagation_policy = Some(value),
                // pretty, timeout, gracePeriodSeconds... are
                // accepted and do not change the answer.
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The verb as Kubernetes' authorizer and audit log name it, or None for unsupported methods.
pub fn verb(method: &Method, target: &Target, query: &Query) -> Option<&'static str> {
    let collection = target.name.is_none();
    Some(match *method {
        Method::GET | Method::HEAD if query.watch || target.watch_prefix => "watch",
        Method::GET | Method::HEAD if collection => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => return None,
    })
}

/// The object name a list or watch of a collection is authorized for, derived as kube-apiserver
/// derives its request attributes: a `fieldSelector` that pins `metadata.name` (see
/// [`selectors::pinned_name`]) makes the request one for that name, so a rule with
/// `resourceNames` can allow it. As in Kubernetes the name counts only if it is a valid path
/// segment and the query decodes as list options (a malformed `labelSelector` drops it), and
/// never for the deprecated `/watch/` path prefix, whose verb comes from the path.
pub fn selected_name(verb: &str, target: &Target, query: &Query) -> Option<String> {
    if !matches!(verb, "list" | "watch") || target.name.is_some() || target.watch_prefix {
        return None;
    }
    let labels = query.label_selector.as_deref().unwrap_or_default();
    if LabelSelector::parse(labels).is_err() {
        return None;
    }
    let name = selectors::pinned_name(query.field_selector.as_deref()?)?;
    name_problems(NameRule::PathSegment, &name)
        .is_empty()
        .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match route(path) {
            Route::Resource(t) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn discovery_paths() {
        assert!(matches!(route("/version"), Route::Version));
        assert!(matches!(route("/api"), Route::CoreVersions));
        assert!(matches!(route("/apis"), Route::GroupList));
        assert!(matches!(
            route("/apis/rbac.authorization.k8s.io"),
            Route::Group(_)
        ));
        assert!(matches!(route("/api/v1"), Route::ResourceList { .. }));
        assert!(matches!(route("/healthz/ping"), Route::Health));
        assert!(matches!(route("/emulator/counters"), Route::Emulator(p) if p == "counters"));
        assert!(matches!(route("/openapi/v2"), Route::OpenApiV2));
        assert!(matches!(route("/openapi/v3"), Route::OpenApiV3Index));
        assert!(matches!(
            route("/openapi/v3/apis/coordination.k8s.io/v1"),
            Route::OpenApiV3(name) if name == "apis/coordination.k8s.io/v1"
        ));
    }

    #[test]
    fn resource_paths() {
        let t = target("/api/v1/namespaces/ns1/serviceaccounts/sa/token");
        assert_eq!(
            (
                t.kind.plural,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("serviceaccounts", Some("ns1"), Some("sa"), Some("token"))
        );
        let t = target("/api/v1/namespaces/ns1");
        assert_eq!(
            (t.kind.plural, t.name.as_deref()),
            ("namespaces", Some("ns1"))
        );
        let t = target("/api/v1/namespaces/ns1/status");
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = target("/api/v1/configmaps");
        assert!(t.namespace.is_none() && t.name.is_none());
        let t = target("/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Aauth-delegator");
        assert_eq!(t.name.as_deref(), Some("system:auth-delegator"));
        let t = target("/api/v1/watch/namespaces/a/configmaps");
        assert!(t.watch_prefix);
        assert!(matches!(route("/api/v1/configmaps/x"), Route::NotFound));
        assert!(matches!(
            route("/apis/rbac.authorization.k8s.io/v1/namespaces/a/clusterroles"),
            Route::NotFound
        ));
        assert!(matches!(
            route("/apis/apps/v1/deployments"),
            Route::NotFound
        ));
    }

    #[test]
    fn queries_and_verbs() {
        let q = Query::parse(Some(
            "labelSelector=a%3Db&limit=5&watch=1&dryRun=All&fieldManager=m",
        ))
        .unwrap();
        assert_eq!(q.label_selector.as_deref(), Some("a=b"));
        assert_eq!(q.limit, Some(5));
        assert!(q.watch && q.dry_run);
        assert!(Query::parse(Some("limit=x")).is_err());
        // Refused by the write it comes with, as an invalid options object.
        let bad = Query::parse(Some("dryRun=Some")).unwrap();
        assert_eq!(
            (bad.dry_run, bad.dry_run_invalid.as_deref()),
            (false, Some("Some"))
        );
        let t = target("/api/v1/namespaces/a/configmaps");
        assert_eq!(verb(&Method::GET, &t, &q), Some("watch"));
        assert_eq!(verb(&Method::GET, &t, &Query::default()), Some("list"));
        assert_eq!(
            verb(&Method::DELETE, &t, &Query::default()),
            Some("deletecollection")
        );
        assert_eq!(verb(&Method::OPTIONS, &t, &Query::default()), None);
    }

    #[test]
    fn field_selected_names_of_lists_and_watches() {
        let collection = target("/api/v1/namespaces/a/configmaps");
        let query = |q: &str| Query::parse(Some(q)).unwrap();
        let name = |verb: &str, t: &Target, q: &str| selected_name(verb, t, &query(q));
        let pinned = "fieldSelector=metadata.name%3Dx";
        assert_eq!(name("list", &collection, pinned).as_deref(), Some("x"));
        assert_eq!(
            name(
                "watch",
                &collection,
                "watch=1&fieldSelector=metadata.name%3D%3Dx"
            )
            .as_deref(),
            Some("x")
        );
        assert_eq!(
            name(
                "list",
                &collection,
                "fieldSelector=metadata.name%3Dx%2Cmetadata.namespace%3Da"
            )
            .as_deref(),
            Some("x")
        );
        for (verb, q) in [
            ("list", ""),
            ("list", "fieldSelector=metadata.name%21%3Dx"),
            ("list", "fieldSelector=metadata.namespace%3Da"),
            // Not a valid path segment, or list options that do not decode.
            ("list", "fieldSelector=metadata.name%3D.."),
            ("list", "fieldSelector=metadata.name%3Da%25b"),
            (
                "list",
                "fieldSelector=metadata.name%3Dx&labelSelector=a%20in%20b",
            ),
            // Only lists and watches; deletecollection is not narrowed by a selector.
            ("deletecollection", pinned),
        ] {
            assert_eq!(name(verb, &collection, q), None, "{verb} ?{q}");
        }
        let prefixed = target("/api/v1/watch/namespaces/a/configmaps");
        assert_eq!(name("watch", &prefixed, pinned), None);
        let named = target("/api/v1/namespaces/a/configmaps/y");
        assert_eq!(name("watch", &named, pinned), None);
    }
}
