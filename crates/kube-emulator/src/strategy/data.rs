//! Secret and ConfigMap data: `stringData` folded into `data`, base64 checks, key names.

use base64::Engine;
use serde_json::{Value, json};

use crate::status::ApiError;
use crate::validation::FieldError;

/// Folds Secret `stringData` into `data` and checks base64 values, as the apiserver's decoding does.
pub(super) fn prepare_data(obj: &mut Value, secret: bool) -> Result<(), ApiError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if secret
        && let Some(Value::Object(string_data)) =
            obj.as_object_mut().and_then(|m| m.remove("stringData"))
    {
        let data = obj
            .as_object_mut()
            .expect("checked above")
            .entry("data")
            .or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (k, v) in string_data {
            data[&k] = json!(b64.encode(v.as_str().unwrap_or("")));
        }
    }
    let binary_fields: &[&str] = if secret { &["data"] } else { &["binaryData"] };
    let kind = if secret { "Secret" } else { "ConfigMap" };
    for field in binary_fields {
        if let Some(map) = obj.get(*field).and_then(Value::as_object) {
            for v in map.values() {
                let Some(text) = v.as_str() else {
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version \"v1\" cannot be handled as a {kind}: \
                         values of {field} must be base64-encoded strings"
                    )));
                };
                if let Err(e) = b64.decode(text) {
                    // Go's decoder names the offset of the first byte it cannot use.
                    let at = match e {
                        base64::DecodeError::InvalidByte(at, _)
                        | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                        _ => text.len(),
                    };
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version \"v1\" cannot be handled as a {kind}: \
                         illegal base64 data at input byte {at}"
                    )));
                }
            }
        }
    }
    if let Some(data) = obj.get("data").and_then(Value::as_object)
        && !secret
        && data.values().any(|v| !v.is_string())
    {
        return Err(ApiError::bad_request(
            "ConfigMap data values must be strings",
        ));
    }
    Ok(())
}

fn is_config_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k != "."
        && k != ".."
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(super) fn data_key_errors(obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for field in ["data", "binaryData"] {
        if let Some(map) = obj.get(field).and_then(Value::as_object) {
            for k in map.keys().filter(|k| !is_config_key(k)) {
                errors.push(FieldError::invalid(
                    &format!("{field}[{k}]"),
                    k,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    errors
}
