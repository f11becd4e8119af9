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

use crate::commands::help;

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
    #[command(after_help = help::RUN_EXAMPLES)]
    Run,
    /// Check vault-auth-roles ConfigMap manifests offline, with the controller's own validation.
    #[command(
        long_about = help::VALIDATE_ABOUT,
        after_help = help::VALIDATE_EXAMPLES
    )]
    Validate(ValidateArgs),
    /// Show what a sync would change in Vault and Kubernetes, without changing anything.
    #[command(
        long_about = help::PLAN_ABOUT,
        after_help = help::PLAN_EXAMPLES
    )]
    Plan(PlanArgs),
    /// Run one full sync and exit, for CronJobs and CI (needs --once).
    #[command(
        long_about = help::SYNC_ABOUT,
        after_help = help::SYNC_EXAMPLES
    )]
    Sync(SyncArgs),
    /// Remove what this tool created in Vault and Kubernetes (asks first).
    #[command(
        long_about = help::CLEANUP_ABOUT,
        after_help = help::CLEANUP_EXAMPLES
    )]
    Cleanup(CleanupArgs),
}

/// Format of a command's report on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON document, for machines.
    Json,
}

/// Arguments of `validate`.
#[derive(Clone, Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files (YAML, several documents allowed); `-` reads stdin.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Report format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Arguments of `plan`.
#[derive(Clone, Debug, Args)]
pub struct PlanArgs {
    /// Report format (JSON never contains the reviewer token).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Arguments of `sync`.
#[derive(Clone, Debug, Args)]
pub struct SyncArgs {
    /// Run one pass and exit (required: to keep syncing, run the controller instead).
    #[arg(long)]
    pub once: bool,
}

/// Arguments of `cleanup`.
#[derive(Clone, Debug, Args)]
pub struct CleanupArgs {
    /// Remove without asking (for scripts; needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,

    /// Also disable the auth method at auth/kubernetes/<mount> (deletes its config and roles).
    #[arg(long)]
    pub delete_mount: bool,
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
/// `Debug` shows the AppRole role-id and secret-id as `******`.
#[derive(Clone, Args)]
#[command(
    next_help_heading = "Settings (controller, plan, sync and cleanup; validate ignores them)"
)]
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

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives. Default: info
    /// for the controller and sync, warn for validate, plan and cleanup (their report is on
    /// stdout, logs go to stderr).
    #[arg(long, env = "VAK_LOG_LEVEL", value_name = "LEVEL", global = true)]
    pub log_level: Option<String>,

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

impl std::fmt::Debug for SettingsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| crate::secret::REDACTED);
        f.debug_struct("SettingsArgs")
            .field("kubeconfig", &self.kubeconfig)
            .field("vault_host", &self.vault_host)
            .field("vault_kube_host", &self.vault_kube_host)
            .field("vault_mount", &self.vault_mount)
            .field("vault_role_id", &redacted(&self.vault_role_id))
            .field("vault_secret_id", &redacted(&self.vault_secret_id))
            .field("vault_ca_cert", &self.vault_ca_cert)
            .field("vault_skip_verify", &self.vault_skip_verify)
            .field("vault_namespace", &self.vault_namespace)
            .field("vault_approle_mount", &self.vault_approle_mount)
            .field("namespace", &self.namespace)
            .field("resync_interval", &self.resync_interval)
            .field("admin_port", &self.admin_port)
            .field("leader_election", &self.leader_election)
            .field("leader_lease_duration", &self.leader_lease_duration)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .finish()
    }
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| format!("{e} (examples: 30s, 5m, 1h)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".to_string());
    }
    Ok(d)
}

impl Cli {
    /// Parses the process arguments, accepting the original's single-dash long flags. On a usage
    /// error it prints clap's message and exits with [`usage_error_status`].
    pub fn parse_args() -> Cli {
        let args = normalize_single_dash(std::env::args_os());
        match Cli::try_parse_from(&args) {
            Ok(cli) => cli,
            Err(error) => {
                let status = if error.use_stderr() {
                    usage_error_status(&args)
                } else {
                    0 // --help and --version
                };
                // Printing can only fail on a closed stdout/stderr; the status still tells.
                let _ = error.print();
                std::process::exit(status);
            }
        }
    }

