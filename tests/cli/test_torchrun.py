"""segscale train under PyTorch's own launcher, torchrun (torch.distributed.run), with its default settings: the
workers join the launcher's TCPStore (TORCHELASTIC_USE_AGENT_STORE=True) instead of serving a second one, and
with --max_restarts a worker killed mid-run makes torchrun restart the group, which resumes from the last
checkpoint and ends with the weights of an uninterrupted run, bit for bit (CPU, one thread per rank).

The launcher: $SEGSCALE_TORCHRUN (a command line; scripts/test_torch2.sh names the PyTorch 2.11 wheel's
torchrun, matching the libtorch that build links), else Debian's `/usr/bin/python3 -m torch.distributed.run`
(torch 1.13, matching the Debian build). Skipped, saying why, when neither runs."""
import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import case_study_pipeline, free_port

NET = ["--channels", "4,8,16", "--strides", "2,2", "--threads", "1", "--loader-threads", "1", "--quiet", "--lr", "1e-3",
       "--batch", "1", "--val-fraction", "0"]


def launcher():
    """The torchrun command line, as a list. Debian's 1.13 under Python 3.11 fails on its default --redirects 0
    and --tee 0 (iterating an IntFlag no longer yields 0): -r 1 -t 1 sends each worker's stdout through a log
    file and the console, which it handles. Its workers are checked every 5 s by default (2.x: 0.1 s)."""
    if os.environ.get("SEGSCALE_TORCHRUN"):
        return shlex.split(os.environ["SEGSCALE_TORCHRUN"])
    return ["/usr/bin/python3", "-m", "torch.distributed.run", "-r", "1", "-t", "1", "--monitor_interval", "0.5"]


@pytest.fixture(scope="module")
def torchrun(torch_build):
    cmd = launcher()
    try:
        p = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"no torchrun here ({' '.join(cmd)}: {e})")
    if p.returncode != 0 or "max_restarts" not in p.stdout.replace("-", "_"):
        pytest.skip(f"no torchrun here ({' '.join(cmd)} --help: rc {p.returncode}: {p.stderr.strip()[-300:]})")
    return cmd


@pytest.fixture(scope="module")
def store(torch_build, make_store):
    return make_store(8, (36, 36, 36), case_study_pipeline((16, 16, 16))) / "cache"


def steps(run_dir):
    f = run_dir / "metrics.jsonl"
    if not f.exists():
        return []
    return [json.loads(l)["step"] for l in f.read_text().splitlines() if '"step"' in l and '"loss"' in l]


def children(pid):
    """PIDs of the processes whose parent is `pid` (torchrun's workers), from /proc."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(d.name))
    return out


def worker_with_rank(launcher_pid, rank):
    """The PID of torchrun's worker whose environment says RANK=rank, or None."""
    for pid in children(launcher_pid):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return pid
    return None


@contextlib.contextmanager
def killed_on_failure(p):
    """An exception in the block (a failed assertion, a timeout) kills torchrun's whole process group and prints
    its output before it propagates."""
    try:
        yield
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        print(f"torchrun stdout:\n{out}\nstderr:\n{err}")
        raise


