//! A real Vault dev server for tests: OpenBao or HashiCorp Vault, chosen by the environment.
//!
//! `VAK_TEST_VAULT=openbao` (the default) or `vault`. Both are started the same way
//! (`server -dev`, in-memory storage, a known root token) and answer the same API; where they
//! differ (Vault has no namespaces without Enterprise, OpenBao knows `token_strictly_bind_ip`)
//! tests ask [`TestVault::kind`] or are named `openbao_only_*`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::tools::{bao_bin, vault_bin};

/// Root token of every dev server the harness starts.
const ROOT_TOKEN: &str = "root";

/// Which Vault server a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultKind {
    /// OpenBao (`bao`), from the pinned PyPI wheel.
    OpenBao,
    /// HashiCorp Vault (`vault`), built from its pinned Go module; a test server only.
    Vault,
}

impl VaultKind {
    /// From `VAK_TEST_VAULT` (`openbao` when unset); panics on anything else.
    pub fn from_env() -> VaultKind {
        match std::env::var("VAK_TEST_VAULT").as_deref() {
            Err(_) | Ok("") | Ok("openbao") => VaultKind::OpenBao,
            Ok("vault") => VaultKind::Vault,
            Ok(other) => panic!("VAK_TEST_VAULT={other:?}: expected \"openbao\" or \"vault\""),
        }
    }

    /// The server binary.
    pub fn bin(self) -> PathBuf {
        match self {
            VaultKind::OpenBao => bao_bin(),
            VaultKind::Vault => vault_bin(),
        }
    }

    /// "OpenBao" or "Vault", for messages.
    pub fn name(self) -> &'static str {
        match self {
            VaultKind::OpenBao => "OpenBao",
            VaultKind::Vault => "Vault",
        }
    }

    /// Prefix of the CLI's environment variables (`BAO_ADDR` or `VAULT_ADDR`).
    fn env_prefix(self) -> &'static str {
        match self {
            VaultKind::OpenBao => "BAO",
            VaultKind::Vault => "VAULT",
        }
    }
}

/// A running `server -dev` (in-memory storage), killed on drop.
pub struct TestVault {
    kind: VaultKind,
    addr: String,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
    http: reqwest::Client,
    /// With TLS: the folder where `-dev-tls` writes its CA, certificate and key.
    tls_dir: Option<PathBuf>,
    /// Arguments added to `server -dev` (see [`TestVault::start_kind_with_args`]).
    extra_args: Vec<String>,
}

/// Status and JSON body (or `Value::Null`) of a raw API call.
#[derive(Debug)]
pub struct BaoResponse {
    pub status: u16,
    pub body: Value,
}

impl TestVault {
    /// Starts the dev server `VAK_TEST_VAULT` names on a free loopback port and waits until it
    /// is unsealed and active.
    pub async fn start() -> TestVault {
        Self::start_kind(VaultKind::from_env(), false).await
    }

    /// Starts a dev server that serves HTTPS only (`-dev-tls`), with a certificate for
    /// `127.0.0.1` and `localhost` signed by a fresh CA at [`TestVault::ca_cert_path`].
    pub async fn start_tls() -> TestVault {
        Self::start_kind(VaultKind::from_env(), true).await
    }

    /// Starts a dev server of this kind, whatever the environment says.
    pub async fn start_kind(kind: VaultKind, tls: bool) -> TestVault {
        Self::start_kind_with_args(kind, tls, Vec::new()).await
    }

    /// Like [`TestVault::start_kind`], with `extra_args` added to `server -dev` (kept for
    /// [`TestVault::restart_empty`]): e.g. `-config=<file>` with an `audit` stanza, since
    /// OpenBao enables audit devices only from its configuration, not through the API.
    pub async fn start_kind_with_args(
        kind: VaultKind,
        tls: bool,
        extra_args: Vec<String>,
    ) -> TestVault {
        // reqwest is built without a bundled crypto provider; ring is the workspace's one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let log = std::env::temp_dir().join(format!("testkit-vault-{port}.log"));
        let tls_dir = tls.then(|| std::env::temp_dir().join(format!("testkit-vault-{port}-tls")));
        let scheme = if tls { "https" } else { "http" };
        let mut bao = TestVault {
            kind,
            addr: format!("{scheme}://127.0.0.1:{port}"),
            port,
            child: None,
            log,
            http: http_client(None),
            tls_dir,
            extra_args,
        };
        bao.spawn().await;
        bao
    }

