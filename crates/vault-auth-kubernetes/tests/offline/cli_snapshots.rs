//! Snapshot tests of real invocations of the built binary: every `--help`, and `validate` on
//! good and bad manifests (text and JSON), stdin, a file without the ConfigMap, a missing file.
//!
//! The binary runs with an empty environment (no KUBECONFIG or VAK_* of the machine can leak
//! into the output) from `tests/offline/fixtures/validate`, so paths in the output are stable.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/offline/fixtures/validate")
}

/// Runs the binary; returns exit status, stdout and stderr in one text for a snapshot.
fn run(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vault-auth-kubernetes"))
        .args(args)
        .current_dir(fixtures())
        .env_clear()
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vault-auth-kubernetes");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child
        .wait_with_output()
        .expect("wait for vault-auth-kubernetes");
    format!(
        "status: {}\n--- stdout\n{}--- stderr\n{}",
        out.status
            .code()
            .map_or("signal".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn help_of_every_command() {
    insta::assert_snapshot!("help", run(&["--help"], None));
    for command in ["run", "validate", "plan", "sync", "cleanup", "version"] {
        insta::assert_snapshot!(format!("help_{command}"), run(&[command, "--help"], None));
    }
}

#[test]
fn version_command_shows_build_info() {
    let out = run(&["version"], None);
    assert!(out.starts_with("status: 0\n"), "{out}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        out.contains(&format!("vault-auth-kubernetes {version}\n")),
        "{out}"
    );
    assert!(out.contains("\ngit revision: "), "{out}");
    assert!(out.contains("\nbuilt with: rustc 1."), "{out}");
}

#[test]
fn version_shows_the_git_revision() {
    let out = run(&["--version"], None);
    let line = out.lines().nth(2).expect("version line");
    let version = env!("CARGO_PKG_VERSION");
    let revision = line
        .strip_prefix(&format!("vault-auth-kubernetes {version} ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected version line: {out}"));
    assert!(
        revision == "unknown revision"
            || (revision.len() == 12 && revision.chars().all(|c| c.is_ascii_hexdigit())),
        "{out}"
    );
    assert!(out.starts_with("status: 0\n"), "{out}");
}

#[test]
fn validate_a_good_manifest() {
    insta::assert_snapshot!("validate_good_text", run(&["validate", "good.yaml"], None));
    insta::assert_snapshot!(
        "validate_good_json",
        run(&["validate", "--output", "json", "good.yaml"], None)
    );
}

#[test]
fn validate_a_bad_manifest() {
    insta::assert_snapshot!("validate_bad_text", run(&["validate", "bad.yaml"], None));
    insta::assert_snapshot!(
        "validate_bad_json",
        run(&["validate", "-o", "json", "bad.yaml"], None)
    );
}

#[test]
fn validate_reads_stdin() {
    let good = std::fs::read_to_string(fixtures().join("good.yaml")).unwrap();
    let out = run(&["validate", "-"], Some(&good));
    insta::assert_snapshot!("validate_stdin", out);
    // Same verdict as the file itself.
    let file = run(&["validate", "good.yaml"], None);
    assert_eq!(out.replace("<stdin>", "good.yaml"), file);
}

#[test]
fn validate_without_the_configmap_and_with_unusable_files() {
    insta::assert_snapshot!(
        "validate_no_configmap",
        run(&["validate", "no-configmap.yaml"], None)
    );
    insta::assert_snapshot!(
        "validate_not_yaml",
        run(&["validate", "not-yaml.yaml"], None)
    );
    insta::assert_snapshot!(
        "validate_missing_file",
        run(&["validate", "good.yaml", "missing.yaml"], None)
    );
    insta::assert_snapshot!(
        "validate_missing_file_json",
        run(&["validate", "-o", "json", "missing.yaml"], None)
    );
}

#[test]
fn usage_errors() {
    // No file: clap's usage error (2).
    insta::assert_snapshot!("validate_no_file", run(&["validate"], None));
    // plan's 2 means "changes pending": its usage errors are 1.
    let out = run(&["plan", "--bogus"], None);
    assert!(out.starts_with("status: 1\n"), "{out}");
    // sync without --once points at the controller.
    insta::assert_snapshot!("sync_without_once", run(&["sync"], None));
    // Online commands name every missing setting by flag and env var; validate needs none.
    insta::assert_snapshot!("plan_without_settings", run(&["plan"], None));
}
