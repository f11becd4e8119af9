//! Settings resolved from flags and env vars, validated once at start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{
    ConnectionArgs, ControllerArgs, KubernetesArgs, RunArgs, Setting, TokenArgs, VaultArgs,
};
use crate::error::{Error, Result};
use crate::mount::Mount;
use crate::names::DEFAULT_NAMESPACE;
use crate::secret::Secret;
use crate::vault::{
    Credential, DEFAULT_APPROLE_MOUNT, DEFAULT_REQUEST_TIMEOUT, VaultAuth, VaultSettings,
};

/// Where the in-cluster namespace of the pod is mounted.
pub const IN_CLUSTER_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Everything the controller and the online commands need, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub kubeconfig: Option<PathBuf>,
    pub vault_kube_host: Option<String>,
    /// CA written into Vault's auth config instead of the kubeconfig's.
    pub vault_kube_ca_cert: Option<PathBuf>,
    pub mount: Mount,
    pub vault: VaultSettings,
    /// Namespace of the controller and of the roles ConfigMap.
    pub namespace: String,
    pub resync_interval: Duration,
    /// Port of the admin server (0: any free port).
    pub admin_port: u16,
    /// Address the admin server listens on.
    pub admin_address: std::net::IpAddr,
    /// Leader election, when on.
    pub leader_election: Option<LeaderElection>,
    /// `--allowed-policies` / `--denied-policies` (glob patterns) of the policy guard-rail.
    pub allowed_policies: Vec<String>,
    pub denied_policies: Vec<String>,
    /// `--allow-empty-configmap`: an emptied ConfigMap may delete everything.
    pub allow_empty_configmap: bool,
    /// `--log-level` as given (None: the command's default), for the startup log.
    pub log_level: Option<String>,
    /// `--log-format`, for the startup log.
    pub log_format: String,
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

