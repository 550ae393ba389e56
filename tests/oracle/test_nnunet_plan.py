"""`segscale plan` against nnU-Net 2.8.1 itself (nnUNetv2_extract_fingerprint, then ExperimentPlanner's
plan_experiment): the fingerprint and the whole nnUNetPlans.json equal nnU-Net's, on datasets read from their images
(BraTS-like regions, mixed anisotropic spacings with a transposed axis and CT/noNorm channels, a case large enough
for the VRAM shrink loop) and on fingerprints alone (many medians and spacings, among them the spec's BraTS worked
example; 3d_lowres and cascade configurations); and nnU-Net builds its networks from segscale's plans file.
The oracle runs in its own venv (scripts/nnunet_oracle_env.sh): NNUNET_PYTHON names its python."""
import json
import math

import numpy as np
import pytest

from nnunet_fixtures import head_case, oracle, write_dataset

@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return make_raw(tmp_path_factory.mktemp("nnUNet_raw"))


def make_raw(root):
    rng = np.random.default_rng(7)
    brats = []
    for i, shape in enumerate([(40, 44, 30), (42, 40, 32), (38, 46, 28)]):
        chans, lab = head_case(rng, shape, 4, [1, 2, 3])
        brats.append((f"BraTS_{i:03d}", (1.0, 1.0, 1.0), chans, lab))
    write_dataset(root / "Dataset501_BraTSLike", ["T1", "T1ce", "T2", "Flair"],
                  {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}, brats)
    # Mixed spacings: the coarse axis is NIfTI's x, so nnU-Net transposes it first; its 10th percentile rule fires.
    mixed = []
    for i, (sx, syz, shape) in enumerate([(3.0, 0.7, (18, 96, 90)), (4.0, 0.8, (16, 88, 94)), (5.0, 0.75, (14, 100, 84)),
                                          (3.5, 0.7, (20, 92, 96)), (6.0, 0.8, (12, 90, 88))]):
        chans, lab = head_case(rng, shape, 2, [1, 2], margin=(1, 2, 2))
        mixed.append((f"liver_{i}", (sx, syz, syz), chans, lab))
    write_dataset(root / "Dataset502_Mixed", ["CT", "noNorm"], {"background": 0, "liver": 1, "tumour": 2}, mixed)
    large = []
    for i, shape in enumerate([(262, 250, 236), (250, 262, 240)]):
        chans, lab = head_case(rng, shape, 1, [1], margin=(6, 5, 4))
        large.append((f"big_{i}", (1.0, 1.0, 1.0), chans, lab))
    write_dataset(root / "Dataset503_Large", ["MRI"], {"background": 0, "lesion": 1}, large)
    return root


