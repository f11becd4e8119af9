//! Server-side printing: `meta.k8s.io/v1` Tables with the columns kubectl users know per kind,
//! so `kubectl get` prints what it prints against a real cluster.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::kinds::{Kind, Printer};
use crate::meta;

/// Human-friendly age, as Kubernetes' `duration.HumanDuration` prints it ("5s", "3m20s", "2d").
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age_of(timestamp: Option<&str>, now: DateTime<Utc>) -> String {
    match timestamp.and_then(|t| meta::age_seconds(t, now)) {
        Some(s) => human_duration(s),
        None => "<unknown>".into(),
    }
}

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        priority,
        description,
    }
}

// The columns and their descriptions are kube-apiserver 1.37's (its printers take the
// descriptions from the types' documentation).
const NAME: Column = col(
    "Name",
    "string",
    0,
    "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
);
const CREATION_TIMESTAMP: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const AGE: Column = col("Age", "string", 0, CREATION_TIMESTAMP);

fn columns(kind: &Kind) -> Vec<Column> {
    match kind.printer {
        Printer::Namespace => vec![
            NAME,
            col("Status", "string", 0, "The status of the namespace"),
            AGE,
        ],
        Printer::ServiceAccount => vec![NAME, AGE],
        Printer::Secret => vec![
            NAME,
            col(
                "Type",
                "string",
                0,
                "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
            ),
            col(
                "Data",
                "string",
                0,
                "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
            ),
            AGE,
        ],
        Printer::ConfigMap => vec![
            NAME,
            col(
                "Data",
                "string",
                0,
                "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
            ),
            AGE,
        ],
        Printer::Event => vec![
            col(
                "Last Seen",
                "string",
                0,
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            col(
                "Type",
                "string",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future",
            ),
            col(
                "Reason",
                "string",
                0,
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            col(
                "Object",
                "string",
                0,
                "The object that this event is about.",
            ),
            col(
                "Subobject",
                "string",
                1,
                "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
            ),
            col(
                "Source",
                "string",
                1,
                "The component reporting this event. Should be a short machine understandable string.",
            ),
            col(
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
            col(
                "First Seen",
                "string",
                1,
                "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
            ),
            col(
                "Count",
                "string",
                1,
                "The number of times this event has occurred.",
            ),
            Column {
                priority: 1,
                ..NAME
            },
        ],
        Printer::Role | Printer::Default => {
            vec![NAME, col("Created At", "date", 0, CREATION_TIMESTAMP)]
        }
        Printer::Binding => binding_columns(!kind.namespaced),
        Printer::Lease => vec![
            NAME,
            col(
                "Holder",
                "string",
                0,
                "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
            ),
            AGE,
        ],
    }
}

/// A RoleBinding's or ClusterRoleBinding's columns (their descriptions name the kind).
fn binding_columns(cluster: bool) -> Vec<Column> {
    let [role, users, groups, accounts] = if cluster {
        [
            "roleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
            "Users in the clusterRoleBinding",
            "Groups in the clusterRoleBinding",
            "ServiceAccounts in the clusterRoleBinding",
        ]
    } else {
        [
            "roleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
            "Users in the roleBinding",
            "Groups in the roleBinding",
            "ServiceAccounts in the roleBinding",
        ]
    };
    vec![
        NAME,
        col("Role", "string", 0, role),
        AGE,
        col("Users", "string", 1, users),
        col("Groups", "string", 1, groups),
        col("ServiceAccounts", "string", 1, accounts),
    ]
}

fn count(v: Option<&Value>) -> usize {
    match v {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn subjects_of(obj: &Value, kind: &str) -> String {
    let Some(subjects) = obj.get("subjects").and_then(Value::as_array) else {
        return String::new();
    };
    subjects
        .iter()
        .filter(|s| s["kind"] == kind)
        .map(|s| {
            let name = s["name"].as_str().unwrap_or("");
            match (kind, s["namespace"].as_str()) {
                ("ServiceAccount", Some(ns)) => format!("{ns}/{name}"),
                _ => name.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn event_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last = obj["lastTimestamp"]
        .as_str()
        .or(obj["eventTime"].as_str())
        .or(obj["series"]["lastObservedTime"].as_str());
    let first = obj["firstTimestamp"].as_str().or(obj["eventTime"].as_str());
    let involved = &obj["involvedObject"];
    let object = format!(
        "{}/{}",
        involved["kind"].as_str().unwrap_or("").to_lowercase(),
        involved["name"].as_str().unwrap_or("")
    );
    // "component, instance" from the legacy source or the reporting controller (kubectl's
    // formatEventSource).
    let first_set = |a: &Value, b: &Value| {
        a.as_str()
            .filter(|s| !s.is_empty())
            .or(b.as_str())
            .unwrap_or("")
            .to_string()
    };
    let component = first_set(&obj["source"]["component"], &obj["reportingComponent"]);
    let instance = first_set(&obj["source"]["host"], &obj["reportingInstance"]);
    let source = match (component.is_empty(), instance.is_empty()) {
        (true, _) => "<unknown>".to_string(),
        (false, true) => component,
        (false, false) => format!("{component}, {instance}"),
    };
    let count = obj["count"]
        .as_i64()
        .or(obj["series"]["count"].as_i64())
        .unwrap_or(1);
    vec![
        json!(age_of(last, now)),
        json!(obj["type"].as_str().unwrap_or("")),
        json!(obj["reason"].as_str().unwrap_or("")),
        json!(object),
        json!(involved["fieldPath"].as_str().unwrap_or("")),
        json!(source),
        json!(obj["message"].as_str().unwrap_or("")),
        json!(age_of(first, now)),
        json!(count),
        json!(meta::name(obj)),
    ]
}

fn cells(printer: Printer, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = json!(meta::name(obj));
    let created = meta::metadata(obj)
        .get("creationTimestamp")
        .and_then(Value::as_str);
    let age = json!(age_of(created, now));
    match printer {
        Printer::Namespace => vec![
            name,
            json!(obj["status"]["phase"].as_str().unwrap_or("")),
            age,
        ],
        Printer::ServiceAccount => vec![name, age],
        Printer::Secret => vec![
            name,
            json!(obj["type"].as_str().unwrap_or("")),
            json!(count(obj.get("data"))),
            age,
        ],
        Printer::ConfigMap => vec![
            name,
            json!(count(obj.get("data")) + count(obj.get("binaryData"))),
            age,
        ],
        Printer::Event => event_cells(obj, now),
        Printer::Role | Printer::Default => vec![name, json!(created.unwrap_or(""))],
        Printer::Binding => vec![
            name,
            json!(format!(
                "{}/{}",
                obj["roleRef"]["kind"].as_str().unwrap_or(""),
                obj["roleRef"]["name"].as_str().unwrap_or("")
            )),
            age,
            json!(subjects_of(obj, "User")),
            json!(subjects_of(obj, "Group")),
            json!(subjects_of(obj, "ServiceAccount")),
        ],
        Printer::Lease => vec![
            name,
            json!(obj["spec"]["holderIdentity"].as_str().unwrap_or("")),
            age,
        ],
    }
}

/// What each row carries besides its cells (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter (default Metadata, as Kubernetes).
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// The metadata-only form of an object (`PartialObjectMetadata`).
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A Table of `objects` of `kind`, given as stored (the printers read core/v1 Event fields for
/// both Event APIs, as Kubernetes' do); rows carry the objects as `kind`'s clients see them.
/// `with_columns` is false for watch events after the first.
pub fn table(
    kind: &Kind,
    objects: &[&Value],
    rv: Option<u64>,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let now = Utc::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(kind.printer, o, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(o),
                IncludeObject::Object => row["object"] = crate::strategy::from_storage(kind, o),
            }
            row
        })
        .collect();
    let defs: Vec<Value> = if with_columns {
        columns(kind)
            .into_iter()
            .map(|c| {
                let format = if c.name == "Name" { "name" } else { "" };
                json!({"name": c.name, "type": c.kind, "format": format, "description": c.description, "priority": c.priority})
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut metadata = json!({});
    if let Some(rv) = rv {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds;

    #[test]
    fn human_durations_match_kubernetes() {
        for (s, want) in [
            (-5, "<invalid>"),
            (0, "0s"),
            (119, "119s"),
            (200, "3m20s"),
            (240, "4m"),
            (60 * 45, "45m"),
            (3600 * 5 + 60 * 7, "5h7m"),
            (3600 * 30, "30h"),
            (86400 * 3 + 3600 * 2, "3d2h"),
            (86400 * 40, "40d"),
            (86400 * 365 * 3 + 86400 * 10, "3y10d"),
            (86400 * 365 * 10, "10y"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn secret_rows_have_type_and_data_count() {
        let k = kinds::find("", "v1", "secrets").unwrap();
        let obj = json!({"metadata": {"name": "s", "creationTimestamp": meta::now_rfc3339()}, "type": "Opaque", "data": {"a": "", "b": ""}});
        let t = table(k, &[&obj], Some(7), IncludeObject::Metadata, true);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "Type", "Data", "Age"]);
        assert_eq!(t["rows"][0]["cells"], json!(["s", "Opaque", 2, "0s"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn binding_rows_name_role_and_subjects() {
        let k = kinds::find("rbac.authorization.k8s.io", "v1", "clusterrolebindings").unwrap();
        let obj = json!({
            "metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}, {"kind": "Group", "name": "g"}]
        });
        let t = table(k, &[&obj], None, IncludeObject::None, true);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["b", "ClusterRole/view", "<unknown>", "", "g", "ns/sa"])
        );
        assert!(t["rows"][0].get("object").is_none());
    }
}
