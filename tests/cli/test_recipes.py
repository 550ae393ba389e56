"""Recipes, models, losses, optimisers and schedules as a user picks them on segscale train's command line:
what each recipe sets (and that flags override it), config.json, the schedule actually applied, exact
resume with SGD momentum and a schedule, refusals, data parallelism, infer on a non-default model, and the
MONAI recipes end to end (skipped only while this build's make_network rejects their model's name)."""
import json
import subprocess

import pytest

from conftest import case_study_pipeline, free_port

TINY = ["--threads", "1", "--loader-threads", "1", "--quiet", "--val-fraction", "0.34"]
UNET = ["--channels", "4,8,16", "--strides", "2,2"]


@pytest.fixture(scope="module")
def store(torch_build, make_store):
    return make_store(6, (36, 36, 36), case_study_pipeline((16, 16, 16)))


def config(out):
    return json.loads((out / "config.json").read_text())


def steps(out):
    return [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if json.loads(l)["type"] == "step"]


def test_nnunet_recipe_settings_with_a_unet_and_flags_overriding(run, store, tmp_path):
    # The nnunet recipe's loss, optimiser and schedule on the UNet (--model overrides the recipe's DynUNet).
    p = run("train", "--store", store / "cache", "--out", tmp_path / "r", "--recipe", "monai-dynunet", "--store-chain", "--model", "unet", *UNET, "--epochs", 3,
            "--batch", 4, *TINY, check_rc=0)
    line = next(l for l in p.stdout.splitlines() if l.startswith("recipe "))
    assert "recipe monai-dynunet: model unet, loss dicece, sgd lr 0.01 momentum 0.99 nesterov wd 3e-05, schedule poly" in line, line
    c = config(tmp_path / "r")
    assert c["recipe"] == "monai-dynunet" and c["model"]["name"] == "unet" and c["model"]["channels"] == [4, 8, 16]
    assert c["optimizer"] == "sgd" and c["momentum"] == 0.99 and c["nesterov"] is True and c["weight_decay"] == 3e-5
    assert c["loss"]["name"] == "dicece" and c["loss"]["batch"] is True and c["schedule"] == "poly" and c["schedule_epochs"] == 3
    assert c["val_mode"] == "full" and c["amp"] is False  # the recipe's AMP is for CUDA
    # One step an epoch (4 training cases, batch 4): the rate of epoch e is nnU-Net's 1e-2 (1 - e/3)^0.9.
    assert [s["lr"] for s in steps(tmp_path / "r")] == pytest.approx([1e-2 * (1 - e / 3) ** 0.9 for e in range(3)], rel=1e-12)
    # A flag beats the recipe.
    run("train", "--store", store / "cache", "--out", tmp_path / "o", "--recipe", "monai-dynunet", "--store-chain", "--model", "unet", *UNET, "--epochs", 2,
        "--batch", 4, "--optimizer", "adam", "--lr", "3e-4", "--schedule", "cosine", "--warmup-epochs", 1, *TINY, check_rc=0)
    c = config(tmp_path / "o")
    assert c["optimizer"] == "adam" and c["momentum"] == 0 and c["nesterov"] is False and c["lr"] == 3e-4 and c["loss"]["name"] == "dicece"
    assert [s["lr"] for s in steps(tmp_path / "o")] == pytest.approx([0.0, 3e-4])  # warm-up from 0, then the cosine's start


