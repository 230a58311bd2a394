#!/usr/bin/env bash
# Create the ilamb3 environment that tests/export/test_ilamb.py and docs/ilamb.md use.
#
# ilamb3 lives in its own venv (default <repo>/.venv-ilamb): ilamb3 2026.4.20 pins
# xarray<=2025.10.1 while fluxbridge needs xarray 2026.9, so the two cannot share one.
# The versions are those of requirements-ilamb.lock (a pip freeze), installed with
# --no-deps so that nothing outside the lock is resolved. Safe to rerun: an existing
# venv is brought to the lock.
#
#   scripts/install_ilamb.sh                 # -> .venv-ilamb
#   FLUXBRIDGE_ILAMB_VENV=/opt/ilamb PYTHON=python3.11 scripts/install_ilamb.sh
#
# The test finds the interpreter at $FLUXBRIDGE_ILAMB_PYTHON, default .venv-ilamb/bin/python.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FLUXBRIDGE_ILAMB_VENV:-$root/.venv-ilamb}"
python="${PYTHON:-python3}"
lock="$root/requirements-ilamb.lock"

"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
    echo "install_ilamb.sh: $python is $("$python" --version 2>&1); ilamb3 needs Python >= 3.11" >&2
    exit 1
}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$lock"
"$venv/bin/python" -c 'import ilamb3, xarray; print(f"ilamb3 {ilamb3.__version__} (xarray {xarray.__version__}) in '"$venv"'")'
