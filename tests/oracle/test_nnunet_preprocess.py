"""nnU-Net's preprocessing of a case (`segscale apply --plans P`) against DefaultPreprocessor.run_case of nnunetv2
2.8.1 on the same files and plans: the real BraTS 2021 case as nnU-Net's Dataset137 conversion makes it (regions,
z-score inside the nonzero mask, -1 outside it), anisotropic cases nnU-Net transposes (CT and noNorm channels, no
mask), the 2d configuration, an unlabelled case; and the foreground locations its sampler draws from (the same
voxels, drawn by the same RandomState). Images to 1e-5 (nnU-Net sums the z-score's mean in float32, segscale in
float64); segmentations, crops and locations exactly. Cases needing resampling are refused (not implemented)."""
import json
import nibabel as nib
import numpy as np
import pytest

from nnunet_fixtures import dataset137 as convert_dataset137, head_case, oracle, write_dataset


@pytest.fixture(scope="module")
def dataset137(shared_data, tmp_path_factory):
    return convert_dataset137(shared_data / "brats2021-00006", tmp_path_factory.mktemp("raw") / "Dataset137_BraTS2021")


@pytest.fixture(scope="module")
def aniso(tmp_path_factory):
    """Three cases at one anisotropic spacing, coarse along NIfTI x (nnU-Net transposes it to the front)."""
    rng = np.random.default_rng(5)
    cases = []
    for i, shape in enumerate([(14, 60, 56), (12, 58, 62), (16, 64, 60)]):
        chans, lab = head_case(rng, shape, 2, [1, 2], margin=(1, 2, 2))
        cases.append((f"ct_{i}", (4.0, 0.8, 0.8), chans, lab))
    return write_dataset(tmp_path_factory.mktemp("raw") / "Dataset504_Aniso", ["CT", "noNorm"],
                         {"background": 0, "liver": 1, "tumour": 2}, cases)


def planned(run, ds, tmp_path):
    run("plan", "--data", ds, "--out", tmp_path / "pre" / "nnUNetPlans.json", check_rc=0)
    return tmp_path / "pre" / "nnUNetPlans.json"


def compare(run, py, plans, ds, key, tmp_path, configuration="3d_fullres", labelled=True):
    images = sorted((ds / "imagesTr").glob(f"{key}_*.nii.gz"))
    label = ds / "labelsTr" / f"{key}.nii.gz"
    ours = tmp_path / f"ours_{configuration}_{labelled}"
    ours.mkdir()
    for name in ("image_0000.npy", "label_0000.npy"):
        np.save(ours / name, np.full((2, 2), 7, np.float32))  # poison: the command must replace them
    args = ["--label", label] if labelled else []
    run("apply", "--image", ",".join(map(str, images)), *args, "--plans", plans, "--configuration", configuration, "--out", ours, check_rc=0)
    theirs = tmp_path / f"theirs_{configuration}_{labelled}"
    oracle(py, "preprocess", plans, ds / "dataset.json", configuration, theirs, label if labelled else "-", *images)
    data, ref = np.load(ours / "image_0000.npy"), np.load(theirs / "data.npy")
    assert data.shape == ref.shape and data.dtype == np.float32
    np.testing.assert_allclose(data, ref, rtol=1e-5, atol=1e-5)
    meta = json.loads((ours / "meta.json").read_text())
    props = json.loads((theirs / "properties.json").read_text())
    for k in ("shape_before_cropping", "bbox_used_for_cropping", "shape_after_cropping_and_before_resampling"):
        assert meta["properties"][k] == props[k], k
    assert meta["properties"]["spacing"] == pytest.approx(props["spacing"])
    if labelled:
        seg, ref_seg = np.load(ours / "label_0000.npy"), np.load(theirs / "seg.npy")
        assert seg.dtype == np.int16 and np.array_equal(seg, ref_seg)
        assert [c["class"] for c in meta["class_locations"]] == props["class_locations"]
        for i, c in enumerate(meta["class_locations"]):
            assert np.array_equal(np.load(ours / c["file"]), np.load(theirs / f"class_locations_{i}.npy")), c
    else:
        assert not (ours / "label_0000.npy").exists() or np.load(ours / "label_0000.npy").shape == (2, 2)
    return data, meta