def test_case_study_is_the_default_and_records_its_loss(run, store, tmp_path):
    p = run("train", "--store", store / "cache", "--out", tmp_path / "r", *UNET, "--max-steps", 1, *TINY, check_rc=0)
    assert "recipe case-study: model unet, loss dice, adam lr 0.0001 wd 0, schedule none, amp off, val crop, batch 2" in p.stdout
    c = config(tmp_path / "r")
    assert c["loss"] == {"name": "dice", "sigmoid": True, "squared_pred": True, "smooth_nr": 1e-5, "smooth_dr": 1e-5, "softmax": False,
                         "include_background": True, "jaccard": False, "batch": False}
    assert c["model"] == {"name": "unet", "in_channels": 4, "out_channels": 3, "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 2}


def test_sgd_poly_run_resumes_exactly(run, store, tmp_path):
    args = ["--store", store / "cache", "--recipe", "monai-dynunet", "--store-chain", "--model", "unet", *UNET, "--epochs", 3, "--batch", 2, "--val-fraction", "0",
            "--threads", "1", "--loader-threads", "1", "--quiet"]
    run("train", "--out", tmp_path / "full", *args, check_rc=0)
    run("train", "--out", tmp_path / "split", *args, "--max-steps", 4, check_rc=0)  # 3 steps an epoch: stops mid-epoch 1
    p = run("train", "--out", tmp_path / "split", *args, "--resume", check_rc=0)
    assert (tmp_path / "full" / "last.pt").read_bytes() == (tmp_path / "split" / "last.pt").read_bytes()
    assert [s["loss"] for s in steps(tmp_path / "full")] == [s["loss"] for s in steps(tmp_path / "split")]
    # Issue 22: the final stderr line counts this invocation's steps and time; the run's total comes apart.
    assert "train: 5 steps in " in p.stderr and "train: run total 9 steps (resumed at step 4)" in p.stderr, p.stderr


def test_resume_refuses_another_model_or_recipe(run, store, tmp_path):
    base = ["--store", store / "cache", "--out", tmp_path / "r", *UNET, *TINY]
    run("train", *base, "--max-steps", 1, check_rc=0)
    p = run("train", *base, "--max-steps", 2, "--resume", "--model-config", '{"num_res_units": 1}', check_rc=1)
    assert "--resume with different settings: model (" in p.stderr and '"num_res_units":2' in p.stderr, p.stderr
    p = run("train", *base, "--max-steps", 2, "--resume", "--recipe", "monai-dynunet", "--store-chain", "--model", "unet", check_rc=1)
    assert "--resume with different settings" in p.stderr and "the run was started with --recipe case-study" in p.stderr, p.stderr


@pytest.mark.parametrize("args,needle", [
    (["--nesterov"], "--nesterov needs --optimizer sgd"),
    (["--optimizer", "sgd", "--momentum", "1.5"], "--momentum 1.5 is out of range"),
    (["--schedule", "cosine", "--epochs", "2", "--warmup-epochs", "2"], "--warmup-epochs 2 is out of range"),
    (["--loss-config", '{"bogus": 1}'], "unknown loss setting `bogus`"),
    (["--loss-config", '{"sigmoid": true, "softmax": true}'], "sigmoid and softmax"),
    (["--loss-config", "/nonexistent/loss.json"], "--loss-config"),
    (["--model-config", '{"name": "segresnet"}'], "--model-config names model \"segresnet\", but --model is unet"),
    (["--model-config", '{"in_channels": 2}'], "in_channels 2, but"),
    (["--model", "nosuch"], "unknown model `nosuch`"),
    (["--recipe", "nosuch"], "--recipe"),
    (["--channels", "4,8,16,32,64,128", "--strides", "2,2,2,2,2"], "does not suit the unet model"),
])
def test_bad_settings_exit_two_naming_them(run, store, tmp_path, args, needle):
    p = run("train", "--store", store / "cache", "--out", tmp_path / "x", *TINY, *args)
    assert p.returncode == 2 and needle in p.stderr, p.stderr
    assert not (tmp_path / "x" / "config.json").exists()


def test_two_ranks_with_the_nnunet_recipe(run, store, tmp_path):
    p = run("launch", "--nproc-per-node", 2, "--master-port", free_port(), "--", "segscale", "train", "--store", store / "cache",
            "--out", tmp_path / "two", "--recipe", "monai-dynunet", "--store-chain", "--model", "unet", *UNET, "--epochs", 2, "--batch", 1, *TINY, check_rc=0)
    assert "[rank 0] trained 4 steps" in p.stdout, p.stdout
    assert config(tmp_path / "two")["world"] == 2 and len(steps(tmp_path / "two")) == 4


def test_infer_builds_the_runs_model_from_config_json(run, store, tmp_path):
    # A UNet unlike the default (one residual unit): infer must build it from config.json's "model".
    run("train", "--store", store / "cache", "--out", tmp_path / "r", *UNET, "--model-config", '{"num_res_units": 1}', "--max-steps", 1,
        *TINY, check_rc=0)
    img = sorted((store / "ds" / "imagesTr").glob("*.nii.gz"))[0]
    run("infer", "--model", tmp_path / "r" / "last.pt", "--image", img, "--out", tmp_path / "seg.nii.gz", "--preview", "no", "--threads", 1,
        check_rc=0)
    assert (tmp_path / "seg.nii.gz").exists()


def monai_recipe(run, store, tmp_path, recipe, model_config, extra=()):
    out = tmp_path / recipe
    args = ["--store", store / "cache", "--recipe", recipe, "--store-chain", "--model-config", json.dumps(model_config), "--epochs", 2, "--batch", 2,
            "--val-fraction", "0.34", "--threads", "1", "--loader-threads", "1", "--quiet", *extra]
    p = run("train", "--out", out, *args, "--max-steps", 2)
    if p.returncode == 2 and "unknown model" in p.stderr:
        pytest.skip(f"this build's make_network does not build the {recipe} recipe's model yet: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    p = run("train", "--out", out, *args, "--resume", check_rc=0)
    run("train", "--out", tmp_path / "full", *args, check_rc=0)
    assert (out / "last.pt").read_bytes() == (tmp_path / "full" / "last.pt").read_bytes()
    return out, config(out)


def loads_in_monai(code):
    p = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True)
    if "No module named 'monai'" in p.stderr:
        pytest.skip("MONAI not installed")
    assert p.stdout.strip() == "ok", p.stderr


def test_monai_brats_recipe_end_to_end(run, store, tmp_path):
    out, c = monai_recipe(run, store, tmp_path, "monai-brats", {"init_filters": 8})
    assert c["model"]["name"] == "segresnet" and c["model"]["blocks_down"] == [1, 2, 2, 4] and c["loss"]["smooth_nr"] == 0
    assert c["optimizer"] == "adam" and c["weight_decay"] == 1e-5 and c["schedule"] == "cosine" and c["val_mode"] == "full"
    loads_in_monai(f"""
import torch
from monai.networks.nets import SegResNet
SegResNet(blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1), init_filters=8, in_channels=4, out_channels=3,
          dropout_prob=0.2).load_state_dict(torch.load('{out / "last.pt"}'))
print("ok")
""")


def test_nnunet_recipe_end_to_end(run, store, tmp_path):
    out, c = monai_recipe(run, store, tmp_path, "monai-dynunet", {"filters": [4, 8, 16]})
    m = c["model"]
    strides = [st if isinstance(st, list) else [st] * 3 for st in m["strides"]]  # config.json keeps MONAI's int for an isotropic level
    assert m["name"] == "dynunet" and strides == [[1, 1, 1], [2, 2, 2], [2, 2, 2]] and m["deep_supervision"] is True
    loads_in_monai(f"""
import torch
from monai.networks.nets import DynUNet
DynUNet(3, 4, 3, kernel_size={m["kernel_size"]}, strides={m["strides"]}, upsample_kernel_size={m["upsample_kernel_size"]},
        filters=[4, 8, 16], norm_name="instance", deep_supervision=True, deep_supr_num={m["deep_supr_num"]},
        res_block=False).load_state_dict(torch.load('{out / "last.pt"}'))
print("ok")
""")


@pytest.mark.parametrize("recipe,model", [("monai-brats", "segresnet"), ("monai-dynunet", "dynunet")])
def test_demo_runs_a_recipe(run, torch_build, tmp_path, recipe, model):
    # The demo with a recipe: its chain (crop shrunk to the phantoms), model, loss, optimiser and schedule.
    p = run("demo", "--out", tmp_path / "demo", "--cases", 4, "--epochs", 1, "--recipe", recipe, check_rc=0)
    assert f"[4/4] train: recipe {recipe} ({model} model), 1 epoch" in p.stdout, p.stdout
    assert "demo: " in p.stdout and "best validation Dice mean" in p.stdout
    c = config(tmp_path / "demo" / "run")
    assert c["recipe"] == recipe and c["model"]["name"] == model and c["val_mode"] == "full"
    chain = json.loads((tmp_path / "demo" / "pipeline.json").read_text())["transforms"]
    crops = [t for t in chain if "crop" in t["type"]]
    assert len(crops) == 1 and crops[0]["roi"] == [48, 48, 32]
    # The patch the model is planned for and validated with is the chain's crop, whichever kind it is (nnunet's
    # pos/neg crop was once missed: DynUNet was planned for 128x128x64 and refused the 48x48x32 crops).
    assert c["val_roi"] == [48, 48, 32], c["val_roi"]
    if model == "dynunet":
        assert c["model"]["strides"] == [1, 2, 2, 2], c["model"]  # isotropic triples stored as MONAI takes them
    p = run("demo", "--out", tmp_path / "bad", "--recipe", "nope")
    assert p.returncode == 2 and "--recipe" in p.stderr


def test_init_weights_start_from_given_weights_and_refuse_bad_files(run, store, tmp_path):
    base = ["--store", store / "cache", *UNET, *TINY]
    run("train", *base, "--out", tmp_path / "a", "--max-steps", 2, check_rc=0)
    # At a vanishing learning rate the weights do not move: the run ends with the weights it started from (a fresh
    # initialisation would differ by far more than 1e-12).
    run("train", *base, "--out", tmp_path / "b", "--max-steps", 1, "--lr", 1e-30, "--init-weights", tmp_path / "a" / "last.pt", check_rc=0)
    same = subprocess.run(["/usr/bin/python3", "-c", f"""
import torch
a, b = torch.load('{tmp_path / "a" / "last.pt"}'), torch.load('{tmp_path / "b" / "last.pt"}')
print(a.keys() == b.keys() and all(torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=1e-12) for k in a))
"""], capture_output=True, text=True)
    assert same.stdout.strip() == "True", same.stderr
    assert config(tmp_path / "b")["init_weights"] == str(tmp_path / "a" / "last.pt")
    # A missing file, and weights of another model, are refused before the run folder is touched.
    p = run("train", *base, "--out", tmp_path / "c", "--max-steps", 1, "--init-weights", tmp_path / "nope.pt")
    assert p.returncode == 2 and f"--init-weights {tmp_path / 'nope.pt'}: no such file" in p.stderr, p.stderr
    p = run("train", *base, "--out", tmp_path / "c", "--max-steps", 1, "--model", "segresnet", "--model-config", '{"init_filters": 8}',
            "--init-weights", tmp_path / "a" / "last.pt")
    assert p.returncode == 1 and str(tmp_path / "a" / "last.pt") in p.stderr and "missing" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "c").exists()


