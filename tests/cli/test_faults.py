"""Fault injection and hostile inputs: full disks, kills, NaN voxels, awkward paths, read-only folders.
Nothing already written may be lost, and every failure names the file and the problem."""
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

BIN = os.environ.get("SEGSCALE_BIN")


def seg(*args, env=None, check_rc=None):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)
    if check_rc is not None:
        assert p.returncode == check_rc, p.stderr
    return p


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    seg("synth", "--out", root / "ds", "--cases", 6, "--shape", "40,36,28", "--quiet", check_rc=0)
    return root / "ds"


def files(d):
    return {f.name: f.read_bytes() for f in sorted(Path(d).iterdir())}


def assert_clean_partial_store(st):
    names = [f.name for f in Path(st).iterdir()]
    assert not [n for n in names if ".tmp." in n], names  # no half-written file left behind
    for side in Path(st).glob("shard-*.idx.json"):  # every shard with a sidecar is whole
        with tarfile.open(st / side.name.replace(".idx.json", ".tar")) as t:
            assert len(t.getmembers()) == 3 * len(json.loads(side.read_text())["samples"])


def test_full_disk_during_prep_keeps_finished_shards(dataset, tmp_path):
    seg("prep", "--data", dataset, "--out", tmp_path / "clean", "--copies", 2, "--shard-size", 1, "--workers", 1, "--quiet", check_rc=0)
    p = seg("prep", "--data", dataset, "--out", tmp_path / "st", "--copies", 2, "--shard-size", 1, "--workers", 1, "--quiet",
            env={"SEGSCALE_FAULT": "io.write_enospc:100"})
    assert p.returncode == 1 and "No space left on device" in p.stderr and "shard-0000" in p.stderr, p.stderr
    assert_clean_partial_store(tmp_path / "st")
    assert list((tmp_path / "st").glob("shard-*.idx.json")), "expected some shards finished before the disk filled"
    seg("prep", "--data", dataset, "--out", tmp_path / "st", "--copies", 2, "--shard-size", 1, "--workers", 1, "--quiet", check_rc=0)
    assert files(tmp_path / "st") == files(tmp_path / "clean")


def test_really_full_tmpfs(dataset, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root); the injected ENOSPC test covers the same path")
    try:
        p = seg("prep", "--data", dataset, "--out", mnt / "st", "--copies", 4, "--shard-size", 1, "--workers", 1, "--quiet")
        assert p.returncode == 1 and "No space left on device" in p.stderr, p.stderr
        assert_clean_partial_store(mnt / "st")
    finally:
        subprocess.run(["umount", str(mnt)])



TRAIN = ["--channels", "4,8,16", "--strides", "2,2", "--threads", "1", "--batch", "2", "--quiet", "--val-fraction", "0", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def store(torch_build, make_store):
    pipe = {"label_map": "msd", "transforms": [{"type": "spacing"}, {"type": "orientation"}, {"type": "rand_spatial_crop", "roi": [16, 16, 8]},
                                              {"type": "normalize_intensity"}]}
    return make_store(6, (40, 36, 28), pipe) / "cache"


@pytest.mark.parametrize("kill_at", [3, 5, 8])  # after the first checkpoint (step 2); mid-interval and just after one
def test_killed_training_resumes_to_the_same_weights(store, tmp_path, kill_at):
    common = ["train", "--store", store, "--epochs", 4, "--max-steps", 9, "--checkpoint-every", 2, *TRAIN]
    seg(*common, "--out", tmp_path / "full", check_rc=0)
    p = seg(*common, "--out", tmp_path / "killed", env={"SEGSCALE_FAULT": f"train.step:{kill_at}"})
    assert p.returncode == -9
    seg(*common, "--out", tmp_path / "killed", "--resume", check_rc=0)
    assert (tmp_path / "killed" / "last.pt").read_bytes() == (tmp_path / "full" / "last.pt").read_bytes()


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(store, tmp_path):
    common = ["train", "--store", store, "--epochs", 4, "--max-steps", 8, "--checkpoint-every", 1, *TRAIN, "--out", tmp_path / "r"]
    # writes through the atomic writer: splits.json (1), config.json (2), the TensorBoard file (3), checkpoint after
    # step 1 (4), step 2 (5), step 3 (6), ...
    p = seg(*common, env={"SEGSCALE_FAULT": "io.write_enospc:6"})
    assert p.returncode == 1 and "checkpoint.pt" in p.stderr and "No space left on device" in p.stderr, p.stderr
    assert not [f for f in (tmp_path / "r").iterdir() if ".tmp." in f.name]
    p = seg(*common, "--resume", check_rc=0)  # the step-2 checkpoint was intact
    assert "trained 6 steps (run total: 8 steps)" in p.stdout


def test_nan_voxels_are_reported_not_normalised_silently(dataset, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    f = ds / "imagesTr" / "BRATS_002.nii.gz"
    img = nib.load(str(f))
    data = np.asanyarray(img.dataobj).astype(np.float32)
    data[20, 18, 14, 1] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(f))
    j = json.loads(seg("inspect", f, "--json", check_rc=0).stdout)
    assert j["nan_count"] == 1
    p = seg("prep", "--data", ds, "--out", tmp_path / "st", "--cache", "--quiet")
    assert p.returncode == 1 and "case BRATS_002" in p.stderr and "non-finite" in p.stderr, p.stderr


def test_paths_with_spaces_and_non_ascii_names(tmp_path):
    root = tmp_path / "dir with spaces" / "données ü"
    seg("synth", "--out", root / "ds ü", "--cases", 2, "--shape", "24,24,16", "--layout", "brats21", "--quiet", check_rc=0)
    seg("prep", "--data", root / "ds ü", "--out", root / "störe 1", "--cache", "--quiet", check_rc=0)
    assert "OK" in seg("verify", root / "störe 1", check_rc=0).stdout
    j = json.loads(seg("inspect", root / "ds ü" / "BraTS2021_00000" / "BraTS2021_00000_t1.nii.gz", "--json", check_rc=0).stdout)
    assert j["shape"] == [24, 24, 16]
    p = seg("inspect", root / "missing é.nii.gz")
    assert p.returncode == 1 and "missing é.nii.gz" in p.stderr


def test_read_only_output_folder(dataset, tmp_path):
    base = Path("/tmp") / f"segscale-ro-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(dataset, base / "ds")
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    ro = base / "ro"
    ro.mkdir()
    try:
        ro.chmod(0o555)
        cmd = [BIN, "prep", "--data", str(base / "ds"), "--out", str(ro / "st"), "--cache", "--quiet"]
        if os.geteuid() == 0:  # root ignores permissions: run as nobody
            if shutil.which("setpriv") is None:
                pytest.skip("setpriv missing")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 1, p.stderr
        assert str(ro / "st") in p.stderr and "Permission denied" in p.stderr and "internal error" not in p.stderr, p.stderr
        # and an unreadable input is a clean error too
        (base / "ds").chmod(0o700)
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 1 and "internal error" not in p.stderr, p.stderr
    finally:
        ro.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