def test_real_brats_case_equals_nnunets(run, dataset137, nnunet_python, tmp_path):
    plans = planned(run, dataset137, tmp_path)
    data, meta = compare(run, nnunet_python, plans, dataset137, "BraTS2021_00006", tmp_path)
    assert data.shape[0] == 4 and meta["properties"]["shape_before_cropping"] == [155, 240, 240]
    assert len(meta["class_locations"]) == 3 and all(c["count"] > 0 for c in meta["class_locations"])
    compare(run, nnunet_python, plans, dataset137, "BraTS2021_00006", tmp_path, labelled=False)


def test_transposed_ct_and_nonorm_channels_equal_nnunets(run, aniso, nnunet_python, tmp_path):
    plans = planned(run, aniso, tmp_path)
    p = json.loads(plans.read_text())
    assert p["transpose_forward"] == [2, 0, 1] and p["configurations"]["3d_fullres"]["normalization_schemes"] == [
        "CTNormalization", "NoNormalization"]
    for key in ("ct_0", "ct_2"):
        (tmp_path / key).mkdir()
        compare(run, nnunet_python, plans, aniso, key, tmp_path / key)
    compare(run, nnunet_python, plans, aniso, "ct_1", tmp_path, configuration="2d")


def test_a_case_that_needs_resampling_is_refused_naming_it(run, aniso, tmp_path):
    plans = planned(run, aniso, tmp_path)
    moved = tmp_path / "moved"
    moved.mkdir()
    for i in range(2):
        a = nib.load(str(aniso / "imagesTr" / f"ct_0_{i:04d}.nii.gz"))
        nib.save(nib.Nifti1Image(np.asanyarray(a.dataobj), np.diag([2.0, 0.8, 0.8, 1.0])), str(moved / f"x_{i:04d}.nii.gz"))
    p = run("apply", "--image", f"{moved / 'x_0000.nii.gz'},{moved / 'x_0001.nii.gz'}", "--plans", plans, "--out", tmp_path / "o", check_rc=1)
    assert "x_0000.nii.gz" in p.stderr and "resampl" in p.stderr and "plan's 4 x 0.8 x 0.8 mm" in p.stderr, p.stderr
    assert not (tmp_path / "o").exists()  # nothing written for a refused case
    p = run("apply", "--image", aniso / "imagesTr" / "ct_0_0000.nii.gz", "--plans", plans, "--out", tmp_path / "o", check_rc=1)
    assert "ct_0_0000.nii.gz: holds 1 volume(s) where 2 channels were expected" in p.stderr, p.stderr
    p = run("apply", "--image", aniso / "imagesTr" / "ct_0_0000.nii.gz", "--plans", plans, "--pipeline", "monai-brats", "--out", tmp_path / "o",
            check_rc=2)
    assert "--pipeline must be nnunet" in p.stderr, p.stderr


def test_apply_plans_errors_name_the_file_and_write_nothing(run, aniso, tmp_path):
    plans = planned(run, aniso, tmp_path)
    images = f"{aniso / 'imagesTr' / 'ct_0_0000.nii.gz'},{aniso / 'imagesTr' / 'ct_0_0001.nii.gz'}"
    lonely = tmp_path / "lonely" / "nnUNetPlans.json"  # a plans file without its dataset.json
    lonely.parent.mkdir()
    lonely.write_text(plans.read_text())
    p = run("apply", "--image", images, "--plans", lonely, "--out", tmp_path / "o", check_rc=2)
    assert "dataset.json" in p.stderr and "--dataset-json" in p.stderr, p.stderr
    p = run("apply", "--image", images, "--plans", plans, "--configuration", "3d_lowres", "--out", tmp_path / "o", check_rc=1)
    assert "nnUNetPlans.json" in p.stderr and "3d_lowres" in p.stderr, p.stderr
    bad = tmp_path / "pre" / "bad.json"
    bad.write_text('{"configurations": {"3d_fullres": {"spacing": [1, 1, 1]}}}')
    p = run("apply", "--image", images, "--plans", bad, "--out", tmp_path / "o", check_rc=1)
    assert "bad.json" in p.stderr and "not an nnU-Net plans file" in p.stderr, p.stderr
    other = aniso / "labelsTr" / "ct_1.nii.gz"  # another case's label: another grid
    p = run("apply", "--image", images, "--label", other, "--plans", plans, "--out", tmp_path / "o", check_rc=1)
    assert "ct_1.nii.gz" in p.stderr and "grid" in p.stderr, p.stderr
    p = run("apply", "--image", images, "--plans", plans, "--copies", 2, "--out", tmp_path / "o", check_rc=2)
    assert "--copies" in p.stderr, p.stderr
    assert not (tmp_path / "o").exists()
