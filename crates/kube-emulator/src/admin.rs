//! The emulator's own endpoints (`/emulator/...`, admin token only): request counters and fault
//! injection over HTTP, for tests and benchmarks that drive the emulator out of process.

use std::sync::Arc;

use http::{Method, Response};
use serde_json::json;

use crate::context::Shared;
use crate::faults::{FaultRequest, Faults};
use crate::handlers::{Body, error_response, json_response};
use crate::status::ApiError;

fn ok() -> Response<Body> {
    json_response(
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200}),
    )
}

/// Serves `/emulator/{path}`; the caller has checked the admin token.
pub fn handle(shared: &Arc<Shared>, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
    match (method, path) {
        (&Method::GET, "counters") => json_response(200, &shared.counters.snapshot().to_json()),
        (&Method::DELETE, "counters") => {
            shared.counters.reset();
            ok()
        }
        (&Method::POST, "faults") => {
            let request: FaultRequest = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => {
                    return error_response(&ApiError::bad_request(format!(
                        "invalid fault request: {e}"
                    )));
                }
            };
            match request.apply(&Faults {
                shared: shared.clone(),
            }) {
                Ok(()) => ok(),
                Err(e) => error_response(&ApiError::bad_request(e)),
            }
        }
        (_, "counters" | "faults") => error_response(&ApiError::method_not_allowed()),
        _ => error_response(&ApiError::path_not_found()),
    }
}

/// Compares tokens without an early exit on the first differing byte.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
    }
}
