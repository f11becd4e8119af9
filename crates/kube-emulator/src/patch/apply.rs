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
    /// Dotted, as Kubernetes prints it: ".data.key".
    pub field: String,
}

impl Conflict {
    /// The message and causes of the 409 Kubernetes answers.
    pub fn summary(conflicts: &[Conflict]) -> String {
        let noun = if conflicts.len() == 1 {
            "conflict"
        } else {
            "conflicts"
        };
        let mut lines = Vec::new();
        for c in conflicts {
            lines.push(format!(
                "conflict with \"{}\" using {}: {}",
                c.manager, c.api_version, c.field
            ));
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
                let touched = applied.iter().any(|a| fields::overlaps(a, owned));
                if touched && fields::value_at(cur, owned) != fields::value_at(&result, owned) {
                    conflicts.push(Conflict {
                        manager: e.manager.clone(),
                        api_version: e.api_version.clone(),
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
                !applied.iter().any(|a| fields::overlaps(a, owned))
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
    fields::write_managed(&mut result, &entries);
    Ok(result)
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
                field: ".data.a".into()
            }]
        );
        assert_eq!(
            Conflict::summary(&err),
            "Apply failed with 1 conflict: conflict with \"one\" using v1: .data.a"
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
    fn a_dropped_field_owned_by_an_updater_survives() {
        let mut base = cm(json!({"a": "1"}));
        fields::record_update(None, &mut base, "kubectl-edit", "v1", false);
        let applied = ap(Some(&base), json!({"a": "1", "b": "2"}), "mgr", false).unwrap();
        let again = ap(Some(&applied), json!({"b": "2"}), "mgr", false).unwrap();
        assert_eq!(again["data"], json!({"a": "1", "b": "2"}));
    }
}
