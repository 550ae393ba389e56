"""The recipes' data path on the command line: `--pipeline NAME` presets in apply and prep, several samples
per copy in apply, `segscale plan` (nnU-Net's rule on a dataset's headers), and their one-line errors."""
import json

import nibabel as nib
import numpy as np
import pytest


@pytest.fixture(scope="module")
def ds(tmp_path_factory, segscale_bin):
    import subprocess
    out = tmp_path_factory.mktemp("recipes") / "ds"
    subprocess.run([segscale_bin, "synth", "--out", str(out), "--cases", "3", "--shape", "40,36,24", "--quiet"], check=True,
                   capture_output=True)
    return out


def test_apply_takes_a_preset_and_writes_num_samples_per_copy(run, ds, tmp_path):
    img, lab = ds / "imagesTr" / "BRATS_001.nii.gz", ds / "labelsTr" / "BRATS_001.nii.gz"
    run("apply", "--image", img, "--label", lab, "--pipeline", "nnunet", "--out", tmp_path / "nn", check_rc=0)
    meta = json.loads((tmp_path / "nn" / "meta.json").read_text())
    types = [t["type"] for t in meta["pipeline"]["transforms"]]
    assert "rand_crop_by_pos_neg_label" in types and types.count("rand_flip") == 3
    assert meta["pipeline"]["label_map"] == "blog"  # the data's numbering (an MSD dataset.json), not the preset's
    pipe = {"label_map": "msd", "transforms": [
        {"type": "rand_crop_by_pos_neg_label", "roi": [16, 16, 8], "pos": 1, "neg": 2, "num_samples": 3},
        {"type": "rand_flip", "prob": 0.5, "spatial_axis": [0, 1]}]}
    (tmp_path / "p.json").write_text(json.dumps(pipe))
    run("apply", "--image", img, "--label", lab, "--pipeline", tmp_path / "p.json", "--copies", 2, "--out", tmp_path / "ns", check_rc=0)
    meta = json.loads((tmp_path / "ns" / "meta.json").read_text())
    assert [(c["index"], c["copy"], c["sample"]) for c in meta["copies"]] == [(0, 0, 0), (1, 0, 1), (2, 0, 2), (3, 1, 0), (4, 1, 1), (5, 1, 2)]
    for c in meta["copies"]:
        assert np.load(tmp_path / "ns" / f"image_{c['index']:04d}.npy").shape == (4, 16, 16, 8)
        crop = c["draws"][0]
        label = np.load(tmp_path / "ns" / f"label_{c['index']:04d}.npy")
        assert crop["transform"] == "rand_crop_by_pos_neg_label"
        if crop["foreground"]:  # a foreground centre lies on WT or ET (the centre is inside the window)
            cx, cy, cz = (crop["center"][a] - crop["start"][a] for a in range(3))
            assert label[1:, cx, cy, cz].any() or c["draws"][1]["applied"]


def test_prep_takes_a_preset_and_refuses_several_samples_per_copy(run, ds, tmp_path):
    run("prep", "--data", ds, "--out", tmp_path / "st", "--cache", "--pipeline", "monai-brats", "--quiet", check_rc=0)
    settings = json.loads((tmp_path / "st" / "settings.json").read_text())
    assert [t["type"] for t in settings["pipeline"]["transforms"]][:3] == ["orientation", "spacing", "rand_spatial_crop"]
    assert settings["pipeline"]["transforms"][2]["roi"] == [224, 224, 144]
    pipe = {"transforms": [{"type": "rand_crop_by_pos_neg_label", "roi": [8, 8, 8], "num_samples": 2}]}
    (tmp_path / "p.json").write_text(json.dumps(pipe))
    p = run("prep", "--data", ds, "--out", tmp_path / "st2", "--cache", "--pipeline", tmp_path / "p.json", check_rc=2)
    assert "num_samples 2" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    p = run("prep", "--data", ds, "--out", tmp_path / "st3", "--cache", "--pipeline", "nnunet2", check_rc=1)
    assert "nnunet2" in p.stderr, p.stderr


