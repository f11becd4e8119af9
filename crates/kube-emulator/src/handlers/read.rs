//! get and list: selectors, pagination with continue tokens, resourceVersion semantics and the
//! Table / PartialObjectMetadata representations.

use base64::Engine;
use http::Response;
use serde_json::{Value, json};

use super::{ApiRequest, Body, Output, json_response};
use crate::context::Shared;
use crate::kinds::Kind;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::table::{self, IncludeObject};
use crate::{meta, strategy};

/// The object as a client of `kind` sees it, in the requested representation.
pub fn render_object(
    kind: &Kind,
    stored: &Value,
    output: Output,
    include: IncludeObject,
    rv: Option<u64>,
) -> Value {
    match output {
        Output::Json => strategy::from_storage(kind, stored),
        Output::Metadata => table::partial_metadata(stored),
        Output::Table => table::table(kind, &[stored], rv, include, true),
    }
}

/// GET of one object.
pub fn get(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let kind = req.target.kind;
    let stored = shared
        .store
        .get(kind.storage_key(), req.namespace(), req.name())
        .ok_or_else(|| ApiError::not_found(kind, req.name()))?;
    let include = IncludeObject::parse(req.query.include_object.as_deref());
    // A Table of one object carries that object's resourceVersion.
    let rv = meta::meta_str(&stored, "resourceVersion").parse().ok();
    Ok(json_response(
        200,
        &render_object(kind, &stored, req.output, include, rv),
    ))
}

/// Selectors of a list, watch or deletecollection; malformed ones are a 400.
pub fn selectors(req: &ApiRequest) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(req.query.label_selector.as_deref().unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let mut fields = FieldSelector::parse(
        req.query.field_selector.as_deref().unwrap_or(""),
        req.target.kind,
    )
    .map_err(ApiError::bad_request)?;
    if let Some(name) = req.target.name.as_deref() {
        // A watch on /.../{name} is a watch with metadata.name={name}.
        fields = FieldSelector::parse(&format!("metadata.name={name}"), req.target.kind)
            .map_err(ApiError::bad_request)?;
    }
    Ok((labels, fields))
}

/// A continue token: the list's resourceVersion and the key to resume after.
fn encode_continue(rv: u64, key: &(String, String)) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [key.0, key.1]});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, (String, String)), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad("not base64"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("not JSON"))?;
    let rv = v["rv"].as_u64().ok_or_else(|| bad("no resourceVersion"))?;
    let ns = v["start"][0].as_str().ok_or_else(|| bad("no start key"))?;
    let name = v["start"][1].as_str().ok_or_else(|| bad("no start key"))?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

/// Checks a list's resourceVersion / resourceVersionMatch against what the store can serve
/// (it keeps only the current state, so an exact older version is gone).
fn check_list_version(shared: &Shared, req: &ApiRequest) -> Result<(), ApiError> {
    let Some(rv) = req
        .query
        .resource_version
        .as_deref()
        .filter(|rv| !rv.is_empty() && *rv != "0")
    else {
        return Ok(());
    };
    let requested: u64 = rv
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?;
    let current = shared.store.current_rv();
    if requested > current {
        let mut e = ApiError::new(
            504,
            format!("Too large resource version: {requested}, current: {current}"),
        );
        e.details = Some(
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
        );
        return Err(e);
    }
    if req.query.resource_version_match.as_deref() == Some("Exact") && requested != current {
        return Err(ApiError::expired(requested, current));
    }
    Ok(())
}

/// LIST of a collection.
pub fn list(shared: &Shared, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    let kind = req.target.kind;
    let (labels, fields) = selectors(req)?;
    let (list_rv, after) = match req.query.continue_token.as_deref() {
        Some(token) => {
            let (rv, key) = decode_continue(token)?;
            if !shared.store.retains(rv) {
                return Err(ApiError::new(
                    410,
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ));
            }
            (Some(rv), Some(key))
        }
        None => {
            check_list_version(shared, req)?;
            (None, None)
        }
    };
    let page = shared.store.list_page(
        kind.storage_key(),
        req.target.namespace.as_deref(),
        after.as_ref(),
        req.query.limit.unwrap_or(0),
        &|o| labels.matches(o) && fields.matches(o),
    );
    let rv = list_rv.unwrap_or(page.rv);
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = &page.next {
        metadata["continue"] = json!(encode_continue(rv, next));
        // Kubernetes counts what remains only when no selector filters it.
        if req.query.label_selector.as_deref().unwrap_or("").is_empty()
            && req.query.field_selector.as_deref().unwrap_or("").is_empty()
        {
            metadata["remainingItemCount"] = json!(page.remaining);
        }
    }
    let stored: Vec<&Value> = page.items.iter().map(|o| &**o).collect();
    let body = match req.output {
        Output::Table => {
            let include = IncludeObject::parse(req.query.include_object.as_deref());
            let mut t = table::table(kind, &stored, Some(rv), include, true);
            t["metadata"] = metadata;
            t
        }
        Output::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": stored.iter().map(|o| table::partial_metadata(o)).collect::<Vec<_>>(),
        }),
        Output::Json => json!({
            "kind": format!("{}List", kind.kind),
            "apiVersion": kind.api_version(),
            "metadata": metadata,
            // Items of built-in lists carry no apiVersion/kind of their own, as in Kubernetes.
            "items": stored
                .iter()
                .map(|o| strip_type_meta(strategy::from_storage(kind, o)))
                .collect::<Vec<_>>(),
        }),
    };
    Ok(json_response(200, &body))
}

fn strip_type_meta(mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, &("ns".into(), "name".into()));
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, ("ns".to_string(), "name".to_string()))
        );
        assert_eq!(decode_continue("!!").unwrap_err().code, 400);
    }
}
