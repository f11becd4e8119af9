//! The HTTPS server: TLS accept loop, HTTP/1.1 and HTTP/2 connections, and the path every
//! request takes (authentication, counters, faults, authorization, dispatch).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth::UserInfo;
use crate::auth::rbac::{self, Attributes, Decision};
use crate::context::Shared;
use crate::handlers::{self, ApiRequest, Body, Output, error_response, json_response};
use crate::request::{self, Query, Route};
use crate::status::ApiError;
use crate::{admin, discovery, impersonation, openapi};

/// Largest request body accepted (the apiserver's limit is about 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Accepts connections until shutdown.
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, shared: Arc<Shared>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shared.shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tls, shared, builder) = (tls.clone(), shared.clone(), builder.clone());
        tokio::spawn(async move {
            let stream = match tls.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service_shared = shared.clone();
            let service = hyper::service::service_fn(move |req| {
                let shared = service_shared.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(shared, req).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = shared.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The field manager Kubernetes derives from a User-Agent ("kubectl/v1.32 (...)" -> "kubectl").
fn manager_from_user_agent(ua: &str) -> String {
    let prefix = ua.split('/').next().unwrap_or("").trim();
    let name = if prefix.is_empty() { "unknown" } else { prefix };
    name.chars().take(128).collect()
}

/// What a request is, for counters, faults and authorization.
struct Classified {
    verb: String,
    resource: String,
    attributes: Attributes,
}

fn classify(
    method: &Method,
    path: &str,
    route: &Route,
    query: &Query,
) -> Result<Classified, ApiError> {
    if let Route::Resource(t) = route {
        let verb = request::verb(method, t, query).ok_or_else(ApiError::method_not_allowed)?;
        let resource = match &t.subresource {
            Some(sub) => format!("{}/{sub}", t.kind.plural),
            None => t.kind.plural.to_string(),
        };
        return Ok(Classified {
            verb: verb.to_string(),
            resource,
            attributes: Attributes {
                verb: verb.to_string(),
                api_group: t.kind.group.to_string(),
                resource: t.kind.plural.to_string(),
                subresource: t.subresource.clone().unwrap_or_default(),
                namespace: t.namespace.clone().unwrap_or_default(),
                name: t
                    .name
                    .clone()
                    .or_else(|| request::selected_name(verb, t, query))
                    .unwrap_or_default(),
                path: path.to_string(),
                resource_request: true,
            },
        });
    }
    let verb = match *method {
        Method::HEAD => "get".to_string(),
        ref m => m.as_str().to_ascii_lowercase(),
    };
    Ok(Classified {
        verb: verb.clone(),
        resource: path.to_string(),
        attributes: Attributes {
            verb,
            api_group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            path: path.to_string(),
            resource_request: false,
        },
    })
}

async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::new(413, "the request body is too large"))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

/// Serves one request.
pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let route = request::route(&path);

    if let Route::Emulator(sub) = &route {
        let is_admin =
            bearer(&parts.headers).is_some_and(|t| admin::same_token(t, &shared.admin_token));
        if !is_admin {
            return error_response(&ApiError::unauthorized());
        }
        return match read_body(body).await {
            Ok(bytes) => admin::handle(&shared, &parts.method, sub, &bytes),
            Err(e) => error_response(&e),
        };
    }

    let query = match Query::parse(parts.uri.query()) {
        Ok(q) => q,
        Err(msg) => return error_response(&ApiError::bad_request(msg)),
    };
    let classified = match classify(&parts.method, &path, &route, &query) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let identity = authenticate(&shared, &parts.headers)
        .and_then(|user| impersonation::apply(&shared, user, &parts.headers));
    let response = match identity {
        Err(e) => error_response(&e),
        Ok(user) => {
            serve_authenticated(&shared, parts, body, route, query, &classified, user).await
        }
    };
    let code = response.status().as_u16();
    shared
        .counters
        .record(&classified.verb, &classified.resource, code);
    tracing::debug!(verb = %classified.verb, resource = %classified.resource, code, "request");
    response
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::unauthorized)?;
    shared
        .authn
        .authenticate(token, &shared.store, shared.token_clock())
        .map_err(|reason| {
            tracing::debug!(%reason, "authentication failed");
            ApiError::unauthorized()
        })
}

async fn serve_authenticated(
    shared: &Arc<Shared>,
    parts: http::request::Parts,
    body: Incoming,
    route: Route,
    query: Query,
    classified: &Classified,
    user: UserInfo,
) -> Response<Body> {
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(code) = shared.faults.take(&classified.verb, &classified.resource) {
        return error_response(&ApiError::new(
            code,
            format!(
                "injected fault: {} {} fails with {code}",
                classified.verb, classified.resource
            ),
        ));
    }
    if shared.rbac
        && let Decision::Deny { reason } =
            rbac::authorize(&user, &classified.attributes, &shared.store)
    {
        tracing::debug!(user = %user.username, %reason, "forbidden");
        let message = rbac::forbidden_message(&user, &classified.attributes);
        let kind = match &route {
            Route::Resource(t) => Some(t.kind),
            _ => None,
        };
        return error_response(&ApiError::forbidden(
            message,
            kind,
            &classified.attributes.name,
        ));
    }
    match route {
        Route::Version => json_response(200, &discovery::version()),
        Route::Health => Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(handlers::full("ok"))
            .expect("static response parts are valid"),
        Route::CoreVersions => {
            json_response(200, &discovery::core_versions(&shared.server_address))
        }
        Route::GroupList => json_response(200, &discovery::group_list()),
        Route::Group(g) => discovery_or_404(discovery::group(&g)),
        Route::ResourceList { group, version } => {
            discovery_or_404(discovery::resource_list(&group, &version))
        }
        Route::OpenApiV2 => openapi::v2(&parts.headers),
        Route::OpenApiV3Index => openapi::v3_index(),
        Route::OpenApiV3(name) => openapi::v3_document(&name, parts.uri.query(), &parts.headers),
        Route::Emulator(_) => error_response(&ApiError::path_not_found()),
        Route::NotFound => not_found(parts.uri.path()),
        Route::Resource(target) => {
            let bytes = match read_body(body).await {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            let manager = query
                .field_manager
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| {
                    manager_from_user_agent(header_str(&parts.headers, header::USER_AGENT))
                });
            let req = ApiRequest {
                output: Output::from_accept(header_str(&parts.headers, header::ACCEPT)),
                content_type: header_str(&parts.headers, header::CONTENT_TYPE).to_string(),
                accept: header_str(&parts.headers, header::ACCEPT).to_string(),
                verb: static_verb(&classified.verb),
                target,
                query,
                user,
                manager,
                body: bytes,
            };
            handlers::resource(shared, req).await
        }
    }
}

fn static_verb(verb: &str) -> &'static str {
    const VERBS: &[&str] = &[
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    VERBS
        .iter()
        .copied()
        .find(|v| *v == verb)
        .unwrap_or("unknown")
}

/// 404 for a path nothing serves: a `Status` inside a served group-version (its handler says
/// "not found"), Go's plain-text page anywhere else, as kube-apiserver answers.
fn not_found(path: &str) -> Response<Body> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let served = match segments.as_slice() {
        ["api", "v1", ..] => true,
        ["apis", group, version, ..] => discovery::resource_list(group, version).is_some(),
        _ => false,
    };
    if served {
        return error_response(&ApiError::path_not_found());
    }
    Response::builder()
        .status(404)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(handlers::full("404 page not found\n"))
        .expect("static response parts are valid")
}

