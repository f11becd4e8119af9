//! The events.k8s.io/v1 <-> core/v1 Event conversion: both APIs serve the same stored objects.

use serde_json::{Value, json};

use crate::kinds::{Kind, Storage};
use crate::validation::FieldError;

/// events.k8s.io/v1 field names and their core/v1 counterparts (the rest are shared).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename_fields(obj: &mut Value, from_v1: bool) {
    let Some(m) = obj.as_object_mut() else { return };
    for (v1, core) in EVENT_FIELDS {
        let (from, to) = if from_v1 { (v1, core) } else { (core, v1) };
        if let Some(v) = m.remove(*from) {
            m.insert(to.to_string(), v);
        }
    }
}

/// Kubernetes' validation of a new Event (in stored, core/v1 form), as the API it came
/// through sees it: every Event passes the legacy rules; events.k8s.io/v1 adds strict ones.
pub fn create_errors(via: &Kind, event: &Value) -> Vec<FieldError> {
    let text = |p: &str| event.pointer(p).and_then(Value::as_str).unwrap_or("");
    let set = |p: &str| event.pointer(p).is_some_and(|v| !v.is_null());
    let namespace = text("/metadata/namespace");
    let involved_ns = text("/involvedObject/namespace");
    let v1 = via.storage == Storage::EventsV1;
    let mut errors = Vec::new();
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    if !set("/eventTime") {
        let agrees = if involved_ns.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_ns
        };
        if !agrees {
            errors.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errors.push(mismatch());
        }
        let controller = if v1 {
            "reportingController"
        } else {
            "reportingComponent"
        };
        for (path, field) in [
            ("/reportingComponent", controller),
            ("/reportingInstance", "reportingInstance"),
            ("/action", "action"),
            ("/reason", "reason"),
        ] {
            if text(path).is_empty() {
                errors.push(FieldError::required(field, ""));
            }
        }
    }
    if v1 {
        if !set("/eventTime") {
            errors.push(FieldError::required("eventTime", ""));
        }
        // The core/v1 compatibility fields are for Events written through core/v1 only (what
        // Kubernetes' ValidateEventCreate says of events.k8s.io/v1 and newer).
        for (path, field) in [
            ("/firstTimestamp", "deprecatedFirstTimestamp"),
            ("/lastTimestamp", "deprecatedLastTimestamp"),
        ] {
            if set(path) {
                errors.push(FieldError::invalid(field, "", "needs to be unset"));
            }
        }
        if event.pointer("/count").and_then(Value::as_i64).unwrap_or(0) != 0 {
            errors.push(FieldError::invalid(
                "deprecatedCount",
                "",
                "needs to be unset",
            ));
        }
        if !text("/source/component").is_empty() || !text("/source/host").is_empty() {
            errors.push(FieldError::invalid(
                "deprecatedSource",
                "",
                "needs to be unset",
            ));
        }
        let kind = text("/type");
        if kind != "Normal" && kind != "Warning" {
            errors.push(FieldError::invalid(
                "type",
                "",
                &format!("has invalid value: {kind}"),
            ));
        }
    }
    errors
}

/// Converts an object of `kind` (as a client sent it) to the stored representation.
pub fn to_storage(kind: &Kind, mut obj: Value) -> Value {
    if kind.storage == Storage::EventsV1 {
        rename_fields(&mut obj, true);
        obj["apiVersion"] = json!("v1");
        obj["kind"] = json!("Event");
    }
    // Zero values a client read back (and sends again, in an update) are not stored, so they
    // are never taken for fields the writer set.
    if kind.kind == "Event"
        && let Some(m) = obj.as_object_mut()
    {
        m.retain(|k, v| !(CORE_ZERO.contains(&k.as_str()) && *v == zero_value(k)));
    }
    obj
}

/// Fields of an Event that Go's encoding writes even when unset (not `omitempty`, or structs),
/// with their zero values, per API.
const CORE_ZERO: &[&str] = &[
    "involvedObject",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "eventTime",
    "reportingComponent",
    "reportingInstance",
];
const V1_ZERO: &[&str] = &[
    "eventTime",
    "deprecatedSource",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
];

fn zero_value(field: &str) -> Value {
    match field {
        "involvedObject" | "source" | "regarding" | "deprecatedSource" => json!({}),
        "reportingComponent" | "reportingInstance" => json!(""),
        _ => Value::Null,
    }
}

fn fill_zero_values(obj: &mut Value, fields: impl Iterator<Item = &'static str>) {
    if let Some(m) = obj.as_object_mut() {
        for f in fields {
            m.entry(f).or_insert_with(|| zero_value(f));
        }
    }
}

/// Converts a stored object to the representation of `kind` (what a client of that API sees).
pub fn from_storage(kind: &Kind, stored: &Value) -> Value {
    let mut obj = stored.clone();
    if kind.storage == Storage::EventsV1 {
        rename_fields(&mut obj, false);
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
        fill_zero_values(&mut obj, V1_ZERO.iter().copied());
    } else if kind.kind == "Event" {
        fill_zero_values(&mut obj, CORE_ZERO.iter().copied());
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds;

    #[test]
    fn events_convert_both_ways() {
        let v1 = kinds::find("events.k8s.io", "v1", "events").unwrap();
        let sent = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "regarding": {"kind": "Pod"}, "note": "hi", "reportingController": "c"});
        let stored = to_storage(v1, sent.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["kind"], "Pod");
        assert_eq!(stored["message"], "hi");
        let mut served = sent.clone();
        served["eventTime"] = Value::Null;
        served["deprecatedSource"] = json!({});
        served["deprecatedFirstTimestamp"] = Value::Null;
        served["deprecatedLastTimestamp"] = Value::Null;
        assert_eq!(from_storage(v1, &stored), served);
        let core = kinds::find("", "v1", "events").unwrap();
        assert_eq!(from_storage(core, &stored)["reportingInstance"], "");
    }

    #[test]
    fn only_core_v1_takes_the_compatibility_fields() {
        let event = json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "namespace": "ns"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingComponent": "c", "reportingInstance": "i", "action": "A", "reason": "R",
            "type": "Normal",
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
            "count": 1, "source": {"component": "c"}
        });
        let core = kinds::find("", "v1", "events").unwrap();
        assert_eq!(create_errors(core, &event), vec![]);
        let v1 = kinds::find("events.k8s.io", "v1", "events").unwrap();
        let fields: Vec<String> = create_errors(v1, &event)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "deprecatedFirstTimestamp",
                "deprecatedLastTimestamp",
                "deprecatedCount",
                "deprecatedSource"
            ]
        );
    }
}
