#!/usr/bin/env bash
# Installs what is missing, builds segscale, and runs `segscale demo` on its small built-in synthetic set.
# Extra arguments go to `segscale demo` (default output: build/demo, inside the ignored build folder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/build_config.sh
configure_release build
cmake --build build -j "$(nproc)" --target segscale
args=("$@")
[[ " ${args[*]-} " == *" --out "* || " ${args[*]-} " == *" --out="* ]] || args+=(--out build/demo)
./build/segscale demo "${args[@]}"
