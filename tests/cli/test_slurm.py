"""segscale under a real Slurm (Debian's slurmctld/slurmd 22.05 with munge, one machine, started by
slurm_cluster.py): the README's sbatch scripts (examples/slurm/) as users submit them. An array prep, and a
prep by the srun tasks of one job, give the single-machine store byte for byte; `srun segscale train` with 2
tasks gives the weights of `segscale launch` with 2 workers; scancel stops the ranks together with a
checkpoint, and a requeue resumes to the same weights."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import case_study_pipeline, free_port
from slurm_cluster import SlurmCluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slurm"
PREP = ["--copies", "3", "--seed", "11", "--shard-size", "1", "--quiet"]  # 1 MiB shards: 4 shards of 2 cases here
NET = ["--channels", "4,8,16", "--strides", "2,2", "--threads", "1", "--loader-threads", "1", "--lr", "1e-3", "--quiet"]
STEPS = 150  # a few seconds: scancel lands mid-run


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def job_env(cluster, segscale_bin, tmp_path_factory):
    """What a user's shell passes to sbatch after the README's install step (`cmake --install build --prefix P`, P/bin
    on PATH): the installed segscale, and nothing of the test's own Slurm variables."""
    prefix = tmp_path_factory.mktemp("prefix")
    p = subprocess.run(["cmake", "--install", str(Path(segscale_bin).parent), "--prefix", str(prefix)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (prefix / "bin" / "segscale").exists(), p.stdout
    return cluster.env(PATH=f"{prefix / 'bin'}:{os.environ['PATH']}")


def files(store):
    return {f.name: f.read_bytes() for f in sorted(Path(store).iterdir())}


def steps(run_dir):
    """The step numbers in metrics.jsonl (read while training appends to it: a last line still being written is
    left out)."""
    f = run_dir / "metrics.jsonl"
    lines = f.read_text().split("\n")[:-1] if f.exists() else []
    return [x["step"] for x in map(json.loads, lines) if x.get("type") == "step"]


def finished(cluster, job, want="COMPLETED"):
    st = cluster.wait(job)
    assert st == want, f"job {job} ended {st}, expected {want}\n{cluster.explain(job)}"
    return cluster.job_output(job)


def test_array_prep_is_the_single_machine_store(cluster, job_env, run, tmp_path):
    run("synth", "--out", tmp_path / "ds", "--cases", 7, "--shape", "40,36,28", "--seed", 2, "--quiet", check_rc=0)
    run("prep", "--data", tmp_path / "ds", "--out", tmp_path / "one", *PREP, check_rc=0)
    job = cluster.sbatch(EXAMPLES / "prep.sbatch", "--data", tmp_path / "ds", "--out", tmp_path / "array", *PREP, env=job_env)
    outs = [finished(cluster, f"{job}_{i}") for i in range(4)]
    for i, out in enumerate(outs):
        assert f"prep share {i}/4 (Slurm array): 1 shard written" in out, cluster.explain(f"{job}_{i}")
    # The last share to finish wrote the index; shares that finish together may each write it (the same one).
    assert sum("store complete" in out for out in outs) >= 1, outs
    one = files(tmp_path / "one")
    assert len([n for n in one if n.endswith(".tar")]) == 4
    assert files(tmp_path / "array") == one
    # The tasks of one job step share the work too (SLURM_PROCID of SLURM_NTASKS).
    job = cluster.sbatch("-n2", "--wrap", f"srun segscale prep --data {tmp_path / 'ds'} --out {tmp_path / 'tasks'} {' '.join(PREP)}",
                         env=job_env)
    out = finished(cluster, job)
    assert "prep share 0/2 (Slurm tasks)" in out and "prep share 1/2 (Slurm tasks)" in out, cluster.explain(job)
    assert files(tmp_path / "tasks") == one


@pytest.fixture(scope="module")
def store(torch_build, make_store):
    return make_store(8, (36, 36, 36), case_study_pipeline((16, 16, 16))) / "cache"


def train_options(store):
    return ["--store", store, "--batch", 1, "--max-steps", STEPS, "--val-fraction", 0, *NET]


@pytest.fixture(scope="module")
def launched(segscale_bin, store, tmp_path_factory):
    """The reference: `segscale launch` with 2 workers on this machine, no Slurm."""
    out = tmp_path_factory.mktemp("launch") / "run"
    p = subprocess.run([segscale_bin, "launch", "--nproc-per-node", "2", "--master-port", str(free_port()), "--", "segscale", "train",
                        "--out", str(out), *map(str, train_options(store))], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert steps(out) == list(range(1, STEPS + 1))
    return out


def test_srun_training_equals_launch(cluster, job_env, store, launched, tmp_path):
    # The bug: here srun's tasks failed with "Slurm: local rank 1 is outside 1 local processes".
    job = cluster.sbatch(EXAMPLES / "train.sbatch", "--out", tmp_path / "run", *train_options(store), env=job_env)
    out = finished(cluster, job)
    assert f"trained {STEPS} steps" in out and "x 2 ranks" in out, cluster.explain(job)
    assert steps(tmp_path / "run") == list(range(1, STEPS + 1))
    # The same 2-rank computation on the same machine: bitwise the same weights.
    assert (tmp_path / "run" / "last.pt").read_bytes() == (launched / "last.pt").read_bytes()


def test_scancel_checkpoints_and_requeue_resumes(cluster, job_env, store, launched, tmp_path):
    run_dir = tmp_path / "run"
    job = cluster.sbatch(EXAMPLES / "train.sbatch", "--out", run_dir, *train_options(store), env=job_env)
    cluster.wait(job, {"RUNNING"}, 60)
    deadline = time.monotonic() + 120
    while len(steps(run_dir)) < 3 and time.monotonic() < deadline and cluster.state(job)[0] == "RUNNING":
        time.sleep(0.05)
    cluster.command("scancel", job)  # Slurm sends SIGTERM to the job's steps (and its batch script)
    out = finished(cluster, job, "CANCELLED")
    # Both ranks got the signal, stopped at one step and exited 75 ("stopped, checkpoint saved").
    said = [l for l in out.splitlines() if "stopped at step" in l]
    assert len(said) == 2 and said[0] == said[1] and "checkpoint saved" in said[0], cluster.explain(job)
    assert "tasks 0-1: Exited with exit code 75" in out or all(f"task {t}: Exited with exit code 75" in out for t in (0, 1)), \
        cluster.explain(job)
    stopped = steps(run_dir)
    assert 3 <= len(stopped) < STEPS and f"stopped at step {len(stopped)}:" in said[0], (stopped, cluster.explain(job))
    assert (run_dir / "checkpoint.pt").exists()

    # The job comes back as it would after preemption; Slurm defers a requeued job's start, so start it now.
    cluster.command("scontrol", "requeue", job)
    cluster.command("scontrol", "update", f"JobId={job}", "StartTime=now")
    out = finished(cluster, job)
    assert cluster.state(job)[1]["Restarts"] == "1"
    assert f"run total: {STEPS} steps" in out, cluster.explain(job)
    assert steps(run_dir) == list(range(1, STEPS + 1))
    assert (run_dir / "last.pt").read_bytes() == (launched / "last.pt").read_bytes()


def test_batch_script_without_srun_is_refused(cluster, job_env, store, tmp_path):
    # sbatch -n2 runs the script once, with SLURM_PROCID=0 and SLURM_NTASKS=2: one process, not two ranks.
    job = cluster.sbatch("-n2", "--wrap", f"segscale train --out {tmp_path / 'run'} " + " ".join(map(str, train_options(store))), env=job_env)
    out = finished(cluster, job, "FAILED")
    assert "batch script of job" in out and "srun segscale" in out, cluster.explain(job)
    assert cluster.state(job)[1]["ExitCode"] == "2:0"  # a usage error
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_cluster_starts_where_loopback_is_the_only_interface(tmp_path):
    # A network namespace with lo alone: Slurm 22.05 cannot resolve 127.0.0.1 there until lo has a second address.
    if os.geteuid() != 0 or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (needs root)")
    here = Path(__file__).resolve().parent
    code = ("import sys; from slurm_cluster import SlurmCluster\n"
            f"c = SlurmCluster({str(tmp_path / 'slurm')!r})\n"
            "try:\n"
            "    j = c.sbatch('-n2', '--wrap', 'srun hostname')\n"
            "    st = c.wait(j, seconds=60)\n"
            "    print(st, c.job_output(j).split(), c.added_address)\n"
            "finally:\n"
            "    c.stop()\n")
    env = {**os.environ, "PYTHONPATH": f"{here}:{here.parent}"}
    p = subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && ip -4 -o addr && exec {sys.executable} -c \"$0\"", code],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count(" inet ") == 1  # 127.0.0.1 alone
    host = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip().split(".")[0]
    assert f"COMPLETED ['{host}', '{host}'] 127.0.0.2/8" in p.stdout, p.stdout + p.stderr
