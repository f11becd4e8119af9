//! Field ownership (`metadata.managedFields`): which manager last set which fields, in the
//! FieldsV1 format. Lists are owned whole (atomic), which is how Kubernetes treats every list of
//! the served kinds except a few keyed ones; that is the one simplification here.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A path to an owned field: object keys from the root.
pub type FieldPath = Vec<String>;

/// Metadata fields the server owns; never part of any manager's set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

fn ignored(path: &[String], ignore_status: bool) -> bool {
    match path {
        [first] if first == "apiVersion" || first == "kind" => true,
        [first, ..] if first == "status" && ignore_status => true,
        [first, second, ..] if first == "metadata" => SERVER_METADATA.contains(&second.as_str()),
        _ => false,
    }
}

/// The set of leaf paths of an object (scalars, lists and empty objects), minus server fields.
pub fn leaves(obj: &Value, ignore_status: bool) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>, ignore_status: bool) {
        if ignored(path, ignore_status) {
            return;
        }
        match v {
            Value::Object(m) if !m.is_empty() || path.is_empty() => {
                for (k, child) in m {
                    path.push(k.clone());
                    walk(child, path, out, ignore_status);
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(obj, &mut Vec::new(), &mut out, ignore_status);
    out
}

/// The value at a path, if every step is an object key.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.as_object()?.get(k))
}

/// Removes the field at a path (no-op when absent).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for k in parents {
        match cur.as_object_mut().and_then(|m| m.get_mut(k)) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Whether one path is equal to, or an ancestor of, the other.
pub fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Encodes a set in FieldsV1 form: nested `"f:<key>"` objects, `{}` for owned leaves, and
/// `".": {}` where an owned path also has owned children.
pub fn to_fields_v1(set: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for k in path {
            node = node
                .entry(format!("f:{k}"))
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
    }
    // Mark owned interior nodes.
    for path in set {
        let mut node = &mut root;
        for k in path {
            node = node
                .get_mut(&format!("f:{k}"))
                .and_then(Value::as_object_mut)
                .expect("inserted above");
        }
        if !node.is_empty() && !node.contains_key(".") {
            node.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

/// Decodes FieldsV1 (keys other than `f:` — list element keys — mark their list as owned).
pub fn from_fields_v1(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(node: &Map<String, Value>, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        if (node.is_empty() || node.contains_key(".")) && !path.is_empty() {
            out.insert(path.clone());
        }
        for (k, child) in node {
            if let Some(field) = k.strip_prefix("f:") {
                path.push(field.to_string());
                walk(child.as_object().unwrap_or(&Map::new()), path, out);
                path.pop();
            } else if k != "." && !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
    let mut out = BTreeSet::new();
    if let Some(m) = v.as_object() {
        walk(m, &mut Vec::new(), &mut out);
    }
    out
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    /// "Apply" or "Update".
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub fields: BTreeSet<FieldPath>,
}

/// The managedFields of an object.
pub fn read_managed(obj: &Value) -> Vec<ManagedEntry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|e| ManagedEntry {
            manager: e["manager"].as_str().unwrap_or("").to_string(),
            operation: e["operation"].as_str().unwrap_or("Update").to_string(),
            api_version: e["apiVersion"].as_str().unwrap_or("").to_string(),
            time: e["time"].as_str().unwrap_or("").to_string(),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

/// Writes managedFields (entries with empty sets are dropped, as Kubernetes drops them).
pub fn write_managed(obj: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            })
        })
        .collect();
    let md = crate::meta::metadata_mut(obj);
    if list.is_empty() {
        md.remove("managedFields");
    } else {
        md.insert("managedFields".into(), Value::Array(list));
    }
}

/// Records a non-apply write by `manager`: it takes the fields whose values changed (others lose
/// them), and fields that disappeared are dropped from every set.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    ignore_status: bool,
) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let new_leaves = leaves(new, ignore_status);
    let old_leaves = old.map(|o| leaves(o, ignore_status)).unwrap_or_default();
    let changed: BTreeSet<FieldPath> = new_leaves
        .iter()
        .filter(|p| old.and_then(|o| value_at(o, p)) != value_at(new, p))
        .cloned()
        .collect();
    let removed: Vec<&FieldPath> = old_leaves.difference(&new_leaves).collect();
    if changed.is_empty() && removed.is_empty() {
        write_managed(new, &entries);
        return;
    }
    for e in &mut entries {
        e.fields
            .retain(|p| !changed.contains(p) && !removed.iter().any(|r| overlaps(p, r)));
    }
    let now = crate::meta::now_rfc3339();
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update")
    {
        Some(e) => {
            e.fields.extend(changed);
            e.time = now;
            e.api_version = api_version.to_string();
        }
        None => entries.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            time: now,
            fields: changed,
        }),
    }
    write_managed(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(parts: &[&str]) -> FieldPath {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn leaves_skip_server_fields() {
        let o = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "uid": "u", "labels": {"a": "1"}, "annotations": {}},
            "data": {"k": "v"}, "status": {"phase": "Active"}
        });
        let l = leaves(&o, true);
        assert_eq!(
            l.into_iter().collect::<Vec<_>>(),
            vec![
                p(&["data", "k"]),
                p(&["metadata", "annotations"]),
                p(&["metadata", "labels", "a"])
            ]
        );
    }

    #[test]
    fn fields_v1_round_trips() {
        let set: BTreeSet<FieldPath> = [
            p(&["data"]),
            p(&["data", "k"]),
            p(&["metadata", "labels", "a"]),
        ]
        .into_iter()
        .collect();
        let v = to_fields_v1(&set);
        assert_eq!(
            v,
            json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}})
        );
        assert_eq!(from_fields_v1(&v), set);
    }

    #[test]
    fn updates_move_ownership_of_changed_fields() {
        let mut a = json!({"metadata": {"name": "x"}, "data": {"k": "1", "j": "2"}});
        record_update(None, &mut a, "alice", "v1", false);
        let mut b = a.clone();
        b["data"]["k"] = json!("changed");
        b["data"].as_object_mut().unwrap().remove("j");
        record_update(Some(&a), &mut b, "bob", "v1", false);
        let m = read_managed(&b);
        // alice lost both of her fields (one changed, one removed), so her entry is gone.
        assert_eq!(m.len(), 1);
        let bob = m.iter().find(|e| e.manager == "bob").unwrap();
        assert_eq!(
            bob.fields.iter().cloned().collect::<Vec<_>>(),
            vec![p(&["data", "k"])]
        );
        assert!(m.iter().all(|e| !e.fields.contains(&p(&["data", "j"]))));
    }

    #[test]
    fn remove_and_value_at() {
        let mut o = json!({"a": {"b": {"c": 1}}});
        assert_eq!(value_at(&o, &p(&["a", "b", "c"])), Some(&json!(1)));
        remove_at(&mut o, &p(&["a", "b", "c"]));
        assert_eq!(o, json!({"a": {"b": {}}}));
        remove_at(&mut o, &p(&["x", "y"]));
        assert!(overlaps(&p(&["a"]), &p(&["a", "b"])));
        assert!(!overlaps(&p(&["a", "c"]), &p(&["a", "b"])));
    }
}
