//! Updating objects (PUT) and patching them (JSON, merge, strategic merge, server-side apply):
//! both end in `finish_update`, which keeps server-owned metadata, enforces resourceVersion
//! preconditions, immutable fields and finalizer rules, records field managers and skips no-ops.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{WriteCtx, check_escalation, check_type_meta, same_content, storage_kind, store_error};
use crate::kinds::Kind;
use crate::patch::{self, PatchType, apply, fields};
use crate::status::ApiError;
use crate::store::StoreError;
use crate::validation::{FieldError, validate_labels_and_annotations};
use crate::{controllers, meta, strategy};

/// Retries of a patch that raced with another write (Kubernetes retries these internally too).
const PATCH_ATTEMPTS: usize = 5;

/// Metadata only the server sets; carried over from the stored object on every update.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

fn name_mismatch(body_name: &str, url_name: &str) -> ApiError {
    ApiError::bad_request(format!(
        "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
    ))
}

/// Replaces an object (PUT).
pub fn update(
    ctx: &WriteCtx<'_>,
    kind: &'static Kind,
    namespace: &str,
    name: &str,
    mut obj: Value,
) -> Result<Arc<Value>, ApiError> {
    check_type_meta(kind, &mut obj)?;
    crate::schema::prune_unknown(kind, &mut obj, ctx.strict)?;
    let obj = strategy::to_storage(kind, obj);
    let via = kind;
    let kind = storage_kind(kind);
    if meta::name(&obj) != name {
        return Err(name_mismatch(meta::name(&obj), name));
    }
    let body_ns = meta::namespace(&obj);
    if kind.namespaced && !body_ns.is_empty() && body_ns != namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let old = ctx
        .shared
        .store
        .get(kind.storage_key(), namespace, name)
        .ok_or_else(|| ApiError::not_found(kind, name))?;
    let precondition = meta::meta_str(&obj, "resourceVersion");
    if !precondition.is_empty()
        && precondition.parse::<u64>().ok() != Some(meta::resource_version(&old))
    {
        return Err(ApiError::stale(kind, name));
    }
    finish_update(ctx, via, &old, obj, true).map_err(|e| e.into_api(kind, name))
}

/// Why `finish_update` failed: a real error, or a lost race the caller may retry.
pub(super) enum UpdateError {
    Api(ApiError),
    Raced,
}

impl UpdateError {
    fn into_api(self, kind: &Kind, name: &str) -> ApiError {
        match self {
            UpdateError::Api(e) => e,
            UpdateError::Raced => ApiError::stale(kind, name),
        }
    }
}

impl From<ApiError> for UpdateError {
    fn from(e: ApiError) -> Self {
        UpdateError::Api(e)
    }
}

/// Patches an object; server-side apply creates it when missing. Returns the object and
/// whether it was created.
pub fn patch(
    ctx: &WriteCtx<'_>,
    kind: &'static Kind,
    namespace: &str,
    name: &str,
    patch_type: PatchType,
    body: &Value,
    force: bool,
) -> Result<(Arc<Value>, bool), ApiError> {
    let skind = storage_kind(kind);
    if force && patch_type != PatchType::Apply {
        return Err(ApiError::invalid_options(
            "PatchOptions",
            &FieldError::forbidden("force", "may not be specified for non-apply patch"),
        ));
    }
    for _ in 0..PATCH_ATTEMPTS {
        let Some(old) = ctx.shared.store.get(skind.storage_key(), namespace, name) else {
            if patch_type != PatchType::Apply {
                return Err(ApiError::not_found(kind, name));
            }
            return apply_create(ctx, kind, namespace, name, body, force).map(|o| (o, true));
        };
        let current = strategy::from_storage(kind, &old);
        let mut patched = current.clone();
        let record_manager = match patch_type {
            PatchType::Json => {
                patch::json_patch(&mut patched, body).map_err(json_patch_error)?;
                true
            }
            PatchType::Merge => {
                patch::merge_patch(&mut patched, body);
                true
            }
            PatchType::Strategic => {
                patch::strategic_merge(skind.plural, &mut patched, body)
                    .map_err(ApiError::bad_request)?;
                true
            }
            PatchType::Apply => {
                let config = apply_config(kind, name, body)?;
                patched = apply::apply(
                    Some(&current),
                    &config,
                    &ctx.manager,
                    force,
                    &kind.api_version(),
                    skind.plural == "namespaces",
                )
                .map_err(|c| apply_conflict(&c))?;
                false
            }
        };
        check_type_meta(kind, &mut patched)?;
        crate::schema::prune_unknown(kind, &mut patched, ctx.strict)?;
        if meta::name(&patched) != name {
            return Err(name_mismatch(meta::name(&patched), name));
        }
        // A resourceVersion in the patch is a precondition; otherwise the patch applies to
        // whatever is current (and is retried if another write slips in between). Whether the
        // patch names one is read from the patch itself: the patched object always carries the
        // current one, so it cannot tell.
        let pinned = patch_names_resource_version(patch_type, body);
        if pinned
            && meta::meta_str(&patched, "resourceVersion")
                != meta::meta_str(&current, "resourceVersion")
        {
            return Err(ApiError::stale(kind, name));
        }
        let new = strategy::to_storage(kind, patched);
        match finish_update(ctx, kind, &old, new, record_manager) {
            Ok(obj) => return Ok((obj, false)),
            Err(UpdateError::Raced) if !pinned => continue,
            Err(e) => return Err(e.into_api(kind, name)),
        }
    }
    Err(ApiError::new(
        409,
        format!(
            "too many conflicts patching {} \"{name}\"",
            kind.qualified_resource()
        ),
    ))
}

