//! The AppRole session: one token shared by every request, renewed before it expires, and
//! replaced by a new login only when renewal cannot help.
//!
//! Why so careful: each AppRole login creates a token and a lease in Vault. Controllers that log
//! in on every reconcile have filled Vault with hundreds of thousands of leases. Here a login
//! happens when no usable token is held, when the token cannot be renewed any further (not
//! renewable, its max TTL reached, or the renewal refused), or when Vault rejects the token
//! itself (see [`Session::recover_from_forbidden`]).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::http::{Method, Transport, VaultPath};
use crate::backoff::{LoginThrottle, TOKEN_RETRY};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::secret::Secret;

/// What readiness and metrics need to know about the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStatus {
    /// A token is held and has not expired.
    pub valid: bool,
    /// Time left before it expires; `None` when the token never expires.
    pub ttl: Option<Duration>,
    /// Whether the next refresh will try a renewal (false: it will log in again).
    pub renewable: bool,
}

/// One credential: given as a value, or read from a file at every login (a Kubernetes Secret
/// mounted as files is updated in place when rotated, so a new secret-id is used at the next
/// login without a restart).
#[derive(Clone, Debug)]
pub enum Credential {
    /// The value itself (flag or env var).
    Value(Secret),
    /// A file holding the value (surrounding whitespace ignored).
    File(PathBuf),
}

impl Credential {
    /// The value now. `what` names the credential in the error.
    fn read(&self, what: &str) -> Result<Secret> {
        match self {
            Credential::Value(value) => Ok(value.clone()),
            Credential::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::VaultCredentials {
                    what: what.to_string(),
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
                let value = text.trim();
                if value.is_empty() {
                    return Err(Error::VaultCredentials {
                        what: what.to_string(),
                        message: format!("{} is empty", path.display()),
                    });
                }
                Ok(Secret::new(value))
            }
        }
    }
}

/// How the client gets its token.
#[derive(Clone, Debug)]
pub enum VaultAuth {
    /// AppRole login: what the controller uses. The token is renewed, replaced when renewal
    /// cannot work, and revoked by the short-lived commands when they finish.
    AppRole {
        role_id: Credential,
        secret_id: Credential,
    },
    /// An operator's own token (`--vault-token`, `VAULT_TOKEN`, `BAO_TOKEN`), for `plan`,
    /// `sync --once` and `cleanup`: used as it is, never renewed, never revoked.
    Token(Secret),
}

/// The credentials and where AppRole is mounted.
pub(crate) struct Credentials {
    pub(crate) approle_mount: String,
    pub(crate) auth: VaultAuth,
}

/// Failed logins so far, for [`LoginThrottle`]: only logins Vault answered and refused count
/// (those are what Vault's lockout counts), and new credentials start afresh.
#[derive(Default)]
struct LoginFailures {
    count: u32,
    /// No login before this instant.
    not_before: Option<Instant>,
    /// Which credentials failed (a hash, never printed), so rotated ones are tried at once.
    credentials: u64,
    /// Vault's answer to the last failed login, repeated while the throttle holds back.
    last: String,
}

fn credentials_hash(role_id: &Secret, secret_id: &Secret) -> u64 {
    let mut hasher = DefaultHasher::new();
    role_id.expose().hash(&mut hasher);
    secret_id.expose().hash(&mut hasher);
    hasher.finish()
}

/// What to tell the user when Vault refuses a login with `status`.
fn login_hint(status: u16, approle_mount: &str) -> String {
    let lockout = format!(
        "if the role-id and secret-id are right, the AppRole may be locked out after repeated \
         failed logins (Vault's and OpenBao's user lockout: 5 failures, lifted 15 minutes after \
         the last one); see `vault read sys/locked-users`, and unlock with `vault write -f \
         sys/locked-users/<accessor of auth/{approle_mount}>/unlock/<role-id>`"
    );
    match status {
        400 => format!(
            "check the role-id and secret-id (a secret-id expires or runs out of uses); {lockout}"
        ),
        403 => lockout,
        _ => "check the AppRole role and the credentials".to_string(),
    }
}

/// The token currently held.
#[derive(Clone)]
struct Held {
    token: Secret,
    /// Increases with every login, so a request can tell whether the token it was refused with
    /// has already been replaced by someone else.
    generation: u64,
    /// Start of the current lease (the login or the last renewal).
    since: Instant,
    /// Lease granted at `since`; zero means the token never expires.
    lease: Duration,
    /// TTL granted at login: what each renewal asks for again.
    login_ttl: Duration,
    renewable: bool,
}

