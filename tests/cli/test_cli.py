"""The segscale binary as a user meets it: exit codes, messages on stderr, files written."""
import json
import os

import pytest


def test_help_exits_zero_and_lists_subcommands(run):
    p = run("--help", check_rc=0)
    for sub in ("synth", "inspect", "demo"):
        assert sub in p.stdout
    for sub in ("synth", "inspect", "demo"):
        assert "--help" in run(sub, "--help", check_rc=0).stdout


@pytest.mark.parametrize("args", [[], ["nosuchcommand"], ["synth"], ["synth", "--out", "x", "--layout", "nifti"],
                                  ["synth", "--out", "x", "--shape", "1,2"], ["inspect", "a", "--bogus"]])
def test_bad_usage_exits_two(run, args):
    p = run(*args)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip()


def test_missing_file_exits_one_naming_it(run, tmp_path):
    p = run("inspect", tmp_path / "absent.nii.gz", check_rc=1)
    assert "absent.nii.gz" in p.stderr and "no such file" in p.stderr


def test_malformed_file_exits_one_naming_file_and_problem(run, tmp_path):
    f = tmp_path / "page.nii.gz"
    f.write_text("<html><body>403 Forbidden</body></html>")
    p = run("inspect", f, check_rc=1)
    assert str(f) in p.stderr and "HTML" in p.stderr
    assert p.stderr.count("\n") == 1  # one line, no stack trace


def test_synth_then_inspect_json(run, tmp_path):
    out = tmp_path / "ds"
    run("synth", "--out", out, "--cases", 2, "--shape", "20,18,12", "--orientation", "LPS", "--seed", 3, check_rc=0)
    j = json.loads(run("inspect", out / "imagesTr" / "BRATS_001.nii.gz", "--json", check_rc=0).stdout)
    assert j["shape"] == [20, 18, 12, 4]
    assert j["dtype"] == "float32"
    assert j["axcodes"] == "LPS"
    assert j["affine"][0][0] == -1.0 and j["affine"][1][3] == 17.0
    assert j["min"] == 0.0 and j["max"] > 100 and 0 < j["mean"] < j["max"]
    text = run("inspect", out / "labelsTr" / "BRATS_002.nii.gz", check_rc=0).stdout
    assert "LPS" in text and "uint8" in text


def test_inspect_dataset_check(run, tmp_path):
    out = tmp_path / "b"
    run("synth", "--out", out, "--cases", 2, "--shape", "16,16,10", "--layout", "brats21", check_rc=0)
    j = json.loads(run("inspect", out, "--check", "--json", check_rc=0).stdout)
    assert j["training_cases"] == 2 and j["label_map"]["preset"] == "brats21"
    assert set(j["label_voxels"]) <= {"0", "1", "2", "4"} and "4" in j["label_voxels"]
    p = run("inspect", out, "--check", "--label-map", "blog")  # label 4 is outside the blog map
    assert p.returncode == 1 and "case BraTS2021_00000" in p.stderr and "label value 4" in p.stderr
    assert run("inspect", out, "--label-map", "nope").returncode == 2


def test_synth_into_read_only_folder_fails_cleanly(run, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    p = run("synth", "--out", ro / "ds", "--cases", 1, "--shape", "8,8,8")
    assert p.returncode == 1 and "ro" in p.stderr


def test_demo_runs(run, tmp_path):
    p = run("demo", "--out", tmp_path / "demo", "--cases", 4, "--epochs", 1, check_rc=0)
    assert "[3/4] prep --cache" in p.stdout
    assert "demo:" in p.stdout or "train: skipped" in p.stdout
