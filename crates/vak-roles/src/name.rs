//! Names: Vault role names, Kubernetes ServiceAccount and namespace names, label keys and
//! values, and the `*` patterns Vault accepts in bound names and namespaces.

/// The longest ConfigMap data key Kubernetes accepts.
pub(crate) const MAX_KEY_LENGTH: usize = 253;

/// Why `key` cannot name a Vault role, if it cannot. Vault's route is
/// `role/(?P<name>\w(([\w-.]+)?\w)?)` with Go's ASCII-only `\w`; it stores the name lowercased.
pub(crate) fn role_name_problem(key: &str) -> Option<String> {
    if key.len() > MAX_KEY_LENGTH {
        // The API server refuses such a ConfigMap key (IsConfigMapKey); validate must too.
        return Some(format!(
            "the key is {} characters long; Kubernetes accepts ConfigMap keys of at most \
             {MAX_KEY_LENGTH}",
            key.len()
        ));
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = key.chars();
    let (Some(first), last) = (chars.next(), key.chars().last()) else {
        return Some("empty role name".into());
    };
    let ok = word(first)
        && last.is_some_and(word)
        && key.chars().all(|c| word(c) || c == '-' || c == '.');
    (!ok).then(|| {
        "Vault cannot hold this role name: use letters, digits, '_', '-' and '.', starting and \
         ending with a letter, digit or '_'"
            .into()
    })
}

/// True when a bound name or namespace is a pattern (`*`, `app-*`) rather than a name.
pub(crate) fn is_pattern(s: &str) -> bool {
    s.contains('*')
}

/// Why `name` can never be a ServiceAccount name (a DNS-1123 subdomain), if it cannot.
/// A pattern is checked for characters that no ServiceAccount name could match.
pub(crate) fn service_account_name_problem(name: &str) -> Option<String> {
    if is_pattern(name) {
        return pattern_problem(name, 253, "ServiceAccount", |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
        });
    }
    if name.len() > 253 {
        return Some(format!(
            "{name:?} is not a valid ServiceAccount name: longer than 253 characters"
        ));
    }
    let ok = name.split('.').all(is_dns_label);
    (!ok).then(|| {
        format!(
            "{name:?} is not a valid ServiceAccount name: Kubernetes requires a DNS-1123 \
             subdomain (lowercase letters, digits, '-' and '.', starting and ending with a \
             letter or digit)"
        )
    })
}

/// Why `name` can never be a namespace name (a DNS-1123 label), if it cannot.
pub(crate) fn namespace_name_problem(name: &str) -> Option<String> {
    if is_pattern(name) {
        return pattern_problem(name, 63, "namespace", |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        });
    }
    (!is_dns_label(name)).then(|| {
        format!(
            "{name:?} is not a valid namespace name: Kubernetes requires a DNS-1123 label (at \
             most 63 lowercase letters, digits and '-', starting and ending with a letter or \
             digit)"
        )
    })
}

fn pattern_problem(
    pattern: &str,
    max: usize,
    what: &str,
    allowed: impl Fn(char) -> bool,
) -> Option<String> {
    let bad = pattern.chars().find(|&c| c != '*' && !allowed(c));
    match bad {
        Some(c) => Some(format!(
            "pattern {pattern:?} contains {c:?}, which no {what} name can contain"
        )),
        None if pattern.len() > max + 1 && pattern.matches('*').count() == 1 => Some(format!(
            "pattern {pattern:?} is longer than any {what} name can be"
        )),
        None => None,
    }
}

/// A DNS-1123 label: 1-63 of `[a-z0-9-]`, starting and ending alphanumeric.
fn is_dns_label(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes.iter().all(|&b| alnum(b) || b == b'-')
}

/// Why `key` is not a valid Kubernetes label key (`[prefix/]name`), if it is not.
pub(crate) fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.len() > 253 || !prefix.split('.').all(is_dns_label))
    {
        return Some(format!(
            "label key {key:?} has an invalid prefix: it must be a DNS-1123 subdomain"
        ));
    }
    (name.is_empty() || !is_label_name(name)).then(|| {
        format!(
            "label key {key:?} is invalid: the name part must be 1-63 letters, digits, '-', '_' \
             or '.', starting and ending with a letter or digit"
        )
    })
}

/// Why `value` is not a valid Kubernetes label value, if it is not.
pub(crate) fn label_value_problem(value: &str) -> Option<String> {
    (!value.is_empty() && !is_label_name(value)).then(|| {
        format!(
            "label value {value:?} is invalid: at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        )
    })
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    !bytes.is_empty()
        && bytes.len() <= 63
        && alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes
            .iter()
            .all(|&b| alnum(b) || b == b'-' || b == b'_' || b == b'.')
}

/// Glob match where `*` stands for any run of characters (as Vault matches bound names).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: exact match.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_as_vault_routes_them() {
        // Checked against OpenBao 2.7.2: accepted names were created, others got "unsupported path".
        for ok in ["a", "a.b", "a-b", "a_b", "a..b", "_a_", "MyRole", "web-01"] {
            assert_eq!(role_name_problem(ok), None, "{ok}");
        }
        for bad in ["", "-a", "a-", ".a", "a.", "é", "a b", "a/b", "a*"] {
            assert!(role_name_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(role_name_problem(&"a".repeat(253)), None);
        assert!(
            role_name_problem(&"a".repeat(254))
                .unwrap()
                .contains("at most 253")
        );
    }

    #[test]
    fn service_account_names() {
        for ok in [
            "default",
            "vault-agent-injector",
            "a.b",
            "a1",
            "*",
            "app-*",
            "*-sa",
        ] {
            assert_eq!(service_account_name_problem(ok), None, "{ok}");
        }
        let long = "a".repeat(254);
        for bad in [
            "Default",
            "-a",
            "a-",
            "a_b",
            "a..b",
            "",
            "a b",
            long.as_str(),
            "App-*",
        ] {
            assert!(service_account_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn namespace_names() {
        let max = "a".repeat(63);
        for ok in ["default", "kube-system", max.as_str(), "*", "team-*"] {
            assert_eq!(namespace_name_problem(ok), None, "{ok}");
        }
        let long = "a".repeat(64);
        for bad in ["Default", "a.b", "a_b", "-a", "", long.as_str(), "team.*"] {
            assert!(namespace_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        for ok in ["team", "app.kubernetes.io/name", "a_b", "A-1"] {
            assert_eq!(label_key_problem(ok), None, "{ok}");
        }
        for bad in ["", "a b", "-a", "/a", "a/", "Bad_Prefix/a", "a/b/c"] {
            assert!(label_key_problem(bad).is_some(), "{bad}");
        }
        for ok in ["", "x", "a.b_c-d"] {
            assert_eq!(label_value_problem(ok), None, "{ok}");
        }
        for bad in ["a b", "-a", &"a".repeat(64)] {
            assert!(label_value_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn globs() {
        let cases = [
            ("*", "anything", true),
            ("*", "", true),
            ("team-*", "team-a", true),
            ("team-*", "team-", true),
            ("team-*", "teams", false),
            ("*-prod", "web-prod", true),
            ("*-prod", "web-prod-2", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("exact", "exact", true),
            ("exact", "exact2", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern} ~ {text}");
        }
    }
}
