#!/usr/bin/env bash
# Run ON THE GPU MACHINE (CUDA, CMake, ninja and a PyTorch wheel present; no registry), from the repository root,
# with gpu-deps/ carried from scripts/gpu_prepare_deps.sh. One call, at most about 8 minutes on one GPU:
#  1. builds segscale and its libtorch tests against the wheel's CUDA libtorch;
#  2. runs the CUDA parity tests (UNet forward/backward CUDA vs CPU, device-cache batches CUDA vs CPU);
#  3. trains on a Task01-sized synthetic --cache store (240x240x155, float16): host loader vs --device-cache,
#     fp32 vs --amp, batch 2, and --device-cache --amp at a large batch; 2-rank NCCL when there are 2+ GPUs;
#  4. prints the table (samples/s, data wait, device cache bytes) as JSON lines and markdown into $OUT (or ./gpu-check).
# Not yet run (no GPU session so far). The MONAI peer on the same card is not part of it yet.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
steps=${GPU_CHECK_STEPS:-200}
mkdir -p "$out"
deps=$PWD/gpu-deps/root/usr
torch_prefix=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
export LD_LIBRARY_PATH="$deps/lib/x86_64-linux-gnu:$torch_prefix/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEGSCALE_BUILD_TESTS=ON -DSEGSCALE_BUILD_BENCH=OFF \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$torch_prefix/share/cmake;$deps;$deps/lib/x86_64-linux-gnu/cmake;$deps/share/cmake" \
  -DPKG_CONFIG_USE_CMAKE_PREFIX_PATH=ON -DTORCH_CUDA_ARCH_LIST="8.0;9.0" >"$out/cmake.log" 2>&1
cmake --build build-gpu -j "$(nproc)" --target segscale segscale_torch_tests >"$out/build.log" 2>&1
bin=build-gpu/segscale
echo "== CUDA parity tests =="
build-gpu/tests/segscale_torch_tests --gtest_filter='CudaParity.*:*Cuda*' 2>&1 | tee "$out/parity.log" | tail -3
ngpu=$(nvidia-smi -L | wc -l)
"$bin" synth --out "$out/ds" --cases 8 --shape 240,240,155 --quiet
"$bin" prep --data "$out/ds" --out "$out/st" --cache --dtype float16 --quiet
common=(--store "$out/st" --device cuda --max-steps "$steps" --epochs 100000 --val-fraction 0 --loader-threads "$(nproc)" --quiet)
row() {  # name, then train flags
  local name=$1; shift
  timeout 120 "$bin" train "${common[@]}" --out "$out/run-$name" "$@" >"$out/run-$name.txt" 2>&1 || echo "row $name failed: $(tail -1 "$out/run-$name.txt")"
}
row host-fp32 --batch 2
row host-amp --batch 2 --amp
row cache-fp32 --batch 2 --device-cache
row cache-amp --batch 2 --device-cache --amp
row cache-amp-b16 --batch 16 --device-cache --amp
if [ "$ngpu" -gt 1 ]; then
  timeout 180 "$bin" launch --nproc-per-node 2 -- "$bin" train "${common[@]}" --out "$out/run-nccl2-cache-amp" --batch 2 --device-cache --amp \
    --backend nccl >"$out/run-nccl2-cache-amp.txt" 2>&1 || echo "2-rank row failed"
fi
python3 - "$out" <<'PY'
import json, re, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
gpu = (out / "gpu.txt").read_text().strip().splitlines()[0]
print(f"\n| configuration ({gpu}) | samples/s | data wait | device cache |\n|---|---|---|---|")
for m in sorted(out.glob("run-*/metrics.jsonl")):
    steps = [json.loads(l) for l in m.read_text().splitlines() if '"type":"step"' in l][10:]
    if not steps:
        continue
    txt = (m.parent.parent / (m.parent.name + ".txt")).read_text()
    cache = re.search(r"device cache: (.*)", txt)
    row = {"run": m.parent.name[4:], "gpu": gpu, "samples_per_s": statistics.median(s["samples_per_s"] for s in steps),
           "data_wait": statistics.mean(s["data_wait"] for s in steps), "device_cache": cache.group(1) if cache else None}
    (out / "rows.jsonl").open("a").write(json.dumps(row) + "\n")
    print(f"| {row['run']} | {row['samples_per_s']:.1f} | {100 * row['data_wait']:.1f}% | {row['device_cache'] or '-'} |")
PY
