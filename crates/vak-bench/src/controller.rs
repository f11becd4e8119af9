//! Running a controller binary through the original tool's interface, and watching it.
//!
//! The controller gets exactly the environment the original README documents (KUBECONFIG,
//! VAK_VAULT_HOST, VAK_VAULT_MOUNT, VAK_VAULT_ROLE_ID, VAK_VAULT_SECRET_ID), a free
//! VAK_ADMIN_PORT (harmless to a controller that has no admin server; ours serves /metrics
//! there) and the `--controller-env` extras. Inherited VAK_*, VAULT_* and BAO_* variables are
//! removed, so the shell the harness runs in cannot change what is measured.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::{ControllerSpec, EnvVar};
use crate::measure::{ProcSample, metric_sum};
use crate::seed::MOUNT;
use crate::substrate::Substrate;

/// The metric of our controller that counts synchronisation passes (docs/metrics.md).
const PASSES_METRIC: &str = "vault_auth_kubernetes_reconciliations_total";

/// A running controller process; killed on drop.
pub struct Controller {
    pub name: String,
    child: tokio::process::Child,
    pub pid: u32,
    pub log: PathBuf,
    pub started: Instant,
    admin_port: u16,
    http: reqwest::Client,
}

impl Controller {
    /// Starts `spec` against `sub`, its stdout and stderr to `log`.
    pub fn spawn(
        spec: &ControllerSpec,
        extra_env: &[EnvVar],
        sub: &Substrate,
        log: &Path,
    ) -> Result<Controller> {
        let file =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let admin_port = testkit::free_port();
        let mut command = tokio::process::Command::new(&spec.path);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if ["VAK_", "VAULT_", "BAO_"]
                .iter()
                .any(|p| key.starts_with(p))
                || key == "KUBECONFIG"
            {
                command.env_remove(key.as_ref());
            }
        }
        command
            .env("KUBECONFIG", sub.kubeconfig())
            .env("VAK_VAULT_HOST", sub.vault.addr())
            .env("VAK_VAULT_MOUNT", MOUNT)
            .env("VAK_VAULT_ROLE_ID", &sub.creds.role_id)
            .env("VAK_VAULT_SECRET_ID", &sub.creds.secret_id)
            .env("VAK_ADMIN_PORT", admin_port.to_string());
        for EnvVar { key, value } in extra_env {
            command.env(key, value);
        }
        let started = Instant::now();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start controller {} ({})", spec.name, spec.path.display()))?;
        let pid = child.id().context("the controller has no pid")?;
        Ok(Controller {
            name: spec.name.clone(),
            child,
            pid,
            log: log.to_path_buf(),
            started,
            admin_port,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
        })
    }

    /// Fails when the process has exited, naming its exit status and log.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "controller {} exited with {status}; its log: {}",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }

    /// CPU time and memory now.
    pub fn sample(&self) -> Result<ProcSample> {
        ProcSample::read(self.pid).with_context(|| {
            format!(
                "read the process stats of controller {} (log: {})",
                self.name,
                self.log.display()
            )
        })
    }

    /// Passes the controller ran so far, if it serves our metric on the admin port.
    pub async fn passes(&self) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.admin_port);
        let text = self.http.get(url).send().await.ok()?.text().await.ok()?;
        metric_sum(&text, PASSES_METRIC)
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
