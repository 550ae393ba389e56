"""segscale for Python: the sample store, the loader and the transforms of segscale's C++ core.

Arrays are NumPy arrays over the C++ buffers (no copy); ``torch.from_dlpack(a)`` and ``numpy.asarray(a)``
view the same memory. Errors raise ``segscale.Error`` (a RuntimeError) with the CLI's one-line message; bad
arguments raise ``ValueError``.
"""
import os

from . import _core
from ._core import Error

__all__ = ["Error", "Loader", "Store", "apply", "prep", "read_nifti"]


class Store(_core.Store):
    """A finalised sample store: ``len``, ``keys``, ``manifest``, ``store[i]`` or ``store[key]`` (a dict with
    ``image`` float32 [C,X,Y,Z], ``label`` uint8 [3,X,Y,Z], ``affine``, ``key``, ``case_key``, ``draws``), and
    ``verify()`` (a list of problems, empty when sound)."""

    def __init__(self, path):
        super().__init__(os.fspath(path))

    def verify(self):
        """Checks every shard member by member (tar structure, CRC-32C, npy headers, counts against the manifest),
        as ``segscale verify STORE``. Returns a list of problems, one line each (e.g. ``"shard-000001.tar: member
        X.image.npy: CRC-32C mismatch ..."``); an empty list, [], means no problems: the store is sound.
        Rerunning the ``prep`` that made the store repairs it."""
        return super().verify()


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low} (got {value!r})")


class Loader:
    """Batches from a store, as ``segscale train`` sees them: the order is PyTorch's DistributedSampler for
    (seed, epoch), the random stage of a ``--cache`` store runs in C++ threads keyed by (seed, case, epoch).

    Iterating yields ``{"image": [B,C,X,Y,Z] float32, "label": [B,3,X,Y,Z] uint8, "keys": [...], "index": b}``;
    the GIL is released while batches are built. ``rank`` and ``world_size`` come from the launcher's
    environment (torchrun, Open MPI, Slurm, SageMaker) when omitted. Call ``set_epoch(e)`` before each epoch,
    as with DistributedSampler. One iteration at a time per loader."""

    def __init__(self, store, batch_size=2, seed=0, rank=None, world_size=None, shuffle=True, drop_last=False, threads=2, prefetch=4):
        if not isinstance(store, _core.Store):
            store = Store(store)
        _check_int("batch_size", batch_size, 1)
        _check_int("seed", seed, 0)
        _check_int("threads", threads, 1)
        _check_int("prefetch", prefetch, 1)
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither")
        if rank is not None:
            _check_int("world_size", world_size, 1)
            _check_int("rank", rank, 0)
        self.store = store
        self._loader = _core.Loader(store, batch_size, seed, rank, world_size, bool(shuffle), bool(drop_last), threads, prefetch)

    @property
    def rank(self):
        return self._loader.rank

    @property
    def world_size(self):
        return self._loader.world_size

    @property
    def epoch(self):
        return self._loader.epoch

    def set_epoch(self, epoch):
        _check_int("epoch", epoch, 0)
        self._loader.set_epoch(epoch)

    def __len__(self):
        return len(self._loader)

    def __iter__(self):
        self._loader._start()
        while True:
            try:
                batch = self._loader._next()
            except StopIteration:
                return
            yield batch


def read_nifti(images):
    """A NIfTI image (one 4-D file, or one 3-D file per modality) as the loader reads it: ``{"image": float32
    [C,X,Y,Z] (nibabel's scaling applied), "affine": float64 [4,4]}``."""
    return _core.read_nifti(_paths(images))


def apply(images, label=None, seed=0, copies=1, pipeline=None, key=None):
    """The transform chain on one case, as ``segscale apply --rng sample``: a list of ``copies`` dicts with
    ``image``, ``label`` (uint8 TC/WT/ET when a label is given), ``affine`` and ``draws``. ``pipeline``: None
    (the case study's chain), a dict as in a pipeline JSON file, or a path to one."""
    _check_int("seed", seed, 0)
    _check_int("copies", copies, 1)
    if pipeline is not None and not isinstance(pipeline, dict):
        pipeline = os.fspath(pipeline)
    return _core.apply(_paths(images), None if label is None else os.fspath(label), seed, copies, pipeline, key)


def prep(data, out, cache=True, copies=0, workers=0, seed=0, pipeline=None, label_map=None, dtype="float32", skip_bad=False, quiet=False):
    """``segscale prep``: writes a store from a dataset (progress to stderr unless quiet). Returns counts
    and, once finalised, the manifest."""
    _check_int("copies", copies, 0)
    _check_int("workers", workers, 0)
    _check_int("seed", seed, 0)
    if copies:
        cache = False
    return _core.prep(os.fspath(data), os.fspath(out), bool(cache), copies, workers, seed,
                      None if pipeline is None else os.fspath(pipeline), label_map, dtype, skip_bad, quiet)


def _paths(images):
    if isinstance(images, (str, os.PathLike)):
        return [os.fspath(images)]
    paths = [os.fspath(p) for p in images]
    if not paths:
        raise ValueError("images: give at least one file")
    return paths