impl Held {
    fn expires(&self) -> Option<Instant> {
        (!self.lease.is_zero()).then(|| self.since + self.lease)
    }

    /// Usable for a new request: not within the safety margin of its expiry.
    fn usable(&self, now: Instant) -> bool {
        self.expires()
            .is_none_or(|at| now + safety_margin(self.lease) < at)
    }

    fn refresh_at(&self) -> Option<Instant> {
        (!self.lease.is_zero()).then(|| self.since + refresh_after(self.lease))
    }
}

/// When to refresh a lease: after two thirds of it, leaving a third for retries.
pub(crate) fn refresh_after(lease: Duration) -> Duration {
    lease * 2 / 3
}

/// A token this close to its expiry is not used for a new request (it might expire in flight).
pub(crate) fn safety_margin(lease: Duration) -> Duration {
    (lease / 10).min(Duration::from_secs(10))
}

/// True when a renewal granted less than it asked for: the token's max TTL is near, so
/// renewing again cannot extend it and a new login is the only way on.
pub(crate) fn renewal_capped(asked: Duration, granted: Duration) -> bool {
    granted < asked
}

/// Token, lease and renewability from the `auth` block of a login or renewal answer.
struct Grant {
    token: Option<Secret>,
    lease: Duration,
    renewable: bool,
}