fn discovery_or_404(doc: Option<Value>) -> Response<Body> {
    match doc {
        Some(d) => json_response(200, &d),
        None => error_response(&ApiError::path_not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_and_managers() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        assert_eq!(
            manager_from_user_agent("kubectl/v1.32.4 (linux/amd64) kubernetes/abc"),
            "kubectl"
        );
        assert_eq!(manager_from_user_agent(""), "unknown");
    }

    #[test]
    fn classification_of_resource_and_other_requests() {
        let q = Query::default();
        let route = request::route("/api/v1/namespaces/a/serviceaccounts/sa/token");
        let c = classify(
            &Method::POST,
            "/api/v1/namespaces/a/serviceaccounts/sa/token",
            &route,
            &q,
        )
        .unwrap();
        assert_eq!(
            (c.verb.as_str(), c.resource.as_str()),
            ("create", "serviceaccounts/token")
        );
        assert_eq!(c.attributes.subresource, "token");
        let path = "/api/v1/namespaces/a/configmaps";
        let pinned = Query::parse(Some("fieldSelector=metadata.name%3Dx")).unwrap();
        let c = classify(&Method::GET, path, &request::route(path), &pinned).unwrap();
        assert_eq!((c.verb.as_str(), c.attributes.name.as_str()), ("list", "x"));
        let c = classify(&Method::GET, "/version", &request::route("/version"), &q).unwrap();
        assert_eq!((c.verb.as_str(), c.resource.as_str()), ("get", "/version"));
        assert!(!c.attributes.resource_request);
    }
}
