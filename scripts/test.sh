#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: an optimised build, then a
# build under AddressSanitizer + UndefinedBehaviorSanitizer (every malformed-input test runs there too).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

echo "== release build =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs")

echo "== AddressSanitizer + UBSan build =="
# libtorch stays out of the sanitizer build (its own code is not ours to check, and it doubles build time).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSEGSCALE_SANITIZE=ON -DSEGSCALE_BUILD_BENCH=OFF -DSEGSCALE_WITH_TORCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j "$jobs")

echo "== fuzzing (libFuzzer, ASan + UBSan; short session) =="
bash scripts/fuzz.sh "${SEGSCALE_FUZZ_SECONDS:-8}"
