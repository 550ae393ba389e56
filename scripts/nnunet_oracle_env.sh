#!/usr/bin/env bash
# The nnU-Net oracle: nnunetv2 2.8.1 and the versions of its libraries that tests/oracle/test_nnunet_*.py compare
# segscale against (../shared/spec/nnunet-semantics.md section 9), installed from PyPI into the torch 2.x venv
# (scripts/build_cuda.sh makes it; nnunetv2 needs torch >= 2.1). Idempotent. Prints the venv's python.
set -euo pipefail
venv=${SEGSCALE_TORCH2_VENV:-/opt/segscale-torch2}
PINS=(nnunetv2==2.8.1 batchgeneratorsv2==0.3.6 dynamic-network-architectures==0.4.4 acvl-utils==0.2.6 batchgenerators==0.25.5)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
[ -x "$venv/bin/python" ] || { echo "segscale nnunet oracle: $venv has no python (run scripts/build_cuda.sh first)" >&2; exit 1; }
if ! "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
want = {"nnunetv2": "2.8.1", "batchgeneratorsv2": "0.3.6", "dynamic_network_architectures": "0.4.4", "acvl_utils": "0.2.6",
        "batchgenerators": "0.25.5"}
sys.exit(any(m.version(k) != v for k, v in want.items()))
PY
then
  echo "segscale nnunet oracle: installing ${PINS[*]} into $venv" >&2
  $SUDO "$venv/bin/pip" install -q "${PINS[@]}" >&2
fi
echo "$venv/bin/python"
