#!/usr/bin/python3
"""nnU-Net's training data path, segscale against nnunetv2 2.8.1 itself, on one thread each, measured in one run.

Both sides take the real BraTS case (BraTS2021_00006 as nnU-Net's Dataset137 conversion writes it), preprocessed by
nnU-Net's rules (`segscale apply --plans`), and produce training samples of the 128x160x112 patch nnU-Net plans for
BraTS: nnU-Net's sampler (cases, a third of each batch forced onto foreground, the enlarged 224x228x189 box,
padding) and its whole augmentation chain (spatial, noise, blur, brightness, contrast, low resolution, two gammas,
mirroring, masking, regions, five deep-supervision targets).
- nnU-Net: nnUNetDataLoader.generate_train_batch with get_training_transforms, torch.set_num_threads(1) (one
  worker's work; nnU-Net runs 12 of them per GPU by default).
- segscale: build/bench/bench_nnunet_augment (the same steps in C++, one thread).

Usage: bench/nnunet_data_path.py BUILD_DIR [BATCHES] [NNUNET_PYTHON]"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "oracle"))
from nnunet_fixtures import dataset137  # noqa: E402

build = Path(sys.argv[1]).resolve()
batches = int(sys.argv[2]) if len(sys.argv) > 2 else 10
nnunet_python = sys.argv[3] if len(sys.argv) > 3 else "/opt/segscale-torch2/bin/python"
case = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats2021-00006"
PATCH = (128, 160, 112)
BATCH = 2

PEER = r'''
import json, resource, sys, time
import numpy as np, torch
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.label_handling.label_handling import LabelManager
torch.set_num_threads(1)
d, batches, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
patch = tuple(json.loads(sys.argv[4]))
meta = json.load(open(d + "/meta.json"))
data = np.load(d + "/image_0000.npy"); seg = np.load(d + "/label_0000.npy")
locs = {tuple(c["class"]): np.load(d + "/" + c["file"]) for c in meta["class_locations"]}
class OneCase:  # nnU-Net's dataset interface (identifiers, load_case) over the preprocessed case in memory
    identifiers = ["case"]
    def load_case(self, k):
        return data, seg, None, {"class_locations": locs}
rot = (-30. / 360 * 2. * np.pi, 30. / 360 * 2. * np.pi)
initial = get_patch_size(patch, rot, rot, rot, (0.85, 1.25))
ds = [[1, 1, 1], [0.5] * 3, [0.25] * 3, [0.125] * 3, [0.0625, 0.0625, 0.125]]
tr = nnUNetTrainer.get_training_transforms(patch, rot, ds, (0, 1, 2), False, use_mask_for_norm=[True] * 4, is_cascaded=False,
                                           foreground_labels=[1, 2, 3], regions=[(1, 2, 3), (2, 3), (3,)], ignore_label=None)
lm = LabelManager({"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}, [1, 2, 3])
dl = nnUNetDataLoader(OneCase(), batch, initial, patch, lm, oversample_foreground_percent=0.33, transforms=tr)
np.random.seed(1); torch.manual_seed(2)
dl.generate_train_batch()  # warm-up (blur's FFT benchmark, caches)
t0 = time.perf_counter()
for _ in range(batches):
    dl.generate_train_batch()
sec = time.perf_counter() - t0
print(json.dumps({"what": "nnU-Net 2.8.1 nnUNetDataLoader + get_training_transforms, 1 thread", "loader_patch": initial.tolist(),
                  "samples": batches * batch, "ms_per_sample": 1000 * sec / (batches * batch), "samples_per_s": batches * batch / sec,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    raw = dataset137(case, tmp / "Dataset137_BraTS2021")
    seg_bin = build / "segscale"
    subprocess.run([seg_bin, "plan", "--data", raw, "--out", tmp / "pre" / "nnUNetPlans.json"], check=True, capture_output=True)
    images = ",".join(str(raw / "imagesTr" / f"BraTS2021_00006_{i:04d}.nii.gz") for i in range(4))
    subprocess.run([seg_bin, "apply", "--image", images, "--label", raw / "labelsTr" / "BraTS2021_00006.nii.gz", "--plans",
                    tmp / "pre" / "nnUNetPlans.json", "--out", tmp / "case"], check=True, capture_output=True)
    shape = np.load(tmp / "case" / "image_0000.npy", mmap_mode="r").shape
    ours = json.loads(subprocess.run([build / "bench" / "bench_nnunet_augment", tmp / "case", ",".join(map(str, PATCH)), str(batches), str(BATCH)],
                                     check=True, capture_output=True, text=True).stdout)
    theirs = json.loads(subprocess.run([nnunet_python, "-c", PEER, tmp / "case", str(batches), str(BATCH), json.dumps(PATCH)],
                                       check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])

print(f"case {shape} (nnU-Net's preprocessing of BraTS2021_00006), patch {PATCH}, loader box {theirs['loader_patch']}, "
      f"batch {BATCH}, {batches} batches each side")
print("| path | ms/sample | samples/s | peak RSS MiB | vs nnU-Net |")
print("|---|---|---|---|---|")
for r in (theirs, ours):
    print(f"| {r['what']} | {r['ms_per_sample']:.0f} | {r['samples_per_s']:.2f} | {r['peak_rss_mib']:.0f} | "
          f"{theirs['ms_per_sample'] / r['ms_per_sample']:.1f}x |")
