#!/usr/bin/python3
"""The same sample store read from local disk and from a local S3 server (moto, started here on 127.0.0.1), each
as a ratio to disk measured in this run: the loader's I/O alone (bench_store_read: one ranged read per sample,
a pread or a ranged GET, CRC-checked, T threads = T requests in flight), and where the build has libtorch the
loader itself (bench_loader) and training samples/s (segscale train --max-steps).

Usage: bench/s3_bench.py BUILD_DIR [CASES] [COPIES]   (needs scripts/setup.sh's moto venv)"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

build = Path(sys.argv[1])
cases = int(sys.argv[2]) if len(sys.argv) > 2 else 4
copies = int(sys.argv[3]) if len(sys.argv) > 3 else 8
seg, loader_bench, read_bench = str(build / "segscale"), build / "bench" / "bench_loader", str(build / "bench" / "bench_store_read")
venv = Path(os.environ.get("SEGSCALE_S3_VENV", "/opt/segscale-s3"))
helper = Path(__file__).resolve().parents[1] / "tests" / "cli" / "s3_server_helper.py"
work = Path(tempfile.mkdtemp(prefix="segscale-bench-s3-"))

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
endpoint = f"http://127.0.0.1:{port}"
server = subprocess.Popen([str(venv / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3"))
try:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    helper_py = [str(venv / "bin" / "python"), str(helper)]
    key, secret = subprocess.run([*helper_py, "setup", endpoint, "bench"], check=True, capture_output=True, text=True).stdout.split()
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true")
    subprocess.run([seg, "synth", "--out", str(work / "ds"), "--cases", str(cases), "--shape", "96,96,64", "--quiet"], check=True)
    pipe = {"label_map": "msd", "transforms": [
        {"type": "spacing", "pixdim": [1.5, 1.5, 2.0]}, {"type": "orientation", "axcodes": "RAS"},
        {"type": "rand_spatial_crop", "roi": [64, 64, 32]}, {"type": "rand_flip", "prob": 0.5, "spatial_axis": 0},
        {"type": "normalize_intensity"}, {"type": "rand_scale_intensity"}, {"type": "rand_shift_intensity"}]}
    (work / "pipe.json").write_text(json.dumps(pipe))
    subprocess.run([seg, "prep", "--data", str(work / "ds"), "--out", str(work / "store"), "--copies", str(copies),
                    "--pipeline", str(work / "pipe.json"), "--quiet"], check=True, capture_output=True)
    subprocess.run([*helper_py, "upload", endpoint, key, secret, "bench", "store", str(work / "store")], check=True)
    stores = {"disk": str(work / "store"), "S3 (moto on 127.0.0.1)": "s3://bench/store"}
    print(f"store: {cases} cases x {copies} copies, {sum(f.stat().st_size for f in (work / 'store').iterdir()) / 1e6:.1f} MB")
    print("| what | disk | S3 | S3 vs disk |\n|---|---|---|---|")
    for threads in (1, 2, 4, 8):
        rate = {}
        for name, store in stores.items():
            out = subprocess.run([read_bench, store, str(threads), "3"], check=True, capture_output=True, text=True, env=env).stdout
            rate[name] = json.loads(out.strip().splitlines()[-1])["samples_per_s"]
        d, s3 = rate.values()
        print(f"| store reads, {threads} thread(s) in flight, samples/s | {d:.1f} | {s3:.1f} | {s3 / d:.2f}x |")
    if not loader_bench.exists():
        print("(no libtorch in this build: loader and training rows skipped)")
        sys.exit(0)
    for threads in (1, 2, 4, 8):
        rate = {}
        for name, store in stores.items():
            out = subprocess.run([str(loader_bench), store, str(threads), "2", "3"], check=True, capture_output=True, text=True, env=env).stdout
            rate[name] = json.loads(out.strip().splitlines()[-1])["samples_per_s"]
        d, s3 = rate.values()
        print(f"| loader, {threads} thread(s), samples/s | {d:.1f} | {s3:.1f} | {s3 / d:.2f}x |")
    steps = 6
    rate = {}
    for name, store in stores.items():
        out_dir = work / f"run-{len(rate)}"
        t0 = time.perf_counter()
        subprocess.run([seg, "train", "--store", store, "--out", str(out_dir), "--batch", "2", "--max-steps", str(steps), "--epochs", "100000",
                        "--val-fraction", "0", "--loader-threads", "2", "--quiet"], check=True, capture_output=True, env=env)
        rate[name] = 2 * steps / (time.perf_counter() - t0)
    d, s3 = rate.values()
    print(f"| train, {steps} steps of 2 (whole process), samples/s | {d:.2f} | {s3:.2f} | {s3 / d:.2f}x |")
finally:
    server.terminate()
    server.wait()
    shutil.rmtree(work, ignore_errors=True)
