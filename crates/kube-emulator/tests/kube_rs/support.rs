//! Helpers shared by the kube-rs acceptance tests.

use std::future::Future;
use std::time::Duration;

use kube_emulator::{Emulator, Options};

/// Starts an emulator with default options.
pub async fn emulator() -> Emulator {
    emulator_with(Options::default()).await
}

/// Starts an emulator with `options`.
pub async fn emulator_with(options: Options) -> Emulator {
    kube_emulator::start(options)
        .await
        .expect("the emulator starts")
}

/// The Status of a failed request (panics on other errors or success): testkit's.
pub use testkit::objects::api_error as status;

/// Polls `check` until it returns Some, or panics after `timeout` with `what`: testkit's
/// `wait_for`, without the elapsed time.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    testkit::wait_for(what, timeout, check).await.0
}

/// A raw request through the emulator's admin client, returning status code and JSON body.
pub async fn raw(
    emu: &Emulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(kube::client::Body::from(body.to_vec()))
        .expect("a valid request");
    let response = emu
        .client()
        .send(request)
        .await
        .expect("the request is answered");
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("the body is read")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (code, json)
}

/// `POST /emulator/faults` with a JSON `body` as the admin; the response's status code.
pub async fn post_faults(emu: &Emulator, body: &str) -> u16 {
    let json = [("content-type", "application/json")];
    raw(emu, "POST", "/emulator/faults", &json, body.as_bytes())
        .await
        .0
}
