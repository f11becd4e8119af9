//! results.md: one Markdown table per scenario, a row per controller and size.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::{Requests, Results, Run};

const MIB: f64 = 1024.0 * 1024.0;

/// The whole report.
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    header(&mut out, results);
    cold_start(&mut out, &results.runs);
    edits(&mut out, &results.runs);
    namespaces(&mut out, &results.runs);
    burst(&mut out, &results.runs);
    idle(&mut out, &results.runs);
    notes(&mut out, &results.runs);
    out
}

fn header(out: &mut String, r: &Results) {
    let m = &r.machine;
    let p = &r.plan;
    let _ = writeln!(out, "# vault-auth-kubernetes benchmark\n");
    let commit = match (&m.git_commit, m.git_dirty) {
        (Some(c), Some(true)) => format!("commit `{c}` (with uncommitted changes)"),
        (Some(c), _) => format!("commit `{c}`"),
        (None, _) => "no git commit".to_string(),
    };
    let _ = writeln!(
        out,
        "Run {} to {} (UTC) on {} cores ({}), {:.1} GiB, Linux {}; {commit}.\n",
        r.started,
        r.finished,
        m.cores,
        if m.cpu_model.is_empty() {
            "unknown CPU"
        } else {
            &m.cpu_model
        },
        m.memory_bytes as f64 / (MIB * 1024.0),
        m.kernel,
    );
    let _ = writeln!(
        out,
        "Kubernetes: {:?}, Vault: {:?}, roles flavor: {:?}{}; {} edits, {} namespace creations, \
         a burst of {}, {:.0} s idle at the largest size.{}\n",
        p.cluster,
        p.vault,
        p.flavor,
        if p.legacy_token_secrets {
            " (legacy token Secrets)"
        } else {
            ""
        },
        p.edits,
        p.namespace_creates,
        p.burst,
        p.idle.as_secs_f64(),
        if p.quick { " Quick (smoke) run." } else { "" },
    );
    let _ = writeln!(out, "| controller | binary | sha256 | size |");
    let _ = writeln!(out, "| --- | --- | --- | ---: |");
    for c in &r.controllers {
        let _ = writeln!(
            out,
            "| {} | `{}` | `{}` | {:.1} MiB |",
            c.name,
            c.path,
            c.sha256.get(..12).unwrap_or(&c.sha256),
            c.size_bytes as f64 / MIB
        );
    }
    out.push('\n');
}

/// A number with as many decimals as it deserves.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// "12 (create 10, get 2)": the total and its parts.
pub fn breakdown(parts: &BTreeMap<String, f64>) -> String {
    let total: f64 = parts.values().sum();
    if parts.is_empty() {
        return "0".into();
    }
    let items: Vec<String> = parts
        .iter()
        .filter(|(_, n)| **n > 0.0)
        .map(|(k, n)| format!("{k} {}", num(*n)))
        .collect();
    format!("{} ({})", num(total), items.join(", "))
}

fn row_start(run: &Run) -> String {
    format!(
        "| {} | {} | {} |",
        run.controller, run.size.namespaces, run.size.roles
    )
}

fn requests_cells(r: &Requests) -> String {
    format!(" {} | {} |", breakdown(&r.kubernetes), breakdown(&r.vault))
}

