//! Command line: what to benchmark, at which sizes, and where the results go.
//!
//! Options that `--quick` changes are `Option`s here, so that an option given explicitly wins
//! over `--quick`, which wins over the default; [`Args::plan`] resolves them into a [`Plan`].

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

/// Benchmarks Kubernetes-auth controllers (vault-auth-kubernetes, the original Go tool, or any
/// other with the same interface) on a fresh Kubernetes API and Vault per size and controller,
/// beside a raw-writer baseline, and writes results.json, results.md and PNG plots.
#[derive(Parser, Debug)]
#[command(name = "vak-bench", version)]
pub struct Args {
    /// A controller binary, optionally named (`ours=target/release/vault-auth-kubernetes`);
    /// the default name is the file name. Repeatable. It is driven only through the original
    /// tool's interface: KUBECONFIG, VAK_VAULT_HOST, VAK_VAULT_MOUNT, VAK_VAULT_ROLE_ID,
    /// VAK_VAULT_SECRET_ID (plus VAK_ADMIN_PORT, a free port, for controllers that serve
    /// metrics).
    #[arg(long = "controller", value_name = "[NAME=]PATH")]
    pub controllers: Vec<ControllerSpec>,
    /// An extra environment variable for every controller (e.g. VAK_LOG_LEVEL=warn).
    /// Repeatable.
    #[arg(long = "controller-env", value_name = "KEY=VALUE")]
    pub controller_env: Vec<EnvVar>,
    /// Sizes as namespaces:roles pairs [default: 100:10,1000:100,10000:1000; --quick: 30:5].
    #[arg(long, value_delimiter = ',', value_name = "NS:ROLES,...")]
    pub sizes: Option<Vec<Size>>,
    /// Edits of one role each, one at a time [default: 50; --quick: 5].
    #[arg(long)]
    pub edits: Option<usize>,
    /// Namespaces created that a role binds [default: 20; --quick: 3].
    #[arg(long)]
    pub namespace_creates: Option<usize>,
    /// Edits sent within one second [default: 100; --quick: 20].
    #[arg(long)]
    pub burst: Option<usize>,
    /// How long the idle phase lasts, at the largest size only [default: 300s; --quick: 10s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle: Option<Duration>,
    /// Cold starts, and as many baselines, per size, each on a fresh cluster and Vault: the
    /// table shows the medians (a single one varies by a third from run to run at 10,000
    /// namespaces) [default: 3; --quick: 1].
    #[arg(long)]
    pub cold_starts: Option<usize>,
    /// Output folder [default: target/bench/<UTC timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A smoke run that takes well under a minute (what CI runs).
    #[arg(long)]
    pub quick: bool,
    /// Which ConfigMap features the roles use: `explicit` only lists namespaces by name (what
    /// the original tool understands); `full` also uses patterns and namespace selectors.
    #[arg(long, value_enum, default_value_t = Flavor::Full)]
    pub flavor: Flavor,
    /// Emulate Kubernetes <= 1.23 (token Secrets filled in for every ServiceAccount), which the
    /// original tool needs. Emulator only.
    #[arg(long)]
    pub legacy_token_secrets: bool,
    /// Kubernetes API server: the in-repo emulator, or a real control plane (etcd,
    /// kube-apiserver, kube-controller-manager from `scripts/tools.sh`).
    #[arg(long, value_enum, default_value_t = ClusterChoice::Emulator)]
    pub cluster: ClusterChoice,
    /// Vault server: OpenBao or HashiCorp Vault (dev servers from `scripts/tools.sh`).
    #[arg(long, value_enum, default_value_t = VaultChoice::Openbao)]
    pub vault: VaultChoice,
    /// Re-render results.md and the PNGs from DIR/results.json, running nothing.
    #[arg(long, value_name = "DIR")]
    pub render: Option<PathBuf>,
}

/// A controller to benchmark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerSpec {
    pub name: String,
    pub path: PathBuf,
}

impl FromStr for ControllerSpec {
    type Err = String;