/// True when the patch sets `metadata.resourceVersion` (a precondition, as in kube-apiserver,
/// which retries only the patches that do not).
fn patch_names_resource_version(patch_type: PatchType, body: &Value) -> bool {
    match patch_type {
        PatchType::Json => body.as_array().is_some_and(|ops| {
            ops.iter()
                .any(|op| op["path"].as_str() == Some("/metadata/resourceVersion"))
        }),
        PatchType::Merge | PatchType::Strategic | PatchType::Apply => body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty()),
    }
}

/// Validates an applied configuration: it must name its type and the object of the URL.
fn apply_config(kind: &Kind, name: &str, body: &Value) -> Result<Value, ApiError> {
    let mut config = body.clone();
    let text = |f: &str| {
        config
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind_name) = (text("apiVersion"), text("kind"));
    if api_version.is_empty() || kind_name.is_empty() {
        // Printed as Go prints the GroupVersionKind it could not resolve.
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        };
        return Err(ApiError::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={kind_name}"
        )));
    }
    check_type_meta(kind, &mut config)?;
    // An applied configuration names only fields it means to own: unknown ones are an error.
    crate::schema::prune_unknown(kind, &mut config, true)?;
    let config_name = meta::name(&config);
    if !config_name.is_empty() && config_name != name {
        return Err(name_mismatch(config_name, name));
    }
    meta::metadata_mut(&mut config).insert("name".into(), json!(name));
    Ok(config)
}

/// kube-apiserver's answers to a JSON patch that does not decode or does not apply (it words
/// neither after the failing operation).
fn json_patch_error(e: patch::JsonPatchError) -> ApiError {
    match e {
        patch::JsonPatchError::Undecodable(_) => ApiError::bad_request(
            "error decoding patch: json: cannot unmarshal object into Go value of type \
             []handlers.jsonPatchOp",
        ),
        patch::JsonPatchError::Failed(_) => ApiError {
            details: Some(json!({})),
            ..ApiError::new(
                422,
                "the server rejected our request due to an error in our request",
            )
        },
    }
}

/// 409 for an apply that conflicts; kube-apiserver names neither the object nor its kind here.
fn apply_conflict(conflicts: &[apply::Conflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.with()), "field": c.field}))
        .collect();
    let mut e = ApiError::new(409, apply::Conflict::summary(conflicts));
    e.details = Some(json!({"causes": causes}));
    e
}

/// Server-side apply of an object that does not exist yet: a create owned by the applier.
fn apply_create(
    ctx: &WriteCtx<'_>,
    kind: &'static Kind,
    namespace: &str,
    name: &str,
    body: &Value,
    force: bool,
) -> Result<Arc<Value>, ApiError> {
    let config = apply_config(kind, name, body)?;
    let applied = apply::apply(
        None,
        &config,
        &ctx.manager,
        force,
        &kind.api_version(),
        kind.plural == "namespaces",
    )
    .map_err(|c| apply_conflict(&c))?;
    let managed = applied.pointer("/metadata/managedFields").cloned();
    let url_ns = storage_kind(kind).namespaced.then_some(namespace);
    super::create::create_owned(ctx, kind, url_ns, applied, managed)
}

