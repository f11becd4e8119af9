//! Differential conformance: the same requests (`tests/conformance/corpus.yaml`) sent to the
//! emulator (RBAC on) and to a real kube-apiserver, and their answers compared after
//! normalisation (`normalise.rs`). Every remaining difference must be listed, with its reason,
//! in `tests/conformance/allow-list.json`; an entry that excuses nothing fails the test too, so
//! the list only ever shrinks with the differences it names.
//!
//! The answers of both servers and every difference are written to
//! `$CARGO_TARGET_TMPDIR/conformance-report.json` for whoever fixes the next one.

mod conformance {
    pub mod diff;
    pub mod normalise;
    pub mod runner;
}

use std::collections::BTreeSet;
use std::path::Path;

use conformance::diff::{self, Allowed, Difference};
use conformance::normalise;
use conformance::runner::{Answer, Server, Step};
use serde_json::{Value, json};
use testkit::TestCluster;

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn run(mut server: Server, corpus: &[Step]) -> Vec<Answer> {
    let mut answers = Vec::with_capacity(corpus.len());
    for step in corpus {
        let mut answer = server.send(step).await;
        normalise::answer(&mut answer, server.vars());
        answers.push(answer);
    }
    answers
}

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 300 {
                format!("{}...", &s[..300])
            } else {
                s
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_answers_like_a_real_apiserver() {
    let corpus: Vec<Step> = serde_saphyr::from_str(&data("corpus.yaml")).expect("corpus.yaml");
    let allowed: Vec<Allowed> =
        serde_json::from_str(&data("allow-list.json")).expect("allow-list.json");
    let mut ids = BTreeSet::new();
    for step in &corpus {
        assert!(ids.insert(step.id.as_str()), "duplicate id {}", step.id);
    }
    for a in &allowed {
        assert!(
            ids.contains(a.id.as_str()),
            "allow-list entry for unknown request {}",
            a.id
        );
        assert!(
            !a.reason.trim().is_empty(),
            "{} {}: no reason",
            a.id,
            a.pointer
        );
    }

    let (real, emulator) = tokio::join!(
        TestCluster::real(),
        TestCluster::emulator(kube_emulator::Options {
            rbac: true,
            // Small enough that the corpus's late watch from resourceVersion 1 is beyond the
            // emulator's window (see the allow-list for what a fresh real apiserver answers).
            watch_window: 60,
            ..Default::default()
        }),
    );
    let server = |c: &TestCluster| Server::new(c.url(), c.ca_pem(), c.admin_token().to_string());
    let (emulator_answers, real_answers) =
        tokio::join!(run(server(&emulator), &corpus), run(server(&real), &corpus));

    let mut used = vec![false; allowed.len()];
    let (mut compared, mut identical, mut excused) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for ((step, e), r) in corpus.iter().zip(&emulator_answers).zip(&real_answers) {
        let diffs: Vec<Difference> = if step.compare {
            diff::differences(e, r)
        } else {
            Vec::new()
        };
        let mut unexcused = Vec::new();
        for d in &diffs {
            let mut covered = false;
            for (i, a) in allowed.iter().enumerate() {
                if a.covers(&step.id, d) {
                    used[i] = true;
                    covered = true;
                }
            }
            if !covered {
                unexcused.push(format!(
                    "{} {}: emulator {} / real {}",
                    step.id,
                    d.pointer,
                    show(&d.emulator),
                    show(&d.real)
                ));
            }
        }
        if step.compare {
            compared += 1;
            match (diffs.is_empty(), unexcused.is_empty()) {
                (true, _) => identical += 1,
                (false, true) => excused += 1,
                (false, false) => {}
            }
        }
        report.push(json!({
            "id": step.id,
            "compared": step.compare,
            "emulator": e,
            "real": r,
            "differences": diffs.iter().map(|d| json!({
                "pointer": d.pointer, "emulator": d.emulator, "real": d.real,
            })).collect::<Vec<_>>(),
        }));
        failures.extend(unexcused);
    }
    let report_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-report.json");
    std::fs::write(
        &report_path,
        serde_json::to_string_pretty(&report).expect("report"),
    )
    .expect("write the report");
    println!(
        "conformance: {compared} requests compared, {identical} identical after normalisation, \
         {excused} allowed differences ({} allow-list entries); report: {}",
        allowed.len(),
        report_path.display()
    );
    for (a, used) in allowed.iter().zip(&used) {
        if !used {
            failures.push(format!(
                "allow-list entry {} {} excuses no difference any more: remove it",
                a.id, a.pointer
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences from the real apiserver:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 100, "the corpus should compare 100+ requests");
}
