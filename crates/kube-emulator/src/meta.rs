//! Small helpers over objects held as JSON: metadata accessors, timestamps, uids, names.

use serde_json::{Map, Value};

/// The current time as Kubernetes writes timestamps (RFC 3339, seconds, UTC "Z").
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A fresh object uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The suffix generateName gets: 5 characters from Kubernetes' alphabet (no vowels, no
/// look-alike digits, so generated names never spell words).
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `metadata` of an object (empty map when absent or not an object).
pub fn metadata(obj: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    obj.get("metadata")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// `metadata` of an object, created if missing.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

/// A string field of metadata, "" when absent.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    metadata(obj)
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name")
}

/// `metadata.namespace`.
pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace")
}

/// `metadata.resourceVersion` as a number (0 when absent or unparsable).
pub fn resource_version(obj: &Value) -> u64 {
    meta_str(obj, "resourceVersion").parse().unwrap_or(0)
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the object is being deleted (deletionTimestamp set).
pub fn is_deleting(obj: &Value) -> bool {
    metadata(obj)
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// A label value.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    metadata(obj).get("labels")?.get(key)?.as_str()
}

/// An annotation value.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    metadata(obj).get("annotations")?.get(key)?.as_str()
}

/// Sets an annotation, creating the map if needed.
pub fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    let md = metadata_mut(obj);
    let annotations = md
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    annotations[key] = Value::String(value.to_string());
}

/// Follows a dotted path ("spec.holderIdentity") through nested objects.
pub fn path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, part| v.get(part))
}

/// Seconds since an RFC 3339 timestamp, if it parses.
pub fn age_seconds(timestamp: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(timestamp).ok()?;
    Some((now - t.with_timezone(&chrono::Utc)).num_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accessors_tolerate_missing_fields() {
        let o = json!({"metadata": {"name": "a", "resourceVersion": "12", "finalizers": ["x"]}});
        assert_eq!(name(&o), "a");
        assert_eq!(namespace(&o), "");
        assert_eq!(resource_version(&o), 12);
        assert_eq!(finalizers(&o), vec!["x".to_string()]);
        assert!(!is_deleting(&o));
        assert_eq!(name(&json!(5)), "");
    }

    #[test]
    fn annotations_are_created_on_demand() {
        let mut o = json!({});
        set_annotation(&mut o, "k", "v");
        assert_eq!(annotation(&o, "k"), Some("v"));
    }

    #[test]
    fn suffix_uses_kubernetes_alphabet() {
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && !t.contains('.'));
        assert_eq!(
            age_seconds(&t, chrono::Utc::now()).map(|s| s <= 1),
            Some(true)
        );
    }
}
