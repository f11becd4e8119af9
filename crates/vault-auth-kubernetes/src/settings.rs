//! Settings resolved from flags and env vars, validated once at start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{ConnectionArgs, ControllerArgs, KubernetesArgs, RunArgs, Setting, VaultArgs};
use crate::error::{Error, Result};
use crate::mount::Mount;
use crate::names::DEFAULT_NAMESPACE;
use crate::secret::Secret;
use crate::vault::{DEFAULT_APPROLE_MOUNT, DEFAULT_REQUEST_TIMEOUT, VaultSettings};

/// Where the in-cluster namespace of the pod is mounted.
pub const IN_CLUSTER_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Everything the controller and the online commands need, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub kubeconfig: Option<PathBuf>,
    pub vault_kube_host: Option<String>,
    pub mount: Mount,
    pub vault: VaultSettings,
    /// Namespace of the controller and of the roles ConfigMap.
    pub namespace: String,
    pub resync_interval: Duration,
    /// Port of the admin server (0: any free port).
    pub admin_port: u16,
    /// Leader election, when on.
    pub leader_election: Option<LeaderElection>,
}

/// Default of `--resync-interval` (what one-shot commands carry, unused).
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(60);

/// Name of the Lease used for leader election.
pub const LEASE_NAME: &str = "vault-auth-kubernetes";

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// Validity of the Lease without renewal.
    pub lease_duration: Duration,
}

/// The value, or the setting that would give it.
fn required(value: Option<&str>, setting: Setting) -> std::result::Result<String, String> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(setting.describe()),
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn invalid(setting: Setting, message: impl Into<String>) -> Error {
    Error::InvalidSetting {
        setting: setting.describe(),
        message: message.into(),
    }
}

impl Settings {
    /// Validates what a command that talks to the cluster and Vault was given. Every missing
    /// required value is named by flag and env var.
    pub fn from_connection(args: &ConnectionArgs) -> Result<Settings> {
        Self::from_connection_with_namespace_file(args, Path::new(IN_CLUSTER_NAMESPACE_FILE))
    }

    /// Validates the controller's settings: the connection and how it runs.
    pub fn from_controller(args: &ControllerArgs) -> Result<Settings> {
        let ControllerArgs {
            connection,
            run:
                RunArgs {
                    resync_interval,
                    admin_port,
                    leader_election,
                    leader_lease_duration,
                },
        } = args;
        if *leader_election && leader_lease_duration.as_secs() < 3 {
            return Err(invalid(Setting::LeaderLeaseDuration, "must be at least 3s"));
        }
        let mut settings = Self::from_connection(connection)?;
        settings.resync_interval = *resync_interval;
        settings.admin_port = *admin_port;
        settings.leader_election = leader_election.then_some(LeaderElection {
            lease_duration: *leader_lease_duration,
        });
        Ok(settings)
    }

