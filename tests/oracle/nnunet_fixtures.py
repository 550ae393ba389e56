"""Helpers of the nnU-Net oracle tests and bench/nnunet_data_path.py: running nnU-Net itself (nnunet_oracle.py in
its venv) and writing datasets in nnU-Net's raw layout."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent


def oracle(py, *args):
    p = subprocess.run([py, str(HERE / "nnunet_oracle.py"), *map(str, args)], capture_output=True, text=True, timeout=1200,
                       env={**os.environ, "nnUNet_compile": "false", "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    return p.stdout


def write_dataset(root, channel_names, labels, cases):
    """nnU-Net's raw layout. cases: list of (key, spacing (x,y,z), [channel arrays (x,y,z)], label array)."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for key, spacing, chans, lab in cases:
        aff = np.diag([*spacing, 1.0])
        for i, a in enumerate(chans):
            nib.save(nib.Nifti1Image(a.astype(np.float32), aff), str(root / "imagesTr" / f"{key}_{i:04d}.nii.gz"))
        nib.save(nib.Nifti1Image(lab.astype(np.uint8), aff), str(root / "labelsTr" / f"{key}.nii.gz"))
    (root / "dataset.json").write_text(json.dumps({"channel_names": {str(i): n for i, n in enumerate(channel_names)}, "labels": labels,
                                                   "numTraining": len(cases), "file_ending": ".nii.gz"}))
    return root


def head_case(rng, shape, channels, fg_labels, hole=True, margin=(3, 4, 2)):
    """A body of nonzero intensities inside a zero border (with a zero hole the crop's fill closes) and a labelled blob."""
    x, y, z = shape
    body = np.zeros(shape, bool)
    mx, my, mz = margin
    body[mx:x - mx - 1, my:y - my, mz:z - mz] = True
    if hole:
        body[x // 2 - 2:x // 2 + 1, y // 2 - 1:y // 2 + 2, z // 2:z // 2 + 2] = False
    chans = [np.where(body, rng.normal(100 * (c + 1), 20 + 5 * c, shape).round(1), 0) for c in range(channels)]
    lab = np.zeros(shape, np.uint8)
    cx, cy, cz = x // 3, y // 3, z // 3
    for k, v in enumerate(fg_labels):
        lab[cx + k:cx + 6 - k, cy:cy + 5, cz:cz + 4 - k // 2] = v
    lab[x // 2 - 2:x // 2 + 1, y // 2 - 1:y // 2 + 2, z // 2:z // 2 + 2] = 0
    return chans, lab


def dataset137(case_dir, root):
    """A BraTS 2021 case folder as nnU-Net's Dataset137_BraTS21.py converts it: channels t1, t1ce, t2, flair as
    CASE_0000..0003, labels 2 -> 1, 1 -> 2, 4 -> 3, region labels and regions_class_order."""
    case_dir, root = Path(case_dir), Path(root)
    key = next(case_dir.glob("*_seg.nii.gz")).name[:-len("_seg.nii.gz")]
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i, m in enumerate(["t1", "t1ce", "t2", "flair"]):
        shutil.copy(case_dir / f"{key}_{m}.nii.gz", root / "imagesTr" / f"{key}_{i:04d}.nii.gz")
    seg = nib.load(str(case_dir / f"{key}_seg.nii.gz"))
    s = np.asanyarray(seg.dataobj)
    new = np.zeros_like(s)
    new[s == 4], new[s == 2], new[s == 1] = 3, 1, 2
    nib.save(nib.Nifti1Image(new, seg.affine, seg.header), str(root / "labelsTr" / f"{key}.nii.gz"))
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"},
        "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]},
        "numTraining": 1, "file_ending": ".nii.gz", "regions_class_order": [1, 2, 3]}))
    return root


def brats_region_dataset(root, cases, shape, seed=3):
    """A Dataset137-like raw dataset of `cases` head phantoms (4 channels, labels 1-3 nested, BraTS's three regions
    and regions_class_order), as nnU-Net's BraTS conversion leaves one."""
    rng = np.random.default_rng(seed)
    data = [(f"BRATS_{i:03d}", (1.0, 1.0, 1.0), *head_case(rng, shape, 4, [1, 2, 3])) for i in range(cases)]
    raw = write_dataset(root, ["T1", "T1ce", "T2", "Flair"],
                        {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}, data)
    dj = json.loads((raw / "dataset.json").read_text())
    dj["regions_class_order"] = [1, 2, 3]
    (raw / "dataset.json").write_text(json.dumps(dj))
    return raw


