#!/usr/bin/env bash
# Run HERE (a machine with Debian's and PyPI's registries) before a GPU check; prepares what the GPU machine
# (no registry) gets as `carry`: gpu-deps gpu-bin .whl (all ignored by git).
#   gpu-deps/  the build's Debian packages, unpacked (the fallback build there, and libdeflate/libpng at run time)
#   .whl/      the monai wheel for the peer (bench/gpu_monai_peer.py)
#   gpu-bin/   with --binaries PYTHON: segscale and segscale_torch_tests built here against the libtorch of
#              PYTHON's torch, which must be the GPU machine's version (2.11.0+cu130 on 2026-11-26), so the
#              GPU machine spends no device time compiling.
# Usage: scripts/gpu_prepare_deps.sh [--binaries /path/to/venv/bin/python]
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf gpu-deps && mkdir -p gpu-deps/debs
(cd gpu-deps/debs && apt-get download libdeflate-dev libdeflate0 nlohmann-json3-dev libcli11-dev libfmt-dev libfmt9 libpng-dev libpng16-16 \
   zlib1g-dev libgtest-dev >/dev/null)
for d in gpu-deps/debs/*.deb; do dpkg -x "$d" gpu-deps/root; done
rm -rf gpu-deps/debs
rm -rf .whl && python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl monai==1.6.1
if [ "${1:-}" = --binaries ]; then
  py=${2:?--binaries needs the python of a venv holding the GPU machine\'s torch version}
  prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  PATH="$PATH:/usr/local/cuda/bin" cmake -S . -B build-gpu-bin -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEGSCALE_BUILD_TESTS=ON \
    -DSEGSCALE_BUILD_BENCH=OFF -DSEGSCALE_WITH_S3=OFF -DTORCH_CUDA_ARCH_LIST=9.0 -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build build-gpu-bin -j "$(nproc)" --target segscale segscale_torch_tests
  rm -rf gpu-bin && mkdir -p gpu-bin
  cp build-gpu-bin/segscale build-gpu-bin/tests/segscale_torch_tests gpu-bin/ && strip gpu-bin/*
fi
du -sh gpu-deps .whl gpu-bin 2>/dev/null
