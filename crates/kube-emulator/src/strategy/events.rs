//! The events.k8s.io/v1 <-> core/v1 Event conversion: both APIs serve the same stored objects.

use serde_json::{Value, json};

use crate::kinds::{Kind, Storage};

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

/// Converts an object of `kind` (as a client sent it) to the stored representation.
pub fn to_storage(kind: &Kind, mut obj: Value) -> Value {
    if kind.storage == Storage::EventsV1 {
        rename_fields(&mut obj, true);
        obj["apiVersion"] = json!("v1");
        obj["kind"] = json!("Event");
    }
    obj
}

/// Converts a stored object to the representation of `kind` (what a client of that API sees).
pub fn from_storage(kind: &Kind, stored: &Value) -> Value {
    let mut obj = stored.clone();
    if kind.storage == Storage::EventsV1 {
        rename_fields(&mut obj, false);
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
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
        assert_eq!(from_storage(v1, &stored), sent);
    }
}
