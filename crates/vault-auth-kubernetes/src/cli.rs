//! Command line: flags and environment variables, compatible with the original Go tool.
//!
//! Every flag of the original keeps its name and env var (`--vault-host` / `VAK_VAULT_HOST`, ...),
//! and the single-dash spelling Go's `flag` package accepted (`-vault-host x`) still works: see
//! [`normalize_single_dash`]. Required values are checked after parsing (not by clap) so the error
//! can name both the flag and the env var, and so offline commands need no Vault settings.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Version with the git revision it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("VAK_GIT_REVISION"),
    ")"
);

/// Keeps Vault's Kubernetes auth method, its roles and the ServiceAccounts they bind in sync with
/// the ConfigMap `vault-auth-roles`.
#[derive(Debug, Parser)]
#[command(name = "vault-auth-kubernetes", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// Settings shared by the controller and every command that talks to the cluster or Vault.
    #[command(flatten)]
    pub settings: SettingsArgs,

    /// What to do; without a command the controller runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands. Running with none starts the controller.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (the default when no command is given).
    Run,
}

/// Output format of logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Flags of the original tool plus the new options. Each has an env var; flags win over env vars.
#[derive(Clone, Debug, Args)]
pub struct SettingsArgs {
    /// Path to a kubeconfig file; empty for the in-cluster configuration (service account token and
    /// CA under /var/run/secrets/kubernetes.io/serviceaccount).
    #[arg(long, env = "KUBECONFIG", value_name = "PATH", global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// Vault address, e.g. https://vault.example.com:8200.
    #[arg(long, env = "VAK_VAULT_HOST", value_name = "URL", global = true)]
    pub vault_host: Option<String>,

    /// Kubernetes API address that Vault can reach; defaults to the server of the kubeconfig.
    #[arg(long, env = "VAK_VAULT_KUBE_HOST", value_name = "URL", global = true)]
    pub vault_kube_host: Option<String>,

    /// Vault kubernetes auth mount, e.g. cluster-name or environment/cluster-name; the auth method
    /// lives at auth/kubernetes/<mount>.
    #[arg(long, env = "VAK_VAULT_MOUNT", value_name = "MOUNT", global = true)]
    pub vault_mount: Option<String>,

    /// AppRole role-id the controller logs in with.
    #[arg(
        long,
        env = "VAK_VAULT_ROLE_ID",
        value_name = "ID",
        hide_env_values = true,
        global = true
    )]
    pub vault_role_id: Option<String>,

    /// AppRole secret-id the controller logs in with (never logged).
    #[arg(
        long,
        env = "VAK_VAULT_SECRET_ID",
        value_name = "SECRET",
        hide_env_values = true,
        global = true
    )]
    pub vault_secret_id: Option<String>,

    /// PEM file of the CA(s) that signed Vault's certificate; when set, only these are trusted.
    #[arg(long, env = "VAK_VAULT_CA_CERT", value_name = "PATH", global = true)]
    pub vault_ca_cert: Option<PathBuf>,

    /// Do not verify Vault's TLS certificate. Insecure: only for tests. Off by default.
    #[arg(long, env = "VAK_VAULT_SKIP_VERIFY", global = true)]
    pub vault_skip_verify: bool,

    /// Vault namespace (X-Vault-Namespace), for Vault Enterprise and OpenBao namespaces.
    #[arg(
        long,
        env = "VAK_VAULT_NAMESPACE",
        value_name = "NAMESPACE",
        global = true
    )]
    pub vault_namespace: Option<String>,

    /// Path of the AppRole auth method to log in with.
    #[arg(
        long,
        env = "VAK_VAULT_APPROLE_MOUNT",
        value_name = "PATH",
        default_value = "approle",
        global = true
    )]
    pub vault_approle_mount: String,

    /// Namespace of the controller and of the ConfigMap vault-auth-roles (default: the in-cluster
    /// namespace, else vault-auth).
    #[arg(long, env = "VAK_NAMESPACE", value_name = "NAMESPACE", global = true)]
    pub namespace: Option<String>,

    /// How often to check Vault for drift (roles edited or deleted out of band, a lost mount) even
    /// when nothing changed in the cluster. E.g. 60s, 5m.
    #[arg(
        long,
        env = "VAK_RESYNC_INTERVAL",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_duration,
        global = true
    )]
    pub resync_interval: Duration,

    /// Port of the admin HTTP server (/livez, /readyz, /metrics); 0 picks a free port.
    #[arg(
        long,
        env = "VAK_ADMIN_PORT",
        value_name = "PORT",
        default_value_t = 8080,
        global = true
    )]
    pub admin_port: u16,

    /// Elect a leader among replicas through a Lease in the controller's namespace; only the
    /// leader writes. Needed when running more than one replica.
    #[arg(long, env = "VAK_LEADER_ELECTION", global = true)]
    pub leader_election: bool,

    /// How long a leader's Lease stays valid without renewal: a standby takes over at most this
    /// long after the leader dies (immediately when it shuts down cleanly).
    #[arg(
        long,
        env = "VAK_LEADER_LEASE_DURATION",
        value_name = "DURATION",
        default_value = "15s",
        value_parser = parse_duration,
        global = true
    )]
    pub leader_lease_duration: Duration,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(
        long,
        env = "VAK_LOG_LEVEL",
        value_name = "LEVEL",
        default_value = "info",
        global = true
    )]
    pub log_level: String,

    /// Log format.
    #[arg(
        long,
        env = "VAK_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| format!("{e} (examples: 30s, 5m, 1h)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".to_string());
    }
    Ok(d)
}

