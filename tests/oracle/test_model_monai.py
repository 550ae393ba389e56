"""segscale's UNet, DiceLoss and DiceMetric against MONAI 1.4.0: names, shapes and count of parameters,
weights moving both ways, forward pass within 1e-5 relative (float32), loss value and gradient, metric."""
import json

import numpy as np
import pytest
import torch

monai = pytest.importorskip("monai")
from monai.losses import DiceLoss  # noqa: E402
from monai.metrics import DiceMetric  # noqa: E402
from monai.networks.nets import UNet  # noqa: E402

from model_tool_client import tool  # noqa: E402


def monai_unet():
    return UNet(spatial_dims=3, in_channels=4, out_channels=3, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
                num_res_units=2)


def test_parameters_match_monai_names_order_shapes_and_count(tmp_path):
    info = json.loads(tool("init", 3, tmp_path / "w.pt"))
    assert info == {"parameters": 4810074, "tensors": 63}
    ours = torch.load(tmp_path / "w.pt")
    assert type(ours) is dict
    ref = monai_unet().state_dict()
    assert list(ours.keys()) == list(ref.keys())
    for k in ref:
        assert ours[k].shape == ref[k].shape and ours[k].dtype == torch.float32, k
    net = monai_unet()
    net.load_state_dict(ours)  # strict


def test_initialisation_follows_pytorch_defaults(tmp_path):
    tool("init", 5, tmp_path / "w.pt")
    w = torch.load(tmp_path / "w.pt")
    top_convt = w["model.2.0.conv.weight"]  # ConvTranspose3d(32 -> 3): bound 1/sqrt(3*27) = 1/9
    assert top_convt.abs().max() <= 1 / 9 and top_convt.abs().max() > 0.1
    first = w["model.0.conv.unit0.conv.weight"]  # Conv3d(4 -> 16): bound 1/sqrt(4*27)
    assert first.abs().max() <= 1 / np.sqrt(108) and first.std() > 0.5 / np.sqrt(108) / np.sqrt(3)
    assert torch.all(w["model.0.conv.unit0.adn.A.weight"] == 0.25)


@pytest.mark.parametrize("direction", ["monai_to_segscale", "segscale_to_monai"])
def test_forward_matches_monai(direction, tmp_path):
    torch.manual_seed(0)
    net = monai_unet().eval()
    if direction == "monai_to_segscale":
        torch.save(dict(net.state_dict()), tmp_path / "w.pt")
    else:
        tool("init", 11, tmp_path / "w.pt")
        net.load_state_dict(torch.load(tmp_path / "w.pt"))
    x = torch.randn(2, 4, 32, 32, 16)
    np.save(tmp_path / "x.npy", x.numpy())
    tool("forward", tmp_path / "w.pt", tmp_path / "x.npy", tmp_path / "y.npy")
    with torch.no_grad():
        want = net(x).numpy()
    got = np.load(tmp_path / "y.npy")
    assert got.shape == (2, 3, 32, 32, 16)
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel < 1e-5, rel


def test_dice_loss_value_and_gradient_match_monai(tmp_path):
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 8, 8, 6) * 3
    target = (torch.rand(2, 3, 8, 8, 6) > 0.7).float()
    target[1, 2] = 0  # an empty channel
    np.save(tmp_path / "l.npy", logits.numpy())
    np.save(tmp_path / "t.npy", target.numpy())
    ours = json.loads(tool("loss", tmp_path / "l.npy", tmp_path / "t.npy", tmp_path / "g.npy"))
    lg = logits.clone().requires_grad_(True)
    loss = DiceLoss(sigmoid=True, squared_pred=True)(lg, target)
    loss.backward()
    assert ours["loss"] == pytest.approx(loss.item(), rel=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "g.npy"), lg.grad.numpy(), rtol=1e-5, atol=1e-9)


