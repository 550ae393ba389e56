"""segscale export: every network segscale trains (UNet, SegResNet, DynUNet, nnU-Net's PlainConvUNet) as TorchScript and ONNX, read back by
torch.jit.load and by ONNX Runtime (PyPI, from SEGSCALE_TRACKING_VENV) and compared with segscale's own forward on
a crop of the real BraTS case (model_tool run-net), at sizes other than the export's; `segscale infer` serving
the TorchScript file gives what it gives with the run's weights; bad runs are refused naming the file."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import case_study_pipeline

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's torch 1.13 and MONAI 1.4.0 (scripts/setup.sh)
VENV = Path(os.environ.get("SEGSCALE_TRACKING_VENV", "/opt/segscale-tracking"))
MODALITIES = ("flair", "t1", "t1ce", "t2")
NETS = {
    "unet": {"name": "unet", "in_channels": 4, "out_channels": 3, "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 2},
    "segresnet": {"name": "segresnet", "in_channels": 4, "out_channels": 3, "init_filters": 8, "blocks_down": [1, 2, 2], "blocks_up": [1, 1]},
    "dynunet": {"name": "dynunet", "in_channels": 4, "out_channels": 3, "kernel_size": [3, 3, [3, 3, 1]], "strides": [1, 2, [2, 2, 1]],
                "upsample_kernel_size": [2, [2, 2, 1]], "filters": [8, 16, 32]},
    "plainconvunet": {"name": "plainconvunet", "input_channels": 4, "num_classes": 3, "n_stages": 3, "features_per_stage": [4, 8, 16],
                      "kernel_sizes": [[1, 3, 3], 3, 3], "strides": [1, 2, [2, 2, 1]], "n_conv_per_stage": 2, "n_conv_per_stage_decoder": 2,
                      "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "nonlin": "torch.nn.LeakyReLU"},
}


@pytest.fixture(scope="module")
def model_tool(torch_build):
    path = os.environ.get("MODEL_TOOL")
    if not path or not Path(path).exists():
        pytest.fail("MODEL_TOOL is not set to a built binary (run these tests through ctest)")
    return path


@pytest.fixture(scope="module")
def real_crops(tmp_path_factory, shared_data):
    """Two crops of the real case (z-scored per channel), 32x32x32 and 48x32x40: the second is not the export's size."""
    root = tmp_path_factory.mktemp("crops")
    code = f"""
import nibabel as nib, numpy as np, torch
case = "{shared_data / 'brats2021-00006' / 'BraTS2021_00006'}"
img = np.stack([nib.load(f"{{case}}_{{m}}.nii.gz").get_fdata(dtype=np.float32) for m in {MODALITIES!r}])
for name, (sx, sy, sz) in {{"a": (32, 32, 32), "b": (48, 32, 40)}}.items():
    c = img[:, 100:100 + sx, 110:110 + sy, 60:60 + sz].copy()
    c = (c - c.mean(axis=(1, 2, 3), keepdims=True)) / (c.std(axis=(1, 2, 3), keepdims=True) + 1e-8)
    np.save("{root}/" + name + ".npy", c[None].astype(np.float32))
    torch.save(torch.from_numpy(c[None].astype(np.float32)), "{root}/" + name + ".pt")
"""
    subprocess.run([SYSTEM_PYTHON, "-c", code], check=True)
    return root


