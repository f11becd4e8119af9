//! Command line: flags and environment variables, compatible with the original Go tool.
//!
//! Every flag of the original keeps its name and env var (`--vault-host` / `VAK_VAULT_HOST`, ...).
//! Two spellings of the original still work, by rewriting the arguments before clap sees them
//! ([`normalize_args`]): Go's single-dash long flags (`-vault-host x`), and running the controller
//! with its flags and no command (`vault-auth-kubernetes --vault-host x`). Settings may also come
//! before a command (`--vault-mount a/b cleanup`): they are moved after it. So each command
//! defines, and its `--help` lists, only the options it uses.
//!
//! Required values are checked after parsing (not by clap, see [`crate::settings`]) so the error
//! names both the flag and the env var; messages get those names from here ([`Setting`]), never
//! from a retyped string.

use std::ffi::OsString;
use std::fmt;
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
/// the ConfigMap `vault-auth-roles`. Without a command, runs the controller (as `run`).
#[derive(Debug, Parser)]
#[command(
    name = "vault-auth-kubernetes",
    version = VERSION,
    about,
    long_about = None,
    after_help = help::TOP_LEVEL_NOTES
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands. Running with none starts the controller.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (the default when no command is given).
    #[command(after_help = help::RUN_EXAMPLES)]
    Run(ControllerArgs),
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
    /// Print the version, the git revision and the compiler it was built with.
    Version,
}

impl Command {
    /// The command's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Validate(_) => "validate",
            Command::Plan(_) => "plan",
            Command::Sync(_) => "sync",
            Command::Cleanup(_) => "cleanup",
            Command::Version => "version",
        }
    }

    /// The logging options of the command, when it has any.
    pub fn logging(&self) -> Option<&LoggingArgs> {
        match self {
            Command::Run(args) => Some(&args.connection.logging),
            Command::Plan(args) => Some(&args.connection.logging),
            Command::Sync(args) => Some(&args.connection.logging),
            Command::Cleanup(args) => Some(&args.connection.logging),
            Command::Validate(_) | Command::Version => None,
        }
    }

    /// The log filter: `--log-level`/`VAK_LOG_LEVEL`, else the command's default (info for the
    /// controller and sync, warn for the others, whose report is on stdout).
    pub fn log_level(&self) -> &str {
        match (self.logging().and_then(|l| l.log_level.as_deref()), self) {
            (Some(level), _) => level,
            (None, Command::Run(_) | Command::Sync(_)) => "info",
            (None, _) => "warn",
        }
    }

    /// The log format of the command (text for those without logging options).
    pub fn log_format(&self) -> LogFormat {
        self.logging().map_or(LogFormat::Text, |l| l.log_format)
    }
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

/// Output format of logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A credential given on the command line or in the environment: shown as `******` by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretArg(pub String);

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::secret::REDACTED)
    }
}

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretArg(s.to_string()))
    }
}

/// How to reach the cluster, and where the controller's objects live.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Kubernetes")]
pub struct KubernetesArgs {
    /// Path to a kubeconfig file; empty for the in-cluster configuration (service account token and
    /// CA under /var/run/secrets/kubernetes.io/serviceaccount).
    #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Namespace of the controller and of the ConfigMap vault-auth-roles (default: the in-cluster
    /// namespace, else vault-auth).
    #[arg(long, env = "VAK_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Kubernetes API address that Vault can reach; defaults to the server of the kubeconfig.
    #[arg(long, env = "VAK_VAULT_KUBE_HOST", value_name = "URL")]
    pub vault_kube_host: Option<String>,

    /// PEM file of the CA that signed the Kubernetes API's certificate, written into Vault's
    /// auth config; defaults to the CA of the kubeconfig (or of the in-cluster configuration).
    /// Needed when the kubeconfig trusts the API some other way.
    #[arg(long, env = "VAK_VAULT_KUBE_CA_CERT", value_name = "PATH")]
    pub vault_kube_ca_cert: Option<PathBuf>,
}

/// How to reach and log in to Vault, and where the auth method lives.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Vault")]
pub struct VaultArgs {
    /// Vault address, e.g. https://vault.example.com:8200.
    #[arg(long, env = "VAK_VAULT_HOST", value_name = "URL")]
    pub vault_host: Option<String>,

