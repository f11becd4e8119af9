//! Deleting objects: preconditions, finalizers (deletionTimestamp first, removal when the last
//! finalizer goes), and namespaces (Terminating, then the namespace controller empties them).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{WriteCtx, storage_kind, store_error};
use crate::kinds::Kind;
use crate::status::ApiError;
use crate::store::StoreError;
use crate::{controllers, meta};

/// The parts of `DeleteOptions` the emulator honours.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    /// propagationPolicy Orphan: dependents keep existing (without the owner reference).
    pub orphan: bool,
}

impl DeleteOptions {
    /// Reads `preconditions` from a DeleteOptions body (absent or empty body: none).
    pub fn from_body(body: Option<&Value>) -> Self {
        let pre = body.and_then(|b| b.get("preconditions"));
        let field = |f: &str| {
            pre.and_then(|p| p.get(f))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let orphan = body.is_some_and(|b| {
            b["propagationPolicy"] == "Orphan" || b["orphanDependents"] == Value::Bool(true)
        });
        DeleteOptions {
            precondition_uid: field("uid"),
            precondition_rv: field("resourceVersion"),
            orphan,
        }
    }
}

/// What a delete did.
#[derive(Debug)]
pub enum DeleteOutcome {
    /// The object is gone; its last state.
    Deleted(Arc<Value>),
    /// Deletion started but waits for finalizers (or the namespace controller).
    Pending(Arc<Value>),
}

const DELETE_ATTEMPTS: usize = 5;

/// Namespaces the NamespaceLifecycle admission plugin never lets go.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// Deletes an object of `kind`.
pub fn delete(
    ctx: &WriteCtx<'_>,
    kind: &'static Kind,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
) -> Result<DeleteOutcome, ApiError> {
    let kind = storage_kind(kind);
    let store = &ctx.shared.store;
    for _ in 0..DELETE_ATTEMPTS {
        let old = store
            .get(kind.storage_key(), namespace, name)
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        check_preconditions(kind, &old, options)?;
        if kind.plural == "namespaces" {
            return start_namespace_deletion(ctx, kind, &old);
        }
        if !meta::finalizers(&old).is_empty() {
            if meta::is_deleting(&old) || ctx.dry_run {
                return Ok(DeleteOutcome::Pending(old));
            }
            let marked = mark_deleting(&old);
            return match store.update(
                kind.storage_key(),
                marked,
                Some(meta::resource_version(&old)),
            ) {
                Ok(obj) => Ok(DeleteOutcome::Pending(obj)),
                Err(StoreError::Conflict) => continue,
                Err(e) => Err(store_error(kind, name, e)),
            };
        }
        if ctx.dry_run {
            return Ok(DeleteOutcome::Deleted(old));
        }
        match store.delete(
            kind.storage_key(),
            namespace,
            name,
            Some(meta::resource_version(&old)),
        ) {
            Ok(last) => {
                tracing::debug!(resource = kind.plural, %namespace, %name, "deleted");
                controllers::after_delete(ctx.shared, kind, &last, options.orphan);
                return Ok(DeleteOutcome::Deleted(last));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(kind, name, e)),
        }
    }
    Err(ApiError::stale(kind, name))
}

fn check_preconditions(kind: &Kind, old: &Value, options: &DeleteOptions) -> Result<(), ApiError> {
    let name = meta::name(old);
    if let Some(uid) = &options.precondition_uid {
        let actual = meta::meta_str(old, "uid");
        if uid != actual {
            return Err(ApiError::precondition_uid(kind, name, uid, actual));
        }
    }
    if let Some(rv) = &options.precondition_rv {
        let actual = meta::meta_str(old, "resourceVersion");
        if rv != actual {
            return Err(ApiError::conflict(
                kind,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

fn mark_deleting(old: &Value) -> Value {
    let mut obj = old.clone();
    let md = meta::metadata_mut(&mut obj);
    md.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
    md.insert("deletionGracePeriodSeconds".into(), json!(0));
    obj
}

/// DELETE of a namespace: it turns Terminating; the namespace controller removes its contents
/// and then the namespace itself.
fn start_namespace_deletion(
    ctx: &WriteCtx<'_>,
    kind: &Kind,
    old: &Arc<Value>,
) -> Result<DeleteOutcome, ApiError> {
    let name = meta::name(old);
    if IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
            Some(kind),
            name,
        ));
    }
    if meta::is_deleting(old) {
        return Err(ApiError::conflict(
            kind,
            name,
            "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
        ));
    }
    let mut obj = mark_deleting(old);
    // A namespace's deletion has no grace period (kube-apiserver sets none).
    meta::metadata_mut(&mut obj).remove("deletionGracePeriodSeconds");
    obj["status"]["phase"] = json!("Terminating");
    if ctx.dry_run {
        return Ok(DeleteOutcome::Pending(Arc::new(obj)));
    }
    let updated = ctx
        .shared
        .store
        .update(kind.storage_key(), obj, Some(meta::resource_version(old)))
        .map_err(|e| store_error(kind, name, e))?;
    tracing::info!(namespace = %name, "namespace terminating");
    Ok(DeleteOutcome::Pending(updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_come_from_the_body() {
        let o = DeleteOptions::from_body(Some(&json!({"preconditions": {"uid": "u1"}})));
        assert_eq!(o.precondition_uid.as_deref(), Some("u1"));
        assert!(o.precondition_rv.is_none());
        let cm = crate::kinds::find("", "v1", "configmaps").unwrap();
        let obj = json!({"metadata": {"name": "c", "uid": "u2", "resourceVersion": "5"}});
        let e = check_preconditions(cm, &obj, &o).unwrap_err();
        assert_eq!(e.code, 409);
        assert!(
            e.message
                .contains("the UID in the precondition (u1) does not match the UID in record (u2)")
        );
        let ok = DeleteOptions {
            precondition_uid: Some("u2".into()),
            precondition_rv: Some("5".into()),
            orphan: false,
        };
        assert!(check_preconditions(cm, &obj, &ok).is_ok());
    }
}
