//! TLS towards Vault: which roots are trusted, the explicit opt-out, and recognising a certificate
//! failure so the error can say how to fix it.
//!
//! The original tool never verified Vault's certificate. Here verification is on by default; the
//! trust roots are either the system store or, when a CA file is given, only that file's
//! certificates (a private CA should not be widened to every public CA, nor the reverse).

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// The flag that names a CA file for Vault's certificate (env `VAK_VAULT_CA_CERT`).
pub const CA_CERT_FLAG: &str = "--vault-ca-cert";
/// The flag that turns certificate verification off (env `VAK_VAULT_SKIP_VERIFY`).
pub const SKIP_TLS_VERIFY_FLAG: &str = "--vault-skip-verify";

/// How Vault's server certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRoots<'a> {
    /// The operating system's trust store.
    System,
    /// Only the certificates of this PEM bundle.
    CaFile(&'a Path),
    /// No verification at all (explicit opt-out).
    Insecure,
}

/// Builds the rustls configuration for the Vault client, always with the ring provider (the
/// workspace's only one; relying on a process-wide default would break if none is installed).
pub fn client_config(roots: TrustRoots<'_>) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::VaultSetup(format!("TLS protocol versions: {e}")))?;
    let config = match roots {
        TrustRoots::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        TrustRoots::CaFile(path) => builder
            .with_root_certificates(ca_file_roots(path)?)
            .with_no_client_auth(),
        TrustRoots::System => builder
            .with_root_certificates(system_roots())
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Reads a PEM bundle into a root store; a file without any usable certificate is an error
/// (trusting nothing would only fail later, with a less helpful message).
fn ca_file_roots(path: &Path) -> Result<RootCertStore> {
    let setup_err = |message: String| {
        Error::VaultSetup(format!("CA certificate file {}: {message}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| setup_err(e.to_string()))?;
    parse_roots(&pem).map_err(setup_err)
}

/// Parses PEM certificates into a root store (pure, for tests).
fn parse_roots(pem: &[u8]) -> std::result::Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("unusable certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("contains no PEM certificate".to_string());
    }
    Ok(roots)
}

fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "could not load some system CA certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(
            ignored,
            "no system CA certificate found: an https Vault will not be trusted unless {} is given",
            CA_CERT_FLAG
        );
    }
    roots
}

/// If `err` failed because of TLS (an untrusted or invalid certificate, a failed handshake),
/// the rustls reason as text.
///
/// rustls errors reach us wrapped in (possibly nested) `std::io::Error`s, whose `source()`
/// skips the wrapped error itself, so those links are unwrapped through `io::Error::get_ref`.
pub fn tls_failure(err: &(dyn StdError + 'static)) -> Option<String> {
    crate::error::causes(err)
        .find_map(|e| e.downcast_ref::<rustls::Error>())
        .map(ToString::to_string)
}

/// The fix to suggest when Vault's certificate is not trusted: give a CA when none was given;
/// when one was, check that it is the right one (repeating "give a CA" would mislead).
pub fn tls_fix_hint(ca_given: Option<&std::path::Path>) -> String {
    match ca_given {
        Some(file) => format!(
            "check that {} (given with {CA_CERT_FLAG}, VAK_VAULT_CA_CERT) holds the CA that \
             signed Vault's certificate (with any intermediates), and that the Vault address \
             names a host that certificate is for",
            file.display()
        ),
        None => format!(
            "give the CA that signed Vault's certificate with {CA_CERT_FLAG} <pem file> \
             (VAK_VAULT_CA_CERT), or, only if you accept that anyone on the network path can \
             impersonate Vault, disable verification explicitly with {SKIP_TLS_VERIFY_FLAG} \
             (VAK_VAULT_SKIP_VERIFY=true)"
        ),
    }
}

/// Accepts any server certificate, but still checks the handshake signatures so the connection
/// is at least consistent with the certificate presented. Used only for the explicit opt-out.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_bundle_without_certificates() {
        assert!(parse_roots(b"").unwrap_err().contains("no PEM certificate"));
        assert!(
            parse_roots(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .unwrap_err()
                .contains("no PEM certificate")
        );
    }

    #[test]
    fn missing_ca_file_names_the_path() {
        let err = client_config(TrustRoots::CaFile(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn finds_a_rustls_error_inside_an_io_error() {
        // As hyper-util and tokio-rustls report it: io::Error(Other, io::Error(InvalidData, ..)).
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let io = std::io::Error::other(inner);
        let found = tls_failure(&io).expect("rustls error found");
        assert!(found.contains("UnknownIssuer"), "{found}");

        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(tls_failure(&plain), None);
    }

    #[test]
    fn the_hint_names_both_fixes() {
        let hint = tls_fix_hint(None);
        assert!(hint.contains(CA_CERT_FLAG) && hint.contains(SKIP_TLS_VERIFY_FLAG));
        let hint = tls_fix_hint(Some(std::path::Path::new("/etc/vault-ca.pem")));
        assert!(hint.contains("/etc/vault-ca.pem") && !hint.contains(SKIP_TLS_VERIFY_FLAG));
    }
}
