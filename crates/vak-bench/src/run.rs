//! One benchmark invocation: every size, every controller, each on fresh servers, then the
//! raw-writer baseline of what that controller wrote; results written after every run, so an
//! interrupted benchmark still leaves what it measured.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::baseline;
use crate::cli::{ControllerSpec, Plan, Size};
use crate::results::{self, Results, Run};
use crate::scenarios::{self, Bench};
use crate::seed::{Seed, expected_service_accounts};
use crate::substrate::{Substrate, SubstrateOptions};

/// Runs the whole plan; results are in `plan.out`.
pub async fn run(plan: &Plan) -> Result<Results> {
    std::fs::create_dir_all(plan.out.join("logs"))
        .with_context(|| format!("create {}", plan.out.display()))?;
    let controllers = plan
        .controllers
        .iter()
        .map(crate::machine::controller_info)
        .collect::<Result<Vec<_>>>()?;
    let mut results = Results {
        format: results::FORMAT,
        started: now(),
        finished: String::new(),
        machine: crate::machine::machine(),
        plan: plan.clone(),
        controllers,
        runs: Vec::new(),
    };
    let largest = plan.sizes.iter().max().copied();
    for &size in &plan.sizes {
        for spec in &plan.controllers {
            eprintln!("vak-bench: {} at {size} (namespaces:roles)", spec.name);
            let started = Instant::now();
            let mut run = one(plan, spec, size, Some(size) == largest).await;
            run.seconds = started.elapsed().as_secs_f64();
            match &run.error {
                Some(e) => eprintln!("vak-bench: {} at {size} FAILED: {e}", spec.name),
                None => eprintln!(
                    "vak-bench: {} at {size} done in {:.0} s",
                    spec.name, run.seconds
                ),
            }
            results.runs.push(run);
            results.finished = now();
            write_outputs(&results, &plan.out)?;
        }
    }
    Ok(results)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One controller at one size; a failure ends the run (later scenarios build on earlier
/// ones) and is recorded in it.
async fn one(plan: &Plan, spec: &ControllerSpec, size: Size, largest: bool) -> Run {
    let seed = Seed {
        namespaces: size.namespaces,
        roles: size.roles,
        flavor: plan.flavor,
        namespace_creates: plan.namespace_creates,
    };
    let expected = expected_service_accounts(&seed.roles(), &seed.namespaces());
    let log = log_path(&plan.out, &spec.name, size);
    let mut run = Run::new(
        &spec.name,
        size,
        expected.len(),
        log.strip_prefix(&plan.out)
            .unwrap_or(&log)
            .display()
            .to_string(),
    );
    if let Err(e) = measure(plan, spec, &seed, largest, &log, &mut run).await {
        run.error = Some(format!("{e:#}"));
    }
    run
}

fn log_path(out: &Path, controller: &str, size: Size) -> PathBuf {
    out.join("logs").join(format!(
        "{controller}-{}x{}.log",
        size.namespaces, size.roles
    ))
}

async fn measure(
    plan: &Plan,
    spec: &ControllerSpec,
    seed: &Seed,
    largest: bool,
    log: &Path,
    run: &mut Run,
) -> Result<()> {
    let options = SubstrateOptions {
        cluster: plan.cluster,
        vault: plan.vault,
        legacy_token_secrets: plan.legacy_token_secrets,
    };
    let namespaces = seed.namespaces();
    let roles = seed.roles();
    let expected = expected_service_accounts(&roles, &namespaces);
    let (capture, scenarios) = {
        let work = tempfile::tempdir().context("create a work folder")?;
        let sub = Substrate::start(options, work.path()).await?;
        sub.seed(&namespaces, &roles).await?;
        let snapshot = baseline::Snapshot::take(&sub).await?;
        let (mut bench, cold, writes) = scenarios::cold_start(
            &sub,
            spec,
            &plan.controller_env,
            log,
            roles.clone(),
            &expected,
        )
        .await
        .context("cold start")?;
        run.cold_start = Some(cold);
        let capture = baseline::capture(&sub, &snapshot, &writes)
            .await
            .context("capture the controller's writes for the baseline")?;
        let scenarios = scenarios_after_start(plan, seed, largest, &mut bench, run).await;
        run.peak_rss_bytes = bench.ctrl.sample().ok().map(|s| s.peak_rss_bytes);
        bench.ctrl.stop().await;
        (capture, scenarios)
    };
    // The baseline needs only the cold start: it runs even when a later scenario failed.
    let mut baseline: Option<crate::results::Baseline> = None;
    for _ in 0..plan.cold_starts {
        let work = tempfile::tempdir().context("create a work folder")?;
        let sub = Substrate::start(options, work.path()).await?;
        sub.seed(&namespaces, &roles).await?;
        let next = scenarios::observed_baseline(&sub, &capture, &roles, &expected)
            .await
            .context("baseline")?;
        match baseline.as_mut() {
            None => baseline = Some(next),
            Some(first) => first.samples.extend(next.samples),
        }
    }
    if let Some(baseline) = baseline.as_mut() {
        baseline.wall_seconds = median(&baseline.samples);
    }
    run.baseline = baseline;
    // More cold starts of the controller, each on a fresh cluster and Vault: only their times
    // (and the highest peak memory) are kept beside the first one's.
    for i in 1..plan.cold_starts {
        if run.cold_start.is_none() {
            break;
        }
        // Its own log (`<controller>-<size>.<n>.log`), the first run's is kept.
        let log = log.with_extension(format!("{}.log", i + 1));
        let work = tempfile::tempdir().context("create a work folder")?;
        let sub = Substrate::start(options, work.path()).await?;
        sub.seed(&namespaces, &roles).await?;
        let (bench, again, _) = scenarios::cold_start(
            &sub,
            spec,
            &plan.controller_env,
            &log,
            roles.clone(),
            &expected,
        )
        .await
        .context("another cold start")?;
        bench.ctrl.stop().await;
        if let Some(cold) = run.cold_start.as_mut() {
            cold.samples.extend(again.samples);
            cold.peak_rss_bytes = cold.peak_rss_bytes.max(again.peak_rss_bytes);
        }
    }
    if let Some(cold) = run.cold_start.as_mut() {
        cold.wall_seconds = median(&cold.samples);
    }
    scenarios
}

async fn scenarios_after_start(
    plan: &Plan,
    seed: &Seed,
    largest: bool,
    bench: &mut Bench<'_>,
    run: &mut Run,
) -> Result<()> {
    if plan.edits > 0 {
        run.edits = Some(bench.edits(plan.edits).await.context("edit latency")?);
    }
    if plan.namespace_creates > 0 {
        let created = seed.created_namespaces();
        run.namespace_creates = Some(
            bench
                .namespace_creates(&created)
                .await
                .context("namespace created")?,
        );
    }
    if plan.burst > 0 {
        run.burst = Some(bench.burst(plan.burst).await.context("burst")?);
    }
    if largest && !plan.idle.is_zero() {
        run.idle = Some(
            bench
                .idle(plan.idle_settle, plan.idle)
                .await
                .context("idle")?,
        );
    }
    Ok(())
}

/// results.json, results.md and the plots.
pub fn write_outputs(results: &Results, out: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(results)?;
    std::fs::write(out.join("results.json"), json + "\n")
        .with_context(|| format!("write {}/results.json", out.display()))?;
    render(results, out)
}

/// results.md and the plots from `results`.
pub fn render(results: &Results, out: &Path) -> Result<()> {
    std::fs::write(out.join("results.md"), crate::report::markdown(results))
        .with_context(|| format!("write {}/results.md", out.display()))?;
    if let Some(warning) = crate::plot::write_all(results, out)? {
        eprintln!("vak-bench: warning: {warning}");
    }
    Ok(())
}

/// `--render DIR`: reads DIR/results.json and writes results.md and the plots next to it.
pub fn render_dir(dir: &Path) -> Result<Results> {
    let path = dir.join("results.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let results: Results =
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    if results.format != results::FORMAT {
        anyhow::bail!(
            "{} has format {}, this vak-bench reads format {}",
            path.display(),
            results.format,
            results::FORMAT
        );
    }
    render(&results, dir)?;
    Ok(results)
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
