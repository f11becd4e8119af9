//! The admin HTTP server: `/livez`, `/readyz` and `/metrics` (Prometheus text format).
//!
//! Three fixed routes do not need a web framework: this is hyper (already in the tree through
//! kube) serving plain HTTP/1.1 on the admin port.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::vault::{TokenStatus, VaultClient};

/// What the admin endpoints report on.
#[derive(Clone)]
pub struct AdminState {
    pub health: Health,
    pub metrics: Metrics,
    pub vault: VaultClient,
}

/// Binds the admin port (0 = any free port) and serves until `shutdown`; returns the address.
pub async fn start(
    bind: SocketAddr,
    state: AdminState,
    shutdown: CancellationToken,
) -> Result<SocketAddr> {
    let setting = || {
        format!(
            "{} / {}",
            crate::cli::Setting::AdminAddress.describe(),
            crate::cli::Setting::AdminPort.describe()
        )
    };
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| Error::InvalidSetting {
            setting: setting(),
            message: format!("cannot listen on {bind}: {e}"),
        })?;
    let addr = listener.local_addr().map_err(|e| Error::InvalidSetting {
        setting: setting(),
        message: e.to_string(),
    })?;
    info!(%addr, "admin server listening (/livez, /readyz, /metrics)");
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(error) => { debug!(%error, "admin accept failed"); continue; }
                },
                () = shutdown.cancelled() => return,
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(route(&state, &req)) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn route(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_string());
    }
    match req.uri().path() {
        "/livez" | "/healthz" => text(StatusCode::OK, "ok\n".to_string()),
        "/readyz" => {
            let token = state.vault.token_status();
            record_token_ttl(state, &token);
            let stalled = state
                .metrics
                .oldest_in_flight()
                .filter(|(_, waited)| *waited >= crate::health::STALLED_REQUEST);
            let readiness = match stalled {
                // The wait, and what ended the last pass if it failed (e.g. the previous
                // request's timeout): both are news to whoever reads the probe.
                Some((target, waited)) => Err(match state.health.last_failure() {
                    Some(cause) => format!(
                        "a request to {target} has been waiting {} s for an answer ({cause})",
                        waited.as_secs()
                    ),
                    None => format!(
                        "a request to {target} has been waiting {} s for an answer",
                        waited.as_secs()
                    ),
                }),
                None => state.health.readiness(token.valid),
            };
            match readiness {
                Ok(()) => text(StatusCode::OK, "ready\n".to_string()),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            }
        }
        "/metrics" => {
            let token = state.vault.token_status();
            record_token_ttl(state, &token);
            Response::builder()
                .status(StatusCode::OK)
                .header(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(Full::new(Bytes::from(state.metrics.encode())))
                .expect("static response parts are valid")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_string()),
    }
}

/// Seconds left on the Vault token: 0 without a valid one, +Inf when it never expires.
fn record_token_ttl(state: &AdminState, token: &TokenStatus) {
    let ttl = match (token.valid, token.ttl) {
        (false, _) => 0.0,
        (true, None) => f64::INFINITY,
        (true, Some(ttl)) => ttl.as_secs_f64(),
    };
    state.metrics.set_vault_token_ttl(ttl);
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
