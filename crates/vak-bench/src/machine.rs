//! Where and with what the numbers were taken: the machine, the commit, the binaries.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::cli::ControllerSpec;
use crate::results::{ControllerInfo, Machine};

/// Cores and model from /proc/cpuinfo, memory from /proc/meminfo, the kernel release, and the
/// git commit of the current directory (if it is a work tree).
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let (cores, cpu_model) = parse_cpuinfo(&cpuinfo);
    Machine {
        cores,
        cpu_model,
        memory_bytes: crate::measure::status_kib(&meminfo, "MemTotal").unwrap_or(0) * 1024,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        git_commit: git(&["rev-parse", "HEAD"]),
        git_dirty: git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
    }
}

/// Logical processors and the first model name.
fn parse_cpuinfo(text: &str) -> (usize, String) {
    let cores = text
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count();
    let model = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (cores, model)
}

/// Path, size and SHA-256 of a controller binary, so results name exactly what ran.
pub fn controller_info(spec: &ControllerSpec) -> Result<ControllerInfo> {
    let bytes = std::fs::read(&spec.path)
        .with_context(|| format!("read controller {}", spec.path.display()))?;
    let path = std::fs::canonicalize(&spec.path).unwrap_or_else(|_| spec.path.clone());
    Ok(ControllerInfo {
        name: spec.name.clone(),
        path: display(&path),
        sha256: Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        size_bytes: bytes.len() as u64,
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo() {
        let text = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n\n\
                    processor\t: 1\nmodel name\t: Example CPU @ 2.0GHz\n";
        assert_eq!(parse_cpuinfo(text), (2, "Example CPU @ 2.0GHz".to_string()));
    }
}
