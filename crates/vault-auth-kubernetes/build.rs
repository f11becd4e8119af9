//! Records the git revision the binary is built from and the compiler, for `--version` and
//! `version`.

use std::process::Command;

fn main() {
    rustc_version();
    println!("cargo:rerun-if-env-changed=VAK_GIT_REVISION");
    // A container build has no .git: the Dockerfile passes the revision as a build argument.
    if let Ok(revision) = std::env::var("VAK_GIT_REVISION")
        && !revision.trim().is_empty()
    {
        println!("cargo:rustc-env=VAK_GIT_REVISION={}", revision.trim());
        return;
    }
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown revision".to_string());
    println!("cargo:rustc-env=VAK_GIT_REVISION={revision}");
    // Rebuild when HEAD moves (the paths are relative to this crate).
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
}

/// `VAK_RUSTC_VERSION`: what `rustc --version` says (cargo gives the compiler it uses in RUSTC).
fn rustc_version() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown rustc".to_string());
    println!("cargo:rustc-env=VAK_RUSTC_VERSION={version}");
}
