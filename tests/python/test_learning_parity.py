"""Learning parity (issue 20): `segscale train --recipe monai-brats` and a plain PyTorch + MONAI loop -- MONAI's
SegResNet, DiceLoss, torch.optim.Adam and CosineAnnealingLR as MONAI's BraTS tutorial builds them -- started
from the same weights (MONAI's initialisation, handed to segscale with --init-weights) and fed the same batches
(`segscale.Loader`, the trainer's own loader) give the same loss at every one of 20 steps.

Tolerance: both sides run the same libtorch kernels in float32 on one thread, so the only differences are
in the order of a few floating-point operations (segscale's loss and optimiser are C++ re-writes of MONAI's
and torch.optim's Python); over 20 Adam steps those stay far below 1e-5 relative. A wrong reduction, a
missed weight decay, a dropout mask drawn differently or a schedule stepped at the wrong time moves the
loss by 1e-3 or more from the first step it acts on."""
import json
import subprocess

import numpy as np
import pytest

import segscale

torch = pytest.importorskip("torch")
monai = pytest.importorskip("monai")
from monai.losses import DiceLoss  # noqa: E402
from monai.networks.nets import SegResNet  # noqa: E402

SEED = 5
STEPS = 20
MASK64 = (1 << 64) - 1


def monai_brats_chain(roi):
    """transforms/pipeline_presets.cc's monai-brats chain, with a crop that fits tiny phantoms."""
    flips = [{"type": "rand_flip", "prob": 0.5, "spatial_axis": a} for a in range(3)]
    return {"label_map": "blog", "transforms": [
        {"type": "orientation", "axcodes": "RAS"}, {"type": "spacing", "pixdim": [1.0, 1.0, 1.0]},
        {"type": "rand_spatial_crop", "roi": list(roi)}, *flips,
        {"type": "normalize_intensity", "nonzero": True, "channel_wise": True},
        {"type": "rand_scale_intensity", "factors": 0.1, "prob": 1.0},
        {"type": "rand_shift_intensity", "offsets": 0.1, "prob": 1.0}]}


def step_seed(seed, step, rank):
    """train/trainer.cc's step_seed: torch's generator is seeded with it before each step (dropout's draws)."""
    z = (seed ^ ((step * 0x9E3779B97F4A7C15) & MASK64) ^ (rank << 48)) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return (z ^ (z >> 31)) >> 1


def test_segresnet_monai_brats_learns_as_pytorch_and_monai(make_store, segscale_bin, tmp_path):
    store = make_store(4, (30, 28, 24), monai_brats_chain((16, 16, 16))) / "cache"
    model_args = {"blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1], "init_filters": 8, "dropout_prob": 0.2}
    torch.manual_seed(0)
    net = SegResNet(spatial_dims=3, in_channels=4, out_channels=3, **model_args)
    torch.save(dict(net.state_dict()), tmp_path / "init.pt")  # a plain dict, as segscale reads and writes

    # segscale: the recipe as a user runs it (init_filters 8 to keep the test fast; everything else the recipe's).
    out = tmp_path / "run"
    p = subprocess.run([segscale_bin, "train", "--store", store, "--out", out, "--recipe", "monai-brats",
                        "--model-config", json.dumps({"init_filters": 8}), "--init-weights", tmp_path / "init.pt",
                        "--max-steps", str(STEPS), "--val-fraction", "0", "--seed", str(SEED), "--threads", "1",
                        "--loader-threads", "1", "--quiet"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["name"] == "segresnet" and config["model"]["dropout_prob"] == 0.2 and config["batch"] == 1
    assert config["optimizer"] == "adam" and config["weight_decay"] == 1e-5 and config["schedule"] == "cosine"
    assert config["init_weights"] == str(tmp_path / "init.pt")
    ours = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    ours = [m for m in ours if m["type"] == "step"]
    assert len(ours) == STEPS

    # PyTorch + MONAI: the tutorial's loss, optimiser and schedule on the same batches.
    torch.set_num_threads(1)
    loss_fn = DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True, to_onehot_y=False, sigmoid=True)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config["schedule_epochs"])
    loader = segscale.Loader(store, batch_size=1, seed=SEED, rank=0, world_size=1)
    theirs, lrs, step, epoch = [], [], 0, 0
    net.train()
    while step < STEPS:
        loader.set_epoch(epoch)
        for b in loader:
            if step == STEPS:
                break
            torch.manual_seed(step_seed(SEED, step, 0))
            x, y = torch.from_numpy(np.array(b["image"])), torch.from_numpy(np.array(b["label"])).float()
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            theirs.append(loss.item())
            lrs.append(opt.param_groups[0]["lr"])
            step += 1
        sched.step()
        epoch += 1
    assert epoch > 2, "the run should span several epochs, so that the schedule acts"
    assert [m["lr"] for m in ours] == pytest.approx(lrs, rel=1e-12)
    assert [m["loss"] for m in ours] == pytest.approx(theirs, rel=1e-5, abs=1e-7)
    # The weights at the end agree too.
    from_segscale = torch.load(out / "last.pt")
    for name, value in net.state_dict().items():
        assert torch.allclose(from_segscale[name], value, rtol=1e-4, atol=1e-6), name
