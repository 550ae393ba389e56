"""segscale infer / eval / plot as users run them: outputs on the input's own grid and header (RAS, LPS and
the real LPS BraTS scan), a predicted tumour where the tumour is, scores, previews and curves."""
import json
import re
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest

from conftest import case_study_pipeline, one_line_error


@pytest.fixture(scope="module")
def trained(torch_build, make_store, segscale_bin):
    root = make_store(10, (64, 64, 40), case_study_pipeline((32, 32, 16)), seed=4)

    def sh(*a):
        p = subprocess.run([segscale_bin, *map(str, a)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return p

    sh("synth", "--out", root / "lps", "--cases", 2, "--shape", "64,64,40", "--seed", 9, "--orientation", "LPS", "--quiet")
    sh("train", "--store", root / "cache", "--out", root / "run", "--epochs", 40, "--batch", 2, "--lr", "3e-3", "--val-fraction", "0.2",
       "--val-every", 20, "--channels", "8,16,32", "--strides", "2,2", "--threads", 2, "--quiet")
    return root


def test_infer_on_lps_case_keeps_grid_and_finds_the_tumour(run, trained, tmp_path):
    img = trained / "lps" / "imagesTr" / "BRATS_002.nii.gz"
    out = tmp_path / "seg.nii.gz"
    out.write_bytes(b"poison")  # must be replaced
    run("infer", "--model", trained / "run" / "model.pt", "--image", img, "--out", out, "--probabilities", "--preview", tmp_path / "p.png",
        "--threads", 2, check_rc=0)
    src, seg = nib.load(str(img)), nib.load(str(out))
    assert seg.shape == src.shape[:3]
    np.testing.assert_allclose(seg.affine, src.affine, atol=1e-6)
    assert "".join(nib.aff2axcodes(seg.affine)) == "LPS"
    assert seg.header["qform_code"] == src.header["qform_code"] and seg.header["sform_code"] == src.header["sform_code"]
    pred = np.asanyarray(seg.dataobj)
    truth = np.asanyarray(nib.load(str(trained / "lps" / "labelsTr" / "BRATS_002.nii.gz")).dataobj)
    assert set(np.unique(pred)) <= {0, 1, 2, 3}
    wt_p, wt_t = pred > 0, truth > 0
    dice = 2 * (wt_p & wt_t).sum() / (wt_p.sum() + wt_t.sum())
    assert dice > 0.5, dice  # the predicted tumour lands on the tumour, in the LPS file's own voxel order
    prob = nib.load(str(tmp_path / "seg_probabilities.nii.gz"))
    assert prob.shape == src.shape[:3] + (3,)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_infer_dataset_then_eval_and_plot(run, trained, tmp_path):
    run("infer", "--model", trained / "run" / "model.pt", "--data", trained / "lps", "--out-dir", tmp_path / "pred", "--preview", "no",
        "--quiet", check_rc=0)
    assert sorted(f.name for f in (tmp_path / "pred").iterdir()) == ["BRATS_001.nii.gz", "BRATS_002.nii.gz"]  # --preview no: no PNG
    p = run("eval", "--pred", tmp_path / "pred", "--truth", trained / "lps", check_rc=0)  # the label map from the predictions
    assert "label map msd " in p.stdout and "predictions' header" in p.stdout
    p = run("eval", "--pred", tmp_path / "pred", "--truth", trained / "lps", "--label-map", "msd", check_rc=0)
    rows = (tmp_path / "pred" / "scores.csv").read_text().splitlines()
    assert rows[0] == "case,dice_tc,dice_wt,dice_et,hd95_tc,hd95_wt,hd95_et" and rows[-1].startswith("mean,")
    assert float(rows[-1].split(",")[2]) > 0.5  # WT
    assert "BraTS" in p.stdout
    run("plot", trained / "run", "--out", tmp_path / "c.png", check_rc=0)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_infer_on_the_real_lps_brats_scan(run, trained, shared_data, tmp_path):
    case = shared_data / "brats2021-00006"
    if not case.exists():
        pytest.skip(f"real BraTS case absent ({case}); skipping")
    imgs = ",".join(str(case / f"BraTS2021_00006_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2"))
    out = tmp_path / "real.nii.gz"
    run("infer", "--model", trained / "run" / "model.pt", "--image", imgs, "--out", out, "--label-map", "brats21", "--threads", 2, check_rc=0)
    src, seg = nib.load(str(case / "BraTS2021_00006_flair.nii.gz")), nib.load(str(out))
    assert seg.shape == (240, 240, 155)
    np.testing.assert_allclose(seg.affine, src.affine, atol=1e-6)
    assert "".join(nib.aff2axcodes(seg.affine)) == "LPS"
    assert set(np.unique(np.asanyarray(seg.dataobj))) <= {0, 1, 2, 4}


def test_infer_and_eval_errors(run, trained, tmp_path):
    p = run("infer", "--model", tmp_path / "none.pt", "--image", "x.nii.gz", "--out", tmp_path / "o.nii.gz")
    assert p.returncode == 1 and "none.pt: no such model file" in p.stderr and "model.pt" in p.stderr
    p = run("infer", "--model", trained / "run" / "model.pt", "--out", tmp_path / "o.nii.gz")
    assert p.returncode == 2
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    (tmp_path / "config.json").write_text((trained / "run" / "config.json").read_text())
    p = run("infer", "--model", tmp_path / "bad.pt", "--image", trained / "lps" / "imagesTr" / "BRATS_001.nii.gz", "--out", tmp_path / "o.nii.gz")
    assert p.returncode == 1 and "bad.pt" in p.stderr
    (tmp_path / "preds").mkdir()
    p = run("eval", "--pred", tmp_path / "preds", "--truth", trained / "lps")
    assert p.returncode == 1 and "no .nii.gz predictions" in p.stderr


def test_infer_names_the_inputs_the_model_needs(run, trained, tmp_path):
    model = trained / "run" / "model.pt"
    label = trained / "lps" / "labelsTr" / "BRATS_001.nii.gz"  # 3-D: one channel for a 4-modality model
    line = one_line_error(run("infer", "--model", model, "--image", label, "--out", tmp_path / "o.nii.gz"), 1)
    assert "the model takes 4 modalities" in line and "the input has 1 channel (BRATS_001.nii.gz)" in line
    if (trained / "run" / "checkpoint.pt").exists():
        line = one_line_error(run("infer", "--model", trained / "run" / "checkpoint.pt", "--image", label, "--out", tmp_path / "o.nii.gz"), 1)
        assert "training checkpoint" in line and "model.pt" in line and "last.pt" in line
    # A run whose config.json records BraTS modality names, and a case given as BraTS-named files.
    rd = tmp_path / "run"
    rd.mkdir()
    shutil.copy(model, rd / "model.pt")
    cfg = json.loads((trained / "run" / "config.json").read_text())
    cfg["modalities"] = ["flair", "t1", "t1ce", "t2"]
    (rd / "config.json").write_text(json.dumps(cfg))
    img = nib.load(str(trained / "lps" / "imagesTr" / "BRATS_002.nii.gz"))
    data = np.asanyarray(img.dataobj)
    files = {}
    for i, m in enumerate(cfg["modalities"]):
        files[m] = tmp_path / f"Case7_{m}.nii.gz"
        nib.save(nib.Nifti1Image(data[..., i], img.affine), str(files[m]))
    wrong = ",".join(str(files[m]) for m in ("t1", "flair", "t1ce", "t2"))
    line = one_line_error(run("infer", "--model", rd / "model.pt", "--image", wrong, "--out", tmp_path / "o.nii.gz"), 1)
    assert "Case7_t1.nii.gz: a t1 scan given as channel 0, where the model was trained on flair" in line
    right = ",".join(str(files[m]) for m in cfg["modalities"])
    p = run("infer", "--model", rd / "model.pt", "--image", right, "--out", tmp_path / "o.nii.gz", "--preview", tmp_path / "p.png",
            "--threads", 2, check_rc=0)
    assert p.stdout.startswith("Case7: ")  # the case key, not the first file's name (Case7_flair)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_infer_data_names_skip_bad_and_skips_with_it(run, trained, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(trained / "lps", ds)
    img = ds / "imagesTr" / "BRATS_001.nii.gz"
    img.write_bytes(img.read_bytes()[:4000])
    line = one_line_error(run("infer", "--model", trained / "run" / "model.pt", "--data", ds, "--out-dir", tmp_path / "o1", "--quiet"), 1)
    assert "case BRATS_001" in line and "--skip-bad" in line
    p = run("infer", "--model", trained / "run" / "model.pt", "--data", ds, "--out-dir", tmp_path / "o2", "--preview", "yes", "--skip-bad",
            "--threads", 2, "--quiet", check_rc=0)
    assert "skipping case BRATS_001" in p.stderr and "1 case skipped" in p.stderr
    assert sorted(f.name for f in (tmp_path / "o2").iterdir()) == ["BRATS_002.nii.gz", "BRATS_002.png"]
