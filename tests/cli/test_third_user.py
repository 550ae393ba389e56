"""Issue 31, "what a third new user met": each test runs the real binary as that user did and checks the exit code,
the message and the files left behind. Each failed before its fix."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import case_study_pipeline, one_line_error, synth

TINY = ["--threads", "1", "--loader-threads", "1", "--quiet"]
UNET = ["--channels", "4,8,16", "--strides", "2,2"]
PY = "/usr/bin/python3"  # Debian's, with nibabel, torch 1.13 and MONAI 1.4.0 (scripts/setup.sh)


def python(code):
    p = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def brats23(tmp_path_factory, segscale_bin):
    """A BraTS 2023 GLI folder (<case>-t2f.nii.gz ..., <case>-seg.nii.gz with 1 NCR, 2 ED, 3 ET), made from BraTS 2021
    phantoms by renaming their files and relabelling 4 -> 3 with nibabel."""
    src = synth(segscale_bin, tmp_path_factory.mktemp("b21"), 3, (32, 32, 24), 5, layout="brats21")
    root = tmp_path_factory.mktemp("brats23")
    python(f"""
import nibabel as nib, numpy as np
from pathlib import Path
src, dst = Path({str(src)!r}), Path({str(root)!r})
names = {{"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w", "seg": "seg"}}
for case in sorted(p for p in src.iterdir() if p.is_dir()):
    key = case.name.replace("BraTS2021", "BraTS-GLI")
    (dst / key).mkdir()
    for old, new in names.items():
        img = nib.load(str(case / f"{{case.name}}_{{old}}.nii.gz"))
        data = np.asanyarray(img.dataobj)
        if old == "seg":
            assert set(np.unique(data)) <= {{0, 1, 2, 4}} and (data == 4).any()
            data = np.where(data == 4, 3, data).astype(data.dtype)
        nib.save(nib.Nifti1Image(data, img.affine, img.header), str(dst / key / f"{{key}}-{{new}}.nii.gz"))
""")
    return root


def pipeline_file(path, label_map=None):
    """The case study's chain with a small crop, with or without a "label_map" key."""
    pipe = case_study_pipeline((16, 16, 16))
    del pipe["label_map"]
    if label_map:
        pipe["label_map"] = label_map
    path.write_text(json.dumps(pipe))
    return path


def store_label_map(store):
    return json.loads((store / "manifest.json").read_text())["settings"]["pipeline"]["label_map"]


# --- item 1: the label map comes from the data unless the user names one ---------------------------------------

def test_pipeline_without_label_map_takes_the_data_numbering_and_says_so(run, brats23, tmp_path):
    pipe = pipeline_file(tmp_path / "pipe.json")
    p = run("prep", "--data", brats23, "--out", tmp_path / "st", "--cache", "--pipeline", pipe, "--quiet", check_rc=0)
    assert store_label_map(tmp_path / "st") == "brats23"  # was blog: ET trained on oedema
    assert "label map brats23 (TC={1,3} WT={1,2,3} ET={3}): from the data" in p.stdout and "BraTS 2023 file names" in p.stdout, p.stdout
    info = run("inspect", tmp_path / "st", check_rc=0).stdout
    assert "brats23" in info


def test_pipeline_file_naming_another_label_map_than_the_data_is_refused(run, brats23, tmp_path):
    pipe = pipeline_file(tmp_path / "pipe.json", label_map="blog")
    line = one_line_error(run("prep", "--data", brats23, "--out", tmp_path / "st", "--cache", "--pipeline", pipe, "--quiet"), 1)
    assert str(pipe) in line and '"label_map" is blog' in line and "numbered as brats23" in line, line
    assert 'remove "label_map"' in line and "--label-map blog" in line, line
    assert not (tmp_path / "st").exists() or not list((tmp_path / "st").iterdir())
    # The explicit choice is taken, and printed beside the data's numbering.
    p = run("prep", "--data", brats23, "--out", tmp_path / "st", "--cache", "--pipeline", pipe, "--label-map", "blog", "--quiet", check_rc=0)
    assert store_label_map(tmp_path / "st") == "blog"
    assert "label map blog" in p.stdout and "although the data is numbered as brats23" in p.stdout, p.stdout


