//! Creating objects: names (and generateName), namespaces, server-set metadata, per-kind rules,
//! then the controllers' reactions (default ServiceAccount, token Secrets...).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{WriteCtx, check_escalation, check_type_meta, storage_kind, store_error};
use crate::kinds::Kind;
use crate::patch::fields;
use crate::status::ApiError;
use crate::validation::{FieldError, validate_labels_and_annotations, validate_name};
use crate::{controllers, kinds, meta, strategy};

/// How many generated names to try before giving up (collisions are rare: 27^5 suffixes).
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// Creates an object of `kind` from a request body (in `kind`'s representation) in
/// `url_namespace`; returns the stored object (storage representation).
pub fn create(
    ctx: &WriteCtx<'_>,
    kind: &'static Kind,
    url_namespace: Option<&str>,
    obj: Value,
) -> Result<Arc<Value>, ApiError> {
    create_owned(ctx, kind, url_namespace, obj, None)
}

/// `create`, with field ownership already decided (server-side apply creating an object).
pub(super) fn create_owned(
    ctx: &WriteCtx<'_>,
    kind: &'static Kind,
    url_namespace: Option<&str>,
    mut obj: Value,
    managed_fields: Option<Value>,
) -> Result<Arc<Value>, ApiError> {
    check_type_meta(kind, &mut obj)?;
    crate::schema::prune_unknown(kind, &mut obj, ctx.strict)?;
    let via = kind;
    // events.k8s.io/v1 objects are owned in their own shape and version, as the apiserver's
    // field manager sees them before conversion to storage.
    let managed_fields = match (managed_fields, via.storage) {
        (None, kinds::Storage::EventsV1) => {
            let mut v1 = obj.clone();
            fields::record_update(None, &mut v1, &ctx.manager, &via.api_version(), false);
            v1.pointer("/metadata/managedFields").cloned()
        }
        (m, _) => m,
    };
    let mut obj = strategy::to_storage(kind, obj);
    let kind = storage_kind(kind);

    let md = meta::metadata_mut(&mut obj);
    // Namespace: from the URL, which the body may repeat but not contradict.
    if kind.namespaced {
        let url_ns = url_namespace.unwrap_or("");
        match md.get("namespace").and_then(Value::as_str).unwrap_or("") {
            "" => {
                md.insert("namespace".into(), json!(url_ns));
            }
            body_ns if body_ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {}
        }
    } else {
        md.remove("namespace");
    }
    if md
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|rv| !rv.is_empty())
    {
        return Err(ApiError::internal(
            "Internal error occurred: resourceVersion should not be set on objects to be created",
        ));
    }

    let generate_name = md
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let explicit_name = md
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if explicit_name.is_empty() && generate_name.is_empty() {
        return Err(ApiError::invalid(
            kind,
            "",
            &[FieldError::required(
                "metadata.name",
                "name or generateName is required",
            )],
        ));
    }
    let mut errors = Vec::new();
    if explicit_name.is_empty() {
        // The prefix must be valid once a suffix is appended (a trailing '-' is fine).
        let probe = format!("{}a", generate_name.trim_end_matches('-'));
        errors.extend(validate_name(
            kind.name_rule,
            &probe,
            "metadata.generateName",
        ));
    } else {
        errors.extend(validate_name(
            kind.name_rule,
            &explicit_name,
            "metadata.name",
        ));
    }
    errors.extend(validate_labels_and_annotations(&Value::Object(md.clone())));
    if !errors.is_empty() {
        let shown = if explicit_name.is_empty() {
            &generate_name
        } else {
            &explicit_name
        };
        return Err(ApiError::invalid(kind, shown, &errors));
    }

    // Server-set metadata; whatever the client sent for these is replaced.
    md.insert("uid".into(), json!(meta::new_uid()));
    md.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
    for server_field in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        md.remove(server_field);
    }
    if kind.generation {
        md.insert("generation".into(), json!(1));
    } else {
        md.remove("generation");
    }

    let namespace = meta::namespace(&obj).to_string();
    if kind.namespaced {
        check_namespace_open(ctx, kind, &explicit_name, &namespace)?;
    }
    strategy::decode_defaults(kind, &mut obj)?;
    // Managed fields see the object as decoded: an empty list is still a field there, though
    // it is not served (normalize below).
    match managed_fields {
        Some(managed) => {
            meta::metadata_mut(&mut obj).insert("managedFields".into(), managed);
        }
        None => fields::record_update(
            None,
            &mut obj,
            &ctx.manager,
            &kind.api_version(),
            kind.plural == "namespaces",
        ),
    }
    if kind.kind == "Event" {
        let errors = strategy::event_create_errors(via, &obj);
        if !errors.is_empty() {
            return Err(ApiError::invalid(kind, meta::name(&obj), &errors));
        }
    }
    strategy::prepare_create(kind, &mut obj)?;
    strategy::normalize(&mut obj);

    let mut attempts = if explicit_name.is_empty() {
        GENERATE_NAME_ATTEMPTS
    } else {
        1
    };
    loop {
        if explicit_name.is_empty() {
            let name = format!("{generate_name}{}", meta::random_suffix(5));
            meta::metadata_mut(&mut obj).insert("name".into(), json!(name));
        }
        let name = meta::name(&obj).to_string();
        check_escalation(ctx, kind, &obj)?;
        if ctx.dry_run {
            if ctx
                .shared
                .store
                .get(kind.storage_key(), &namespace, &name)
                .is_some()
            {
                return Err(ApiError::already_exists(kind, &name));
            }
            return Ok(Arc::new(obj));
        }
        match ctx.shared.store.create(kind.storage_key(), obj.clone()) {
            Ok(stored) => {
                tracing::debug!(resource = kind.plural, %namespace, %name, "created");
                return Ok(controllers::after_create(ctx.shared, kind, stored));
            }
            Err(crate::store::StoreError::AlreadyExists) if attempts > 1 => attempts -= 1,
            Err(e) => return Err(store_error(kind, &name, e)),
        }
    }
}

/// A namespaced create needs its namespace to exist and not be terminating.
fn check_namespace_open(
    ctx: &WriteCtx<'_>,
    kind: &Kind,
    name: &str,
    namespace: &str,
) -> Result<(), ApiError> {
    let namespaces = kinds::find("", "v1", "namespaces").expect("namespaces are served");
    match ctx
        .shared
        .store
        .get(namespaces.storage_key(), "", namespace)
    {
        None => Err(ApiError::not_found(namespaces, namespace)),
        Some(ns) if meta::is_deleting(&ns) => {
            Err(ApiError::namespace_terminating(kind, name, namespace))
        }
        Some(_) => Ok(()),
    }
}
