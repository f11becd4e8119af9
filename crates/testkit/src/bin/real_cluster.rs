//! `real-cluster DIR`: a real Kubernetes control plane (etcd, kube-apiserver,
//! kube-controller-manager) on loopback, in the foreground, for people and scripts
//! (`scripts/real-cluster` runs it). Writes `DIR/kubeconfig` (cluster-admin) once ready, then
//! runs until SIGTERM or SIGINT, and stops everything and removes what it wrote to DIR.

use std::path::PathBuf;
use std::process::ExitCode;

use testkit::RealCluster;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [dir] if !dir.starts_with('-') => PathBuf::from(dir),
        _ => {
            eprintln!(
                "usage: real-cluster DIR\n\nStarts etcd, kube-apiserver and \
                 kube-controller-manager (from .tools/bin, built by scripts/tools.sh) on \
                 loopback, writes DIR/kubeconfig once /readyz is ok, and runs until SIGTERM or \
                 SIGINT. Logs: DIR/*.log."
            );
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let mut cluster = match RealCluster::start_in(&dir, false).await {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("real-cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "real-cluster: kube-apiserver ready at {} after {:.1} s\nreal-cluster: kubeconfig {}\n\
         real-cluster: logs in {}; SIGTERM or Ctrl-C stops it",
        cluster.url(),
        started.elapsed().as_secs_f64(),
        cluster.kubeconfig_path().display(),
        cluster.dir().display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    cluster.stop();
    drop(cluster);
    println!("real-cluster: stopped, data removed");
    ExitCode::SUCCESS
}
