"""`import segscale` from a fresh virtual environment (tests/python/run.sh installs it with `pip install .`):
batches equal to the C++ training loader's, zero-copy arrays, the store read by `webdataset`, ranks,
errors, and the MONAI example."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import segscale
from conftest import case_study_pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stores(make_store):
    return make_store(5, (36, 36, 36), case_study_pipeline((16, 16, 16)), modes=(("--cache",), ("--copies", 2)))


def epoch(loader, e):
    loader.set_epoch(e)
    return list(loader)


def test_package_is_installed_not_the_source_tree():
    assert "site-packages" in segscale.__file__, segscale.__file__


@pytest.mark.parametrize("mode", ["cache", "copies"])
@pytest.mark.parametrize("rank,world", [(0, 1), (1, 2)])
def test_batches_equal_the_cpp_training_loader(stores, tmp_path, mode, rank, world):
    tool = os.environ.get("MODEL_TOOL")
    if not tool or not Path(tool).exists():
        pytest.skip("MODEL_TOOL (torch build) not available")
    loader = segscale.Loader(stores / mode, batch_size=2, seed=11, rank=rank, world_size=world)
    for e in (0, 3):
        out = tmp_path / f"{mode}{rank}{e}"
        out.mkdir()
        p = subprocess.run([tool, "batches", stores / mode, "11", str(e), str(rank), str(world), "2", out], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        cpp_keys = json.loads(p.stdout)
        ours = epoch(loader, e)
        assert [b["keys"] for b in ours] == cpp_keys
        assert len(ours) == len(loader)
        for b in ours:
            assert b["image"].dtype == np.float32 and b["label"].dtype == np.uint8
            assert np.array_equal(b["image"], np.load(out / f"batch_{b['index']}_image.npy")), "image differs from segscale train's"
            assert np.array_equal(b["label"].astype(np.float32), np.load(out / f"batch_{b['index']}_label.npy"))


def test_epochs_differ_and_repeat(stores):
    loader = segscale.Loader(stores / "cache", batch_size=2, seed=1, rank=0, world_size=1)
    a, b, a2 = epoch(loader, 0), epoch(loader, 1), epoch(loader, 0)
    assert [x["keys"] for x in a] == [x["keys"] for x in a2]
    assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, a2))
    assert not all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, b))


def test_arrays_are_zero_copy(stores):
    torch = pytest.importorskip("torch")
    loader = segscale.Loader(stores / "cache", batch_size=2, rank=0, world_size=1)
    batch = next(iter(loader))
    image_addr, label_addr = loader._loader._last_addresses()
    img, lab = batch["image"], batch["label"]
    assert img.ctypes.data == image_addr and lab.ctypes.data == label_addr  # the C++ buffers themselves
    assert np.asarray(img).ctypes.data == image_addr
    assert torch.from_dlpack(img).data_ptr() == image_addr
    assert torch.from_dlpack(lab).data_ptr() == label_addr
    t = torch.from_dlpack(img)
    del batch, img
    assert float(t.sum()) == float(t.sum())  # the capsule keeps the buffer alive after the dict is gone
    s = segscale.Store(stores / "cache")[0]
    assert torch.from_dlpack(s["image"]).data_ptr() == s["image"].ctypes.data


def test_store_api_and_webdataset_reads_it(stores):
    wds = pytest.importorskip("webdataset")
    path = stores / "copies"
    store = segscale.Store(path)
    assert len(store) == 10 and len(store.keys) == 10
    assert store.manifest["settings"]["mode"] == "copies"
    assert store.verify() == []
    assert "[], means no problems" in segscale.Store.verify.__doc__  # help(store.verify) says what the empty list means
    assert "[], means no problems" in segscale._core.Store.verify.__doc__
    shards = sorted(str(p) for p in path.glob("shard-*.tar"))
    seen = []
    for sample in wds.WebDataset(shards, shardshuffle=False).decode():
        key = sample["__key__"]
        seen.append(key)
        ours = store[key]
        assert np.array_equal(sample["image.npy"], ours["image"])
        assert np.array_equal(sample["label.npy"], ours["label"])
        assert ours["key"] == key and ours["affine"].shape == (4, 4)
    assert seen == store.keys
    assert np.array_equal(store[-1]["image"], store[len(store) - 1]["image"])
    with pytest.raises(IndexError):
        store[10]
    with pytest.raises(KeyError):
        store["no-such-key"]


@pytest.mark.parametrize("cases,world", [(4, 2), (5, 2), (5, 3)])
def test_ranks_give_disjoint_complete_epochs(make_store, cases, world):
    root = make_store(cases, (24, 24, 24), case_study_pipeline((16, 16, 16)))
    for e in (0, 1):
        per_rank = []
        for rank in range(world):
            loader = segscale.Loader(root / "cache", batch_size=2, seed=3, rank=rank, world_size=world)
            per_rank.append([k for b in epoch(loader, e) for k in b["keys"]])
        every = [k for keys in per_rank for k in keys]
        assert len({len(k) for k in per_rank}) == 1, "every rank gets the same count (DistributedSampler)"
        assert set(every) == set(segscale.Store(root / "cache").keys), "complete"
        padding = -cases % world
        assert len(every) == cases + padding and len(set(every)) == cases, "disjoint but for DistributedSampler's padding"


def test_rank_and_world_from_the_environment(stores, monkeypatch):
    for k, v in {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(k, v)
    loader = segscale.Loader(stores / "cache", batch_size=1)
    assert (loader.rank, loader.world_size) == (1, 2)
    explicit = segscale.Loader(stores / "cache", batch_size=1, rank=1, world_size=2)
    assert [b["keys"] for b in epoch(loader, 2)] == [b["keys"] for b in epoch(explicit, 2)]


def test_corrupt_sample_raises_naming_the_shard(stores, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(stores / "cache", bad)
    store = segscale.Store(bad)
    ref = json.loads((bad / "index.json").read_text())
    shard = sorted(bad.glob("shard-*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside some member's payload
    shard.write_bytes(bytes(data))
    loader = segscale.Loader(bad, batch_size=5, rank=0, world_size=1, shuffle=False)
    with pytest.raises(segscale.Error, match=shard.name):
        list(loader)
    assert any(shard.name in line for line in segscale.Store(bad).verify())
    assert ref  # the index itself is untouched


def test_bad_arguments_raise_value_error(stores, tmp_path):
    for kwargs in ({"batch_size": 0}, {"seed": -1}, {"threads": 0}, {"prefetch": 0}, {"rank": 2, "world_size": 2}, {"rank": 0},
                   {"rank": -1, "world_size": 2}, {"batch_size": 1.5}):
        with pytest.raises(ValueError):
            segscale.Loader(stores / "cache", **kwargs)
    with pytest.raises(ValueError):
        segscale.Loader(stores / "cache").set_epoch(-1)
    with pytest.raises(segscale.Error, match="manifest.json"):
        segscale.Store(tmp_path)
    with pytest.raises(ValueError):
        segscale.apply([], seed=0)
    with pytest.raises(ValueError):
        segscale.apply(stores / "ds" / "imagesTr" / "x.nii.gz", copies=0)
    with pytest.raises(ValueError, match="pipeline"):
        segscale.apply(next((stores / "ds" / "imagesTr").glob("*.nii.gz")), pipeline={"transforms": [{"type": "warp"}]})
    with pytest.raises(ValueError):
        segscale.prep(stores / "ds", tmp_path / "o", cache=False, copies=0)
    with pytest.raises(segscale.Error, match="nope.nii.gz"):
        segscale.read_nifti(tmp_path / "nope.nii.gz")


def test_apply_read_nifti_and_prep_equal_the_cli(stores, run, tmp_path):
    ds = stores / "ds"
    image = sorted((ds / "imagesTr").glob("*.nii.gz"))[0]
    label = ds / "labelsTr" / image.name
    pipe = stores / "pipe.json"
    run("apply", "--image", image, "--label", label, "--pipeline", pipe, "--seed", 4, "--copies", 2, "--out", tmp_path / "a", check_rc=0)
    ours = segscale.apply(image, label=label, seed=4, copies=2, pipeline=json.loads(pipe.read_text()))
    assert len(ours) == 2
    for c, s in enumerate(ours):
        assert np.array_equal(s["image"], np.load(tmp_path / "a" / f"image_{c:04d}.npy"))
        assert np.array_equal(s["label"].astype(np.float32), np.load(tmp_path / "a" / f"label_{c:04d}.npy"))
    raw = segscale.read_nifti(image)
    nib = pytest.importorskip("nibabel")
    img = nib.load(str(image))
    assert np.allclose(raw["affine"], img.affine)
    assert raw["image"].shape[1:] == img.shape[:3]
    r = segscale.prep(ds, tmp_path / "store", cache=True, pipeline=pipe, quiet=True)
    assert r["finalized"] and r["samples"] == 5
    for shard in sorted((stores / "cache").glob("shard-*.tar")):
        assert (tmp_path / "store" / shard.name).read_bytes() == shard.read_bytes(), "prep from Python writes the CLI's bytes"


def test_gil_is_released_while_batches_are_built(stores):
    # Another Python thread can only run during next() if the C++ side let go of the GIL: count its ticks inside
    # the calls alone, over enough calls to spend a good fraction of a second there.
    import threading
    import time
    loader = segscale.Loader(stores / "cache", batch_size=5, rank=0, world_size=1, threads=1)
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)
    t = threading.Thread(target=tick)
    t.start()
    inside, gained, e = 0.0, 0, 0
    try:
        while inside < 0.3 and e < 200:
            loader.set_epoch(e)
            it = iter(loader)
            while True:
                before, t0 = len(ticks), time.perf_counter()
                try:
                    next(it)
                except StopIteration:
                    break
                finally:
                    inside += time.perf_counter() - t0
                    gained += len(ticks) - before
            e += 1
    finally:
        done.set()
        t.join()
    assert gained >= 5, f"{gained} ticks of another thread during {inside:.3f} s inside next()"


def test_example_trains_a_few_steps(stores):
    pytest.importorskip("monai")
    p = subprocess.run([sys.executable, ROOT / "examples" / "train_monai.py", "--store", stores / "cache", "--max-steps", "3",
                        "--channels", "4,8,16"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    steps = [l for l in p.stdout.splitlines() if l.startswith("epoch ")]
    assert len(steps) == 3 and "loss" in steps[-1]
