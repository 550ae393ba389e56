#!/usr/bin/env bash
# Run HERE (a machine with Debian's registry) before a GPU check: downloads the build's Debian packages that a
# GPU machine without a registry lacks and unpacks them into gpu-deps/ (ignored by git; pass it as `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf gpu-deps && mkdir -p gpu-deps/debs
(cd gpu-deps/debs && apt-get download libdeflate-dev libdeflate0 nlohmann-json3-dev libcli11-dev libfmt-dev libfmt9 libpng-dev libpng16-16 \
   zlib1g-dev libgtest-dev >/dev/null)
for d in gpu-deps/debs/*.deb; do dpkg -x "$d" gpu-deps/root; done
rm -rf gpu-deps/debs
du -sh gpu-deps
