"""segscale train as a user runs it: learns, resumes exactly, writes MONAI-loadable weights and metrics,
and refuses bad options and bad data clearly."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import case_study_pipeline

SMALL_NET = ["--channels", "4,8,16", "--strides", "2,2", "--threads", "1", "--loader-threads", "2", "--quiet"]


@pytest.fixture(scope="module")
def stores(torch_build, make_store):
    return make_store(6, (36, 36, 36), case_study_pipeline((16, 16, 16)), modes=(("--cache",), ("--copies", 2)))


def train(run, store, out, *extra, check_rc=0, val_fraction="0.34", batch=2):
    return run("train", "--store", store, "--out", out, "--batch", batch, "--lr", "1e-3", "--val-fraction", val_fraction, *SMALL_NET, *extra,
               check_rc=check_rc)


def test_resume_gives_bitwise_identical_weights(run, stores, tmp_path):
    # 4 training cases, batch 2: 2 steps per epoch
    train(run, stores / "cache", tmp_path / "full", "--epochs", 6, "--max-steps", 10)
    train(run, stores / "cache", tmp_path / "split", "--epochs", 6, "--max-steps", 3)  # stops mid-epoch 1
    p = train(run, stores / "cache", tmp_path / "split", "--epochs", 6, "--max-steps", 10, "--resume")
    assert "trained 7 steps (run total: 10 steps)" in p.stdout
    assert (tmp_path / "full" / "last.pt").read_bytes() == (tmp_path / "split" / "last.pt").read_bytes()
    steps = [json.loads(l) for l in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if s["type"] == "step"] == list(range(1, 11))
    full = [json.loads(l) for l in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [s["loss"] for s in steps if s["type"] == "step"] == [s["loss"] for s in full if s["type"] == "step"]


def test_outputs_are_monai_loadable_and_metrics_complete(run, stores, tmp_path):
    train(run, stores / "copies", tmp_path / "r", "--epochs", 2)
    for f in ("model.pt", "last.pt", "checkpoint.pt", "config.json", "metrics.jsonl"):
        assert (tmp_path / "r" / f).exists(), f
    lines = [json.loads(l) for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    step = next(l for l in lines if l["type"] == "step")
    assert {"loss", "samples_per_s", "data_wait", "epoch", "step"} <= set(step)
    val = [l for l in lines if l["type"] == "val"]
    assert val and {"dice_tc", "dice_wt", "dice_et", "dice_mean"} <= set(val[0])
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["model"]["channels"] == [4, 8, 16] and cfg["store_mode"] == "copies"
    code = f"""
