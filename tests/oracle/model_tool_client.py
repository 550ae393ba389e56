"""The oracle tests' handle on segscale's model code: tests/tools/model_tool (MODEL_TOOL, set by ctest), run once
per call with one thread of torch here, so both sides compute alike."""
import json
import os
import subprocess

import torch

TOOL = os.environ.get("MODEL_TOOL")
torch.set_num_threads(1)


def tool(*args):
    """model_tool's stdout for `args`; fails the test with its stderr when it exits non-zero."""
    p = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def init(tmp_path, cfg, seed=0):
    """segscale's network for `cfg` initialised with `seed` (tmp_path/init.pt); cfg.json then holds segscale's own
    config() of it. Returns model_tool init-net's report (parameters, tensors, buffers, aliases, config)."""
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    info = json.loads(tool("init-net", tmp_path / "cfg.json", seed, tmp_path / "init.pt"))
    (tmp_path / "cfg.json").write_text(json.dumps(info["config"]))  # from here on: segscale's own config()
    return info


def rel(got, want):
    """Largest absolute difference relative to the largest magnitude of `want` (tensors)."""
    scale = want.abs().max().item()
    return (got - want).abs().max().item() / (scale if scale > 0 else 1.0)
