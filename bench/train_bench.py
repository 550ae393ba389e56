#!/usr/bin/python3
"""Training throughput at the case study's sample size (4x128x128x64, batch 2, all cores), measured in one run:
segscale train from a --cache store (online augmentation) and from a --copies store, PyTorch + MONAI 1.4.0 in
Python on random tensors of the same shape (model + loss + Adam only, no data loading: its best case), 1 rank x
all threads against 2 ranks x half the threads each (data-parallel over Gloo, with the share of step time spent
waiting on gradient communication), and the loader alone against a consumer that does nothing, from both store
modes.

Usage: bench/train_bench.py BUILD_DIR [STEPS]"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

build = Path(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 6
seg = str(build / "segscale")
cores = os.cpu_count()
work = Path(tempfile.mkdtemp(prefix="segscale-bench-train-"))


def sh(*args):
    return subprocess.run([*map(str, args)], check=True, capture_output=True, text=True).stdout


def segscale_rate(store, out, ranks=1):
    args = ["train", "--store", store, "--out", out, "--batch", 2, "--max-steps", steps, "--epochs", 10000, "--val-fraction", 0,
            "--threads", cores // ranks, "--loader-threads", 2, "--quiet"]
    if ranks > 1:
        sh(seg, "launch", "--nproc-per-node", ranks, "--master-port", 29731, "--", seg, *args)
    else:
        sh(seg, *args)
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    step = [l for l in lines if l["type"] == "step"][1:]  # first step: warm-up
    return (statistics.median(l["samples_per_s"] for l in step), statistics.mean(l["data_wait"] for l in step),
            statistics.mean(l.get("comm_wait", 0) for l in step))


def monai_rate():
    import torch
    from monai.losses import DiceLoss
    from monai.networks.nets import UNet
    torch.set_num_threads(cores)
    torch.manual_seed(0)
    net = UNet(spatial_dims=3, in_channels=4, out_channels=3, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)
    loss_fn = DiceLoss(sigmoid=True, squared_pred=True)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    x = torch.randn(2, 4, 128, 128, 64)
    y = (torch.rand(2, 3, 128, 128, 64) > 0.9).float()
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return 2 / statistics.median(times[1:])


try:
    sh(seg, "synth", "--out", work / "ds", "--cases", 4, "--shape", "200,200,140", "--quiet")
    sh(seg, "prep", "--data", work / "ds", "--out", work / "cache", "--cache", "--quiet")
    sh(seg, "prep", "--data", work / "ds", "--out", work / "copies", "--copies", 4, "--quiet")
    rows = {}
    rows["segscale, --cache store (online augmentation)"] = segscale_rate(work / "cache", work / "run-cache")
    rows["segscale, --copies store"] = segscale_rate(work / "copies", work / "run-copies")
    if cores >= 2:
        rows[f"segscale, --cache store, 2 ranks x {cores // 2} threads (Gloo)"] = segscale_rate(work / "cache", work / "run-2r", ranks=2)
    monai = monai_rate()
    loaders = {m: json.loads(sh(build / "bench" / "bench_loader", work / m, 2, 2, 3)) for m in ("cache", "copies")}
    print(f"training at 4x128x128x64, batch 2, {cores} threads, median of steps 2..{steps}")
    print(f"  PyTorch + MONAI 1.4.0 (Python), model+loss+Adam only: {monai:6.3f} samples/s  1.00x")
    for k, (rate, wait, comm) in rows.items():
        print(f"  {k:<52} {rate:6.3f} samples/s  {rate / monai:4.2f}x  (data wait {100 * wait:.1f}%, gradient allreduce wait "
              f"{100 * comm:.1f}% of step time)")
    for m, r in loaders.items():
        print(f"  loader alone, --{m} store, 2 threads, no-op consumer: {r['samples_per_s']:7.1f} samples/s "
              f"({r['samples_per_s'] / monai:.0f}x what training consumes)")
    print(json.dumps({"bench": "train", "monai_samples_per_s": monai, "segscale": rows, "loader": loaders}))
finally:
    shutil.rmtree(work, ignore_errors=True)