import torch
from monai.networks.nets import UNet
d = torch.load('{tmp_path / "r" / "model.pt"}')
assert type(d) is dict
UNet(spatial_dims=3, in_channels=4, out_channels=3, channels=(4, 8, 16), strides=(2, 2), num_res_units=2).load_state_dict(d)
print("ok")
"""
    p = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True)
    if "No module named 'monai'" in p.stderr:
        pytest.skip("MONAI not installed")
    assert p.stdout.strip() == "ok", p.stderr


@pytest.mark.parametrize("args,needle", [
    (["--device", "cuda"], "CUDA"),
    (["--amp", "--amp-dtype", "fp16"], "--amp-dtype fp16 needs --device cuda"),
    (["--epochs", "0"], "--epochs"),
    (["--channels", "4", "--strides", "2"], "at least 2 channel levels"),
])
def test_bad_options_exit_two(run, stores, tmp_path, args, needle):
    p = run("train", "--store", stores / "cache", "--out", tmp_path / "x", "--quiet", "--threads", "1", *args)
    if "--device" in args and p.returncode == 0:
        pytest.skip("a GPU is present")
    assert p.returncode == 2 and needle in p.stderr, p.stderr


def test_resume_without_checkpoint_and_missing_store(run, stores, tmp_path):
    p = train(run, stores / "cache", tmp_path / "new", "--resume", check_rc=1)
    assert "checkpoint.pt" in p.stderr and "no checkpoint" in p.stderr
    p = train(run, tmp_path / "nostore", tmp_path / "new", check_rc=1)
    assert f"{tmp_path / 'nostore'}: no such folder" in p.stderr
    (tmp_path / "empty").mkdir()
    p = train(run, tmp_path / "empty", tmp_path / "new", check_rc=1)
    assert "manifest.json" in p.stderr


def test_corrupt_sample_stops_training_naming_it_or_is_skipped(run, stores, tmp_path):
    st = tmp_path / "st"
    subprocess.run(["cp", "-r", str(stores / "copies"), str(st)], check=True)
    index = json.loads((st / "index.json").read_text())
    s = index["samples"][0]
    off, size, _ = s["image"]
    shard = st / f"shard-{s['shard']:06d}.tar"
    data = bytearray(shard.read_bytes())
    data[off + size - 8] ^= 0xFF
    shard.write_bytes(bytes(data))
    p = train(run, st, tmp_path / "r1", "--epochs", 1, val_fraction="0", check_rc=1)
    assert s["key"] in p.stderr and "CRC-32C mismatch" in p.stderr
    assert "rerun the same segscale prep command to repair the store" in p.stderr and "--skip-bad" in p.stderr  # both ways out
    p = train(run, st, tmp_path / "r2", "--epochs", 1, "--skip-bad", val_fraction="0")
    assert p.returncode == 0 and "skipping sample" in p.stderr and s["key"] in p.stderr


def step_lines(out):
    return [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if json.loads(l)["type"] == "step"]


def test_max_steps_alone_runs_as_many_epochs_as_it_takes(run, stores, tmp_path):
    # 4 training cases, batch 4: one step per epoch
    p = train(run, stores / "cache", tmp_path / "r", "--max-steps", 5, batch=4)
    assert "trained 5 steps" in p.stdout, p.stdout
    steps = step_lines(tmp_path / "r")
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5] and [s["epoch"] for s in steps] == [0, 1, 2, 3, 4]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["epochs"] is None
    # Both limits: the first reached ends the run.
    train(run, stores / "cache", tmp_path / "e", "--epochs", 2, "--max-steps", 5, batch=4)
    assert len(step_lines(tmp_path / "e")) == 2
    train(run, stores / "cache", tmp_path / "s", "--epochs", 9, "--max-steps", 3, batch=4)
    assert len(step_lines(tmp_path / "s")) == 3
    # Neither: one epoch.
    train(run, stores / "cache", tmp_path / "n", batch=4)
    assert len(step_lines(tmp_path / "n")) == 1


def test_max_steps_resume_counts_the_whole_run(run, stores, tmp_path):
    train(run, stores / "cache", tmp_path / "full", "--max-steps", 6, batch=4)
    train(run, stores / "cache", tmp_path / "r", "--max-steps", 2, batch=4)
    p = train(run, stores / "cache", tmp_path / "r", "--max-steps", 6, "--resume", batch=4)
    assert "trained 4 steps (run total: 6 steps)" in p.stdout, p.stdout
    assert [s["step"] for s in step_lines(tmp_path / "r")] == list(range(1, 7))
    assert (tmp_path / "r" / "last.pt").read_bytes() == (tmp_path / "full" / "last.pt").read_bytes()


@pytest.mark.parametrize("args,needle", [
    (["--max-steps", "0"], "--max-steps 0 is out of range: it must be at least 1"),
    (["--max-steps", "-1"], "--max-steps -1 is out of range"),
    (["--epochs", "-2"], "--epochs -2 is out of range"),
    (["--val-fraction", "1.5"], "--val-fraction 1.5 is out of range: it must be in [0, 1)"),
    (["--val-fraction", "-0.1"], "--val-fraction -0.1 is out of range"),
    (["--batch", "0"], "--batch 0 is out of range"),
    (["--lr", "0"], "--lr 0 is out of range"),
    (["--val-every", "0"], "--val-every 0"),
    (["--loader-threads", "0"], "--loader-threads 0"),
    (["--data", "/nonexistent"], "--store and --data: give one, not both"),
    (["--resume", "--overwrite"], "--resume and --overwrite: give one, not both"),
])
def test_impossible_values_are_refused_naming_the_flag(run, stores, tmp_path, args, needle):
    p = run("train", "--store", stores / "cache", "--out", tmp_path / "x", "--quiet", *args)
    assert p.returncode == 2 and needle in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert not (tmp_path / "x").exists()


def test_no_validation_says_where_the_weights_are(run, stores, tmp_path):
    p = train(run, stores / "cache", tmp_path / "r", val_fraction="0", batch=4)
    assert f"the weights are in {tmp_path / 'r' / 'last.pt'}" in p.stdout, p.stdout
    assert (tmp_path / "r" / "last.pt").exists() and not (tmp_path / "r" / "model.pt").exists()


def test_existing_run_is_not_overwritten(run, stores, tmp_path):
    train(run, stores / "cache", tmp_path / "r", batch=4)
    (tmp_path / "r" / "notes.txt").write_text("mine")
    before = {f.name: f.read_bytes() for f in (tmp_path / "r").iterdir()}
    p = train(run, stores / "cache", tmp_path / "r", check_rc=2, batch=4)
    assert "already holds a training run" in p.stderr and "--resume" in p.stderr and "--overwrite" in p.stderr, p.stderr
    assert {f.name: f.read_bytes() for f in (tmp_path / "r").iterdir()} == before
    p = train(run, stores / "cache", tmp_path / "r", "--max-steps", 2, "--overwrite", batch=4)
    assert len(step_lines(tmp_path / "r")) == 2 and (tmp_path / "r" / "notes.txt").read_text() == "mine"


def test_nnunet_folds_pick_the_validation_cases(run, stores, tmp_path):
    """--fold N: nnU-Net's 5-fold split of the store's 6 cases (sizes 2,1,1,1,1), all five written to splits.json as
    splits_final.json; the run validates on its fold's cases and trains on the rest; a splits file is taken as given."""
    p = train(run, stores / "cache", tmp_path / "f0", "--epochs", 1, "--fold", 0)
    folds = json.loads((tmp_path / "f0" / "splits.json").read_text())
    assert len(folds) == 5 and sorted(len(f["val"]) for f in folds) == [1, 1, 1, 1, 2]
    cases = sorted(folds[0]["train"] + folds[0]["val"])
    assert len(cases) == 6 and all(sorted(f["train"] + f["val"]) == cases for f in folds)
    assert "split: 4 training cases, 2 validation cases" in p.stdout
    assert json.loads((tmp_path / "f0" / "config.json").read_text())["fold"] == "0"
    # nnU-Net's own splits_final.json, edited: fold 1 validates on the named case
    own = [{"train": cases[1:], "val": cases[:1]}, {"train": cases[:-1], "val": cases[-1:]}]
    (tmp_path / "splits_final.json").write_text(json.dumps(own))
    p = train(run, stores / "cache", tmp_path / "f1", "--epochs", 1, "--fold", 1, "--splits", tmp_path / "splits_final.json")
    assert json.loads((tmp_path / "f1" / "splits.json").read_text()) == own and "5 training cases, 1 validation case" in p.stdout
    p = train(run, stores / "cache", tmp_path / "all", "--epochs", 1, "--fold", "all")
    assert "6 training cases, 6 validation cases" in p.stdout


