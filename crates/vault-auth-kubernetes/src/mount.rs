//! The auth mount given by `--vault-mount`: `<cluster>` or `<environment>/<cluster>` (any number
//! of segments), living at `auth/kubernetes/<mount>` in Vault.

use std::fmt;

use crate::names::AUTH_PATH_PREFIX;

/// A validated `--vault-mount` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount(String);

impl Mount {
    /// Validates a mount: one or more `/`-separated segments, none empty, no leading or trailing
    /// slash, no whitespace, and no `.`/`..` segments (Vault would resolve them as path steps).
    pub fn parse(value: &str) -> Result<Mount, String> {
        if value.is_empty() {
            return Err("must not be empty (e.g. cluster-name or environment/cluster-name)".into());
        }
        if value.starts_with('/') || value.ends_with('/') {
            return Err(format!(
                "{value:?} must not start or end with '/' (e.g. environment/cluster-name)"
            ));
        }
        for segment in value.split('/') {
            if segment.is_empty() {
                return Err(format!("{value:?} has an empty segment ('//')"));
            }
            if segment == "." || segment == ".." {
                return Err(format!("{value:?} has a {segment:?} segment"));
            }
            if segment.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "{value:?} contains whitespace or control characters"
                ));
            }
        }
        Ok(Mount(value.to_string()))
    }

    /// The value as given, e.g. `prod/eu1`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Path of the auth method below `sys/auth/` and `auth/`, e.g. `kubernetes/prod/eu1`.
    pub fn auth_path(&self) -> String {
        format!("{AUTH_PATH_PREFIX}/{}", self.0)
    }

    /// Number of segments: the original README's policy uses one `+` per segment.
    pub fn segments(&self) -> usize {
        self.0.split('/').count()
    }
}

impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_or_more_segments() {
        for ok in ["eu1", "prod/eu1", "a/b/c", "team_x.y-z"] {
            let m = Mount::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(m.auth_path(), format!("kubernetes/{ok}"));
        }
        assert_eq!(Mount::parse("prod/eu1").unwrap().segments(), 2);
    }

    #[test]
    fn rejects_malformed_mounts_with_a_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("/prod", "start or end"),
            ("prod/", "start or end"),
            ("prod//eu1", "empty segment"),
            ("prod/../x", "\"..\" segment"),
            ("prod eu1", "whitespace"),
        ] {
            let err = Mount::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
