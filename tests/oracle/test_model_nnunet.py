"""segscale's PlainConvUNet (src/model/plain_conv_unet.cc) against dynamic-network-architectures 0.4.4's, as
nnU-Net builds it from a plans file's arch_kwargs: state_dict names (every second name included) and shapes,
parameter counts, weights moving both ways with strict loading, forward in float64 to 1e-6 relative and every
gradient of sum(out * fixed) to 1e-4, and nnU-Net's He initialisation (kaiming_normal_(a=0.01), zero biases).
Tiny nets and volumes (model_tool init-net / run-net); nnU-Net's BraTS plan for the counts."""
import json

import pytest
import torch

dna = pytest.importorskip("dynamic_network_architectures")
from dynamic_network_architectures.architectures.unet import PlainConvUNet  # noqa: E402

from model_tool_client import init, rel, tool  # noqa: E402

# nnU-Net's 3d_fullres plan for BraTS (the spec's worked example: 128x160x112 patch, 6 stages).
BRATS = {"n_stages": 6, "features_per_stage": [32, 64, 128, 256, 320, 320], "conv_op": "torch.nn.modules.conv.Conv3d",
         "kernel_sizes": [[3, 3, 3]] * 6, "strides": [[1, 1, 1]] + [[2, 2, 2]] * 5, "n_conv_per_stage": [2] * 6,
         "n_conv_per_stage_decoder": [2] * 5, "conv_bias": True, "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
         "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
         "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}
ANISO = dict(BRATS, n_stages=4, features_per_stage=[4, 8, 16, 32], kernel_sizes=[[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
             strides=[[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 1]], n_conv_per_stage=[2, 2, 2, 2], n_conv_per_stage_decoder=[2, 2, 2])
PLAIN = dict(ANISO, n_stages=3, features_per_stage=[3, 6, 12], kernel_sizes=3, strides=[1, 2, 2], n_conv_per_stage=[1, 2, 3],
             n_conv_per_stage_decoder=[1, 2], conv_bias=False, nonlin="torch.nn.ReLU", nonlin_kwargs={"inplace": True},
             norm_op_kwargs={"eps": 1e-3, "affine": True})


def dna_net(cfg):
    """nnU-Net's get_network_from_plans, without the import strings: PlainConvUNet(input_channels, n_stages, ...)."""
    kw = {k: v for k, v in cfg.items() if k not in ("name", "input_channels", "num_classes", "deep_supervision")}
    ops = {"torch.nn.modules.conv.Conv3d": torch.nn.Conv3d, "torch.nn.modules.instancenorm.InstanceNorm3d": torch.nn.InstanceNorm3d,
           "torch.nn.LeakyReLU": torch.nn.LeakyReLU, "torch.nn.ReLU": torch.nn.ReLU, None: None}
    for k in ("conv_op", "norm_op", "dropout_op", "nonlin"):
        kw[k] = ops[kw[k]]
    return PlainConvUNet(cfg["input_channels"], num_classes=cfg["num_classes"], deep_supervision=cfg.get("deep_supervision", False), **kw)


@pytest.mark.parametrize("arch,channels", [(BRATS, (4, 3)), (ANISO, (2, 3)), (PLAIN, (1, 2))])
def test_state_dict_and_counts_equal_nnunets_both_ways(tmp_path, arch, channels):
    cfg = dict(arch, name="plainconvunet", input_channels=channels[0], num_classes=channels[1])
    info = init(tmp_path, cfg)
    ref = dna_net(info["config"])
    want = ref.state_dict()
    ours = torch.load(tmp_path / "init.pt")
    assert sorted(ours) == sorted(want) and len(ours) == len(want)
    for k, v in want.items():
        assert ours[k].shape == v.shape and ours[k].dtype == v.dtype, k
    assert info["parameters"] == sum(p.numel() for p in ref.parameters())
    ref.load_state_dict(ours)  # strict: segscale's weights into nnU-Net's network
    if arch is BRATS:
        assert info["parameters"] == 31198991  # nnU-Net's BraTS 3d_fullres network (4 channels, 3 regions)
    # nnU-Net's weights back into segscale (run-net loads them strictly and runs a forward)
    torch.save(dict(ref.state_dict()), tmp_path / "dna.pt")
    torch.save(torch.zeros(1, channels[0], *[32] * 3 if arch is BRATS else [8, 16, 16 if arch is ANISO else 4]), tmp_path / "x.pt")
    (tmp_path / "run").mkdir()
    tool("run-net", tmp_path / "cfg.json", tmp_path / "dna.pt", tmp_path / "x.pt", "eval", tmp_path / "run")


def test_he_initialisation(tmp_path):
    cfg = dict(BRATS, name="plainconvunet", input_channels=4, num_classes=3)
    init(tmp_path, cfg, seed=3)
    ours = torch.load(tmp_path / "init.pt")
    for k, w in ours.items():
        if ".all_modules." in k or k.startswith("decoder.encoder."):
            continue
        if w.dim() == 5:  # convolutions, transposed convolutions, heads
            fan_in = w.shape[1] * w[0, 0].numel()
            want = (2.0 / (1 + 0.01 ** 2)) ** 0.5 / fan_in ** 0.5
            if w.numel() >= 20000:  # enough draws for the standard deviation to 2 %
                assert abs(w.std().item() / want - 1) < 0.02, k
                assert abs(w.mean().item()) < 0.05 * want, k
        elif k.endswith("bias") and "norm" not in k:
            assert torch.count_nonzero(w) == 0, k
        elif k.endswith("norm.weight"):
            assert torch.all(w == 1), k


@pytest.mark.parametrize("arch,channels,shape", [(ANISO, (2, 3), (8, 16, 12)), (PLAIN, (1, 2), (8, 12, 4))])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_forward_and_gradients_equal_nnunets(tmp_path, arch, channels, shape, mode):
    cfg = dict(arch, name="plainconvunet", input_channels=channels[0], num_classes=channels[1])
    info = init(tmp_path, cfg)
    ref = dna_net(info["config"])
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))  # norm affines and biases away from 1 and 0
    torch.save(dict(ref.state_dict()), tmp_path / "dna.pt")
    ref = ref.double().train(mode == "train")
    x = torch.randn(2, channels[0], *shape, generator=g, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    want = ref(xr)
    fixed = torch.randn(want.shape, generator=g, dtype=torch.float64)
    (want * fixed).sum().backward()
    torch.save(x, tmp_path / "x.pt")
    torch.save(fixed, tmp_path / "fixed.pt")
    (tmp_path / "run").mkdir()
    tool("run-net", tmp_path / "cfg.json", tmp_path / "dna.pt", tmp_path / "x.pt", mode, tmp_path / "run", tmp_path / "fixed.pt")
    got = torch.load(tmp_path / "run" / "out.pt")
    assert got.shape == want.shape and rel(got, want.detach()) < 1e-6
    assert rel(torch.load(tmp_path / "run" / "grad_input.pt"), xr.grad) < 1e-4
    grads = torch.load(tmp_path / "run" / "grads.pt")
    params = dict(ref.named_parameters())
    assert sorted(grads) == sorted(k for k, p in params.items() if p.grad is not None)  # the unused heads have none
    for k, p in params.items():
        if p.grad is not None:
            assert rel(grads[k], p.grad) < 1e-4, k


@pytest.mark.parametrize("change,needle", [
    ({"conv_op": "torch.nn.modules.conv.Conv2d"}, "3D network"),
    ({"dropout_op": "torch.nn.Dropout3d"}, "without dropout"),
    ({"norm_op": "torch.nn.BatchNorm3d"}, "InstanceNorm3d"),
    ({"strides": [[1, 1, 1], [2, 2, 2]]}, "needs 4 entries"),
    ({"kernel_sizes": [[2, 2, 2]] * 4}, "odd"),
    ({"n_conv_per_stage_decoder": [2, 2]}, "needs 3 entries"),
    ({"bogus": 1}, "unknown setting `bogus`"),
])
def test_bad_arch_kwargs_are_refused_naming_the_key(tmp_path, change, needle):
    cfg = dict(ANISO, name="plainconvunet", input_channels=1, num_classes=2, **change)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    import subprocess
    from model_tool_client import TOOL
    p = subprocess.run([TOOL, "init-net", tmp_path / "cfg.json", "0", tmp_path / "x.pt"], capture_output=True, text=True)
    assert p.returncode == 2 and needle in p.stderr, p.stderr
