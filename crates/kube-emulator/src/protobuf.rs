//! Decoding of Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`) for
//! the kinds kubectl's typed commands send that way (`kubectl create configmap|secret|namespace|
//! serviceaccount|role|clusterrole|rolebinding|clusterrolebinding|token`). Bodies are turned into
//! the JSON the rest of the emulator handles; responses stay JSON, which clients accept.
//!
//! Wire format: the magic `k8s\0`, then a `runtime.Unknown` {1: TypeMeta {1: apiVersion, 2: kind},
//! 2: raw (the object's message)}. Field numbers below are those of k8s.io/api's generated.proto.

use base64::Engine;
use serde_json::{Map, Value, json};

/// How a field is decoded.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Msg(&'static [Field]),
    StrMap,
    BytesMap,
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn list(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];
const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(11, "labels", Ty::StrMap),
    f(12, "annotations", Ty::StrMap),
    list(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    list(14, "finalizers", Ty::Str),
];
const META: Field = f(1, "metadata", Ty::Msg(OBJECT_META));
const CONFIG_MAP: &[Field] = &[
    META,
    f(2, "data", Ty::StrMap),
    f(3, "binaryData", Ty::BytesMap),
    f(4, "immutable", Ty::Bool),
];
const SECRET: &[Field] = &[
    META,
    f(2, "data", Ty::BytesMap),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::StrMap),
    f(5, "immutable", Ty::Bool),
];
const NAMESPACE: &[Field] = &[
    META,
    f(2, "spec", Ty::Msg(&[list(1, "finalizers", Ty::Str)])),
];
const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
];
const SERVICE_ACCOUNT: &[Field] = &[
    META,
    list(2, "secrets", Ty::Msg(OBJECT_REFERENCE)),
    list(3, "imagePullSecrets", Ty::Msg(&[f(1, "name", Ty::Str)])),
    f(4, "automountServiceAccountToken", Ty::Bool),
];
const POLICY_RULE: &[Field] = &[
    list(1, "verbs", Ty::Str),
    list(2, "apiGroups", Ty::Str),
    list(3, "resources", Ty::Str),
    list(4, "resourceNames", Ty::Str),
    list(5, "nonResourceURLs", Ty::Str),
];
const LABEL_SELECTOR: &[Field] = &[
    f(1, "matchLabels", Ty::StrMap),
    list(
        2,
        "matchExpressions",
        Ty::Msg(&[
            f(1, "key", Ty::Str),
            f(2, "operator", Ty::Str),
            list(3, "values", Ty::Str),
        ]),
    ),
];
const ROLE: &[Field] = &[META, list(2, "rules", Ty::Msg(POLICY_RULE))];
const CLUSTER_ROLE: &[Field] = &[
    META,
    list(2, "rules", Ty::Msg(POLICY_RULE)),
    f(
        3,
        "aggregationRule",
        Ty::Msg(&[list(1, "clusterRoleSelectors", Ty::Msg(LABEL_SELECTOR))]),
    ),
];
const BINDING: &[Field] = &[
    META,
    list(
        2,
        "subjects",
        Ty::Msg(&[
            f(1, "kind", Ty::Str),
            f(2, "apiGroup", Ty::Str),
            f(3, "name", Ty::Str),
            f(4, "namespace", Ty::Str),
        ]),
    ),
    f(
        3,
        "roleRef",
        Ty::Msg(&[
            f(1, "apiGroup", Ty::Str),
            f(2, "kind", Ty::Str),
            f(3, "name", Ty::Str),
        ]),
    ),
];
const TOKEN_REQUEST: &[Field] = &[
    META,
    f(
        2,
        "spec",
        Ty::Msg(&[
            list(1, "audiences", Ty::Str),
            f(
                3,
                "boundObjectRef",
                Ty::Msg(&[
                    f(1, "kind", Ty::Str),
                    f(2, "apiVersion", Ty::Str),
                    f(3, "name", Ty::Str),
                    f(4, "uid", Ty::Str),
                ]),
            ),
            f(4, "expirationSeconds", Ty::Int),
        ]),
    ),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];
const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    META,
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
            f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
        ]),
    ),
];
const SUBJECT_ACCESS_REVIEW: &[Field] = &[
    META,
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
            f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
            f(3, "user", Ty::Str),
            list(4, "groups", Ty::Str),
            f(6, "uid", Ty::Str),
        ]),
    ),
];

fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("rbac.authorization.k8s.io/v1", "Role") => ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => BINDING,
        ("authentication.k8s.io/v1", "TokenRequest") => TOKEN_REQUEST,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SELF_SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SubjectAccessReview") => SUBJECT_ACCESS_REVIEW,
        _ => return None,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A decoded field: number and payload.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|e| *e <= self.buf.len())
                    .ok_or("truncated field")?;
                let bytes = &self.buf[self.pos..end];
                self.pos = end;
                Wire::Bytes(bytes)
            }
            1 => {
                self.pos += 8;
                Wire::Fixed
            }
            5 => {
                self.pos += 4;
                Wire::Fixed
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok(Some((key >> 3, wire)))
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in string field".to_string())
}

fn map_entry(bytes: &[u8], binary: bool) -> Result<(String, Value), String> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    while let Some((num, wire)) = r.next()? {
        if let Wire::Bytes(b) = wire {
            match num {
                1 => key = utf8(b)?,
                2 if binary => value = json!(base64::engine::general_purpose::STANDARD.encode(b)),
                2 => value = json!(utf8(b)?),
                _ => {}
            }
        }
    }
    Ok((key, value))
}

