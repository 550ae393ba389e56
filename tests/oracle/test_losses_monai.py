"""The training parts against MONAI 1.4 and PyTorch: DiceLoss / DiceCELoss / DiceFocalLoss and MONAI's
DeepSupervisionLoss on fixed float64 inputs (loss to 1e-6 relative, every gradient to 1e-4), the learning-rate
schedules epoch by epoch against torch.optim.lr_scheduler and MONAI's WarmupCosineSchedule over a whole run
(1e-12), and libtorch's SGD with Nesterov momentum against torch.optim.SGD over several steps."""
import json
import os
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")
monai_losses = pytest.importorskip("monai.losses")


@pytest.fixture(scope="module")
def tool():
    path = os.environ.get("TRAIN_TOOL")
    if not path:
        pytest.fail("TRAIN_TOOL is not set to the built train_tool (run these tests through ctest)")
    return path


def run_loss(tool, tmp_path, cfg, x, y):
    x.astype("<f8").tofile(tmp_path / "x.bin")
    y.astype("<f8").tofile(tmp_path / "y.bin")
    spec = {"loss": cfg, "input": str(tmp_path / "x.bin"), "shape": list(x.shape), "target": str(tmp_path / "y.bin"),
            "target_shape": list(y.shape), "grad": str(tmp_path / "g.bin")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    p = subprocess.run([tool, "loss", str(tmp_path / "spec.json")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["loss"], np.fromfile(tmp_path / "g.bin", dtype="<f8").reshape(x.shape)


def monai_loss(name, args):
    cls = {"dice": monai_losses.DiceLoss, "dicece": monai_losses.DiceCELoss, "dicefocal": monai_losses.DiceFocalLoss}[name]
    return cls(**args)


def inputs(seed, shape, heads=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, size=(shape[0], heads, *shape[1:]) if heads else shape)
    y = (rng.random(shape) < 0.3).astype(np.float64)
    y[0, -1] = 0  # an empty channel: the smoothing terms matter
    return x, y


CONFIGS = [
    ("dice", {"sigmoid": True, "squared_pred": True, "smooth_nr": 1e-5, "smooth_dr": 1e-5}),  # the case study
    ("dice", {"sigmoid": True, "squared_pred": True, "smooth_nr": 0.0, "smooth_dr": 1e-5}),  # MONAI's BraTS tutorial
    ("dice", {"softmax": True, "sigmoid": False, "include_background": False, "batch": True, "jaccard": True}),
    ("dicece", {"sigmoid": True, "batch": True, "squared_pred": False}),  # the nnunet recipe
    ("dicece", {"softmax": True, "sigmoid": False, "lambda_dice": 0.7, "lambda_ce": 1.3, "include_background": False}),
    ("dicefocal", {"sigmoid": True, "squared_pred": True, "gamma": 2.0}),
    ("dicefocal", {"sigmoid": True, "gamma": 1.5, "alpha": 0.25, "lambda_focal": 2.0, "include_background": False}),
]


@pytest.mark.parametrize("name,args", CONFIGS)
def test_loss_and_gradient_equal_monai(tool, tmp_path, name, args):
    args = {"sigmoid": False, "squared_pred": False, **args}  # MONAI's defaults where segscale's (the case study's) differ
    x, y = inputs(1, (2, 3, 5, 4, 6))
    loss, grad = run_loss(tool, tmp_path, {"name": name, **args}, x, y)
    xt = torch.tensor(x, requires_grad=True)
    ref = monai_loss(name, args)(xt, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-6)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-4, atol=1e-4 * np.abs(xt.grad.numpy()).max())


def test_one_channel_dicece_is_bce_with_logits(tool, tmp_path):
    x, y = inputs(2, (2, 1, 4, 4, 4))
    y[0, 0, 0, 0, 0] = 1
    loss, grad = run_loss(tool, tmp_path, {"name": "dicece", "sigmoid": True, "squared_pred": False}, x, y)
    xt = torch.tensor(x, requires_grad=True)
    ref = monai_losses.DiceCELoss(sigmoid=True)(xt, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-6)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("heads", [2, 3, 6])
def test_deep_supervision_loss_equals_monai(tool, tmp_path, heads):
    # DynUNet's training output [N, heads, C, X, Y, Z], every head at full size: MONAI's DeepSupervisionLoss
    # (weight_mode "exp": max(0.5**h, 0.0625), not normalised) over the unbound heads.
    x, y = inputs(3, (2, 3, 4, 4, 4), heads=heads)
    args = {"sigmoid": True, "batch": True, "squared_pred": False}
    loss, grad = run_loss(tool, tmp_path, {"name": "dicece", **args}, x, y)
    xt = torch.tensor(x, requires_grad=True)
    inner = monai_losses.DiceCELoss(**args)
    ds = monai_losses.DeepSupervisionLoss(inner, weight_mode="exp")
    weights = ds.get_weights(heads)
    # In float64 (DeepSupervisionLoss itself casts to float32): the same weights, the same inner loss.
    ref = sum(w * inner(h, torch.tensor(y)) for w, h in zip(weights, torch.unbind(xt, dim=1)))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-6)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-4, atol=1e-4 * np.abs(xt.grad.numpy()).max())
    f32 = ds(list(torch.unbind(torch.tensor(x), dim=1)), torch.tensor(y)).item()  # MONAI's own call, float32
    assert loss == pytest.approx(f32, rel=1e-5)
    if heads <= 4:  # the dynunet pipeline's sum(0.5**i * loss)
        assert weights == [0.5 ** i for i in range(heads)]


