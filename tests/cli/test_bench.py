"""segscale bench end to end on tiny volumes: every row of the table runs and is reported, SegResNet at the
monai-brats recipe included (issue 20), with the MONAI peer measured for both models in the same run."""
import json
import subprocess

import pytest


def test_bench_table_has_every_row_and_both_monai_peers(segscale_bin, torch_build, tmp_path):
    pytest.importorskip("monai")  # the peer runs under /usr/bin/python3, as this suite does
    out = tmp_path / "bench.json"
    p = subprocess.run([segscale_bin, "bench", "--cases", "2", "--shape", "48,48,32", "--steps", "2", "--repeat", "1",
                        "--work", str(tmp_path / "work"), "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    rows = {row["row"]: row for row in r["rows"]}
    assert list(rows) == ["raw", "copies", "cache", "ranks", "devcache", "devcache-amp", "segresnet"]
    assert all(row["samples_per_s"] > 0 for row in rows.values()), rows
    # The SegResNet row trained the recipe's model, loss and optimiser at its batch of 1.
    config = json.loads((tmp_path / "work" / "run-segresnet" / "config.json").read_text())
    assert config["recipe"] == "monai-brats" and config["model"]["name"] == "segresnet" and config["batch"] == 1
    assert config["model"]["init_filters"] == 16 and config["weight_decay"] == 1e-5
    # Both peers were measured, and each ratio is segscale's rate over the peer's within the same repeat.
    assert r["monai"]["compute_samples_per_s"] > 0 and r["monai"]["segresnet"]["compute_samples_per_s"] > 0
    seg = r["monai"]["segresnet"]
    assert seg["ratio"][0] == pytest.approx(rows["segresnet"]["samples_per_s"] / seg["compute_samples_per_s"], rel=1e-9)
    table = p.stdout
    assert "(g) SegResNet, monai-brats recipe, --cache store" in table
    assert "SegResNet at the monai-brats recipe (batch 1, same crop): (g) --cache store vs MONAI's step alone" in table
    assert "MONAI peer, segresnet" in p.stderr  # progress named the peer as it ran
