#!/usr/bin/env bash
# Installs what is missing, builds segscale, and runs `segscale demo` on its small built-in synthetic set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEGSCALE_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target segscale
./build/segscale demo "$@"
