//! Limits the servers put on a request's JSON, knowable offline, so that `validate` and the
//! controller reject an entry that Vault would refuse (instead of a pass that fails on it
//! every time). Measured on the default listeners of both servers (a role body with N
//! policies, sent to each dev server):
//!
//! | limit | OpenBao 2.7.2 | HashiCorp Vault 1.21.1 |
//! | --- | --- | --- |
//! | strings in the request (object keys included) | 1,000 (400 "exceeded maximum number of strings") | none seen up to 10,000 |
//! | elements of one array | — | 10,000 (500 "JSON array exceeds allowed element count") |
//! | length of one string | — | 1,048,576 bytes (500 "JSON string value exceeds allowed length") |
//!
//! Both limits apply here whichever server runs, so an entry valid here is valid on both.

use serde_json::{Map, Value};

/// Strings (keys and string values) OpenBao accepts in one request body.
pub const MAX_STRINGS: usize = 1_000;
/// Elements HashiCorp Vault accepts in one JSON array.
pub const MAX_ARRAY_ELEMENTS: usize = 10_000;
/// Bytes HashiCorp Vault accepts in one JSON string.
pub const MAX_STRING_BYTES: usize = 1_048_576;

/// What of `body` (the role body exactly as it is sent) a server would refuse, if anything.
pub fn body_problem(body: &Map<String, Value>) -> Option<String> {
    let mut strings = body.len();
    let mut longest_array = 0usize;
    let mut longest_string = 0usize;
    let mut stack: Vec<&Value> = body.values().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) => {
                strings += 1;
                longest_string = longest_string.max(s.len());
            }
            Value::Array(items) => {
                longest_array = longest_array.max(items.len());
                stack.extend(items);
            }
            Value::Object(map) => {
                strings += map.len();
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    if strings > MAX_STRINGS {
        return Some(format!(
            "the role body would hold {strings} strings, and OpenBao refuses a request with more \
             than {MAX_STRINGS} (\"high complexity\"): bind fewer names or grant fewer policies, \
             or split the entry into several roles"
        ));
    }
    if longest_array > MAX_ARRAY_ELEMENTS {
        return Some(format!(
            "a list of {longest_array} items is longer than the {MAX_ARRAY_ELEMENTS} HashiCorp \
             Vault accepts in one request"
        ));
    }
    if longest_string > MAX_STRING_BYTES {
        return Some(format!(
            "a value of {longest_string} bytes is longer than the {MAX_STRING_BYTES} HashiCorp \
             Vault accepts in one request"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn counts_strings_as_openbao_does() {
        // As measured: 5 strings besides the policies; 995 policies pass, 996 do not.
        let with = |n: usize| {
            body(json!({
                "bound_service_account_names": ["a"],
                "bound_service_account_namespaces": ["b"],
                "token_policies": (0..n).map(|i| format!("p{i}")).collect::<Vec<_>>(),
            }))
        };
        assert_eq!(body_problem(&with(995)), None);
        assert!(
            body_problem(&with(996))
                .unwrap()
                .contains("OpenBao refuses")
        );
    }

    #[test]
    fn long_strings_are_refused() {
        let ok = body(json!({"a": "x".repeat(MAX_STRING_BYTES)}));
        assert_eq!(body_problem(&ok), None);
        let long = body(json!({"a": "x".repeat(MAX_STRING_BYTES + 1)}));
        assert!(body_problem(&long).unwrap().contains("HashiCorp"));
    }
}
