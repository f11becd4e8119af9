//! Name, label and annotation validation with Kubernetes' error wording, so a 422 from the
//! emulator reads like one from a real apiserver.

use crate::kinds::NameRule;

/// One invalid field, as it goes into `Status.details.causes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// "FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden"...
    pub reason: &'static str,
    /// e.g. "metadata.name".
    pub field: String,
    /// e.g. `Invalid value: "Bad": a lowercase RFC 1123 ...`.
    pub message: String,
}

impl FieldError {
    /// An invalid value, worded as Kubernetes' field.Invalid.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueInvalid",
            field: field.to_string(),
            message: format!("Invalid value: {}: {detail}", quote(value)),
        }
    }

    /// An invalid value that is not a string (a number, a list, a struct), printed as Go's
    /// `%v`/JSON prints it: `Invalid value: 60: ...`, `Invalid value: ["/x"]: ...`.
    pub fn invalid_shown(field: &str, shown: &str, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueInvalid",
            field: field.to_string(),
            message: format!("Invalid value: {shown}: {detail}"),
        }
    }

    /// A missing value, worded as Kubernetes' field.Required.
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        FieldError {
            reason: "FieldValueRequired",
            field: field.to_string(),
            message,
        }
    }

    /// A forbidden value or change, worded as Kubernetes' field.Forbidden.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueForbidden",
            field: field.to_string(),
            message: format!("Forbidden: {detail}"),
        }
    }

    /// An unsupported value among a fixed set, worded as Kubernetes' field.NotSupported.
    pub fn not_supported(field: &str, value: &str, allowed: &[&str]) -> Self {
        let list: Vec<String> = allowed.iter().map(|a| quote(a)).collect();
        FieldError {
            reason: "FieldValueNotSupported",
            field: field.to_string(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                quote(value),
                list.join(", ")
            ),
        }
    }

    /// `field: message`, as the summary line of a 422 joins causes.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn is_label_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn label_shape(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(is_label_char)
        && s.starts_with(is_alnum_lower)
        && s.ends_with(is_alnum_lower)
}

/// Whether `s` is an RFC 1123 subdomain (at most 253 characters).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && subdomain_shape(s)
}

fn subdomain_shape(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(label_shape)
}

/// Problems with `name` under `rule`, as Kubernetes' name validators report them.
pub fn name_problems(rule: NameRule, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    match rule {
        NameRule::Label => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_string());
            }
            if !label_shape(name) {
                out.push(DNS1123_LABEL_MSG.to_string());
            }
        }
        NameRule::Subdomain => {
            if name.len() > 253 {
                out.push("must be no more than 253 characters".to_string());
            }
            if !subdomain_shape(name) {
                out.push(DNS1123_SUBDOMAIN_MSG.to_string());
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                out.push(format!("may not be '{name}'"));
            }
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    out.push(format!("may not contain '{bad}'"));
                }
            }
        }
    }
    out
}

/// Validates `metadata.name` (or the generateName prefix, which must be valid once a suffix is
/// appended) for a kind.
pub fn validate_name(rule: NameRule, name: &str, field: &str) -> Vec<FieldError> {
    name_problems(rule, name)
        .into_iter()
        .map(|p| FieldError::invalid(field, name, &p))
        .collect()
}

/// Whether `s` is a qualified name: an optional DNS subdomain prefix and "/", then 1-63
/// alphanumerics, '-', '_' or '.', starting and ending alphanumeric (label and annotation keys).
pub fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix
        && !is_dns1123_subdomain(p)
    {
        return false;
    }
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether `s` is a valid label value: empty, or up to 63 characters of alphanumerics, '-', '_'
/// or '.', starting and ending alphanumeric.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// Validates `metadata.labels` and `metadata.annotations` keys and label values.
pub fn validate_labels_and_annotations(metadata: &serde_json::Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(labels) = metadata.get("labels").and_then(|v| v.as_object()) {
        for (key, value) in labels {
            if !is_qualified_name(key) {
                errors.push(FieldError::invalid(
                    "metadata.labels",
                    key,
                    QUALIFIED_NAME_MSG,
                ));
            }
            match value.as_str() {
                Some(v) if is_label_value(v) => {}
                Some(v) => errors.push(FieldError::invalid("metadata.labels", v, LABEL_VALUE_MSG)),
                None => errors.push(FieldError::invalid(
                    "metadata.labels",
                    &value.to_string(),
                    "label values must be strings",
                )),
            }
        }
    }
    if let Some(annotations) = metadata.get("annotations").and_then(|v| v.as_object()) {
        for (key, value) in annotations {
            if !is_qualified_name(&key.to_lowercase()) {
                errors.push(FieldError::invalid(
                    "metadata.annotations",
                    key,
                    QUALIFIED_NAME_MSG,
                ));
            }
            if !value.is_string() {
                errors.push(FieldError::invalid(
                    "metadata.annotations",
                    &value.to_string(),
                    "annotation values must be strings",
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_and_subdomains() {
        assert!(name_problems(NameRule::Label, "default").is_empty());
        assert_eq!(name_problems(NameRule::Label, "kube.system").len(), 1);
        assert_eq!(name_problems(NameRule::Label, "-a").len(), 1);
        assert_eq!(name_problems(NameRule::Label, &"a".repeat(64)).len(), 1);
        assert!(is_dns1123_subdomain("my.config-map"));
        assert!(!is_dns1123_subdomain("Bad_Name"));
        assert!(!is_dns1123_subdomain("a..b"));
    }

    #[test]
    fn name_rules_differ_per_kind() {
        assert!(
            validate_name(
                NameRule::PathSegment,
                "system:auth-delegator",
                "metadata.name"
            )
            .is_empty()
        );
        assert_eq!(
            validate_name(NameRule::Subdomain, "system:x", "metadata.name").len(),
            1
        );
        assert_eq!(
            validate_name(NameRule::Label, "a.b", "metadata.name").len(),
            1
        );
        assert_eq!(
            validate_name(NameRule::PathSegment, "a/b", "metadata.name").len(),
            1
        );
        let e = &validate_name(NameRule::Subdomain, "Bad_Name", "metadata.name")[0];
        assert_eq!(e.reason, "FieldValueInvalid");
        assert!(e.summary().starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
    }

    #[test]
    fn label_keys_and_values() {
        assert!(is_qualified_name("app.kubernetes.io/name"));
        assert!(is_qualified_name("tier"));
        assert!(!is_qualified_name("-tier"));
        assert!(!is_qualified_name("Bad_Prefix/x"));
        assert!(is_label_value(""));
        assert!(!is_label_value("a b"));
        let errors = validate_labels_and_annotations(&json!({
            "labels": {"ok": "v", "bad key": "v", "k": "bad value"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
        }));
        assert_eq!(errors.len(), 2);
    }
}
