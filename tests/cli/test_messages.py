"""Issue 12, "every message a user meets": stores that heal when prep is rerun, parser errors on one line with the
nearest valid name, label presets taken from the data, no flag silently ignored, counts in the singular, and
documentation that agrees with --help. Each test runs the real binary and checks the exit code and the message."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import has_subcommand, one_line_error, synth

README = Path(__file__).resolve().parents[2] / "README.md"


def files(store):
    return {f.name: f.read_bytes() for f in sorted(Path(store).iterdir())}


@pytest.fixture(scope="module")
def msd(tmp_path_factory, segscale_bin):
    return synth(segscale_bin, tmp_path_factory.mktemp("msd"), 5, (48, 48, 32), 5)


@pytest.fixture(scope="module")
def brats21(tmp_path_factory, segscale_bin):
    return synth(segscale_bin, tmp_path_factory.mktemp("brats21"), 2, (32, 30, 24), 6, layout="brats21")


# --- item 1: a store with no committed shard takes new settings; a real mismatch names the setting -------------

def test_failed_prep_does_not_block_its_fix_and_a_mismatch_names_the_setting(run, brats21, tmp_path):
    st = tmp_path / "st"
    p = run("prep", "--data", brats21, "--out", st, "--cache", "--label-map", "msd", "--quiet")
    assert one_line_error(p, 1) and "label value 4" in p.stderr
    assert (st / "settings.json").exists() and not list(st.glob("*.idx.json"))
    run("prep", "--data", brats21, "--out", st, "--cache", "--quiet", check_rc=0)  # the corrected command
    line = one_line_error(run("prep", "--data", brats21, "--out", st, "--cache", "--seed", "5", "--quiet"), 1)
    assert "other settings: seed is 0 in the store but 5 in this run" in line


# --- item 2: rerunning the same prep repairs a damaged store -----------------------------------------------------

PREP = ["--copies", "2", "--seed", "3", "--shard-size", "1", "--workers", "1", "--quiet"]  # 1 MiB shards: one case each (5 shards)


def test_rerunning_prep_repairs_flipped_truncated_and_deleted_shards(run, msd, tmp_path):
    clean, st = tmp_path / "clean", tmp_path / "st"
    run("prep", "--data", msd, "--out", clean, *PREP, check_rc=0)
    run("prep", "--data", msd, "--out", st, *PREP, check_rc=0)
    shards = sorted(st.glob("shard-*.tar"))
    assert len(shards) >= 3
    index = json.loads((st / "index.json").read_text())
    s0 = next(s for s in index["samples"] if s["shard"] == 0)
    data = bytearray(shards[0].read_bytes())
    off, size, _ = s0["image"]
    for k in range(4):  # 4 bytes flipped inside a member: only the CRC shows it
        data[off + size // 2 + k] ^= 0x5A
    shards[0].write_bytes(bytes(data))
    shards[1].write_bytes(shards[1].read_bytes()[:-3000])  # truncated
    shards[2].unlink()  # lost
    info = run("inspect", st, check_rc=0).stdout  # sizes from the files, not only the manifest
    assert f"{shards[1].name} is" in info and f"{shards[2].name} missing" in info
    p = run("verify", st)
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 1 and last.startswith("segscale: ") and "rerun the same segscale prep command to repair it" in last
    assert "CRC-32C mismatch" in p.stderr and "truncated" in p.stderr
    p = run("prep", "--data", msd, "--out", st, *PREP, check_rc=0)
    assert f"redoing {shards[0].name}" in p.stderr and f"redoing {shards[1].name}" in p.stderr
    assert "3 shards written (2 damaged, redone)" in p.stdout and "store complete" in p.stdout
    run("verify", st, check_rc=0)
    assert files(st) == files(clean)  # byte-identical to an undamaged run, every file
    p = run("prep", "--data", msd, "--out", st, *PREP, check_rc=0)  # a sound store: nothing redone
    assert "0 shards written" in p.stdout and "redoing" not in p.stderr


# --- item 3: the parser's messages ----------------------------------------------------------------------------------

def test_unknown_command_and_option_suggest_the_nearest_name(run, segscale_bin, tmp_path):
    assert "unknown command `prpe`; did you mean `prep`?" in one_line_error(run("prpe"), 2)
    if has_subcommand(segscale_bin, "infer"):
        assert "did you mean `infer`?" in one_line_error(run("infre"), 2)
        assert "did you mean `--max-steps`?" in one_line_error(run("train", "--store", tmp_path, "--max-step", "3"), 2)
    assert "unknown option `--chek`; did you mean `--check`?" in one_line_error(run("inspect", tmp_path, "--chek"), 2)
    assert "did you mean" not in one_line_error(run("inspect", tmp_path, "--zzzzzzzz"), 2)
    assert "a command is required" in one_line_error(run(), 2)
    line = one_line_error(run("prep", "--data", tmp_path, "--out", tmp_path / "o", "--cache", "--copies", "2"), 2)
    assert "--cache" in line and "--copies" in line and "not both" in line


# --- item 5: failures that --skip-bad would pass say so; eval's shapes ------------------------------------------

def test_bad_case_in_prep_mentions_skip_bad(run, msd, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(msd, bad)
    img = bad / "imagesTr" / "BRATS_002.nii.gz"
    img.write_bytes(img.read_bytes()[:3000])
    line = one_line_error(run("prep", "--data", bad, "--out", tmp_path / "st", "--cache", "--quiet"), 1)
    assert "case BRATS_002" in line and "--skip-bad" in line


def test_eval_shape_mismatch_names_both_shapes(run, msd, tmp_path):
    other = tmp_path / "other"
    run("synth", "--out", other, "--cases", 1, "--shape", "20,18,12", "--quiet", check_rc=0)
    (tmp_path / "pred").mkdir()
    shutil.copy(other / "labelsTr" / "BRATS_001.nii.gz", tmp_path / "pred" / "BRATS_001.nii.gz")
    line = one_line_error(run("eval", "--pred", tmp_path / "pred", "--truth", msd, "--label-map", "msd"), 1)
    assert "prediction shape 20x18x12 differs from the truth's 48x48x32" in line


# --- item 6: label presets from the data; no empty output left behind --------------------------------------------

def brats_files(case):
    k = case.name
    return ",".join(str(case / f"{k}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")), case / f"{k}_seg.nii.gz"


def test_apply_takes_the_label_preset_and_case_key_from_brats_names(run, brats21, tmp_path):
    case = sorted(p for p in brats21.iterdir() if p.is_dir())[0]
    images, seg = brats_files(case)
    p = run("apply", "--image", images, "--label", seg, "--copies", 1, "--out", tmp_path / "a", check_rc=0)
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["pipeline"]["label_map"] == "brats21" and meta["case_key"] == case.name
    first, second = p.stdout.splitlines()[:2]
    assert first.startswith("label map brats21 (TC={1,4} WT={1,2,4} ET={4}): from the data") and "BraTS" in first, p.stdout
    assert second.startswith(f"{case.name}: 1 copy of ")
    line = one_line_error(run("apply", "--image", images, "--label", seg, "--label-map", "msd", "--out", tmp_path / "b"), 1)
    assert "label value 4" in line
    assert not (tmp_path / "b").exists()  # nothing left behind


def test_apply_takes_the_label_preset_from_dataset_json(run, msd, tmp_path):
    run("apply", "--image", msd / "imagesTr" / "BRATS_001.nii.gz", "--label", msd / "labelsTr" / "BRATS_001.nii.gz", "--out", tmp_path / "a",
        check_rc=0)
    assert json.loads((tmp_path / "a" / "meta.json").read_text())["pipeline"]["label_map"] == "blog"  # as prep reads this dataset.json


@pytest.mark.parametrize("layout", ["msd", "brats21"])
def test_eval_takes_the_label_preset_from_the_truth(run, msd, brats21, tmp_path, layout):
    truth = msd if layout == "msd" else brats21
    pred = tmp_path / "pred"
    pred.mkdir()
    if layout == "msd":
        for f in (truth / "labelsTr").iterdir():
            shutil.copy(f, pred / f.name)
        want = "blog"
    else:
        for case in (p for p in truth.iterdir() if p.is_dir()):
            shutil.copy(case / f"{case.name}_seg.nii.gz", pred / f"{case.name}.nii.gz")
        want = "brats21"
    p = run("eval", "--pred", pred, "--truth", truth, check_rc=0)
    assert f"label map {want} " in p.stdout and "from the truth dataset" in p.stdout
    rows = (pred / "scores.csv").read_text().splitlines()
    assert rows[-1].startswith("mean,1.000000,1.000000")


# --- item 7: plot writes what its name says ----------------------------------------------------------------------

def test_plot_refuses_a_non_png_name(run, tmp_path):
    m = tmp_path / "metrics.jsonl"
    m.write_text('{"type":"step","step":1,"epoch":0,"loss":0.9}\n')
    line = one_line_error(run("plot", m, "--out", tmp_path / "c.jpg"), 2)
    assert "c.jpg" in line and "PNG" in line
    assert not (tmp_path / "c.jpg").exists()


# --- item 8: no flag silently ignored; help text for every option; singular and plural -------------------------

def test_flags_that_would_be_ignored_are_refused(run, msd, tmp_path):
    line = one_line_error(run("inspect", msd / "imagesTr" / "BRATS_001.nii.gz", "--check", "--label-map", "msd"), 2)
    assert "dataset folder" in line
    run("prep", "--data", msd, "--out", tmp_path / "st", "--cache", "--quiet", check_rc=0)
    line = one_line_error(run("prep", "--finalize", tmp_path / "st", "--data", msd, "--out", tmp_path / "o"), 2)
    assert "--finalize" in line and "--data" in line and "not both" in line
    assert not (tmp_path / "o").exists()
    line = one_line_error(run("inspect", tmp_path / "st", "--check"), 2)
    assert "segscale verify" in line


def test_every_option_has_help_text(run, segscale_bin):
    listing = run("--help", check_rc=0).stdout.split("Subcommands:", 1)[1].split("\n\n", 1)[0]
    commands = re.findall(r"^  (\w+)\s{2,}\S", listing, re.M)
    assert "prep" in commands and "verify" in commands
    bare = []
    for c in commands:
        if c == "train":
            continue  # train's options belong to issue 11's work on cmd_train.cc
        lines = run(c, "--help", check_rc=0).stdout.split("Options:\n", 1)[1].split("\n\n")[0].splitlines()
        assert any(line.startswith("  -") for line in lines), c
        for i, line in enumerate(lines):
            if not line.startswith("  -"):
                continue
            described = re.match(r"^  \S.*?\s{2,}\S", line) or (i + 1 < len(lines) and lines[i + 1].startswith(" " * 20))
            if not described:
                bare.append(f"{c} {line.split()[0]}")
    assert bare == []


def test_counts_in_summaries_are_singular_or_plural(run, tmp_path):
    run("synth", "--out", tmp_path / "one", "--cases", 1, "--shape", "20,18,12", "--quiet", check_rc=0)
    p = run("prep", "--data", tmp_path / "one", "--out", tmp_path / "st", "--cache", "--quiet", check_rc=0)
    assert "1 shard written" in p.stdout and "1 case, 1 sample," in p.stdout and "1 sample, 0 skipped cases" in p.stdout
    assert "OK, 1 sample in 1 shard," in run("verify", tmp_path / "st", check_rc=0).stdout
    assert "1 case, 1 sample in 1 shard" in run("inspect", tmp_path / "st", check_rc=0).stdout


# --- item 9 and the presets: documentation agrees with --help ----------------------------------------------------

def test_readme_and_help_agree(run, segscale_bin):
    readme = README.read_text()
    demo_help = run("demo", "--help", check_rc=0).stdout
    took = re.search(r"\(about ([^)]*?) on 2 cores", demo_help).group(1)
    row = next(line for line in readme.splitlines() if line.startswith("| demo |"))
    assert f"about {took} on 2 cores" in row
    # Issue 31, item 11: the label-map table on the commands that take --label-map, and only there.
    takers = ("inspect", "apply", "prep", "eval") + (("train", "infer") if has_subcommand(segscale_bin, "train") else ())
    for cmd in takers:
        text = run(cmd, "--help", check_rc=0).stdout
        assert "--label-map" in text, cmd
        for preset in ("blog", "msd", "brats21", "brats23"):
            assert re.search(rf"^\s+{preset}\s+TC=", text, re.M), (cmd, preset)
    for cmd in ("synth", "verify", "plot", "demo", "launch"):
        assert not re.search(r"^\s+brats23\s+TC=", run(cmd, "--help", check_rc=0).stdout, re.M), cmd
    assert not re.search(r"^\s+brats23\s+TC=", run("--help", check_rc=0).stdout, re.M)
    for preset in ("blog", "msd", "brats21", "brats23"):
        assert re.search(rf"^\| `{preset}` \| TC=", readme, re.M), preset
    assert "settings.json" in readme
    assert "store" in run("inspect", "--help", check_rc=0).stdout
    if has_subcommand(segscale_bin, "bench"):
        bench_help = run("bench", "--help", check_rc=0).stdout
        assert "--repeat" in bench_help
        quick = re.search(r"--quick\s+About ([^:]*?) on 2 cores", bench_help).group(1)
        assert f"`segscale bench --quick` (about {quick} on 2 cores" in readme
        assert "median" in readme and "bench/RESULTS.md" in readme
        assert "--repeat" in one_line_error(run("bench", "--repeat", "0"), 2)