def test_msd_data_says_which_numbering_it_assumed_and_a_file_may_pick_msd(run, tmp_path, segscale_bin):
    subprocess.run([segscale_bin, "synth", "--out", str(tmp_path / "ds"), "--cases", "2", "--shape", "32,32,24", "--quiet"], check=True)
    p = run("prep", "--data", tmp_path / "ds", "--out", tmp_path / "a", "--cache", "--pipeline", pipeline_file(tmp_path / "p.json"),
            "--quiet", check_rc=0)
    assert "label map blog" in p.stdout and "MSD dataset.json" in p.stdout and "--label-map msd" in p.stdout, p.stdout
    p = run("prep", "--data", tmp_path / "ds", "--out", tmp_path / "b", "--cache", "--pipeline", pipeline_file(tmp_path / "q.json", "msd"),
            "--quiet", check_rc=0)
    assert store_label_map(tmp_path / "b") == "msd" and "from the pipeline file" in p.stdout, p.stdout


def test_train_takes_label_map_from_the_data_and_checks_a_store(run, torch_build, brats23, tmp_path):
    pipe = pipeline_file(tmp_path / "pipe.json")
    p = run("train", "--data", brats23, "--pipeline", pipe, "--out", tmp_path / "r", *UNET, *TINY, "--max-steps", 1, "--val-fraction", 0,
            check_rc=0)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["label_map"] == "brats23"
    assert "label map brats23" in p.stdout, p.stdout
    # The user's explicit choice is taken (the same label values, read another way), and said beside the data's.
    p = run("train", "--data", brats23, "--pipeline", pipe, "--label-map", "msd", "--out", tmp_path / "r2", *UNET, *TINY,
            "--max-steps", 1, "--val-fraction", 0, check_rc=0)
    assert json.loads((tmp_path / "r2" / "config.json").read_text())["label_map"] == "msd"
    assert "although the data is numbered as brats23" in p.stdout, p.stdout
    # A store's labels are channels already: --label-map may confirm its map, not change it.
    run("prep", "--data", brats23, "--out", tmp_path / "st", "--cache", "--pipeline", pipe, "--quiet", check_rc=0)
    line = one_line_error(run("train", "--store", tmp_path / "st", "--label-map", "blog", "--out", tmp_path / "r3", *UNET, *TINY,
                              "--max-steps", 1), 1)
    assert "prepared with label map brats23" in line and "segscale prep --label-map blog" in line, line
    assert not (tmp_path / "r3").exists()
    p = run("train", "--store", tmp_path / "st", "--label-map", "brats23", "--out", tmp_path / "r4", *UNET, *TINY, "--max-steps", 1,
            "--val-fraction", 0, check_rc=0)
    assert "label map brats23" in p.stdout and "the store's" in p.stdout, p.stdout


# --- item 3: a start that never trained does not block its own rerun --------------------------------------------

@pytest.fixture(scope="module")
def store(torch_build, make_store):
    return make_store(4, (36, 36, 36), case_study_pipeline((16, 16, 16)))


