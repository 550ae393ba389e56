#!/usr/bin/env bash
# The libtorch seam under the other libtorch: builds the libtorch stages against a PyTorch wheel from PyPI
# (libtorch 2.x, the one GPU users link) and runs the tests that exercise them (torch suite, train / data-
# parallel / device-cache / infer command-line tests, the MONAI model oracle). The wheel is a CUDA build; with
# no GPU its libtorch runs on the CPU, and its CUDA code is still compiled and linked here.
# Run by test.sh after the Debian (libtorch 1.13) build; ccache shares the libtorch-free objects with it.
# The wheel is pinned to the version of the GPU machines' image (scripts/gpu_check.sh runs there).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build_config.sh
TORCH2_VERSION=${SEGSCALE_TORCH2_VERSION:-2.11.0}
venv=${SEGSCALE_TORCH2_VENV:-/opt/segscale-torch2}
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH2_VERSION')" 2>/dev/null; then
  echo "segscale torch2: installing torch==$TORCH2_VERSION from PyPI into $venv (about 5 GB, once)"
  $SUDO /usr/bin/python3 -m venv "$venv"
  $SUDO "$venv/bin/pip" install -q "torch==$TORCH2_VERSION"
fi
prefix=$("$venv/bin/python" -W ignore -c 'import torch; print(torch.utils.cmake_prefix_path)')
echo "segscale torch2: libtorch $("$venv/bin/python" -W ignore -c 'import torch; print(torch.__version__)') from $prefix"
# A CUDA wheel's CMake files look for a GPU to pick architectures unless they are named: name Hopper's.
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S . -B build-torch2 -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEGSCALE_WITH_TORCH=ON -DSEGSCALE_SANITIZE=OFF \
  -DSEGSCALE_FUZZ=OFF -DSEGSCALE_BUILD_TESTS=ON -DSEGSCALE_BUILD_BENCH=OFF -DTORCH_CUDA_ARCH_LIST=9.0 \
  -DCMAKE_PREFIX_PATH="$prefix" >build-torch2-configure.log 2>&1 || { tail -30 build-torch2-configure.log; exit 1; }
cmake --build build-torch2 -j "$(nproc)" --target segscale segscale_torch_tests model_tool nifti_to_npy storage_tool
# The binary must run on this libtorch, not Debian's.
ldd build-torch2/segscale | grep "libtorch_cpu.so => $venv/" ||
  { echo "build-torch2/segscale does not load the wheel's libtorch:"; ldd build-torch2/segscale | grep torch; exit 1; }
build-torch2/tests/segscale_torch_tests
SEGSCALE_BIN="$PWD/build-torch2/segscale" NIFTI_TO_NPY="$PWD/build-torch2/tests/nifti_to_npy" \
  STORAGE_TOOL="$PWD/build-torch2/tests/storage_tool" MODEL_TOOL="$PWD/build-torch2/tests/model_tool" \
  SEGSCALE_SHARED_DATA="$PWD/../shared/data" PYTHONPATH="$PWD/tests/oracle" \
  /usr/bin/python3 -m pytest -q tests/cli/test_train.py tests/cli/test_dist.py tests/cli/test_device_cache.py \
  tests/cli/test_infer.py tests/oracle/test_model_monai.py
