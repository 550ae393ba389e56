"""Issue 29 items 4-5: a run of segscale's nnunet recipe predicts as nnU-Net does, nnU-Net predicts from what
segscale exports, and segscale predicts from an nnU-Net results folder (two folds: nnU-Net's ensemble) as nnU-Net does. A run trained briefly by `segscale train --recipe nnunet` (plan, prep --plans, train) is exported with
`segscale export --format nnunet` as an nnU-Net results folder; nnunetv2 2.8.1's own nnUNetPredictor
(initialize_from_trained_model_folder, predict_from_files: its reader, preprocessing, sliding window with Gaussian and
mirroring, sigmoid, regions_class_order, crop reverted) loads that folder and segments the raw cases; `segscale infer`
segments the same files with the run itself. The label maps must be equal: the logits are nnU-Net's bit for bit
(tests/oracle/test_nnunet_predict.py) on the same float32 network, so only a logit exactly at the threshold could
differ, and none does on these cases."""
import json
import os
import subprocess

import nibabel as nib
import numpy as np
import pytest

from nnunet_fixtures import brats_region_dataset

SEGSCALE = os.environ.get("SEGSCALE_BIN")

PREDICT = """
import sys, torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
res, folds, out, files = sys.argv[1], tuple(int(f) for f in sys.argv[2].split(",")), sys.argv[3], sys.argv[4:]
torch.set_num_threads(1)
p = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True, perform_everything_on_device=False,
                    device=torch.device("cpu"), verbose=False, verbose_preprocessing=False, allow_tqdm=False)
p.initialize_from_trained_model_folder(res, use_folds=folds, checkpoint_name="checkpoint_final.pth")
p.predict_from_files([files], [out], save_probabilities=False, overwrite=True, num_processes_preprocessing=1,
                     num_processes_segmentation_export=1)
"""


def segscale(*args):
    p = subprocess.run([SEGSCALE, *map(str, args)], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if not SEGSCALE or not os.path.exists(SEGSCALE):
        pytest.fail("SEGSCALE_BIN is not set to a built binary")
    root = tmp_path_factory.mktemp("interchange")
    raw = brats_region_dataset(root / "Dataset137_BraTS21", 5, (30, 28, 22))
    plans = root / "pre" / "nnUNetPlans.json"
    segscale("plan", "--data", raw, "--out", plans)
    segscale("prep", "--plans", plans, "--data", raw, "--out", root / "store", "--quiet")
    runs = []
    for fold in (0, 1):
        run = root / f"run{fold}"
        segscale("train", "--store", root / "store", "--out", run, "--recipe", "nnunet", "--fold", fold, "--max-steps", 3, "--steps-per-epoch", 3,
                 "--val-steps", 1, "--threads", 1, "--loader-threads", 1, "--quiet")
        runs.append(run)
    return raw, runs


def nnunet_predict(nnunet_python, res, folds, files, out):
    p = subprocess.run([nnunet_python, "-c", PREDICT, res, folds, out, *files], capture_output=True, text=True, timeout=900,
                       env={**os.environ, "nnUNet_compile": "false", "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    return out.parent / (out.name + ".nii.gz")


def compare(ours, theirs, what):
    a, b = nib.load(str(ours)), nib.load(str(theirs))
    assert a.shape == b.shape and np.allclose(a.affine, b.affine), what
    x, y = np.asarray(a.dataobj), np.asarray(b.dataobj)
    differ = int((x != y).sum())
    assert differ == 0, f"{what}: {differ} of {x.size} voxels differ; labels ours {np.unique(x)} nnU-Net's {np.unique(y)}"
    return int((y > 0).sum())


def test_nnunet_predicts_from_segscales_export_what_segscale_infer_predicts(nnunet_python, trained, tmp_path):
    raw, runs = trained
    res = tmp_path / "nnUNet_results" / "Dataset137_BraTS21" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    segscale("export", runs[0], "--format", "nnunet", "--out", res, "--weights", "last.pt", "--python", nnunet_python)
    compared = 0
    for key in ("BRATS_000", "BRATS_003"):
        files = [raw / "imagesTr" / f"{key}_{i:04d}.nii.gz" for i in range(4)]
        ours = tmp_path / f"ours_{key}.nii.gz"
        segscale("infer", "--model", runs[0] / "last.pt", "--image", ",".join(map(str, files)), "--out", ours, "--threads", 1)
        compared += compare(ours, nnunet_predict(nnunet_python, res, "0", files, tmp_path / f"nnunet_{key}"), key)
    print(f"foreground voxels compared: {compared}")


def test_segscale_predicts_from_an_nnunet_results_folder_as_nnunet_with_its_fold_ensemble(nnunet_python, trained, tmp_path):
    # Two folds in one results folder: nnUNetPredictor averages their float16 logits; segscale infer --model FOLDER finds
    # both folds and averages the same way.
    raw, runs = trained
    res = tmp_path / "results" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    for run in runs:
        segscale("export", run, "--format", "nnunet", "--out", res, "--weights", "last.pt", "--python", nnunet_python)
    assert sorted(p.name for p in res.glob("fold_*")) == ["fold_0", "fold_1"]
    files = [raw / "imagesTr" / f"BRATS_004_{i:04d}.nii.gz" for i in range(4)]
    ours = tmp_path / "ours.nii.gz"
    p = segscale("infer", "--model", res, "--image", ",".join(map(str, files)), "--out", ours, "--threads", 1)
    assert "folds 0, 1" in p.stderr, p.stderr
    n = compare(ours, nnunet_predict(nnunet_python, res, "0,1", files, tmp_path / "nnunet"), "ensemble")
    single = tmp_path / "single.nii.gz"
    segscale("infer", "--model", res, "--folds", "1", "--image", ",".join(map(str, files)), "--out", single, "--threads", 1)
    compare(single, nnunet_predict(nnunet_python, res, "1", files, tmp_path / "nnunet1"), "fold 1")
    print(f"foreground voxels compared: {n}")
