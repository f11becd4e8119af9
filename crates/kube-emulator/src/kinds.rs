//! The table of served kinds. Discovery, routing, validation and printing are all driven by
//! [`KINDS`], so serving another kind is one more entry here (plus, if it has special rules, a
//! hook in `strategy`).

/// How Kubernetes validates `metadata.name` for a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (ConfigMaps, Secrets, ServiceAccounts, Leases, Events...).
    Subdomain,
    /// RFC 1123 label (Namespaces).
    Label,
    /// Any path segment: not "." or "..", no "/" or "%" (RBAC objects, so "system:x" is valid).
    PathSegment,
}

/// Which server-side printer (Table columns) a kind uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Printer {
    Namespace,
    ServiceAccount,
    Secret,
    ConfigMap,
    Event,
    Role,
    Binding,
    Lease,
    /// Name and creation date, the apiserver's default table.
    Default,
}

/// How objects of a kind are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Stored under the kind's own plural.
    Own,
    /// Stored as core/v1 Events and converted on the way in and out (events.k8s.io/v1).
    EventsV1,
    /// Never stored: the request is answered and forgotten (TokenReview).
    Virtual,
}

/// A subresource served under a kind (e.g. `serviceaccounts/token`).
#[derive(Debug)]
pub struct Subresource {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Debug)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub subresources: &'static [Subresource],
    pub name_rule: NameRule,
    /// Whether Kubernetes maintains `metadata.generation` (bumped on non-metadata changes).
    pub generation: bool,
    /// Whether DELETE answers with the deleted object (`ReturnDeletedObject` in the apiserver's
    /// registry) rather than a `Status` of success.
    pub delete_returns_object: bool,
    pub printer: Printer,
    pub storage: Storage,
    /// Field selectors accepted besides metadata.name and metadata.namespace.
    pub extra_fields: &'static [&'static str],
}

/// Every verb of a stored kind (also what the bootstrap roles grant as read-write).
pub(crate) const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const CREATE_ONLY: &[&str] = &["create"];

/// A stored kind with every verb, default name rules and no short names; entries override what
/// differs.
const fn crud(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    printer: Printer,
) -> Kind {
    Kind {
        group,
        version: "v1",
        kind,
        plural,
        singular,
        namespaced,
        verbs: CRUD,
        short_names: &[],
        subresources: &[],
        name_rule: NameRule::Subdomain,
        generation: false,
        delete_returns_object: false,
        printer,
        storage: Storage::Own,
        extra_fields: &[],
    }
}

