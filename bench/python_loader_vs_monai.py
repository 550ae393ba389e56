"""Samples/s delivered to a Python loop, and memory, side by side in one run: segscale.Loader (C++ threads,
one page-cached store) vs MONAI's CacheDataset + DataLoader(num_workers=N) with the case study's random
transforms (RandSpatialCropd, RandFlipd, NormalizeIntensityd, RandScaleIntensityd, RandShiftIntensityd) over
the same store contents (the cached stage of a `segscale prep --cache` store), for 1 and 2 ranks on one machine.

    python bench/python_loader_vs_monai.py --store STORE [--roi 128,128,64] [--batch 2] [--epochs 2]
        [--workers N] [--threads N] [--ranks 1,2] [--json OUT]

Memory: the sum over every process of the run (ranks and their DataLoader workers) of RSS and of PSS (shared
pages divided among the processes sharing them, so copy-on-write pages count once), sampled every 50 ms; the
peak is reported. Needs `segscale` installed (pip install .) and MONAI.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def child(args):
    import numpy as np
    import torch
    torch.set_num_threads(1)
    roi = [int(v) for v in args.roi.split(",")]
    t_ready = time.perf_counter()
    if args.system == "segscale":
        import segscale
        loader = segscale.Loader(args.store, batch_size=args.batch, seed=0, rank=args.rank, world_size=args.world, threads=args.threads)
        def epochs():
            for e in range(args.epochs):
                loader.set_epoch(e)
                yield from loader
        count = lambda b: len(b["keys"])
    else:
        import segscale
        from monai.data import CacheDataset, DataLoader, DistributedSampler
        from monai.transforms import (Compose, NormalizeIntensityd, RandFlipd, RandScaleIntensityd, RandShiftIntensityd,
                                      RandSpatialCropd)
        store = segscale.Store(args.store)
        items = [{"image": np.array(s["image"]), "label": np.array(s["label"])} for s in (store[i] for i in range(len(store)))]
        keys = ["image", "label"]
        chain = Compose([RandSpatialCropd(keys, roi_size=roi, random_size=False), RandFlipd(keys, prob=0.5, spatial_axis=0),
                         NormalizeIntensityd("image", nonzero=True, channel_wise=True), RandScaleIntensityd("image", factors=0.1, prob=0.5),
                         RandShiftIntensityd("image", offsets=0.1, prob=0.5)])
        ds = CacheDataset(items, chain, cache_rate=1.0, num_workers=1, progress=False)
        del items
        sampler = DistributedSampler(ds, num_replicas=args.world, rank=args.rank, shuffle=True) if args.world > 1 else None
        dl = DataLoader(ds, batch_size=args.batch, shuffle=sampler is None, sampler=sampler, num_workers=args.workers,
                        persistent_workers=args.workers > 0)
        def epochs():
            for e in range(args.epochs):
                if sampler is not None:
                    sampler.set_epoch(e)
                yield from dl
        count = lambda b: b["image"].shape[0]
    setup = time.perf_counter() - t_ready
    n = 0
    t0 = time.perf_counter()
    for b in epochs():
        n += count(b)
    seconds = time.perf_counter() - t0
    print(json.dumps({"samples": n, "seconds": seconds, "setup_seconds": setup}), flush=True)


def tree(pid):
    out = [pid]
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                for c in f.read().split():
                    out += tree(int(c))
    except OSError:
        pass
    return out


def memory(pids):
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, pss


def run(args, system, world):
    procs = [subprocess.Popen([sys.executable, __file__, "--child", system, "--rank", str(r), "--world", str(world), "--store", args.store,
                               "--roi", args.roi, "--batch", str(args.batch), "--epochs", str(args.epochs), "--workers", str(args.workers),
                               "--threads", str(args.threads)], stdout=subprocess.PIPE, text=True) for r in range(world)]
    peak_rss = peak_pss = 0
    while any(p.poll() is None for p in procs):
        rss, pss = memory([q for p in procs for q in tree(p.pid)])
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.05)
    results = []
    for p in procs:
        out = p.stdout.read()
        if p.returncode != 0:
            sys.exit(f"{system} rank failed (rc {p.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    samples = sum(r["samples"] for r in results)
    seconds = max(r["seconds"] for r in results)
    return {"system": system, "ranks": world, "samples": samples, "seconds": seconds, "samples_per_s": samples / seconds,
            "peak_rss_mb": peak_rss / 2**20, "peak_pss_mb": peak_pss / 2**20, "setup_seconds": max(r["setup_seconds"] for r in results)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--roi", default="128,128,64")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="MONAI DataLoader workers per rank")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="segscale loader threads per rank")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--json")
    ap.add_argument("--child", choices=["segscale", "monai"], help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--world", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.system = args.child
        return child(args)
    rows = []
    for world in [int(w) for w in args.ranks.split(",")]:
        base = run(args, "monai", world)
        ours = run(args, "segscale", world)
        rows += [base, ours]
        print(f"| {world} | MONAI CacheDataset + DataLoader(num_workers={args.workers}) | {base['samples_per_s']:.1f} | 1.00x | "
              f"{base['peak_rss_mb']:.0f} | {base['peak_pss_mb']:.0f} |")
        print(f"| {world} | segscale.Loader(threads={args.threads}) | {ours['samples_per_s']:.1f} | "
              f"{ours['samples_per_s'] / base['samples_per_s']:.2f}x | {ours['peak_rss_mb']:.0f} | {ours['peak_pss_mb']:.0f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