fn cold_start(out: &mut String, runs: &[Run]) {
    let _ = writeln!(
        out,
        "## Cold start\n\nFrom process start until Vault holds exactly the seeded roles and every \
         ServiceAccount they call for exists. Baseline: the same writes made directly by the \
         harness (AppRole login, Vault 32 and Kubernetes 16 in flight, no reads) on a fresh \
         cluster and Vault, observed and timed as the controller is (the harness's \
         ServiceAccount watch and Vault polls run beside both). With several cold starts per \
         size (`--cold-starts`, each controller run and each baseline on a fresh cluster and \
         Vault), the times are medians, with the lowest and highest in brackets, and the ratio \
         is of the medians; requests and CPU are the first cold start's, memory the highest \
         peak. Requests until 1 s after convergence, the harness's own left out.\n"
    );
    let _ = writeln!(
        out,
        "| controller | namespaces | roles | ServiceAccounts | converged s | baseline s | ours / \
         baseline | CPU s | peak RSS MiB | Kubernetes requests | Vault requests |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    );
    for run in runs {
        let Some(c) = &run.cold_start else { continue };
        let _ = writeln!(
            out,
            "{} {} | {} | {} | {} | {} | {} |{}",
            row_start(run),
            run.service_accounts,
            spread(c.wall_seconds, &c.samples),
            run.baseline
                .as_ref()
                .map_or("n/a".into(), |b| spread(b.wall_seconds, &b.samples)),
            run.baseline_ratio()
                .map_or("n/a".into(), |r| format!("{}x", num(r))),
            num(c.cpu_seconds),
            num(c.peak_rss_bytes as f64 / MIB),
            requests_cells(&c.requests)
        );
    }
    out.push('\n');
}

/// A median with its range, when there is more than one sample: `3.07 (2.95–3.20)`.
fn spread(median: f64, samples: &[f64]) -> String {
    let lowest = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match samples.len() {
        0 | 1 => num(median),
        _ => format!("{} ({}–{})", num(median), num(lowest), num(highest)),
    }
}

fn edits(out: &mut String, runs: &[Run]) {
    let _ = writeln!(
        out,
        "## Edit latency\n\nOne role's token_policies changed by a merge patch of the ConfigMap, \
         one edit at a time: from the patch call returning to a GET of the Vault role showing \
         the new policies (polled every 1 ms). Requests per edit, averaged.\n"
    );
    latency_table(out, runs, "edits", |r| r.edits.as_ref());
}

fn namespaces(out: &mut String, runs: &[Run]) {
    let _ = writeln!(
        out,
        "## Namespace created\n\nA namespace that a role binds (by name, or by a pattern) is \
         created: from the create call returning until its ServiceAccounts exist (each polled \
         with GET every 1 ms). Requests per namespace, averaged.\n"
    );
    latency_table(out, runs, "namespaces", |r| r.namespace_creates.as_ref());
}

fn latency_table(
    out: &mut String,
    runs: &[Run],
    what: &str,
    phase: impl Fn(&Run) -> Option<&crate::results::Phase>,
) {
    let _ = writeln!(
        out,
        "| controller | namespaces | roles | {what} | p50 ms | p99 ms | max ms | Kubernetes \
         requests per change | Vault requests per change |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    );
    for run in runs {
        let Some(p) = phase(run) else { continue };
        let _ = writeln!(
            out,
            "{} {} | {} | {} | {} |{}",
            row_start(run),
            p.latency.count,
            num(p.latency.p50_ms),
            num(p.latency.p99_ms),
            num(p.latency.max_ms),
            requests_cells(&p.per_change)
        );
    }
    out.push('\n');
}

fn burst(out: &mut String, runs: &[Run]) {
    let _ = writeln!(
        out,
        "## Burst\n\nEdits spread evenly over one second: time from the first edit until Vault \
         holds the last state of every edited role; passes as the controller's metrics count \
         them. Requests of the whole burst.\n"
    );
    let _ = writeln!(
        out,
        "| controller | namespaces | roles | edits (roles) | converged after first edit ms | \
         after last edit ms | passes | Kubernetes requests | Vault requests |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    );
    for run in runs {
        let Some(b) = &run.burst else { continue };
        let _ = writeln!(
            out,
            "{} {} ({}) | {} | {} | {} |{}",
            row_start(run),
            b.edits,
            b.roles_edited,
            num(b.from_first_ms),
            num(b.from_last_ms),
            b.passes.map_or("n/a".into(), num),
            requests_cells(&b.requests)
        );
    }
    out.push('\n');
}

fn idle(out: &mut String, runs: &[Run]) {
    let _ = writeln!(
        out,
        "## Idle\n\nAt the largest size, after the other scenarios and a quiet settle: nothing \
         changes. Requests per minute (Kubernetes watches counted apart), CPU used over the \
         period, memory at its end.\n"
    );
    let _ = writeln!(
        out,
        "| controller | namespaces | roles | seconds | Kubernetes per min | watches per min | \
         Vault per min | CPU s | RSS MiB | peak RSS MiB |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: |"
    );
    for run in runs {
        let Some(i) = &run.idle else { continue };
        let _ = writeln!(
            out,
            "{} {} | {} | {} | {} | {} | {} | {} |",
            row_start(run),
            num(i.seconds),
            breakdown(&i.kubernetes_per_minute),
            num(i.watches_per_minute),
            breakdown(&i.vault_per_minute),
            num(i.cpu_seconds),
            num(i.rss_end_bytes as f64 / MIB),
            num(i.peak_rss_bytes as f64 / MIB)
        );
    }
    out.push('\n');
}

fn notes(out: &mut String, runs: &[Run]) {
    let _ = writeln!(
        out,
        "## Runs\n\n| controller | namespaces | roles | seconds | baseline writes | result |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | --- | --- |");
    for run in runs {
        let writes = run.baseline.as_ref().map_or("n/a".to_string(), |b| {
            let mut all: BTreeMap<String, f64> = BTreeMap::new();
            for (k, v) in b.kubernetes_writes.iter().chain(&b.vault_writes) {
                all.insert(k.clone(), *v as f64);
            }
            let mut text = breakdown(&all);
            if !b.notes.is_empty() {
                text.push_str("; ");
                text.push_str(&b.notes.join("; "));
            }
            text
        });
        let result = match &run.error {
            Some(e) => format!("**failed**: {}", e.replace('\n', " ").replace('|', "\\|")),
            None => "ok".to_string(),
        };
        let _ = writeln!(
            out,
            "{} {} | {} | {result} |",
            row_start(run),
            num(run.seconds),
            writes.replace('|', "\\|"),
        );
    }
    let logs: Vec<&str> = runs.iter().map(|r| r.log.as_str()).collect();
    if !logs.is_empty() {
        let _ = writeln!(out, "\nController logs: {}.", logs.join(", "));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::{ClusterChoice, Flavor, Plan, Size, VaultChoice};
    use crate::measure::Summary;
    use crate::results::{Baseline, ColdStart, Machine, Phase, Run};
    use std::time::Duration;

    pub(crate) fn sample() -> Results {
        let mut run = Run::new(
            "ours",
            Size {
                namespaces: 100,
                roles: 10,
            },
            75,
            "logs/ours-100x10.log".into(),
        );
        run.cold_start = Some(ColdStart {
            wall_seconds: 1.5,
            samples: vec![1.5],
            vault_done_seconds: 1.2,
            service_accounts_done_seconds: 1.5,
            cpu_seconds: 0.25,
            peak_rss_bytes: 30 * 1024 * 1024,
            requests: Requests {
                kubernetes: [("create".to_string(), 80.0), ("list".into(), 6.0)].into(),
                vault: [("update".to_string(), 12.0)].into(),
            },
            kubernetes_by_resource: Default::default(),
        });
        run.baseline = Some(Baseline {
            wall_seconds: 0.5,
            ..Default::default()
        });
        run.edits = Some(Phase {
            latency: Summary::of(vec![10.0, 12.0, 30.0]),
            per_change: Requests {
                kubernetes: [("patch".to_string(), 1.0)].into(),
                vault: [("update".to_string(), 1.0)].into(),
            },
        });
        let mut failed = run.clone();
        failed.controller = "go".into();
        failed.edits = None;
        failed.error = Some("timed out | waiting".into());
        Results {
            format: crate::results::FORMAT,
            started: "2026-01-01T00:00:00Z".into(),
            finished: "2026-01-01T00:01:00Z".into(),
            machine: Machine {
                cores: 2,
                ..Default::default()
            },
            plan: Plan {
                sizes: vec![Size {
                    namespaces: 100,
                    roles: 10,
                }],
                edits: 3,
                namespace_creates: 0,
                burst: 0,
                cold_starts: 1,
                idle: Duration::from_secs(10),
                idle_settle: Duration::from_secs(3),
                quick: true,
                flavor: Flavor::Full,
                legacy_token_secrets: false,
                cluster: ClusterChoice::Emulator,
                vault: VaultChoice::Openbao,
                controller_env: vec![],
                controllers: vec![],
                out: Default::default(),
            },
            controllers: vec![],
            runs: vec![run, failed],
        }
    }

    #[test]
    fn renders_one_table_per_scenario() {
        let md = markdown(&sample());
        for heading in [
            "## Cold start",
            "## Edit latency",
            "## Namespace created",
            "## Burst",
            "## Idle",
        ] {
            assert!(md.contains(heading), "{heading}");
        }
        assert!(
            md.contains(
                "| ours | 100 | 10 | 75 | 1.50 | 0.50 | 3x | 0.25 | 30 | 86 (create 80, \
                 list 6) | 12 (update 12) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| ours | 100 | 10 | 3 | 12 | 30 | 30 |"),
            "{md}"
        );
        // A failure is shown, with the table intact.
        assert!(md.contains("**failed**: timed out \\| waiting"), "{md}");
    }

    #[test]
    fn numbers() {
        assert_eq!(num(1234.4), "1234");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(0.0012), "0.0012");
        assert_eq!(num(3.0), "3");
        assert_eq!(breakdown(&BTreeMap::new()), "0");
    }
}