def test_a_failed_start_does_not_block_the_same_command(run, store, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    # What a start that failed before its first step leaves (config.json written, metrics.jsonl opened empty).
    (out / "config.json").write_text("{}\n")
    (out / "metrics.jsonl").write_text("")
    (out / "notes.txt").write_text("mine")
    p = run("train", "--store", store / "cache", "--out", out, *UNET, *TINY, "--max-steps", 1, "--val-fraction", 0, check_rc=0)
    assert "never trained" in p.stderr, p.stderr
    assert (out / "notes.txt").read_text() == "mine"  # only run files are replaced
    assert json.loads((out / "config.json").read_text())["model"]["name"] == "unet"
    # A run that trained still needs --resume or --overwrite.
    line = one_line_error(run("train", "--store", store / "cache", "--out", out, *UNET, *TINY, "--max-steps", 1), 2)
    assert "already holds a training run" in line and "--resume" in line
    # Metrics with a step and no weights (killed before its first checkpoint) count as a run too: nothing is lost.
    other = tmp_path / "o"
    other.mkdir()
    (other / "metrics.jsonl").write_text('{"type": "step", "step": 1}\n')
    one_line_error(run("train", "--store", store / "cache", "--out", other, *UNET, *TINY, "--max-steps", 1), 2)
    assert (other / "metrics.jsonl").read_text() == '{"type": "step", "step": 1}\n'


# --- item 4: the weights files people have ----------------------------------------------------------------------

CASE_STUDY_UNET = "UNet(spatial_dims=3, in_channels=4, out_channels=3, channels=(4, 8, 16), strides=(2, 2), num_res_units=2)"


@pytest.mark.parametrize("form", ["state_dict", "wrapped", "model_state_dict"])
def test_init_weights_take_monai_tutorial_files(run, store, tmp_path, form):
    """torch.save(model.state_dict(), F) as MONAI's tutorials write it (an OrderedDict with _metadata), and the
    {"state_dict": ...} / {"model_state_dict": ...} wrappers; the run starts from exactly those weights."""
    f = tmp_path / "w.pth"
    saved = {"state_dict": "sd", "wrapped": '{"state_dict": sd}', "model_state_dict": '{"model_state_dict": sd, "epoch": 3}'}[form]
    python(f"""
import torch
from monai.networks.nets import UNet
torch.manual_seed(7)
net = {CASE_STUDY_UNET}
sd = net.state_dict()
assert type(sd).__name__ == "OrderedDict" and hasattr(sd, "_metadata")
torch.save({saved}, {str(f)!r})
""")
    run("train", "--store", store / "cache", "--out", tmp_path / "r", *UNET, *TINY, "--max-steps", 1, "--lr", 1e-30, "--val-fraction", 0,
        "--init-weights", f, check_rc=0)
    same = python(f"""
import torch
from monai.networks.nets import UNet
torch.manual_seed(7)
a = {CASE_STUDY_UNET}.state_dict()
b = torch.load({str(tmp_path / "r" / "last.pt")!r})
print(all(torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=1e-12) for k in a) and len(a) == len(b))
""")
    assert same.strip() == "True"
    # infer takes the same file, with the run's config.json beside it given by --config.
    case = next((store / "ds" / "imagesTr").iterdir())
    p = run("infer", "--model", f, "--config", tmp_path / "r" / "config.json", "--image", case, "--out", tmp_path / "seg.nii.gz",
            "--quiet", check_rc=0)
    assert (tmp_path / "seg.nii.gz").exists(), p.stdout


def test_init_weights_refuse_a_checkpoint_naming_model_pt_and_resume(run, store, tmp_path):
    run("train", "--store", store / "cache", "--out", tmp_path / "a", *UNET, *TINY, "--max-steps", 1, "--val-fraction", 0, check_rc=0)
    line = one_line_error(run("train", "--store", store / "cache", "--out", tmp_path / "b", *UNET, *TINY, "--max-steps", 1,
                              "--init-weights", tmp_path / "a" / "checkpoint.pt"), 1)
    assert str(tmp_path / "a" / "checkpoint.pt") in line and "model.pt" in line and "--resume" in line, line
    assert not (tmp_path / "b").exists()


# --- item 6: the split is recorded, counted, and an empty or crop-only validation is said at the start ----------

def test_split_recorded_as_nnunet_splits_and_counted(run, store, tmp_path):
    p = run("train", "--store", store / "cache", "--out", tmp_path / "r", *UNET, *TINY, "--max-steps", 1, "--val-fraction", 0.25,
            check_rc=0)
    folds = json.loads((tmp_path / "r" / "splits.json").read_text())
    assert isinstance(folds, list) and len(folds) == 1 and set(folds[0]) == {"train", "val"}
    cases = sorted(json.loads((store / "cache" / "manifest.json").read_text())["settings"]["cases"])
    assert sorted(folds[0]["train"] + folds[0]["val"]) == cases and len(folds[0]["val"]) == 1
    assert f"split: 3 training cases, 1 validation case -> {tmp_path / 'r' / 'splits.json'}" in p.stdout, p.stdout


def test_a_split_without_validation_and_full_validation_of_crops_say_so(run, make_store, store, tmp_path):
    p = run("train", "--store", store / "cache", "--out", tmp_path / "r", *UNET, *TINY, "--max-steps", 1, "--val-fraction", 0.01,
            check_rc=0)
    # 0.01 of 4 cases still holds one out (split_by_case keeps at least one): no warning then.
    assert "no validation case" not in p.stderr
    one = make_store(1, (36, 36, 36), case_study_pipeline((16, 16, 16)))
    p = run("train", "--store", one / "cache", "--out", tmp_path / "s", *UNET, *TINY, "--max-steps", 1, "--val-fraction", 0.5, check_rc=0)
    assert "warning: no validation case: --val-fraction 0.5 of 1 case leaves none" in p.stderr, p.stderr
    copies = make_store(4, (36, 36, 36), case_study_pipeline((16, 16, 16)), modes=(("--copies", 1),))
    p = run("train", "--store", copies / "copies", "--out", tmp_path / "t", *UNET, *TINY, "--max-steps", 1, "--val-fraction", 0.25,
            "--val-mode", "full", check_rc=0)
    assert "--val-mode full on a store of augmented crops" in p.stderr, p.stderr


# --- item 5: a case smaller than the crop is named, with the fix -------------------------------------------------

def test_case_smaller_than_the_crop_is_named_with_the_fix(run, torch_build, make_store, tmp_path):
    # 1 mm phantoms 40x40x26 at 1.5x1.5x2 mm are 27x27x14 (MONAI keeps the corner voxels): the 16^3 crop keeps z whole.
    root = make_store(2, (40, 40, 26), case_study_pipeline((16, 16, 16)))
    line = one_line_error(run("train", "--store", root / "cache", "--out", tmp_path / "r", *UNET, *TINY, "--max-steps", 1,
                              "--val-fraction", 0), 1)
    assert "case BRATS_00" in line and "x14 after the chain" in line and "choose a crop no larger than the smallest case" in line, line


# --- item 7: model settings of the wrong type or range are refused, not truncated or clamped ---------------------

@pytest.mark.parametrize("model, setting, expect", [
    ("segresnet", '{"init_filters": 8.5}', "segresnet: `init_filters` must be a whole number >= 1, got 8.5"),
    ("segresnet", '{"blocks_down": [1, 2.5, 2, 4]}', "segresnet: `blocks_down`[1] must be a whole number >= 1, got 2.5"),
    ("unet", '{"num_res_units": -1}', "unet: `num_res_units` must be a whole number >= 0, got -1"),
    ("dynunet", '{"deep_supervision": true, "deep_supr_num": 5}', "dynunet: `deep_supr_num` must be in [1, "),
])
def test_model_config_refuses_wrong_types_and_ranges(run, store, tmp_path, model, setting, expect):
    line = one_line_error(run("train", "--store", store / "cache", "--out", tmp_path / "r", "--model", model, "--model-config", setting,
                              *TINY, "--max-steps", 1), 2)
    assert expect in line, line
    assert not (tmp_path / "r").exists()


# --- item 8: predictions and truth in different numberings --------------------------------------------------------

def test_eval_across_numberings(run, brats23, tmp_path):
    # Predictions numbered as BraTS 2021 (ET = 4), truth as BraTS 2023 (ET = 3): the same regions.
    pred = tmp_path / "pred"
    pred.mkdir()
    python(f"""
import nibabel as nib, numpy as np
from pathlib import Path
for case in sorted(p for p in Path({str(brats23)!r}).iterdir() if p.is_dir()):
    img = nib.load(str(case / f"{{case.name}}-seg.nii.gz"))
    d = np.asanyarray(img.dataobj)
    nib.save(nib.Nifti1Image(np.where(d == 3, 4, d).astype(d.dtype), img.affine, img.header), str(Path({str(pred)!r}) / f"{{case.name}}.nii.gz"))
""")
    # One map for both cannot read them: the prediction's 4 is no brats23 label.
    line = one_line_error(run("eval", "--pred", pred, "--truth", brats23), 1)
    assert "label value 4" in line and str(pred) in line, line
    p = run("eval", "--pred", pred, "--truth", brats23, "--pred-label-map", "brats21", check_rc=0)
    assert "predictions: label map brats21" in p.stdout and "truth: label map brats23" in p.stdout and "BraTS 2023 file names" in p.stdout
    assert (pred / "scores.csv").read_text().splitlines()[-1].startswith("mean,1.000000,1.000000,1.000000"), p.stdout


# --- item 10: plot names the loss panel after the run's loss and draws the learning rate --------------------------

def test_plot_panels_follow_the_run(run, store, tmp_path):
    run("train", "--store", store / "cache", "--out", tmp_path / "r", *UNET, *TINY, "--max-steps", 2, "--val-fraction", 0.25,
        "--loss", "dicece", "--schedule", "cosine", check_rc=0)
    p = run("plot", tmp_path / "r", check_rc=0)
    assert p.stdout.strip() == f"{tmp_path / 'r' / 'curves.png'}: DICE + CE LOSS, LEARNING RATE, VALIDATION DICE", p.stdout
    png = (tmp_path / "r" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1500  # three panels wide
    # Without config.json (a metrics file on its own) the panel says only LOSS.
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(tmp_path / "r" / "metrics.jsonl", lone / "metrics.jsonl")
    assert run("plot", lone / "metrics.jsonl", check_rc=0).stdout.strip().endswith(": LOSS, LEARNING RATE, VALIDATION DICE")


def test_data_run_with_a_case_smaller_than_the_crop_is_refused_before_training(run, torch_build, make_store, tmp_path):
    root = make_store(2, (40, 40, 26), case_study_pipeline((16, 16, 16)))
    line = one_line_error(run("train", "--data", root / "ds", "--pipeline", root / "pipe.json", "--out", tmp_path / "r", *UNET, *TINY,
                              "--max-steps", 1, "--val-fraction", 0), 1)
    assert "case BRATS_001" in line and "x14 after the chain" in line, line
    assert not (tmp_path / "r").exists()  # refused before the run folder was made


# --- item 9: bench refuses impossible values before anything runs ------------------------------------------------

@pytest.mark.parametrize("args, expect", [
    (["--steps", "1"], "--steps 1: at least 2"),
    (["--shape", "100,100,60"], "which the UNet cannot take (each axis a multiple of 16)"),
    (["--shape", "100,100"], "--shape 100,100: three positive whole numbers"),
    (["--cases", "0"], "--cases 0: at least 1"),
])
def test_bench_refuses_impossible_values_before_anything_runs(run, torch_build, tmp_path, args, expect):
    line = one_line_error(run("bench", *args, "--work", tmp_path / "w"), 2)
    assert expect in line, line
    assert not (tmp_path / "w").exists()


# --- item 11: help shows the recipe's defaults where the recipe sets them -----------------------------------------

def test_train_help_shows_each_recipes_default(run, torch_build):
    text = " ".join(run("train", "--help", check_rc=0).stdout.split())  # CLI11 wraps long lines
    assert "Batch size per process (default, by --recipe: case-study 2, monai-brats 1, nnunet the plan's, monai-dynunet 2)" in text, text
    assert "(default, by --recipe: case-study 0.0001, monai-brats 0.0001, nnunet 0.01, monai-dynunet 0.01)" in text
    assert "(default, by --recipe: case-study crop, monai-brats full, nnunet pseudo, monai-dynunet full)" in text
    # No fixed default beside a recipe's setting (it used to say [2] for a recipe that trains at batch 1).
    batch = next(l for l in run("train", "--help", check_rc=0).stdout.splitlines() if l.strip().startswith("--batch"))
    assert "[" not in batch, batch


# --- item 7 (resume): the run's settings, every difference at once, the run length recorded -------------------------

def test_resume_takes_the_runs_settings_and_reports_every_difference(run, store, tmp_path):
    out = tmp_path / "r"
    run("train", "--store", store / "cache", "--out", out, *UNET, *TINY, "--batch", 1, "--lr", 1e-3, "--max-steps", 2,
        "--val-fraction", 0, check_rc=0)
    c = json.loads((out / "config.json").read_text())
    # Each setting once: the network's in "model", the loss's in "loss" (no UNet leftovers, no second smooth_nr).
    for k in ("channels", "strides", "res_units", "in_channels", "out_channels", "smooth_nr", "smooth_dr"):
        assert k not in c, k
    # Only the run folder and the new length: store, model, batch, lr, ... come from the run.
    p = run("train", "--out", out, "--resume", "--max-steps", 4, "--quiet", "--threads", 1, check_rc=0)
    assert "resume: " in p.stdout and "--batch" in p.stdout and "--store" in p.stdout and "--model" in p.stdout, p.stdout
    assert "the run length changes from epochs null max_steps 2 to epochs null max_steps 4" in p.stdout, p.stdout
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if l["type"] == "step"] == [1, 2, 3, 4]
    assert {"type": "resume", "step": 2, "epochs": None, "max_steps": 4, "previous": {"epochs": None, "max_steps": 2}} in lines
    c = json.loads((out / "config.json").read_text())
    assert c["max_steps"] == 4 and c["batch"] == 1 and c["lr"] == 1e-3
    # Flags that differ from the run: all of them in one message.
    line = one_line_error(run("train", "--out", out, "--resume", "--max-steps", 6, "--batch", 2, "--lr", 1e-2, *TINY), 1)
    assert "--resume with different settings: batch (1 in the checkpoint, 2 now); lr (0.001 in the checkpoint, 0.01 now)" in line, line