    /// `NAME=PATH` or `PATH`. An `=` counts as the separator only before the first `/`, so a
    /// path that contains one is still a path.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, path) = match s.split_once('=') {
            Some((name, path)) if !name.contains('/') && !name.is_empty() => (Some(name), path),
            _ => (None, s),
        };
        if path.is_empty() {
            return Err("empty controller path".into());
        }
        let path = PathBuf::from(path);
        let name = match name {
            Some(name) => name.to_string(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| format!("{s:?} has no file name; use NAME=PATH"))?,
        };
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "controller name {name:?}: use letters, digits, '-', '_' or '.' (it names a folder)"
            ));
        }
        Ok(ControllerSpec { name, path })
    }
}

/// `KEY=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
}

impl FromStr for EnvVar {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok(EnvVar {
                key: key.to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!("{s:?}: expected KEY=VALUE")),
        }
    }
}

/// One cluster size: how many `ns-<i>` namespaces and how many roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Size {
    pub namespaces: usize,
    pub roles: usize,
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (ns, roles) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected NAMESPACES:ROLES, e.g. 1000:100"))?;
        let parse = |v: &str, what: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|e| format!("{s:?}: {what}: {e}"))
                .and_then(|n| {
                    if n == 0 {
                        Err(format!("{s:?}: {what} must be at least 1"))
                    } else {
                        Ok(n)
                    }
                })
        };
        Ok(Size {
            namespaces: parse(ns, "namespaces")?,
            roles: parse(roles, "roles")?,
        })
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.namespaces, self.roles)
    }
}

/// Which ConfigMap features the seeded roles use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// Explicit namespace lists, patterns (`ns-12*`) and namespace selectors.
    Full,
    /// Explicit namespace lists only.
    Explicit,
}

/// Kubernetes API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterChoice {
    Emulator,
    Real,
}

/// Vault server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultChoice {
    Openbao,
    Vault,
}

/// Everything a run needs, resolved from the arguments; recorded in results.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub sizes: Vec<Size>,
    pub edits: usize,
    pub namespace_creates: usize,
    pub burst: usize,
    /// Cold starts (and baselines) per size; the medians are reported.
    #[serde(default = "one")]
    pub cold_starts: usize,
    #[serde(with = "duration_secs")]
    pub idle: Duration,
    /// Quiet time after the burst before the idle phase counts (10 s; 3 s with --quick).
    #[serde(with = "duration_secs")]
    pub idle_settle: Duration,
    pub quick: bool,
    pub flavor: Flavor,
    pub legacy_token_secrets: bool,
    pub cluster: ClusterChoice,
    pub vault: VaultChoice,
    pub controller_env: Vec<EnvVar>,
    #[serde(skip)]
    pub controllers: Vec<ControllerSpec>,
    #[serde(skip)]
    pub out: PathBuf,
}

fn one() -> usize {
    1
}

/// Durations in results.json as seconds (a float), readable by any tool.
mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64(secs.max(0.0)))
    }
}

