//! The crate's one error type: a variant per operation that can fail, carrying its cause.
//!
//! Secrets never reach these messages: Vault tokens, the AppRole secret-id and JWTs are kept out
//! of every variant (Vault error bodies are included, but Vault never echoes credentials).

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the controller and its commands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting (flag or env var) is missing or invalid.
    #[error("invalid setting {setting}: {message}")]
    InvalidSetting { setting: String, message: String },

    /// Leader election could not start.
    #[error("leader election: {0}")]
    LeaderElection(String),

    /// Required settings are missing; each named by flag and env var.
    #[error("missing required setting(s): {0}")]
    MissingSettings(String),

    /// A Kubernetes API call failed.
    #[error("kubernetes: {operation} failed: {}", error_chain(.source))]
    Kube {
        operation: String,
        #[source]
        source: kube::Error,
    },

    /// Could not load a kubeconfig or the in-cluster configuration.
    #[error("kubernetes configuration: {0}")]
    KubeConfig(String),

    /// A Vault request could not be sent or its answer not read (network, TLS, timeout).
    #[error("vault: {operation} failed: {}", error_chain(.source))]
    VaultTransport {
        operation: String,
        #[source]
        source: reqwest::Error,
    },

    /// Vault answered a request with an error status.
    #[error("vault: {operation} failed with HTTP {status}: {message}")]
    VaultStatus {
        operation: String,
        status: u16,
        message: String,
    },

    /// Vault refused a login (AppRole credentials, or the operator's token). The hint says what
    /// to check, including a possible lockout.
    #[error("vault: login refused (HTTP {status}: {message}); {hint}")]
    VaultLoginRefused {
        status: u16,
        message: String,
        hint: String,
    },

    /// A login was not attempted: earlier ones failed, and another attempt now could trip
    /// Vault's AppRole lockout. Changed credentials are tried at once.
    #[error(
        "vault: login held back for {retry_in_s} s after {failures} refused login(s), so Vault's \
         AppRole lockout cannot trigger (last answer: {last}); new credentials are tried at once"
    )]
    VaultLoginThrottled {
        failures: u32,
        retry_in_s: u64,
        last: String,
    },

    /// A credential could not be read (its file is missing, unreadable or empty).
    #[error("vault {what}: {message}")]
    VaultCredentials { what: String, message: String },

    /// Vault answered with a body this tool could not understand.
    #[error("vault: {operation}: unexpected response: {message}")]
    VaultResponse { operation: String, message: String },

    /// Building the Vault HTTP client failed (bad CA file, TLS setup).
    #[error("vault client setup: {0}")]
    VaultSetup(String),

    /// The TLS connection to Vault failed, typically because its certificate is not trusted.
    #[error(
        "vault: {operation} failed: TLS certificate problem with {addr}: {message}; to fix: {hint}"
    )]
    VaultTls {
        operation: String,
        addr: String,
        message: String,
        hint: String,
    },

    /// No auth method is mounted where the request was sent (Vault: "no handler for route").
    #[error("vault: {operation} failed: no auth method is mounted at auth/{path}")]
    VaultMountMissing { operation: String, path: String },

    /// A mount path or role name would address another Vault path than intended.
    #[error("vault: {operation}: invalid path {path:?}: {message}")]
    VaultInvalidPath {
        operation: String,
        path: String,
        message: String,
    },

    /// Another type of auth method sits at the mount path: the tool refuses to touch it.
    #[error(
        "auth method at auth/{path} is of type {found:?}, not \"kubernetes\": refusing to touch it \
         (disable it or choose another --vault-mount)"
    )]
    ForeignMount { path: String, found: String },

    /// An object with the tool's name exists but is not the tool's: it refuses to take it over.
    #[error("conflict: {0}")]
    Conflict(String),

    /// The reviewer token Secret did not get its token in time.
    #[error(
        "token of Secret {namespace}/{name} was not filled in by Kubernetes within {seconds} s"
    )]
    ReviewerTokenTimeout {
        namespace: String,
        name: String,
        seconds: u64,
    },
}

impl Error {
    /// The condition a pass that failed with this error is reported under (the Event reason
    /// and the status annotation's first word): reaching Vault or Kubernetes is a condition of
    /// its own, distinct from what Vault or Kubernetes refused.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            Error::VaultTransport { .. } | Error::VaultTls { .. } => "VaultUnreachable",
            Error::VaultStatus { status: 503, .. } => "VaultUnavailable",
            Error::VaultStatus { operation, .. } if operation == "login" => "VaultLoginFailed",
            Error::VaultLoginRefused { .. }
            | Error::VaultLoginThrottled { .. }
            | Error::VaultCredentials { .. } => "VaultLoginFailed",
            Error::VaultStatus { .. } | Error::VaultResponse { .. } => "VaultRequestFailed",
            Error::VaultMountMissing { .. } => "VaultMountMissing",
            Error::Kube { source, .. } if is_unreachable(source) => "KubernetesUnreachable",
            Error::Kube { .. } => "KubernetesRequestFailed",
            Error::ForeignMount { .. } => "ForeignAuthMethod",
            Error::Conflict(_) => "Conflict",
            Error::ReviewerTokenTimeout { .. } => "ReviewerTokenMissing",
            _ => "SyncFailed",
        }
    }
}

/// An error and its causes, outermost first, joined by ": " — so "error sending request" is
/// followed by what really happened ("tcp connect error: Connection refused", a DNS failure, a
/// TLS reason, "operation timed out"). A cause whose text its wrapper already shows is not
/// repeated. `std::io::Error`s that wrap another error are looked through (their `source()`
/// skips the error they wrap).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    for cause in causes(error).skip(1) {
        let part = cause.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

/// `error` and its causes, outermost first, looking through `std::io::Error`s that wrap another
/// error (their `source()` skips the error they wrap).
pub fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |current| {
        match current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        }
    })
}

/// A Kubernetes request that got no answer (as opposed to an error Status).
fn is_unreachable(error: &kube::Error) -> bool {
    !matches!(error, kube::Error::Api(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("error sending request for url (http://127.0.0.1:1/)")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_the_cause() {
        let inner =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let wrapped = std::io::Error::other(Outer(inner));
        let text = error_chain(&Outer(wrapped));
        assert!(text.starts_with("error sending request"), "{text}");
        assert!(text.ends_with(": Connection refused"), "{text}");
        // Each cause once, even where a wrapper repeats its inner error's text.
        assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
    }
}
