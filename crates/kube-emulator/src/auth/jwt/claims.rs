//! The claims of the two ServiceAccount token shapes Kubernetes issues.
use serde::{Deserialize, Deserializer, Serialize};

/// Issuer of legacy (Secret-based) ServiceAccount tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// Claims of a bound token (TokenRequest). Field order is alphabetical, as Kubernetes emits them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundClaims {
    /// Always serialized as an array (as Kubernetes does); a single string is accepted too.
    #[serde(deserialize_with = "string_or_list")]
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
    pub nbf: i64,
    pub sub: String,
}

/// The private `kubernetes.io` claim of a bound token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaim {
    pub namespace: String,
    pub serviceaccount: ObjectRef,
    /// Object the token is bound to, if any; the token dies with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
}

/// A reference to an object by name and uid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub name: String,
    pub uid: String,
}

/// Claims of a legacy token, as the token controller puts them in service-account-token Secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyClaims {
    pub iss: String,
    #[serde(rename = "kubernetes.io/serviceaccount/namespace", default)]
    pub namespace: String,
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name", default)]
    pub secret_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name", default)]
    pub service_account_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.uid", default)]
    pub service_account_uid: String,
    #[serde(default)]
    pub sub: String,
}

/// The claims of a token whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenClaims {
    Bound(BoundClaims),
    Legacy(LegacyClaims),
}

/// JWT `aud` may be a string or a list of strings (RFC 7519 section 4.1.3).
fn string_or_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_accepts_a_single_string() {
        let claims: BoundClaims = serde_json::from_value(serde_json::json!({
            "aud": "vault", "exp": 2, "iat": 1, "iss": "i", "nbf": 1, "sub": "s",
            "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u"}}
        }))
        .unwrap();
        assert_eq!(claims.aud, ["vault"]);
        assert_eq!(claims.jti, None);
        assert_eq!(
            serde_json::to_value(&claims).unwrap()["aud"],
            serde_json::json!(["vault"])
        );
    }
}