def assert_same(ours, theirs, path="", rel=0.0):
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), f"{path}: keys {list(ours)} != {list(theirs)}"
        for k in theirs:
            assert_same(ours[k], theirs[k], f"{path}.{k}", rel)
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours} != {theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{path}[{i}]", rel)
    elif isinstance(theirs, float) and rel:
        assert math.isclose(ours, theirs, rel_tol=rel, abs_tol=1e-9), f"{path}: {ours} != {theirs}"
    else:
        assert ours == theirs and type(ours) is type(theirs) or (isinstance(theirs, (int, float)) and not isinstance(theirs, bool)
                                                                 and ours == theirs), f"{path}: {ours!r} != {theirs!r}"


def intensity_free(j):
    return {k: v for k, v in j.items() if k != "foreground_intensity_properties_per_channel"}


DATASETS = ["Dataset501_BraTSLike", "Dataset502_Mixed", "Dataset503_Large"]


@pytest.fixture(scope="module")
def nnunet_plans(raw, tmp_path_factory, nnunet_python):
    out = tmp_path_factory.mktemp("nnUNet_preprocessed")
    oracle(nnunet_python, "plan", raw, out, *DATASETS)
    return out


@pytest.mark.parametrize("name", DATASETS)
def test_plan_from_the_images_equals_nnunets(run, raw, nnunet_plans, tmp_path, name):
    run("plan", "--data", raw / name, "--out", tmp_path / "nnUNetPlans.json", check_rc=0)
    ours_fp = json.loads((tmp_path / "dataset_fingerprint.json").read_text())
    theirs_fp = json.loads((nnunet_plans / name / "dataset_fingerprint.json").read_text())
    # Spacings, crops and the median share the crop keeps: exact. Intensity statistics of the 1e8 drawn foreground
    # voxels (the same draws): nnU-Net sums them in float32, segscale in float64, hence 1e-5.
    assert_same(intensity_free(ours_fp), intensity_free(theirs_fp))
    assert_same(ours_fp["foreground_intensity_properties_per_channel"], theirs_fp["foreground_intensity_properties_per_channel"], rel=1e-5)
    ours = json.loads((tmp_path / "nnUNetPlans.json").read_text())
    theirs = json.loads((nnunet_plans / name / "nnUNetPlans.json").read_text())
    assert_same(intensity_free(ours), intensity_free(theirs))
    assert_same(ours["foreground_intensity_properties_per_channel"], theirs["foreground_intensity_properties_per_channel"], rel=1e-5)
    if name == "Dataset502_Mixed":
        assert theirs["transpose_forward"] == [2, 0, 1]  # the dataset does what it is there for
    if name == "Dataset503_Large":  # the VRAM estimate shrank the patch below the median case
        c = theirs["configurations"]["3d_fullres"]
        assert all(p < m for p, m in zip(c["patch_size"], c["median_image_size_in_voxels"])), c


def random_fingerprints(n, seed):
    """Fingerprints as nnU-Net writes them, over the range of real datasets: isotropic and anisotropic spacings on any
    axis, medians from tiny to whole-body, a few cases to many."""
    rng = np.random.default_rng(seed)
    fps = [{"spacings": [[1.0, 1.0, 1.0]] * 5, "shapes_after_crop": [[140, 172, 136]] * 5},  # the spec's BraTS example
           {"spacings": [[1.0, 1.0, 1.0]] * 3, "shapes_after_crop": [[400, 380, 360], [390, 400, 350], [420, 380, 370]]},
           {"spacings": [[2.5, 0.8, 0.8], [2.0, 0.7, 0.7], [5.0, 0.9, 0.9], [2.5, 0.75, 0.75]],
            "shapes_after_crop": [[120, 512, 512], [140, 480, 480], [60, 512, 512], [110, 500, 500]]}]
    for _ in range(n):
        cases = int(rng.integers(1, 9))
        base = rng.choice([0.5, 0.7, 0.8, 1.0, 1.5])
        aniso = rng.choice([1.0, 1.0, 2.5, 4.0, 7.0])
        axis = int(rng.integers(0, 3))
        spacings, shapes = [], []
        for _ in range(cases):
            sp = [float(base * rng.choice([1.0, 0.9, 1.1]))] * 3
            sp[axis] = float(sp[axis] * aniso * rng.choice([1.0, 0.8, 1.3]))
            shape = [int(rng.integers(24, 420)) for _ in range(3)]
            shape[axis] = max(4, int(shape[axis] / aniso))
            spacings.append(sp)
            shapes.append(shape)
        fps.append({"spacings": spacings, "shapes_after_crop": shapes})
    for fp in fps:
        fp["foreground_intensity_properties_per_channel"] = {
            "0": {"mean": 1.5, "median": 1.0, "std": 2.0, "min": 0.0, "max": 9.0, "percentile_99_5": 8.0, "percentile_00_5": 0.5}}
        fp["median_relative_size_after_cropping"] = float(rng.choice([0.4, 0.9]))
    return fps


def test_plan_from_fingerprints_equals_nnunets(run, tmp_path, nnunet_python):
    """The planner alone on 19 fingerprints: every configuration (2d, 3d_fullres, 3d_lowres, cascade), patch, shrink
    loop, batch, topology and transpose equal nnU-Net's, key for key."""
    raw, pre = tmp_path / "raw", tmp_path / "pre"
    rng = np.random.default_rng(3)
    items = []
    for i, fp in enumerate(random_fingerprints(16, 11)):
        name = f"Dataset{600 + i}_Fp"
        cases = [(f"c{k}", (1.0, 1.0, 1.0), [np.ones((4, 4, 4))], np.ones((4, 4, 4))) for k in range(int(rng.integers(1, 40)))]
        write_dataset(raw / name, ["MR"], {"background": 0, "a": 1, "b": 2}, cases)
        (tmp_path / f"{name}.json").write_text(json.dumps(fp, sort_keys=True))  # as nnU-Net saves it
        items.append((name, tmp_path / f"{name}.json"))
    oracle(nnunet_python, "plan", raw, pre, *[f"{n}={f}" for n, f in items])
    seen = set()
    for name, fp in items:
        p = run("plan", "--data", raw / name, "--fingerprint", fp, "--json", check_rc=0)
        theirs = json.loads((pre / name / "nnUNetPlans.json").read_text())
        assert_same(json.loads(p.stdout), theirs, name)
        seen |= set(theirs["configurations"])
        seen.add(tuple(theirs["transpose_forward"]))
    assert {"3d_lowres", "3d_cascade_fullres", (1, 0, 2), (2, 0, 1)} <= seen, seen  # the fingerprints reached those paths
    example = json.loads((pre / "Dataset600_Fp" / "nnUNetPlans.json").read_text())["configurations"]["3d_fullres"]
    assert example["patch_size"] == [128, 160, 112]  # spec section 2, worked example


def test_nnunet_builds_its_networks_from_segscales_plans(run, raw, tmp_path, nnunet_python):
    name = "Dataset503_Large"
    run("plan", "--data", raw / name, "--out", tmp_path / "nnUNetPlans.json", check_rc=0)
    got = json.loads(oracle(nnunet_python, "use-plans", tmp_path / "nnUNetPlans.json", raw / name / "dataset.json").strip().splitlines()[-1])
    plans = json.loads((tmp_path / "nnUNetPlans.json").read_text())
    assert got["label_manager"] == {"has_regions": False, "heads": 2}
    for c in ("2d", "3d_fullres"):
        assert got[c]["patch_size"] == plans["configurations"][c]["patch_size"] and got[c]["parameters"] > 1_000_000


def test_plan_view_of_a_plans_file_and_its_errors(run, raw, tmp_path):
    name = "Dataset501_BraTSLike"
    run("plan", "--data", raw / name, "--out", tmp_path / "p" / "nnUNetPlans.json", check_rc=0)
    text = run("plan", "--plans", tmp_path / "p" / "nnUNetPlans.json", check_rc=0).stdout
    plans = json.loads((tmp_path / "p" / "nnUNetPlans.json").read_text())
    c = plans["configurations"]["3d_fullres"]
    assert f"patch               {'x'.join(map(str, c['patch_size']))}" in text, text
    assert "DynUNet strides     " + json.dumps(c["architecture"]["arch_kwargs"]["strides"]).replace(" ", "") in text.replace(", ", ","), text
    assert (tmp_path / "p" / "dataset.json").exists()  # nnU-Net's preprocessed folder holds the dataset.json too
    p = run("plan", "--plans", tmp_path / "p" / "nnUNetPlans.json", "--configuration", "3d_lowres", check_rc=1)
    assert "3d_lowres" in p.stderr and "2d, 3d_fullres" in p.stderr, p.stderr
    (tmp_path / "bad.json").write_text('{"configurations": {"3d_fullres": {}}}')
    p = run("plan", "--plans", tmp_path / "bad.json", check_rc=1)
    assert "bad.json" in p.stderr and "not an nnU-Net plans file" in p.stderr, p.stderr
    (tmp_path / "fp.json").write_text('{"spacings": []}')
    p = run("plan", "--data", raw / name, "--fingerprint", tmp_path / "fp.json", check_rc=1)
    assert "fp.json" in p.stderr and "fingerprint" in p.stderr, p.stderr
    p = run("plan", check_rc=2)
    assert "--data" in p.stderr, p.stderr
