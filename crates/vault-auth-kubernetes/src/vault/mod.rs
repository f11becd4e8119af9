//! The Vault/OpenBao client: AppRole session, auth mount, Kubernetes auth config and roles.
//!
//! Hand-written over reqwest rather than built on `vaultrs`, because the controller needs:
//! roles as raw JSON (to compare normalised bodies field by field, including fields a typed
//! client does not model), exact control of every request body (a config or role write must be
//! complete, since Vault resets or keeps omitted fields), Vault namespaces on every request, a
//! metric and a log line per request, and a token session with the renewal semantics below,
//! none of which `vaultrs` provides together.
//!
//! - [`http`]: URLs, headers, one metric and log line per request, Vault's answers.
//! - [`tls`]: trusted roots, the explicit opt-out, certificate errors that say how to fix them.
//! - [`session`]: the AppRole token: login once, renew before expiry, log in again only when
//!   renewal cannot work or Vault rejects the token.
//! - [`api`]: the operations (auth mounts, config, roles).

mod api;
mod http;
mod session;
pub mod tls;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use api::{
    AuthMount, KubernetesConfig, KubernetesConfigWrite, RoleBody, role_parameters_from_help,
};
pub use session::{Credential, TokenStatus, VaultAuth};

use self::http::{Answer, Method, Transport, VaultPath};
use self::session::{Credentials, Session};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::secret::Secret;

/// Default path of the AppRole auth method.
pub const DEFAULT_APPROLE_MOUNT: &str = "approle";
/// Default time limit of one request (connect included).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach and log in to Vault.
#[derive(Clone, Debug)]
pub struct VaultSettings {
    /// Base address, e.g. `https://vault.example:8200` (a trailing `/` is tolerated).
    pub addr: String,
    /// Sent as `X-Vault-Namespace` (Vault Enterprise and OpenBao namespaces).
    pub namespace: Option<String>,
    /// PEM bundle; when set, only these roots are trusted for Vault's certificate.
    pub ca_cert_file: Option<PathBuf>,
    /// Explicit opt-out of certificate verification (default false).
    pub skip_tls_verify: bool,
    /// Path of the AppRole auth method, default [`DEFAULT_APPROLE_MOUNT`].
    pub approle_mount: String,
    /// How the client gets its token: AppRole, or an operator's own token.
    pub auth: VaultAuth,
    /// Time limit of one request.
    pub request_timeout: Duration,
}

impl VaultSettings {
    /// Settings with the defaults: no namespace, system roots, `approle`, 30 s timeout.
    pub fn new(addr: impl Into<String>, role_id: impl Into<String>, secret_id: Secret) -> Self {
        VaultSettings {
            addr: addr.into(),
            namespace: None,
            ca_cert_file: None,
            skip_tls_verify: false,
            approle_mount: DEFAULT_APPROLE_MOUNT.to_string(),
            auth: VaultAuth::AppRole {
                role_id: Credential::Value(Secret::new(role_id.into())),
                secret_id: Credential::Value(secret_id),
            },
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// The Vault client. Cheap to clone: clones share one HTTP connection pool and one token.
#[derive(Clone)]
pub struct VaultClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    session: Session,
    namespace: Option<String>,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("addr", &self.inner.transport.addr())
            .field("namespace", &self.inner.namespace)
            .field("token", &self.token_status())
            .finish()
    }
}

impl VaultClient {
    /// Builds the client (no request is sent yet). Fails on an unusable address, namespace or
    /// CA file, or missing AppRole credentials.
    pub fn new(settings: VaultSettings, metrics: Metrics) -> Result<Self> {
        let empty_value =
            |c: &Credential| matches!(c, Credential::Value(v) if v.expose().trim().is_empty());
        let (role_id_empty, secret_id_empty, token_empty) = match &settings.auth {
            VaultAuth::AppRole { role_id, secret_id } => {
                (empty_value(role_id), empty_value(secret_id), false)
            }
            VaultAuth::Token(token) => (false, false, token.expose().trim().is_empty()),
        };
        for (setting, empty) in [
            ("vault role-id", role_id_empty),
            ("vault secret-id", secret_id_empty),
            ("vault token", token_empty),
            (
                "vault approle mount",
                settings.approle_mount.trim().is_empty(),
            ),
        ] {
            if empty {
                return Err(Error::InvalidSetting {
                    setting: setting.to_string(),
                    message: "must not be empty".to_string(),
                });
            }
        }
        let transport = Transport::new(&settings, metrics.clone())?;
        if settings.skip_tls_verify {
            tracing::warn!(
                addr = transport.addr(),
                "TLS CERTIFICATE VERIFICATION OF VAULT IS DISABLED: anyone on the network path \
                 can impersonate Vault and capture the AppRole secret-id and tokens; give the CA \
                 with {} instead",
                tls::CA_CERT_FLAG
            );
        }
        let credentials = Credentials {
            approle_mount: settings.approle_mount.trim_matches('/').to_string(),
            auth: settings.auth,
        };
        Ok(VaultClient {
            inner: Arc::new(Inner {
                transport,
                session: Session::new(credentials, metrics),
                namespace: settings.namespace.filter(|ns| !ns.trim().is_empty()),
            }),
        })
    }

