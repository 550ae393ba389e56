"""nnU-Net's training loss and gradient clipping (model/nnunet_loss.h, train/step.h, through tests/tools/train_tool)
against nnunetv2 2.8.1 itself (NNUNET_PYTHON): DC_and_BCE_loss with MemoryEfficientSoftDiceLoss as
nnUNetTrainer._build_loss builds it for region datasets (batch Dice on and off), the DeepSupervisionWrapper with
the weights _build_loss derives from the plan's pooling, loss and every gradient; clip_grad_norm_ at 12 against
PyTorch's. Float64 inputs (nnU-Net's Dice sums in float32, as segscale's): loss and gradients to 1e-6 relative."""
import json
import os
import subprocess

import numpy as np
import pytest

TRAIN_TOOL = os.environ.get("TRAIN_TOOL")


@pytest.fixture(scope="module")
def train_tool():
    if not TRAIN_TOOL or not os.path.exists(TRAIN_TOOL):
        pytest.fail("TRAIN_TOOL is not set to a built binary")
    return TRAIN_TOOL


def run_nnunet(py, code):
    p = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=600, env={**os.environ, "nnUNet_compile": "false"})
    assert p.returncode == 0, p.stderr[-4000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def heads(tmp_path, shapes, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i, shape in enumerate(shapes):
        x = rng.normal(0, 2, shape)
        t = (rng.random(shape) < 0.3).astype(np.float64)
        t[0, 1] = 0  # a region absent from one sample: the smooth term decides its Dice
        x.tofile(tmp_path / f"x{i}.bin")
        t.tofile(tmp_path / f"t{i}.bin")
        out.append({"input": str(tmp_path / f"x{i}.bin"), "target": str(tmp_path / f"t{i}.bin"), "shape": list(shape),
                    "grad": str(tmp_path / f"g{i}.bin")})
    return out


NNUNET_LOSS = """
import json, numpy as np, torch
from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
spec = json.loads('''{spec}''')
loss = DC_and_BCE_loss({{}}, {{'batch_dice': spec['batch'], 'do_bg': True, 'smooth': 1e-5, 'ddp': False}}, use_ignore_label=False,
                       dice_class=MemoryEfficientSoftDiceLoss)
xs = [torch.from_numpy(np.fromfile(h['input']).reshape(h['shape'])).requires_grad_(True) for h in spec['heads']]
ts = [torch.from_numpy(np.fromfile(h['target']).reshape(h['shape'])) for h in spec['heads']]
if spec.get('pool') is None:
    l = loss(xs[0], ts[0]); weights = [1.0]
else:  # nnUNetTrainer._build_loss: scales from the pooling, weights 1/2^i, the last 0, normalised
    scales = list(list(i) for i in 1 / np.cumprod(np.vstack(spec['pool']), axis=0))[:-1]
    weights = np.array([1 / (2 ** i) for i in range(len(scales))]); weights[-1] = 0; weights = weights / weights.sum()
    l = DeepSupervisionWrapper(loss, weights)(xs, ts)
l.backward()
for x, h in zip(xs, spec['heads']):
    (x.grad if x.grad is not None else torch.zeros_like(x)).numpy().tofile(h['grad'] + '.nnunet')
print(json.dumps({{'loss': l.item(), 'weights': list(map(float, weights))}}))
"""


@pytest.mark.parametrize("batch", [False, True])
def test_dc_and_bce_equals_nnunets(train_tool, nnunet_python, tmp_path, batch):
    [h] = heads(tmp_path, [(2, 3, 6, 5, 4)], seed=int(batch))
    theirs = run_nnunet(nnunet_python, NNUNET_LOSS.format(spec=json.dumps({"batch": batch, "heads": [h]})))
    spec = {"loss": {"name": "dc_and_bce", "batch": batch}, "input": h["input"], "shape": h["shape"], "target": h["target"],
            "target_shape": h["shape"], "grad": h["grad"]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    ours = json.loads(subprocess.run([train_tool, "loss", tmp_path / "spec.json"], capture_output=True, text=True, check=True).stdout)
    assert abs(ours["loss"] - theirs["loss"]) <= 1e-6 * abs(theirs["loss"])
    assert rel(np.fromfile(h["grad"]), np.fromfile(h["grad"] + ".nnunet")) < 1e-6


@pytest.mark.parametrize("batch", [False, True])
def test_deep_supervision_loss_equals_nnunets(train_tool, nnunet_python, tmp_path, batch):
    # BraTS's 3d_fullres pooling (6 stages): five heads, 1/1, 1/2, ... of the patch; the last weighs 0
    pool = [[1, 1, 1]] + [[2, 2, 2]] * 5
    shapes = [(2, 3, 32 // 2 ** i, 32 // 2 ** i, 16 // 2 ** i) for i in range(4)] + [(2, 3, 2, 2, 1)]
    hs = heads(tmp_path, shapes, seed=5)
    theirs = run_nnunet(nnunet_python, NNUNET_LOSS.format(spec=json.dumps({"batch": batch, "heads": hs, "pool": pool})))
    (tmp_path / "ds.json").write_text(json.dumps({"batch": batch, "heads": hs}))
    ours = json.loads(subprocess.run([train_tool, "nnunet-ds-loss", tmp_path / "ds.json"], capture_output=True, text=True, check=True).stdout)
    assert ours["weights"] == pytest.approx(theirs["weights"], rel=1e-15) and theirs["weights"][-1] == 0
    assert abs(ours["loss"] - theirs["loss"]) <= 1e-6 * abs(theirs["loss"])
    for h in hs:
        assert rel(np.fromfile(h["grad"]), np.fromfile(h["grad"] + ".nnunet")) < 1e-6 or not np.fromfile(h["grad"] + ".nnunet").any()


@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clipping_equals_pytorchs(train_tool, nnunet_python, tmp_path, scale):
    rng = np.random.default_rng(3)
    grads = []
    for i, shape in enumerate([(4, 3, 3, 3, 3), (4,), (2, 4, 1, 1, 1)]):
        g = rng.normal(0, scale, shape)
        g.tofile(tmp_path / f"g{i}.bin")
        grads.append({"file": str(tmp_path / f"g{i}.bin"), "shape": list(shape), "out": str(tmp_path / f"c{i}.bin")})
    (tmp_path / "clip.json").write_text(json.dumps({"max_norm": 12, "grads": grads}))
    ours = json.loads(subprocess.run([train_tool, "clip", tmp_path / "clip.json"], capture_output=True, text=True, check=True).stdout)
    code = f"""
import json, numpy as np, torch
ps = []
for g in json.loads('''{json.dumps(grads)}'''):
    p = torch.zeros(g['shape'], dtype=torch.float64, requires_grad=True); p.grad = torch.from_numpy(np.fromfile(g['file']).reshape(g['shape'])); ps.append(p)
n = torch.nn.utils.clip_grad_norm_(ps, 12)
for p, g in zip(ps, json.loads('''{json.dumps(grads)}''')): p.grad.numpy().tofile(g['out'] + '.torch')
print(json.dumps({{'norm': n.item()}}))
"""
    theirs = run_nnunet(nnunet_python, code)
    assert ours["norm"] == pytest.approx(theirs["norm"], rel=1e-12)
    for g in grads:
        assert rel(np.fromfile(g["out"]), np.fromfile(g["out"] + ".torch")) < 1e-12
