//! `vault-auth-kubernetes`: parse the command line and run; all the work is in the library.

use std::process::ExitCode;

use vault_auth_kubernetes::{app, cli::Cli};

fn main() -> ExitCode {
    tune_malloc();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime")
        .block_on(app::main(Cli::parse_args()))
}

/// glibc's malloc, told to hold on to less, before any thread exists. By default it gives
/// each thread an arena of its own and serves large blocks from the arenas once such blocks
/// were freed; both keep freed memory that the arenas' fragmentation rarely gives back. Here
/// a cold start at 10,000 namespaces left the resident set at ~1.5x the live heap, and it
/// kept growing at every full read of Vault. One arena for the few runtime threads, and blocks
/// of 128 KiB and more always mapped on their own (so freeing them returns them at once),
/// cut the peak by a fifth (measured with `scripts/bench`, see docs/benchmarks.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists, and a refused setting (return 0) leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
