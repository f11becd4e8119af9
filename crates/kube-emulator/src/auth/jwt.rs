//! RS256 signing key, token minting and signature verification for ServiceAccount JWTs.
//!
//! Tokens are shaped like the ones kube-apiserver issues, byte for byte where clients look:
//! header `{"alg":"RS256","kid":...}` with the key id Kubernetes derives (unpadded base64url of
//! the SHA-256 of the DER public key), claims in alphabetical order, unpadded base64url segments.
mod claims;

pub use claims::{
    BoundClaims, KubernetesClaim, LEGACY_ISSUER, LegacyClaims, ObjectRef, TokenClaims,
};

use super::{AuthError, service_account_username};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::sha2::{Digest, Sha256};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// Size of the signing key; what kubeadm generates for `sa.key`.
const KEY_BITS: usize = 2048;

/// The cluster's token issuer: an RSA-2048 key generated at start, its key id, the issuer URL
/// and the audiences the API server itself accepts.
pub struct Issuer {
    issuer: String,
    api_audiences: Vec<String>,
    key_id: String,
    private_key: rsa::PrivateKey,
    public_key: rsa::PublicKey,
    public_key_pem: String,
}

/// A token minted by TokenRequest and when it expires.
pub struct MintedToken {
    pub token: String,
    pub expiration_timestamp: i64, /* unix seconds */
}

/// Why a token's signature or shape was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a JWT, or not one from an issuer of this cluster: Kubernetes' ServiceAccount
    /// authenticators ignore such tokens rather than report on them.
    #[error("not a service account token of this cluster")]
    NotOurs,
    /// The signature does not verify with the cluster's key (worded as kube-apiserver's go-jose).
    #[error("go-jose/go-jose: error in cryptographic primitive")]
    BadSignature,
    /// The token names a key (`kid`) the cluster does not have (worded as kube-apiserver's
    /// key lookup: no key to verify it with).
    #[error("invalid signature, no keys found")]
    NoKeys,
    /// Signed by us but the claims do not have the expected shape.
    #[error("service account token claims could not be validated")]
    InvalidClaims,
}

impl std::fmt::Debug for Issuer {
    // Hand-written so the private key can never end up in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("api_audiences", &self.api_audiences)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken")
            .field("token", &"<redacted>")
            .field("expiration_timestamp", &self.expiration_timestamp)
            .finish()
    }
}