/// Whether a command takes an operator's Vault token instead of AppRole, and the one given.
enum TokenChoice {
    /// The controller: AppRole only.
    NotAccepted,
    /// `plan`, `sync --once`, `cleanup`.
    Accepted(Option<Secret>),
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
        Self::from_connection_with_namespace_file(
            args,
            TokenChoice::NotAccepted,
            Path::new(IN_CLUSTER_NAMESPACE_FILE),
        )
    }

    /// Takes the policy guard-rail's patterns.
    pub fn apply_policy_args(&mut self, policy: &crate::cli::PolicyArgs) {
        self.allowed_policies = policy.allowed_policies.clone();
        self.denied_policies = policy.denied_policies.clone();
        self.allow_empty_configmap = policy.allow_empty_configmap;
    }

    /// For `plan`, `sync --once` and `cleanup`: like [`Settings::from_connection`], and an
    /// operator's own token (`--vault-token`, `VAULT_TOKEN`, else `BAO_TOKEN`) is used when no
    /// AppRole credentials are given.
    pub fn from_command(args: &ConnectionArgs, token: &TokenArgs) -> Result<Settings> {
        let token = token
            .vault_token
            .as_ref()
            .map(|t| t.0.trim().to_string())
            .or_else(|| {
                std::env::var("BAO_TOKEN")
                    .ok()
                    .map(|t| t.trim().to_string())
            })
            .filter(|t| !t.is_empty())
            .map(Secret::new);
        Self::from_connection_with_namespace_file(
            args,
            TokenChoice::Accepted(token),
            Path::new(IN_CLUSTER_NAMESPACE_FILE),
        )
    }

    /// Validates the controller's settings: the connection and how it runs.
    pub fn from_controller(args: &ControllerArgs) -> Result<Settings> {
        let ControllerArgs {
            connection,
            policy,
            run:
                RunArgs {
                    resync_interval,
                    admin_port,
                    admin_address,
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
        settings.admin_address = *admin_address;
        settings.apply_policy_args(policy);
        settings.leader_election = leader_election.then_some(LeaderElection {
            lease_duration: *leader_lease_duration,
        });
        Ok(settings)
    }

    fn from_connection_with_namespace_file(
        args: &ConnectionArgs,
        token: TokenChoice,
        ns_file: &Path,
    ) -> Result<Settings> {
        let ConnectionArgs {
            kubernetes:
                KubernetesArgs {
                    kubeconfig,
                    namespace,
                    vault_kube_host,
                    vault_kube_ca_cert,
                },
            vault:
                VaultArgs {
                    vault_host,
                    vault_mount,
                    vault_role_id,
                    vault_secret_id,
                    vault_role_id_file,
                    vault_secret_id_file,
                    vault_ca_cert,
                    vault_skip_verify,
                    vault_namespace,
                    vault_approle_mount,
                },
            // Set up before the settings; kept here only to be logged with them.
            logging,
        } = args;
        let mut missing = Vec::new();
        let mut take = |value: Option<&str>, setting| {
            required(value, setting)
                .map_err(|e| missing.push(e))
                .unwrap_or_default()
        };
        let vault_host = take(vault_host.as_deref(), Setting::VaultHost);
        let mount = take(vault_mount.as_deref(), Setting::VaultMount);
        // Each AppRole credential as a value or a file; an operator's token replaces both when
        // neither is given.
        let given = |value: &Option<crate::cli::SecretArg>| {
            value.as_ref().is_some_and(|v| !v.0.trim().is_empty())
        };
        let approle_given = given(vault_role_id)
            || given(vault_secret_id)
            || vault_role_id_file.is_some()
            || vault_secret_id_file.is_some();
        let mut credential = |value: &Option<crate::cli::SecretArg>,
                              file: &Option<PathBuf>,
                              setting,
                              file_setting| {
            match file {
                Some(path) => Credential::File(path.clone()),
                None if given(value) => {
                    Credential::Value(Secret::new(value.as_ref().map_or("", |v| v.0.trim())))
                }
                None => {
                    missing.push(format!(
                        "{} or {}",
                        Setting::describe(setting),
                        Setting::describe(file_setting)
                    ));
                    Credential::Value(Secret::default())
                }
            }
        };
        let token_accepted = matches!(token, TokenChoice::Accepted(_));
        let auth = match token {
            TokenChoice::Accepted(Some(token)) if !approle_given => VaultAuth::Token(token),
            _ => VaultAuth::AppRole {
                role_id: credential(
                    vault_role_id,
                    vault_role_id_file,
                    Setting::VaultRoleId,
                    Setting::VaultRoleIdFile,
                ),
                secret_id: credential(
                    vault_secret_id,
                    vault_secret_id_file,
                    Setting::VaultSecretId,
                    Setting::VaultSecretIdFile,
                ),
            },
        };
        if !missing.is_empty() {
            let mut text = missing.join(", ");
            if token_accepted && !approle_given {
                text.push_str(&format!(
                    " (or, instead of AppRole, a Vault token: {}, or BAO_TOKEN)",
                    Setting::VaultToken.describe()
                ));
            }
            return Err(Error::MissingSettings(text));
        }

        let mount =
            Mount::parse(&mount).map_err(|message| invalid(Setting::VaultMount, message))?;
        let addr = validate_url(&vault_host, Setting::VaultHost)?;
        let vault_kube_host = non_empty(vault_kube_host)
            .map(|h| validate_url(&h, Setting::VaultKubeHost))
            .transpose()?;
        for (file, setting) in [
            (vault_ca_cert, Setting::VaultCaCert),
            (vault_kube_ca_cert, Setting::VaultKubeCaCert),
            (vault_role_id_file, Setting::VaultRoleIdFile),
            (vault_secret_id_file, Setting::VaultSecretIdFile),
        ] {
            if let Some(path) = file
                && !path.is_file()
            {
                return Err(invalid(
                    setting,
                    format!("{} is not a readable file", path.display()),
                ));
            }
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
            vault_kube_ca_cert: vault_kube_ca_cert.clone(),
            mount,
            vault: VaultSettings {
                addr,
                namespace: non_empty(vault_namespace),
                ca_cert_file: vault_ca_cert.clone(),
                skip_tls_verify: *vault_skip_verify,
                approle_mount,
                auth,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
            },
            namespace,
            resync_interval: DEFAULT_RESYNC_INTERVAL,
            admin_port: 0,
            admin_address: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            leader_election: None,
            allowed_policies: Vec::new(),
            denied_policies: Vec::new(),
            allow_empty_configmap: false,
            log_level: logging.log_level.clone(),
            log_format: format!("{:?}", logging.log_format).to_lowercase(),
        })
    }

    /// The startup log line: every setting as a structured field (an object in JSON logs),
    /// secrets as `******`, file paths as given.
    pub fn log_startup(&self, version: &str) {
        let path = |p: &Option<PathBuf>, unset: &str| {
            p.as_ref()
                .map_or_else(|| unset.to_string(), |p| p.display().to_string())
        };
        let credential = |c: &Credential| match c {
            Credential::Value(_) => crate::secret::REDACTED.to_string(),
            Credential::File(path) => format!("file {}", path.display()),
        };
        let (vault_auth, role_id, secret_id) = match &self.vault.auth {
            VaultAuth::AppRole { role_id, secret_id } => {
                ("approle", credential(role_id), credential(secret_id))
            }
            VaultAuth::Token(_) => ("token", String::new(), String::new()),
        };
        let leader_election = self.leader_election.as_ref().map_or_else(
            || "off".to_string(),
            |l| format!("lease {}", humantime::format_duration(l.lease_duration)),
        );
        tracing::info!(
            version,
            kubeconfig = %path(&self.kubeconfig, "(in-cluster)"),
            namespace = %self.namespace,
            vault_host = %self.vault.addr,
            vault_mount = %self.mount.as_str(),
            vault_namespace = %self.vault.namespace.as_deref().unwrap_or(""),
            vault_kube_host = %self.vault_kube_host.as_deref().unwrap_or("(from kubeconfig)"),
            vault_kube_ca_cert = %path(&self.vault_kube_ca_cert, "(from kubeconfig)"),
            vault_auth,
            vault_role_id = %role_id,
            vault_secret_id = %secret_id,
            vault_approle_mount = %self.vault.approle_mount,
            vault_ca_cert = %path(&self.vault.ca_cert_file, "(system roots)"),
            vault_skip_verify = self.vault.skip_tls_verify,
            resync_interval = %humantime::format_duration(self.resync_interval),
            admin_address = %self.admin_address,
            admin_port = self.admin_port,
            leader_election = %leader_election,
            allowed_policies = %self.allowed_policies.join(","),
            denied_policies = %self.denied_policies.join(","),
            allow_empty_configmap = self.allow_empty_configmap,
            log_level = %self.log_level.as_deref().unwrap_or("(default)"),
            log_format = %self.log_format,
            "starting vault-auth-kubernetes"
        );
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
        let credential = |c: &Credential| match c {
            Credential::Value(_) => crate::secret::REDACTED.to_string(),
            Credential::File(path) => format!("(file {})", path.display()),
        };
        let auth = match &self.vault.auth {
            VaultAuth::AppRole { role_id, secret_id } => format!(
                "vault-role-id: {} vault-secret-id: {}",
                credential(role_id),
                credential(secret_id)
            ),
            VaultAuth::Token(_) => format!("vault-token: {}", crate::secret::REDACTED),
        };
        let leader = self.leader_election.as_ref().map_or_else(
            || "off".to_string(),
            |l| {
                format!(
                    "on (lease {})",
                    humantime::format_duration(l.lease_duration)
                )
            },
        );
        write!(
            f,
            "kubeconfig: {kubeconfig:?} vault-host: {:?} vault-mount: {:?} vault-kube-host: {:?} \
             vault-kube-ca-cert: {:?} {auth} vault-namespace: {:?} vault-ca-cert: {:?} \
             vault-skip-verify: {} vault-approle-mount: {:?} namespace: {:?} resync-interval: {} \
             admin: {}:{} leader-election: {leader}",
            self.vault.addr,
            self.mount.as_str(),
            self.vault_kube_host
                .as_deref()
                .unwrap_or("(from kubeconfig)"),
            self.vault_kube_ca_cert.as_ref().map_or_else(
                || "(from kubeconfig)".to_string(),
                |p| p.display().to_string()
            ),
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
            self.admin_address,
            self.admin_port,
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
        let s = Settings::from_connection_with_namespace_file(&a, TokenChoice::NotAccepted, &file)
            .unwrap();
        assert_eq!(s.namespace, "vault-auth");
        std::fs::write(&file, "platform\n").unwrap();
        let s = Settings::from_connection_with_namespace_file(&a, TokenChoice::NotAccepted, &file)
            .unwrap();
        assert_eq!(s.namespace, "platform");
        a.kubernetes.namespace = Some("explicit".into());
        let s = Settings::from_connection_with_namespace_file(&a, TokenChoice::NotAccepted, &file)
            .unwrap();
        assert_eq!(s.namespace, "explicit");
    }
}
