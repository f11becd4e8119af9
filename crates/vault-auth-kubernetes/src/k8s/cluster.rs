//! Connecting to the cluster: a kube client from a kubeconfig or the in-cluster configuration, and
//! the Kubernetes host and CA that Vault must use to call TokenReview.

use std::path::Path;

use base64::Engine;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};
use crate::k8s::request_metrics::RequestMetricsLayer;
use crate::metrics::Metrics;
use crate::settings::Settings;

/// How Vault reaches this cluster's API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    /// `kubernetes_host` for Vault: `--vault-kube-host`, else the kubeconfig's server.
    pub host: String,
    /// `kubernetes_ca_cert` for Vault: PEM of the CA(s) the kubeconfig (or the in-cluster
    /// ca.crt) trusts; empty when the kubeconfig names none (system roots).
    pub ca_pem: String,
}

/// Loads the kube configuration: the kubeconfig given by `--kubeconfig`/`KUBECONFIG` (several
/// paths joined by ':' are merged, as kubectl does), else the in-cluster configuration.
pub async fn load_config(kubeconfig: Option<&Path>) -> Result<kube::Config> {
    match kubeconfig {
        Some(path) => {
            let mut merged: Option<Kubeconfig> = None;
            for part in std::env::split_paths(path) {
                if part.as_os_str().is_empty() {
                    continue;
                }
                let next = Kubeconfig::read_from(&part).map_err(|e| {
                    Error::KubeConfig(format!("cannot read kubeconfig {}: {e}", part.display()))
                })?;
                merged = Some(match merged {
                    None => next,
                    Some(kc) => kc
                        .merge(next)
                        .map_err(|e| Error::KubeConfig(format!("cannot merge kubeconfigs: {e}")))?,
                });
            }
            let kc = merged.ok_or_else(|| {
                Error::KubeConfig(format!("kubeconfig path {:?} names no file", path))
            })?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| {
                    Error::KubeConfig(format!("invalid kubeconfig {}: {e}", path.display()))
                })
        }
        None => kube::Config::incluster().map_err(|e| {
            Error::KubeConfig(format!(
                "no --kubeconfig (env KUBECONFIG) given and not running in a cluster: {e}"
            ))
        }),
    }
}

/// The host and CA Vault needs, from the settings and the kube configuration: the CA is
/// `--vault-kube-ca-cert` when given, else the kubeconfig's (empty when it has none; the
/// config write then fails naming the flag, see `sync::apply`).
pub fn cluster_info(settings: &Settings, config: &kube::Config) -> Result<ClusterInfo> {
    let host = settings.vault_kube_host.clone().unwrap_or_else(|| {
        config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string()
    });
    let ca_pem = match &settings.vault_kube_ca_cert {
        Some(path) => {
            let invalid = |message: String| Error::InvalidSetting {
                setting: crate::cli::Setting::VaultKubeCaCert.describe(),
                message,
            };
            let pem = std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(invalid(format!(
                    "{} holds no PEM certificate",
                    path.display()
                )));
            }
            pem
        }
        None => config
            .root_cert
            .as_deref()
            .map(ders_to_pem)
            .unwrap_or_default(),
    };
    if ca_pem.is_empty() {
        tracing::warn!(
            "the kubeconfig gives no CA certificate for the Kubernetes API; Vault needs one to \
             review tokens: give it with {}",
            crate::cli::Setting::VaultKubeCaCert.describe()
        );
    }
    Ok(ClusterInfo { host, ca_pem })
}

/// The error for a cluster whose CA is unknown (a kubeconfig that trusts the system roots or
/// skips verification): Vault cannot be configured without it.
pub fn missing_kubernetes_ca() -> crate::error::Error {
    crate::error::Error::InvalidSetting {
        setting: crate::cli::Setting::VaultKubeCaCert.describe(),
        message: "the kubeconfig gives no CA certificate for the Kubernetes API, and Vault needs \
                  one to verify the API when it reviews tokens: give the PEM file of that CA"
            .to_string(),
    }
}

/// Builds the kube client (counting every request into `metrics`) and the cluster info.
pub async fn connect(
    settings: &Settings,
    metrics: &Metrics,
) -> Result<(kube::Client, ClusterInfo)> {
    let config = load_config(settings.kubeconfig.as_deref()).await?;
    let info = cluster_info(settings, &config)?;
    let client = ClientBuilder::try_from(config)
        .map_err(|source| Error::Kube {
            operation: "create client".to_string(),
            source,
        })?
        .with_layer(&RequestMetricsLayer::new(metrics.clone()))
        .build();
    Ok((client, info))
}

/// PEM-encodes DER certificates (what kube keeps) for Vault's `kubernetes_ca_cert`.
pub fn ders_to_pem(ders: &[Vec<u8>]) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut pem = String::new();
    for der in ders {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = engine.encode(der);
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &[&str]) -> Settings {
        let argv = [
            "vak",
            "--vault-host",
            "https://vault:8200",
            "--vault-mount",
            "prod/eu1",
            "--vault-role-id",
            "r",
            "--vault-secret-id",
            "s",
        ]
        .into_iter()
        .chain(extra.iter().copied());
        let args = crate::cli::parse_controller_args(argv).expect("valid arguments");
        Settings::from_controller(&args).expect("valid settings")
    }

    #[test]
    fn the_kubernetes_ca_comes_from_the_flag_when_given() {
        let config = kube::Config::new("https://k8s.example:6443".parse().unwrap());
        // No CA anywhere: empty, and the config write names the flag to give.
        let info = cluster_info(&settings(&[]), &config).unwrap();
        assert_eq!(info.ca_pem, "");
        let error = missing_kubernetes_ca().to_string();
        assert!(error.contains("--vault-kube-ca-cert"), "{error}");

        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        std::fs::write(&good, pem).unwrap();
        let info = cluster_info(
            &settings(&["--vault-kube-ca-cert", good.to_str().unwrap()]),
            &config,
        )
        .unwrap();
        assert_eq!(info.ca_pem, pem);

        let bad = dir.path().join("not-a-ca.txt");
        std::fs::write(&bad, "hello").unwrap();
        let error = cluster_info(
            &settings(&["--vault-kube-ca-cert", bad.to_str().unwrap()]),
            &config,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("--vault-kube-ca-cert") && error.contains("holds no PEM certificate"),
            "{error}"
        );
    }

    #[test]
    fn pem_wraps_base64_at_64_columns() {
        let der = vec![0u8; 100];
        let pem = ders_to_pem(&[der.clone(), der]);
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----\n").count(), 2);
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        let body: String = pem
            .lines()
            .take_while(|l| !l.starts_with("-----END"))
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(decoded, vec![0u8; 100]);
    }

    #[tokio::test]
    async fn kubeconfig_errors_name_the_file() {
        let err = load_config(Some(Path::new("/nonexistent/kubeconfig")))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/kubeconfig"), "{err}");
    }
}