@pytest.mark.parametrize("args,rc,needle", [
    (["--fold", "x"], 2, "--fold x"),
    (["--splits", "s.json"], 2, "say which with --fold"),
    (["--fold", "0", "--splits", "missing.json"], 1, "missing.json"),
])
def test_bad_folds_are_refused(run, stores, tmp_path, args, rc, needle):
    p = train(run, stores / "cache", tmp_path / "r", "--epochs", 1, *args, check_rc=rc)
    assert needle in p.stderr, p.stderr


def test_a_fold_naming_a_case_the_store_lacks_is_refused(run, stores, tmp_path):
    (tmp_path / "s.json").write_text(json.dumps([{"train": ["nobody"], "val": []}]))
    p = train(run, stores / "cache", tmp_path / "r", "--epochs", 1, "--fold", 0, "--splits", tmp_path / "s.json", check_rc=1)
    assert "nobody" in p.stderr and "s.json" in p.stderr


def test_nnunets_loss_and_clipping_train_and_are_recorded(run, stores, tmp_path):
    p = train(run, stores / "cache", tmp_path / "r", "--max-steps", 3, "--loss", "dc_and_bce", "--loss-config", '{"batch": true}',
              "--clip-grad-norm", 12)
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["loss"]["name"] == "dc_and_bce" and cfg["loss"]["batch"] is True and cfg["clip_grad_norm"] == 12
    losses = [json.loads(l)["loss"] for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines() if '"type":"step"' in l]
    assert len(losses) == 3 and all(-1 < v < 2 for v in losses)  # BCE + (-Dice): nnU-Net's loss goes below 0 as it learns
    p = train(run, stores / "cache", tmp_path / "bad", "--max-steps", 1, "--clip-grad-norm", -1, check_rc=2)
    assert "--clip-grad-norm -1" in p.stderr
    p = train(run, stores / "cache", tmp_path / "bad2", "--max-steps", 1, "--loss", "dc_and_bce", "--loss-config", '{"sigmoid": false, "softmax": true}',
              check_rc=2)
    assert "dc_and_bce" in p.stderr


PLAIN_DS = {"n_stages": 4, "features_per_stage": [4, 8, 8, 16], "kernel_sizes": 3, "strides": [1, 2, 2, [2, 2, 1]], "n_conv_per_stage": 1,
            "n_conv_per_stage_decoder": 1, "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "deep_supervision": True}


def test_nnunets_network_trains_with_deep_supervision_on_its_loss(run, stores, tmp_path):
    """PlainConvUNet's heads at full, 1/2 and 1/4 resolution against the label downsampled to each (nnU-Net's weights
    2/3, 1/3, 0); the run resumes exactly; another loss is refused before the run folder is touched."""
    args = ["--model", "plainconvunet", "--model-config", json.dumps(PLAIN_DS), "--loss", "dc_and_bce", "--clip-grad-norm", 12, "--epochs", 3]
    train(run, stores / "cache", tmp_path / "full", *args, "--max-steps", 4)
    train(run, stores / "cache", tmp_path / "split", *args, "--max-steps", 2)
    train(run, stores / "cache", tmp_path / "split", *args, "--max-steps", 4, "--resume")
    assert (tmp_path / "full" / "last.pt").read_bytes() == (tmp_path / "split" / "last.pt").read_bytes()
    cfg = json.loads((tmp_path / "full" / "config.json").read_text())
    assert cfg["model"]["name"] == "plainconvunet" and cfg["model"]["deep_supervision"] is True
    p = train(run, stores / "cache", tmp_path / "other", "--model", "plainconvunet", "--model-config", json.dumps(PLAIN_DS), "--epochs", 1,
              check_rc=2)
    assert "--loss dc_and_bce" in p.stderr and not (tmp_path / "other").exists()
