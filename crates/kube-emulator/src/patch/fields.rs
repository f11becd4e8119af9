//! Field ownership (`metadata.managedFields`): which manager last set which fields, in the
//! FieldsV1 format. The structure Kubernetes' schemas give the served kinds is spelled out in
//! [`list_kind`] and [`atomic_struct`]: lists are atomic (owned whole) except finalizers (a set:
//! `v:"x"` per value) and the lists keyed by a field (`k:{"uid":"..."}` per item); a few
//! references (roleRef, an Event's involvedObject...) are atomic structs.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A path to an owned field: object keys from the root, or list items (see [`item`]).
pub type FieldPath = Vec<String>;

/// Marks a path element that is a list item (`v:...` or `k:...` in FieldsV1), not a key.
const ITEM: char = '\u{0}';

/// The path element of a list item, as FieldsV1 spells it (`v:"x"`, `k:{"name":"a"}`).
fn item(fields_v1_key: &str) -> String {
    format!("{ITEM}{fields_v1_key}")
}

/// How Kubernetes merges a list: whole, as a set of values, or as items keyed by a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListKind {
    Atomic,
    Set,
    Map(&'static str),
}

fn list_kind(path: &[String]) -> ListKind {
    match path {
        [m, f] if m == "metadata" && f == "finalizers" => ListKind::Set,
        [m, f] if m == "metadata" && f == "ownerReferences" => ListKind::Map("uid"),
        [f] if f == "secrets" => ListKind::Map("name"),
        _ => ListKind::Atomic,
    }
}

/// Structs owned whole (`+structType=atomic`): object references.
fn atomic_struct(path: &[String]) -> bool {
    matches!(
        path,
        [f] if f == "roleRef" || f == "involvedObject" || f == "regarding" || f == "related"
    )
}

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

/// The FieldsV1 key of one item of a set or keyed list.
fn item_key(list: ListKind, v: &Value) -> Option<String> {
    match list {
        ListKind::Set => Some(format!("v:{v}")),
        ListKind::Map(key) => Some(format!("k:{}", json!({key: v.get(key)?}))),
        ListKind::Atomic => None,
    }
}

/// Walks the owned fields of an object: `leaf` for every leaf (scalars, atomic lists and
/// structs, empty objects, items of sets and keyed lists), `container` for every object or
/// non-atomic list that holds owned fields.
fn walk(
    v: &Value,
    path: &mut FieldPath,
    ignore_status: bool,
    on: &mut dyn FnMut(&FieldPath, bool),
) {
    if ignored(path, ignore_status) {
        return;
    }
    match v {
        Value::Object(m) if (!m.is_empty() && !atomic_struct(path)) || path.is_empty() => {
            if !path.is_empty() {
                on(path, false);
            }
            for (k, child) in m {
                path.push(k.clone());
                walk(child, path, ignore_status, on);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() && list_kind(path) != ListKind::Atomic => {
            on(path, false);
            let list = list_kind(path);
            for i in items {
                if let Some(key) = item_key(list, i) {
                    path.push(item(&key));
                    on(path, true);
                    path.pop();
                }
            }
        }
        _ => on(path, true),
    }
}

/// The set of leaf paths of an object, minus server fields.
pub fn leaves(obj: &Value, ignore_status: bool) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    walk(obj, &mut Vec::new(), ignore_status, &mut |p, leaf| {
        if leaf {
            out.insert(p.clone());
        }
    });
    out
}

/// The paths of the objects and non-atomic lists that hold owned fields.
fn containers(obj: &Value, ignore_status: bool) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    walk(obj, &mut Vec::new(), ignore_status, &mut |p, leaf| {
        if !leaf {
            out.insert(p.clone());
        }
    });
    out
}

/// The item of `list` a FieldsV1 item key names.
fn find_item(list: &[Value], key: &str) -> Option<usize> {
    if let Some(v) = key.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        return list.iter().position(|i| *i == want);
    }
    let want: Map<String, Value> = serde_json::from_str(key.strip_prefix("k:")?).ok()?;
    list.iter()
        .position(|i| want.iter().all(|(k, v)| i.get(k) == Some(v)))
}

