#!/usr/bin/python3
"""The nnunet recipe's training step against nnunetv2 2.8.1's own nnUNetTrainer.train_step, on the same plan, initial
weights and batches, measured in one run on the CPU (same thread count both sides).

- nnU-Net: nnUNetTrainer(plans, 3d_fullres).initialize() (PlainConvUNet with deep supervision, DC_and_BCE over regions,
  SGD 1e-2 / 0.99 Nesterov, clipping at 12), train_step on each batch (its deep-supervision targets made by its own
  DownsampleSegForDSTransform beforehand, as its loader does; not timed).
- segscale: train_tool nnunet-steps (train/step.h TrainStep with the recipe's optimiser and loss, as `segscale train
  --recipe nnunet` runs it; the deep-supervision targets are made inside the step, timed).
The plan is `segscale plan`'s (equal to nnU-Net's) for synthetic BraTS-like cases of SHAPE; the first step of each side
is a warm-up. Both sides run the same PyTorch kernels (train_tool links the wheel's libtorch), so the ratio shows the
step's overhead, not a different convolution: the gain segscale offers is in the data path (bench/nnunet_data_path.py).
The losses are printed too: they agree (tests/oracle/test_nnunet_learning_parity.py asserts it).

Usage: bench/nnunet_train_step.py BUILD_DIR [STEPS] [THREADS] [SHAPE X,Y,Z] [NNUNET_PYTHON]
  BUILD_DIR: a build with tests/train_tool against the wheel's libtorch (scripts/build_cuda.sh --tests: build-cuda)."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "oracle"))
from nnunet_fixtures import brats_region_dataset  # noqa: E402

build = Path(sys.argv[1]).resolve()
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 6
threads = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
shape = tuple(int(v) for v in sys.argv[4].split(",")) if len(sys.argv) > 4 else (72, 72, 56)
nnunet_python = sys.argv[5] if len(sys.argv) > 5 else "/opt/segscale-torch2/bin/python"

PEER = r"""
import json, os, sys, time
import numpy as np, torch
spec = json.load(open(sys.argv[1]))
torch.set_num_threads(spec["threads"])
torch.manual_seed(0)
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
plans = json.load(open(spec["plans"]))
plans["continue_training"] = False
pre = os.path.join(os.environ["nnUNet_preprocessed"], plans["dataset_name"], plans["configurations"]["3d_fullres"]["data_identifier"])
os.makedirs(pre, exist_ok=True)
open(os.path.join(pre, "unused.b2nd"), "w").close()
t = nnUNetTrainer(plans, "3d_fullres", 0, json.load(open(spec["dataset_json"])), device=torch.device("cpu"))
t.initialize()
torch.save(t.network.state_dict(), spec["init"])
t.on_train_epoch_start()
ds = DownsampleSegForDSTransform(ds_scales=t._get_deep_supervision_scales())
losses, seconds = [], []
for b in spec["batches"]:
    x = torch.from_numpy(np.fromfile(b["x"]).reshape(spec["x_shape"])).float()
    y = torch.from_numpy(np.fromfile(b["y"]).reshape(spec["y_shape"])) > 0.5
    per = [ds(segmentation=y[j])["segmentation"] for j in range(y.shape[0])]
    target = [torch.stack([p[k] for p in per]) for k in range(len(per[0]))]
    t0 = time.perf_counter()
    losses.append(float(t.train_step({"data": x, "target": target})["loss"]))
    seconds.append(time.perf_counter() - t0)
print(json.dumps({"losses": losses, "seconds": seconds, "batch_dice": bool(t.configuration_manager.batch_dice)}))
"""

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    raw = brats_region_dataset(tmp / "Dataset137_BraTS21", 4, shape)
    plans = tmp / "pre" / "nnUNetPlans.json"
    subprocess.run([build / "segscale", "plan", "--data", raw, "--out", plans], check=True, capture_output=True)
    cfg = json.loads(plans.read_text())["configurations"]["3d_fullres"]
    patch, batch = cfg["patch_size"], cfg["batch_size"]
    rng = np.random.default_rng(11)
    batches = []
    for i in range(steps):
        x = rng.standard_normal((batch, 4, *patch))
        lab = np.zeros((batch, *patch), np.int64)
        for j in range(batch):
            c = [rng.integers(2, s - 12) for s in patch]
            lab[j, c[0]:c[0] + 10, c[1]:c[1] + 10, c[2]:c[2] + 8] = 1
            lab[j, c[0] + 2:c[0] + 8, c[1] + 2:c[1] + 8, c[2] + 2:c[2] + 6] = 2
            lab[j, c[0] + 3:c[0] + 6, c[1] + 3:c[1] + 6, c[2] + 3:c[2] + 5] = 3
        x.tofile(tmp / f"x{i}")
        np.stack([lab >= 1, lab >= 2, lab >= 3], axis=1).astype(np.float64).tofile(tmp / f"y{i}")
        batches.append({"x": str(tmp / f"x{i}"), "y": str(tmp / f"y{i}")})
    spec = {"plans": str(plans), "dataset_json": str(raw / "dataset.json"), "init": str(tmp / "init.pt"), "batches": batches,
            "x_shape": [batch, 4, *patch], "y_shape": [batch, 3, *patch], "threads": threads}
    (tmp / "peer.json").write_text(json.dumps(spec))
    env = {**os.environ, "nnUNet_compile": "false", "OMP_NUM_THREADS": str(threads), "nnUNet_raw": str(tmp),
           "nnUNet_preprocessed": str(tmp / "preprocessed"), "nnUNet_results": str(tmp / "results")}
    p = subprocess.run([nnunet_python, "-c", PEER, tmp / "peer.json"], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(p.stderr[-4000:])
    theirs = json.loads(p.stdout.strip().splitlines()[-1])
    net = {"name": "plainconvunet", "input_channels": 4, "num_classes": 3, "deep_supervision": True, **cfg["architecture"]["arch_kwargs"]}
    (tmp / "ours.json").write_text(json.dumps({"net": net, "init": spec["init"], "lr": 0.01, "batch_dice": theirs["batch_dice"],
                                               "x_shape": spec["x_shape"], "y_shape": spec["y_shape"], "batches": batches, "threads": threads}))
    ours = json.loads(subprocess.run([build / "tests" / "train_tool", "nnunet-steps", tmp / "ours.json"], check=True, capture_output=True,
                                     text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)}).stdout)
    s_ours, s_theirs = np.median(ours["seconds"][1:]), np.median(theirs["seconds"][1:])
    print(json.dumps({"what": "nnunet recipe step vs nnUNetTrainer.train_step, CPU", "patch": patch, "batch": batch, "threads": threads,
                      "steps_timed": steps - 1, "segscale_s_per_step": round(float(s_ours), 4), "nnunet_s_per_step": round(float(s_theirs), 4),
                      "ratio_nnunet_over_segscale": round(float(s_theirs / s_ours), 3),
                      "losses_equal": ours["losses"] == theirs["losses"], "parameters": "PlainConvUNet from the plan"}))
