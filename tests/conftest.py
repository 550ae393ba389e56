# Shared fixtures for the Python tests (CLI behaviour and oracle parity). They run the built binaries
# named by the environment (set by ctest), never import segscale code.
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
