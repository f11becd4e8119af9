//! Server-side apply: merges an applied configuration into the live object, tracks which fields
//! each manager applied, removes fields a manager stops applying (when nobody else owns them),
//! and reports conflicts with other managers unless forced.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::fields::{self, FieldPath, ManagedEntry};

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    /// "Apply" or "Update": an updater is named with its version and time, an applier alone.
    pub operation: String,
    pub time: String,
    /// Dotted, as Kubernetes prints it: ".data.key".
    pub field: String,
}

impl Conflict {
    /// Who the conflict is with, as kube-apiserver words it: `"alice"` for an applier,
    /// `"kubectl-edit" using v1 at 2026-01-01T00:00:00Z` for an updater.
    pub fn with(&self) -> String {
        let manager = format!("{:?}", self.manager);
        match (self.operation.as_str(), self.time.as_str()) {
            ("Update", "") => format!("{manager} using {}", self.api_version),
            ("Update", time) => format!("{manager} using {} at {time}", self.api_version),
            _ => manager,
        }
    }

    /// The message and causes of the 409 Kubernetes answers.
    pub fn summary(conflicts: &[Conflict]) -> String {
        let noun = if conflicts.len() == 1 {
            "conflict"
        } else {
            "conflicts"
        };
        let mut lines = Vec::new();
        for c in conflicts {
            lines.push(format!("conflict with {}: {}", c.with(), c.field));
        }
        if conflicts.len() == 1 {
            format!("Apply failed with 1 conflict: {}", lines[0])
        } else {
            format!(
                "Apply failed with {} {noun}: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    }
}

fn dotted(path: &[String]) -> String {
    path.iter().map(|p| format!(".{p}")).collect()
}

/// Deep-merges `config` into `target`: objects merge key by key, everything else is replaced.
fn merge_into(target: &mut Value, config: &Value) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, c) => *t = c.clone(),
    }
}

/// Applies `config` for `manager` to `current` (None when the object does not exist yet) and
/// returns the resulting object with updated managedFields, or the conflicts.
pub fn apply(
    current: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    ignore_status: bool,
) -> Result<Value, Vec<Conflict>> {
    let applied: BTreeSet<FieldPath> = fields::leaves(config, ignore_status);
    let mut entries: Vec<ManagedEntry> = current.map(fields::read_managed).unwrap_or_default();
    let mine = |e: &ManagedEntry| e.manager == manager && e.operation == "Apply";

    let mut result = current
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    merge_into(&mut result, config);

    // Fields this manager applied before but no longer does: removed unless someone else owns them.
    let previously: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| mine(e))
        .flat_map(|e| e.fields.clone())
        .collect();
    for dropped in previously.difference(&applied) {
        let owned_elsewhere = entries
            .iter()
            .filter(|e| !mine(e))
            .any(|e| e.fields.iter().any(|f| fields::overlaps(f, dropped)));
        if !owned_elsewhere && !applied.iter().any(|a| a.starts_with(dropped)) {
            fields::remove_at(&mut result, dropped);
        }
    }

    // Another manager's field whose value this apply changes is a conflict.
    let mut conflicts = Vec::new();
    if let Some(cur) = current {
        for e in entries.iter().filter(|e| !mine(e)) {
            for owned in &e.fields {
                // As in Kubernetes, only the same field conflicts: owning a map (".") does not
                // conflict with another manager's key in it.
                let touched = applied.contains(owned);
                if touched && fields::value_at(cur, owned) != fields::value_at(&result, owned) {
                    conflicts.push(Conflict {
                        manager: e.manager.clone(),
                        api_version: e.api_version.clone(),
                        operation: e.operation.clone(),
                        time: e.time.clone(),
                        field: dotted(owned),
                    });
                }
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflicts);
        }
        // Forced: the applier takes the conflicting fields.
        for e in entries
            .iter_mut()
            .filter(|e| !(e.manager == manager && e.operation == "Apply"))
        {
            e.fields.retain(|owned| {
                !applied.contains(owned)
                    || current.and_then(|c| fields::value_at(c, owned))
                        == fields::value_at(&result, owned)
            });
        }
    }

    let now = crate::meta::now_rfc3339();
    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            e.fields = applied;
            e.time = now;
            e.api_version = api_version.to_string();
        }
        None => entries.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: now,
            fields: applied,
        }),
    }
    if manager == "kubectl" {
        sync_last_applied(&mut result, config);
    }
    fields::write_managed(&mut result, &entries);
    Ok(result)
}

