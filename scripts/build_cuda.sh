#!/usr/bin/env bash
# One command for a GPU host: builds build-cuda/segscale against the libtorch inside PyTorch's CUDA wheel and
# prints how to run it. No GPU is needed to build (CI builds it the same way, scripts/test_torch2.sh).
#
#   scripts/build_cuda.sh [--tests] [extra CMake -D options...]
#
# The wheel, first found wins:
#   $SEGSCALE_TORCH_PYTHON     a Python whose torch to use (e.g. the GPU image's python3)
#   $SEGSCALE_TORCH2_VENV      a venv (default /opt/segscale-torch2) holding torch==$SEGSCALE_TORCH2_VERSION
#                              (default 2.11.0, the version the GPU machines' image carries)
#   python3 on PATH            when its torch is a CUDA build (skipped with SEGSCALE_TORCH2_PINNED=1: CI)
#   otherwise                  installs torch==$SEGSCALE_TORCH2_VERSION from PyPI into the venv (about 5 GB, once)
# The build: RelWithDebInfo in build-cuda/ (SEGSCALE_CUDA_BUILD moves it), TORCH_CUDA_ARCH_LIST from
# nvidia-smi (else $TORCH_CUDA_ARCH_LIST, else 9.0: Hopper), the wheel's own NCCL/cuDNN and libstdc++ named
# before libtorch (CMakeLists.txt). --tests also builds the test programs. SEGSCALE_EXTRA_PREFIX adds
# folders to CMAKE_PREFIX_PATH (Debian packages unpacked elsewhere, as on a machine without a registry).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build_config.sh
tests=0
if [ "${1:-}" = "--tests" ]; then tests=1; shift; fi
build=${SEGSCALE_CUDA_BUILD:-build-cuda}
version=${SEGSCALE_TORCH2_VERSION:-2.11.0}
venv=${SEGSCALE_TORCH2_VENV:-/opt/segscale-torch2}
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)

has_torch() { "$1" -W ignore -c "import torch, sys; sys.exit(0 if $2 else 1)" >/dev/null 2>&1; }
if [ -n "${SEGSCALE_TORCH_PYTHON:-}" ]; then
  python=$SEGSCALE_TORCH_PYTHON
  has_torch "$python" True || { echo "segscale build_cuda: SEGSCALE_TORCH_PYTHON=$python cannot import torch" >&2; exit 1; }
elif has_torch "$venv/bin/python" "torch.__version__.split('+')[0] == '$version'"; then
  python=$venv/bin/python
elif [ "${SEGSCALE_TORCH2_PINNED:-0}" != 1 ] && command -v python3 >/dev/null && has_torch python3 "torch.version.cuda is not None"; then
  python=$(command -v python3)
else
  echo "segscale build_cuda: installing torch==$version from PyPI into $venv (about 5 GB, once)"
  $SUDO /usr/bin/python3 -m venv "$venv"
  $SUDO "$venv/bin/pip" install -q "torch==$version"
  python=$venv/bin/python
fi
prefix=$("$python" -W ignore -c 'import torch; print(torch.utils.cmake_prefix_path)')
torch_lib=$("$python" -W ignore -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
about=$("$python" -W ignore -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}")')
echo "segscale build_cuda: $about from $prefix"
arch=${TORCH_CUDA_ARCH_LIST:-}
if [ -z "$arch" ] && command -v nvidia-smi >/dev/null; then arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sort -u | paste -sd ';' || true); fi
arch=${arch:-9.0}
# The CUDA wheel's CMake files want nvcc (the toolkit's) to exist; they do not compile with it.
export PATH="$PATH:/usr/local/cuda/bin"
if ! cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEGSCALE_WITH_TORCH=ON -DSEGSCALE_SANITIZE=OFF \
    -DSEGSCALE_FUZZ=OFF -DSEGSCALE_BUILD_TESTS=ON -DSEGSCALE_BUILD_BENCH=OFF -DTORCH_CUDA_ARCH_LIST="$arch" \
    -DCMAKE_PREFIX_PATH="$prefix${SEGSCALE_EXTRA_PREFIX:+;$SEGSCALE_EXTRA_PREFIX}" "$@" >"$build-configure.log" 2>&1; then
  tail -30 "$build-configure.log"
  echo "segscale build_cuda: configuring $build failed (log: $build-configure.log)" >&2
  exit 1
fi
targets=(segscale)
[ $tests = 1 ] && targets+=(segscale_torch_tests model_tool train_tool nifti_to_npy storage_tool nnunet_sampler_tool nnunet_augment_tool)
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
# The binary must run on the wheel's libtorch, not on another one the loader finds first (Debian's).
if ! ldd "$build/segscale" | grep -q "libtorch_cpu.so => $(realpath "$torch_lib")/\|libtorch_cpu.so => $torch_lib/"; then
  echo "segscale build_cuda: $build/segscale does not load the wheel's libtorch ($torch_lib):" >&2
  ldd "$build/segscale" | grep torch >&2
  exit 1
fi
torchrun=$(dirname "$python")/torchrun
cat <<EOF
segscale build_cuda: built $build/segscale against $about (CUDA architectures $arch)
  one GPU:    $build/segscale train --store STORE --out RUN --device cuda --amp
  every GPU:  $build/segscale launch --nproc-per-node \$(nvidia-smi -L | wc -l) -- $build/segscale train --store STORE --out RUN --device cuda --amp
  torchrun:   $torchrun --nproc-per-node N --max-restarts 1 --no-python $build/segscale train --store STORE --out RUN --device cuda --amp
EOF
