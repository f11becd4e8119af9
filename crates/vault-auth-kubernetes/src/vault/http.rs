//! Request plumbing: building URLs from checked path segments, the namespace header, one metric
//! and one log line per request, and Vault's answers as status plus JSON.
//!
//! Nothing here knows about tokens' lifetimes or retries: that is [`super::session`]. Request
//! bodies are never logged (they carry the secret-id and the reviewer JWT); answers are handed
//! back raw because the login answer carries a token, so [`Answer`] has no `Debug`.

use std::time::Instant;

use reqwest::header::HeaderValue;
use serde_json::Value;
use tracing::Instrument;
use url::Url;

use super::VaultSettings;
use super::tls::{self, TrustRoots};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::secret::Secret;

/// HTTP methods the client uses. Lists are `GET ...?list=true`, which Vault documents as
/// equivalent to the `LIST` verb and which every proxy understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    List,
    /// `GET ...?help=1`: the path's own API description (Vault allows it to every token).
    Help,
    Post,
    Delete,
}

/// A Vault API path (below `/v1/`), checked segment by segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VaultPath {
    segments: Vec<String>,
}

impl VaultPath {
    /// Joins `parts` (each may itself hold `/`-separated segments, like a mount path).
    ///
    /// Empty, `.` and `..` segments are refused: they would address another path than the
    /// caller meant (and possibly one the policy allows for another purpose). Other characters
    /// are percent-encoded when the URL is built, so no input can add a query or fragment.
    pub(crate) fn new(operation: &str, parts: &[&str]) -> Result<Self> {
        let joined = parts.join("/");
        let segments: Vec<String> = joined.split('/').map(str::to_string).collect();
        if let Some(bad) = segments
            .iter()
            .find(|s| s.is_empty() || *s == "." || *s == "..")
        {
            let reason = if bad.is_empty() {
                "empty path segment (leading, trailing or double slash)".to_string()
            } else {
                format!("path segment {bad:?} is not allowed")
            };
            return Err(Error::VaultInvalidPath {
                operation: operation.to_string(),
                path: joined,
                message: reason,
            });
        }
        Ok(VaultPath { segments })
    }

    fn url(&self, base: &Url) -> Url {
        let mut url = base.clone();
        url.path_segments_mut()
            .expect("base URL was checked to be http(s)")
            .pop_if_empty()
            .push("v1")
            .extend(&self.segments);
        url
    }
}

impl std::fmt::Display for VaultPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.segments.join("/"))
    }
}

/// Vault's answer: HTTP status and body (`Null` when empty, a string when not JSON).
/// Deliberately not `Debug`: a login answer holds a token.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Answer {
    /// Vault's `errors` texts joined, or the raw body when it was not Vault JSON.
    pub(crate) fn errors(&self) -> String {
        match &self.body {
            Value::Object(map) => match map.get("errors") {
                Some(Value::Array(errors)) => errors
                    .iter()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                    .map(|e| e.trim().to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => String::new(),
            },
            Value::String(text) => text.chars().take(300).collect(),
            _ => String::new(),
        }
    }

    /// True for the 404 Vault gives when no mount serves the path at all, as opposed to the
    /// 404 with an empty `errors` list that a mount gives for a missing object.
    pub(crate) fn is_unrouted(&self) -> bool {
        self.status == 404 && self.errors().contains("no handler for route")
    }

    /// The answer as this crate's error for `operation`.
    pub(crate) fn into_error(self, operation: &str) -> Error {
        let mut message = self.errors();
        if message.is_empty() {
            message = match self.status {
                404 => "not found".to_string(),
                _ => "no error text in the answer".to_string(),
            };
        }
        Error::VaultStatus {
            operation: operation.to_string(),
            status: self.status,
            message,
        }
    }
}

/// Sends requests to one Vault server; cheap to share behind an `Arc`.
pub(crate) struct Transport {
    http: reqwest::Client,
    base: Url,
    namespace: Option<HeaderValue>,
    /// The CA file given, for the hint of a certificate error.
    ca_cert_file: Option<std::path::PathBuf>,
    metrics: Metrics,
}

