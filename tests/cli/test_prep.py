"""segscale prep / verify / inspect STORE as a user runs them: determinism whatever the split, resume after
SIGKILL, corruption found, bad cases named, and a store that Python's tarfile + numpy read without segscale."""
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, segscale_bin):
    root = tmp_path_factory.mktemp("ds")
    p = subprocess.run([segscale_bin, "synth", "--out", str(root), "--cases", "7", "--shape", "40,36,28", "--seed", "2",
                        "--quiet"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return root


PREP = ["--copies", "3", "--seed", "11", "--shard-size", "1", "--quiet"]  # 1 MiB shards: two cases each here


def prep(run, dataset, out, *extra, check_rc=0, env=None):
    args = ["prep", "--data", dataset, "--out", out, *PREP, *extra]
    if env is None:
        return run(*args, check_rc=check_rc)
    p = subprocess.run([os.environ["SEGSCALE_BIN"], *map(str, args)], capture_output=True, text=True, env={**os.environ, **env})
    if check_rc is not None:
        assert p.returncode == check_rc, p.stderr
    return p


def files(store):
    return {f.name: f.read_bytes() for f in sorted(Path(store).iterdir())}


def test_store_is_identical_whatever_the_split(run, dataset, tmp_path):
    prep(run, dataset, tmp_path / "w1", "--workers", "1")
    prep(run, dataset, tmp_path / "w2", "--workers", "2")
    p = prep(run, dataset, tmp_path / "s2", "--shard", "0/2")
    assert "not complete yet" in p.stdout
    prep(run, dataset, tmp_path / "s2", "--shard", "1/2")
    for i in range(4):  # four shares from Slurm's variables, then an explicit finalise
        prep(run, dataset, tmp_path / "s4", env={"SLURM_PROCID": str(i), "SLURM_NTASKS": "4"})
    run("prep", "--finalize", tmp_path / "s4", check_rc=0)
    ref = files(tmp_path / "w1")
    per_shard = json.loads(ref["settings.json"])["cases_per_shard"]
    assert per_shard == 2
    assert len([n for n in ref if n.endswith(".tar")]) == 4
    for other in ("w2", "s2", "s4"):
        assert files(tmp_path / other) == ref, other


def test_finalize_before_all_shares_ran_names_missing_shards(run, dataset, tmp_path):
    prep(run, dataset, tmp_path / "st", "--shard", "0/3")
    p = run("prep", "--finalize", tmp_path / "st", check_rc=1)
    assert "shards not written yet" in p.stderr and "shard-0000" in p.stderr


def test_other_settings_are_refused(run, dataset, tmp_path):
    prep(run, dataset, tmp_path / "st", "--shard", "0/2")
    p = run("prep", "--data", dataset, "--out", tmp_path / "st", "--copies", "4", "--shard-size", "1", "--shard", "1/2", check_rc=1)
    assert "other settings" in p.stderr


@pytest.mark.parametrize("fault", ["shard.committed:3", "shard.before_rename:2", "shard.before_sidecar:2"])
def test_killed_prep_resumes_to_the_identical_store(run, dataset, tmp_path, fault):
    prep(run, dataset, tmp_path / "clean", "--workers", "1")
    p = prep(run, dataset, tmp_path / "killed", "--workers", "1", check_rc=None, env={"SEGSCALE_FAULT": fault})
    assert p.returncode == -9, (p.returncode, p.stderr)
    names = {f.name for f in (tmp_path / "killed").iterdir()}
    assert "manifest.json" not in names
    for n in names:  # every visible shard is complete: a temp name, or a tar whose sidecar may be missing
        if n.endswith(".tar") and not n.startswith("."):
            with tarfile.open(tmp_path / "killed" / n) as t:
                assert len(t.getmembers()) in (9, 18)  # 1 or 2 cases x 3 copies x 3 members
    prep(run, dataset, tmp_path / "killed", "--workers", "1")
    assert files(tmp_path / "killed") == files(tmp_path / "clean")


def test_flipped_byte_is_caught_by_verify(run, dataset, tmp_path):
    st = tmp_path / "st"
    prep(run, dataset, st)
    assert "OK" in run("verify", st, check_rc=0).stdout
    index = json.loads((st / "index.json").read_text())
    s = index["samples"][4]
    off, size, _ = s["image"]
    shard = st / f"shard-{s['shard']:06d}.tar"
    data = bytearray(shard.read_bytes())
    data[off + size // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    p = run("verify", st, check_rc=1)
    assert f"{shard.name}: member {s['key']}.image.npy: CRC-32C mismatch" in p.stderr


def test_corrupt_case_is_named_and_nothing_written_is_lost(run, dataset, tmp_path):
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-r", str(dataset), str(bad)], check=True)
    img = bad / "imagesTr" / "BRATS_004.nii.gz"
    img.write_bytes(img.read_bytes()[:5000])
    p = prep(run, bad, tmp_path / "st", "--workers", "1", check_rc=1)
    assert "case BRATS_004" in p.stderr and "truncated" in p.stderr
    done = sorted(f.name for f in (tmp_path / "st").glob("shard-*.idx.json"))
    assert done == ["shard-000000.idx.json"]  # BRATS_001/002, written before BRATS_004's shard failed, are kept
    p = prep(run, bad, tmp_path / "st", "--workers", "1", "--skip-bad")
    assert "BRATS_004" in p.stderr
    m = json.loads((tmp_path / "st" / "manifest.json").read_text())
    assert [s["case"] for s in m["skipped"]] == ["BRATS_004"] and "truncated" in m["skipped"][0]["reason"]
    assert m["counts"]["samples"] == 6 * 3
    run("verify", tmp_path / "st", check_rc=0)
    assert "skipped cases" in run("inspect", tmp_path / "st", check_rc=0).stdout


def read_tar_samples(store):
    samples = {}
    for shard in sorted(Path(store).glob("shard-*.tar")):
        with tarfile.open(shard) as t:
            for m in t.getmembers():
                key, kind = m.name.split(".", 1)
                data = t.extractfile(m).read()
                samples.setdefault(key, {})[kind] = json.loads(data) if kind == "json" else np.load(io.BytesIO(data))
    return samples


def test_python_reads_exactly_what_segscale_writes(run, dataset, tmp_path):
    import crc32c
    st = tmp_path / "st"
    prep(run, dataset, st)
    samples = read_tar_samples(st)
    assert len(samples) == 21
    index = json.loads((st / "index.json").read_text())
    for s in index["samples"]:  # the index's CRC-32C is the standard one
        raw = (st / f"shard-{s['shard']:06d}.tar").read_bytes()
        for member in ("json", "image", "label"):
            off, size, crc = s[member]
            assert crc32c.crc32c(raw[off:off + size]) == crc
    # The same samples from `segscale apply` with the sample RNG keyed by (seed, case, copy).
    out = tmp_path / "apply"
    run("apply", "--image", dataset / "imagesTr" / "BRATS_003.nii.gz", "--label", dataset / "labelsTr" / "BRATS_003.nii.gz",
        "--seed", 11, "--key", "BRATS_003", "--copies", 3, "--label-map", "blog", "--out", out, check_rc=0)
    meta = json.loads((out / "meta.json").read_text())
    for c in range(3):
        s = samples[f"BRATS_003_{c:04d}"]
        assert s["image.npy"].dtype == np.float32 and s["label.npy"].dtype == np.uint8
        assert np.array_equal(s["image.npy"], np.load(out / f"image_{c:04d}.npy"))
        assert np.array_equal(s["label.npy"], np.load(out / f"label_{c:04d}.npy").astype(np.uint8))
        assert s["json"]["draws"] == meta["copies"][c]["draws"]
        assert s["json"]["case"] == "BRATS_003" and s["json"]["copy"] == c


def test_cache_mode_float16(run, dataset, tmp_path):
    run("prep", "--data", dataset, "--out", tmp_path / "c32", "--cache", "--quiet", check_rc=0)
    run("prep", "--data", dataset, "--out", tmp_path / "c16", "--cache", "--dtype", "float16", "--quiet", check_rc=0)
    a, b = read_tar_samples(tmp_path / "c32"), read_tar_samples(tmp_path / "c16")
    assert sorted(a) == [f"BRATS_{i:03d}" for i in range(1, 8)]
    for k in a:
        assert a[k]["image.npy"].shape == (4, 27, 24, 14)  # 40x36x28 at 1 mm -> 1.5x1.5x2 mm, whole volume
        assert b[k]["image.npy"].dtype == np.float16
        assert np.array_equal(b[k]["image.npy"], a[k]["image.npy"].astype(np.float16))
    m = json.loads(run("inspect", tmp_path / "c16", "--json", check_rc=0).stdout)
    assert m["settings"]["mode"] == "cache" and m["counts"]["samples"] == 7


def test_prep_usage_errors(run, dataset, tmp_path):
    assert run("prep", "--data", dataset, "--out", tmp_path / "x").returncode == 2  # no mode
    assert run("prep", "--data", dataset, "--out", tmp_path / "x", "--cache", "--copies", "2").returncode == 2
    assert run("prep", "--data", dataset, "--out", tmp_path / "x", "--cache", "--shard", "3/2").returncode == 2
    assert run("prep", "--data", dataset, "--out", tmp_path / "x", "--cache", "--dtype", "int8").returncode == 2
