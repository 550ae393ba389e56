#!/usr/bin/python3
"""The nnunet recipe's training step against nnunetv2 2.8.1's own nnUNetTrainer.train_step, on the same plan, initial
weights and batches, measured in one run on the CPU (same thread count both sides).

- nnU-Net: nnUNetTrainer(plans, 3d_fullres).initialize() (PlainConvUNet with deep supervision, DC_and_BCE over regions,
  SGD 1e-2 / 0.99 Nesterov, clipping at 12), train_step on each batch (its deep-supervision targets made by its own
  DownsampleSegForDSTransform beforehand, as its loader does; not timed).
- segscale: train_tool nnunet-steps (train/step.h TrainStep with the recipe's optimiser and loss, as `segscale train
  --recipe nnunet` runs it; the deep-supervision targets are made inside the step, timed).
The plan is `segscale plan`'s (equal to nnU-Net's) for synthetic BraTS-like cases of SHAPE; the first step of each side
is a warm-up. Both sides run the same PyTorch kernels (train_tool links the wheel's libtorch), so the ratio shows the
step's overhead, not a different convolution: the gain segscale offers is in the data path (bench/nnunet_data_path.py).
The losses are printed too: they agree (tests/oracle/test_nnunet_learning_parity.py asserts it).

Usage: bench/nnunet_train_step.py BUILD_DIR [STEPS] [THREADS] [SHAPE X,Y,Z] [NNUNET_PYTHON]
  BUILD_DIR: a build with tests/train_tool against the wheel's libtorch (scripts/build_cuda.sh --tests: build-cuda)."""
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "oracle"))
from nnunet_fixtures import train_step_parity_run  # noqa: E402

build = Path(sys.argv[1]).resolve()
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 6
threads = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
shape = tuple(int(v) for v in sys.argv[4].split(",")) if len(sys.argv) > 4 else (72, 72, 56)
nnunet_python = sys.argv[5] if len(sys.argv) > 5 else "/opt/segscale-torch2/bin/python"

with tempfile.TemporaryDirectory() as tmp:
    cfg, theirs, ours = train_step_parity_run(build / "segscale", build / "tests" / "train_tool", nnunet_python, tmp, steps, threads, shape,
                                              box=(10, 10, 8))
    s_ours, s_theirs = np.median(ours["seconds"][1:]), np.median(theirs["seconds"][1:])
    print(json.dumps({"what": "nnunet recipe step vs nnUNetTrainer.train_step, CPU", "patch": cfg["patch_size"], "batch": cfg["batch_size"],
                      "threads": threads, "steps_timed": steps - 1, "segscale_s_per_step": round(float(s_ours), 4),
                      "nnunet_s_per_step": round(float(s_theirs), 4), "ratio_nnunet_over_segscale": round(float(s_theirs / s_ours), 3),
                      "losses_equal": ours["losses"] == theirs["losses"], "parameters": "PlainConvUNet from the plan"}))
