//! Counts every request the kube client sends (watches and lists included) by operation and
//! status, as a tower layer on the client, so no call site can forget to count.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::metrics::Metrics;

/// Layer adding [`RequestMetrics`] to a kube client's service stack.
#[derive(Clone)]
pub struct RequestMetricsLayer {
    metrics: Metrics,
}

impl RequestMetricsLayer {
    /// Counts into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        RequestMetricsLayer { metrics }
    }
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The counting service.
#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, R> Service<Request<B>> for RequestMetrics<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let operation = operation(req.method(), req.uri().path(), req.uri().query());
        // One span per request (until the response head arrives), so what the client logs
        // about it is tied to the operation and to the pass that sent it.
        let span = tracing::info_span!(
            "kubernetes_request",
            verb = operation.verb,
            resource = %operation.resource
        );
        let metrics = self.metrics.clone();
        // Until the response head: a watch's stream is not "in flight" once it is answered.
        let in_flight = metrics.request_in_flight("Kubernetes");
        let started = std::time::Instant::now();
        let future = self.inner.call(req);
        Box::pin(
            async move {
                let result = future.await;
                drop(in_flight);
                let status = result.as_ref().ok().map(|r| r.status().as_u16());
                metrics.kubernetes_request(
                    operation.verb,
                    &operation.resource,
                    status,
                    started.elapsed().as_secs_f64(),
                );
                result
            }
            .instrument(span),
        )
    }
}

/// What a Kubernetes API request does: its verb as the API server's audit log names it (get,
/// list, watch, create, update, patch, delete, deletecollection) and its resource with the
/// subresource (`serviceaccounts/token`). Names and namespaces are left out so the label set
/// stays small.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub verb: &'static str,
    pub resource: String,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)
    }
}

/// The [`Operation`] of a request (a path outside the resource API, e.g. `/version`, is its
/// own resource).
pub fn operation(method: &Method, path: &str, query: Option<&str>) -> Operation {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method_verb = || match *method {
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    };
    // /api/v1/... or /apis/<group>/<version>/...
    let rest = match segments.first() {
        Some(&"api") if segments.len() >= 2 => &segments[2..],
        Some(&"apis") if segments.len() >= 3 => &segments[3..],
        _ => {
            return Operation {
                verb: method_verb(),
                resource: path.to_string(),
            };
        }
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let (resource, named) = match rest {
        [] => (String::new(), false),
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
    };
    let watch = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::DELETE if !named => "deletecollection",
        _ => method_verb(),
    };
    Operation { verb, resource }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_operations_like_the_audit_log() {
        let cases = [
            (
                Method::GET,
                "/api/v1/serviceaccounts",
                Some("watch=true&resourceVersion=5"),
                "watch serviceaccounts",
            ),
            (Method::GET, "/api/v1/namespaces", None, "list namespaces"),
            (
                Method::GET,
                "/api/v1/namespaces/default",
                None,
                "get namespaces",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/vault-auth/configmaps",
                Some("fieldSelector=x"),
                "list configmaps",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/team-a/serviceaccounts",
                None,
                "create serviceaccounts",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/team-a/serviceaccounts/app",
                None,
                "delete serviceaccounts",
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/vault-auth/secrets/token-reviewer-token",
                None,
                "patch secrets",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/serviceaccounts/app/token",
                None,
                "create serviceaccounts/token",
            ),
            (
                Method::PUT,
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/x",
                None,
                "update clusterrolebindings",
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/vault-auth/events",
                None,
                "create events",
            ),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(
                operation(&method, path, query).to_string(),
                want,
                "{method} {path}"
            );
        }
    }
}
