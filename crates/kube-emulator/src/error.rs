//! Why the emulator could not start.

use crate::auth::AuthError;

/// A failure to start the emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("generating the CA and serving certificate: {0}")]
    Certificates(String),
    #[error("configuring TLS: {0}")]
    Tls(String),
    #[error("generating the ServiceAccount token signing key: {0}")]
    SigningKey(#[source] AuthError),
    #[error("key generation did not complete: {0}")]
    KeyTask(String),
    #[error("listening on 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("creating built-in {resource} {name:?}: {message}")]
    Bootstrap {
        resource: String,
        name: String,
        message: String,
    },
}