    /// The log filter to use: `--log-level`/`VAK_LOG_LEVEL`, else the command's default.
    pub fn log_level(&self) -> &str {
        match (&self.settings.log_level, &self.command) {
            (Some(level), _) => level,
            (None, None | Some(Command::Run | Command::Sync(_))) => "info",
            (None, Some(Command::Validate(_) | Command::Plan(_) | Command::Cleanup(_))) => "warn",
        }
    }
}

/// Exit status for a command line clap rejects: 1 for `plan`, whose 2 means "changes pending"
/// (a CI job must not mistake a typo for pending changes), else clap's usual 2.
pub fn usage_error_status(args: &[OsString]) -> i32 {
    let command = Cli::command();
    let takes_value: Vec<String> = command
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let mut words = args.iter().skip(1).filter_map(|a| a.to_str());
    // The first word that is neither a flag nor a flag's value names the subcommand.
    while let Some(word) = words.next() {
        if takes_value.iter().any(|flag| flag == word) {
            words.next();
        } else if !word.starts_with('-') {
            return if word == "plan" { 1 } else { 2 };
        }
    }
    2
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

    #[test]
    fn subcommands_parse_with_their_flags_and_settings_anywhere() {
        let cli = parse(&["validate", "-", "a.yaml", "-output", "json"]);
        let Some(Command::Validate(args)) = &cli.command else {
            panic!("validate expected: {cli:?}")
        };
        assert_eq!(args.files, [PathBuf::from("-"), PathBuf::from("a.yaml")]);
        assert_eq!(args.output, OutputFormat::Json);

        let cli = parse(&["-vault-mount", "a/b", "cleanup", "--delete-mount", "-y"]);
        let Some(Command::Cleanup(args)) = &cli.command else {
            panic!("cleanup expected: {cli:?}")
        };
        assert!(args.delete_mount && args.yes && !args.dry_run);
        assert_eq!(cli.settings.vault_mount.as_deref(), Some("a/b"));

        let cli = parse(&["sync", "--once", "--vault-mount", "c"]);
        assert!(matches!(
            cli.command,
            Some(Command::Sync(SyncArgs { once: true }))
        ));
        assert_eq!(cli.settings.vault_mount.as_deref(), Some("c"));
    }

    #[test]
    fn debug_output_hides_the_approle_credentials() {
        let cli = parse(&[
            "--vault-role-id",
            "role-4711",
            "--vault-secret-id",
            "s3cr3t-4711",
        ]);
        let debug = format!("{cli:?}");
        assert!(!debug.contains("4711"), "{debug}");
        assert!(
            debug.contains("vault_secret_id: Some(\"******\")"),
            "{debug}"
        );
    }

    #[test]
    fn validate_needs_a_file() {
        let argv = ["x", "validate"].map(OsString::from);
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn log_level_defaults_depend_on_the_command() {
        let level = |args: &[&str]| {
            let mut cli = parse(args);
            cli.settings.log_level = None; // ignore VAK_LOG_LEVEL of the test's environment
            cli.log_level().to_string()
        };
        assert_eq!(level(&[]), "info");
        assert_eq!(level(&["sync", "--once"]), "info");
        assert_eq!(level(&["plan"]), "warn");
        assert_eq!(level(&["validate", "f"]), "warn");
        assert_eq!(level(&["cleanup"]), "warn");
        let mut cli = parse(&["plan"]);
        cli.settings.log_level = Some("debug".into());
        assert_eq!(cli.log_level(), "debug");
    }

    #[test]
    fn usage_errors_of_plan_exit_1_not_its_changes_pending_2() {
        let status = |args: &[&str]| {
            let argv: Vec<OsString> = std::iter::once("x")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect();
            usage_error_status(&argv)
        };
        assert_eq!(status(&["plan", "--bogus"]), 1);
        assert_eq!(status(&["--vault-mount", "validate", "plan", "--bogus"]), 1);
        assert_eq!(status(&["--namespace", "plan", "validate"]), 2);
        assert_eq!(status(&["validate"]), 2);
        assert_eq!(status(&["--bogus"]), 2);
    }
}
