#!/usr/bin/python3
"""segscale prep throughput on synthetic BraTS-size cases (240x240x155, 4 x int16 + seg, LPS like BraTS).

Measures, in one run: --copies N (the case study's mode) and --cache, one worker (per-core figures) and all
cores; bytes per sample against the case study's 28 MiB .pt files; and the projection for MSD Task01's
484 cases x 100 copies on this machine next to the case study's 27 minutes on 20 x 36 vCPUs.

Usage: bench/prep_bench.py BUILD_DIR [CASES] [COPIES]"""
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

build = Path(sys.argv[1])
cases = int(sys.argv[2]) if len(sys.argv) > 2 else 4
copies = int(sys.argv[3]) if len(sys.argv) > 3 else 20
seg = str(build / "segscale")
work = Path(tempfile.mkdtemp(prefix="segscale-bench-prep-"))
cores = os.cpu_count()


def timed(args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([seg, *args], check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


try:
    timed(["synth", "--out", str(work / "ds"), "--cases", str(cases), "--layout", "brats21", "--orientation", "LPS", "--quiet"])
    # Warm-up (page cache, allocator): not measured.
    timed(["prep", "--data", str(work / "ds"), "--out", str(work / "warm"), "--cache", "--quiet"])
    shutil.rmtree(work / "warm")
    rows = []
    for mode, extra in ((f"copies {copies}", ["--copies", str(copies)]), ("cache", ["--cache"])):
        for workers in (1, cores):
            out = work / f"st-{mode.split()[0]}-{workers}"
            wall, cpu = timed(["prep", "--data", str(work / "ds"), "--out", str(out), "--workers", str(workers), "--quiet", *extra])
            m = json.loads((out / "manifest.json").read_text())
            n = m["counts"]["samples"]
            rows.append({"mode": mode, "workers": workers, "wall_s": wall, "cpu_s": cpu, "cases_per_s": cases / wall,
                         "samples_per_s": n / wall, "bytes_per_sample": m["counts"]["bytes"] / n,
                         "mb_per_s": m["counts"]["bytes"] / 1e6 / wall})
            shutil.rmtree(out)
    print(f"prep on {cases} synthetic BraTS-size cases (240x240x155 x4 int16 .nii.gz + seg), float32 images, {cores} cores")
    print(f"{'mode':<12}{'workers':>8}{'wall s':>9}{'cpu s':>8}{'cases/s':>9}{'samples/s':>11}{'MB/s':>8}{'MiB/sample':>12}")
    for r in rows:
        print(f"{r['mode']:<12}{r['workers']:>8}{r['wall_s']:>9.2f}{r['cpu_s']:>8.2f}{r['cases_per_s']:>9.2f}{r['samples_per_s']:>11.1f}"
              f"{r['mb_per_s']:>8.0f}{r['bytes_per_sample'] / 2**20:>12.2f}")
    one = next(r for r in rows if r["mode"].startswith("copies") and r["workers"] == 1)
    allc = next(r for r in rows if r["mode"].startswith("copies") and r["workers"] == cores)
    per_sample_core_s = one["cpu_s"] / (cases * copies)
    per_case_det = next(r for r in rows if r["mode"] == "cache" and r["workers"] == 1)["cpu_s"] / cases
    # Projection: 484 cases, 100 copies each = per case: deterministic stage + 100 random copies.
    proj_core_s = 484 * (per_case_det + 100 * max(per_sample_core_s - per_case_det / copies, 0))
    print(f"case study: 28 MiB per sample (float32 .pt, one crop); segscale: {one['bytes_per_sample'] / 2**20:.1f} MiB "
          f"({28 * 2**20 / one['bytes_per_sample']:.1f}x smaller)")
    print(f"projection for 484 x 100 = 48,400 samples: {proj_core_s:.0f} core-s = {proj_core_s / cores / 60:.1f} min on this "
          f"{cores}-core machine, {proj_core_s / 720 / 60:.2f} min on 720 vCPUs; case study: 27 min on 720 vCPUs "
          f"({27 * 60 * 720 / proj_core_s:.0f}x less CPU)")
    print(json.dumps({"bench": "prep", "rows": rows, "projection_core_s": proj_core_s}))
finally:
    shutil.rmtree(work, ignore_errors=True)
