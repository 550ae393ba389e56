"""A run watched where people watch runs: its TensorBoard event file read by TensorBoard's own reader, and its
MLflow run on a real `mlflow server` (PyPI's mlflow, SQLite backend, a local artifact folder) started here on
127.0.0.1, killed and restarted while segscale trains. Both from the venv scripts/setup.sh makes
(SEGSCALE_TRACKING_VENV)."""
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import case_study_pipeline, free_port

VENV = Path(os.environ.get("SEGSCALE_TRACKING_VENV", "/opt/segscale-tracking"))
SMALL_NET = ["--channels", "4,8", "--strides", "2", "--threads", "1", "--loader-threads", "1", "--quiet"]
EVENTS = "events.out.tfevents.segscale"


@pytest.fixture(scope="module")
def store(torch_build, make_store):
    return make_store(4, (24, 24, 24), case_study_pipeline((16, 16, 16)))


@pytest.fixture(scope="module")
def tracking_python():
    py = VENV / "bin" / "python"
    if not py.exists():
        pytest.fail(f"{py} is missing: scripts/setup.sh installs tensorboard and mlflow there")
    return py


def train(segscale_bin, store, out, *extra, env=None, check=True, timeout=600):
    p = subprocess.run([segscale_bin, "train", "--store", store / "cache", "--out", out, "--batch", "2", "--lr", "1e-3", "--val-fraction", "0.25",
                        *SMALL_NET, *map(str, extra)], capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


READ_EVENTS = r"""
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow
path = sys.argv[1]
# Every record through TensorBoard's own record reader, which checks both checksums.
reader, records = pywrap_tensorflow.PyRecordReader_New(path), 0
while True:
    try:
        reader.GetNext()
    except errors.OutOfRangeError:
        break
    records += 1
acc = EventAccumulator(path, size_guidance={"scalars": 0, "tensors": 0})
acc.Reload()
tags = acc.Tags()
out = {"records": records, "version": acc.file_version, "scalars": {}, "text": {}}
for tag in tags["scalars"]:
    out["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
for tag in tags["tensors"]:
    out["text"][tag] = [[e.step, e.tensor_proto.string_val[0].decode()] for e in acc.Tensors(tag)]
print(json.dumps(out))
"""


def read_events(py, run_dir):
    p = subprocess.run([py, "-c", READ_EVENTS, run_dir / EVENTS], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def metrics(run_dir):
    return [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_reads_every_scalar_and_the_config(segscale_bin, store, tracking_python, tmp_path):
    out = tmp_path / "run"
    p = train(segscale_bin, store, out, "--epochs", 3)
    assert f"tensorboard: {out / EVENTS}" in p.stdout + p.stderr
    ev = read_events(tracking_python, out)
    lines = metrics(out)
    assert ev["version"] == 2.0 and ev["records"] > 0
    steps = [l for l in lines if l["type"] == "step"]
    for key in ("loss", "lr", "samples_per_s", "data_wait"):
        assert ev["scalars"][f"train/{key}"] == [[l["step"], pytest.approx(l[key], rel=1e-6)] for l in steps], key
    vals = [l for l in lines if l["type"] == "val"]
    assert vals and ev["scalars"]["val/dice_mean"] == [[l["step"], pytest.approx(l["dice_mean"], rel=1e-6)] for l in vals]
    [[step, text]] = ev["text"]["config"]
    assert step == 0 and json.loads(text) == json.loads((out / "config.json").read_text())


def test_tensorboard_file_continues_across_a_resume_without_repeating_steps(segscale_bin, store, tracking_python, tmp_path):
    out = tmp_path / "run"
    train(segscale_bin, store, out, "--epochs", 3, "--max-steps", 3)
    with open(out / EVENTS, "ab") as f:  # a record torn by a kill after the checkpoint
        f.write(b"\x30\x00\x00\x00\x00")
    train(segscale_bin, store, out, "--epochs", 3, "--max-steps", 6, "--resume")
    ev = read_events(tracking_python, out)
    assert [s for s, _ in ev["scalars"]["train/loss"]] == [1, 2, 3, 4, 5, 6]
    assert [s for s, _ in ev["text"]["config"]] == [0, 3]
    losses = [l["loss"] for l in metrics(out) if l["type"] == "step"]
    assert [v for _, v in ev["scalars"]["train/loss"]] == pytest.approx(losses, rel=1e-6)


class MlflowServer:
    """`mlflow server` on 127.0.0.1 (SQLite, local artifacts), started and stopped by PID; restartable on its port."""

    def __init__(self, venv, root):
        self.venv, self.root, self.port = venv, root, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self, timeout=120):
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        self.log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen([self.venv / "bin" / "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                                      "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}", "--artifacts-destination", str(self.root / "artifacts")],
                                     stdout=self.log, stderr=self.log, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"mlflow server did not answer within {timeout} s:\n" + (self.root / "server.log").read_text()[-3000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def get(self, path, **query):
        with urllib.request.urlopen(f"{self.uri}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}", timeout=10) as r:
            return json.loads(r.read())

    def history(self, run_id, key):
        got = self.get("metrics/get-history", run_id=run_id, metric_key=key, max_results=25000).get("metrics", [])
        return sorted(((m["step"], m["value"]) for m in got), key=lambda sv: sv[0])


@pytest.fixture
def mlflow_server(tracking_python, tmp_path):
    s = MlflowServer(VENV, tmp_path)
    s.start()
    yield s
    s.stop()


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def test_mlflow_run_gets_params_metrics_artifacts_and_is_continued_on_resume(segscale_bin, store, mlflow_server, tmp_path):
    out = tmp_path / "run"
    p = train(segscale_bin, store, out, "--epochs", 3, "--max-steps", 4, "--mlflow", mlflow_server.uri, "--mlflow-experiment", "brats")
    run_id = json.loads((out / "mlflow.json").read_text())["run_id"]
    assert f"/runs/{run_id}" in p.stdout and "metrics sent" in p.stdout
    run = mlflow_server.get("runs/get", run_id=run_id)["run"]
    assert run["info"]["status"] == "FINISHED" and run["info"]["run_name"] == "run"
    exp = mlflow_server.get("experiments/get", experiment_id=run["info"]["experiment_id"])["experiment"]
    assert exp["name"] == "brats"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    config = json.loads((out / "config.json").read_text())
    assert params["model.name"] == config["model"]["name"] and params["batch"] == str(config["batch"])
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.source.name"] == "segscale"
    losses = [(l["step"], l["loss"]) for l in metrics(out) if l["type"] == "step"]
    assert mlflow_server.history(run_id, "train/loss") == [(s, pytest.approx(v, rel=1e-12)) for s, v in losses]
    vals = [(l["step"], l["dice_mean"]) for l in metrics(out) if l["type"] == "val"]
    assert vals and mlflow_server.history(run_id, "val/dice_mean") == [(s, pytest.approx(v, rel=1e-12)) for s, v in vals]
    arts = {f["path"] for f in mlflow_server.get("artifacts/list", run_id=run_id).get("files", [])}
    assert {"config.json", "metrics.jsonl", "curves.png"} <= arts and arts & {"model.pt", "last.pt"}, arts
    stored = next((mlflow_server.root / "artifacts").rglob("config.json"))
    assert stored.read_bytes() == (out / "config.json").read_bytes()

    # Resumed (the URI from mlflow.json): the same MLflow run goes on, every step once.
    p = train(segscale_bin, store, out, "--epochs", 3, "--max-steps", 6, "--resume", env=clean_env())
    assert json.loads((out / "mlflow.json").read_text())["run_id"] == run_id
    assert [s for s, _ in mlflow_server.history(run_id, "train/loss")] == [1, 2, 3, 4, 5, 6]
    assert mlflow_server.get("runs/get", run_id=run_id)["run"]["info"]["status"] == "FINISHED"


def test_mlflow_from_its_environment_variables(segscale_bin, store, mlflow_server, tmp_path):
    out = tmp_path / "run"
    train(segscale_bin, store, out, "--epochs", 1, env=clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="from-env",
                                                               MLFLOW_RUN_NAME="named-by-env"))
    run = mlflow_server.get("runs/get", run_id=json.loads((out / "mlflow.json").read_text())["run_id"])["run"]
    assert run["info"]["run_name"] == "named-by-env"
    assert mlflow_server.get("experiments/get", experiment_id=run["info"]["experiment_id"])["experiment"]["name"] == "from-env"


def test_a_killed_mlflow_server_never_stops_training_and_gets_what_it_missed(segscale_bin, store, mlflow_server, tmp_path):
    out = tmp_path / "run"
    steps = 300
    proc = subprocess.Popen([segscale_bin, "train", "--store", store / "cache", "--out", out, "--batch", "2", "--lr", "1e-3", "--val-fraction", "0.25",
                             *SMALL_NET, "--max-steps", str(steps), "--mlflow", mlflow_server.uri],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(SEGSCALE_MLFLOW_FLUSH_SECONDS=120))
    try:
        deadline = time.monotonic() + 120
        while not (out / "mlflow.json").exists() or not mlflow_server.history(json.loads((out / "mlflow.json").read_text())["run_id"], "train/loss"):
            assert proc.poll() is None and time.monotonic() < deadline, "no metric reached the server while training"
            time.sleep(0.1)
        mlflow_server.stop()  # SIGKILL, mid-training
        killed_at = sum(1 for l in (out / "metrics.jsonl").read_text().splitlines() if '"step"' in l)
        time.sleep(2)
        mlflow_server.start()
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert killed_at < steps, "training ended before the server was killed: the test proved nothing"
    assert "metrics are kept and sent when it answers, training goes on" in stderr
    run_id = json.loads((out / "mlflow.json").read_text())["run_id"]
    assert [s for s, _ in mlflow_server.history(run_id, "train/loss")] == list(range(1, steps + 1))
    assert mlflow_server.get("runs/get", run_id=run_id)["run"]["info"]["status"] == "FINISHED"
    assert "not delivered" not in stdout


def test_an_unreachable_mlflow_server_is_counted_and_reported(segscale_bin, store, tmp_path):
    out = tmp_path / "run"
    p = train(segscale_bin, store, out, "--max-steps", 3, "--mlflow", f"http://127.0.0.1:{free_port()}", env=clean_env(SEGSCALE_MLFLOW_FLUSH_SECONDS=1))
    assert "training goes on" in p.stderr
    assert "not delivered" in p.stdout and "no MLflow run was created" in p.stdout
    assert (out / "model.pt").exists() or (out / "last.pt").exists()


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "databricks", "./mlruns"])
def test_an_mlflow_uri_segscale_cannot_use_is_refused_before_training(segscale_bin, store, tmp_path, uri):
    out = tmp_path / "run"
    p = train(segscale_bin, store, out, "--epochs", 1, "--mlflow", uri, check=False)
    assert p.returncode == 2 and uri in p.stderr and "mlflow server" in p.stderr, p.stderr
    assert not (out / "metrics.jsonl").exists()
