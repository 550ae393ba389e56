"""The case study's platform as segscale meets it: a SageMaker Training job's /opt/ml (hyperparameters, channels,
model, checkpoints, failure file), preemption by SIGTERM with an exact resume, a second node, and a Processing
job's share. The /opt/ml root is a prepared folder (SEGSCALE_OPT_ML); no container runtime is needed."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import case_study_pipeline, free_port

HYPER = {"batch": "2", "lr": "0.001", "channels": "\"4,8,16\"", "strides": "2,2", "threads": "1", "loader_threads": "1",
         "val_fraction": "0.25", "quiet": "true", "sagemaker_program": "train"}



@pytest.fixture(scope="module")
def store(torch_build, make_store):
    return make_store(8, (36, 36, 36), case_study_pipeline((16, 16, 16))) / "cache"


def opt_ml(root, store, hyper, host="algo-1", hosts=("algo-1",)):
    """Lays out /opt/ml as SageMaker does for a bring-your-own-container Training job."""
    cfg = root / "input" / "config"
    cfg.mkdir(parents=True)
    (cfg / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": list(hosts), "network_interface_name": "eth0"}))
    (cfg / "hyperparameters.json").write_text(json.dumps(hyper))
    (cfg / "inputdataconfig.json").write_text(json.dumps({"train": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}}))
    (root / "input" / "data").mkdir(parents=True)
    shutil.copytree(store, root / "input" / "data" / "train")
    return root


def sagemaker(segscale_bin, root, *args, wait=True, extra_env=None):
    env = {**os.environ, "SEGSCALE_OPT_ML": str(root), **(extra_env or {})}
    p = subprocess.Popen([segscale_bin, "train", *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return p
    out, err = p.communicate(timeout=600)
    return p.returncode, out, err


def step_lines(path):
    if not path.exists():
        return []
    return [json.loads(l) for l in path.read_text().splitlines() if '"type": "step"' in l or '"type":"step"' in l]


def test_training_job_writes_the_model_where_sagemaker_uploads_it(segscale_bin, store, tmp_path):
    root = opt_ml(tmp_path / "opt_ml", store, {**HYPER, "epochs": "2"})
    rc, out, err = sagemaker(segscale_bin, root)
    assert rc == 0, err
    assert f"SageMaker mode: on (a Training job's {root}/input/config/resourceconfig.json and no --store, --data or --out)" in out, out
    for f in ("model.pt", "last.pt", "config.json", "metrics.jsonl"):
        assert (root / "model" / f).exists(), f
    assert (root / "checkpoints" / "checkpoint.pt").exists() and not (root / "model" / "checkpoint.pt").exists()
    cfg = json.loads((root / "model" / "config.json").read_text())
    assert cfg["epochs"] == 2 and cfg["model"]["channels"] == [4, 8, 16] and cfg["store"].endswith("input/data/train")
    assert not (root / "output" / "failure").exists()


@pytest.mark.parametrize("hyper,needle,rc", [
    ({"epohcs": "2"}, "hyperparameter `epohcs`: unknown; did you mean `epochs`?", 2),  # a misspelt hyperparameter
    ({"learning_rate": "0.01"}, "hyperparameter `learning_rate`: unknown; did you mean `lr`?", 2),  # another trainer's name
    ({"epochs": "zero"}, "hyperparameter `epochs`: `zero` is not an integer", 2),  # a value that is not a number
    ({"batch": "two"}, "hyperparameter `batch`: `two` is not an integer", 2),
    ({"amp": "yes"}, "hyperparameter `amp`: `yes` is not true or false", 2),
    ({"val_fraction": "1.5"}, "--val-fraction", 2),
])
def test_bad_hyperparameter_writes_the_failure_reason(segscale_bin, store, tmp_path, hyper, needle, rc):
    root = opt_ml(tmp_path / "opt_ml", store, {**HYPER, **hyper})
    code, out, err = sagemaker(segscale_bin, root)
    assert code == rc, err
    reason = (root / "output" / "failure").read_text()
    assert needle in reason and reason.count("\n") == 1 and len(reason) < 1024, reason
    if needle.startswith("hyperparameter"):
        assert f"{root}/input/config/hyperparameters.json: {needle}" in reason, reason


def test_leftover_opt_ml_does_not_take_over_explicit_options(segscale_bin, store, tmp_path):
    # A machine with a leftover /opt/ml (or a SageMaker notebook) running segscale as a user would: the command
    # line's --store/--out are used, /opt/ml is left alone, and the log says which mode and why.
    root = opt_ml(tmp_path / "opt_ml", store, {**HYPER, "epochs": "2"})
    env = {**os.environ, "SEGSCALE_OPT_ML": str(root)}
    args = [segscale_bin, "train", "--store", str(store), "--out", str(tmp_path / "mine"), "--max-steps", "2", "--batch", "1",
            "--channels", "4,8,16", "--strides", "2,2", "--threads", "1", "--val-fraction", "0", "--quiet"]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "SageMaker mode: off (--store, --out given on the command line" in p.stdout, p.stdout
    assert (tmp_path / "mine" / "last.pt").exists()
    assert not (root / "model").exists() and not (root / "checkpoints").exists()
    # Its failures are its own: reported on stderr, not written into the job's failure file.
    p = subprocess.run([*args[:-1], "--batch", "0"], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "--batch" in p.stderr, p.stderr
    assert not (root / "output" / "failure").exists()
    # --sagemaker asks for the job's files anyway (the explicit --store still wins over the channel).
    p = subprocess.run([segscale_bin, "train", "--sagemaker", "--max-steps", "1", "--store", str(store)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "SageMaker mode: on (--sagemaker" in p.stdout and (root / "model" / "last.pt").exists()
    # Outside SageMaker, --sagemaker names what is missing.
    p = subprocess.run([segscale_bin, "train", "--sagemaker"], env={**os.environ, "SEGSCALE_OPT_ML": str(tmp_path / "none")},
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and f"{tmp_path}/none/input/config/resourceconfig.json does not exist" in p.stderr, p.stderr


def test_sigterm_checkpoints_and_the_rerun_resumes_exactly(segscale_bin, store, tmp_path):
    hyper = {**HYPER, "max_steps": "60", "val_fraction": "0"}
    ref = opt_ml(tmp_path / "ref", store, hyper)
    assert sagemaker(segscale_bin, ref)[0] == 0
    root = opt_ml(tmp_path / "spot", store, hyper)
    p = sagemaker(segscale_bin, root, wait=False)
    deadline = time.time() + 120
    while len(step_lines(root / "model" / "metrics.jsonl")) < 3 and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 75, err  # stopped on request, checkpoint saved
    assert not (root / "output" / "failure").exists()  # a stop is not a failure: SageMaker will not mark the job Failed
    assert time.time() - t0 < 30
    assert "--resume" in err and "checkpoint" in err
    stopped_at = len(step_lines(root / "model" / "metrics.jsonl"))
    assert 3 <= stopped_at < 60
    # A spot restart: a fresh instance gets /opt/ml/checkpoints back, nothing else.
    shutil.rmtree(root / "model")
    rc, out, err = sagemaker(segscale_bin, root)
    assert rc == 0, err
    assert "run total: 60 steps" in out
    assert (root / "model" / "last.pt").read_bytes() == (ref / "model" / "last.pt").read_bytes()
    assert [s["step"] for s in step_lines(root / "model" / "metrics.jsonl")] == list(range(1, 61))


def test_sigterm_to_launch_stops_every_rank_at_one_step(run, segscale_bin, store, tmp_path):
    common = ["--store", store, "--batch", 1, "--max-steps", 40, "--val-fraction", 0, "--channels", "4,8,16", "--strides", "2,2",
              "--threads", 1, "--loader-threads", 1, "--quiet", "--lr", "1e-3"]
    port = free_port()
    launch = [segscale_bin, "launch", "--nproc-per-node", 2, "--master-port", port, "--", "segscale", "train"]
    run(*launch[1:], *common, "--out", tmp_path / "full", check_rc=0)
    p = subprocess.Popen([*map(str, launch), *map(str, common), "--out", str(tmp_path / "r")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 120
    while len(step_lines(tmp_path / "r" / "metrics.jsonl")) < 3 and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 75, err
    import re
    steps = re.findall(r"\[rank (\d)\] segscale: stopped: .* stopped at step (\d+)", err)
    assert len(steps) == 2 and steps[0][1] == steps[1][1], err  # both ranks stopped cleanly, at the same step
    run(*launch[1:], *common, "--out", tmp_path / "r", "--resume", check_rc=0)
    assert (tmp_path / "r" / "last.pt").read_bytes() == (tmp_path / "full" / "last.pt").read_bytes()


def losses(run_dir):
    return [s["loss"] for s in step_lines(run_dir / "metrics.jsonl")]


def test_two_nodes_equal_one_node_and_a_two_host_resourceconfig(run, segscale_bin, store, tmp_path):
    common = ["--store", store, "--batch", 1, "--max-steps", 4, "--val-fraction", 0, "--channels", "4,8,16", "--strides", "2,2",
              "--threads", 1, "--loader-threads", 1, "--quiet", "--lr", "1e-3"]
    run("launch", "--nproc-per-node", 2, "--master-port", free_port(), "--", "segscale", "train", *common, "--out", tmp_path / "one",
        check_rc=0)
    port = free_port()
    nodes = [subprocess.Popen([segscale_bin, "launch", "--nnodes", "2", "--node-rank", str(r), "--nproc-per-node", "1", "--master-port", str(port),
                               "--", "segscale", "train", *map(str, common), "--out", str(tmp_path / f"two{r}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for n in nodes:
        _, err = n.communicate(timeout=300)
        assert n.returncode == 0, err
    assert losses(tmp_path / "one") == pytest.approx(losses(tmp_path / "two0"), abs=1e-6)
    assert not (tmp_path / "two1" / "metrics.jsonl").exists()  # rank 0 alone writes

    # The same job as SageMaker describes it: two hosts, one process each, master = the first host.
    hyper = {**HYPER, "max_steps": "4", "batch": "1", "val_fraction": "0"}
    hosts = ("127.0.0.1", "localhost")
    roots = [opt_ml(tmp_path / f"host{i}", store, hyper, host=h, hosts=hosts) for i, h in enumerate(hosts)]
    port = free_port()
    procs = [sagemaker(segscale_bin, r, wait=False, extra_env={"MASTER_PORT": str(port)}) for r in roots]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert losses(roots[0] / "model") == pytest.approx(losses(tmp_path / "one"), abs=1e-6)


def test_processing_job_share_from_resourceconfig(run, segscale_bin, make_store, tmp_path):
    root = make_store(4, (24, 24, 24), case_study_pipeline((8, 8, 8)), modes=(("--copies", 2),))
    ds = root / "ds"
    out = tmp_path / "st"
    hosts = ["algo-1", "algo-2", "algo-3"]
    for h in hosts:  # FullyReplicated input: every instance sees every case and takes its share of the shards
        cfg = tmp_path / h / "config"
        cfg.mkdir(parents=True)
        (cfg / "resourceconfig.json").write_text(json.dumps({"current_host": h, "hosts": hosts}))
        p = subprocess.run([segscale_bin, "prep", "--data", str(ds), "--out", str(out), "--copies", "2", "--pipeline", str(root / "pipe.json"),
                            "--shard-size", "1", "--quiet"], env={**os.environ, "SEGSCALE_OPT_ML": str(tmp_path / h)}, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert f"/{len(hosts)} (SageMaker" in p.stdout
    run("verify", out, check_rc=0)
    ref2 = tmp_path / "ref"
    run("prep", "--data", ds, "--out", ref2, "--copies", 2, "--pipeline", root / "pipe.json", "--shard-size", 1, "--quiet", check_rc=0)
    for f in sorted(ref2.iterdir()):
        if f.name != "manifest.json":
            assert (out / f.name).read_bytes() == f.read_bytes(), f.name


def test_processing_input_sharded_by_key_is_refused_with_the_fix(run, segscale_bin, make_store, tmp_path):
    root = make_store(4, (24, 24, 24), case_study_pipeline((8, 8, 8)), modes=(("--copies", 2),))
    cfg = tmp_path / "opt_ml" / "config"
    cfg.mkdir(parents=True)
    (cfg / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]}))
    (cfg / "processingjobconfig.json").write_text(json.dumps({"ProcessingInputs": [
        {"InputName": "brats", "S3Input": {"LocalPath": str(root / "ds"), "S3DataDistributionType": "ShardedByS3Key"}}]}))
    p = subprocess.run([segscale_bin, "prep", "--data", str(root / "ds"), "--out", str(tmp_path / "st"), "--cache", "--quiet"],
                       env={**os.environ, "SEGSCALE_OPT_ML": str(tmp_path / "opt_ml")}, capture_output=True, text=True)
    assert p.returncode == 2 and "ShardedByS3Key" in p.stderr and "FullyReplicated" in p.stderr and "'brats'" in p.stderr, p.stderr
    assert not (tmp_path / "st").exists()
