"""Issues 28 (item 6) and 29: nnU-Net's recipe end to end on nnU-Net's own layout and plan: `segscale plan`, then
`segscale prep --plans` (nnU-Net's preprocessing into the sharded store), then `segscale train --recipe nnunet`:
nnU-Net's sampler and augmentation on the host, PlainConvUNet from the plan with deep supervision, DC_and_BCE with the
plan's batch Dice, SGD / poly / clipping at 12, fixed-length epochs and nnU-Net's pseudo-Dice validation. Each piece
is compared with nnunetv2 itself in tests/oracle; here they must work together: the store holds what `apply --plans`
(checked against DefaultPreprocessor) writes, the run records the plan's settings, resumes bit for bit, runs on 2
ranks, and every misuse is refused naming the fix."""
import io
import json
import subprocess
import tarfile

import numpy as np
import pytest

from conftest import free_port, one_line_error, synth
from test_nnunet_dataset import dataset137

QUICK = ["--steps-per-epoch", 3, "--val-steps", 2, "--threads", 1, "--loader-threads", 1, "--quiet"]


@pytest.fixture(scope="module")
def nn(segscale_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("nnrecipe")
    raw = dataset137(synth(segscale_bin, root / "b21", 5, (32, 32, 24), 5, layout="brats21"), root / "Dataset137_BraTS21")
    plans = root / "pre" / "nnUNetPlans.json"
    subprocess.run([segscale_bin, "plan", "--data", raw, "--out", plans], check=True, capture_output=True)
    store = root / "store"
    p = subprocess.run([segscale_bin, "prep", "--plans", plans, "--data", raw, "--out", store, "--quiet"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "nnU-Net's preprocessing, 3d_fullres of" in p.stdout and "store complete: 5 samples" in p.stdout, p.stdout
    return raw, plans, store


def store_members(store):
    out = {}
    for shard in sorted(store.glob("shard-*.tar")):
        with tarfile.open(shard) as t:
            for m in t.getmembers():
                out[m.name] = t.extractfile(m).read()
    return out


def lines(run_dir, kind):
    return [x for x in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if x.get("type") == kind]


def steps(run_dir):
    return lines(run_dir, "step")


def vals(run_dir):
    return lines(run_dir, "val")


def test_the_store_holds_nnunets_preprocessed_cases(run, nn, tmp_path):
    raw, plans, store = nn
    settings = json.loads((store / "settings.json").read_text())
    assert settings["mode"] == "nnunet" and settings["nnunet"]["configuration"] == "3d_fullres"
    assert settings["nnunet"]["plans"] == json.loads(plans.read_text())
    assert settings["nnunet"]["foreground"] == [[1, 2, 3], [2, 3], [3]] and settings["nnunet"]["regions"] is True
    members = store_members(store)
    key = sorted(settings["cases"])[1]
    imgs = sorted((raw / "imagesTr").glob(f"{key}_*.nii.gz"))
    run("apply", *sum((["--image", p] for p in imgs), []), "--label", raw / "labelsTr" / f"{key}.nii.gz", "--plans", plans,
        "--key", key, "--out", tmp_path / "one", check_rc=0)
    image = np.load(io.BytesIO(members[f"{key}.image.npy"]))
    seg = np.load(io.BytesIO(members[f"{key}.label.npy"]))
    assert image.dtype == np.float32 and seg.dtype == np.int16
    assert np.array_equal(image, np.load(tmp_path / "one" / "image_0000.npy"))
    assert np.array_equal(seg, np.load(tmp_path / "one" / "label_0000.npy"))
    assert (seg == -1).any() or seg.min() >= 0  # -1 only outside the nonzero crop
    meta = json.loads(members[f"{key}.json"])
    one = json.loads((tmp_path / "one" / "meta.json").read_text())
    assert meta["properties"] == one["properties"]
    for k, cl in enumerate(one["class_locations"]):
        rows = np.load(tmp_path / "one" / cl["file"])
        assert np.array_equal(np.asarray(meta["class_locations"][k]).reshape(-1, 3), rows[:, 1:]), k
    # The store verifies like any other, and a rerun finds every shard done.
    assert "ok" in run("verify", store, check_rc=0).stdout.lower()
    p = run("prep", "--plans", plans, "--data", raw, "--out", store, "--quiet", check_rc=0)
    assert "0 shards written" in p.stdout or "0 shard written" in p.stdout or "written, " in p.stdout


def test_recipe_nnunet_trains_with_the_plans_settings(torch_build, run, nn, tmp_path):
    raw, plans, store = nn
    plan = json.loads(plans.read_text())["configurations"]["3d_fullres"]
    out = tmp_path / "r"
    p = run("train", "--store", store, "--out", out, "--recipe", "nnunet", "--epochs", 2, "--fold", 0, *QUICK, check_rc=0)
    assert "recipe nnunet: model plainconvunet, loss dc_and_bce, sgd lr 0.01 momentum 0.99 nesterov wd 3e-05, schedule poly" in p.stdout, p.stdout
    assert f"batch {plan['batch_size']}, clip 12, 3 steps per epoch" in p.stdout, p.stdout
    assert "nnU-Net's regions from the plan's dataset.json: TC = labels (2, 3), WT = labels (1, 2, 3), ET = labels (3)" in p.stdout
    c = json.loads((out / "config.json").read_text())
    assert c["recipe"] == "nnunet" and c["store_mode"] == "nnunet" and c["val_mode"] == "pseudo"
    assert c["batch"] == plan["batch_size"] and c["steps_per_epoch"] == 3 and c["clip_grad_norm"] == 12 and c["val_steps"] == 2
    assert c["loss"]["name"] == "dc_and_bce" and c["loss"]["batch"] == plan["batch_dice"]
    m = c["model"]
    assert m["name"] == "plainconvunet" and m["deep_supervision"] is True and m["input_channels"] == 4 and m["num_classes"] == 3
    for k, v in plan["architecture"]["arch_kwargs"].items():
        if k in m:
            assert m[k] == v, k
    assert m["n_stages"] == plan["architecture"]["arch_kwargs"]["n_stages"]
    assert c["val_roi"] == plan["patch_size"] and c["nnunet"]["regions"] == [[2, 3], [1, 2, 3], [3]]
    s = steps(out)
    assert [x["step"] for x in s] == [1, 2, 3, 4, 5, 6] and all(np.isfinite(x["loss"]) for x in s)
    # nnU-Net's poly at each epoch's start: 0.01 (1 - e / 2)^0.9
    assert [x["lr"] for x in s] == pytest.approx([0.01] * 3 + [0.01 * 0.5 ** 0.9] * 3)
    v = vals(out)
    assert [x["epoch"] for x in v] == [0, 1]
    for x in v:
        assert all(k in x for k in ("dice_tc", "dice_wt", "dice_et", "dice_mean"))
    # nnU-Net's moving average of the pseudo-Dice mean, which picks the best checkpoint
    assert v[0]["ema_fg_dice"] == v[0]["dice_mean"]
    assert v[1]["ema_fg_dice"] == pytest.approx(0.9 * v[0]["dice_mean"] + 0.1 * v[1]["dice_mean"], rel=1e-12)
    assert "best pseudo-Dice EMA (nnU-Net's pick for checkpoint_best" in p.stdout
    splits = json.loads((out / "splits.json").read_text())
    assert len(splits) == 5 and len(splits[0]["val"]) == 1
    # The fold's final validation: the validation case predicted whole, nnU-Net's summary.json layout; its references
    # are the stored segmentation's regions.
    assert "final validation (nnU-Net's, 1 case whole): Dice mean" in p.stdout, p.stdout
    summary = json.loads((out / "validation_summary.json").read_text())
    (case,) = summary["metric_per_case"]
    assert case["case"] == splits[0]["val"][0]
    seg = np.load(io.BytesIO(store_members(store)[f"{case['case']}.label.npy"]))[0]
    for key, labels in (("(1, 2, 3)", [1, 2, 3]), ("(2, 3)", [2, 3]), ("(3,)", [3])):
        m = case["metrics"][key]
        assert m["n_ref"] == int(np.isin(seg, labels).sum()) and m["TP"] + m["FN"] == m["n_ref"]
        if m["Dice"] is not None:
            assert m["Dice"] == pytest.approx(2 * m["TP"] / (2 * m["TP"] + m["FP"] + m["FN"]))
    (final,) = lines(out, "final_val")
    assert final["cases"] == 1 and final["step"] == 6


def test_recipe_nnunet_resumes_bit_for_bit(torch_build, run, nn, tmp_path):
    raw, plans, store = nn
    base = ["--store", store, "--recipe", "nnunet", "--fold", 0, *QUICK]
    run("train", *base, "--out", tmp_path / "a", "--epochs", 2, check_rc=0)
    run("train", *base, "--out", tmp_path / "b", "--epochs", 2, "--max-steps", 4, "--no-final-val", check_rc=0)
    assert len(steps(tmp_path / "b")) == 4 and not (tmp_path / "b" / "validation_summary.json").exists()
    run("train", *base, "--out", tmp_path / "b", "--epochs", 2, "--resume", check_rc=0)
    a, b = steps(tmp_path / "a"), steps(tmp_path / "b")
    assert [x["loss"] for x in a] == [x["loss"] for x in b]
    assert [x["dice_mean"] for x in vals(tmp_path / "a")][-1] == [x["dice_mean"] for x in vals(tmp_path / "b")][-1]
    # The moving average survives the resume (the checkpoint holds it): the resumed run's last value continues the
    # values before the stop. (The --max-steps stop validated once more than run a, so the averages differ.)
    vb = vals(tmp_path / "b")
    assert vb[-1]["ema_fg_dice"] == pytest.approx(0.9 * vb[-2]["ema_fg_dice"] + 0.1 * vb[-1]["dice_mean"], rel=1e-12)


def test_recipe_nnunet_on_two_ranks(torch_build, run, nn, tmp_path):
    raw, plans, store = nn
    p = run("launch", "--nproc-per-node", 2, "--master-port", free_port(), "--", "segscale", "train", "--store", store, "--out",
            tmp_path / "two", "--recipe", "nnunet", "--epochs", 1, "--fold", 0, *QUICK, check_rc=0)
    assert "[rank 0] trained 3 steps" in p.stdout, p.stdout
    c = json.loads((tmp_path / "two" / "config.json").read_text())
    assert c["world"] == 2 and c["batch"] == 1  # the plan's batch of 2, split over the ranks as nnUNetTrainer splits it
    assert len(steps(tmp_path / "two")) == 3 and len(vals(tmp_path / "two")) == 1


def test_misuse_is_refused_with_the_fix(torch_build, run, nn, tmp_path):
    raw, plans, store = nn
    p = run("train", "--store", store, "--out", tmp_path / "x", "--recipe", "nnunet", "--val-mode", "full", *QUICK, check_rc=2)
    assert "--val-mode full: an nnU-Net store validates as nnU-Net does during training (--val-mode pseudo)" in one_line_error(p, 2)
    assert not (tmp_path / "x").exists()
    p = run("train", "--data", raw, "--out", tmp_path / "y", "--recipe", "nnunet", "--epochs", 1, check_rc=2)
    assert "--recipe nnunet trains on nnU-Net's preprocessed cases" in one_line_error(p, 2)
    assert "segscale prep --plans" in p.stderr and "--recipe monai-dynunet" in p.stderr
    p = run("prep", "--plans", plans, "--data", raw, "--out", tmp_path / "s", "--cache", check_rc=2)
    assert "--plans stores nnU-Net's preprocessed cases" in one_line_error(p, 2)
    p = run("train", "--store", store, "--out", tmp_path / "z", "--recipe", "nnunet", "--label-map", "msd", *QUICK, check_rc=2)
    assert "an nnU-Net store keeps the dataset's own labels" in one_line_error(p, 2)
    p = run("train", "--store", store, "--out", tmp_path / "w", "--recipe", "nnunet", "--device-cache", *QUICK, check_rc=2)
    assert "--device-cache: nnU-Net stores" in one_line_error(p, 2)
    run("train", "--store", store, "--out", tmp_path / "r", "--recipe", "nnunet", "--max-steps", 1, *QUICK, check_rc=0)
    img = ",".join(map(str, sorted((raw / "imagesTr").glob("*.nii.gz"))[:4]))
    p = run("infer", "--model", tmp_path / "r" / "last.pt", "--image", img, "--out", tmp_path / "pred.nii.gz", "--tta", "flip", check_rc=2)
    assert "a run of nnU-Net's recipe predicts as nnU-Net does" in one_line_error(p, 2)
    (tmp_path / "r" / "plans.json").unlink()
    p = run("infer", "--model", tmp_path / "r" / "last.pt", "--image", img, "--out", tmp_path / "pred.nii.gz", check_rc=1)
    assert "plans.json: missing: a run of nnU-Net's recipe keeps its plan" in p.stderr, p.stderr
    assert not (tmp_path / "pred.nii.gz").exists()


def test_infer_predicts_a_case_as_nnunets_predictor_lays_it_out(torch_build, run, nn, tmp_path):
    raw, plans, store = nn
    out = tmp_path / "r"
    run("train", "--store", store, "--out", out, "--recipe", "nnunet", "--max-steps", 2, *QUICK, check_rc=0)
    assert json.loads((out / "plans.json").read_text()) == json.loads(plans.read_text())
    assert json.loads((out / "dataset.json").read_text())["regions_class_order"] == [1, 2, 3]
    key = sorted(p.name[:-12] for p in (raw / "imagesTr").glob("*_0000.nii.gz"))[0]
    imgs = [raw / "imagesTr" / f"{key}_{i:04d}.nii.gz" for i in range(4)]
    pred = tmp_path / "pred.nii.gz"
    pred.write_bytes(b"poison")
    p = run("infer", "--model", out / "last.pt", "--image", ",".join(map(str, imgs)), "--out", pred, "--threads", 1, check_rc=0)
    code = f"""
import nibabel as nib, numpy as np
a, b = nib.load({str(imgs[0])!r}), nib.load({str(pred)!r})
assert a.shape == b.shape and np.allclose(a.affine, b.affine), (a.shape, b.shape)
seg = np.asarray(b.dataobj)
assert seg.dtype == np.uint8 and set(np.unique(seg)) <= {{0, 1, 2, 3}}, np.unique(seg)
body = np.zeros(a.shape, bool)
for i in range(4):
    body |= np.asarray(nib.load({str(imgs[0])!r}.replace('_0000.', f'_{{i:04d}}.')).dataobj) != 0
idx = np.argwhere(body)
lo, hi = idx.min(0), idx.max(0) + 1
outside = np.ones(a.shape, bool)
outside[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = False
assert not seg[outside].any()  # nnU-Net reverts the crop with zeros
print("ok", int((seg > 0).sum()))
"""
    r = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stdout + r.stderr
    # A whole dataset: one file per case.
    run("infer", "--model", out / "last.pt", "--data", raw, "--out-dir", tmp_path / "all", "--threads", 1, "--quiet", check_rc=0)
    assert len(list((tmp_path / "all").glob("*.nii.gz"))) == 5


def test_the_recipes_run_length_and_split_are_defaults_only(torch_build, run, nn, tmp_path):
    raw, plans, store = nn
    base = ["--store", store, "--out", tmp_path / "r", "--recipe", "nnunet", *QUICK]
    run("train", *base, "--max-steps", 2, check_rc=0)
    c = json.loads((tmp_path / "r" / "config.json").read_text())
    assert c["epochs"] is None and c["max_steps"] == 2 and c["val_fraction"] == 0.2  # nnU-Net's 80:20 without --fold
    # A resume without length flags continues the run's own length, not the recipe's 1000 epochs.
    p = run("train", "--out", tmp_path / "r", "--resume", "--quiet", check_rc=0)
    assert "run length changes" not in p.stdout + p.stderr
    assert json.loads((tmp_path / "r" / "config.json").read_text())["epochs"] is None
    text = run("train", "--help", check_rc=0).stdout
    assert "(default, by --recipe: case-study 0.1, monai-brats 0.2, nnunet 0.2, monai-dynunet 0.1)" in text, text
    assert "monai-brats 300, nnunet 1000" in text


def test_export_nnunet_writes_a_results_folder_nnunet_loads(torch_build, run, nn, tmp_path):
    # nnU-Net's own predictor on the exported folder is compared with segscale infer in
    # tests/oracle/test_nnunet_interchange.py (torch-2 stage); here: the folder's files, the checkpoint's keys, its
    # weights loading strictly into dynamic-network-architectures' PlainConvUNet, and the region channels permuted.
    raw, plans, store = nn
    out = tmp_path / "r"
    run("train", "--store", store, "--out", out, "--recipe", "nnunet", "--max-steps", 1, "--fold", 2, *QUICK, check_rc=0)
    res = tmp_path / "nnUNet_results" / "Dataset137_BraTS21" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    p = run("export", out, "--format", "nnunet", "--out", res, "--python", "/usr/bin/python3", check_rc=0)
    assert "as an nnU-Net results folder" in p.stdout
    assert json.loads((res / "plans.json").read_text()) == json.loads(plans.read_text())
    assert list(json.loads((res / "dataset.json").read_text())["labels"]) == ["background", "whole tumor", "tumor core", "enhancing tumor"]
    code = f"""
import json, torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
ck = torch.load({str(res / 'fold_2' / 'checkpoint_final.pth')!r}, map_location="cpu")
assert ck["trainer_name"] == "nnUNetTrainer" and ck["init_args"]["configuration"] == "3d_fullres" and ck["init_args"]["fold"] == 2
assert tuple(ck["inference_allowed_mirroring_axes"]) == (0, 1, 2)
kw = json.load(open({str(plans)!r}))["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
kw.update(conv_op=torch.nn.Conv3d, norm_op=torch.nn.InstanceNorm3d, dropout_op=None, nonlin=torch.nn.LeakyReLU)
net = PlainConvUNet(4, num_classes=3, deep_supervision=False, **kw)
net.load_state_dict(ck["network_weights"], strict=True)
ours = torch.load({str(out / 'last.pt')!r})
for k, v in ck["network_weights"].items():
    if ".seg_layers." in k:  # ours: TC, WT, ET; nnU-Net's: dataset.json's whole tumor, tumor core, enhancing tumor
        assert torch.equal(v, ours[k][[1, 0, 2]]), k
    else:
        assert torch.equal(v, ours[k]), k
print("ok")
"""
    r = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    # Back in: segscale infer on the results folder (nnU-Net's layout, its channel order) predicts what it predicts
    # with the run itself.
    key = sorted(p.name[:-12] for p in (raw / "imagesTr").glob("*_0000.nii.gz"))[2]
    img = ",".join(str(raw / "imagesTr" / f"{key}_{i:04d}.nii.gz") for i in range(4))
    run("infer", "--model", out / "last.pt", "--image", img, "--out", tmp_path / "a.nii.gz", "--threads", 1, check_rc=0)
    p = run("infer", "--model", res, "--image", img, "--out", tmp_path / "b.nii.gz", "--threads", 1, check_rc=0)
    assert "nnU-Net results folder" in p.stderr and "folds 2" in p.stderr, p.stderr
    same = subprocess.run(["/usr/bin/python3", "-c", f"""
import nibabel as nib, numpy as np
a, b = (np.asarray(nib.load(f).dataobj) for f in ({str(tmp_path / 'a.nii.gz')!r}, {str(tmp_path / 'b.nii.gz')!r}))
print(int((a != b).sum()), int((a > 0).sum()))
"""], capture_output=True, text=True).stdout.split()
    assert same[0] == "0", same
    p = run("infer", "--model", res, "--folds", 7, "--image", img, "--out", tmp_path / "c.nii.gz", check_rc=1)
    assert "fold_7/checkpoint_final.pth: no such checkpoint" in p.stderr, p.stderr
    p = run("infer", "--model", out / "last.pt", "--folds", 1, "--image", img, "--out", tmp_path / "c.nii.gz", check_rc=2)
    assert "is not one" in one_line_error(p, 2)
    # A run of another recipe is refused, naming the formats it can take.
    run("train", "--store", store, "--out", tmp_path / "plain", "--recipe", "nnunet", "--max-steps", 1, *QUICK, check_rc=0)
    cfg = json.loads((tmp_path / "plain" / "config.json").read_text())
    cfg["store_mode"] = "cache"
    (tmp_path / "plain" / "config.json").write_text(json.dumps(cfg))
    p = run("export", tmp_path / "plain", "--format", "nnunet", "--out", tmp_path / "x", "--python", "/usr/bin/python3", check_rc=1)
    assert "--format nnunet exports a run of nnU-Net's recipe" in p.stderr, p.stderr


def test_demo_runs_nnunets_whole_path(torch_build, run, tmp_path):
    p = run("demo", "--recipe", "nnunet", "--out", tmp_path / "d", "--cases", 5, "--epochs", 1, check_rc=0)
    for step in ("[1/4] synth: 5 BraTS-like phantoms", "[2/4] plan: nnU-Net's 3d_fullres: patch", "[3/4] prep --plans: 5 cases",
                 "[4/4] train: recipe nnunet", "final validation (nnU-Net's, 1 case whole)", "demo: 2 steps in"):
        assert step in p.stdout, p.stdout
    raw = tmp_path / "d" / "Dataset137_Phantoms"
    dj = json.loads((raw / "dataset.json").read_text())
    assert dj["labels"] == {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
    assert dj["regions_class_order"] == [1, 2, 3] and dj["file_ending"] == ".nii.gz"
    assert sorted(f.name for f in (raw / "imagesTr").iterdir())[:4] == [f"BraTS2021_00000_{i:04d}.nii.gz" for i in range(4)]
    assert "nnunet dataset, 5 training + 0 test cases, modalities T1, T1ce, T2, Flair" in run("inspect", raw, check_rc=0).stdout
    assert json.loads((tmp_path / "d" / "run" / "config.json").read_text())["recipe"] == "nnunet"
    assert "Warning" not in p.stdout + p.stderr  # no per-step library warnings in the log
