//! The harness's own Kubernetes client, which counts its own requests.
//!
//! The emulator counts every request it answers by (verb, resource), without telling clients
//! apart, and on a real cluster the harness and the controller both use the admin kubeconfig.
//! So the harness counts what it sends itself, classified the way the API server classifies
//! requests, and a controller's requests are the server's count minus the harness's (see
//! [`crate::measure::KubeTally::minus`]). The harness only reads the counters when none of its
//! own requests is in flight, so both sides have seen the same requests.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use http::Method;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::measure::KubeTally;

/// An admin client and the tally of what it sent.
#[derive(Clone)]
pub struct Kube {
    pub client: kube::Client,
    sent: Arc<Mutex<KubeTally>>,
}

impl Kube {
    /// A client from the admin kubeconfig at `path`.
    pub async fn from_kubeconfig(path: &Path) -> Result<Kube> {
        let kubeconfig = Kubeconfig::read_from(path)
            .with_context(|| format!("read kubeconfig {}", path.display()))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("load kubeconfig {}", path.display()))?;
        let sent = Arc::new(Mutex::new(KubeTally::default()));
        let recorder = sent.clone();
        let layer =
            tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
                let (verb, resource) = classify(req.method(), req.uri().path(), req.uri().query());
                recorder
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .add(&verb, &resource, 1);
                req
            });
        let client = kube::client::ClientBuilder::try_from(config)
            .context("build the harness's Kubernetes client")?
            .with_layer(&layer)
            .build();
        Ok(Kube { client, sent })
    }

    /// What the harness has sent so far.
    pub fn sent(&self) -> KubeTally {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// (verb, resource) of a request as Kubernetes' audit log names them: `get`/`list`/`watch`
/// for GET (a name, no name, `watch=true`), `create`, `update`, `patch`, `delete` or
/// `deletecollection`; the resource with its subresource (`serviceaccounts/token`). Paths
/// outside `/api` and `/apis/<group>` count under the path, as the emulator counts them.
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> (String, String) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[][..],
    };
    // namespaces/<ns>/<resource>[/<name>[/<sub>]], or <resource>[/<name>[/<sub>]].
    let (resource, name, sub) = match rest {
        ["namespaces", _ns, resource, tail @ ..] => (Some(*resource), tail.first(), tail.get(1)),
        [resource, tail @ ..] => (Some(*resource), tail.first(), tail.get(1)),
        [] => (None, None, None),
    };
    let Some(resource) = resource else {
        let verb = if *method == Method::HEAD {
            "get".to_string()
        } else {
            method.as_str().to_ascii_lowercase()
        };
        return (verb, path.to_string());
    };
    let watch = query
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if name.is_some() => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    (verb.to_string(), resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: Method, path: &str, query: Option<&str>) -> (String, String) {
        classify(&method, path, query)
    }

    fn pair(verb: &str, resource: &str) -> (String, String) {
        (verb.to_string(), resource.to_string())
    }

    #[test]
    fn classifies_like_the_api_server() {
        assert_eq!(
            c(Method::GET, "/api/v1/serviceaccounts", Some("limit=500")),
            pair("list", "serviceaccounts")
        );
        assert_eq!(
            c(
                Method::GET,
                "/api/v1/serviceaccounts",
                Some("watch=true&resourceVersion=5")
            ),
            pair("watch", "serviceaccounts")
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/a/serviceaccounts/b", None),
            pair("get", "serviceaccounts")
        );
        assert_eq!(
            c(
                Method::POST,
                "/api/v1/namespaces/a/serviceaccounts/b/token",
                None
            ),
            pair("create", "serviceaccounts/token")
        );
        assert_eq!(
            c(Method::POST, "/api/v1/namespaces", None),
            pair("create", "namespaces")
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/ns-1", None),
            pair("get", "namespaces")
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/api/v1/namespaces/vault-auth/configmaps/vault-auth-roles",
                None
            ),
            pair("patch", "configmaps")
        );
        assert_eq!(
            c(
                Method::POST,
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                None
            ),
            pair("create", "clusterrolebindings")
        );
        assert_eq!(
            c(
                Method::DELETE,
                "/apis/coordination.k8s.io/v1/namespaces/x/leases",
                None
            ),
            pair("deletecollection", "leases")
        );
        assert_eq!(c(Method::GET, "/version", None), pair("get", "/version"));
        assert_eq!(c(Method::GET, "/apis", None), pair("get", "/apis"));
    }
}