def test_val_roi_is_recorded_and_infer_slides_with_the_runs_overlap(run, store, tmp_path):
    # --val-roi sets the validation window (MONAI's BraTS tutorial: 240,240,160); infer then slides with the run's
    # window and, unless --overlap is given, the run's overlap (monai-dynunet: 0.5), as the run validated.
    out = tmp_path / "r"
    run("train", "--store", store / "cache", "--out", out, "--recipe", "monai-dynunet", "--store-chain", "--model", "unet", *UNET, "--max-steps", 1,
        "--val-roi", "16,16,8", *TINY, check_rc=0)
    c = config(out)
    assert c["val_roi"] == [16, 16, 8] and c["sw_overlap"] == 0.5
    p = run("train", "--store", store / "cache", "--out", tmp_path / "bad", "--val-roi", "24,0,16", *TINY, check_rc=2)
    assert "--val-roi 24,0,16: three positive sizes" in p.stderr
    case = sorted((store / "ds" / "imagesTr").glob("*.nii.gz"))[0]
    probs = {}
    for name, extra in (("default", []), ("half", ["--overlap", "0.5"]), ("quarter", ["--overlap", "0.25"])):
        run("infer", "--model", out / "last.pt", "--image", case, "--out", tmp_path / f"{name}.nii.gz", "--probabilities", "--threads", 1,
            *extra, check_rc=0)
        probs[name] = (tmp_path / f"{name}_probabilities.nii.gz").read_bytes()
    assert probs["default"] == probs["half"] and probs["default"] != probs["quarter"]


def test_a_store_of_another_chain_is_refused_for_a_named_recipe(run, store, tmp_path):
    # The store keeps the chain it was prepared with (the case study's here): naming monai-brats would otherwise train
    # silently on the case study's chain.
    p = run("train", "--store", store / "cache", "--out", tmp_path / "r", "--recipe", "monai-brats", "--max-steps", 1, *TINY, check_rc=2)
    err = p.stderr
    assert "was prepared with the case-study chain, not the monai-brats chain of --recipe monai-brats" in err, err
    assert "`segscale prep --data DATA --cache --pipeline monai-brats`" in err and "--store-chain" in err
    assert not (tmp_path / "r").exists()
    # Without --recipe the store's chain stands; with --store-chain the named recipe trains on it (recorded).
    run("train", "--store", store / "cache", "--out", tmp_path / "d", *UNET, "--max-steps", 1, *TINY, check_rc=0)
    run("train", "--store", store / "cache", "--out", tmp_path / "s", "--recipe", "monai-dynunet", "--store-chain", "--model", "unet", *UNET,
        "--max-steps", 1, *TINY, check_rc=0)
    assert config(tmp_path / "s")["store_chain"] is True
