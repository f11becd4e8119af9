//! create, update, patch, delete and deletecollection over HTTP: request decoding and response
//! shapes; the rules themselves live in `ops`.

use http::Response;
use serde_json::{Value, json};

use super::read::{render_object, selectors};
use super::{ApiRequest, Body, json_response, parse_body};
use crate::context::Shared;
use crate::ops::{self, DeleteOptions, DeleteOutcome, WriteCtx};
use crate::patch::PatchType;
use crate::status::{self, ApiError};
use crate::table::IncludeObject;
use crate::validation::FieldError;
use crate::{meta, strategy};

fn ctx<'a>(shared: &'a Shared, req: &'a ApiRequest) -> WriteCtx<'a> {
    WriteCtx {
        shared,
        user: Some(&req.user),
        manager: req.manager.clone(),
        dry_run: req.query.dry_run,
        strict: req.query.field_validation.as_deref() == Some("Strict"),
    }
}

fn respond(req: &ApiRequest, code: u16, stored: &Value) -> Response<Body> {
    let include = IncludeObject::parse(req.query.include_object.as_deref());
    json_response(
        code,
        &render_object(req.target.kind, stored, req.output, include, None),
    )
}

/// POST to a collection.
pub fn create(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let body = req.json_body()?;
    let ns = req.target.namespace.as_deref();
    let created = ops::create(&ctx(shared, req), req.target.kind, ns, body)?;
    Ok(respond(req, 201, &created))
}

/// PUT of an object.
pub fn update(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let body = req.json_body()?;
    let updated = ops::update(
        &ctx(shared, req),
        req.target.kind,
        req.namespace(),
        req.name(),
        body,
    )?;
    Ok(respond(req, 200, &updated))
}

/// PATCH of an object (server-side apply included).
pub fn patch(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let patch_type = PatchType::from_content_type(&req.content_type)
        .ok_or_else(ApiError::unsupported_patch_type)?;
    if patch_type == PatchType::Apply && req.query.field_manager.as_deref().unwrap_or("").is_empty()
    {
        return Err(ApiError::invalid_options(
            "PatchOptions",
            &FieldError::required("fieldManager", "is required for apply patch"),
        ));
    }
    let body = parse_body(&req.body, &req.content_type).map_err(|e| match patch_type {
        // kube-apiserver's merge patch reports a malformed body in these words.
        PatchType::Merge => ApiError::bad_request("invalid JSON patch"),
        _ => e,
    })?;
    let (obj, created) = ops::patch(
        &ctx(shared, req),
        req.target.kind,
        req.namespace(),
        req.name(),
        patch_type,
        &body,
        req.query.force,
    )?;
    Ok(respond(req, if created { 201 } else { 200 }, &obj))
}

fn delete_options(req: &ApiRequest) -> Result<(DeleteOptions, bool), ApiError> {
    let query_orphan = req.query.propagation_policy.as_deref() == Some("Orphan");
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok((
            DeleteOptions {
                orphan: query_orphan,
                ..Default::default()
            },
            false,
        ));
    }
    let body = parse_body(&req.body, &req.content_type)?;
    let dry_run = body["dryRun"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    let mut options = DeleteOptions::from_body(Some(&body));
    options.orphan |= query_orphan;
    Ok((options, dry_run))
}

/// DELETE of an object.
pub fn delete(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let (options, body_dry_run) = delete_options(req)?;
    let mut ctx = ctx(shared, req);
    ctx.dry_run |= body_dry_run;
    let kind = req.target.kind;
    match ops::delete(&ctx, kind, req.namespace(), req.name(), &options)? {
        DeleteOutcome::Deleted(last) if !kind.delete_returns_object => Ok(json_response(
            200,
            &status::success(kind, meta::name(&last), meta::meta_str(&last, "uid")),
        )),
        DeleteOutcome::Deleted(obj) | DeleteOutcome::Pending(obj) => Ok(respond(req, 200, &obj)),
    }
}

/// DELETE of a collection: every matching object, answered with the list of them.
pub fn delete_collection(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(req)?;
    let (options, body_dry_run) = delete_options(req)?;
    let mut ctx = ctx(shared, req);
    ctx.dry_run |= body_dry_run;
    let kind = req.target.kind;
    let matching = shared.store.list_page(
        kind.storage_key(),
        req.target.namespace.as_deref(),
        None,
        0,
        &|o| labels.matches(o) && fields.matches(o),
    );
    let mut items = Vec::new();
    for obj in matching.items {
        match ops::delete(
            &ctx,
            kind,
            meta::namespace(&obj),
            meta::name(&obj),
            &options,
        ) {
            Ok(DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o)) => {
                let mut item = strategy::from_storage(kind, &o);
                if let Some(m) = item.as_object_mut() {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                items.push(item);
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", kind.kind),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": shared.store.current_rv().to_string()},
            "items": items,
        }),
    ))
}
