"""The oracle tests' handle on segscale's model code: tests/tools/model_tool (MODEL_TOOL, set by ctest), run once
per call with one thread of torch here, so both sides compute alike."""
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