    /// Vault kubernetes auth mount, e.g. cluster-name or environment/cluster-name; the auth method
    /// lives at auth/kubernetes/<mount>.
    #[arg(long, env = "VAK_VAULT_MOUNT", value_name = "MOUNT")]
    pub vault_mount: Option<String>,

    /// AppRole role-id to log in with.
    #[arg(
        long,
        env = "VAK_VAULT_ROLE_ID",
        value_name = "ID",
        hide_env_values = true
    )]
    pub vault_role_id: Option<SecretArg>,

    /// AppRole secret-id to log in with (never logged).
    #[arg(
        long,
        env = "VAK_VAULT_SECRET_ID",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub vault_secret_id: Option<SecretArg>,

    /// File holding the AppRole role-id (instead of --vault-role-id); read again at every login.
    #[arg(
        long,
        env = "VAK_VAULT_ROLE_ID_FILE",
        value_name = "PATH",
        conflicts_with = "vault_role_id"
    )]
    pub vault_role_id_file: Option<PathBuf>,

    /// File holding the AppRole secret-id (instead of --vault-secret-id); read again at every
    /// login, so a rotated secret-id (e.g. a Secret mounted as files) is used without a restart.
    #[arg(
        long,
        env = "VAK_VAULT_SECRET_ID_FILE",
        value_name = "PATH",
        conflicts_with = "vault_secret_id"
    )]
    pub vault_secret_id_file: Option<PathBuf>,

    /// PEM file of the CA(s) that signed Vault's certificate; when set, only these are trusted.
    #[arg(long, env = "VAK_VAULT_CA_CERT", value_name = "PATH")]
    pub vault_ca_cert: Option<PathBuf>,

    /// Do not verify Vault's TLS certificate. Insecure: only for tests. Off by default.
    #[arg(long, env = "VAK_VAULT_SKIP_VERIFY")]
    pub vault_skip_verify: bool,

    /// Vault namespace (X-Vault-Namespace), for Vault Enterprise and OpenBao namespaces.
    #[arg(long, env = "VAK_VAULT_NAMESPACE", value_name = "NAMESPACE")]
    pub vault_namespace: Option<String>,

    /// Path of the AppRole auth method to log in with [default: approle].
    #[arg(long, env = "VAK_VAULT_APPROLE_MOUNT", value_name = "PATH")]
    pub vault_approle_mount: Option<String>,
}

/// Log filter and format.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Logging")]
pub struct LoggingArgs {
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives. Default: info
    /// for run and sync, warn for plan and cleanup (their report is on stdout, logs go to stderr).
    #[arg(long, env = "VAK_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log format.
    #[arg(long, env = "VAK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// What every command that talks to the cluster and Vault needs.
#[derive(Clone, Debug, Default, Args)]
pub struct ConnectionArgs {
    #[command(flatten)]
    pub kubernetes: KubernetesArgs,
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub logging: LoggingArgs,
}

/// How the controller runs: resync, admin server, leader election.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Controller")]
pub struct RunArgs {
    /// How often to check Vault for drift (roles edited or deleted out of band, a lost mount) even
    /// when nothing changed in the cluster. E.g. 60s, 5m.
    #[arg(
        long,
        env = "VAK_RESYNC_INTERVAL",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub resync_interval: Duration,

    /// Port of the admin HTTP server (/livez, /readyz, /metrics); 0 picks a free port.
    #[arg(
        long,
        env = "VAK_ADMIN_PORT",
        value_name = "PORT",
        default_value_t = 8080
    )]
    pub admin_port: u16,

    /// Address the admin HTTP server listens on. The default (all addresses) lets the kubelet's
    /// probes and Prometheus reach it in a pod; 127.0.0.1 keeps it to the host.
    #[arg(
        long,
        env = "VAK_ADMIN_ADDRESS",
        value_name = "IP",
        default_value = "0.0.0.0"
    )]
    pub admin_address: std::net::IpAddr,

    /// Elect a leader among replicas through a Lease in the controller's namespace; only the
    /// leader writes. Needed when running more than one replica.
    #[arg(long, env = "VAK_LEADER_ELECTION")]
    pub leader_election: bool,

    /// How long a leader's Lease stays valid without renewal: a standby takes over at most this
    /// long after the leader dies (immediately when it shuts down cleanly).
    #[arg(
        long,
        env = "VAK_LEADER_LEASE_DURATION",
        value_name = "DURATION",
        default_value = "15s",
        value_parser = parse_duration
    )]
    pub leader_lease_duration: Duration,
}

