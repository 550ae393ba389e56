# Shared fixtures for the Python tests (CLI behaviour and oracle parity). They run the built binaries
# named by the environment (set by ctest), never import segscale code.
import json
import os
import subprocess
from pathlib import Path

import pytest


def _binary(var):
    path = os.environ.get(var)
    if not path or not Path(path).exists():
        pytest.fail(f"{var} is not set to a built binary (run these tests through ctest)")
    return path


@pytest.fixture(scope="session")
def segscale_bin():
    return _binary("SEGSCALE_BIN")


@pytest.fixture(scope="session")
def nnunet_python():
    """The nnU-Net oracle's python (scripts/nnunet_oracle_env.sh prints it)."""
    return _binary("NNUNET_PYTHON")


@pytest.fixture(scope="session")
def sampler_tool():
    return _binary("NNUNET_SAMPLER_TOOL")


@pytest.fixture(scope="session")
def augment_tool():
    return _binary("NNUNET_AUGMENT_TOOL")


@pytest.fixture(scope="session")
def nifti_to_npy_bin():
    return _binary("NIFTI_TO_NPY")


@pytest.fixture(scope="session")
def shared_data():
    return Path(os.environ.get("SEGSCALE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture
def run(segscale_bin):
    def _run(*args, check_rc=None, cwd=None):
        p = subprocess.run([segscale_bin, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)
        if check_rc is not None:
            assert p.returncode == check_rc, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        return p
    return _run


def one_line_error(p, rc):
    """The one line a failed segscale command writes on stderr ("segscale: ..."), after checking its exit code."""
    assert p.returncode == rc, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("segscale: "), p.stderr
    return lines[0]


def synth(segscale_bin, root, cases, shape, seed, layout="msd"):
    """A synthetic dataset written by `segscale synth` into root (returned)."""
    subprocess.run([segscale_bin, "synth", "--out", str(root), "--cases", str(cases), "--shape", ",".join(map(str, shape)),
                    "--layout", layout, "--seed", str(seed), "--quiet"], check=True, capture_output=True)
    return root


def case_study_pipeline(roi, label_map="msd"):
    """The case study's chain (as `segscale apply` runs it by default) with a smaller crop for tiny phantoms."""
    return {"label_map": label_map, "transforms": [
        {"type": "spacing", "pixdim": [1.5, 1.5, 2.0]}, {"type": "orientation", "axcodes": "RAS"},
        {"type": "rand_spatial_crop", "roi": list(roi)}, {"type": "rand_flip", "prob": 0.5, "spatial_axis": 0},
        {"type": "normalize_intensity"}, {"type": "rand_scale_intensity"}, {"type": "rand_shift_intensity"}]}


def free_port():
    """A TCP port free on 127.0.0.1 right now (for rendezvous and test servers)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def has_subcommand(binary, name):
    import re
    return re.search(rf"^\s+{name}\b", subprocess.run([binary, "--help"], capture_output=True, text=True).stdout, re.M) is not None


@pytest.fixture(scope="session")
def torch_build(segscale_bin):
    """Skips the test on a build without libtorch (SEGSCALE_WITH_TORCH=OFF, the sanitizer build)."""
    if not has_subcommand(segscale_bin, "train"):
        pytest.skip("this build has no libtorch (SEGSCALE_WITH_TORCH=OFF)")


@pytest.fixture(scope="session")
def make_store(tmp_path_factory, segscale_bin):
    """make_store(cases, shape, pipeline, modes) -> folder with ds/ (synthetic MSD dataset), pipe.json and one
    store per mode (cache/, copies/), built once per session for each distinct argument set."""
    made = {}

    def make(cases, shape, pipeline, modes=(("--cache",),), seed=None):
        key = json.dumps([cases, shape, pipeline, modes, seed])
        if key in made:
            return made[key]
        root = tmp_path_factory.mktemp("store")
        synth = [segscale_bin, "synth", "--out", str(root / "ds"), "--cases", str(cases), "--shape", ",".join(map(str, shape)), "--quiet"]
        if seed is not None:
            synth += ["--seed", str(seed)]
        subprocess.run(synth, check=True, capture_output=True)
        (root / "pipe.json").write_text(json.dumps(pipeline))
        for mode in modes:
            subprocess.run([segscale_bin, "prep", "--data", str(root / "ds"), "--out", str(root / mode[0][2:]), *map(str, mode),
                            "--pipeline", str(root / "pipe.json"), "--quiet"], check=True, capture_output=True)
        made[key] = root
        return root
    return make