/// The value at a path.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(obj, |v, k| match k.strip_prefix(ITEM) {
            Some(key) => {
                let list = v.as_array()?;
                list.get(find_item(list, key)?)
            }
            None => v.as_object()?.get(k),
        })
}

/// Removes the field (or list item) at a path (no-op when absent).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for k in parents {
        let next = match k.strip_prefix(ITEM) {
            Some(key) => cur
                .as_array_mut()
                .and_then(|l| find_item(l, key).map(move |i| &mut l[i])),
            None => cur.as_object_mut().and_then(|m| m.get_mut(k)),
        };
        match next {
            Some(next) => cur = next,
            None => return,
        }
    }
    match last.strip_prefix(ITEM) {
        Some(key) => {
            if let Some(l) = cur.as_array_mut()
                && let Some(i) = find_item(l, key)
            {
                l.remove(i);
            }
        }
        None => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(last);
            }
        }
    }
}

/// Whether one path is equal to, or an ancestor of, the other.
pub fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn fields_v1_key(k: &str) -> String {
    match k.strip_prefix(ITEM) {
        Some(item) => item.to_string(),
        None => format!("f:{k}"),
    }
}

/// Encodes a set in FieldsV1 form: nested `"f:<key>"` (or item) objects, `{}` for owned
/// leaves, and `".": {}` where an owned path also has owned children.
pub fn to_fields_v1(set: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for k in path {
            node = node
                .entry(fields_v1_key(k))
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
                .get_mut(&fields_v1_key(k))
                .and_then(Value::as_object_mut)
                .expect("inserted above");
        }
        if !node.is_empty() && !node.contains_key(".") {
            node.insert(".".into(), json!({}));
        }
    }
    sort_fields_v1(&mut root);
    Value::Object(root)
}

/// FieldsV1 keys in Kubernetes' order: ".", then fields and items by their encoded key.
fn sort_fields_v1(node: &mut Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(node).into_iter().collect();
    entries.sort_by(|(a, _), (b, _)| (a != ".", a).cmp(&(b != ".", b)));
    for (k, mut v) in entries {
        if let Some(m) = v.as_object_mut() {
            sort_fields_v1(m);
        }
        node.insert(k, v);
    }
}

