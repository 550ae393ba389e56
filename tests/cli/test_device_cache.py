"""segscale train --device-cache and --amp on CPU: the device cache trains on the same samples as the host
loader (same losses), holds what it says, refuses what it cannot serve; bf16 autocast on CPU learns and
resumes bitwise exactly."""
import json

import pytest

from conftest import case_study_pipeline

NET = ["--channels", "4,8,16", "--strides", "2,2", "--threads", "1", "--loader-threads", "2", "--quiet"]


PIPE = case_study_pipeline((16, 16, 16))


@pytest.fixture(scope="module")
def stores(torch_build, make_store):
    return make_store(6, (36, 36, 36), PIPE, modes=(("--cache",), ("--copies", 2)))


@pytest.fixture(scope="module")
def f16_store(torch_build, make_store):
    return make_store(6, (36, 36, 36), PIPE, modes=(("--cache", "--dtype", "float16"),)) / "cache"


def lines(run_dir, kind):
    return [j for j in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if j["type"] == kind]


def train(run, store, out, *extra, check_rc=0, lr="1e-3", val_fraction="0.34"):
    return run("train", "--store", store, "--out", out, "--batch", 2, "--lr", lr, "--val-fraction", val_fraction, *NET, *extra, check_rc=check_rc)


@pytest.mark.parametrize("mode", ["crop", "full"])
def test_device_cache_gives_the_host_loaders_losses_and_dice(run, stores, tmp_path, mode):
    common = ["--epochs", 3, "--max-steps", 6, "--seed", 3, "--val-mode", mode]
    train(run, stores / "cache", tmp_path / "host", *common)
    p = train(run, stores / "cache", tmp_path / "dev", "--device-cache", *common)
    assert "device cache: 4 cases" in p.stdout and "on cpu (float32 images, packed labels)" in p.stdout, p.stdout
    host, dev = lines(tmp_path / "host", "step"), lines(tmp_path / "dev", "step")
    assert len(host) == len(dev) == 6
    # Batches agree to 1e-5 per voxel (the normalisation's float64 sums run in another order), so do losses.
    assert [s["loss"] for s in dev] == pytest.approx([s["loss"] for s in host], rel=1e-4)
    vh, vd = lines(tmp_path / "host", "val"), lines(tmp_path / "dev", "val")
    assert len(vh) == len(vd) == 3
    assert vd[-1]["dice_mean"] == pytest.approx(vh[-1]["dice_mean"], abs=1e-3)
    assert json.loads((tmp_path / "dev" / "config.json").read_text())["device_cache"] is True


# nnU-Net's data path in small: the foreground-oversampled crop (pos 1, neg 2), flips on three axes, one of them a list.
POS_NEG_PIPE = {"label_map": "msd", "transforms": [
    {"type": "spacing", "pixdim": [1.5, 1.5, 2.0]}, {"type": "orientation", "axcodes": "RAS"},
    {"type": "normalize_intensity", "nonzero": True, "channel_wise": True},
    {"type": "rand_crop_by_pos_neg_label", "roi": [16, 16, 16], "pos": 1, "neg": 2, "num_samples": 1},
    {"type": "rand_flip", "prob": 0.5, "spatial_axis": 0}, {"type": "rand_flip", "prob": 0.5, "spatial_axis": [1, 2]},
    {"type": "rand_flip", "prob": 0.5, "spatial_axis": 2},
    {"type": "rand_scale_intensity", "factors": 0.1, "prob": 1.0}, {"type": "rand_shift_intensity", "offsets": 0.1, "prob": 1.0}]}


def test_device_cache_covers_pos_neg_crops_and_flip_lists(run, make_store, torch_build, tmp_path):
    """The device cache draws the foreground-oversampled crop and the flips as the host loader does: same losses;
    validation over whole volumes (--val-mode full, and its former name sliding)."""
    st = make_store(6, (36, 36, 36), POS_NEG_PIPE) / "cache"
    common = ["--epochs", 2, "--max-steps", 4, "--seed", 5, "--val-mode", "full"]
    train(run, st, tmp_path / "host", *common, check_rc=0)
    p = train(run, st, tmp_path / "dev", "--device-cache", *common[:-1], "sliding", check_rc=0)
    assert "device cache: 4 cases" in p.stdout, p.stdout
    host, dev = lines(tmp_path / "host", "step"), lines(tmp_path / "dev", "step")
    assert len(host) == len(dev) == 4
    assert [s["loss"] for s in dev] == pytest.approx([s["loss"] for s in host], rel=1e-4)
    vh, vd = lines(tmp_path / "host", "val"), lines(tmp_path / "dev", "val")
    assert len(vh) == len(vd) == 2 and vd[-1]["dice_mean"] == pytest.approx(vh[-1]["dice_mean"], abs=1e-3)
    assert json.loads((tmp_path / "dev" / "config.json").read_text())["val_mode"] == "full"


