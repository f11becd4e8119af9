//! `kube-emulator`: runs the Kubernetes API emulator until SIGTERM/SIGINT.
//!
//! Writes the kubeconfig once it is ready to serve, then prints one line saying where it listens.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::Parser;

/// A local Kubernetes API server for tests, benchmarks and demos.
#[derive(Debug, Parser)]
#[command(name = "kube-emulator", version)]
struct Args {
    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig (server URL, CA, admin token).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Authorize requests with RBAC (default: every authenticated request is allowed).
    #[arg(long)]
    rbac: bool,
    /// Emulate Kubernetes <= 1.23: ServiceAccounts get auto-created token Secrets.
    #[arg(long)]
    legacy_token_secrets: bool,
    /// Past events kept for watch resumption (older resourceVersions get 410 Gone).
    #[arg(long, default_value_t = 10_000)]
    watch_window: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Signal handlers go in before the ready line, so a SIGTERM right after it is handled.
    let signals = Signals::install()?;
    let options = kube_emulator::Options {
        port: args.port,
        rbac: args.rbac,
        legacy_token_secrets: args.legacy_token_secrets,
        watch_window: args.watch_window,
        admin_token: None,
    };
    let emulator = kube_emulator::start(options).await?;
    emulator
        .write_kubeconfig(&args.kubeconfig)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", args.kubeconfig.display()))?;
    println!(
        "kube-emulator listening on {} (kubeconfig: {})",
        emulator.url(),
        args.kubeconfig.display()
    );
    signals.wait().await;
    emulator.shutdown().await;
    Ok(())
}

/// SIGTERM and SIGINT, registered up front.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Signals)
    }

    async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