/// The common end of update and patch, in storage representation.
/// Finishes an update of `old` (stored) to `new` (storage form) requested through the API of
/// `via` (events.k8s.io/v1 for Events written that way: their fields are owned in that shape).
pub(super) fn finish_update(
    ctx: &WriteCtx<'_>,
    via: &'static Kind,
    old: &Arc<Value>,
    mut new: Value,
    record_manager: bool,
) -> Result<Arc<Value>, UpdateError> {
    let kind = storage_kind(via);
    let name = meta::name(old).to_string();
    let namespace = meta::namespace(old).to_string();
    let body_uid = meta::meta_str(&new, "uid");
    let old_uid = meta::meta_str(old, "uid");
    if !body_uid.is_empty() && body_uid != old_uid {
        return Err(ApiError::precondition_uid(kind, &name, body_uid, old_uid).into());
    }
    {
        let old_md = meta::metadata(old).clone();
        let md = meta::metadata_mut(&mut new);
        for field in SERVER_METADATA {
            match old_md.get(*field) {
                Some(v) => md.insert(field.to_string(), v.clone()),
                None => md.remove(*field),
            };
        }
        if kind.namespaced {
            md.insert("namespace".into(), json!(namespace));
        } else {
            md.remove("namespace");
        }
        md.insert(
            "resourceVersion".into(),
            json!(meta::meta_str(old, "resourceVersion")),
        );
    }
    let label_errors =
        validate_labels_and_annotations(&Value::Object(meta::metadata(&new).clone()));
    if !label_errors.is_empty() {
        return Err(ApiError::invalid(kind, &name, &label_errors).into());
    }
    if meta::is_deleting(old) {
        let before = meta::finalizers(old);
        let added: Vec<String> = meta::finalizers(&new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                kind,
                &name,
                &[FieldError::forbidden(
                    "metadata.finalizers",
                    &format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}", added.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ")),
                )],
            )
            .into());
        }
    }
    strategy::prepare_update(kind, old, &mut new)?;
    strategy::normalize(&mut new);
    if kind.generation && spec_changed(old, &new) {
        let generation = meta::metadata(old)
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta::metadata_mut(&mut new).insert("generation".into(), json!(generation));
    }
    if record_manager && via.storage == crate::kinds::Storage::EventsV1 {
        let mut seen = strategy::from_storage(via, &new);
        fields::record_update(
            Some(&strategy::from_storage(via, old)),
            &mut seen,
            &ctx.manager,
            &via.api_version(),
            false,
        );
        let managed = seen.pointer("/metadata/managedFields").cloned();
        let md = meta::metadata_mut(&mut new);
        match managed {
            Some(m) => md.insert("managedFields".into(), m),
            None => md.remove("managedFields"),
        };
    } else if record_manager {
        fields::record_update(
            Some(old),
            &mut new,
            &ctx.manager,
            &kind.api_version(),
            kind.plural == "namespaces",
        );
    }
    if same_content(old, &new) {
        return Ok(old.clone());
    }
    check_escalation(ctx, kind, &new)?;
    if ctx.dry_run {
        return Ok(Arc::new(new));
    }
    let expected = Some(meta::resource_version(old));
    let store = &ctx.shared.store;
    // A namespace's spec.finalizers (its content) are released by the namespace controller.
    let spec_finalizers = kind.plural == "namespaces"
        && new["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
    if meta::is_deleting(&new) && meta::finalizers(&new).is_empty() && !spec_finalizers {
        // The last finalizer is gone: the deletion completes now.
        let gone = match store.update(kind.storage_key(), new, expected) {
            Ok(last) => store.delete(
                kind.storage_key(),
                &namespace,
                &name,
                Some(meta::resource_version(&last)),
            ),
            Err(e) => Err(e),
        };
        return match gone {
            Ok(last) => {
                controllers::after_delete(ctx.shared, kind, &last, false);
                Ok(last)
            }
            Err(StoreError::Conflict) => Err(UpdateError::Raced),
            Err(e) => Err(store_error(kind, &name, e).into()),
        };
    }
    match store.update(kind.storage_key(), new, expected) {
        Ok(stored) => Ok(controllers::after_update(ctx.shared, kind, stored)),
        Err(StoreError::Conflict) => Err(UpdateError::Raced),
        Err(e) => Err(store_error(kind, &name, e).into()),
    }
}

/// Whether anything outside metadata and status changed (what bumps metadata.generation).
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_patch_that_sets_a_resource_version_is_a_precondition() {
        let merge = |body| patch_names_resource_version(PatchType::Merge, &body);
        assert!(!merge(json!({"data": {"k": "v"}})));
        assert!(!merge(json!({"metadata": {"annotations": {"a": "b"}}})));
        assert!(merge(
            json!({"metadata": {"resourceVersion": "42"}, "data": {}})
        ));
        let json_patch = |body| patch_names_resource_version(PatchType::Json, &body);
        assert!(!json_patch(
            json!([{"op": "add", "path": "/data/k", "value": "v"}])
        ));
        assert!(json_patch(json!([
            {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"}
        ])));
    }
}
