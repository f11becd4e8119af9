//! Sends the corpus to one server, byte for byte as written, and records each answer.
//!
//! Each server keeps its own variables (`save` in a step): tokens, resourceVersions and uids
//! differ between the two, so a later step that uses `${name}` gets the value its own server
//! gave.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

/// One request of the corpus (`corpus.yaml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    pub id: String,
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    /// Whose bearer token: `admin` (default), `none`, or a saved variable holding a token.
    #[serde(default, rename = "as")]
    pub identity: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    /// More request headers (impersonation).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body (written in YAML for readability; sent as JSON).
    pub body: Option<Value>,
    /// A body sent exactly as written (malformed JSON, YAML, ...).
    pub raw: Option<String>,
    /// Variables to keep from the answer: name -> JSON pointer into the body.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    /// Read the answer as a watch stream (one JSON event per line) until the server ends it.
    #[serde(default)]
    pub watch: bool,
    /// Repeat the request (up to 60 s) until the answer matches: for what the real control
    /// plane's controllers and caches do a moment after a write (the emulator does it at once).
    pub until: Option<Until>,
    /// Send it, but leave it out of the comparison (setup whose answer is compared elsewhere).
    #[serde(default = "yes")]
    pub compare: bool,
}

fn get() -> String {
    "GET".into()
}

fn yes() -> bool {
    true
}

/// A condition on an answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Until {
    pub code: u16,
    /// A JSON pointer into the body, with the value it must have.
    pub pointer: Option<String>,
    pub value: Option<Value>,
}

/// What a server answered to one step: `{code, contentType, body}` (body is JSON, a list of
/// watch events, or a string when it is not JSON).
pub type Answer = Value;

/// One server under test.
pub struct Server {
    pub url: String,
    pub admin_token: String,
    http: reqwest::Client,
    vars: BTreeMap<String, String>,
}

impl Server {
    pub fn new(url: String, ca_pem: &str, admin_token: String) -> Server {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .user_agent("conformance/v1.0.0")
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Server {
            url,
            admin_token,
            http,
            vars: BTreeMap::new(),
        }
    }

    /// `${name}` replaced by this server's saved value (unknown names are left as written).
    fn expand(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.vars {
            out = out.replace(&format!("${{{name}}}"), value);
        }
        out
    }

    fn expand_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.expand(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.expand_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.expand_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The saved values, for normalising them away in strings (e.g. a uid in a message).
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    async fn send_once(&self, step: &Step) -> Answer {
        let method = reqwest::Method::from_bytes(step.method.as_bytes()).expect("HTTP method");
        let url = format!("{}{}", self.url, self.expand(&step.path));
        let mut request = self.http.request(method, url);
        let token = match step.identity.as_deref() {
            None | Some("admin") => Some(self.admin_token.clone()),
            Some("none") => None,
            Some(var) => Some(
                self.vars
                    .get(var)
                    .cloned()
                    .unwrap_or_else(|| format!("unset-variable-{var}")),
            ),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = request.header(
            "Accept",
            step.accept.as_deref().unwrap_or("application/json"),
        );
        for (name, value) in &step.headers {
            request = request.header(name.as_str(), self.expand(value));
        }
        let body = match (&step.body, &step.raw) {
            (Some(json), _) => Some(self.expand_json(json).to_string()),
            (None, Some(raw)) => Some(self.expand(raw)),
            (None, None) => None,
        };
        if let Some(body) = body {
            request = request
                .header(
                    "Content-Type",
                    step.content_type.as_deref().unwrap_or("application/json"),
                )
                .body(body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return json!({"code": 0, "error": e.to_string()}),
        };
        let code = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return json!({"code": code, "error": e.to_string()}),
        };
        let text = String::from_utf8_lossy(&bytes);
        let body = if step.watch && code == 200 {
            Value::Array(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| serde_json::from_str(l).unwrap_or_else(|_| json!(l)))
                    .collect(),
            )
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(text))
        };
        json!({"code": code, "contentType": content_type, "body": body})
    }

    /// Sends one step (repeating it while its `until` is not met) and keeps what it saves.
    pub async fn send(&mut self, step: &Step) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(60);
        let answer = loop {
            let answer = self.send_once(step).await;
            let Some(until) = &step.until else {
                break answer;
            };
            let code_ok = answer["code"] == until.code;
            let value_ok = match (&until.pointer, &until.value) {
                (Some(p), Some(v)) => answer["body"].pointer(p) == Some(v),
                _ => true,
            };
            if (code_ok && value_ok) || Instant::now() > deadline {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for (var, pointer) in &step.save {
            match answer["body"].pointer(pointer) {
                Some(Value::String(s)) => {
                    self.vars.insert(var.clone(), s.clone());
                }
                Some(other) => {
                    self.vars.insert(var.clone(), other.to_string());
                }
                None => {
                    self.vars.remove(var);
                }
            }
        }
        answer
    }
}