    /// OpenBao or Vault.
    pub fn kind(&self) -> VaultKind {
        self.kind
    }

    /// With [`TestVault::start_tls`]: the PEM file of the CA that signed the server certificate
    /// (rewritten by [`TestVault::restart_empty`]).
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.tls_dir.as_ref().map(|dir| dir.join("vault-ca.pem"))
    }

    /// Base address, e.g. `http://127.0.0.1:40123`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The dev server's root token.
    pub fn root_token(&self) -> &str {
        ROOT_TOKEN
    }

    /// Kills the server and starts a fresh one on the same port: all storage is gone,
    /// as after a restart of a dev-mode Vault.
    pub async fn restart_empty(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Stops the server (it stays stopped until [`TestVault::restart_empty`]).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): its port stays open and accepts connections, but nothing
    /// is answered, as with a hung Vault. [`TestVault::resume`] (SIGCONT) undoes it.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a [`TestVault::pause`]d server run again.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Runs the server's CLI (`bao` or `vault`) against it as root; panics with its output if
    /// it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        if !out.status.success() {
            panic!(
                "{} {} failed: {}{}",
                self.kind.bin().display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the server's CLI against it as root and returns its raw output.
    pub fn cli_output(&self, args: &[&str]) -> Output {
        let mut command = Command::new(self.kind.bin());
        command.args(args);
        for prefix in ["BAO", "VAULT"] {
            for var in ["ADDR", "TOKEN", "CACERT", "NAMESPACE"] {
                command.env_remove(format!("{prefix}_{var}"));
            }
        }
        let prefix = self.kind.env_prefix();
        command
            .env(format!("{prefix}_ADDR"), &self.addr)
            .env(format!("{prefix}_TOKEN"), ROOT_TOKEN);
        if let Some(ca) = self.ca_cert_path() {
            command.env(format!("{prefix}_CACERT"), ca);
        }
        command.output().expect("run the Vault CLI")
    }

    /// Raw API call as root: `method` may be any HTTP method or `LIST`.
    pub async fn request(&self, method: &str, path: &str, body: Option<Value>) -> BaoResponse {
        self.request_as(ROOT_TOKEN, method, path, body).await
    }

    /// Raw API call with the given token (empty for none, e.g. a login).
    pub async fn request_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> BaoResponse {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("http method");
        let mut req = self.http.request(method, url);
        if !token.is_empty() {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request to the Vault dev server");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("Vault response body");
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        BaoResponse { status, body }
    }

    async fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).expect("create the dev server's log file");
        let mut args = vec![
            "server".to_string(),
            "-dev".to_string(),
            // Servers started at the same moment would race on writing ~/.vault-token.
            "-dev-no-store-token".to_string(),
            format!("-dev-root-token-id={ROOT_TOKEN}"),
            format!("-dev-listen-address=127.0.0.1:{}", self.port),
        ];
        if let Some(dir) = &self.tls_dir {
            // A fresh CA per start: remove the old one so readiness waits for the new file.
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).expect("create the dev server's TLS folder");
            args.push("-dev-tls".to_string());
            args.push(format!("-dev-tls-cert-dir={}", dir.display()));
        }
        args.extend(self.extra_args.iter().cloned());
        let child = Command::new(self.kind.bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn server -dev");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/v1/sys/health", self.addr);
        let mut trusted = self.tls_dir.is_none();
        loop {
            if !trusted && let Some(ca) = self.ca_cert_path().filter(|ca| ca_written(ca)) {
                self.http = http_client(Some(&ca));
                trusted = true;
            }
            if trusted
                && let Ok(resp) = self.http.get(&url).send().await
                && resp.status().as_u16() == 200
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{} server -dev exited with {status}; log:\n{}",
                    self.kind.name(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} at {} not healthy after 30 s; log:\n{}",
                    self.kind.name(),
                    self.addr,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestVault {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
        if let Some(dir) = &self.tls_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The harness's HTTP client, trusting only `ca` when given.
fn http_client(ca: Option<&Path>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).expect("read the dev server's CA");
        let cert = reqwest::Certificate::from_pem(&pem).expect("the dev server's CA is PEM");
        builder = builder.tls_certs_only([cert]);
    }
    builder.build().expect("http client")
}

/// True once the dev server has written a complete PEM certificate there.
fn ca_written(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|pem| pem.contains("-----END CERTIFICATE-----"))
}

/// A loopback port that is free, and whose successor is free too: a dev server also listens
/// on port + 1 for cluster traffic, so two servers on neighbouring ports would collide.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free loopback port");
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}