fn parse_grant(body: &Value) -> Option<Grant> {
    let auth = body.get("auth")?;
    Some(Grant {
        token: auth
            .get("client_token")
            .and_then(Value::as_str)
            .map(Secret::new),
        lease: Duration::from_secs(auth.get("lease_duration").and_then(Value::as_u64)?),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The policies of a login's `auth` block or a `lookup-self`'s `data`: `policies` (what the
/// token carries, identity policies included where Vault lists them) and `token_policies`.
fn token_policies(block: &Value) -> Vec<String> {
    ["policies", "token_policies", "identity_policies"]
        .iter()
        .filter_map(|key| block.get(key).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The token and how it is kept valid.
pub(crate) struct Session {
    credentials: Credentials,
    held: RwLock<Option<Held>>,
    /// Serialises logins and renewals: requests that find no usable token wait for one login
    /// instead of each doing their own.
    refresh_lock: tokio::sync::Mutex<()>,
    /// Wakes the background loop when another path replaced the token.
    changed: tokio::sync::Notify,
    generations: AtomicU64,
    /// Policies of the held token.
    policies: RwLock<Vec<String>>,
    failures: Mutex<LoginFailures>,
    throttle: LoginThrottle,
    metrics: Metrics,
}

impl Session {
    pub(crate) fn new(credentials: Credentials, metrics: Metrics) -> Self {
        Session {
            credentials,
            held: RwLock::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
            changed: tokio::sync::Notify::new(),
            generations: AtomicU64::new(0),
            policies: RwLock::new(Vec::new()),
            failures: Mutex::new(LoginFailures::default()),
            throttle: LoginThrottle::DEFAULT,
            metrics,
        }
    }

    pub(crate) fn own_policies(&self) -> Vec<String> {
        self.policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_policies(&self, mut policies: Vec<String>) {
        policies.sort();
        policies.dedup();
        *self.policies.write().unwrap_or_else(|e| e.into_inner()) = policies;
    }

    /// Revokes a token obtained by login; see [`super::VaultClient::revoke_own_token`].
    pub(crate) async fn revoke(&self, transport: &Transport) -> Result<bool> {
        if matches!(self.credentials.auth, VaultAuth::Token(_)) {
            return Ok(false);
        }
        let _guard = self.refresh_lock.lock().await;
        let Some(held) = self.current() else {
            return Ok(false);
        };
        let path = VaultPath::new("revoke_self", &["auth/token/revoke-self"])?;
        let answer = transport
            .send("revoke_self", Method::Post, &path, Some(&held.token), None)
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(answer.into_error("revoke_self"));
        }
        *self.held.write().unwrap_or_else(|e| e.into_inner()) = None;
        tracing::debug!("revoked the Vault token");
        Ok(true)
    }

    fn current(&self) -> Option<Held> {
        self.held.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self, held: Held) {
        *self.held.write().unwrap_or_else(|e| e.into_inner()) = Some(held);
        self.changed.notify_one();
        self.status();
    }

    /// Token state now; also publishes the remaining TTL as a metric.
    pub(crate) fn status(&self) -> TokenStatus {
        let now = Instant::now();
        let status = match self.current() {
            None => TokenStatus {
                valid: false,
                ttl: Some(Duration::ZERO),
                renewable: false,
            },
            Some(held) => {
                let ttl = held.expires().map(|at| at.saturating_duration_since(now));
                TokenStatus {
                    valid: ttl.is_none_or(|t| !t.is_zero()),
                    ttl,
                    renewable: held.renewable,
                }
            }
        };
        self.metrics
            .set_vault_token_ttl(status.ttl.map_or(f64::INFINITY, |t| t.as_secs_f64()));
        status
    }

    /// A usable token and its generation, logging in first if none is held.
    pub(crate) async fn token(&self, transport: &Transport) -> Result<(Secret, u64)> {
        if let Some(held) = self.current().filter(|h| h.usable(Instant::now())) {
            return Ok((held.token, held.generation));
        }
        let _guard = self.refresh_lock.lock().await;
        // Another caller may have logged in while this one waited for the lock.
        if let Some(held) = self.current().filter(|h| h.usable(Instant::now())) {
            return Ok((held.token, held.generation));
        }
        self.login(transport, "no usable token").await
    }

    /// Vault answered 403 to a request made with token `generation`. Vault says 403 both for a
    /// token it no longer accepts (expired, revoked, Vault restarted with empty storage) and
    /// for a capability the policy lacks. Only the first is cured by a new login, and logging
    /// in for the second on every attempt would pile up leases; so the token is checked with
    /// `lookup-self` (allowed by Vault's `default` policy) first.
    ///
    /// Returns the token to retry with, or `None` when the token is fine and the 403 stands.
    pub(crate) async fn recover_from_forbidden(
        &self,
        transport: &Transport,
        generation: u64,
    ) -> Result<Option<(Secret, u64)>> {
        let _guard = self.refresh_lock.lock().await;
        let held = self.current();
        if let Some(held) = held.as_ref().filter(|h| h.generation != generation)
            && held.usable(Instant::now())
        {
            return Ok(Some((held.token.clone(), held.generation)));
        }
        if let Some(held) = held {
            let path = VaultPath::new("lookup_self", &["auth/token/lookup-self"])?;
            let answer = transport
                .send("lookup_self", Method::Get, &path, Some(&held.token), None)
                .await?;
            if answer.status == 200 {
                return Ok(None);
            }
        }
        self.login(transport, "Vault refused the token")
            .await
            .map(Some)
    }

    /// Time until the token should be refreshed (zero when due now); `None` when it never
    /// needs refreshing.
    fn due_in(&self, now: Instant) -> Option<Duration> {
        match self.current() {
            None => Some(Duration::ZERO),
            Some(held) => held
                .refresh_at()
                .map(|at| at.saturating_duration_since(now)),
        }
    }

    /// Renews the token if it is due, or logs in again when renewal cannot work.
    async fn refresh_if_due(&self, transport: &Transport) -> Result<()> {
        let _guard = self.refresh_lock.lock().await;
        if self.due_in(Instant::now()) != Some(Duration::ZERO) {
            return Ok(());
        }
        let Some(held) = self.current() else {
            return self.login(transport, "no token yet").await.map(drop);
        };
        if held.expires().is_some_and(|at| at <= Instant::now()) {
            return self.login(transport, "token expired").await.map(drop);
        }
        if !held.renewable {
            return self.login(transport, "token not renewable").await.map(drop);
        }
        let path = VaultPath::new("renew", &["auth/token/renew-self"])?;
        let body = json!({ "increment": format!("{}s", held.login_ttl.as_secs()) });
        let started = Instant::now();
        let answer = transport
            .send("renew", Method::Post, &path, Some(&held.token), Some(&body))
            .await?;
        match (answer.status, parse_grant(&answer.body)) {
            (200, Some(grant)) if !renewal_capped(held.login_ttl, grant.lease) => {
                tracing::debug!(ttl_s = grant.lease.as_secs(), "renewed the Vault token");
                self.store(Held {
                    since: started,
                    lease: grant.lease,
                    renewable: grant.renewable,
                    ..held
                });
                Ok(())
            }
            (200, Some(_)) => self
                .login(transport, "token max TTL reached")
                .await
                .map(drop),
            (status, _) if status >= 500 => Err(answer.into_error("renew")),
            (status, _) => {
                let reason = format!("renewal refused (HTTP {status}: {})", answer.errors());
                self.login(transport, &reason).await.map(drop)
            }
        }
    }

    /// Logs in with AppRole (or takes up the operator's token) and stores the new token. The
    /// caller holds `refresh_lock`.
    ///
    /// Failed logins are spaced by [`LoginThrottle`], so Vault's AppRole lockout never
    /// triggers: a login the throttle holds back fails at once without a request. Credentials
    /// read from files are read again each time; changed ones are tried at once.
    async fn login(&self, transport: &Transport, reason: &str) -> Result<(Secret, u64)> {
        let creds = &self.credentials;
        let (role_id, secret_id) = match &creds.auth {
            VaultAuth::Token(token) => return self.adopt_token(transport, token).await,
            VaultAuth::AppRole { role_id, secret_id } => {
                (role_id.read("role-id")?, secret_id.read("secret-id")?)
            }
        };
        let fingerprint = credentials_hash(&role_id, &secret_id);
        {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if failures.credentials != fingerprint {
                *failures = LoginFailures {
                    credentials: fingerprint,
                    ..LoginFailures::default()
                };
            }
            if let Some(at) = failures.not_before
                && Instant::now() < at
            {
                return Err(Error::VaultLoginThrottled {
                    failures: failures.count,
                    retry_in_s: at.saturating_duration_since(Instant::now()).as_secs() + 1,
                    last: failures.last.clone(),
                });
            }
        }
        let path = VaultPath::new("login", &["auth", &creds.approle_mount, "login"])?;
        let body = json!({ "role_id": role_id.expose(), "secret_id": secret_id.expose() });
        let started = Instant::now();
        let answer = transport
            .send("login", Method::Post, &path, None, Some(&body))
            .await?;
        if answer.status >= 500 {
            // Not a refusal of the credentials (Vault sealed, standby, overloaded): the
            // lockout does not count it, and neither does the throttle.
            return Err(answer.into_error("login"));
        }
        if answer.status != 200 {
            let message = answer.errors();
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            failures.count = failures.count.saturating_add(1);
            failures.not_before = Some(Instant::now() + self.throttle.delay_after(failures.count));
            failures.last = format!("HTTP {}: {message}", answer.status);
            return Err(Error::VaultLoginRefused {
                status: answer.status,
                message,
                hint: login_hint(answer.status, &creds.approle_mount),
            });
        }
        let Some(Grant {
            token: Some(token),
            lease,
            renewable,
        }) = parse_grant(&answer.body)
        else {
            return Err(Error::VaultResponse {
                operation: "login".to_string(),
                message: "the answer has no auth.client_token or auth.lease_duration".to_string(),
            });
        };
        *self.failures.lock().unwrap_or_else(|e| e.into_inner()) = LoginFailures {
            credentials: fingerprint,
            ..LoginFailures::default()
        };
        tracing::info!(
            reason,
            ttl_s = lease.as_secs(),
            renewable,
            "logged in to Vault with AppRole"
        );
        Ok(self.hold(&token, started, lease, renewable, &answer.body["auth"]))
    }

    /// Stores `token` as the one held (a new generation), with the policies `block` lists.
    fn hold(
        &self,
        token: &Secret,
        since: Instant,
        lease: Duration,
        renewable: bool,
        block: &Value,
    ) -> (Secret, u64) {
        self.set_policies(token_policies(block));
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.store(Held {
            token: token.clone(),
            generation,
            since,
            lease,
            login_ttl: lease,
            renewable,
        });
        (token.clone(), generation)
    }

    /// Takes up an operator's own token: `lookup-self` tells its policies and remaining TTL
    /// (and that Vault accepts it at all). It is never renewed: when it expires, the command
    /// fails and says so.
    async fn adopt_token(&self, transport: &Transport, token: &Secret) -> Result<(Secret, u64)> {
        let refused = |status: u16, message: String| Error::VaultLoginRefused {
            status,
            message,
            hint: format!(
                "give a valid token with {}, or BAO_TOKEN",
                crate::cli::Setting::VaultToken.describe()
            ),
        };
        if self.current().is_some() {
            return Err(refused(
                403,
                "the token is no longer accepted (expired or revoked)".to_string(),
            ));
        }
        let path = VaultPath::new("lookup_self", &["auth/token/lookup-self"])?;
        let started = Instant::now();
        let answer = transport
            .send("lookup_self", Method::Get, &path, Some(token), None)
            .await?;
        if answer.status != 200 {
            return Err(refused(answer.status, answer.errors()));
        }
        let data = &answer.body["data"];
        let lease = Duration::from_secs(data.get("ttl").and_then(Value::as_u64).unwrap_or(0));
        tracing::info!(ttl_s = lease.as_secs(), "using the given Vault token");
        Ok(self.hold(token, started, lease, false, data))
    }

    /// Keeps the token valid until `shutdown`: renews at two thirds of each lease, logs in
    /// again when renewal cannot work, and backs off exponentially (with jitter) on failures.
    pub(crate) async fn run(&self, transport: &Transport, shutdown: CancellationToken) {
        let mut failures = 0u32;
        loop {
            self.status();
            let wait = self.due_in(Instant::now());
            let due = async {
                match wait {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.changed.notified() => continue,
                _ = due => {}
            }
            match self.refresh_if_due(transport).await {
                Ok(()) => failures = 0,
                Err(error @ Error::VaultLoginThrottled { .. }) => {
                    // No request was sent; look again soon, in case the credentials files
                    // changed (new credentials are tried at once).
                    tracing::debug!(%error, "login held back");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let delay = TOKEN_RETRY.delay_for(failures);
                    tracing::warn!(
                        %error,
                        failures,
                        retry_in_ms = delay.as_millis() as u64,
                        "could not renew or obtain the Vault token"
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_file_is_read_trimmed_and_a_bad_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret-id");
        std::fs::write(&path, "  s3cr3t\n").unwrap();
        let value = Credential::File(path.clone()).read("secret-id").unwrap();
        assert_eq!(value.expose(), "s3cr3t");
        std::fs::write(&path, "\n").unwrap();
        let empty = Credential::File(path.clone())
            .read("secret-id")
            .unwrap_err();
        assert!(empty.to_string().contains("is empty"), "{empty}");
        let missing = Credential::File(dir.path().join("nope"))
            .read("role-id")
            .unwrap_err();
        let text = missing.to_string();
        assert!(
            text.contains("vault role-id") && text.contains("nope"),
            "{text}"
        );
        assert!(matches!(missing, Error::VaultCredentials { .. }));
    }

    fn held(lease_s: u64, renewable: bool) -> Held {
        Held {
            token: Secret::new("t"),
            generation: 1,
            since: Instant::now(),
            lease: Duration::from_secs(lease_s),
            login_ttl: Duration::from_secs(lease_s),
            renewable,
        }
    }

    #[test]
    fn refreshes_after_two_thirds_of_the_lease() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(2400)
        );
        let h = held(6, true);
        assert_eq!(h.refresh_at(), Some(h.since + Duration::from_secs(4)));
        assert_eq!(
            held(0, false).refresh_at(),
            None,
            "a token without TTL never expires"
        );
    }

    #[test]
    fn a_token_near_expiry_is_not_used() {
        let h = held(5, true);
        assert!(h.usable(h.since));
        assert!(h.usable(h.since + Duration::from_millis(4400)));
        assert!(!h.usable(h.since + Duration::from_millis(4600)));
        assert_eq!(
            safety_margin(Duration::from_secs(86400)),
            Duration::from_secs(10)
        );
        assert!(held(0, false).usable(Instant::now() + Duration::from_secs(1_000_000)));
    }

    #[test]
    fn a_shortened_renewal_means_max_ttl_reached() {
        let five = Duration::from_secs(5);
        assert!(!renewal_capped(five, five));
        assert!(renewal_capped(five, Duration::from_secs(3)));
    }

    #[test]
    fn grants_are_read_from_the_auth_block() {
        let body = json!({"auth": {"client_token": "s.x", "lease_duration": 5, "renewable": true}});
        let g = parse_grant(&body).unwrap();
        assert_eq!(g.token.unwrap().expose(), "s.x");
        assert_eq!(g.lease, Duration::from_secs(5));
        assert!(g.renewable);
        assert!(parse_grant(&json!({"auth": null})).is_none());
        assert!(parse_grant(&json!({"errors": ["denied"]})).is_none());
    }
}