def test_dice_metric_matches_monai(tmp_path):
    torch.manual_seed(2)
    logits = torch.randn(3, 3, 8, 8, 6)
    logits[0, 0, 0, 0, 0] = -1e-9  # sigmoid rounds to exactly 0.5: counts as foreground
    target = (torch.rand(3, 3, 8, 8, 6) > 0.6).float()
    target[1, 2] = 0  # empty truth: NaN, skipped
    target[2] = 0  # a sample with no truth at all
    np.save(tmp_path / "l.npy", logits.numpy())
    np.save(tmp_path / "t.npy", target.numpy())
    ours = json.loads(tool("metric", tmp_path / "l.npy", tmp_path / "t.npy"))
    pred = (torch.sigmoid(logits) >= 0.5).float()
    m = DiceMetric(include_background=True, reduction="mean")
    m(y_pred=pred, y=target)
    assert ours["mean"] == pytest.approx(m.aggregate().item(), rel=1e-6)
    mb = DiceMetric(include_background=True, reduction="mean_batch")
    mb(y_pred=pred, y=target)
    np.testing.assert_allclose(ours["per_channel"], mb.aggregate().numpy(), rtol=1e-6)
    raw = DiceMetric(include_background=True, reduction="none")
    raw(y_pred=pred, y=target)
    want = raw.aggregate().numpy()
    got = np.array([[np.nan if v is None else v for v in row] for row in ours["rows"]], dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("n,world,drop_last", [(10, 1, False), (10, 3, False), (10, 3, True), (2, 4, False), (17, 4, True)])
def test_epoch_order_matches_pytorch_distributed_sampler(n, world, drop_last):
    from torch.utils.data.distributed import DistributedSampler
    for epoch in (0, 3):
        for rank in range(world):
            s = DistributedSampler(list(range(n)), num_replicas=world, rank=rank, shuffle=True, seed=7, drop_last=drop_last)
            s.set_epoch(epoch)
            ours = json.loads(tool("order", n, 7, epoch, rank, world, int(drop_last)))
            assert ours == list(s), (epoch, rank)


@pytest.mark.parametrize("shape,mode", [((40, 36, 20), "constant"), ((40, 36, 12), "gaussian")])
def test_sliding_window_matches_monai(tmp_path, shape, mode):
    from monai.inferers import sliding_window_inference
    torch.manual_seed(3)
    net = monai_unet().eval()
    torch.save(dict(net.state_dict()), tmp_path / "w.pt")
    x = torch.randn(1, 4, *shape)
    np.save(tmp_path / "x.npy", x.numpy())
    tool("sliding", tmp_path / "w.pt", tmp_path / "x.npy", tmp_path / "y.npy", 32, 32, 16, 0.25, mode)
    with torch.no_grad():
        want = sliding_window_inference(x, (32, 32, 16), 2, net, overlap=0.25, mode=mode).numpy()
    got = np.load(tmp_path / "y.npy")
    assert got.shape == want.shape == (1, 3, *shape)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-5


def test_flip_tta_matches_a_monai_reimplementation(tmp_path):
    """infer --tta flip: the mean sigmoid over the 8 flips of the spatial axes, each through MONAI's
    sliding_window_inference on the flipped volume and flipped back, summed in nnU-Net v1's order."""
    from monai.inferers import sliding_window_inference
    torch.manual_seed(5)
    net = monai_unet().eval()
    torch.save(dict(net.state_dict()), tmp_path / "w.pt")
    x = torch.randn(1, 4, 40, 36, 20)
    np.save(tmp_path / "x.npy", x.numpy())
    tool("tta", tmp_path / "w.pt", tmp_path / "x.npy", tmp_path / "p.npy", 32, 32, 16, 0.25, "gaussian", "flip")
    tool("tta", tmp_path / "w.pt", tmp_path / "x.npy", tmp_path / "p0.npy", 32, 32, 16, 0.25, "gaussian", "none")
    with torch.no_grad():
        def probs(v):
            return torch.sigmoid(sliding_window_inference(v, (32, 32, 16), 2, net, overlap=0.25, mode="gaussian"))
        total = None
        for dims in [(), (4,), (3,), (4, 3), (2,), (4, 2), (3, 2), (4, 3, 2)]:
            p = probs(x) if not dims else torch.flip(probs(torch.flip(x, dims)), dims)
            total = p if total is None else total + p
        want = (total / 8).numpy()
        want0 = probs(x).numpy()
    got, got0 = np.load(tmp_path / "p.npy"), np.load(tmp_path / "p0.npy")
    assert got.shape == want.shape == (1, 3, 40, 36, 20)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(got0, want0, atol=1e-5)
    assert np.abs(got - got0).max() > 1e-3  # the flips did change the prediction