impl Cli {
    /// Parses the process arguments, accepting the original's single-dash long flags.
    pub fn parse_args() -> Cli {
        Cli::parse_from(normalize_single_dash(std::env::args_os()))
    }
}

/// Rewrites `-long-flag` to `--long-flag` for every long flag this program knows, as Go's `flag`
/// package accepted both. Short flags (`-h`, `-V`), values and everything after `--` are kept.
pub fn normalize_single_dash(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let command = Cli::command();
    let mut longs: Vec<String> = Vec::new();
    let mut collect = |cmd: &clap::Command| {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                longs.push(long.to_string());
            }
        }
    };
    collect(&command);
    for sub in command.get_subcommands() {
        collect(sub);
    }
    longs.extend(["help".to_string(), "version".to_string()]);

    let mut out = Vec::new();
    let mut rest_is_positional = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || rest_is_positional {
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_is_positional = true;
            out.push(arg);
            continue;
        }
        if let Some(body) = text.strip_prefix('-')
            && !body.starts_with('-')
            && body.len() > 1
        {
            let name = body.split('=').next().unwrap_or(body);
            if longs.iter().any(|l| l == name) {
                out.push(OsString::from(format!("--{body}")));
                continue;
            }
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let argv = std::iter::once("vault-auth-kubernetes")
            .chain(args.iter().copied())
            .map(OsString::from);
        Cli::try_parse_from(normalize_single_dash(argv)).expect("parses")
    }

    #[test]
    fn accepts_the_originals_single_dash_flags() {
        let cli = parse(&[
            "-vault-host",
            "https://v:8200",
            "-vault-mount=prod/eu1",
            "-kubeconfig",
            "/k",
        ]);
        assert_eq!(cli.settings.vault_host.as_deref(), Some("https://v:8200"));
        assert_eq!(cli.settings.vault_mount.as_deref(), Some("prod/eu1"));
        assert_eq!(cli.settings.kubeconfig, Some(PathBuf::from("/k")));
    }

    #[test]
    fn keeps_values_that_look_like_flags_and_unknown_single_dash_words() {
        let argv = ["x", "-vault-role-id", "-abc", "-nope", "--", "-vault-host"]
            .into_iter()
            .map(OsString::from);
        let out: Vec<String> = normalize_single_dash(argv)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            out,
            ["x", "--vault-role-id", "-abc", "-nope", "--", "-vault-host"]
        );
    }

    #[test]
    fn resync_interval_takes_durations() {
        let cli = parse(&["--resync-interval", "5m"]);
        assert_eq!(cli.settings.resync_interval, Duration::from_secs(300));
        let argv = ["x", "--resync-interval", "0s"].map(OsString::from);
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