    /// Logs in with AppRole unless a usable token is already held.
    pub async fn login(&self) -> Result<()> {
        self.inner
            .session
            .token(&self.inner.transport)
            .await
            .map(drop)
    }

    /// Revokes the token this client obtained by logging in (`auth/token/revoke-self`), so a
    /// short-lived command leaves no token or lease behind in Vault. An operator's own token
    /// (`--vault-token`) is never revoked, and nothing is sent when no token was obtained.
    /// Returns whether a token was revoked (Vault answered 204).
    pub async fn revoke_own_token(&self) -> Result<bool> {
        self.inner.session.revoke(&self.inner.transport).await
    }

    /// The policies of the token this client holds (read at login, or with `lookup-self` for an
    /// operator's token): what a ConfigMap entry must never grant (see `roles::PolicyGuard`).
    /// Empty until a token is held.
    pub fn own_policies(&self) -> Vec<String> {
        self.inner.session.own_policies()
    }

    /// Whether a valid token is held (for readiness), its remaining TTL and renewability.
    pub fn token_status(&self) -> TokenStatus {
        self.inner.session.status()
    }

    /// Keeps the token valid until `shutdown` is cancelled: renews it before it expires, logs in
    /// again when renewal cannot work, backs off exponentially with jitter on failures.
    pub async fn run_session(&self, shutdown: CancellationToken) {
        self.inner
            .session
            .run(&self.inner.transport, shutdown)
            .await;
    }

    /// Sends an authenticated request. On a 403, if the token turns out to be no longer
    /// accepted, logs in again once and retries the request once (see
    /// [`Session::recover_from_forbidden`]); a 403 for a missing capability is returned as is.
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &VaultPath,
        body: Option<&Value>,
    ) -> Result<Answer> {
        let Inner {
            transport, session, ..
        } = &*self.inner;
        let (token, generation) = session.token(transport).await?;
        let answer = transport
            .send(operation, method, path, Some(&token), body)
            .await?;
        if answer.status != 403 {
            return Ok(answer);
        }
        match session
            .recover_from_forbidden(transport, generation)
            .await?
        {
            None => Ok(answer),
            Some((token, _)) => {
                tracing::info!(operation, %path, "retrying with a new Vault token");
                transport
                    .send(operation, method, path, Some(&token), body)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(addr: &str) -> VaultSettings {
        VaultSettings::new(addr, "role", Secret::new("secret-id-value"))
    }

    #[test]
    fn rejects_unusable_settings_before_any_request() {
        for addr in ["", "vault:8200", "ftp://vault", "https://vault?x=1"] {
            let err = VaultClient::new(settings(addr), Metrics::new()).unwrap_err();
            assert!(matches!(err, Error::InvalidSetting { .. }), "{addr}: {err}");
        }
        let mut s = settings("https://vault:8200/");
        s.namespace = Some("team\nx".into());
        assert!(VaultClient::new(s, Metrics::new()).is_err());
        let mut s = settings("https://vault:8200/");
        s.auth = VaultAuth::AppRole {
            role_id: Credential::Value(Secret::new("role")),
            secret_id: Credential::Value(Secret::default()),
        };
        assert!(VaultClient::new(s, Metrics::new()).is_err());
        let mut s = settings("https://vault:8200/");
        s.auth = VaultAuth::Token(Secret::new(" "));
        assert!(VaultClient::new(s, Metrics::new()).is_err());
    }

    #[test]
    fn a_new_client_holds_no_token_and_prints_no_secret() {
        let client = VaultClient::new(settings("https://vault:8200/"), Metrics::new()).unwrap();
        assert!(!client.token_status().valid);
        let debug = format!("{client:?} {:?}", settings("https://vault:8200"));
        assert!(!debug.contains("secret-id-value"), "{debug}");
        assert!(debug.contains("https://vault:8200"), "{debug}");
    }
}
