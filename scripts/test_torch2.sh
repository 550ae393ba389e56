#!/usr/bin/env bash
# The libtorch seam under the other libtorch: builds the libtorch stages against a PyTorch wheel from PyPI
# (libtorch 2.x, the one GPU users link) with scripts/build_cuda.sh --tests (the GPU host's own build, in the
# same build-cuda/ folder) and runs the tests that exercise them (torch suite, train / data-parallel /
# device-cache / infer command-line tests, the MONAI model oracle, and torchrun of that wheel launching
# segscale). The wheel is a CUDA build; with no GPU its libtorch runs on the CPU, and its CUDA code is still
# compiled and linked here.
# Run by test.sh after the Debian (libtorch 1.13) build; ccache shares the libtorch-free objects with it.
# The wheel is pinned to the version of the GPU machines' image (scripts/gpu_check.sh runs there).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${SEGSCALE_TORCH2_VENV:-/opt/segscale-torch2}
build=${SEGSCALE_CUDA_BUILD:-build-cuda}
# The pinned wheel, not whichever torch a python3 on PATH has.
SEGSCALE_TORCH_PYTHON= SEGSCALE_TORCH2_PINNED=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} bash scripts/build_cuda.sh --tests
"$build/tests/segscale_torch_tests"
# nnU-Net 2.8.1 as the oracle (needs torch >= 2.1, hence this venv): segscale's plans against nnU-Net's.
nnunet_python=$(bash scripts/nnunet_oracle_env.sh)
SEGSCALE_BIN="$PWD/$build/segscale" NIFTI_TO_NPY="$PWD/$build/tests/nifti_to_npy" \
  STORAGE_TOOL="$PWD/$build/tests/storage_tool" MODEL_TOOL="$PWD/$build/tests/model_tool" \
  SEGSCALE_SHARED_DATA="$PWD/../shared/data" PYTHONPATH="$PWD/tests/oracle" SEGSCALE_TORCHRUN="$venv/bin/torchrun" \
  NNUNET_PYTHON="$nnunet_python" NNUNET_SAMPLER_TOOL="$PWD/$build/tests/nnunet_sampler_tool" \
  NNUNET_AUGMENT_TOOL="$PWD/$build/tests/nnunet_augment_tool" TRAIN_TOOL="$PWD/$build/tests/train_tool" /usr/bin/python3 -m pytest -q tests/cli/test_train.py tests/cli/test_dist.py tests/cli/test_device_cache.py \
  tests/cli/test_infer.py tests/cli/test_export.py tests/cli/test_torchrun.py tests/oracle/test_model_monai.py \
  tests/oracle/test_nnunet_plan.py tests/oracle/test_nnunet_preprocess.py tests/oracle/test_nnunet_sampler.py \
  tests/oracle/test_nnunet_augment.py tests/oracle/test_nnunet_loss.py tests/oracle/test_nnunet_predict.py \
  tests/oracle/test_nnunet_interchange.py tests/oracle/test_nnunet_learning_parity.py