def export(segscale_bin, run_dir, fmt, out, *extra, check=True):
    p = subprocess.run([segscale_bin, "export", run_dir, "--format", fmt, "--out", out, "--python", SYSTEM_PYTHON, *map(str, extra)],
                       capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def segscale_forward(model_tool, run_dir, crop, out_dir):
    out_dir.mkdir()
    p = subprocess.run([model_tool, "run-net", run_dir / "net.json", run_dir / "model.pt", crop, "eval", out_dir], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    code = f"import torch, numpy; numpy.save('{out_dir}/out.npy', torch.load('{out_dir}/out.pt').float().numpy())"
    subprocess.run([SYSTEM_PYTHON, "-c", code], check=True)
    return np.load(out_dir / "out.npy")


def rel(got, want):
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


@pytest.mark.parametrize("name", list(NETS))
def test_exported_models_equal_segscales_forward_in_torch_and_onnx_runtime(segscale_bin, model_tool, real_crops, tmp_path, name):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "net.json").write_text(json.dumps(NETS[name]))
    info = json.loads(subprocess.run([model_tool, "init-net", run_dir / "net.json", "3", run_dir / "model.pt"], check=True, capture_output=True,
                                     text=True).stdout)
    (run_dir / "config.json").write_text(json.dumps({"model": info["config"]}))
    for fmt, suffix in (("torchscript", "ts"), ("onnx", "onnx")):
        out = tmp_path / f"model.{suffix}"
        out.write_bytes(b"poison")
        p = export(segscale_bin, run_dir, fmt, out)
        assert f"exported {name}" in p.stdout and out.read_bytes() != b"poison"
    for crop in ("a", "b"):
        want = segscale_forward(model_tool, run_dir, real_crops / f"{crop}.pt", tmp_path / crop)
        got_ts = subprocess.run([SYSTEM_PYTHON, "-c", f"""
import torch, numpy
m = torch.jit.load('{tmp_path / "model.ts"}')
numpy.save('{tmp_path / crop}/ts.npy', m(torch.from_numpy(numpy.load('{real_crops / crop}.npy'))).detach().numpy())
"""], capture_output=True, text=True)
        assert got_ts.returncode == 0, got_ts.stderr
        got_ort = subprocess.run([VENV / "bin" / "python", "-c", f"""
import numpy, onnxruntime
s = onnxruntime.InferenceSession('{tmp_path / "model.onnx"}', providers=["CPUExecutionProvider"])
numpy.save('{tmp_path / crop}/ort.npy', s.run(["logits"], {{"image": numpy.load('{real_crops / crop}.npy')}})[0])
"""], capture_output=True, text=True)
        assert got_ort.returncode == 0, got_ort.stderr
        ts, ort = np.load(tmp_path / crop / "ts.npy"), np.load(tmp_path / crop / "ort.npy")
        assert ts.shape == ort.shape == want.shape
        assert rel(ts, want) < 1e-5, (name, crop, rel(ts, want))
        assert rel(ort, want) < 1e-4, (name, crop, rel(ort, want))


def test_infer_serves_the_exported_torchscript_as_the_run(segscale_bin, make_store, shared_data, torch_build, tmp_path):
    root = make_store(4, (40, 40, 32), case_study_pipeline((16, 16, 16)))
    run_dir = tmp_path / "run"
    subprocess.run([segscale_bin, "train", "--store", root / "cache", "--out", run_dir, "--max-steps", "2", "--batch", "2", "--val-fraction", "0",
                    "--channels", "4,8", "--strides", "2", "--threads", "1", "--quiet"], check=True, capture_output=True)
    export(segscale_bin, run_dir, "torchscript", tmp_path / "model.ts")
    case = shared_data / "brats2021-00006" / "BraTS2021_00006"
    images = ",".join(f"{case}_{m}.nii.gz" for m in MODALITIES)
    outs = {}
    for tag, model in (("weights", run_dir / "last.pt"), ("ts", tmp_path / "model.ts")):
        out = tmp_path / f"{tag}.nii.gz"
        p = subprocess.run([segscale_bin, "infer", "--model", model, "--image", images, "--out", out, "--probabilities", "--threads", "2", "--preview", "no"],
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        outs[tag] = out
    code = f"""
import nibabel as nib, numpy as np
a, b = (nib.load(str(p)).get_fdata() for p in ("{outs['weights']}", "{outs['ts']}"))
pa, pb = (nib.load(str(p).replace(".nii.gz", "_probabilities.nii.gz")).get_fdata() for p in ("{outs['weights']}", "{outs['ts']}"))
print(int((a != b).sum()), float(np.abs(pa - pb).max()))
"""
    diff, prob = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(prob) < 1e-5 and int(diff) == 0


def test_bad_runs_are_refused_naming_the_file(segscale_bin, tmp_path):
    p = export(segscale_bin, tmp_path / "nothing", "onnx", tmp_path / "m.onnx", check=False)
    assert p.returncode == 1 and "nothing" in p.stderr and "no such run" in p.stderr
    (tmp_path / "run").mkdir()
    p = export(segscale_bin, tmp_path / "run", "onnx", tmp_path / "m.onnx", check=False)
    assert p.returncode == 1 and "config.json" in p.stderr
    (tmp_path / "run" / "config.json").write_text(json.dumps({"model": NETS["unet"]}))
    p = export(segscale_bin, tmp_path / "run", "onnx", tmp_path / "m.onnx", check=False)
    assert p.returncode == 1 and "no model.pt or last.pt" in p.stderr
    (tmp_path / "run" / "model.pt").write_bytes(b"not weights")
    p = export(segscale_bin, tmp_path / "run", "torchscript", tmp_path / "m.ts", check=False)
    assert p.returncode == 1 and "model.pt: not model weights" in p.stderr
    assert not (tmp_path / "m.ts").exists() and not (tmp_path / "m.onnx").exists()
    p = subprocess.run([segscale_bin, "export", tmp_path / "run", "--format", "onnx", "--out", tmp_path / "m.onnx", "--python", "/nonexistent/python"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "/nonexistent/python" in p.stderr