impl Transport {
    pub(crate) fn new(settings: &VaultSettings, metrics: Metrics) -> Result<Self> {
        let invalid = |setting: &str, message: String| Error::InvalidSetting {
            setting: setting.to_string(),
            message,
        };
        let base = Url::parse(settings.addr.trim_end_matches('/'))
            .map_err(|e| invalid("vault address", format!("{:?}: {e}", settings.addr)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid(
                "vault address",
                format!("{:?} is not an http(s) URL", settings.addr),
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid(
                "vault address",
                format!("{:?} must not have a query or fragment", settings.addr),
            ));
        }
        let namespace = match settings.namespace.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(ns) => Some(
                HeaderValue::from_str(ns)
                    .map_err(|e| invalid("vault namespace", format!("{ns:?}: {e}")))?,
            ),
        };
        let roots = if settings.skip_tls_verify {
            TrustRoots::Insecure
        } else if let Some(file) = &settings.ca_cert_file {
            TrustRoots::CaFile(file)
        } else {
            TrustRoots::System
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls::client_config(roots)?)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .user_agent(concat!("vault-auth-kubernetes/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::VaultSetup(format!("HTTP client: {e}")))?;
        Ok(Transport {
            http,
            base,
            namespace,
            ca_cert_file: settings.ca_cert_file.clone(),
            metrics,
        })
    }

    /// The Vault address, for messages.
    pub(crate) fn addr(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Sends one request and returns Vault's answer whatever its status; only a request that
    /// got no answer is an error. Counts it and logs status and duration, in a span
    /// (`vault_request`, with operation and path) that ties its log lines to the pass.
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        method: Method,
        path: &VaultPath,
        token: Option<&Secret>,
        body: Option<&Value>,
    ) -> Result<Answer> {
        let span = tracing::info_span!("vault_request", operation, path = %path);
        async move {
            let mut url = path.url(&self.base);
            let method = match method {
                Method::Get => reqwest::Method::GET,
                Method::List => {
                    url.query_pairs_mut().append_pair("list", "true");
                    reqwest::Method::GET
                }
                Method::Help => {
                    url.query_pairs_mut().append_pair("help", "1");
                    reqwest::Method::GET
                }
                Method::Post => reqwest::Method::POST,
                Method::Delete => reqwest::Method::DELETE,
            };
            let mut request = self.http.request(method, url);
            if let Some(token) = token {
                let mut value =
                    HeaderValue::from_str(token.expose()).map_err(|_| Error::VaultResponse {
                        operation: operation.to_string(),
                        message: "Vault issued a token that is not a valid header value"
                            .to_string(),
                    })?;
                value.set_sensitive(true);
                request = request.header("X-Vault-Token", value);
            }
            if let Some(ns) = &self.namespace {
                request = request.header("X-Vault-Namespace", ns.clone());
            }
            if let Some(body) = body {
                request = request.json(body);
            }

            let started = Instant::now();
            let in_flight = self.metrics.request_in_flight("Vault");
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    response.text().await.map(|text| (status, text))
                }
                Err(e) => Err(e),
            };
            drop(in_flight);
            let duration_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Ok((status, text)) => {
                    self.metrics.vault_request(
                        operation,
                        Some(status),
                        started.elapsed().as_secs_f64(),
                    );
                    if status >= 500 {
                        tracing::warn!(status, duration_ms, "vault request");
                    } else {
                        tracing::debug!(status, duration_ms, "vault request");
                    }
                    Ok(Answer {
                        status,
                        body: parse_body(&text),
                    })
                }
                Err(source) => {
                    self.metrics
                        .vault_request(operation, None, started.elapsed().as_secs_f64());
                    tracing::warn!(duration_ms, error = %source, "vault request failed");
                    Err(self.transport_error(operation, source))
                }
            }
        }
        .instrument(span)
        .await
    }

    fn transport_error(&self, operation: &str, source: reqwest::Error) -> Error {
        match tls::tls_failure(&source) {
            Some(message) => Error::VaultTls {
                operation: operation.to_string(),
                addr: self.addr().to_string(),
                message,
                hint: tls::tls_fix_hint(self.ca_cert_file.as_deref()),
            },
            None => Error::VaultTransport {
                operation: operation.to_string(),
                source,
            },
        }
    }
}

fn parse_body(text: &str) -> Value {
    if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_keep_mount_segments_and_refuse_escapes() {
        let p =
            VaultPath::new("read_role", &["auth", "kubernetes/prod/eu1", "role", "web"]).unwrap();
        assert_eq!(p.to_string(), "auth/kubernetes/prod/eu1/role/web");
        let base = Url::parse("https://vault.example:8200").unwrap();
        assert_eq!(
            p.url(&base).as_str(),
            "https://vault.example:8200/v1/auth/kubernetes/prod/eu1/role/web"
        );
        for bad in ["", "a//b", "/a", "a/", "a/../b", "."] {
            let err = VaultPath::new("read_role", &["auth", bad]).unwrap_err();
            assert!(
                matches!(err, Error::VaultInvalidPath { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn segments_are_percent_encoded_so_no_query_can_be_injected() {
        let p = VaultPath::new("read_role", &["auth", "k", "role", "a?b#c d"]).unwrap();
        let base = Url::parse("http://127.0.0.1:8200/").unwrap();
        let url = p.url(&base);
        assert_eq!(url.query(), None);
        assert_eq!(url.fragment(), None);
        assert!(url.path().ends_with("/role/a%3Fb%23c%20d"), "{url}");
    }

    #[test]
    fn a_base_path_prefix_is_kept() {
        let p = VaultPath::new("x", &["sys", "auth"]).unwrap();
        let base = Url::parse("https://proxy.example/vault").unwrap();
        assert_eq!(
            p.url(&base).as_str(),
            "https://proxy.example/vault/v1/sys/auth"
        );
    }

    #[test]
    fn answers_tell_missing_objects_from_missing_mounts() {
        let missing_object = Answer {
            status: 404,
            body: json!({"errors": []}),
        };
        assert!(!missing_object.is_unrouted());
        let missing_mount = Answer {
            status: 404,
            body: json!({"errors": ["no handler for route \"auth/x/role/\". route entry not found."]}),
        };
        assert!(missing_mount.is_unrouted());
        let err = missing_object.into_error("read_role").to_string();
        assert_eq!(err, "vault: read_role failed with HTTP 404: not found");
    }

    #[test]
    fn error_text_joins_vault_errors_or_shows_a_non_json_body() {
        let a = Answer {
            status: 400,
            body: json!({"errors": ["first", "second\n"]}),
        };
        assert_eq!(a.errors(), "first; second");
        let b = Answer {
            status: 502,
            body: parse_body("<html>bad gateway</html>"),
        };
        assert_eq!(b.errors(), "<html>bad gateway</html>");
        assert_eq!(parse_body("  "), Value::Null);
    }
}
