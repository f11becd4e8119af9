//! State shared by the server, the request handlers and the emulated controllers.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::auth::authn::Authenticator;
use crate::auth::jwt::Issuer;
use crate::counters::Registry;
use crate::faults::FaultState;
use crate::store::Store;

/// Everything a request handler or controller needs.
pub(crate) struct Shared {
    pub store: Store,
    pub issuer: Arc<Issuer>,
    pub authn: Authenticator,
    /// Whether RBAC authorization is on (off: every authenticated request is allowed).
    pub rbac: bool,
    /// Whether ServiceAccounts get auto-created token Secrets (Kubernetes <= 1.23).
    pub legacy_token_secrets: bool,
    /// PEM of the CA that signed the serving certificate (what `ca.crt` in token Secrets holds).
    pub ca_pem: String,
    pub admin_token: String,
    /// "127.0.0.1:<port>", as `/api` advertises it.
    pub server_address: String,
    pub counters: Registry,
    pub faults: FaultState,
    /// Cancelled when the emulator shuts down.
    pub shutdown: CancellationToken,
}

impl Shared {
    /// Unix seconds on the emulator's token clock: the real clock moved by the fault-injected
    /// offset ([`crate::Faults::set_clock_offset`]). Everything that mints or checks tokens
    /// reads it, so moving the clock expires tokens without waiting.
    pub fn token_clock(&self) -> i64 {
        crate::meta::unix_now().saturating_add(self.faults.clock_offset())
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No tokens or keys in Debug output.
        f.debug_struct("Shared")
            .field("rbac", &self.rbac)
            .field("legacy_token_secrets", &self.legacy_token_secrets)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}