    fn from_connection_with_namespace_file(
        args: &ConnectionArgs,
        ns_file: &Path,
    ) -> Result<Settings> {
        let ConnectionArgs {
            kubernetes:
                KubernetesArgs {
                    kubeconfig,
                    namespace,
                    vault_kube_host,
                },
            vault:
                VaultArgs {
                    vault_host,
                    vault_mount,
                    vault_role_id,
                    vault_secret_id,
                    vault_ca_cert,
                    vault_skip_verify,
                    vault_namespace,
                    vault_approle_mount,
                },
            // Used before the settings: logging is set up first.
            logging: _,
        } = args;
        let mut missing = Vec::new();
        let mut take = |value: Option<&str>, setting| {
            required(value, setting)
                .map_err(|e| missing.push(e))
                .unwrap_or_default()
        };
        let vault_host = take(vault_host.as_deref(), Setting::VaultHost);
        let mount = take(vault_mount.as_deref(), Setting::VaultMount);
        let role_id = take(
            vault_role_id.as_ref().map(|s| s.0.as_str()),
            Setting::VaultRoleId,
        );
        let secret_id = take(
            vault_secret_id.as_ref().map(|s| s.0.as_str()),
            Setting::VaultSecretId,
        );
        if !missing.is_empty() {
            return Err(Error::MissingSettings(missing.join(", ")));
        }

        let mount =
            Mount::parse(&mount).map_err(|message| invalid(Setting::VaultMount, message))?;
        let addr = validate_url(&vault_host, Setting::VaultHost)?;
        let vault_kube_host = non_empty(vault_kube_host)
            .map(|h| validate_url(&h, Setting::VaultKubeHost))
            .transpose()?;
        if let Some(ca) = vault_ca_cert
            && !ca.is_file()
        {
            return Err(invalid(
                Setting::VaultCaCert,
                format!("{} is not a readable file", ca.display()),
            ));
        }
        let approle_mount = vault_approle_mount
            .as_deref()
            .unwrap_or(DEFAULT_APPROLE_MOUNT)
            .trim()
            .trim_matches('/')
            .to_string();
        if approle_mount.is_empty() {
            return Err(invalid(Setting::VaultApproleMount, "must not be empty"));
        }
        let namespace = non_empty(namespace)
            .or_else(|| {
                std::fs::read_to_string(ns_file)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());

        Ok(Settings {
            kubeconfig: kubeconfig.clone().filter(|p| !p.as_os_str().is_empty()),
            vault_kube_host,
            mount,
            vault: VaultSettings {
                addr,
                namespace: non_empty(vault_namespace),
                ca_cert_file: vault_ca_cert.clone(),
                skip_tls_verify: *vault_skip_verify,
                approle_mount,
                role_id,
                secret_id: Secret::new(secret_id),
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
            },
            namespace,
            resync_interval: DEFAULT_RESYNC_INTERVAL,
            admin_port: 0,
            leader_election: None,
        })
    }
}

fn validate_url(value: &str, setting: Setting) -> Result<String> {
    let parsed = url::Url::parse(value).map_err(|e| {
        invalid(
            setting,
            format!("{value:?} is not a URL ({e}); e.g. https://vault.example.com:8200"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid(
            setting,
            format!("{value:?} must be an http(s) URL with a host"),
        ));
    }
    Ok(value.trim_end_matches('/').to_string())
}

impl fmt::Display for Settings {
    /// One line for the startup log; secrets show as `******`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kubeconfig = self
            .kubeconfig
            .as_ref()
            .map_or_else(|| "(in-cluster)".to_string(), |p| p.display().to_string());
        write!(
            f,
            "kubeconfig: {kubeconfig:?} vault-host: {:?} vault-mount: {:?} vault-kube-host: {:?} \
             vault-role-id: {} vault-secret-id: {} vault-namespace: {:?} vault-ca-cert: {:?} \
             vault-skip-verify: {} vault-approle-mount: {:?} namespace: {:?} resync-interval: {}",
            self.vault.addr,
            self.mount.as_str(),
            self.vault_kube_host
                .as_deref()
                .unwrap_or("(from kubeconfig)"),
            crate::secret::REDACTED,
            self.vault.secret_id,
            self.vault.namespace.as_deref().unwrap_or(""),
            self.vault
                .ca_cert_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            self.vault.skip_tls_verify,
            self.vault.approle_mount,
            self.namespace,
            humantime::format_duration(self.resync_interval),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command, normalize_args};
    use clap::Parser;

    fn controller(extra: &[&str]) -> ControllerArgs {
        let argv = std::iter::once("vak")
            .chain(extra.iter().copied())
            .map(std::ffi::OsString::from);
        match Cli::try_parse_from(normalize_args(argv))
            .expect("parses")
            .command
        {
            Command::Run(args) => args,
            other => panic!("run expected: {other:?}"),
        }
    }

    const FULL: &[&str] = &[
        "--vault-host",
        "https://vault:8200/",
        "--vault-mount",
        "prod/eu1",
        "--vault-role-id",
        "role-123",
        "--vault-secret-id",
        "s3cr3t-value",
    ];

    #[test]
    fn missing_required_values_name_flag_and_env_var() {
        // Env vars of the real process must not leak into this test's expectations.
        let mut a = controller(&[]);
        a.connection.vault.vault_host = None;
        a.connection.vault.vault_mount = None;
        a.connection.vault.vault_role_id = Some(crate::cli::SecretArg("  ".into()));
        a.connection.vault.vault_secret_id = None;
        let err = Settings::from_controller(&a).unwrap_err().to_string();
        for want in [
            "--vault-host (env VAK_VAULT_HOST)",
            "--vault-mount (env VAK_VAULT_MOUNT)",
            "--vault-role-id (env VAK_VAULT_ROLE_ID)",
            "--vault-secret-id (env VAK_VAULT_SECRET_ID)",
        ] {
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn display_hides_secrets() {
        let s = Settings::from_controller(&controller(FULL)).unwrap();
        let line = s.to_string();
        assert!(!line.contains("s3cr3t-value"), "{line}");
        assert!(!line.contains("role-123"), "{line}");
        assert!(line.contains("vault-secret-id: ******"), "{line}");
        assert!(!format!("{s:?}").contains("s3cr3t-value"));
        assert_eq!(s.vault.addr, "https://vault:8200");
    }

    #[test]
    fn rejects_bad_mount_and_url_naming_the_flag() {
        let mut a = controller(FULL);
        a.connection.vault.vault_mount = Some("/prod".into());
        let err = Settings::from_controller(&a).unwrap_err().to_string();
        assert!(err.contains("--vault-mount (env VAK_VAULT_MOUNT)"), "{err}");

        let mut a = controller(FULL);
        a.connection.vault.vault_host = Some("vault:8200".into());
        let err = Settings::from_controller(&a).unwrap_err().to_string();
        assert!(err.contains("--vault-host"), "{err}");
    }

    #[test]
    fn rejects_other_bad_values_naming_the_flag_and_env_var() {
        let cases: [(&[&str], &str); 4] = [
            (
                &["--vault-ca-cert", "/nonexistent/ca.pem"],
                "--vault-ca-cert (env VAK_VAULT_CA_CERT)",
            ),
            (
                &["--vault-approle-mount", " / "],
                "--vault-approle-mount (env VAK_VAULT_APPROLE_MOUNT)",
            ),
            (
                &["--vault-kube-host", "not a url"],
                "--vault-kube-host (env VAK_VAULT_KUBE_HOST)",
            ),
            (
                &["--leader-election", "--leader-lease-duration", "2s"],
                "--leader-lease-duration (env VAK_LEADER_LEASE_DURATION)",
            ),
        ];
        for (extra, setting) in cases {
            let argv: Vec<&str> = FULL.iter().chain(extra.iter()).copied().collect();
            let err = Settings::from_controller(&controller(&argv))
                .unwrap_err()
                .to_string();
            assert!(err.contains(setting), "{extra:?}: {err}");
        }
        // The same lease duration is fine when leader election is off.
        let argv: Vec<&str> = FULL
            .iter()
            .chain(["--leader-lease-duration", "2s"].iter())
            .copied()
            .collect();
        assert!(Settings::from_controller(&controller(&argv)).is_ok());
    }

    #[test]
    fn namespace_defaults_to_in_cluster_file_then_vault_auth() {
        let mut a = controller(FULL).connection;
        a.kubernetes.namespace = None;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("namespace");
        let s = Settings::from_connection_with_namespace_file(&a, &file).unwrap();
        assert_eq!(s.namespace, "vault-auth");
        std::fs::write(&file, "platform\n").unwrap();
        let s = Settings::from_connection_with_namespace_file(&a, &file).unwrap();
        assert_eq!(s.namespace, "platform");
        a.kubernetes.namespace = Some("explicit".into());
        let s = Settings::from_connection_with_namespace_file(&a, &file).unwrap();
        assert_eq!(s.namespace, "explicit");
    }
}
