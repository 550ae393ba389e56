"""Issue 28, item 1: nnU-Net v2's raw dataset layout wherever segscale takes a dataset. The fixture is what
nnU-Net's own BraTS conversion (nnunetv2 2.8.1, dataset_conversion/Dataset137_BraTS21.py; spec section 3) makes of
BraTS 2021 case folders: channels t1, t1ce, t2, flair as CASE_0000..0003, labels remapped 2 -> 1, 1 -> 2, 4 -> 3, and
its dataset.json (channel_names, region labels, regions_class_order, file_ending)."""
import json
import subprocess

import pytest

from conftest import one_line_error, synth

PY = "/usr/bin/python3"
CHANNELS = ["t1", "t1ce", "t2", "flair"]  # Dataset137's order


def dataset137(src, dst):
    subprocess.run([PY, "-c", f"""
import json, nibabel as nib, numpy as np
from pathlib import Path
src, dst = Path({str(src)!r}), Path({str(dst)!r})
for d in ("imagesTr", "labelsTr"):
    (dst / d).mkdir(parents=True)
cases = sorted(p for p in src.iterdir() if p.is_dir())
for case in cases:
    for i, m in enumerate({CHANNELS!r}):
        img = nib.load(str(case / f"{{case.name}}_{{m}}.nii.gz"))
        nib.save(img, str(dst / "imagesTr" / f"{{case.name}}_{{i:04d}}.nii.gz"))
    seg = nib.load(str(case / f"{{case.name}}_seg.nii.gz"))
    s = np.asanyarray(seg.dataobj)
    new = np.zeros_like(s)
    new[s == 4] = 3
    new[s == 2] = 1
    new[s == 1] = 2
    nib.save(nib.Nifti1Image(new, seg.affine, seg.header), str(dst / "labelsTr" / f"{{case.name}}.nii.gz"))
json.dump({{"channel_names": {{"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"}},
           "labels": {{"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}},
           "numTraining": len(cases), "file_ending": ".nii.gz", "regions_class_order": [1, 2, 3]}},
          open(dst / "dataset.json", "w"), indent=1)
"""], check=True, capture_output=True)
    return dst


@pytest.fixture(scope="module")
def brats(tmp_path_factory, segscale_bin):
    return synth(segscale_bin, tmp_path_factory.mktemp("b21"), 3, (32, 32, 24), 8, layout="brats21")


@pytest.fixture(scope="module")
def nnunet(tmp_path_factory, brats):
    return dataset137(brats, tmp_path_factory.mktemp("raw") / "Dataset137_BraTS2021")


def test_inspect_reads_the_layout_channels_and_region_labels(run, nnunet):
    j = json.loads(run("inspect", nnunet, "--json", check_rc=0).stdout)
    assert j["layout"] == "nnunet" and j["training_cases"] == 3 and j["modalities"] == ["T1", "T1ce", "T2", "Flair"]
    assert j["label_map"]["preset"] == "msd"  # WT={1,2,3} TC={2,3} ET={3}: MSD's numbering, as nnU-Net's BraTS conversion makes it


def test_a_case_reads_as_the_same_case_in_brats_folders(run, brats, nnunet, tmp_path):
    """The same case through both layouts, the same draws (same key and seed): identical images and TC/WT/ET."""
    key = sorted(p.name for p in brats.iterdir() if p.is_dir())[0]
    run("apply", "--image", ",".join(str(nnunet / "imagesTr" / f"{key}_{i:04d}.nii.gz") for i in range(4)),
        "--label", nnunet / "labelsTr" / f"{key}.nii.gz", "--key", key, "--seed", 3, "--out", tmp_path / "n", check_rc=0)
    run("apply", "--image", ",".join(str(brats / key / f"{key}_{m}.nii.gz") for m in CHANNELS),
        "--label", brats / key / f"{key}_seg.nii.gz", "--key", key, "--seed", 3, "--out", tmp_path / "b", check_rc=0)
    n, b = (json.loads((tmp_path / d / "meta.json").read_text()) for d in ("n", "b"))
    assert n["pipeline"]["label_map"] == "msd" and b["pipeline"]["label_map"] == "brats21"
    for f in ("image_0000.npy", "label_0000.npy"):
        assert (tmp_path / "n" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_prep_and_train_take_it(run, torch_build, nnunet, tmp_path):
    p = run("prep", "--data", nnunet, "--out", tmp_path / "st", "--cache", "--quiet", check_rc=0)
    assert "label map msd" in p.stdout and "nnU-Net dataset.json nnU-Net regions" in p.stdout, p.stdout
    m = json.loads((tmp_path / "st" / "manifest.json").read_text())["settings"]
    assert m["dataset"] == {"layout": "nnunet", "modalities": ["T1", "T1ce", "T2", "Flair"]} and len(m["cases"]) == 3
    pipe = tmp_path / "pipe.json"
    pipe.write_text(json.dumps({"transforms": [{"type": "spacing"}, {"type": "orientation"},
                                               {"type": "rand_spatial_crop", "roi": [16, 16, 8]}, {"type": "normalize_intensity"}]}))
    run("train", "--data", nnunet, "--pipeline", pipe, "--out", tmp_path / "r", "--channels", "4,8,16", "--strides", "2,2",
        "--max-steps", 1, "--val-fraction", 0, "--threads", 1, "--quiet", check_rc=0)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["label_map"] == "msd"
    # plan reads it; infer segments its imagesTs cases (here one training case's channels, unlabelled).
    assert "target spacing" in run("plan", "--data", nnunet, check_rc=0).stdout.lower()
    import shutil
    ds = tmp_path / "Dataset137_copy"
    shutil.copytree(nnunet, ds)
    (ds / "imagesTs").mkdir()
    for f in sorted((ds / "imagesTr").glob("*.nii.gz"))[:4]:
        shutil.copy(f, ds / "imagesTs" / f.name.replace("BraTS2021", "Test"))
    j = json.loads(run("inspect", ds, "--json", check_rc=0).stdout)
    assert j["test_cases"] == 1
    run("infer", "--model", tmp_path / "r" / "last.pt", "--data", ds, "--out-dir", tmp_path / "pred", "--quiet", check_rc=0)
    assert (tmp_path / "pred" / "Test_00000.nii.gz").exists()  # with the training cases, as infer --data does


def rewrite(nnunet, tmp_path, change):
    import shutil
    ds = tmp_path / "Dataset999_Bad"
    shutil.copytree(nnunet, ds)
    j = json.loads((ds / "dataset.json").read_text())
    change(ds, j)
    (ds / "dataset.json").write_text(json.dumps(j))
    return ds


@pytest.mark.parametrize("change, expect", [
    (lambda ds, j: j.update(numTraining=5), "numTraining is 5 but labelsTr holds 3 label files"),
    (lambda ds, j: j.update(labels={"background": 0, "liver": 1, "tumour": 2}), "labels liver, tumour do not name BraTS's tumour regions"),
    (lambda ds, j: j["channel_names"].pop("1"), "channel_names: channel 1 is missing"),
    (lambda ds, j: j.update(file_ending=".mha"), "file_ending \".mha\": segscale reads NIfTI"),
    (lambda ds, j: next((ds / "imagesTr").glob("*_0002.nii.gz")).unlink(), "_0002.nii.gz does not exist"),
])
def test_broken_datasets_are_refused_naming_the_file(run, nnunet, tmp_path, change, expect):
    ds = rewrite(nnunet, tmp_path, change)
    line = one_line_error(run("inspect", ds), 1)
    assert expect in line, line
    assert "dataset.json" in line or "channel file" in line, line