impl Issuer {
    /// `issuer` e.g. "https://kubernetes.default.svc.cluster.local"; `api_audiences` the audiences
    /// the API server itself accepts (Kubernetes default: [issuer]).
    pub fn generate(issuer: &str, api_audiences: Vec<String>) -> Result<Issuer, AuthError> {
        let private_key = rsa::PrivateKey::new(&mut rand::rngs::SysRng, KEY_BITS)
            .map_err(AuthError::KeyGeneration)?;
        let public_key = private_key.to_public_key();
        let der = public_key
            .to_public_key_der()
            .map_err(AuthError::KeyEncoding)?;
        let public_key_pem = public_key
            .to_public_key_pem(LineEnding::LF)
            .map_err(AuthError::KeyEncoding)?;
        let key_id = URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_bytes()));
        Ok(Issuer {
            issuer: issuer.to_string(),
            api_audiences,
            key_id,
            private_key,
            public_key,
            public_key_pem,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// SPKI PEM, what `pem_keys` in Vault would take.
    pub fn public_key_pem(&self) -> String {
        self.public_key_pem.clone()
    }

    /// The `kid` header of every token this issuer signs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The JSON Web Key Set Kubernetes serves at `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "use": "sig",
            "kty": "RSA",
            "kid": self.key_id,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(self.public_key.n_bytes()),
            "e": URL_SAFE_NO_PAD.encode(self.public_key.e_bytes()),
        }]})
    }

    /// TokenRequest: a bound token shaped like Kubernetes' (iss, sub, aud, exp, iat, nbf, jti,
    /// "kubernetes.io": {namespace, serviceaccount: {name, uid}}). Empty `audiences` means the API
    /// audiences. `now` is unix seconds (passed in so tests can control time).
    pub fn mint_bound(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: &[String],
        expiration_seconds: i64,
        now: i64,
    ) -> MintedToken {
        let aud = if audiences.is_empty() {
            self.api_audiences.clone()
        } else {
            audiences.to_vec()
        };
        let expiration_timestamp = now + expiration_seconds;
        let claims = BoundClaims {
            aud,
            exp: expiration_timestamp,
            iat: now,
            iss: self.issuer.clone(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            kubernetes: KubernetesClaim {
                namespace: namespace.to_string(),
                serviceaccount: ObjectRef {
                    name: name.to_string(),
                    uid: uid.to_string(),
                },
                pod: None,
                secret: None,
            },
            nbf: now,
            sub: service_account_username(namespace, name),
        };
        MintedToken {
            token: self.sign(&claims),
            expiration_timestamp,
        }
    }

    /// Legacy Secret-based token (no exp; claims iss "kubernetes/serviceaccount",
    /// kubernetes.io/serviceaccount/{namespace,secret.name,service-account.name,service-account.uid}, sub).
    pub fn mint_legacy(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        secret_name: &str,
    ) -> String {
        self.sign(&LegacyClaims {
            iss: LEGACY_ISSUER.to_string(),
            namespace: namespace.to_string(),
            secret_name: secret_name.to_string(),
            service_account_name: sa_name.to_string(),
            service_account_uid: sa_uid.to_string(),
            sub: service_account_username(namespace, sa_name),
        })
    }

    /// Checks a token's issuer, algorithm and signature and returns its claims. Says nothing
    /// about expiry, audiences or whether the ServiceAccount still exists: see `authn`.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, VerifyError> {
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(VerifyError::NotOurs);
        };
        // Like kube-apiserver, peek at the (unverified) issuer first: tokens of other issuers are
        // not ours to judge.
        let claims: Value = decode_segment(payload).ok_or(VerifyError::NotOurs)?;
        let issuer = claims.get("iss").and_then(Value::as_str);
        let legacy = match issuer {
            Some(iss) if iss == self.issuer => false,
            Some(LEGACY_ISSUER) => true,
            _ => return Err(VerifyError::NotOurs),
        };
        let signed = &token[..header.len() + 1 + payload.len()];
        let header: Value = decode_segment(header).ok_or(VerifyError::BadSignature)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(VerifyError::BadSignature);
        }
        if let Some(kid) = header.get("kid").and_then(Value::as_str)
            && kid != self.key_id
        {
            return Err(VerifyError::NoKeys);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| VerifyError::BadSignature)?;
        self.public_key
            .pkcs1v15_verify::<Sha256>(signed.as_bytes(), &signature)
            .map_err(|_| VerifyError::BadSignature)?;
        let parsed = if legacy {
            serde_json::from_value(claims).map(TokenClaims::Legacy)
        } else {
            serde_json::from_value(claims).map(TokenClaims::Bound)
        };
        parsed.map_err(|_| VerifyError::InvalidClaims)
    }

    /// Signs arbitrary claims with the cluster key (tests forge bound-object claims with it).
    pub(crate) fn sign(&self, claims: &impl serde::Serialize) -> String {
        let header = json!({"alg": "RS256", "kid": self.key_id});
        let mut token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize to JSON"))
        );
        // Signing only fails if the key is too small for SHA-256 or the OS RNG (used for
        // blinding) fails; neither can happen with a 2048-bit key on a working system.
        let signature = self
            .private_key
            .pkcs1v15_sign::<Sha256>(token.as_bytes())
            .expect("PKCS#1 v1.5 signing with a 2048-bit key");
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        token
    }
}

fn decode_segment(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
pub(crate) mod tests;
