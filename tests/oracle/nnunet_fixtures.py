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
