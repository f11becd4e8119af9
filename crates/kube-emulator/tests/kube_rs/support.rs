//! Helpers shared by the kube-rs acceptance tests.

use std::future::Future;
use std::time::{Duration, Instant};

use kube::core::Status;
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

/// The Status of a failed request (panics on other errors or success).
pub fn status<T: std::fmt::Debug>(result: kube::Result<T>) -> Box<Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls `check` until it returns Some, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
