//! vak-bench: the benchmark harness of vault-auth-kubernetes. `scripts/bench` builds and runs
//! it; `vak-bench --help` lists the options. It exits non-zero when any scenario failed to
//! converge, after writing what it measured.
#![forbid(unsafe_code)]

mod baseline;
mod cli;
mod controller;
mod kube;
mod machine;
mod measure;
mod plot;
mod png;
mod report;
mod results;
mod run;
mod scenarios;
mod seed;
mod substrate;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

fn main() -> Result<ExitCode> {
    let args = cli::Args::parse();
    if let Some(dir) = &args.render {
        run::render_dir(dir)?;
        eprintln!("vak-bench: rendered {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let plan = args.plan()?;
    // reqwest is built without a bundled crypto provider; ring is the workspace's one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let results = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run::run(&plan))?;
    eprintln!(
        "vak-bench: results in {} (results.md, results.json, *.png)",
        plan.out.display()
    );
    if results.all_ok() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("vak-bench: some scenarios did not converge; see results.md");
        Ok(ExitCode::FAILURE)
    }
}
