"""nnU-Net's sliding-window prediction (infer/nnunet_predict.h, through model_tool nnunet-predict) against nnunetv2
2.8.1's nnUNetPredictor.predict_sliding_window_return_logits itself (NNUNET_PYTHON), on the same PlainConvUNet and
weights (dynamic-network-architectures builds nnU-Net's side; segscale's side is src/model/plain_conv_unet.cc):
the Gaussian importance map (float16, exactly), and the float16 logits of whole images larger than the patch
(uneven steps), smaller than it (padding) and with and without the 8 mirrorings. The networks agree to ~1e-6 in
float32, so the float16 logits agree to a few float16 rounding steps (the sums round at every tile)."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch

MODEL_TOOL = os.environ.get("MODEL_TOOL")
NET = {"name": "plainconvunet", "input_channels": 2, "num_classes": 3, "n_stages": 3, "features_per_stage": [4, 8, 16],
       "kernel_sizes": [[1, 3, 3], 3, 3], "strides": [1, 2, [2, 2, 1]], "n_conv_per_stage": 2, "n_conv_per_stage_decoder": 2,
       "conv_bias": True, "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
       "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}

ORACLE = """
import json, sys, types, torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.inference.sliding_window_prediction import compute_gaussian
cfg, weights, image, patch, mirror, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5] == "1", sys.argv[6]
kw = {k: v for k, v in cfg.items() if k not in ("name", "input_channels", "num_classes", "deep_supervision")}
kw.update(conv_op=torch.nn.Conv3d, norm_op=torch.nn.InstanceNorm3d, dropout_op=None, nonlin=torch.nn.LeakyReLU)
net = PlainConvUNet(cfg["input_channels"], num_classes=cfg["num_classes"], deep_supervision=False, **kw)
net.load_state_dict(torch.load(weights, weights_only=False))  # segscale's weights file, written by this test
torch.set_num_threads(1)
p = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror, perform_everything_on_device=False,
                    device=torch.device("cpu"), verbose=False, allow_tqdm=False)
p.network = net
p.configuration_manager = types.SimpleNamespace(patch_size=patch)
p.label_manager = types.SimpleNamespace(num_segmentation_heads=cfg["num_classes"])
p.allowed_mirroring_axes = (0, 1, 2)
torch.save(p.predict_sliding_window_return_logits(torch.load(image, weights_only=False)), out)
torch.save(compute_gaussian(tuple(patch), sigma_scale=1. / 8, value_scaling_factor=10, device=torch.device("cpu")), out + ".gaussian.pt")
"""


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    if not MODEL_TOOL or not os.path.exists(MODEL_TOOL):
        pytest.fail("MODEL_TOOL is not set to a built binary")
    root = tmp_path_factory.mktemp("net")
    (root / "net.json").write_text(json.dumps(NET))
    subprocess.run([MODEL_TOOL, "init-net", root / "net.json", "5", root / "model.pt"], check=True, capture_output=True)
    return root


@pytest.mark.parametrize("shape,patch,mirror", [((37, 29, 20), (16, 16, 8), "1"), ((24, 40, 9), (16, 16, 8), "0"),
                                                 ((12, 20, 6), (16, 16, 8), "1")])
def test_sliding_window_logits_equal_nnunets(nnunet_python, weights, tmp_path, shape, patch, mirror):
    g = torch.Generator().manual_seed(sum(shape))
    torch.save(torch.randn(2, *shape, generator=g), tmp_path / "image.pt")
    subprocess.run([MODEL_TOOL, "nnunet-predict", weights / "net.json", weights / "model.pt", tmp_path / "image.pt", *map(str, patch), mirror,
                    tmp_path / "ours.pt"], check=True, capture_output=True)
    p = subprocess.run([nnunet_python, "-c", ORACLE, json.dumps(NET), weights / "model.pt", tmp_path / "image.pt", json.dumps(list(patch)), mirror,
                        tmp_path / "theirs.pt"], capture_output=True, text=True, timeout=600, env={**os.environ, "nnUNet_compile": "false"})
    assert p.returncode == 0, p.stderr[-4000:]
    ours, theirs = torch.load(tmp_path / "ours.pt"), torch.load(tmp_path / "theirs.pt")
    assert ours.dtype == theirs.dtype == torch.float16 and ours.shape == theirs.shape == (3, *shape)
    assert torch.equal(torch.load(tmp_path / "ours.pt.gaussian.pt"), torch.load(tmp_path / "theirs.pt.gaussian.pt"))
    diff = (ours.float() - theirs.float()).abs()
    assert (diff <= 2 ** -8 * theirs.float().abs() + 2e-3).all(), float(diff.max())  # a few float16 steps
    assert float((ours.argmax(0) == theirs.argmax(0)).float().mean()) > 0.999
