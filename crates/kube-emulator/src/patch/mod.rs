//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch (merge
//! semantics plus the directives kubectl emits and the merge keys of the served kinds), and
//! server-side apply (in `apply`, with field ownership in `fields`).

pub mod apply;
pub mod fields;

use serde_json::{Map, Value};

/// The PATCH flavours Kubernetes accepts, by Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    /// The flavour a Content-Type selects (parameters such as charset ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// How a list field merges under a strategic merge patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListMerge {
    /// A set of scalars: union.
    Primitive,
    /// Objects identified by this key.
    Key(&'static str),
}

/// The list fields of the served kinds that Kubernetes tags `patchStrategy=merge`; every other
/// list is replaced whole, as Kubernetes does for lists without a strategy.
fn list_merge(resource: &str, path: &[&str]) -> Option<ListMerge> {
    match (resource, path) {
        (_, ["metadata", "finalizers"]) => Some(ListMerge::Primitive),
        (_, ["metadata", "ownerReferences"]) => Some(ListMerge::Key("uid")),
        ("serviceaccounts", ["secrets"]) => Some(ListMerge::Key("name")),
        ("namespaces", ["status", "conditions"]) => Some(ListMerge::Key("type")),
        _ => None,
    }
}

/// Why a JSON patch failed: its body is not a list of operations (400), or an operation does
/// not apply (422).
#[derive(Debug, PartialEq, Eq)]
pub enum JsonPatchError {
    Undecodable(String),
    Failed(String),
}

/// Applies an RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), JsonPatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| JsonPatchError::Undecodable(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &ops).map_err(|e| JsonPatchError::Failed(e.to_string()))
}

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies a strategic merge patch for objects of `resource`.
pub fn strategic_merge(resource: &str, target: &mut Value, patch: &Value) -> Result<(), String> {
    let Some(patch) = patch.as_object() else {
        return Err("strategic merge patch must be a JSON object".to_string());
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let mut path = Vec::new();
    merge_map(
        resource,
        &mut path,
        target.as_object_mut().expect("made an object"),
        patch,
    )
}

/// Drops patch directives from a value that is being set whole.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn merge_map<'a>(
    resource: &str,
    path: &mut Vec<&'a str>,
    target: &mut Map<String, Value>,
    patch: &'a Map<String, Value>,
) -> Result<(), String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = strip_directives(&Value::Object(patch.clone()))
                .as_object()
                .cloned()
                .unwrap_or_default();
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown patch type: {other}")),
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let remove: Vec<&Value> = value
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            if let Some(Value::Array(list)) = target.get_mut(field) {
                list.retain(|v| !remove.contains(&v));
            }
            continue;
        }
        if key.starts_with('$') {
            // $setElementOrder and $retainKeys only order or prune what the patch already
            // describes; merge results are the same for the kinds served here.
            continue;
        }
        if value.is_null() {
            target.remove(key);
            continue;
        }
        path.push(key);
        match (target.get_mut(key), value) {
            (Some(Value::Object(t)), Value::Object(p)) => merge_map(resource, path, t, p)?,
            (Some(Value::Array(t)), Value::Array(p)) => match list_merge(resource, path) {
                Some(strategy) => {
                    let order = patch
                        .get(&format!("$setElementOrder/{key}"))
                        .and_then(Value::as_array)
                        .map(Vec::as_slice);
                    merge_list(resource, path, t, p, strategy, order)?
                }
                None => *t = p.iter().map(strip_directives).collect(),
            },
            (_, Value::Object(p)) => {
                let mut fresh = Map::new();
                merge_map(resource, path, &mut fresh, p)?;
                target.insert(key.clone(), Value::Object(fresh));
            }
            (_, v) => {
                target.insert(key.clone(), strip_directives(v));
            }
        }
        path.pop();
    }
    Ok(())
}

fn merge_list<'a>(
    resource: &str,
    path: &mut Vec<&'a str>,
    target: &mut Vec<Value>,
    patch: &'a [Value],
    strategy: ListMerge,
    order: Option<&[Value]>,
) -> Result<(), String> {
    let original = target.clone();
    merge_items(resource, path, target, patch, strategy)?;
    let identity = |v: &Value| -> Value {
        match strategy {
            ListMerge::Primitive => v.clone(),
            ListMerge::Key(k) => v.get(k).cloned().unwrap_or(Value::Null),
        }
    };
    let order: Vec<Value> = order.unwrap_or(patch).iter().map(identity).collect();
    let server: Vec<Value> = original.iter().map(identity).collect();
    let (mut from_patch, server_only): (Vec<Value>, Vec<Value>) =
        target.drain(..).partition(|v| order.contains(&identity(v)));
    from_patch.sort_by_key(|v| order.iter().position(|o| *o == identity(v)));
    *target = merge_sorted(server_only, from_patch, |v| {
        server.iter().position(|s| *s == identity(v))
    });
    Ok(())
}