/// Decodes FieldsV1.
pub fn from_fields_v1(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(node: &Map<String, Value>, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        if (node.is_empty() || node.contains_key(".")) && !path.is_empty() {
            out.insert(path.clone());
        }
        for (k, child) in node {
            let element = match k.strip_prefix("f:") {
                Some(field) => field.to_string(),
                None if k == "." => continue,
                None => item(k),
            };
            path.push(element);
            walk(child.as_object().unwrap_or(&Map::new()), path, out);
            path.pop();
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
    let mut kept: Vec<&ManagedEntry> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    // kube-apiserver's order (its field manager sorts the encoded entries): by operation
    // ("Apply" before "Update"), then by time to the second, then by manager and apiVersion. So
    // two managers writing within one second are listed by name, and across seconds by time.
    kept.sort_by_cached_key(|e| {
        let seconds = chrono::DateTime::parse_from_rfc3339(&e.time).map_or(0, |t| t.timestamp());
        (
            e.operation.clone(),
            seconds,
            e.manager.clone(),
            e.api_version.clone(),
        )
    });
    let list: Vec<Value> = kept
        .into_iter()
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

/// Records a non-apply write by `manager`, as Kubernetes compares the old and new objects: the
/// manager takes every leaf whose value changed and every object or keyed list that appeared
/// (FieldsV1 marks those with "."); the others lose the changed leaves; what disappeared
/// leaves every set. `old` is None for a create (the typed empty object: just `metadata`).
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    ignore_status: bool,
) {
    // The typed empty object: its structs are there (`metadata`, and `spec`, an Event's
    // `source`... when the kind has them), so they are never "added".
    let empty = json!({"metadata": {}, "spec": {}, "source": {}, "deprecatedSource": {}});
    let mut entries = old.map(read_managed).unwrap_or_default();
    let old = old.unwrap_or(&empty);
    let new_leaves = leaves(new, ignore_status);
    let old_leaves = leaves(old, ignore_status);
    let new_containers = containers(new, ignore_status);
    let mut old_containers = containers(old, ignore_status);
    // An empty object was there already: filling it adds its keys, not the object.
    old_containers.extend(
        old_leaves
            .iter()
            .filter(|p| value_at(old, p).is_some_and(|v| v.as_object().is_some_and(Map::is_empty)))
            .cloned(),
    );
    let mut changed: BTreeSet<FieldPath> = new_leaves
        .iter()
        .filter(|p| value_at(old, p) != value_at(new, p))
        .cloned()
        .collect();
    changed.extend(new_containers.difference(&old_containers).cloned());
    let still_there = |p: &FieldPath| new_leaves.contains(p) || new_containers.contains(p);
    let removed: BTreeSet<FieldPath> = old_leaves
        .iter()
        .chain(old_containers.iter())
        .filter(|p| !still_there(p))
        .cloned()
        .collect();
    if changed.is_empty() && removed.is_empty() {
        write_managed(new, &entries);
        return;
    }
    for e in &mut entries {
        e.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    let now = crate::meta::now_rfc3339();
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update")
    {
        Some(e) => {
            e.fields.extend(changed);
            e.fields.retain(|p| !removed.contains(p));
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
    fn managed_fields_in_kube_apiservers_order() {
        let entry = |manager: &str, operation: &str, time: &str| ManagedEntry {
            manager: manager.into(),
            operation: operation.into(),
            api_version: "v1".into(),
            time: time.into(),
            fields: [p(&["data", manager])].into_iter().collect(),
        };
        let order = |entries: &[ManagedEntry]| {
            let mut obj = json!({"metadata": {}});
            write_managed(&mut obj, entries);
            obj["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["manager"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        // Within one second: by name, whatever order they were written in.
        let same_second = [
            entry("bob", "Apply", "2026-01-01T00:00:05Z"),
            entry("alice", "Apply", "2026-01-01T00:00:05Z"),
        ];
        assert_eq!(order(&same_second), ["alice", "bob"]);
        // Across seconds: the earlier first; and every Apply before any Update.
        let across = [
            entry("alice", "Apply", "2026-01-01T00:00:07Z"),
            entry("carol", "Update", "2026-01-01T00:00:01Z"),
            entry("bob", "Apply", "2026-01-01T00:00:06Z"),
        ];
        assert_eq!(order(&across), ["bob", "alice", "carol"]);
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
        // alice lost both of her data keys (one changed, one removed) and keeps the map she
        // created; bob has only the key he changed.
        assert_eq!(m.len(), 2);
        let alice = m.iter().find(|e| e.manager == "alice").unwrap();
        assert_eq!(
            alice.fields.iter().cloned().collect::<Vec<_>>(),
            vec![p(&["data"])]
        );
        let bob = m.iter().find(|e| e.manager == "bob").unwrap();
        assert_eq!(
            bob.fields.iter().cloned().collect::<Vec<_>>(),
            vec![p(&["data", "k"])]
        );
        assert!(m.iter().all(|e| !e.fields.contains(&p(&["data", "j"]))));
    }

    #[test]
    fn sets_keyed_lists_and_atomic_structs() {
        let mut o = json!({"metadata": {"finalizers": ["a/b"],
            "ownerReferences": [{"uid": "u1", "name": "x"}]},
            "roleRef": {"kind": "Role", "name": "r"}, "secrets": [{"name": "s"}]});
        record_update(None, &mut o, "m", "v1", false);
        assert_eq!(
            o["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:metadata": {
                    "f:finalizers": {".": {}, "v:\"a/b\"": {}},
                    "f:ownerReferences": {".": {}, "k:{\"uid\":\"u1\"}": {}}},
                "f:roleRef": {},
                "f:secrets": {".": {}, "k:{\"name\":\"s\"}": {}}})
        );
        let set = from_fields_v1(&o["metadata"]["managedFields"][0]["fieldsV1"]);
        let finalizer = set
            .iter()
            .find(|p| p.len() == 3 && p[1] == "finalizers")
            .unwrap();
        assert_eq!(value_at(&o, finalizer), Some(&json!("a/b")));
        remove_at(&mut o, finalizer);
        assert_eq!(o["metadata"]["finalizers"], json!([]));
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