/// A create-only, never stored, cluster-scoped kind: the reviews (TokenReview, access reviews).
const fn review(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
) -> Kind {
    Kind {
        verbs: CREATE_ONLY,
        printer: Printer::Default,
        storage: Storage::Virtual,
        ..crud(group, kind, plural, singular, false, Printer::Default)
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";

/// The fields core/v1 Events can be selected on (events.k8s.io/v1 selects on the same stored
/// fields under its own names: see `selectors`).
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// Every kind the emulator serves, in discovery order.
pub static KINDS: &[Kind] = &[
    Kind {
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        short_names: &["ns"],
        name_rule: NameRule::Label,
        delete_returns_object: true,
        extra_fields: &["status.phase"],
        ..crud(
            "",
            "Namespace",
            "namespaces",
            "namespace",
            false,
            Printer::Namespace,
        )
    },
    Kind {
        short_names: &["sa"],
        subresources: &[Subresource {
            name: "token",
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: CREATE_ONLY,
        }],
        delete_returns_object: true,
        ..crud(
            "",
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            true,
            Printer::ServiceAccount,
        )
    },
    Kind {
        extra_fields: &["type"],
        ..crud("", "Secret", "secrets", "secret", true, Printer::Secret)
    },
    Kind {
        short_names: &["cm"],
        ..crud(
            "",
            "ConfigMap",
            "configmaps",
            "configmap",
            true,
            Printer::ConfigMap,
        )
    },
    Kind {
        short_names: &["ev"],
        extra_fields: EVENT_FIELDS,
        ..crud("", "Event", "events", "event", true, Printer::Event)
    },
    Kind {
        short_names: &["ev"],
        extra_fields: EVENT_FIELDS,
        storage: Storage::EventsV1,
        ..crud(
            "events.k8s.io",
            "Event",
            "events",
            "event",
            true,
            Printer::Event,
        )
    },
    Kind {
        name_rule: NameRule::PathSegment,
        ..crud(
            RBAC,
            "ClusterRole",
            "clusterroles",
            "clusterrole",
            false,
            Printer::Role,
        )
    },
    Kind {
        name_rule: NameRule::PathSegment,
        ..crud(
            RBAC,
            "ClusterRoleBinding",
            "clusterrolebindings",
            "clusterrolebinding",
            false,
            Printer::Binding,
        )
    },
    Kind {
        name_rule: NameRule::PathSegment,
        ..crud(RBAC, "Role", "roles", "role", true, Printer::Role)
    },
    Kind {
        name_rule: NameRule::PathSegment,
        ..crud(
            RBAC,
            "RoleBinding",
            "rolebindings",
            "rolebinding",
            true,
            Printer::Binding,
        )
    },
    crud(
        "coordination.k8s.io",
        "Lease",
        "leases",
        "lease",
        true,
        Printer::Lease,
    ),
    review(
        "authentication.k8s.io",
        "TokenReview",
        "tokenreviews",
        "tokenreview",
    ),
    review(
        "authentication.k8s.io",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
    ),
    review(
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
    ),
    review(
        "authorization.k8s.io",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
    ),
    // Read-only and always empty: there are no custom resources here, but kubectl lists CRDs
    // before it validates a manifest of a kind the server cannot validate itself (a
    // TokenReview: no PATCH), and fails when the list does.
    Kind {
        verbs: &["get", "list", "watch"],
        short_names: &["crd", "crds"],
        ..crud(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            "customresourcedefinition",
            false,
            Printer::Default,
        )
    },
];

impl Kind {
    /// `apiVersion` as objects carry it: "v1" or "group/version".
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The key objects of this kind are stored under (both Event kinds share core storage).
    pub fn storage_key(&self) -> &'static str {
        self.plural
    }

    /// "configmaps" or "clusterroles.rbac.authorization.k8s.io", as Status messages name resources.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether the kind serves `verb` on its main resource.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// The subresource named `name`, if served.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

/// The kind served at `group`/`version` under `plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The kind that stores objects of `storage_key` in its own representation (core for events).
pub fn for_storage(storage_key: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.storage == Storage::Own && k.plural == storage_key)
}

/// The API groups served under /apis (everything but core), in discovery order, deduplicated.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for k in KINDS.iter().filter(|k| !k.group.is_empty()) {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_unique_per_group_version_plural() {
        for (i, a) in KINDS.iter().enumerate() {
            for b in &KINDS[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{} served twice",
                    a.plural
                );
            }
        }
    }

    #[test]
    fn events_share_core_storage() {
        let v1 = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(v1.storage, Storage::EventsV1);
        assert_eq!(for_storage(v1.storage_key()).unwrap().api_version(), "v1");
    }

    #[test]
    fn qualified_resource_names_group() {
        assert_eq!(
            find("", "v1", "configmaps").unwrap().qualified_resource(),
            "configmaps"
        );
        assert_eq!(
            find("rbac.authorization.k8s.io", "v1", "roles")
                .unwrap()
                .qualified_resource(),
            "roles.rbac.authorization.k8s.io"
        );
    }

    #[test]
    fn groups_are_listed_once() {
        let g = groups();
        assert_eq!(
            g.iter()
                .filter(|(g, _)| *g == "rbac.authorization.k8s.io")
                .count(),
            1
        );
        assert!(g.contains(&("coordination.k8s.io", "v1")));
    }
}
