#!/usr/bin/env bash
# Run ON THE GPU MACHINE (CUDA, CMake, ninja and a PyTorch wheel present; no registry), from the repository root,
# with gpu-deps/ carried from scripts/gpu_prepare_deps.sh. Builds segscale against the wheel's CUDA libtorch,
# checks CUDA and NCCL, trains a few hundred steps with NCCL + AMP on all local GPUs, and prints samples/s per
# GPU as JSON lines into $OUT (or ./gpu-check). Everything in one call so it fits a short device budget.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
deps=$PWD/gpu-deps/root/usr
torch_prefix=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
export LD_LIBRARY_PATH="$deps/lib/x86_64-linux-gnu:$torch_prefix/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEGSCALE_BUILD_TESTS=OFF -DSEGSCALE_BUILD_BENCH=OFF \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$torch_prefix/share/cmake;$deps;$deps/lib/x86_64-linux-gnu/cmake;$deps/share/cmake" \
  -DPKG_CONFIG_USE_CMAKE_PREFIX_PATH=ON -DTORCH_CUDA_ARCH_LIST="8.0;9.0" >"$out/cmake.log" 2>&1
cmake --build build-gpu -j "$(nproc)" >"$out/build.log" 2>&1
bin=build-gpu/segscale
ngpu=$(nvidia-smi -L | wc -l)
"$bin" synth --out "$out/ds" --cases 8 --shape 200,200,140 --quiet
"$bin" prep --data "$out/ds" --out "$out/st" --cache --quiet
"$bin" train --store "$out/st" --out "$out/run1" --device cuda --amp --batch 4 --max-steps 200 --epochs 100000 --val-fraction 0 --quiet
if [ "$ngpu" -gt 1 ]; then
  "$bin" launch --nproc-per-node "$ngpu" -- "$bin" train --store "$out/st" --out "$out/runN" --device cuda --amp --backend nccl \
    --batch 4 --max-steps 200 --epochs 100000 --val-fraction 0 --quiet
fi
python3 - "$out" <<'PY'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
for run in ("run1", "runN"):
    m = out / run / "metrics.jsonl"
    if not m.exists():
        continue
    steps = [json.loads(l) for l in m.read_text().splitlines() if '"step"' in l][10:]
    print(json.dumps({"run": run, "gpu": (out / "gpu.txt").read_text().strip(), "samples_per_s": statistics.median(s["samples_per_s"] for s in steps),
                      "data_wait": statistics.mean(s["data_wait"] for s in steps)}))
PY
