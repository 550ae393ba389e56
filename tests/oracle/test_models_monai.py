"""segscale's SegResNet and DynUNet against MONAI 1.4.0 (monai.networks.nets): state_dict names, order and shapes,
parameter counts, the config round trip (segscale's config() is a valid set of MONAI constructor arguments),
weights moving both ways with strict loading, forward in float64 to 1e-6 relative, every parameter gradient and
the input gradient of sum(out * fixed) to 1e-4 relative, BatchNorm running statistics after a training pass, and
DynUNet's training-mode deep-supervision stack. Tiny nets and volumes (model_tool init-net / run-net)."""
import json
import subprocess

import pytest
import torch

monai = pytest.importorskip("monai")
from monai.networks.nets import DynUNet, SegResNet  # noqa: E402

import model_tool_client  # noqa: E402
from model_tool_client import init, rel, tool  # noqa: E402


def monai_net(cfg):
    """MONAI's network from a segscale config (lists become the tuples MONAI's factories take)."""
    kw = {k: v for k, v in cfg.items() if k != "name"}
    for key in ("act", "norm", "norm_name", "act_name"):
        if isinstance(kw.get(key), list):
            kw[key] = tuple(kw[key])
    return {"segresnet": SegResNet, "dynunet": DynUNet}[cfg["name"]](**kw)


def check_layout(tmp_path, cfg):
    """Names, order, shapes and counts; segscale's initial weights load into MONAI strictly. Returns MONAI's net."""
    info = init(tmp_path, cfg)
    ref = monai_net(info["config"])
    ours = torch.load(tmp_path / "init.pt")
    want = ref.state_dict()
    assert list(ours.keys()) == list(want.keys())
    for k, v in want.items():
        assert ours[k].shape == v.shape and ours[k].dtype == v.dtype, k
    params = dict(ref.named_parameters())  # unique tensors (DynUNet's skip_layers.* are second names)
    assert info["parameters"] == sum(p.numel() for p in params.values())
    assert info["tensors"] == len(params)
    assert info["buffers"] == len(dict(ref.named_buffers()))
    assert info["aliases"] == len(want) - len(params) - info["buffers"]
    ref.load_state_dict(ours)  # strict
    return ref


def perturb(ref, seed):
    """MONAI's weights with non-trivial norm affines and BatchNorm statistics (all of them matter in the forward)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
        for name, b in ref.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
            elif name.endswith("num_batches_tracked"):
                b.fill_(3)


def compare_run(tmp_path, ref, cfg, shape, mode, batch=2, seed=0):
    """MONAI's weights into segscale; forward, backward and state after one pass in `mode`, float64."""
    perturb(ref, seed)
    torch.save(dict(ref.state_dict()), tmp_path / "monai.pt")
    ref = ref.double().train(mode == "train")
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, cfg["in_channels"], *shape, generator=g, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    want = ref(xr)
    fixed = torch.randn(want.shape, generator=g, dtype=torch.float64)
    (want * fixed).sum().backward()
    torch.save(x, tmp_path / "x.pt")
    torch.save(fixed, tmp_path / "fixed.pt")
    out_dir = tmp_path / "run"
    out_dir.mkdir(exist_ok=True)
    tool("run-net", tmp_path / "cfg.json", tmp_path / "monai.pt", tmp_path / "x.pt", mode, out_dir, tmp_path / "fixed.pt")
    got = torch.load(out_dir / "out.pt")
    assert got.dtype == torch.float64 and got.shape == want.shape
    assert rel(got, want.detach()) < 1e-6
    assert rel(torch.load(out_dir / "grad_input.pt"), xr.grad) < 1e-4
    grads = torch.load(out_dir / "grads.pt")
    params = dict(ref.named_parameters())
    assert sorted(grads) == sorted(k for k, p in params.items() if p.grad is not None)
    for k, p in params.items():
        if p.grad is not None:
            assert rel(grads[k], p.grad) < 1e-4, k
    state = torch.load(out_dir / "state.pt")  # BatchNorm statistics after the pass (float32 in the file)
    for k, b in ref.named_buffers():
        if b.is_floating_point():
            assert rel(state[k].double(), b) < 1e-5, k
        else:
            assert state[k].dtype == b.dtype and torch.equal(state[k], b), k
    return got


SEGRESNET = {"name": "segresnet", "init_filters": 8, "in_channels": 2, "out_channels": 3, "blocks_down": [1, 2, 1],
             "blocks_up": [1, 1]}


@pytest.mark.parametrize("norm,upsample_mode,mode", [
    (["GROUP", {"num_groups": 8}], "nontrainable", "train"),
    ("INSTANCE", "deconv", "eval"),
    ("BATCH", "pixelshuffle", "train"),
    ("BATCH", "nontrainable", "eval"),
    (["GROUP", {"num_groups": 4}], "pixelshuffle", "eval"),
])
def test_segresnet_matches_monai(tmp_path, norm, upsample_mode, mode):
    cfg = dict(SEGRESNET, norm=norm, upsample_mode=upsample_mode)
    ref = check_layout(tmp_path, cfg)
    compare_run(tmp_path, ref, cfg, (16, 16, 8), mode)