/// Kubernetes' order for a merged list (strategic merge patch's `mergeSortedSlice`): the
/// patch's items keep the patch's order, the items only the server had keep theirs, and a
/// server item goes before a patch item when the server had both in that order.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_index: impl Fn(&Value) -> Option<usize>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!(
                (server_index(l), server_index(r)),
                (Some(li), Some(ri)) if li < ri
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
}

/// Merges the patch's items into the list (order is settled by the caller).
fn merge_items<'a>(
    resource: &str,
    path: &mut Vec<&'a str>,
    target: &mut Vec<Value>,
    patch: &'a [Value],
    strategy: ListMerge,
) -> Result<(), String> {
    match strategy {
        ListMerge::Primitive => {
            for v in patch {
                if !target.contains(v) {
                    target.push(v.clone());
                }
            }
        }
        ListMerge::Key(merge_key) => {
            for item in patch {
                let Some(obj) = item.as_object() else {
                    return Err(format!(
                        "list items must be objects with the merge key {merge_key:?}"
                    ));
                };
                if obj.get("$patch").and_then(Value::as_str) == Some("replace") {
                    *target = patch.iter().map(strip_directives).collect();
                    return Ok(());
                }
                let key = obj.get(merge_key).ok_or_else(|| {
                    format!("map: {obj:?} does not contain declared merge key: {merge_key}")
                })?;
                let existing = target.iter().position(|t| t.get(merge_key) == Some(key));
                let delete = obj.get("$patch").and_then(Value::as_str) == Some("delete");
                match (existing, delete) {
                    (Some(i), true) => {
                        target.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        if let Some(t) = target[i].as_object_mut() {
                            merge_map(resource, path, t, obj)?;
                        }
                    }
                    (None, false) => target.push(strip_directives(item)),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchType::Strategic)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn json_and_merge_patches() {
        let mut o = json!({"data": {"a": "1", "b": "2"}});
        json_patch(
            &mut o,
            &json!([{"op": "replace", "path": "/data/a", "value": "x"}]),
        )
        .unwrap();
        merge_patch(&mut o, &json!({"data": {"b": null, "c": "3"}}));
        assert_eq!(o, json!({"data": {"a": "x", "c": "3"}}));
        assert!(
            json_patch(
                &mut o,
                &json!([{"op": "test", "path": "/data/a", "value": "no"}])
            )
            .is_err()
        );
        assert!(matches!(
            json_patch(&mut o, &json!({"op": "add"})),
            Err(JsonPatchError::Undecodable(_))
        ));
    }

    #[test]
    fn strategic_merge_replaces_plain_lists_and_merges_keyed_ones() {
        let mut sa = json!({
            "metadata": {"name": "sa", "finalizers": ["a"], "labels": {"x": "1"}},
            "secrets": [{"name": "s1"}],
            "imagePullSecrets": [{"name": "p1"}]
        });
        let patch = json!({
            "$setElementOrder/secrets": [{"name": "s1"}, {"name": "s2"}],
            "metadata": {"finalizers": ["b"], "labels": {"x": null, "y": "2"}},
            "secrets": [{"name": "s2"}],
            "imagePullSecrets": [{"name": "p2"}]
        });
        strategic_merge("serviceaccounts", &mut sa, &patch).unwrap();
        // The patch's new items first, then what only the server had (no $setElementOrder).
        assert_eq!(sa["metadata"]["finalizers"], json!(["b", "a"]));
        assert_eq!(sa["metadata"]["labels"], json!({"y": "2"}));
        assert_eq!(sa["secrets"], json!([{"name": "s1"}, {"name": "s2"}]));
        assert_eq!(sa["imagePullSecrets"], json!([{"name": "p2"}]));
    }

    #[test]
    fn strategic_merge_directives() {
        let mut o = json!({"metadata": {"finalizers": ["a", "b"]}, "secrets": [{"name": "s1"}, {"name": "s2"}], "data": {"k": "v"}});
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]},
            "secrets": [{"name": "s1", "$patch": "delete"}],
            "data": {"$patch": "replace", "n": "w"}
        });
        strategic_merge("serviceaccounts", &mut o, &patch).unwrap();
        assert_eq!(
            o,
            json!({"metadata": {"finalizers": ["b"]}, "secrets": [{"name": "s2"}], "data": {"n": "w"}})
        );
        assert!(strategic_merge("configmaps", &mut o, &json!([1])).is_err());
        assert!(strategic_merge("configmaps", &mut o, &json!({"$patch": "bogus"})).is_err());
    }
}
