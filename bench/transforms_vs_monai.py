#!/usr/bin/python3
"""segscale's transform engine against MONAI 1.4.0's chain on the real BraTS case, measured in one run.

MONAI: the case study's whole chain per pair (LoadImaged .. RandShiftIntensityd), one thread
(torch.set_num_threads(1)), as SageMaker Processing ran it: one process per core, the full chain per copy.
segscale: bench_transforms (deterministic stage once per case, random stage per copy), one thread.

Usage: bench/transforms_vs_monai.py BUILD_DIR [SHARED_CASE_DIR] [MONAI_REPS]"""
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "oracle"))
import monai_chain  # noqa: E402
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged  # noqa: E402
from monai.utils import set_determinism  # noqa: E402

build = Path(sys.argv[1])
case = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[2] / "shared" / "data" / "brats2021-00006"
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
torch.set_num_threads(1)

images = [str(case / f"BraTS2021_00006_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")]
label = str(case / "BraTS2021_00006_seg.nii.gz")
pipeline = {"label_map": "brats21", "transforms": [
    {"type": "spacing"}, {"type": "orientation"}, {"type": "rand_spatial_crop"}, {"type": "rand_flip"},
    {"type": "normalize_intensity"}, {"type": "rand_scale_intensity"}, {"type": "rand_shift_intensity"}]}
set_determinism(seed=0)
chain = Compose([LoadImaged(keys=["image", "label"], image_only=True), EnsureChannelFirstd(keys="image"),
                 monai_chain.LabelsToChannels(keys="label", preset="brats21")] +
                [t for _, t in monai_chain.build(pipeline, keys=("image", "label"))])
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    chain({"image": images, "label": label})
    times.append(time.perf_counter() - t0)
monai_pair = min(times)

out = subprocess.run([str(build / "bench" / "bench_transforms"), str(case), "5"], capture_output=True, text=True, check=True).stdout
ours = json.loads(out.strip().splitlines()[-1])
print(out.strip())
print(f"MONAI 1.4.0 whole chain per pair, one thread: {monai_pair * 1e3:8.1f} ms (best of {reps})")
print(f"  segscale deterministic stage per case:       {ours['deterministic_s'] * 1e3:8.1f} ms  -> {monai_pair / ours['deterministic_s']:6.1f}x faster than MONAI per pair")
print(f"  segscale random stage per further copy:      {ours['random_per_copy_s'] * 1e3:8.1f} ms  -> {monai_pair / ours['random_per_copy_s']:6.1f}x")
print(f"  segscale one pair from NIfTI (crop-first):   {ours['single_pair_s'] * 1e3:8.1f} ms  -> {monai_pair / ours['single_pair_s']:6.1f}x")
for copies in (1, 100):
    seg = ours["deterministic_s"] + copies * ours["random_per_copy_s"]
    print(f"  {copies:3d} copies of one case: MONAI {copies * monai_pair:8.2f} s, segscale {seg:7.3f} s -> {copies * monai_pair / seg:6.1f}x")