/// Everything the controller needs.
#[derive(Clone, Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
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

    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Guard-rails on what the ConfigMap can do: which policies its entries may grant (see
/// `roles::PolicyGuard`; `root` and the controller's own policies are refused whatever these
/// say), and whether emptying it may delete everything.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Guard-rails")]
pub struct PolicyArgs {
    /// Policies a role may grant, as comma-separated glob patterns (`*` matches anything), e.g.
    /// "team-*,default". Unset: any policy but root and the controller's own.
    #[arg(
        long,
        env = "VAK_ALLOWED_POLICIES",
        value_name = "PATTERNS",
        value_delimiter = ','
    )]
    pub allowed_policies: Vec<String>,

    /// Policies no role may grant, as comma-separated glob patterns, e.g. "admin*,*-write".
    #[arg(
        long,
        env = "VAK_DENIED_POLICIES",
        value_name = "PATTERNS",
        value_delimiter = ','
    )]
    pub denied_policies: Vec<String>,

    /// Let a ConfigMap without entries delete every role and managed ServiceAccount. Without it
    /// (or the ConfigMap annotation vault-auth-kubernetes/allow-empty: "true"), an emptied
    /// ConfigMap deletes nothing and is reported as a Warning.
    #[arg(long, env = "VAK_ALLOW_EMPTY_CONFIGMAP")]
    pub allow_empty_configmap: bool,
}

/// An operator's own Vault token, for the short-lived commands (instead of AppRole).
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Vault")]
pub struct TokenArgs {
    /// Vault token to use instead of logging in with AppRole, when no AppRole credentials are
    /// given (also read from VAULT_TOKEN or BAO_TOKEN); never revoked. A token from an AppRole
    /// login is revoked when the command ends.
    #[arg(
        long,
        env = "VAULT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub vault_token: Option<SecretArg>,
}

/// Arguments of `plan`.
#[derive(Clone, Debug, Args)]
pub struct PlanArgs {
    /// Plan this ConfigMap instead of the cluster's: manifest files holding vault-auth-roles
    /// (read as `validate` reads them); `-` reads stdin, e.g. `helm template ... | plan -f -`.
    #[arg(long = "file", short = 'f', value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Report format (JSON never contains the reviewer token).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub token: TokenArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Arguments of `sync`.
#[derive(Clone, Debug, Args)]
pub struct SyncArgs {
    /// Run one pass and exit (required: to keep syncing, run the controller instead).
    #[arg(long)]
    pub once: bool,

    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub token: TokenArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
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

    /// Report format: the inventory and what was removed.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| format!("{e} (examples: 30s, 5m, 1h)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".to_string());
    }
    Ok(d)
}

/// A setting, by the clap id of its argument: [`Setting::describe`] gives the flag and env var
/// from the definitions above, so messages never retype them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Kubeconfig,
    Namespace,
    VaultKubeHost,
    VaultKubeCaCert,
    VaultHost,
    VaultMount,
    VaultRoleId,
    VaultSecretId,
    VaultRoleIdFile,
    VaultSecretIdFile,
    VaultToken,
    VaultCaCert,
    VaultSkipVerify,
    VaultNamespace,
    VaultApproleMount,
    LogLevel,
    ResyncInterval,
    AdminPort,
    AdminAddress,
    LeaderElection,
    LeaderLeaseDuration,
    AllowEmptyConfigmap,
}

impl Setting {
    /// Every setting (for tests that check each resolves).
    pub const ALL: [Setting; 22] = [
        Setting::Kubeconfig,
        Setting::Namespace,
        Setting::VaultKubeHost,
        Setting::VaultKubeCaCert,
        Setting::VaultHost,
        Setting::VaultMount,
        Setting::VaultRoleId,
        Setting::VaultSecretId,
        Setting::VaultRoleIdFile,
        Setting::VaultSecretIdFile,
        Setting::VaultToken,
        Setting::VaultCaCert,
        Setting::VaultSkipVerify,
        Setting::VaultNamespace,
        Setting::VaultApproleMount,
        Setting::LogLevel,
        Setting::ResyncInterval,
        Setting::AdminPort,
        Setting::AdminAddress,
        Setting::LeaderElection,
        Setting::LeaderLeaseDuration,
        Setting::AllowEmptyConfigmap,
    ];