def schedule(tool, kind, epochs, warmup, min_lr, base):
    p = subprocess.run([tool, "schedule", kind, str(epochs), str(warmup), repr(min_lr), repr(base)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def torch_rates(make, epochs, base):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = make(opt)
    rates = []
    for _ in range(epochs):  # the rate an epoch trains with, then scheduler.step() at its end
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


@pytest.mark.parametrize("epochs,min_lr", [(300, 0.0), (17, 1e-6), (1, 0.0)])
def test_cosine_equals_cosine_annealing_lr(tool, epochs, min_lr):
    got = schedule(tool, "cosine", epochs, 0, min_lr, 1e-4)
    ref = torch_rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs, eta_min=min_lr), epochs, 1e-4)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("epochs", [1000, 13])
def test_poly_equals_polynomial_lr_and_nnunet(tool, epochs):
    got = schedule(tool, "poly", epochs, 0, 0.0, 1e-2)
    ref = torch_rates(lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=epochs, power=0.9), epochs, 1e-2)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-18)
    nnunet = [1e-2 * (1 - e / epochs) ** 0.9 for e in range(epochs)]  # nnU-Net's PolyLRScheduler
    np.testing.assert_allclose(got, nnunet, rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("epochs,warmup", [(100, 10), (7, 3)])
def test_warmup_cosine_equals_monai_warmup_cosine_schedule(tool, epochs, warmup):
    from monai.optimizers import WarmupCosineSchedule
    got = schedule(tool, "cosine", epochs, warmup, 0.0, 1e-4)
    ref = torch_rates(lambda o: WarmupCosineSchedule(o, warmup_steps=warmup, t_total=epochs), epochs, 1e-4)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-18)


def test_none_is_constant(tool):
    assert schedule(tool, "none", 5, 0, 0.0, 3e-4) == [3e-4] * 5


@pytest.mark.parametrize("nesterov,momentum,wd", [(True, 0.99, 3e-5), (False, 0.9, 0.0)])
def test_sgd_nesterov_equals_torch_sgd(tool, tmp_path, nesterov, momentum, wd):
    rng = np.random.default_rng(4)
    p0, a = rng.normal(size=7), rng.normal(size=7) * 0.3
    p0.astype("<f8").tofile(tmp_path / "p.bin")
    a.astype("<f8").tofile(tmp_path / "a.bin")
    spec = {"lr": 1e-2, "momentum": momentum, "nesterov": nesterov, "weight_decay": wd, "steps": 6, "n": 7,
            "params": str(tmp_path / "p.bin"), "a": str(tmp_path / "a.bin"), "out": str(tmp_path / "out.bin")}
    (tmp_path / "sgd.json").write_text(json.dumps(spec))
    p = subprocess.run([tool, "sgd", str(tmp_path / "sgd.json")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = np.fromfile(tmp_path / "out.bin", dtype="<f8")
    pt = torch.nn.Parameter(torch.tensor(p0))
    at = torch.tensor(a)
    opt = torch.optim.SGD([pt], lr=1e-2, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    for _ in range(6):
        opt.zero_grad()
        ((at * pt).sum() ** 2 + (pt ** 3).sum()).backward()
        opt.step()
    np.testing.assert_allclose(got, pt.detach().numpy(), rtol=1e-12, atol=1e-15)
    assert not np.allclose(got, p0)