def test_plan_prints_dynunet_kernels_and_strides(run, ds, tmp_path):
    """nnU-Net v2's topology (values from nnunetv2 2.8.1's get_pool_and_conv_props; whole plans are compared with
    nnU-Net's in tests/oracle/test_nnunet_plan.py) and the view of the plan."""
    j = json.loads(run("plan", "--data", ds, "--patch", "128,128,128", "--json", check_rc=0).stdout)
    assert j["spacing"] == [1.0, 1.0, 1.0]
    assert j["strides"] == [[1, 1, 1]] + [[2, 2, 2]] * 5 and j["kernel_sizes"] == [[3, 3, 3]] * 6
    assert j["patch_size"] == [128, 128, 128]
    text = run("plan", "--data", ds, check_rc=0).stdout
    plans = json.loads(run("plan", "--data", ds, "--json", check_rc=0).stdout)
    c = plans["configurations"]["3d_fullres"]
    assert plans["plans_name"] == "nnUNetPlans" and c["data_identifier"] == "nnUNetPlans_3d_fullres"
    assert "DynUNet strides     " + json.dumps(c["architecture"]["arch_kwargs"]["strides"], separators=(",", ":")) in text, text
    assert f"patch               {'x'.join(map(str, c['patch_size']))}\n" in text, text
    # Anisotropic headers (0.8 x 0.8 x 3 mm; nnU-Net's axes z, y, x): the coarse axis pools late and convolves with 1 first.
    aniso = tmp_path / "aniso"
    (aniso / "imagesTr").mkdir(parents=True)
    (aniso / "labelsTr").mkdir()
    cases = []
    lab = np.zeros((200, 200, 24), np.uint8)
    lab[90:110, 90:110, 10:14] = 1
    for i in range(3):
        aff = np.diag([0.8, 0.8, 3.0, 1.0])
        nib.save(nib.Nifti1Image(np.ones((200, 200, 24, 4), np.float32), aff), str(aniso / "imagesTr" / f"C_{i}.nii.gz"))
        nib.save(nib.Nifti1Image(lab, aff), str(aniso / "labelsTr" / f"C_{i}.nii.gz"))
        cases.append({"image": f"./imagesTr/C_{i}.nii.gz", "label": f"./labelsTr/C_{i}.nii.gz"})
    (aniso / "dataset.json").write_text(json.dumps({"modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
                                                    "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor",
                                                               "3": "enhancing tumour"},
                                                    "training": cases, "test": []}))
    j = json.loads(run("plan", "--data", aniso, "--patch", "20,160,160", "--json", check_rc=0).stdout)
    assert j["spacing"] == pytest.approx([3.0, 0.8, 0.8])
    # get_pool_and_conv_props((3.0, 0.8, 0.8), (20, 160, 160), 4, 999999)
    assert j["strides"] == [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2]]
    assert j["kernel_sizes"] == [[1, 3, 3]] + [[3, 3, 3]] * 5
    assert j["patch_size"] == [20, 160, 160]
    # No foreground in any case: nnU-Net's fingerprint has no intensities to take; a clear error, not a crash.
    for i in range(3):
        nib.save(nib.Nifti1Image(np.zeros((200, 200, 24), np.uint8), np.diag([0.8, 0.8, 3.0, 1.0])), str(aniso / "labelsTr" / f"C_{i}.nii.gz"))
    p = run("plan", "--data", aniso, check_rc=1)
    assert "foreground" in p.stderr and str(aniso) in p.stderr, p.stderr


@pytest.mark.parametrize("args,rc,needle", [
    (["--patch", "0,8,8"], 2, "--patch 0"),
    (["--patch", "8,8"], 2, "--patch"),
    (["--threads", "-1"], 2, "--threads"),
])
def test_plan_bad_usage_is_one_line(run, ds, args, rc, needle):
    p = run("plan", "--data", ds, *args, check_rc=rc)
    assert needle in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_plan_missing_dataset_names_it(run, tmp_path):
    p = run("plan", "--data", tmp_path / "nowhere", check_rc=1)
    assert "nowhere" in p.stderr, p.stderr