def run_torchrun(cmd, *args, env=None, timeout=300):
    """Runs torchrun to the end, bounded by `timeout`; on expiry kills its process group and fails with its output."""
    p = subprocess.Popen([*cmd, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"torchrun did not finish within {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    return p.returncode, out, err


def test_workers_join_the_launchers_store(torchrun, segscale_bin, store, tmp_path):
    # torchrun serves its store on --master_port and says so; segscale used to try to listen there too and fail.
    common = ["--store", store, "--max-steps", 4, *NET]
    rc, out, err = run_torchrun(torchrun, "--nproc_per_node", 2, "--master_port", free_port(), "--no_python",
                                segscale_bin, "train", "--out", tmp_path / "tr", *common)
    assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert "trained 4 steps" in out and "cannot listen" not in err
    # The same job under segscale launch (rank 0 serves the store itself): the same weights, byte for byte.
    p = subprocess.run([segscale_bin, "launch", "--nproc-per-node", "2", "--master-port", str(free_port()), "--", "segscale", "train",
                        "--out", str(tmp_path / "sl"), *map(str, common)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "tr" / "last.pt").read_bytes() == (tmp_path / "sl" / "last.pt").read_bytes()


def test_killed_worker_restarts_the_group_which_resumes_exactly(torchrun, segscale_bin, store, tmp_path):
    total = 10
    common = ["--store", store, "--max-steps", total, "--checkpoint-every", 2, "--timeout", 60, *NET]
    ref = tmp_path / "ref"
    rc, out, err = run_torchrun(torchrun, "--nproc_per_node", 2, "--master_port", free_port(), "--no_python",
                                segscale_bin, "train", "--out", ref, *common)
    assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"

    # On the first attempt only, rank 1 stops making progress at its 6th step (segscale's fault point), after
    # the checkpoint of step 4; the test then kills it. exec keeps the worker's PID: torchrun's child is segscale.
    run = tmp_path / "run"
    script = ('[ "$TORCHELASTIC_RESTART_COUNT" = 0 ] && export SEGSCALE_FAULT=train.hang:6 SEGSCALE_FAULT_RANK=1; exec "$0" "$@"')
    p = subprocess.Popen([*torchrun, "--nproc_per_node", "2", "--max_restarts", "1", "--master_port", str(free_port()), "--no_python",
                          "/bin/sh", "-c", script, segscale_bin, "train", "--out", str(run), *map(str, common)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    with killed_on_failure(p):
        deadline = time.monotonic() + 180
        while steps(run) != [1, 2, 3, 4, 5] and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert steps(run) == [1, 2, 3, 4, 5] and (run / "checkpoint.pt").exists(), f"the run did not reach step 5: {steps(run)}"
        victim = worker_with_rank(p.pid, 1)
        assert victim is not None, "no worker with RANK=1 among torchrun's children"
        os.kill(victim, signal.SIGKILL)
        out, err = p.communicate(timeout=240)
    assert p.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert "torchrun restart 1" in out and "resuming from" in out, out
    assert f"trained {total - 4} steps (run total: {total} steps)" in out, out
    assert steps(run) == list(range(1, total + 1))
    # Exact: the restarted group continued from step 4's checkpoint as if never interrupted.
    assert (run / "last.pt").read_bytes() == (ref / "last.pt").read_bytes()


def test_restart_never_resumes_a_run_from_before_the_job(torchrun, segscale_bin, store, tmp_path):
    # A folder that already held a run: the first attempt refuses it (exit 2); torchrun's restart must refuse it
    # too (not resume or delete a run the job did not write), so the job fails with the same message.
    run = tmp_path / "run"
    common = ["--store", store, "--max-steps", 2, *NET]
    p = subprocess.run([segscale_bin, "train", "--out", str(run), *map(str, common)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    before = {f.name: f.read_bytes() for f in run.iterdir()}
    time.sleep(0.1)  # the launcher starts measurably after the old run's files (/proc gives its start to 10 ms)
    rc, out, err = run_torchrun(torchrun, "--nproc_per_node", 2, "--max_restarts", 1, "--master_port", free_port(), "--no_python",
                                segscale_bin, "train", "--out", run, *common)
    assert rc != 0
    assert "attempt_1/" in err and "already holds a training run" in err, err  # restarted (its error file), and refused again
    assert {f.name: f.read_bytes() for f in run.iterdir()} == before


def test_sigterm_to_torchrun_checkpoints_and_a_rerun_resumes_exactly(torchrun, segscale_bin, store, tmp_path):
    # Stopping the job (Ctrl-C, a scheduler's SIGTERM to the launcher): torchrun sends SIGTERM to its workers and
    # SIGKILLs them after 30 s; they stop together at the next step, checkpointed, well within that.
    total = 40
    common = ["--store", store, "--max-steps", total, *NET]
    ref = tmp_path / "ref"
    p = subprocess.run([segscale_bin, "launch", "--nproc-per-node", "2", "--master-port", str(free_port()), "--", "segscale", "train",
                        "--out", str(ref), *map(str, common)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    run = tmp_path / "run"
    p = subprocess.Popen([*torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), "--no_python", segscale_bin, "train",
                          "--out", str(run), *map(str, common)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    with killed_on_failure(p):
        deadline = time.monotonic() + 180
        while len(steps(run)) < 3 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        assert 3 <= len(steps(run)) < total, f"the run did not get going or ended too soon: {steps(run)}"
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    assert p.returncode != 0
    import re
    stopped = re.findall(r"segscale: stopped: .* stopped at step (\d+)", err)
    # Both ranks stopped by themselves (not torchrun's SIGKILL 30 s later, which leaves no such line), at one step.
    assert len(stopped) == 2 and stopped[0] == stopped[1], err
    assert steps(run) == list(range(1, int(stopped[0]) + 1))
    rc, out, err = run_torchrun(torchrun, "--nproc_per_node", 2, "--master_port", free_port(), "--no_python", segscale_bin, "train",
                                "--out", run, "--auto-resume", *common)
    assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert (run / "last.pt").read_bytes() == (ref / "last.pt").read_bytes()


def readme_torchrun_lines():
    """The README's two torchrun command lines (issue 31: the one it showed failed on Debian's torchrun)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme[readme.index("# PyTorch 2.x (pip's torch; its torchrun on PATH)"):]
    block = block[:block.index("```")]
    lines = [l for l in block.splitlines() if l and not l.startswith("#")]
    assert len(lines) == 2 and lines[0].startswith("torchrun ") and lines[1].startswith("python3 -m torch.distributed.run "), lines
    return lines


def test_the_readme_torchrun_command_for_this_launcher_runs_as_written(torchrun, segscale_bin, store, tmp_path):
    two, debian = readme_torchrun_lines()
    wheel = os.environ.get("SEGSCALE_TORCHRUN")
    # The line for the torchrun at hand: the wheel's (test_torch2.sh) or Debian's python3 -m torch.distributed.run.
    line = two.replace("torchrun", wheel, 1) if wheel else debian.replace("python3", "/usr/bin/python3", 1)
    out_dir = tmp_path / "R"
    argv = [str(store) if a == "S" else str(out_dir) if a == "R" else segscale_bin if a == "segscale" else a for a in shlex.split(line)]
    port = str(free_port())
    env = dict(os.environ, PET_MASTER_PORT=port, MASTER_PORT=port)  # torchrun reads its flags from PET_* too
    rc, out, err = run_torchrun(argv, env=env)
    assert rc == 0, f"{line}\nstdout:\n{out}\nstderr:\n{err}"
    assert (out_dir / "checkpoint.pt").exists() and steps(out_dir), out
