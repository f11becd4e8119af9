//! The write pipeline shared by the HTTP handlers and the emulated controllers: create, update,
//! patch and delete with Kubernetes' metadata rules, preconditions, finalizers, field managers,
//! dry-run, RBAC escalation checks and the controllers' reactions.

mod create;
mod delete;
mod update;

pub use create::create;
pub use delete::{DeleteOptions, DeleteOutcome, delete};
pub use update::{patch, update};

use serde_json::Value;

use crate::auth::UserInfo;
use crate::auth::rbac::{self, Decision};
use crate::context::Shared;
use crate::kinds::{self, Kind};
use crate::meta;
use crate::status::ApiError;
use crate::store::StoreError;

/// Who writes and how.
pub(crate) struct WriteCtx<'a> {
    pub shared: &'a Shared,
    /// The requesting user; None for the emulator's own controllers (never RBAC-checked).
    pub user: Option<&'a UserInfo>,
    /// Field manager recorded in managedFields.
    pub manager: String,
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldValidation=Strict`: refuse undeclared fields instead of dropping them.
    pub strict: bool,
}

impl<'a> WriteCtx<'a> {
    /// A write by the emulator itself (controllers, bootstrap).
    pub fn system(shared: &'a Shared, manager: &str) -> Self {
        WriteCtx {
            shared,
            user: None,
            manager: manager.to_string(),
            dry_run: false,
            strict: false,
        }
    }
}

/// The kind whose representation is stored for `kind` (core Event for events.k8s.io).
pub fn storage_kind(kind: &'static Kind) -> &'static Kind {
    kinds::for_storage(kind.storage_key()).unwrap_or(kind)
}

/// Checks (and fills in when absent) `apiVersion` and `kind` of a request body.
pub fn check_type_meta(kind: &Kind, obj: &mut Value) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {})",
            kind.kind
        )));
    };
    let want_version = kind.api_version();
    if let Some(k) = map.get("kind").and_then(Value::as_str)
        && !k.is_empty()
        && k != kind.kind
    {
        let version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        return Err(ApiError::unconvertible(k, version, kind.kind, kind.group));
    }
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), Value::String(want_version));
        }
        Some(v) if v == want_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want_version})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), Value::String(kind.kind.to_string()));
        }
        Some(_) => {}
    }
    if !map.get("metadata").is_none_or(Value::is_object) {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

/// Kubernetes' privilege-escalation check for writes of RBAC objects by users (RBAC on only).
fn check_escalation(ctx: &WriteCtx<'_>, kind: &Kind, obj: &Value) -> Result<(), ApiError> {
    let Some(user) = ctx.user else { return Ok(()) };
    if !ctx.shared.rbac || kind.group != "rbac.authorization.k8s.io" {
        return Ok(());
    }
    let namespace = kind.namespaced.then(|| meta::namespace(obj));
    match rbac::check_rbac_write(user, kind.plural, namespace, obj, &ctx.shared.store) {
        Decision::Allow => Ok(()),
        Decision::Deny { reason } => Err(ApiError::forbidden(reason, Some(kind), meta::name(obj))),
    }
}

/// Maps a store refusal to the Status Kubernetes answers.
fn store_error(kind: &Kind, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(kind, name),
        StoreError::AlreadyExists => ApiError::already_exists(kind, name),
        StoreError::Conflict => ApiError::stale(kind, name),
    }
}

/// Whether two versions of an object differ in anything but server bookkeeping (resourceVersion
/// and managedFields timestamps): a write that changes nothing is not stored, as in Kubernetes.
fn same_content(a: &Value, b: &Value) -> bool {
    fn scrub(v: &Value) -> Value {
        let mut v = v.clone();
        let md = meta::metadata_mut(&mut v);
        md.remove("resourceVersion");
        if let Some(Value::Array(entries)) = md.get_mut("managedFields") {
            for e in entries {
                if let Some(m) = e.as_object_mut() {
                    m.remove("time");
                }
            }
        }
        v
    }
    scrub(a) == scrub(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_meta_is_filled_or_checked() {
        let cm = kinds::find("", "v1", "configmaps").unwrap();
        let mut o = json!({"metadata": {"name": "x"}});
        check_type_meta(cm, &mut o).unwrap();
        assert_eq!(
            (o["apiVersion"].as_str(), o["kind"].as_str()),
            (Some("v1"), Some("ConfigMap"))
        );
        let mut wrong = json!({"apiVersion": "v2", "kind": "ConfigMap"});
        assert_eq!(check_type_meta(cm, &mut wrong).unwrap_err().code, 400);
        let mut wrong_kind = json!({"apiVersion": "v1", "kind": "Secret"});
        assert_eq!(check_type_meta(cm, &mut wrong_kind).unwrap_err().code, 400);
        assert_eq!(check_type_meta(cm, &mut json!([1])).unwrap_err().code, 400);
    }

    #[test]
    fn content_comparison_ignores_bookkeeping() {
        let a = json!({"metadata": {"resourceVersion": "1", "managedFields": [{"manager": "m", "time": "t1"}]}, "data": {"a": "1"}});
        let mut b = a.clone();
        b["metadata"]["resourceVersion"] = json!("2");
        b["metadata"]["managedFields"][0]["time"] = json!("t2");
        assert!(same_content(&a, &b));
        b["data"]["a"] = json!("2");
        assert!(!same_content(&a, &b));
    }
}
