//! The emulator's PKI: a fresh CA per start and a serving certificate for loopback, and the
//! rustls server configuration (ring provider, HTTP/2 and HTTP/1.1 by ALPN). Public so the test
//! kit's real control plane gets the same certificates (as PEM files for kube-apiserver).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// The CA and serving certificate of one emulator instance.
pub struct Pki {
    /// PEM of the CA certificate clients must trust.
    pub ca_pem: String,
    /// DER of the CA certificate.
    pub ca_der: Vec<u8>,
    server_cert: CertificateDer<'static>,
    server_key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of Debug output.
        f.debug_struct("Pki")
            .field("ca_pem", &self.ca_pem)
            .finish_non_exhaustive()
    }
}

/// DNS names the serving certificate covers: loopback, plus the in-cluster names of the API so
/// clients configured for "kubernetes.default.svc" also verify.
const DNS_NAMES: &[&str] = &[
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

impl Pki {
    /// Generates a CA and a serving certificate signed by it (ECDSA P-256).
    pub fn generate() -> Result<Self, Error> {
        let ca_key = KeyPair::generate().map_err(|e| Error::Certificates(e.to_string()))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| Error::Certificates(e.to_string()))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kube-emulator-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| Error::Certificates(e.to_string()))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(|e| Error::Certificates(e.to_string()))?;
        let mut params =
            CertificateParams::new(DNS_NAMES.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map_err(|e| Error::Certificates(e.to_string()))?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .map_err(|e| Error::Certificates(e.to_string()))?;

        Ok(Pki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            server_cert: server_cert.der().clone(),
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
        })
    }

    /// PEM of the serving certificate.
    pub fn server_cert_pem(&self) -> String {
        pem("CERTIFICATE", &self.server_cert)
    }

    /// PEM (PKCS#8) of the serving certificate's private key.
    pub fn server_key_pem(&self) -> String {
        pem("PRIVATE KEY", self.server_key.secret_pkcs8_der())
    }

    /// rustls server configuration serving the certificate, with h2 and http/1.1 by ALPN.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.server_cert.clone()],
                PrivateKeyDer::Pkcs8(self.server_key.clone_key()),
            )
            .map_err(|e| Error::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A fresh ECDSA P-256 key pair as PEM: (PKCS#8 private key, SubjectPublicKeyInfo public key),
/// e.g. for signing and verifying ServiceAccount tokens.
pub fn signing_key_pem() -> Result<(String, String), Error> {
    let key = KeyPair::generate().map_err(|e| Error::Certificates(e.to_string()))?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_and_a_usable_server_config() {
        let pki = Pki::generate().unwrap();
        assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let config = pki.server_config().unwrap();
        assert_eq!(config.alpn_protocols.len(), 2);
        assert!(!format!("{pki:?}").contains("PRIVATE"));
        assert!(
            pki.server_cert_pem()
                .starts_with("-----BEGIN CERTIFICATE-----\n")
        );
        assert!(pki.server_key_pem().contains("BEGIN PRIVATE KEY"));
        let (private, public) = signing_key_pem().unwrap();
        assert!(private.contains("BEGIN PRIVATE KEY"));
        assert!(public.contains("BEGIN PUBLIC KEY"));
    }
}