def test_device_cache_on_a_float16_store_resumes_exactly(run, f16_store, tmp_path):
    st = f16_store
    train(run, st, tmp_path / "full", "--device-cache", "--epochs", 3, "--max-steps", 5)
    train(run, st, tmp_path / "split", "--device-cache", "--epochs", 3, "--max-steps", 3)
    train(run, st, tmp_path / "split", "--device-cache", "--epochs", 3, "--max-steps", 5, "--resume")
    assert (tmp_path / "full" / "last.pt").read_bytes() == (tmp_path / "split" / "last.pt").read_bytes()


@pytest.mark.parametrize("args,rc,needle", [
    (["--device-cache-mode", "halves"], 2, "--device-cache-mode"),
    (["--device-cache", "--skip-bad"], 2, "--skip-bad does not apply"),
])
def test_device_cache_bad_options(run, stores, tmp_path, args, rc, needle):
    p = train(run, stores / "cache", tmp_path / "x", *args, check_rc=rc)
    assert needle in p.stderr, p.stderr


def test_device_cache_refuses_a_copies_store(run, stores, tmp_path):
    p = train(run, stores / "copies", tmp_path / "x", "--device-cache", check_rc=2)
    assert "--device-cache needs a --cache store" in p.stderr, p.stderr


def test_amp_on_cpu_learns_as_float32_does(run, stores, tmp_path):
    common = ["--epochs", 20, "--max-steps", 40, "--device-cache"]
    train(run, stores / "cache", tmp_path / "amp", "--amp", *common, lr="3e-3", val_fraction="0")
    train(run, stores / "cache", tmp_path / "fp32", *common, lr="3e-3", val_fraction="0")
    amp, fp32 = ([s["loss"] for s in lines(tmp_path / r, "step")] for r in ("amp", "fp32"))
    assert len(amp) == len(fp32) == 40
    mean = lambda v: sum(v) / len(v)
    assert mean(amp[-5:]) < 0.95 * mean(amp[:5]), amp
    assert abs(mean(amp[-5:]) - mean(fp32[-5:])) < 0.03, (amp, fp32)


def test_amp_on_cpu_resumes_bitwise_exactly(run, stores, tmp_path):
    train(run, stores / "cache", tmp_path / "full", "--amp", "--device-cache", "--epochs", 4, "--max-steps", 6)
    train(run, stores / "cache", tmp_path / "split", "--amp", "--device-cache", "--epochs", 4, "--max-steps", 3)
    train(run, stores / "cache", tmp_path / "split", "--amp", "--device-cache", "--epochs", 4, "--max-steps", 6, "--resume")
    assert (tmp_path / "full" / "last.pt").read_bytes() == (tmp_path / "split" / "last.pt").read_bytes()
    a, b = lines(tmp_path / "full", "step"), lines(tmp_path / "split", "step")
    assert [s["loss"] for s in a] == [s["loss"] for s in b]


def test_channels_last_trains_as_the_default_layout(run, stores, tmp_path):
    # The same maths in NDHWC order: losses agree to float rounding, and a channels-last run resumes.
    common = ["--epochs", 3, "--seed", 5]
    train(run, stores / "cache", tmp_path / "ncdhw", *common, "--max-steps", 6, val_fraction="0")
    train(run, stores / "cache", tmp_path / "cl", "--channels-last", *common, "--max-steps", 3, val_fraction="0")
    train(run, stores / "cache", tmp_path / "cl", "--channels-last", *common, "--max-steps", 6, "--resume", val_fraction="0")
    a, b = ([s["loss"] for s in lines(tmp_path / r, "step")] for r in ("ncdhw", "cl"))
    assert len(a) == len(b) == 6
    assert b == pytest.approx(a, rel=1e-4)
