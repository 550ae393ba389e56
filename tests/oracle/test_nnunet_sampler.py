"""nnU-Net's patch sampler (loader/nnunet_sampler.h, through tests/tools/nnunet_sampler_tool) against nnunetv2 2.8.1's
nnUNetDataLoader after the same np.random.seed: the same cases per batch, the same forced-foreground slots, the
same boxes (random ones, foreground-centred ones, cases smaller than the patch, classes without voxels, a case
without foreground falling back to a random box), and the same padded images and segmentations, bit for bit,
over many batches; and the forced slot's rate per batch position equals nnU-Net's rule for B = 1..8."""
import json
import subprocess

import numpy as np
import pytest

from nnunet_fixtures import oracle


def spec(seed, batch_size, patch, final, shapes, rng):
    cases = []
    for shape in shapes:
        locs = []
        for k in range(3):
            n = int(rng.integers(0, 40)) if k != 1 else 0  # class 2 never has voxels
            locs.append([[0, *(int(rng.integers(0, s)) for s in shape)] for _ in range(n)])
        cases.append({"shape": list(shape), "class_locations": locs})
    cases.append({"shape": [9, 30, 11], "class_locations": [[], [], []]})  # no foreground at all
    return {"seed": seed, "batches": 12, "batch_size": batch_size, "patch_size": patch, "final_patch_size": final, "channels": 2,
            "cases": cases}


@pytest.mark.parametrize("seed,batch_size", [(0, 2), (1234, 3), (7, 5)])
def test_sampler_equals_nnunets_draw_for_draw(tmp_path, nnunet_python, sampler_tool, seed, batch_size):
    rng = np.random.default_rng(seed)
    shapes = [(30, 34, 26), (12, 40, 20), (25, 15, 40), (40, 41, 39)]
    s = spec(seed, batch_size, [20, 24, 18], [12, 16, 10], shapes, rng)
    (tmp_path / "spec.json").write_text(json.dumps(s))
    subprocess.run([sampler_tool, tmp_path / "spec.json", tmp_path / "ours"], check=True)
    oracle(nnunet_python, "sampler", tmp_path / "spec.json", tmp_path / "theirs")
    ours, theirs = (json.loads((tmp_path / d / "boxes.json").read_text()) for d in ("ours", "theirs"))
    assert ours == theirs
    assert any(slot["forced"] for b in theirs for slot in b) and any(slot["case"] == len(shapes) for b in theirs for slot in b)
    for name in ("image.npy", "seg.npy"):
        a, b = np.load(tmp_path / "ours" / name), np.load(tmp_path / "theirs" / name)
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name
    assert (np.load(tmp_path / "ours" / "seg.npy") == -1).any()  # some box reached past a border: padded with -1


def test_forced_slots_per_batch_position_follow_nnunets_rule(sampler_tool, tmp_path):
    """nnU-Net: slot j of B is forced iff j >= round(B * 0.67) (Python's rounding). The tool's forced flags for
    B = 1..8 equal that, slot by slot."""
    for b in range(1, 9):
        s = {"seed": 3, "batches": 1, "batch_size": b, "patch_size": [4, 4, 4], "final_patch_size": [4, 4, 4], "channels": 1,
             "cases": [{"shape": [8, 8, 8], "class_locations": [[[0, 4, 4, 4]]]}]}
        (tmp_path / "s.json").write_text(json.dumps(s))
        subprocess.run([sampler_tool, tmp_path / "s.json", tmp_path / f"o{b}"], check=True)
        got = [slot["forced"] for slot in json.loads((tmp_path / f"o{b}" / "boxes.json").read_text())[0]]
        assert got == [not (j < round(b * (1 - 0.33))) for j in range(b)], b


def test_initial_patch_size_equals_nnunets(sampler_tool, nnunet_python):
    """get_patch_size(final, ±30° on every axis, (0.85, 1.25)): the loader's enlarged patch. The spec's examples are
    among them: (128, 160, 112) -> (224, 228, 189), (128, 128, 128) -> (205, 205, 205)."""
    patches = [(128, 160, 112), (128, 128, 128), (20, 24, 17), (64, 192, 160), (40, 224, 192), (7, 9, 11)]
    code = ("import json, numpy as np\n"
            "from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size\n"
            "r = (-30. / 360 * 2. * np.pi, 30. / 360 * 2. * np.pi)\n"
            f"print(json.dumps([get_patch_size(p, r, r, r, (0.85, 1.25)).tolist() for p in {patches!r}]))")
    theirs = json.loads(subprocess.run([nnunet_python, "-c", code], capture_output=True, text=True, check=True).stdout)
    ours = [json.loads(subprocess.run([sampler_tool, "--initial-patch", *map(str, p)], capture_output=True, text=True, check=True).stdout)
            for p in patches]
    assert ours == theirs and theirs[0] == [224, 228, 189] and theirs[1] == [205, 205, 205]


@pytest.mark.parametrize("n,fold", [(5, 0), (7, 3), (23, 4), (484, 2), (484, 5), (12, 9)])
def test_cross_validation_folds_equal_nnunets(sampler_tool, nnunet_python, tmp_path, n, fold):
    """train/split.h's folds against nnunetv2's generate_crossval_split (sklearn KFold, seed 12345) of the same keys,
    and a fold past the five against nnUNetTrainer.do_split's random 80:20 rule; keys given unsorted."""
    keys = [f"BraTS2021_{i * 7919 % 100000:05d}" for i in range(n)][::-1]
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    theirs = json.loads(oracle(nnunet_python, "folds", tmp_path / "keys.json", fold))
    ours = json.loads(subprocess.run([sampler_tool, "--folds", tmp_path / "keys.json", str(fold)], capture_output=True, text=True,
                                     check=True).stdout)
    assert ours == theirs