    /// The clap id (the field name).
    fn id(self) -> &'static str {
        match self {
            Setting::Kubeconfig => "kubeconfig",
            Setting::Namespace => "namespace",
            Setting::VaultKubeHost => "vault_kube_host",
            Setting::VaultKubeCaCert => "vault_kube_ca_cert",
            Setting::VaultRoleIdFile => "vault_role_id_file",
            Setting::VaultSecretIdFile => "vault_secret_id_file",
            Setting::VaultToken => "vault_token",
            Setting::AdminAddress => "admin_address",
            Setting::AllowEmptyConfigmap => "allow_empty_configmap",
            Setting::VaultHost => "vault_host",
            Setting::VaultMount => "vault_mount",
            Setting::VaultRoleId => "vault_role_id",
            Setting::VaultSecretId => "vault_secret_id",
            Setting::VaultCaCert => "vault_ca_cert",
            Setting::VaultSkipVerify => "vault_skip_verify",
            Setting::VaultNamespace => "vault_namespace",
            Setting::VaultApproleMount => "vault_approle_mount",
            Setting::LogLevel => "log_level",
            Setting::ResyncInterval => "resync_interval",
            Setting::AdminPort => "admin_port",
            Setting::LeaderElection => "leader_election",
            Setting::LeaderLeaseDuration => "leader_lease_duration",
        }
    }

    /// `--flag (env VAR)`, from the argument's definition.
    pub fn describe(self) -> String {
        let command = Cli::command();
        // The controller (`run`) defines most settings; --vault-token only the short-lived
        // commands.
        let arg = command
            .get_subcommands()
            .flat_map(|c| c.get_arguments())
            .find(|a| a.get_id() == self.id())
            .unwrap_or_else(|| panic!("no argument {:?}", self.id()));
        let flag = format!("--{}", arg.get_long().expect("settings are long flags"));
        match arg.get_env() {
            Some(env) => format!("{flag} (env {})", env.to_string_lossy()),
            None => flag,
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Cli {
    /// Parses the process arguments (see [`normalize_args`]). On a usage error it prints clap's
    /// message and exits with [`usage_error_status`].
    pub fn parse_args() -> Cli {
        let args = normalize_args(std::env::args_os());
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
}

/// Parses a controller command line (`vault-auth-kubernetes [run] FLAGS...`) exactly as the
/// binary does, for tests and for embedding the controller.
pub fn parse_controller_args(
    args: impl IntoIterator<Item = impl Into<OsString>>,
) -> Result<ControllerArgs, clap::Error> {
    let args = normalize_args(args.into_iter().map(Into::into));
    match Cli::try_parse_from(args)?.command {
        Command::Run(args) => Ok(args),
        other => Err(Cli::command().error(
            clap::error::ErrorKind::InvalidSubcommand,
            format!(
                "a controller command line was expected, not `{}`",
                other.name()
            ),
        )),
    }
}

/// Long flags of every command, and whether each takes a value.
fn long_flags() -> Vec<(String, bool)> {
    let command = Cli::command();
    let mut flags = vec![("help".to_string(), false), ("version".to_string(), false)];
    for sub in command.get_subcommands() {
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                flags.push((long.to_string(), arg.get_action().takes_values()));
            }
        }
    }
    flags.sort();
    flags.dedup();
    flags
}

/// Exit status for a command line clap rejects (after [`normalize_args`]): 1 for `plan`, whose 2
/// means "changes pending" (a CI job must not mistake a typo for pending changes), else clap's
/// usual 2.
pub fn usage_error_status(args: &[OsString]) -> i32 {
    match args.get(1).and_then(|a| a.to_str()) {
        Some("plan") => 1,
        _ => 2,
    }
}

/// Rewrites the original's spellings into this program's: `-long-flag` becomes `--long-flag`
/// for every long flag it knows (Go's `flag` package accepted both; short flags such as `-h`,
/// values and everything after `--` are kept), settings given before the command are moved after
/// it, and without a command `run` is inserted (the original had no commands).
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let flags = long_flags();
    let takes_value = |name: &str| flags.iter().any(|(f, v)| f == name && *v);
    let known = |name: &str| flags.iter().any(|(f, _)| f == name);
    let commands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .chain(["help".to_string()])
        .collect();

    let mut args = args.into_iter();
    let program = args
        .next()
        .unwrap_or_else(|| OsString::from("vault-auth-kubernetes"));
    let mut before = Vec::new();
    let mut command = None;
    let mut after = Vec::new();
    let mut rest_is_positional = false;
    let mut expecting_value = false;
    for arg in args {
        let target = if command.is_some() {
            &mut after
        } else {
            &mut before
        };
        if rest_is_positional {
            target.push(arg);
            continue;
        }
        let Some(text) = arg.to_str().map(str::to_string) else {
            target.push(arg);
            continue;
        };
        if expecting_value {
            expecting_value = false;
            target.push(arg);
            continue;
        }
        if text == "--" {
            rest_is_positional = true;
            target.push(arg);
            continue;
        }
        let long = text.strip_prefix("--").or_else(|| {
            text.strip_prefix('-')
                .filter(|b| b.len() > 1 && !b.starts_with('-'))
        });
        if let Some(body) = long {
            let name = body.split('=').next().unwrap_or(body);
            if known(name) {
                expecting_value = takes_value(name) && !body.contains('=');
                target.push(OsString::from(format!("--{body}")));
                continue;
            }
            target.push(arg);
            continue;
        }
        if command.is_none() && !text.starts_with('-') && commands.contains(&text) {
            command = Some(arg);
            continue;
        }
        target.push(arg);
    }
    let help_or_version = before
        .iter()
        .any(|a| matches!(a.to_str(), Some("--help" | "-h" | "--version" | "-V")));
    let mut out = vec![program];
    match command {
        Some(command) => {
            out.push(command);
            out.extend(before);
            out.extend(after);
        }
        // `vault-auth-kubernetes --help` (or --version) alone is about the program.
        None if help_or_version && before.len() == 1 => out.extend(before),
        None => {
            out.push(OsString::from("run"));
            out.extend(before);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(args: &[&str]) -> Vec<String> {
        let argv = std::iter::once("vault-auth-kubernetes")
            .chain(args.iter().copied())
            .map(OsString::from);
        normalize_args(argv)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    fn parse(args: &[&str]) -> Cli {
        let argv: Vec<OsString> = normalized(args).into_iter().map(OsString::from).collect();
        Cli::try_parse_from(argv).expect("parses")
    }

    fn run_args(cli: &Cli) -> &ControllerArgs {
        match &cli.command {
            Command::Run(args) => args,
            other => panic!("run expected: {other:?}"),
        }
    }

    #[test]
    fn accepts_the_originals_single_dash_flags_without_a_command() {
        let cli = parse(&[
            "-vault-host",
            "https://v:8200",
            "-vault-mount=prod/eu1",
            "-kubeconfig",
            "/k",
        ]);
        let args = run_args(&cli);
        assert_eq!(
            args.connection.vault.vault_host.as_deref(),
            Some("https://v:8200")
        );
        assert_eq!(
            args.connection.vault.vault_mount.as_deref(),
            Some("prod/eu1")
        );
        assert_eq!(
            args.connection.kubernetes.kubeconfig,
            Some(PathBuf::from("/k"))
        );
    }

    #[test]
    fn keeps_values_that_look_like_flags_and_unknown_single_dash_words() {
        assert_eq!(
            normalized(&["-vault-role-id", "-abc", "-nope", "--", "-vault-host"]),
            [
                "vault-auth-kubernetes",
                "run",
                "--vault-role-id",
                "-abc",
                "-nope",
                "--",
                "-vault-host"
            ]
        );
        // A value that names a command is a value, not the command.
        assert_eq!(
            normalized(&["--vault-mount", "plan", "cleanup", "-y"]),
            [
                "vault-auth-kubernetes",
                "cleanup",
                "--vault-mount",
                "plan",
                "-y"
            ]
        );
        assert_eq!(normalized(&["--help"]), ["vault-auth-kubernetes", "--help"]);
    }

    #[test]
    fn resync_interval_takes_durations() {
        let cli = parse(&["--resync-interval", "5m"]);
        assert_eq!(run_args(&cli).run.resync_interval, Duration::from_secs(300));
        let argv = normalize_args(["x", "--resync-interval", "0s"].map(OsString::from));
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_setting_is_described_from_its_definition() {
        for setting in Setting::ALL {
            let text = setting.describe();
            assert!(text.starts_with("--"), "{setting:?}: {text}");
        }
        assert_eq!(
            Setting::VaultHost.describe(),
            "--vault-host (env VAK_VAULT_HOST)"
        );
        assert_eq!(
            Setting::Kubeconfig.to_string(),
            "--kubeconfig (env KUBECONFIG)"
        );
    }

    #[test]
    fn subcommands_parse_with_their_flags_and_settings_anywhere() {
        let cli = parse(&["validate", "-", "a.yaml", "-output", "json"]);
        let Command::Validate(args) = &cli.command else {
            panic!("validate expected: {cli:?}")
        };
        assert_eq!(args.files, [PathBuf::from("-"), PathBuf::from("a.yaml")]);
        assert_eq!(args.output, OutputFormat::Json);

        let cli = parse(&["-vault-mount", "a/b", "cleanup", "--delete-mount", "-y"]);
        let Command::Cleanup(args) = &cli.command else {
            panic!("cleanup expected: {cli:?}")
        };
        assert!(args.delete_mount && args.yes && !args.dry_run);
        assert_eq!(args.connection.vault.vault_mount.as_deref(), Some("a/b"));

        let cli = parse(&["sync", "--once", "--vault-mount", "c"]);
        let Command::Sync(args) = &cli.command else {
            panic!("sync expected: {cli:?}")
        };
        assert!(args.once);
        assert_eq!(args.connection.vault.vault_mount.as_deref(), Some("c"));
    }

    #[test]
    fn commands_take_only_the_options_they_use() {
        let argv =
            normalize_args(["x", "validate", "f.yaml", "--vault-host", "h"].map(OsString::from));
        assert!(
            Cli::try_parse_from(argv).is_err(),
            "validate needs no Vault"
        );
        let argv = normalize_args(["x", "plan", "--admin-port", "1"].map(OsString::from));
        assert!(
            Cli::try_parse_from(argv).is_err(),
            "plan serves no admin port"
        );
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
        assert!(debug.contains("vault_secret_id: Some(******)"), "{debug}");
    }

    #[test]
    fn validate_needs_a_file() {
        let argv = normalize_args(["x", "validate"].map(OsString::from));
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn log_level_defaults_depend_on_the_command() {
        let level = |args: &[&str]| {
            let mut cli = parse(args);
            // Ignore VAK_LOG_LEVEL of the test's environment.
            match &mut cli.command {
                Command::Run(a) => a.connection.logging.log_level = None,
                Command::Plan(a) => a.connection.logging.log_level = None,
                Command::Sync(a) => a.connection.logging.log_level = None,
                Command::Cleanup(a) => a.connection.logging.log_level = None,
                _ => {}
            }
            cli.command.log_level().to_string()
        };
        assert_eq!(level(&[]), "info");
        assert_eq!(level(&["sync", "--once"]), "info");
        assert_eq!(level(&["plan"]), "warn");
        assert_eq!(level(&["validate", "f"]), "warn");
        assert_eq!(level(&["cleanup"]), "warn");
        let cli = parse(&["plan", "--log-level", "debug"]);
        assert_eq!(cli.command.log_level(), "debug");
    }

    #[test]
    fn usage_errors_of_plan_exit_1_not_its_changes_pending_2() {
        let status = |args: &[&str]| {
            let argv: Vec<OsString> = normalized(args).into_iter().map(OsString::from).collect();
            usage_error_status(&argv)
        };
        assert_eq!(status(&["plan", "--bogus"]), 1);
        assert_eq!(status(&["--vault-mount", "validate", "plan", "--bogus"]), 1);
        assert_eq!(status(&["--namespace", "plan", "validate"]), 2);
        assert_eq!(status(&["validate"]), 2);
        assert_eq!(status(&["--bogus"]), 2);
    }
}