# nnUNetTrainer.train_step on given batches (tests/oracle/test_nnunet_learning_parity.py, bench/nnunet_train_step.py):
# the trainer from a plans file as nnUNetv2_train makes it (initialize(), the poly rate of epoch 0), its initial weights
# saved for segscale, its own deep-supervision targets made outside the timed step; prints losses and seconds per step.
TRAIN_STEP_PEER = r"""
import json, os, sys, time
import numpy as np, torch
spec = json.load(open(sys.argv[1]))
torch.set_num_threads(spec["threads"])
torch.manual_seed(0)
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
plans = json.load(open(spec["plans"]))
plans["continue_training"] = False  # what nnunetv2.run.run_training.get_trainer_from_args adds
# initialize() infers the dataset class from the preprocessed folder's file endings; the batches come from the caller
pre = os.path.join(os.environ["nnUNet_preprocessed"], plans["dataset_name"], plans["configurations"]["3d_fullres"]["data_identifier"])
os.makedirs(pre, exist_ok=True)
open(os.path.join(pre, "unused.b2nd"), "w").close()
t = nnUNetTrainer(plans, "3d_fullres", 0, json.load(open(spec["dataset_json"])), device=torch.device("cpu"))
t.initialize()
torch.save(t.network.state_dict(), spec["init"])
t.on_train_epoch_start()  # PolyLRScheduler.step(0): the rate of epoch 0
ds = DownsampleSegForDSTransform(ds_scales=t._get_deep_supervision_scales())
losses, seconds = [], []
for b in spec["batches"]:
    x = torch.from_numpy(np.fromfile(b["x"]).reshape(spec["x_shape"])).float()
    y = torch.from_numpy(np.fromfile(b["y"]).reshape(spec["y_shape"])) > 0.5  # bool regions, as ConvertSegmentationToRegionsTransform
    per = [ds(segmentation=y[j])["segmentation"] for j in range(y.shape[0])]
    target = [torch.stack([p[k] for p in per]) for k in range(len(per[0]))]
    t0 = time.perf_counter()
    losses.append(float(t.train_step({"data": x, "target": target})["loss"]))
    seconds.append(time.perf_counter() - t0)
print(json.dumps({"losses": losses, "seconds": seconds, "batch_dice": bool(t.configuration_manager.batch_dice),
                  "lr": t.optimizer.param_groups[0]["lr"], "batch_size": t.batch_size}))
"""


def train_step_parity_run(segscale_bin, train_tool, nnunet_python, tmp, steps, threads, shape, box=(7, 7, 6)):
    """Plans a BraTS-like dataset of `shape` with segscale, writes `steps` batches of normal images and nested region
    targets (dataset.json's order: whole tumor, tumor core, enhancing tumor) at the plan's patch and batch, runs
    nnUNetTrainer.train_step and train_tool nnunet-steps (the nnunet recipe's TrainStep) on them from nnU-Net's
    initial weights. Returns (plan's 3d_fullres configuration, nnU-Net's result, segscale's result)."""
    tmp = Path(tmp)
    raw = brats_region_dataset(tmp / "Dataset137_BraTS21", 4, shape)
    plans = tmp / "pre" / "nnUNetPlans.json"
    subprocess.run([str(segscale_bin), "plan", "--data", str(raw), "--out", str(plans)], check=True, capture_output=True)
    cfg = json.loads(plans.read_text())["configurations"]["3d_fullres"]
    patch, batch = cfg["patch_size"], cfg["batch_size"]
    rng = np.random.default_rng(11)
    batches = []
    for i in range(steps):
        x = rng.standard_normal((batch, 4, *patch))
        lab = np.zeros((batch, *patch), np.int64)
        for j in range(batch):
            c = [rng.integers(2, s - box[k] - 1) for k, s in enumerate(patch)]
            lab[j, c[0]:c[0] + box[0], c[1]:c[1] + box[1], c[2]:c[2] + box[2]] = 1
            lab[j, c[0] + 1:c[0] + box[0] - 2, c[1] + 1:c[1] + box[1] - 1, c[2] + 1:c[2] + box[2] - 1] = 2
            lab[j, c[0] + 2:c[0] + box[0] - 3, c[1] + 2:c[1] + box[1] - 3, c[2] + 2:c[2] + box[2] - 2] = 3
        x.tofile(tmp / f"x{i}")
        np.stack([lab >= 1, lab >= 2, lab >= 3], axis=1).astype(np.float64).tofile(tmp / f"y{i}")
        batches.append({"x": str(tmp / f"x{i}"), "y": str(tmp / f"y{i}")})
    spec = {"plans": str(plans), "dataset_json": str(raw / "dataset.json"), "init": str(tmp / "init.pt"), "batches": batches,
            "x_shape": [batch, 4, *patch], "y_shape": [batch, 3, *patch], "threads": threads}
    (tmp / "peer.json").write_text(json.dumps(spec))
    env = {**os.environ, "nnUNet_compile": "false", "OMP_NUM_THREADS": str(threads), "nnUNet_raw": str(tmp),
           "nnUNet_preprocessed": str(tmp / "preprocessed"), "nnUNet_results": str(tmp / "results")}
    p = subprocess.run([nnunet_python, "-c", TRAIN_STEP_PEER, str(tmp / "peer.json")], capture_output=True, text=True, timeout=1800, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    theirs = json.loads(p.stdout.strip().splitlines()[-1])
    net = {"name": "plainconvunet", "input_channels": 4, "num_classes": 3, "deep_supervision": True, **cfg["architecture"]["arch_kwargs"]}
    (tmp / "ours.json").write_text(json.dumps({"net": net, "init": spec["init"], "lr": 0.01, "batch_dice": theirs["batch_dice"],
                                               "x_shape": spec["x_shape"], "y_shape": spec["y_shape"], "batches": batches, "threads": threads}))
    p = subprocess.run([str(train_tool), "nnunet-steps", str(tmp / "ours.json")], capture_output=True, text=True, timeout=1800,
                       env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    assert p.returncode == 0, p.stderr
    return cfg, theirs, json.loads(p.stdout)
