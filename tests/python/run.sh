#!/usr/bin/env bash
# The Python package as a user gets it: a fresh virtual environment (Debian's torch, numpy, MONAI visible),
# `pip install .` (scikit-build-core + nanobind from PyPI), then the package's tests.
# Usage: tests/python/run.sh VENV_DIR [pytest args]; SEGSCALE_BIN (and MODEL_TOOL for the parity test) set.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$1"; shift
rm -rf "$venv"
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$root"
cd "$root"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" tests/python
