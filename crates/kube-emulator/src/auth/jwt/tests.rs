use super::*;
use std::sync::OnceLock;

pub(crate) const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// One key for all tests of the module: generating RSA keys is the slow part.
pub(crate) fn issuer() -> &'static Issuer {
    static ISSUER_KEY: OnceLock<Issuer> = OnceLock::new();
    ISSUER_KEY.get_or_init(|| Issuer::generate(ISSUER, vec![ISSUER.to_string()]).unwrap())
}

fn payload(token: &str) -> Value {
    decode_segment(token.split('.').nth(1).unwrap()).unwrap()
}

#[test]
fn bound_token_has_kubernetes_claims() {
    let minted = issuer().mint_bound("ns", "sa", "uid-1", &[], 3600, 1_000);
    assert_eq!(minted.expiration_timestamp, 4_600);
    let claims = payload(&minted.token);
    let keys: Vec<&String> = claims.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "aud",
            "exp",
            "iat",
            "iss",
            "jti",
            "kubernetes.io",
            "nbf",
            "sub"
        ]
    );
    assert_eq!(claims["aud"], json!([ISSUER]));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "system:serviceaccount:ns:sa");
    assert_eq!(
        (claims["iat"].as_i64(), claims["nbf"].as_i64()),
        (Some(1_000), Some(1_000))
    );
    assert_eq!(claims["exp"], 4_600);
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "uid-1"}})
    );
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    let header = decode_segment(minted.token.split('.').next().unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "kid": issuer().key_id()}));
    assert!(!minted.token.contains('='), "segments are unpadded");
}

#[test]
fn bound_token_carries_requested_audiences() {
    let audiences = vec!["vault".to_string(), "other".to_string()];
    let minted = issuer().mint_bound("ns", "sa", "u", &audiences, 600, 0);
    assert_eq!(payload(&minted.token)["aud"], json!(["vault", "other"]));
    let TokenClaims::Bound(claims) = issuer().verify(&minted.token).unwrap() else {
        panic!("bound token verified as legacy")
    };
    assert_eq!(claims.aud, audiences);
}

#[test]
fn legacy_token_has_legacy_claims_and_no_expiry() {
    let token = issuer().mint_legacy("ns", "sa", "uid-1", "sa-token-abcde");
    assert_eq!(
        payload(&token),
        json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "ns",
            "kubernetes.io/serviceaccount/secret.name": "sa-token-abcde",
            "kubernetes.io/serviceaccount/service-account.name": "sa",
            "kubernetes.io/serviceaccount/service-account.uid": "uid-1",
            "sub": "system:serviceaccount:ns:sa"
        })
    );
    assert!(
        matches!(issuer().verify(&token), Ok(TokenClaims::Legacy(c)) if c.secret_name == "sa-token-abcde")
    );
}

#[test]
fn tampered_tokens_are_refused() {
    let token = issuer().mint_bound("ns", "sa", "u", &[], 600, 0).token;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = payload(&token);
    claims["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
    let forged_payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(issuer().verify(&forged), Err(VerifyError::BadSignature));

    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[10] ^= 1;
    let flipped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signature)
    );
    assert_eq!(issuer().verify(&flipped), Err(VerifyError::BadSignature));

    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    assert_eq!(issuer().verify(&unsigned), Err(VerifyError::BadSignature));
}

#[test]
fn tokens_of_another_key_are_refused() {
    let other = Issuer::generate(ISSUER, vec![ISSUER.to_string()]).unwrap();
    let token = other.mint_bound("ns", "sa", "u", &[], 600, 0).token;
    // Its key id names no key of this cluster.
    assert_eq!(issuer().verify(&token), Err(VerifyError::NoKeys));
    assert_ne!(other.key_id(), issuer().key_id());
}

#[test]
fn foreign_and_malformed_tokens_are_not_ours() {
    let other = Issuer::generate("https://elsewhere", vec![]).unwrap();
    let token = other
        .mint_bound("ns", "sa", "u", &["x".to_string()], 600, 0)
        .token;
    assert_eq!(issuer().verify(&token), Err(VerifyError::NotOurs));
    for garbage in ["", "abc", "a.b", "a.b.c.d", "!!.??.**"] {
        assert_eq!(
            issuer().verify(garbage),
            Err(VerifyError::NotOurs),
            "{garbage}"
        );
    }
}

#[test]
fn public_key_pem_and_jwks_describe_the_signing_key() {
    let pem = issuer().public_key_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(pem.trim_end().ends_with("-----END PUBLIC KEY-----"));
    let jwks = issuer().jwks();
    assert_eq!(jwks["keys"][0]["kid"], issuer().key_id());
    assert_eq!(jwks["keys"][0]["e"], "AQAB");
    let n = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["n"].as_str().unwrap())
        .unwrap();
    assert_eq!(n.len(), 256, "2048-bit modulus");
}

#[test]
fn debug_output_hides_secrets() {
    let minted = issuer().mint_bound("ns", "sa", "u", &[], 600, 0);
    let debug = format!("{:?} {:?}", issuer(), minted);
    assert!(!debug.contains(&minted.token));
    assert!(!debug.contains("PRIVATE"));
    assert!(debug.contains("<redacted>"));
}