def test_segresnet_without_final_conv_and_with_dropout_in_eval_mode(tmp_path):
    cfg = dict(SEGRESNET, use_conv_final=False, dropout_prob=0.2, blocks_down=[1, 1, 1, 1], blocks_up=[1, 0, 1])
    ref = check_layout(tmp_path, cfg)
    out = compare_run(tmp_path, ref, cfg, (16, 8, 16), "eval", batch=1)
    assert out.shape == (1, 8, 16, 8, 16)  # init_filters channels


def test_segresnet_brats_tutorial_configuration(tmp_path):
    cfg = {"name": "segresnet", "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1], "init_filters": 16, "in_channels": 4,
           "out_channels": 3, "dropout_prob": 0.2}
    info = init(tmp_path, cfg)
    assert info["parameters"] == 4702227
    ref = SegResNet(blocks_down=[1, 2, 2, 4], blocks_up=[1, 1, 1], init_filters=16, in_channels=4, out_channels=3,
                    dropout_prob=0.2)
    assert info["parameters"] == sum(p.numel() for p in ref.parameters())
    ours = torch.load(tmp_path / "init.pt")
    assert list(ours.keys()) == list(ref.state_dict().keys())
    ref.load_state_dict(ours)
    assert info["divisors"] == [8, 8, 8]


DYN_ISO = {"kernel_size": [3, 3, 3, 3], "strides": [1, 2, 2, 2], "filters": [4, 8, 16, 32]}
DYN_NNUNET = {"kernel_size": [[3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
              "strides": [[1, 1, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]], "filters": [4, 8, 16, 32]}


@pytest.mark.parametrize("arch,extra,mode,shape", [
    (DYN_ISO, {}, "eval", (16, 16, 16)),
    (DYN_ISO, {"res_block": True, "deep_supervision": True, "deep_supr_num": 1}, "train", (16, 16, 16)),
    (DYN_NNUNET, {"deep_supervision": True, "deep_supr_num": 2}, "train", (16, 16, 8)),
    (DYN_NNUNET, {"res_block": True, "deep_supervision": True, "deep_supr_num": 2, "dropout": 0.1}, "eval", (16, 16, 8)),
    (DYN_NNUNET, {"res_block": True, "norm_name": "BATCH", "trans_bias": True}, "train", (16, 16, 8)),
])
def test_dynunet_matches_monai(tmp_path, arch, extra, mode, shape):
    cfg = dict({"name": "dynunet", "in_channels": 2, "out_channels": 3}, **arch, **extra)
    ref = check_layout(tmp_path, cfg)
    out = compare_run(tmp_path, ref, cfg, shape, mode)
    if mode == "train" and cfg.get("deep_supervision"):
        assert out.shape == (2, 1 + cfg["deep_supr_num"], 3, *shape)  # MONAI's stacked heads, main head first
    else:
        assert out.shape == (2, 3, *shape)


def test_dynunet_defaults_follow_monai(tmp_path):
    info = init(tmp_path, {"name": "dynunet", "in_channels": 1, "out_channels": 2, "kernel_size": [3, [3, 3, 1], 3],
                           "strides": [1, [2, 2, 1], 2]})
    c = info["config"]
    assert c["filters"] == [32, 64, 128]  # min(2 ** (5 + i), 320)
    assert c["upsample_kernel_size"] == [[2, 2, 1], 2]
    assert c["norm_name"] == ["INSTANCE", {"affine": True}]
    assert c["act_name"] == ["LEAKYRELU", {"inplace": True, "negative_slope": 0.01}]
    assert info["divisors"] == [4, 4, 2]
    ref = DynUNet(3, 1, 2, kernel_size=[3, [3, 3, 1], 3], strides=[1, [2, 2, 1], 2], upsample_kernel_size=[[2, 2, 1], 2])
    assert info["parameters"] == sum(p.numel() for p in ref.parameters())
    ref.load_state_dict(torch.load(tmp_path / "init.pt"))
    # MONAI's initialize_weights: kaiming_normal_(a=0.01) (std sqrt(2 / 1.0001 / fan_in)), zero biases
    w = torch.load(tmp_path / "init.pt")
    first = w["input_block.conv1.conv.weight"]  # fan_in 1 * 27
    assert abs(first.std().item() - (2 / 1.0001 / 27) ** 0.5) < 0.1 * (2 / 27) ** 0.5
    assert torch.all(w["output_block.conv.conv.bias"] == 0)
    assert torch.all(w["input_block.norm1.weight"] == 1)


@pytest.mark.parametrize("cfg,needle", [  # the full list: tests/model/networks_test.cc
    ({"name": "segresnet", "blocks_dwn": [1]}, "`blocks_dwn`"),
    ({"name": "dynunet", "kernel_size": [3, 3, 3], "strides": [1, 2, 2], "deep_supervision": True, "deep_supr_num": 2},
     "`deep_supr_num`"),
])
def test_bad_configs_are_usage_errors_naming_the_key(tmp_path, cfg, needle):
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    p = subprocess.run([model_tool_client.TOOL, "init-net", tmp_path / "cfg.json", "0", tmp_path / "w.pt"], capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and len(p.stderr.strip().splitlines()) == 1
