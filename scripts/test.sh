#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: an optimised build, then a
# build under AddressSanitizer + UndefinedBehaviorSanitizer (every malformed-input test runs there too).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/build_config.sh
jobs=$(nproc)
# Each stage header says the seconds spent so far, so a CI log shows where the time goes.
stage() { echo "== $* (at ${SECONDS} s) =="; }

stage "release build"
configure_release build
cmake --build build -j "$jobs"
run_ctest build

stage "libtorch 2.x: the libtorch stages built and tested against PyTorch's wheel"
bash scripts/test_torch2.sh

stage "Python package: fresh virtual environment, pip install ., its tests"
SEGSCALE_BIN="$PWD/build/segscale" MODEL_TOOL="$PWD/build/tests/model_tool" bash tests/python/run.sh build-pyenv

stage "AddressSanitizer + UBSan build"
configure_asan build-asan
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 run_ctest build-asan

stage "fuzzing (libFuzzer, ASan + UBSan; short session)"
bash scripts/fuzz.sh "${SEGSCALE_FUZZ_SECONDS:-8}"
stage "all stages passed"
