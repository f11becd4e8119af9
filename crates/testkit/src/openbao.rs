//! A real OpenBao dev server for tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::tools::bao_bin;

/// Root token of every dev server the harness starts.
const ROOT_TOKEN: &str = "root";

/// A running `bao server -dev` (in-memory storage), killed on drop.
pub struct OpenBao {
    addr: String,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
    http: reqwest::Client,
}

/// Status and JSON body (or `Value::Null`) of a raw API call.
#[derive(Debug)]
pub struct BaoResponse {
    pub status: u16,
    pub body: Value,
}

impl OpenBao {
    /// Starts a dev server on a free loopback port and waits until it is unsealed and active.
    pub async fn start() -> OpenBao {
        // reqwest is built without a bundled crypto provider; ring is the workspace's one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let log = std::env::temp_dir().join(format!("testkit-openbao-{port}.log"));
        let mut bao = OpenBao {
            addr: format!("http://127.0.0.1:{port}"),
            port,
            child: None,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        };
        bao.spawn().await;
        bao
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

    /// Stops the server (it stays stopped until [`OpenBao::restart_empty`]).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs the `bao` CLI against this server as root; panics with its output if it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        if !out.status.success() {
            panic!(
                "bao {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the `bao` CLI against this server as root and returns its raw output.
    pub fn cli_output(&self, args: &[&str]) -> Output {
        Command::new(bao_bin())
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .output()
            .expect("run bao")
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
        let resp = req.send().await.expect("request to OpenBao");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("OpenBao response body");
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        BaoResponse { status, body }
    }

    async fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).expect("create OpenBao log file");
        let child = Command::new(bao_bin())
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{}", self.port),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn bao server -dev");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/v1/sys/health", self.addr);
        loop {
            if let Ok(resp) = self.http.get(&url).send().await
                && resp.status().as_u16() == 200
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "bao server -dev exited with {status}; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "OpenBao at {} not healthy after 30 s; log:\n{}",
                    self.addr,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free loopback port")
}
