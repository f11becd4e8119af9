//! Wiring: turns parsed arguments into a running controller or command.

use std::process::ExitCode;
use std::sync::Arc;

use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{self, AdminState};
use crate::cli::{Cli, Command, VERSION};
use crate::commands;
use crate::controller;
use crate::error::{Error, Result};
use crate::health::Health;
use crate::k8s::cluster;
use crate::k8s::events::EventPublisher;
use crate::metrics::Metrics;
use crate::settings::{LEASE_NAME, LeaderElection, Settings};
use crate::sync::Syncer;
use crate::telemetry;
use crate::vault::VaultClient;

/// Runs what the command line asks for and returns its exit status. A failure is reported in
/// the log for the controller (so JSON logs carry it) and as one line on stderr for the
/// commands, whose users read a terminal or a CI log.
pub async fn main(cli: Cli) -> ExitCode {
    if let Err(error) = telemetry::init(cli.log_level(), cli.settings.log_format) {
        eprintln!("vault-auth-kubernetes: {error}");
        return ExitCode::FAILURE;
    }
    let name = command_name(cli.command.as_ref());
    match run(cli).await {
        Ok(status) => ExitCode::from(status),
        Err(error) if name == "run" => {
            tracing::error!(%error, "exiting");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("vault-auth-kubernetes {name}: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn command_name(command: Option<&Command>) -> &'static str {
    match command {
        None | Some(Command::Run) => "run",
        Some(Command::Validate(_)) => "validate",
        Some(Command::Plan(_)) => "plan",
        Some(Command::Sync(_)) => "sync",
        Some(Command::Cleanup(_)) => "cleanup",
    }
}

/// Runs what the command line asks for (logging must be set up) and returns the exit status.
/// Only the online commands need the Vault and Kubernetes settings: `validate` runs without.
pub async fn run(cli: Cli) -> Result<u8> {
    let Cli { settings, command } = cli;
    match command.unwrap_or(Command::Run) {
        Command::Run => {
            let settings = Settings::from_args(&settings)?;
            run_controller(settings, shutdown_on_signal()).await?;
            Ok(commands::status::SUCCESS)
        }
        Command::Validate(args) => Ok(commands::validate::run(&args)),
        Command::Plan(args) => commands::plan::run(Settings::from_args(&settings)?, &args).await,
        Command::Sync(args) => {
            if let Err(message) = commands::sync_once::check_args(&args) {
                eprintln!("vault-auth-kubernetes sync: error: {message}");
                return Ok(commands::status::USAGE);
            }
            commands::sync_once::run(Settings::from_args(&settings)?).await
        }
        Command::Cleanup(args) => {
            commands::cleanup::run(Settings::from_args(&settings)?, &args).await
        }
    }
}

/// The connected parts every online command needs.
pub struct Parts {
    pub syncer: Arc<Syncer>,
    pub metrics: Metrics,
}

/// Connects to the cluster and prepares the Vault client (no Vault request yet).
pub async fn connect(settings: Settings) -> Result<Parts> {
    // reqwest is built without a bundled crypto provider; ring is the one rustls uses here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = Metrics::new();
    let (client, cluster) = cluster::connect(&settings, &metrics).await?;
    info!(kubernetes_host = %cluster.host, ca_certificates = cluster.ca_pem.matches("BEGIN CERTIFICATE").count(), "cluster connection");
    let vault = VaultClient::new(settings.vault.clone(), metrics.clone())?;
    let events = EventPublisher::new(client.clone(), instance_name());
    let syncer = Syncer::new(client, vault, settings, cluster, metrics.clone(), events);
    Ok(Parts {
        syncer: Arc::new(syncer),
        metrics,
    })
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run_controller(settings: Settings, shutdown: CancellationToken) -> Result<()> {
    info!(version = VERSION, settings = %settings, "starting vault-auth-kubernetes");
    if settings.vault.skip_tls_verify {
        warn!("TLS verification of Vault is OFF (--vault-skip-verify): use only for tests");
    }
    let Parts { syncer, metrics } = connect(settings).await?;
    let health = Health::new();
    let admin = AdminState {
        health: health.clone(),
        metrics,
        vault: syncer.vault.clone(),
    };
    admin::start(syncer.settings.admin_port, admin, shutdown.clone()).await?;
    let session = tokio::spawn({
        let vault = syncer.vault.clone();
        let stop = shutdown.child_token();
        async move { vault.run_session(stop).await }
    });
    let (leader, lease_task, _always_leader) = match &syncer.settings.leader_election {
        Some(election) => {
            let (rx, task) = leader_election(&syncer, election).await?;
            (rx, Some(task), None)
        }
        // Without election this instance always leads. The sender is kept until the loop ends:
        // a closed channel would make the loop's `leader.changed()` fire at once, every time.
        None => {
            let (tx, rx) = tokio::sync::watch::channel(true);
            (rx, None, Some(tx))
        }
    };
    let result = controller::run(syncer, health.clone(), leader, shutdown.clone()).await;
    health.set_shutting_down();
    shutdown.cancel();
    // The receiver was dropped with the loop: the lease manager releases the Lease so a standby
    // takes over at once rather than after the lease expires.
    if let Some(task) = lease_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    }
    let _ = session.await;
    info!("stopped");
    result
}

/// Starts leader election on the Lease [`LEASE_NAME`] in the controller's namespace.
async fn leader_election(
    syncer: &Syncer,
    election: &LeaderElection,
) -> Result<(
    tokio::sync::watch::Receiver<bool>,
    tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
)> {
    let duration = election.lease_duration.as_secs().max(3);
    let identity = format!("{}-{}", instance_name(), std::process::id());
    let manager = LeaseManagerBuilder::new(syncer.client.clone(), LEASE_NAME)
        .with_namespace(&syncer.settings.namespace)
        .with_identity(&identity)
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .build()
        .await
        .map_err(|e| Error::LeaderElection(e.to_string()))?;
    info!(lease = LEASE_NAME, %identity, duration_seconds = duration, "leader election on");
    Ok(manager.watch().await)
}

/// Name of this replica for Events: the pod name when set (POD_NAME), else the host name.
pub fn instance_name() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "vault-auth-kubernetes".to_string())
}

/// A token cancelled on SIGTERM or SIGINT.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let sigterm = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("received SIGINT"),
            () = sigterm => info!("received SIGTERM"),
        }
        trigger.cancel();
    });
    token
}
