"""Who a process is in a job, as the CLI meets it: each scheduler's variables pick prep's share and training's
world, and a bad value stops the command with exit 2 and one line naming the variable or file."""
import json
import os
import subprocess

import pytest

from conftest import case_study_pipeline


def seg(segscale_bin, *args, env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "OMPI_", "SM_", "RANK", "WORLD_SIZE", "JOB_COMPLETION"))}
    return subprocess.run([segscale_bin, *map(str, args)], env={**clean, **env}, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def dataset(make_store):
    return make_store(4, (24, 24, 24), case_study_pipeline((8, 8, 8)), modes=())


@pytest.mark.parametrize("env,source", [
    ({"SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_JOB_ID": "7"}, "Slurm array"),
    ({"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0"}, "Slurm tasks"),
    ({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "1"}, "Open MPI"),
    ({"JOB_COMPLETION_INDEX": "1"}, "Kubernetes Indexed Job"),
    ({"SM_HOSTS": '["algo-1","algo-2"]', "SM_CURRENT_HOST": "algo-2"}, "SageMaker"),
])
def test_prep_takes_its_share_from_the_scheduler(segscale_bin, dataset, tmp_path, env, source):
    extra = ["--shard-count", 2] if "JOB_COMPLETION_INDEX" in env else []
    p = seg(segscale_bin, "prep", "--data", dataset / "ds", "--out", tmp_path / "st", "--copies", 1, "--shard-size", 1, "--quiet", *extra,
            env=env)
    assert p.returncode == 0, p.stderr
    assert f"prep share 1/2 ({source}" in p.stdout, p.stdout


@pytest.mark.parametrize("env,needle", [
    ({"SLURM_PROCID": "x", "SLURM_NTASKS": "2"}, "SLURM_PROCID='x' is not an integer"),
    ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "2"}, "share 2/2 from Open MPI is out of range"),
    ({"JOB_COMPLETION_INDEX": "0"}, "--shard-count"),
    ({"SM_HOSTS": "algo-1", "SM_CURRENT_HOST": "algo-1"}, "SM_HOSTS is not a JSON list"),
])
def test_bad_scheduler_values_exit_two_naming_them(segscale_bin, dataset, tmp_path, env, needle):
    p = seg(segscale_bin, "prep", "--data", dataset / "ds", "--out", tmp_path / "st", "--copies", 1, "--quiet", env=env)
    assert p.returncode == 2 and needle in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize("env,needle", [
    ({"RANK": "two", "WORLD_SIZE": "2"}, "RANK='two' is not an integer"),
    ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR is not set"),
    ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "99999"}, "MASTER_PORT 99999 is not a port"),
    ({"SLURM_PROCID": "3", "SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "n1"}, "rank 3 is outside a world of 2"),
])
def test_bad_world_values_exit_two_naming_them(segscale_bin, torch_build, make_store, tmp_path, env, needle):
    store = make_store(4, (24, 24, 24), case_study_pipeline((8, 8, 8))) / "cache"
    p = seg(segscale_bin, "train", "--store", store, "--out", tmp_path / "r", "--quiet", env=env)
    assert p.returncode == 2 and needle in p.stderr and p.stderr.count("\n") == 1, p.stderr
