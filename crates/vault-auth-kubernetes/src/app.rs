//! Wiring: turns parsed arguments into a running controller or command.

use std::process::ExitCode;
use std::sync::Arc;

use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{self, AdminState};
use crate::cli::{Cli, Command, VERSION};
use crate::commands;
use crate::context::{Context, instance_name};
use crate::controller;
use crate::error::{Error, Result};
use crate::health::Health;
use crate::settings::{LEASE_NAME, LeaderElection, Settings};
use crate::sync::Syncer;
use crate::telemetry;

/// Runs what the command line asks for and returns its exit status. A failure is reported in
/// the log for the controller (so JSON logs carry it) and as one line on stderr for the
/// commands, whose users read a terminal or a CI log.
pub async fn main(cli: Cli) -> ExitCode {
    let command = cli.command;
    if let Err(error) = telemetry::init(command.log_level(), command.log_format()) {
        eprintln!("vault-auth-kubernetes: {error}");
        return ExitCode::FAILURE;
    }
    let name = command.name();
    match run(command).await {
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

/// Runs a command (logging must be set up) and returns the exit status. Each command validates
/// only the settings it uses: `validate` and `version` need none.
pub async fn run(command: Command) -> Result<u8> {
    match command {
        Command::Run(args) => {
            let settings = Settings::from_controller(&args)?;
            run_controller(settings, shutdown_on_signal()).await?;
            Ok(commands::status::SUCCESS)
        }
        Command::Validate(args) => Ok(commands::validate::run(&args)),
        Command::Plan(args) => {
            let mut settings = Settings::from_command(&args.connection, &args.token)?;
            settings.apply_policy_args(&args.policy);
            commands::plan::run(settings, &args).await
        }
        Command::Sync(args) => {
            if let Err(message) = commands::sync_once::check_args(&args) {
                eprintln!("vault-auth-kubernetes sync: error: {message}");
                return Ok(commands::status::USAGE);
            }
            let mut settings = Settings::from_command(&args.connection, &args.token)?;
            settings.apply_policy_args(&args.policy);
            commands::sync_once::run(settings).await
        }
        Command::Cleanup(args) => {
            commands::cleanup::run(
                Settings::from_command(&args.connection, &args.token)?,
                &args,
            )
            .await
        }
        Command::Version => {
            println!("{}", version_text());
            Ok(commands::status::SUCCESS)
        }
    }
}

/// What `version` prints: the version, the git revision and the compiler it was built with.
pub fn version_text() -> String {
    format!(
        "vault-auth-kubernetes {}\ngit revision: {}\nbuilt with: {}",
        env!("CARGO_PKG_VERSION"),
        env!("VAK_GIT_REVISION"),
        env!("VAK_RUSTC_VERSION"),
    )
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run_controller(settings: Settings, shutdown: CancellationToken) -> Result<()> {
    settings.log_startup(VERSION);
    if settings.vault.skip_tls_verify {
        warn!("TLS verification of Vault is OFF (--vault-skip-verify): use only for tests");
    }
    let ctx = Context::connect(settings).await?;
    let health = Health::new();
    let admin = AdminState {
        health: health.clone(),
        metrics: ctx.metrics.clone(),
        vault: ctx.vault.clone(),
    };
    admin::start(
        std::net::SocketAddr::new(ctx.settings.admin_address, ctx.settings.admin_port),
        admin,
        shutdown.clone(),
    )
    .await?;
    let session = tokio::spawn({
        let vault = ctx.vault.clone();
        let stop = shutdown.child_token();
        async move { vault.run_session(stop).await }
    });
    let (leader, lease_task, _always_leader) = match &ctx.settings.leader_election {
        Some(election) => {
            let (rx, task) = leader_election(&ctx, election).await?;
            (rx, Some(task), None)
        }
        // Without election this instance always leads. The sender is kept until the loop ends:
        // a closed channel would make the loop's `leader.changed()` fire at once, every time.
        // It claims the Lease, so a second controller writing beside it is reported.
        None => {
            let (tx, rx) = tokio::sync::watch::channel(true);
            tokio::spawn(crate::k8s::second_writer::run(
                ctx.clone(),
                crate::context::instance_name(),
                shutdown.child_token(),
            ));
            (rx, None, Some(tx))
        }
    };
    let syncer = Arc::new(Syncer::new(ctx));
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
    ctx: &Context,
    election: &LeaderElection,
) -> Result<(
    tokio::sync::watch::Receiver<bool>,
    tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
)> {
    let duration = election.lease_duration.as_secs().max(3);
    let identity = format!("{}-{}", instance_name(), std::process::id());
    let manager = LeaseManagerBuilder::new(ctx.client.clone(), LEASE_NAME)
        .with_namespace(&ctx.settings.namespace)
        .with_identity(&identity)
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .build()
        .await
        .map_err(|e| Error::LeaderElection(e.to_string()))?;
    info!(lease = LEASE_NAME, %identity, duration_seconds = duration, "leader election on");
    Ok(manager.watch().await)
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