/// The annotation `kubectl apply` (client-side) keeps its last configuration in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// After `kubectl apply --server-side`, kube-apiserver rewrites an existing client-side apply
/// annotation to the configuration just applied (compact JSON, keys sorted, without the
/// annotation itself), so a later client-side apply starts from it.
fn sync_last_applied(result: &mut Value, config: &Value) {
    let has_annotation = result
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(LAST_APPLIED));
    if !has_annotation {
        return;
    }
    let mut last = config.clone();
    if let Some(md) = last.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(a) = md.get_mut("annotations").and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            md.remove("annotations");
        }
    }
    let text = format!("{}\n", sorted(&last));
    if let Some(a) = result
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

/// `v` with every object's keys in order (Go's encoding of a map).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ap(
        current: Option<&Value>,
        data: Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, Vec<Conflict>> {
        apply(current, &cm(data), manager, force, "v1", false)
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": data})
    }

    #[test]
    fn apply_creates_then_prunes_what_is_no_longer_applied() {
        let first = ap(None, json!({"a": "1", "b": "2"}), "mgr", false).unwrap();
        assert_eq!(first["data"], json!({"a": "1", "b": "2"}));
        let second = ap(Some(&first), json!({"a": "1"}), "mgr", false).unwrap();
        assert_eq!(second["data"], json!({"a": "1"}));
        let m = fields::read_managed(&second);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].operation, "Apply");
    }

    #[test]
    fn other_managers_fields_are_kept_and_conflict_when_changed() {
        let base = ap(None, json!({"a": "1"}), "one", false).unwrap();
        let both = ap(Some(&base), json!({"b": "2"}), "two", false).unwrap();
        assert_eq!(both["data"], json!({"a": "1", "b": "2"}));
        // Same value: shared, no conflict.
        assert!(ap(Some(&both), json!({"a": "1", "b": "2"}), "two", false).is_ok());
        let err = ap(Some(&both), json!({"a": "changed"}), "two", false).unwrap_err();
        assert_eq!(
            err,
            vec![Conflict {
                manager: "one".into(),
                api_version: "v1".into(),
                operation: "Apply".into(),
                time: err[0].time.clone(),
                field: ".data.a".into()
            }]
        );
        assert_eq!(
            Conflict::summary(&err),
            "Apply failed with 1 conflict: conflict with \"one\": .data.a"
        );
        let forced = ap(Some(&both), json!({"a": "changed"}), "two", true).unwrap();
        assert_eq!(forced["data"]["a"], "changed");
        let one = fields::read_managed(&forced)
            .into_iter()
            .find(|e| e.manager == "one");
        assert!(
            one.is_none(),
            "forced apply took the only field of manager one"
        );
    }

    #[test]
    fn server_side_kubectl_rewrites_the_client_side_annotation() {
        let mut live = cm(json!({"a": "1"}));
        live["metadata"]["annotations"] = json!({LAST_APPLIED: "{}", "keep": "x"});
        let config = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "c", "namespace": "n"}, "data": {"a": "2"}});
        let out = apply(Some(&live), &config, "kubectl", false, "v1", false).unwrap();
        assert_eq!(
            out["metadata"]["annotations"][LAST_APPLIED],
            "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\",\"namespace\":\"n\"}}\n"
        );
        let other = apply(Some(&live), &config, "mgr", false, "v1", false).unwrap();
        assert_eq!(other["metadata"]["annotations"][LAST_APPLIED], "{}");
    }

    #[test]
    fn a_dropped_field_owned_by_an_updater_survives() {
        let mut base = cm(json!({"a": "1"}));
        fields::record_update(None, &mut base, "kubectl-edit", "v1", false);
        let applied = ap(Some(&base), json!({"a": "1", "b": "2"}), "mgr", false).unwrap();
        let again = ap(Some(&applied), json!({"b": "2"}), "mgr", false).unwrap();
        assert_eq!(again["data"], json!({"a": "1", "b": "2"}));
    }
}
