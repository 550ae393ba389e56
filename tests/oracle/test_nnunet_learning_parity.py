"""Issue 29, learning parity: ten steps of the nnunet recipe's step (train/step.h TrainStep with the recipe's SGD, nnU-Net's
DC_and_BCE with deep supervision and clipping at 12, as `segscale train --recipe nnunet` builds them) give the losses of
nnunetv2 2.8.1's own nnUNetTrainer.train_step (its network, loss, optimiser and poly rate from initialize() and
on_train_epoch_start()) from the same initial weights and the same batches, on the CPU in float32.

Tolerance: 1e-5 relative on every loss, though on this machine the ten losses came out equal bit for bit: both sides
run the same PyTorch 2.11 CPU kernels (train_tool links the wheel's libtorch) in the same order, so the tolerance only
leaves room for a kernel that sums in another order elsewhere (float32 rounding, ~1e-7, carried along by momentum
0.99). A wrong setting moves the losses by far more: with Nesterov off the second loss differs by 8e-3 and the tenth by
7e-2 (checked once by flipping it in train_tool)."""
import json
import os
import subprocess

import numpy as np
import pytest

from nnunet_fixtures import brats_region_dataset

SEGSCALE = os.environ.get("SEGSCALE_BIN")
TRAIN_TOOL = os.environ.get("TRAIN_TOOL")
STEPS = 10

ORACLE = r"""
import json, os, sys
import numpy as np, torch
spec = json.load(open(sys.argv[1]))
torch.set_num_threads(1)
torch.manual_seed(0)
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
plans = json.load(open(spec["plans"]))
plans["continue_training"] = False  # what nnunetv2.run.run_training.get_trainer_from_args adds
# initialize() infers the dataset class from the preprocessed folder's file endings; the batches come from this test
pre = os.path.join(os.environ["nnUNet_preprocessed"], plans["dataset_name"], plans["configurations"]["3d_fullres"]["data_identifier"])
os.makedirs(pre, exist_ok=True)
open(os.path.join(pre, "unused.b2nd"), "w").close()
t = nnUNetTrainer(plans, "3d_fullres", 0, json.load(open(spec["dataset_json"])), device=torch.device("cpu"))
t.initialize()
torch.save(t.network.state_dict(), spec["init"])
t.on_train_epoch_start()  # PolyLRScheduler.step(0): the rate of epoch 0
ds = DownsampleSegForDSTransform(ds_scales=t._get_deep_supervision_scales())
losses = []
for b in spec["batches"]:
    x = torch.from_numpy(np.fromfile(b["x"]).reshape(spec["x_shape"])).float()
    y = torch.from_numpy(np.fromfile(b["y"]).reshape(spec["y_shape"])) > 0.5  # bool regions, as ConvertSegmentationToRegionsTransform
    per = [ds(segmentation=y[j])["segmentation"] for j in range(y.shape[0])]
    target = [torch.stack([p[k] for p in per]) for k in range(len(per[0]))]
    losses.append(float(t.train_step({"data": x, "target": target})["loss"]))
print(json.dumps({"losses": losses, "batch_dice": bool(t.configuration_manager.batch_dice), "lr": t.optimizer.param_groups[0]["lr"],
                  "batch_size": t.batch_size}))
"""


def test_ten_steps_of_the_nnunet_recipe_give_nnunet_trainers_losses(nnunet_python, tmp_path):
    for name, v in (("SEGSCALE_BIN", SEGSCALE), ("TRAIN_TOOL", TRAIN_TOOL)):
        if not v or not os.path.exists(v):
            pytest.fail(f"{name} is not set to a built binary")
    raw = brats_region_dataset(tmp_path / "Dataset137_BraTS21", 4, (30, 28, 22))
    plans = tmp_path / "pre" / "nnUNetPlans.json"
    p = subprocess.run([SEGSCALE, "plan", "--data", raw, "--out", plans], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    cfg = json.loads(plans.read_text())["configurations"]["3d_fullres"]
    patch, batch = cfg["patch_size"], cfg["batch_size"]
    # Batches as nnU-Net's pipeline hands them to train_step: normalised images, nested region targets (WT >= TC >= ET).
    rng = np.random.default_rng(11)
    batches = []
    for i in range(STEPS):
        x = rng.standard_normal((batch, 4, *patch))
        lab = np.zeros((batch, *patch), np.int64)
        for j in range(batch):
            c = [rng.integers(2, s - 8) for s in patch]
            lab[j, c[0]:c[0] + 7, c[1]:c[1] + 7, c[2]:c[2] + 6] = 1
            lab[j, c[0] + 1:c[0] + 5, c[1] + 1:c[1] + 6, c[2] + 1:c[2] + 5] = 2
            lab[j, c[0] + 2:c[0] + 4, c[1] + 2:c[1] + 4, c[2] + 2:c[2] + 4] = 3
        # dataset.json's region order: whole tumor (1,2,3), tumor core (2,3), enhancing tumor (3)
        y = np.stack([lab >= 1, lab >= 2, lab >= 3], axis=1).astype(np.float64)
        x.tofile(tmp_path / f"x{i}")
        y.tofile(tmp_path / f"y{i}")
        batches.append({"x": str(tmp_path / f"x{i}"), "y": str(tmp_path / f"y{i}")})
    spec = {"plans": str(plans), "dataset_json": str(raw / "dataset.json"), "init": str(tmp_path / "init.pt"), "batches": batches,
            "x_shape": [batch, 4, *patch], "y_shape": [batch, 3, *patch]}
    (tmp_path / "oracle.json").write_text(json.dumps(spec))
    env = {**os.environ, "nnUNet_compile": "false", "OMP_NUM_THREADS": "1", "nnUNet_raw": str(tmp_path), "nnUNet_preprocessed": str(tmp_path / "preprocessed"),
           "nnUNet_results": str(tmp_path / "results")}
    p = subprocess.run([nnunet_python, "-c", ORACLE, tmp_path / "oracle.json"], capture_output=True, text=True, timeout=900, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    theirs = json.loads(p.stdout.strip().splitlines()[-1])
    assert theirs["lr"] == 0.01 and theirs["batch_size"] == batch
    # segscale: the recipe's network from the same plan (deep supervision on, nnU-Net's channel order: the targets
    # above are in dataset.json's order, which is all the step sees), nnU-Net's initial weights.
    net = {"name": "plainconvunet", "input_channels": 4, "num_classes": 3, "deep_supervision": True, **cfg["architecture"]["arch_kwargs"]}
    ours_spec = {"net": net, "init": spec["init"], "lr": 0.01, "batch_dice": theirs["batch_dice"], "x_shape": spec["x_shape"],
                 "y_shape": spec["y_shape"], "batches": batches}
    (tmp_path / "ours.json").write_text(json.dumps(ours_spec))
    p = subprocess.run([TRAIN_TOOL, "nnunet-steps", tmp_path / "ours.json"], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    ours = json.loads(p.stdout)["losses"]
    a, b = np.array(ours), np.array(theirs["losses"])
    rel = np.abs(a - b) / np.abs(b)
    print(f"losses ours {a.tolist()}\nnnU-Net's {b.tolist()}\nlargest relative difference {rel.max():.2e}")
    assert len(a) == STEPS and rel.max() < 1e-5, (a, b)
    assert b[-1] < b[0]  # it learns