fn decode_message(bytes: &[u8], fields: &[Field]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut r = Reader { buf: bytes, pos: 0 };
    while let Some((num, wire)) = r.next()? {
        // Fields the emulator does not know are skipped, as any protobuf reader does.
        let Some(field) = fields.iter().find(|f| f.num == num) else {
            continue;
        };
        let value = match (field.ty, wire) {
            (Ty::Str, Wire::Bytes(b)) => json!(utf8(b)?),
            (Ty::Int, Wire::Varint(v)) => json!(v as i64),
            (Ty::Bool, Wire::Varint(v)) => json!(v != 0),
            (Ty::Msg(sub), Wire::Bytes(b)) => Value::Object(decode_message(b, sub)?),
            (Ty::StrMap | Ty::BytesMap, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, matches!(field.ty, Ty::BytesMap))?;
                let entry = out.entry(field.name).or_insert_with(|| json!({}));
                entry[&k] = v;
                continue;
            }
            _ => return Err(format!("field {} has an unexpected wire type", field.name)),
        };
        if field.repeated {
            match out.entry(field.name).or_insert_with(|| json!([])) {
                Value::Array(a) => a.push(value),
                _ => return Err(format!("field {} repeated inconsistently", field.name)),
            }
        } else if !(value.as_str() == Some("") || value.as_object().is_some_and(Map::is_empty)) {
            // Empty strings and messages mean "unset" in Kubernetes' JSON.
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(out)
}

/// Decodes a protobuf request body into the JSON object it encodes.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let unknown = body
        .strip_prefix(b"k8s\0")
        .ok_or("missing the protobuf envelope prefix")?;
    let mut r = Reader {
        buf: unknown,
        pos: 0,
    };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    while let Some((num, wire)) = r.next()? {
        match (num, wire) {
            (1, Wire::Bytes(type_meta)) => {
                let tm = decode_message(
                    type_meta,
                    &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)],
                )?;
                api_version = tm
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                kind = tm
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
            }
            (2, Wire::Bytes(b)) => raw = Some(b),
            (4, Wire::Bytes(ct))
                if !ct.is_empty() && ct != b"application/vnd.kubernetes.protobuf" =>
            {
                return Err(format!(
                    "unsupported embedded content type {:?}",
                    String::from_utf8_lossy(ct)
                ));
            }
            _ => {}
        }
    }
    let fields = schema(&api_version, &kind).ok_or_else(|| {
        format!("protobuf bodies of {api_version}/{kind} are not supported; send JSON")
    })?;
    let mut obj = decode_message(raw.unwrap_or_default(), fields)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `kubectl create token default --duration 11m --audience aud-one --audience aud-two`
    /// sends (captured from kubectl v1.33).
    const TOKEN_REQUEST_BODY: &[u8] = &[
        0x6b, 0x38, 0x73, 0x00, 0x0a, 0x28, 0x0a, 0x18, b'a', b'u', b't', b'h', b'e', b'n', b't',
        b'i', b'c', b'a', b't', b'i', b'o', b'n', b'.', b'k', b'8', b's', b'.', b'i', b'o', b'/',
        b'v', b'1', 0x12, 0x0c, b'T', b'o', b'k', b'e', b'n', b'R', b'e', b'q', b'u', b'e', b's',
        b't', 0x12, 0x2f, 0x0a, 0x10, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00,
        0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x15, 0x0a, 0x07, b'a', b'u', b'd', b'-', b'o',
        b'n', b'e', 0x0a, 0x07, b'a', b'u', b'd', b'-', b't', b'w', b'o', 0x20, 0x94, 0x05, 0x1a,
        0x04, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00,
    ];

    #[test]
    fn decodes_kubectls_token_request() {
        let v = decode(TOKEN_REQUEST_BODY).unwrap();
        assert_eq!(v["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(v["kind"], "TokenRequest");
        assert_eq!(v["spec"]["audiences"], json!(["aud-one", "aud-two"]));
        assert_eq!(v["spec"]["expirationSeconds"], 660);
        assert!(v.get("metadata").is_none(), "empty metadata is unset: {v}");
    }

    #[test]
    fn decodes_maps_and_bytes() {
        // Secret{metadata{name "s", labels{a: b}}, data{k: "\x01\x02"}, type "Opaque"}
        let mut raw = vec![
            0x0a, 0x0b, 0x0a, 0x01, b's', 0x5a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b',
        ];
        raw.extend([0x12, 0x07, 0x0a, 0x01, b'k', 0x12, 0x02, 0x01, 0x02]);
        raw.extend([0x1a, 0x06, b'O', b'p', b'a', b'q', b'u', b'e']);
        let mut body = b"k8s\0".to_vec();
        body.extend([
            0x0a, 0x0c, 0x0a, 0x02, b'v', b'1', 0x12, 0x06, b'S', b'e', b'c', b'r', b'e', b't',
        ]);
        body.push(0x12);
        body.push(raw.len() as u8);
        body.extend(raw);
        let v = decode(&body).unwrap();
        assert_eq!(v["metadata"], json!({"name": "s", "labels": {"a": "b"}}));
        assert_eq!(v["data"]["k"], "AQI=");
        assert_eq!(v["type"], "Opaque");
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(decode(b"{}").is_err());
        let mut body = b"k8s\0".to_vec();
        body.extend([
            0x0a, 0x0b, 0x0a, 0x02, b'v', b'1', 0x12, 0x05, b'E', b'v', b'e', b'n', b't',
        ]);
        assert!(decode(&body).unwrap_err().contains("not supported"));
        assert!(decode(b"k8s\0\x0a\xff").is_err());
    }
}