impl Args {
    /// Resolves `--quick` and the defaults; checks the controllers exist.
    pub fn plan(&self) -> Result<Plan> {
        let quick = self.quick;
        let pick = |given: Option<usize>, quick_value: usize, default: usize| {
            given.unwrap_or(if quick { quick_value } else { default })
        };
        let sizes = match &self.sizes {
            Some(sizes) => sizes.clone(),
            None if quick => vec![Size {
                namespaces: 30,
                roles: 5,
            }],
            None => vec![
                Size {
                    namespaces: 100,
                    roles: 10,
                },
                Size {
                    namespaces: 1000,
                    roles: 100,
                },
                Size {
                    namespaces: 10000,
                    roles: 1000,
                },
            ],
        };
        if sizes.is_empty() {
            bail!("--sizes: give at least one NAMESPACES:ROLES pair");
        }
        if self.controllers.is_empty() {
            bail!(
                "no controller: pass --controller [NAME=]PATH (scripts/bench passes the release \
                 build of vault-auth-kubernetes)"
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &self.controllers {
            if !names.insert(&c.name) {
                bail!(
                    "two controllers are named {:?}: name them, e.g. --controller a={}",
                    c.name,
                    c.path.display()
                );
            }
            let meta = std::fs::metadata(&c.path)
                .with_context(|| format!("controller {}: {}", c.name, c.path.display()))?;
            if !meta.is_file() {
                bail!("controller {}: {} is not a file", c.name, c.path.display());
            }
        }
        if self.legacy_token_secrets && self.cluster == ClusterChoice::Real {
            bail!("--legacy-token-secrets is an emulator option; a real cluster has its own rules");
        }
        check_tools(self.cluster, self.vault)?;
        let out = match &self.out {
            Some(out) => out.clone(),
            None => PathBuf::from("target/bench")
                .join(chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string()),
        };
        Ok(Plan {
            sizes,
            edits: pick(self.edits, 5, 50),
            namespace_creates: pick(self.namespace_creates, 3, 20),
            burst: pick(self.burst, 20, 100),
            cold_starts: pick(self.cold_starts, 1, 3).max(1),
            idle: self
                .idle
                .unwrap_or(Duration::from_secs(if quick { 10 } else { 300 })),
            idle_settle: Duration::from_secs(if quick { 3 } else { 10 }),
            quick,
            flavor: self.flavor,
            legacy_token_secrets: self.legacy_token_secrets,
            cluster: self.cluster,
            vault: self.vault,
            controller_env: self.controller_env.clone(),
            controllers: self.controllers.clone(),
            out,
        })
    }
}

/// Fails, saying how to get them, when the servers asked for are not installed (testkit would
/// panic in the middle of a run instead).
fn check_tools(cluster: ClusterChoice, vault: VaultChoice) -> Result<()> {
    let tool = |name: &str, env: Option<&str>| {
        env.and_then(std::env::var_os)
            .map(PathBuf::from)
            .unwrap_or_else(|| testkit::workspace_root().join(".tools/bin").join(name))
    };
    let mut needed = vec![match vault {
        VaultChoice::Openbao => tool("bao", Some("VAK_BAO_BIN")),
        VaultChoice::Vault => tool("vault", Some("VAK_VAULT_BIN")),
    }];
    if cluster == ClusterChoice::Real {
        for name in ["etcd", "kube-apiserver", "kube-controller-manager"] {
            needed.push(tool(name, None));
        }
    }
    let missing: Vec<String> = needed
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing {}: run scripts/tools.sh (--python-only is enough for OpenBao and the \
             emulator)",
            missing.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_names_default_to_the_file_name() {
        let c: ControllerSpec = "target/release/vault-auth-kubernetes".parse().unwrap();
        assert_eq!(c.name, "vault-auth-kubernetes");
        let c: ControllerSpec = "go=/opt/vak/bin".parse().unwrap();
        assert_eq!(
            (c.name.as_str(), c.path.to_str()),
            ("go", Some("/opt/vak/bin"))
        );
        // An '=' after a '/' is part of the path.
        let c: ControllerSpec = "/tmp/a=b/vak".parse().unwrap();
        assert_eq!(c.path.to_str(), Some("/tmp/a=b/vak"));
        assert!("bad name=/x".parse::<ControllerSpec>().is_err());
    }

    #[test]
    fn sizes_and_env() {
        assert_eq!(
            "1000:100".parse::<Size>(),
            Ok(Size {
                namespaces: 1000,
                roles: 100
            })
        );
        assert!("1000".parse::<Size>().is_err());
        assert!("0:1".parse::<Size>().is_err());
        let e: EnvVar = "VAK_LOG_LEVEL=warn=x".parse().unwrap();
        assert_eq!(
            (e.key.as_str(), e.value.as_str()),
            ("VAK_LOG_LEVEL", "warn=x")
        );
        assert!("=x".parse::<EnvVar>().is_err());
    }

    #[test]
    fn quick_applies_unless_an_option_is_given() {
        let bin = std::env::current_exe().unwrap();
        let bin = bin.to_str().unwrap();
        let args =
            Args::try_parse_from(["vak-bench", "--quick", "--edits", "7", "--controller", bin])
                .unwrap();
        let plan = args.plan().unwrap();
        assert_eq!(plan.edits, 7);
        assert_eq!(plan.burst, 20);
        assert_eq!(plan.idle, Duration::from_secs(10));
        assert_eq!(plan.sizes.len(), 1);
        let args = Args::try_parse_from(["vak-bench", "--controller", bin]).unwrap();
        let plan = args.plan().unwrap();
        assert_eq!(plan.sizes.len(), 3);
        assert_eq!(plan.idle, Duration::from_secs(300));
    }
}
