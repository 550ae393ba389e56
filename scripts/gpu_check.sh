#!/usr/bin/env bash
# Run ON THE GPU MACHINE (CUDA, CMake, ninja and a PyTorch wheel present; no registry), from the repository root,
# with gpu-deps/ (scripts/gpu_prepare_deps.sh) and .whl/ (the monai wheel) carried. One call, about 8-10 minutes
# on one GPU:
#  1. builds segscale and its libtorch tests against the machine's PyTorch wheel (CUDA libtorch; S3 left out);
#  2. runs the CUDA parity tests (UNet forward/backward CUDA vs CPU, device-cache batches CUDA vs CPU);
#  3. trains on a Task01-sized synthetic --cache store (32 cases of 240x240x155, float16): host loader vs
#     --device-cache, fp32 vs --amp, batch 2, then --device-cache --amp at batch 16 and 32; 2-rank NCCL when
#     there are 2+ GPUs; peak GPU memory per row read from nvidia-smi;
#     then SegResNet at the monai-brats recipe (issue 20): host loader, --device-cache, batch 1 and 4;
#     then nnU-Net's recipe (issues 28/29) on a store of nnU-Net-preprocessed phantoms (fp16 and bf16 autocast);
#  4. runs the peer in the same call: MONAI's training step and its data paths (bench/gpu_monai_peer.py), for
#     the UNet and for the monai-brats SegResNet;
#  5. writes rows.jsonl, monai.jsonl, table.md and the logs into $OUT (or ./gpu-check).
# Environment: GPU_CHECK_STEPS (default 150), GPU_CHECK_SKIP_BUILD=1 to reuse build-gpu/; a rehearsal on a CPU
# machine (with a stand-in nvidia-smi on PATH): GPU_CHECK_DEVICE=cpu GPU_CHECK_SHAPE=64,64,40 GPU_CHECK_PEER_ARGS=...
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-check}
steps=${GPU_CHECK_STEPS:-150}
work=${GPU_CHECK_WORK:-/tmp/segscale-gpu-check}
rm -rf "$work"  # a warm machine keeps /tmp: start from nothing
mkdir -p "$out" "$work"
log=$out/log.txt
say() { echo "[$(date +%T)] $*" | tee -a "$log"; }
deps=$PWD/gpu-deps/root/usr
export PATH="$PATH:/usr/local/cuda/bin"  # nvcc, for the CUDA wheel's CMake files (fallback build)
torch_prefix=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
nvidia_libs=$(ls -d "$torch_prefix"/../nvidia/*/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$deps/lib/x86_64-linux-gnu:$torch_prefix/lib:$nvidia_libs${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$work/gpu.txt" | tee -a "$log"
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch.compiled_with_cxx11_abi())' | tee -a "$log"
say "cores: $(nproc); cmake $(cmake --version | head -1); $(g++ --version | head -1); $(nvcc --version | tail -1)"

# gpu-bin/ (carried): segscale and segscale_torch_tests built elsewhere against the same PyTorch wheel
# (scripts/gpu_prepare_deps.sh --binaries); used when they start here, else everything is built here.
if [ -x gpu-bin/segscale ] && gpu-bin/segscale --version >>"$log" 2>&1 && [ -x gpu-bin/segscale_torch_tests ]; then
  say "using the carried binaries in gpu-bin/"
  mkdir -p build-gpu/tests && cp gpu-bin/segscale build-gpu/ && cp gpu-bin/segscale_torch_tests build-gpu/tests/
  GPU_CHECK_SKIP_BUILD=1
fi
if [ "${GPU_CHECK_SKIP_BUILD:-0}" != 1 ]; then
  say "configure and build (scripts/build_cuda.sh)"
  # The machine's own wheel and the carried Debian packages; S3 left out (no libcurl there); Release, as measured.
  if ! SEGSCALE_TORCH_PYTHON=$(command -v python3) SEGSCALE_CUDA_BUILD=build-gpu \
      SEGSCALE_EXTRA_PREFIX="$deps;$deps/lib/x86_64-linux-gnu/cmake;$deps/share/cmake" \
      bash scripts/build_cuda.sh --tests -DSEGSCALE_WITH_S3=OFF -DCMAKE_BUILD_TYPE=Release >"$out/build.log" 2>&1; then
    grep -m5 -B2 -A8 "error" "$out/build.log" | head -60; tail -15 "$out/build.log"; say "build FAILED"; exit 1
  fi
  say "built"
fi
bin=build-gpu/segscale

say "CUDA parity and device-cache tests (torch suite)"
timeout 120 build-gpu/tests/segscale_torch_tests --gtest_filter='*Cuda*' >"$work/torch-tests.txt" 2>&1
grep -E "^\[ +(OK|FAILED|SKIPPED) +\]|Failure|Expected|Which is|actual|max diff|epoch|error" "$work/torch-tests.txt" | head -40 | tee -a "$log"

ngpu=$(nvidia-smi -L | wc -l)
say "synthetic Task01-sized store"
"$bin" synth --out "$work/ds" --cases "${GPU_CHECK_CASES:-32}" --shape "${GPU_CHECK_SHAPE:-240,240,155}" --quiet >>"$log" 2>&1 || say "synth FAILED"
"$bin" prep --data "$work/ds" --out "$work/st" --cache --dtype float16 --quiet >>"$log" 2>&1 || say "prep FAILED"
common=(--device "${GPU_CHECK_DEVICE:-cuda}" --max-steps "$steps" --val-fraction 0 --loader-threads "$(nproc)" --quiet ${GPU_CHECK_TRAIN_ARGS:-})
row_store=$work/st  # the store the next rows train on
row() {  # name, then train flags; GPU_CHECK_ROWS (names, space-separated) runs only those
  local name=$1; shift
  [ -n "${GPU_CHECK_ROWS:-}" ] && [[ " $GPU_CHECK_ROWS " != *" $name "* ]] && return 0
  rm -rf "$work/run-$name"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$work/mem-$name.txt" 2>/dev/null &
  local smi=$!
  local t0=$SECONDS
  timeout 90 "$bin" train --store "$row_store" "${common[@]}" --out "$work/run-$name" "$@" >"$work/run-$name.txt" 2>&1
  local rc=$?
  kill $smi 2>/dev/null; wait $smi 2>/dev/null
  say "row $name: rc $rc in $((SECONDS - t0)) s: $(grep -E 'trained|device cache|error|Error' "$work/run-$name.txt" | tr '\n' ' ' | cut -c1-300)"
}
row host-fp32 --batch 2
row host-amp --batch 2 --amp
row cache-fp32 --batch 2 --device-cache
row cache-amp --batch 2 --device-cache --amp
row cache-amp-fp16 --batch 2 --device-cache --amp --amp-dtype fp16
row cache-amp-cl --batch 2 --device-cache --amp --channels-last
row cache-amp-b16 --batch 16 --device-cache --amp
row cache-amp-b16-cl --batch 16 --device-cache --amp --channels-last
row cache-fp32-b16 --batch 16 --device-cache
row cache-amp-b32 --batch 32 --device-cache --amp
# Issue 20: SegResNet at the monai-brats recipe (batch 1, AMP on CUDA, Adam wd 1e-5, cosine) on the same crop.
row segresnet-host --recipe monai-brats
row segresnet-cache --recipe monai-brats --device-cache
row segresnet-cache-b4 --recipe monai-brats --device-cache --batch 4
# Issues 28/29: nnU-Net's recipe on an nnU-Net dataset (Dataset137 form of Task01-sized phantoms): its plan, its
# preprocessing into the store, its sampler and whole augmentation on the host threads (no device twin yet),
# PlainConvUNet from the plan with deep supervision, DC_and_BCE, fp16 autocast with a grad scaler; the data-wait
# column says whether the host path keeps this GPU fed at the plan's batch.
if [ -z "${GPU_CHECK_ROWS:-}" ] || [[ " $GPU_CHECK_ROWS " == *" nnunet"* ]]; then
  say "nnU-Net dataset, plan and store (synth --layout nnunet, plan, prep --plans)"
  "$bin" synth --out "$work/nn" --cases "${GPU_CHECK_NNUNET_CASES:-8}" --shape "${GPU_CHECK_SHAPE:-240,240,155}" --layout nnunet --quiet >>"$log" 2>&1 || say "synth nnunet FAILED"
  "$bin" plan --data "$work/nn" --out "$work/nn-pre/nnUNetPlans.json" >>"$log" 2>&1 || say "plan FAILED"
  "$bin" prep --plans "$work/nn-pre/nnUNetPlans.json" --data "$work/nn" --out "$work/st-nn" --quiet >>"$log" 2>&1 || say "prep --plans FAILED"
  row_store=$work/st-nn
  row nnunet-host --recipe nnunet --no-final-val                     # nnU-Net's fp16 autocast with a grad scaler
  row nnunet-host-bf16 --recipe nnunet --amp-dtype bf16 --no-final-val
  row_store=$work/st
fi
if [ "$ngpu" -gt 1 ]; then  # 2 ranks over NCCL, one GPU each
  timeout 180 "$bin" launch --nproc-per-node 2 -- "$bin" train --store "$work/st" "${common[@]}" --out "$work/run-nccl2-cache-amp" --batch 2 \
    --device-cache --amp --backend nccl >"$work/run-nccl2-cache-amp.txt" 2>&1; say "row nccl2-cache-amp: rc $?"
  : >"$work/mem-nccl2-cache-amp.txt"
fi

say "MONAI peer (same card, same run)"
if [ "${GPU_CHECK_PEER:-1}" = 0 ]; then
  say "peer skipped (GPU_CHECK_PEER=0)"
elif python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" .whl/monai-*.whl >>"$log" 2>&1; then
  PYTHONPATH="$work/site" PYTHONUNBUFFERED=1 timeout 200 python3 bench/gpu_monai_peer.py --device "${GPU_CHECK_DEVICE:-cuda}" --steps 60 --batches 2,16 \
    --workers "$(nproc)" --out "$out/monai.jsonl" ${GPU_CHECK_PEER_ARGS:-} 2>&1 | tail -20 | tee -a "$log"
  PYTHONPATH="$work/site" PYTHONUNBUFFERED=1 timeout 150 python3 bench/gpu_monai_peer.py --device "${GPU_CHECK_DEVICE:-cuda}" --steps 40 --batches 1,4 \
    --model segresnet --paths step,todeviced --workers "$(nproc)" --out "$out/monai.jsonl" ${GPU_CHECK_PEER_ARGS:-} 2>&1 | tail -20 | tee -a "$log"
else
  say "monai wheel not installed (carry .whl/)"
fi

python3 - "$work" "$out" <<'PY' | tee "$out/table.md" | tee -a "$log"
import json, re, statistics, sys, pathlib
work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
gpu = (work / "gpu.txt").read_text().strip().splitlines()[0]
print(f"\n| configuration ({gpu}) | samples/s (median step) | data wait | peak GPU memory | device cache |\n|---|---|---|---|---|")
for m in sorted(work.glob("run-*/metrics.jsonl"), key=lambda p: p.stat().st_mtime):
    steps = [json.loads(l) for l in m.read_text().splitlines() if '"type":"step"' in l]
    steps = steps[len(steps) // 10 :]  # the first tenth warms up (cuDNN autotuning, allocator)
    if not steps:
        continue
    name = m.parent.name[4:]
    txt = (work / f"run-{name}.txt").read_text()
    cache = re.search(r"device cache: (.*)", txt)
    mem = [int(v) for v in (work / f"mem-{name}.txt").read_text().split() if v.isdigit()]
    row = {"run": name, "gpu": gpu, "samples_per_s": statistics.median(s["samples_per_s"] for s in steps),
           "data_wait": statistics.mean(s["data_wait"] for s in steps), "peak_gpu_mib": max(mem) if mem else None,
           "device_cache": cache.group(1) if cache else None, "steps": len(steps)}
    with (out / "rows.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"| segscale {name} | {row['samples_per_s']:.1f} | {100 * row['data_wait']:.1f}% | {row['peak_gpu_mib']} MiB | {row['device_cache'] or '-'} |")
peer = out / "monai.jsonl"
if peer.exists():
    for l in peer.read_text().splitlines():
        r = json.loads(l)
        if "error" in r:
            print(f"| {r['run']} | {r['error']} | | | |")
        else:
            print(f"| {r['run']} (MONAI {r['monai']}) | {r['samples_per_s']:.1f} | {100 * r['data_wait']:.1f}% | | |")
PY
say "done"
