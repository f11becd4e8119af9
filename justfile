# Developer tasks. `just` (or `just --list`) lists them; scripts/tools.sh installs a pinned `just`
# into .tools/bin (run it as .tools/bin/just, or put .tools/bin on PATH).
# Each recipe is a thin name for a command that also works without just.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @{{just_executable()}} --list --unsorted --justfile {{justfile()}}

# Format the workspace.
fmt:
    cargo fmt --all

# Formatting check, clippy with warnings as errors, cargo-deny (licences, bans, sources).
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    .tools/bin/cargo-deny --locked check licenses bans sources

# Everything CI runs (all three tiers, the chart tests): what .ci/run calls.
test:
    scripts/test

# Tier 1: every test of the workspace on the emulator and OpenBao.
test-emulator *ARGS:
    cargo test --workspace --locked {{ARGS}}

# Tier 2: the end-to-end suite on a real kube-apiserver and OpenBao.
test-real *ARGS:
    VAK_TEST_CLUSTER=real VAK_TEST_VAULT=openbao cargo test --locked -p vault-auth-kubernetes --test e2e -- --skip emulator_only {{ARGS}}

# Tier 3: the end-to-end and Vault client suites on a real kube-apiserver and HashiCorp Vault.
test-vault *ARGS:
    VAK_TEST_CLUSTER=real VAK_TEST_VAULT=vault cargo test --locked -p vault-auth-kubernetes --test e2e --test vault -- --skip emulator_only --skip openbao_only {{ARGS}}

# Fuzz the ConfigMap parser for SECONDS (cargo-fuzz, stable toolchain; see fuzz/README.md).
fuzz SECONDS="60":
    scripts/fuzz {{SECONDS}}

# The emulator's differential conformance test against the real apiserver (prints the fidelity).
conformance:
    cargo test -p kube-emulator --test conformance -- --nocapture

# The benchmark harness (release builds; docs/benchmarks.md): `just bench --quick`, `just bench --sizes 1000:100`.
bench *ARGS:
    scripts/bench {{ARGS}}

# The demo on the emulator and OpenBao; `just demo --real` on a real control plane and Vault.
demo *ARGS:
    scripts/demo {{ARGS}}

# A real control plane in the foreground (kubeconfig in DIR/kubeconfig).
real-cluster dir="/tmp/vak-real-cluster":
    scripts/real-cluster {{dir}}

# The Helm chart: lint, render and RBAC checks with Helm's own engine.
chart:
    scripts/tools.sh --python-only
    .tools/venv/bin/python charts/tests/test_chart.py

# Every cargo-deny check, advisories included (needs github.com for the RustSec database).
deny:
    .tools/bin/cargo-deny --locked check

# Install the pinned tools into .tools (also done by test and demo).
tools:
    scripts/tools.sh
