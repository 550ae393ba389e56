#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer + UBSan) and fuzzes each for SECONDS (default 8),
# starting from seed corpora of real files. CI runs the short session; a long run by hand:
#   scripts/fuzz.sh 600            # ten minutes per target; new crashes land in build-fuzz/crashes/
# A crash stops the script non-zero and leaves the input in build-fuzz/crashes/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ -DSEGSCALE_FUZZ=ON \
  -DSEGSCALE_WITH_TORCH=OFF -DSEGSCALE_BUILD_TESTS=OFF -DSEGSCALE_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" >/dev/null
corp=build-fuzz/corpus
rm -rf "$corp"
mkdir -p "$corp"/{nifti,npy,tar,store_index,pipeline,dataset_json,torch_save} build-fuzz/crashes
# Seeds: real NIfTI files (nibabel's test data, small mricron atlases) and files segscale itself writes.
nib=/usr/lib/python3/dist-packages/nibabel/tests/data
for f in "$nib"/example4d.nii.gz "$nib"/example_nifti2.nii.gz "$nib"/anatomical.nii "$nib"/standard.nii.gz \
         "$nib"/reoriented_anat_moved.nii "$nib"/functional.nii; do
  [ -f "$f" ] && cp "$f" "$corp/nifti/"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=build/segscale
[ -x "$bin" ] || bin=build-asan/segscale
if [ -x "$bin" ]; then
  "$bin" synth --out "$tmp/ds" --cases 2 --shape 12,10,8 --layout brats21 --quiet >/dev/null
  cp "$tmp"/ds/BraTS2021_00000/*_seg.nii.gz "$corp/nifti/" 2>/dev/null || true
  cp "$tmp/ds/dataset.json" "$corp/dataset_json/"
  "$bin" prep --data "$tmp/ds" --out "$tmp/st" --copies 1 --quiet >/dev/null
  head -c 20000 "$tmp/st/shard-000000.tar" > "$corp/tar/shard.tar"
  cp "$tmp/st/index.json" "$corp/store_index/"
  "$bin" apply --image "$tmp/ds/BraTS2021_00000/BraTS2021_00000_t1.nii.gz" --out "$tmp/ap" >/dev/null
  cp "$tmp/ap/image_0000.npy" "$corp/npy/"
  python3 -c "import json,sys; print(json.dumps(json.load(open('$tmp/ap/meta.json'))['pipeline']))" > "$corp/pipeline/default.json"
fi
printf '{"training": [], "test": []}' > "$corp/dataset_json/min.json"
cp tests/model/data/wrapped_ordered_state_dict.pth "$corp/torch_save/"  # a real PyTorch 1.13 torch.save file
printf '{"transforms": [{"type": "spacing", "pixdim": [1, 2, 3]}]}' > "$corp/pipeline/min.json"
total=0
for t in nifti npy tar store_index pipeline dataset_json torch_save; do
  mkdir -p build-fuzz/crashes/$t
  log=build-fuzz/fuzz_$t.log
  if ! ./build-fuzz/fuzz/fuzz_$t "$corp/$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
       -artifact_prefix=build-fuzz/crashes/$t/ -print_final_stats=1 >"$log" 2>&1; then
    echo "fuzz_$t: CRASH (input in build-fuzz/crashes/$t/)"; tail -30 "$log"; exit 1
  fi
  runs=$(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  total=$((total + runs))
  echo "fuzz_$t: ${runs} executions in ${seconds} s, no crash"
done
echo "fuzz: $total executions over 7 targets, 0 crashes"
echo "fuzz: 7 passed, 0 failed"
