"""Issue 22, "what a second new user met": each test runs the real binary the way the issue's user did and checks
the exit code, the message and the files left behind."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import one_line_error, synth


def wait_for(predicate, what, proc=None, timeout=300):
    """Polls until predicate() holds (no timing threshold on the code under test: the limit only ends a hung test)."""
    end = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended (rc {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def brats(tmp_path_factory, segscale_bin):
    return synth(segscale_bin, tmp_path_factory.mktemp("brats21"), 3, (32, 30, 24), 6, layout="brats21")


@pytest.fixture(scope="module")
def msd(tmp_path_factory, segscale_bin):
    return synth(segscale_bin, tmp_path_factory.mktemp("msd"), 4, (64, 64, 40), 2)


# --- item 1: prep --skip-bad passes a case that lacks a modality file -------------------------------------------

def test_prep_skip_bad_records_a_case_missing_a_modality_file(run, brats, tmp_path):
    ds = tmp_path / "ds"
    subprocess.run(["cp", "-r", str(brats), str(ds)], check=True)
    cases = sorted(d.name for d in ds.iterdir() if d.is_dir())
    lacking = cases[1]
    (ds / lacking / f"{lacking}_t1ce.nii.gz").unlink()
    line = one_line_error(run("prep", "--data", ds, "--out", tmp_path / "st", "--cache", "--quiet"), 1)
    assert f"case {lacking}: modality file" in line and "t1ce.nii.gz does not exist" in line and "--skip-bad" in line
    assert not list((tmp_path / "st").glob("shard-*"))  # stopped before any work, as before
    p = run("prep", "--data", ds, "--out", tmp_path / "st", "--cache", "--quiet", "--skip-bad", check_rc=0)
    assert f"skipping case {lacking}" in p.stderr
    m = json.loads((tmp_path / "st" / "manifest.json").read_text())
    assert [s["case"] for s in m["skipped"]] == [lacking] and "t1ce.nii.gz does not exist" in m["skipped"][0]["reason"]
    assert m["counts"]["samples"] == len(cases) - 1
    run("verify", tmp_path / "st", check_rc=0)


# --- item 7: Ctrl-C during prep says it stopped and leaves no temporary file ------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_prep_says_so_leaves_no_temp_file_and_the_rerun_continues(run, segscale_bin, msd, tmp_path, sig):
    args = ["prep", "--data", str(msd), "--cache", "--shard-size", "1", "--workers", "1", "--quiet"]
    run(*args, "--out", tmp_path / "clean", check_rc=0)
    st = tmp_path / "st"
    per_shard = json.loads((tmp_path / "clean" / "settings.json").read_text())["cases_per_shard"]
    assert per_shard < 4  # more than one shard, so the interrupt falls between two
    # The case after the first shard waits for the signal: shard 0 is committed, shard 1's temporary file is open.
    p = subprocess.Popen([segscale_bin, *args, "--out", str(st)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "SEGSCALE_FAULT": f"prep.case_until_stop:{per_shard + 1}"})
    wait_for(lambda: (st / "shard-000000.idx.json").exists() and list(st.glob(".shard-000001.tar.tmp.*")), "shard 1's temporary file", p)
    p.send_signal(sig)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 75, (p.returncode, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("segscale: stopped: prep interrupted by SIG"), err
    assert "rerun the same command to continue" in lines[0]
    assert not [f.name for f in st.iterdir() if ".tmp." in f.name]
    assert (st / "shard-000000.tar").exists() and not (st / "manifest.json").exists()
    p2 = run(*args, "--out", st, check_rc=0)
    assert "1 already done" in p2.stdout
    assert {f.name: f.read_bytes() for f in st.iterdir()} == {f.name: f.read_bytes() for f in (tmp_path / "clean").iterdir()}


# --- item 2: bench reports progress and removes its work folder however it ends ----------------------------------

BENCH_SMALL = ["bench", "--cases", "2", "--shape", "48,48,32", "--steps", "2", "--repeat", "1", "--no-monai"]


def leftover_processes(path):
    """Processes whose command line names `path` (bench's children run with their work folder in their arguments)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(path) in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(d.name)
            except OSError:
                pass
    return found


def test_bench_failure_removes_its_work_folder_and_keeps_the_log(segscale_bin, torch_build, tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "SEGSCALE_FAULT": "train.step:1"}  # the first training row dies at its first step
    p = subprocess.Popen([segscale_bin, *BENCH_SMALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    p.stdout_text, p.stderr = p.communicate(timeout=900)
    assert p.returncode == 1, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("segscale: error: bench: step failed (exit 137)") and "train" in last, p.stderr
    assert "bench: synth, elapsed " in p.stderr and "bench: run 1/1, row (a) raw NIfTI" in p.stderr  # progress as it went
    left = [f.name for f in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith("segscale-bench-") and left[0].endswith(".log"), left  # only the log
    assert left[0] == f"segscale-bench-{p.pid}.log" and f"see {tmp_path / left[0]}" in last


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_bench_stopped_by_a_signal_ends_its_children_and_removes_its_work_folder(segscale_bin, torch_build, tmp_path, how):
    env = {**os.environ, "TMPDIR": str(tmp_path), "SEGSCALE_FAULT": "train.hang:1"}  # the first training row never ends by itself
    p = subprocess.Popen([segscale_bin, *BENCH_SMALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    work = tmp_path / f"segscale-bench-{p.pid}"
    seen = []
    for line in p.stderr:  # progress lines, until the first training row runs
        seen.append(line)
        if "row (a)" in line:
            break
    assert any("step 0/2" in s for s in seen), seen
    deadline = time.monotonic() + 60  # the row's line comes just before its process starts
    while not leftover_processes(work) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert work.is_dir() and leftover_processes(work)  # the hung training row
    if how == "ctrl-c":
        os.killpg(p.pid, signal.SIGINT)  # a terminal sends Ctrl-C to the foreground process group
    else:
        p.send_signal(signal.SIGTERM)  # a scheduler signals the process it started
    rest = p.stderr.read()
    assert p.wait(timeout=300) == 75, rest
    last = rest.strip().splitlines()[-1]
    assert last.startswith("segscale: stopped: bench interrupted by") and "work folder removed" in last, rest
    assert not work.exists() and not list(tmp_path.iterdir())
    wait_for(lambda: not leftover_processes(work), "bench's children to end", timeout=60)


# --- item 4: infer --out NEWDIR/case.nii.gz creates the folder --------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(torch_build, make_store, segscale_bin):
    from conftest import case_study_pipeline
    root = make_store(4, (48, 48, 32), case_study_pipeline((32, 32, 16)), seed=3)
    p = subprocess.run([segscale_bin, "train", "--store", str(root / "cache"), "--out", str(root / "run"), "--max-steps", "3", "--batch", "2",
                        "--val-fraction", "0", "--channels", "4,8", "--strides", "2", "--threads", "2", "--quiet"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return root


def test_infer_out_in_a_new_folder_creates_it(run, tiny_run, tmp_path):
    img = tiny_run / "ds" / "imagesTr" / "BRATS_001.nii.gz"
    out = tmp_path / "new" / "deeper" / "case.nii.gz"
    run("infer", "--model", tiny_run / "run" / "last.pt", "--image", img, "--out", out, "--preview", tmp_path / "pics" / "case.png",
        "--threads", 2, check_rc=0)
    assert out.read_bytes()[:2] == b"\x1f\x8b" and (tmp_path / "pics" / "case.png").exists()


# --- item 9: eval names the truth cases it could not score ------------------------------------------------------

def test_eval_names_truth_cases_without_a_prediction_and_counts_them(run, msd, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "BRATS_002.nii.gz").write_bytes((msd / "labelsTr" / "BRATS_002.nii.gz").read_bytes())  # a perfect prediction, one case of four
    p = run("eval", "--pred", pred, "--truth", msd, "--json", tmp_path / "scores.json", check_rc=0)
    line = [x for x in p.stdout.splitlines() if x.startswith("not scored")]
    assert line == [f"not scored: 3 truth cases without a prediction in {pred}: BRATS_001, BRATS_003, BRATS_004 (the mean is over 1 case scored)"]
    j = json.loads((tmp_path / "scores.json").read_text())
    assert j["counts"] == {"scored": 1, "truth_without_prediction": 3, "truth_cases": 4}
    assert j["truth_without_prediction"] == ["BRATS_001", "BRATS_003", "BRATS_004"]
    assert j["cases"][0]["case"] == "BRATS_002" and j["mean"]["dice"] == {"tc": 1.0, "wt": 1.0, "et": 1.0}
    # A truth folder of same-named label files: the same accounting.
    p = run("eval", "--pred", pred, "--truth", msd / "labelsTr", check_rc=0)
    assert "not scored: 3 truth cases without a prediction" in p.stdout
    (pred / "BRATS_001.nii.gz").write_bytes((msd / "labelsTr" / "BRATS_001.nii.gz").read_bytes())
    for f in ("BRATS_003", "BRATS_004"):
        (pred / f"{f}.nii.gz").write_bytes((msd / "labelsTr" / f"{f}.nii.gz").read_bytes())
    p = run("eval", "--pred", pred, "--truth", msd, "--json", tmp_path / "all.json", check_rc=0)
    assert "not scored" not in p.stdout and json.loads((tmp_path / "all.json").read_text())["counts"]["truth_without_prediction"] == 0


# --- item 10: a store path that is not a store says what it is --------------------------------------------------

def test_store_paths_that_are_no_store_say_what_they_are(run, segscale_bin, msd, tmp_path):
    line = one_line_error(run("verify", tmp_path / "nope"), 1)
    assert line == f"segscale: error: {tmp_path / 'nope'}: no such folder"
    line = one_line_error(run("verify", msd), 1)
    assert f"{msd}: this is a dataset, not a sample store: run `segscale prep --data {msd} --out STORE --cache` first, or use --data" in line
    brats = tmp_path / "brats"
    subprocess.run([segscale_bin, "synth", "--out", str(brats), "--cases", "1", "--shape", "24,24,16", "--layout", "brats21", "--quiet"], check=True)
    assert "this is a dataset" in one_line_error(run("verify", brats), 1)
    run("prep", "--data", msd, "--out", tmp_path / "half", "--cache", "--shard-size", "1", "--shard", "0/2", "--quiet", check_rc=0)
    line = one_line_error(run("verify", tmp_path / "half"), 1)
    assert "an unfinished sample store" in line and f"segscale prep --finalize {tmp_path / 'half'}" in line


def test_train_store_that_is_a_dataset_points_to_prep_or_data(run, torch_build, msd, tmp_path):
    line = one_line_error(run("train", "--store", msd, "--out", tmp_path / "r", "--max-steps", "1"), 1)
    assert "this is a dataset, not a sample store" in line and "or use --data" in line
    line = one_line_error(run("train", "--store", tmp_path / "missing", "--out", tmp_path / "r2", "--max-steps", "1"), 1)
    assert line.endswith(f"{tmp_path / 'missing'}: no such folder")


# --- items 6 and 8: inspect s3:// says "stored"; a profile's endpoint_url is honoured; failures name the host ---

@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    import test_s3
    from s3_servers import MotoServer
    server = MotoServer(tmp_path_factory.mktemp("moto-nu"), [*test_s3.BUCKETS, "segscale-nu-store"])  # this module's own server
    yield server
    server.stop()


def s3_env(server, home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), TMPDIR=str(home), AWS_ACCESS_KEY_ID=server.key, AWS_SECRET_ACCESS_KEY=server.secret, AWS_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true", AWS_MAX_ATTEMPTS="2")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def seg(segscale_bin, env, *args):
    return subprocess.run([segscale_bin, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def test_s3_store_sizes_are_stored_not_on_disk_and_the_profile_endpoint_is_used(segscale_bin, s3, msd, tmp_path):
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    # The endpoint only in ~/.aws/config, as the AWS CLI reads it (no AWS_ENDPOINT_URL in the environment).
    (home / ".aws" / "config").write_text(f"[default]\nregion = us-east-1\nendpoint_url = {s3.endpoint}\n")
    env = s3_env(s3, home)
    p = seg(segscale_bin, env, "prep", "--data", msd, "--out", "s3://segscale-nu-store", "--cache", "--quiet")
    assert p.returncode == 0, p.stderr
    p = seg(segscale_bin, env, "inspect", "s3://segscale-nu-store")
    assert p.returncode == 0, p.stderr
    assert "on disk" not in p.stdout and "MB stored in the bucket" in p.stdout, p.stdout
    j = json.loads(seg(segscale_bin, env, "inspect", "s3://segscale-nu-store", "--json").stdout)
    assert j["storage"] == "s3" and j["bytes_stored"] == sum(s["bytes"] for s in j["shards"])
    # The profile's services section, as the SDKs document it, beats its own endpoint_url.
    (home / ".aws" / "config").write_text(f"[profile dev]\nendpoint_url = http://127.0.0.1:9\nservices = local\n"
                                         f"[services local]\ns3 =\n  endpoint_url = {s3.endpoint}\n")
    p = seg(segscale_bin, {**env, "AWS_PROFILE": "dev"}, "verify", "s3://segscale-nu-store")
    assert p.returncode == 0 and "OK" in p.stdout, p.stderr


def test_s3_connection_failure_names_the_host_and_where_the_endpoint_came_from(segscale_bin, s3, tmp_path):
    from conftest import free_port
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    port = free_port()  # nothing listens there
    (home / ".aws" / "config").write_text(f"[default]\nendpoint_url = http://127.0.0.1:{port}\n")
    line = one_line_error(seg(segscale_bin, s3_env(s3, home), "inspect", "s3://segscale-nu-store"), 1)
    assert f"(host 127.0.0.1:{port}, endpoint from profile default's endpoint_url in {home / '.aws' / 'config'}; after 2 attempts)" in line
    line = one_line_error(seg(segscale_bin, s3_env(s3, home, AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{port}/"), "inspect", "s3://segscale-nu-store"), 1)
    assert f"(host 127.0.0.1:{port}, endpoint from AWS_ENDPOINT_URL_S3; after 2 attempts)" in line
