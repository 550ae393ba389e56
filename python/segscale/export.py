"""Export a segscale run's model as TorchScript or ONNX, for deployment without segscale.

segscale's weights are MONAI's state dict (same names, same order), so the exported graph is MONAI's own class
(monai.networks.nets.UNet, SegResNet or DynUNet) rebuilt from the run's config.json, loaded strictly with the
run's weights and exported by MONAI's convert_to_torchscript (torch.jit.script) or by torch.onnx.export (opset 17,
as MONAI's convert_to_onnx calls it). Spatial sizes stay dynamic (any multiple of the network's divisor); the batch size
too. The TorchScript file carries the run's config.json as the extra file ``segscale_config.json``, so
``segscale infer --model FILE.ts`` needs nothing beside it.

``--format nnunet`` writes an nnU-Net results folder instead (export_nnunet), for a run of the nnunet recipe.

Used by ``segscale export`` (which runs this file with a Python that has torch and monai) and as
``python -m segscale.export RUN --format torchscript --out model.ts``. Needs torch and monai (1.4); nothing of
segscale's compiled core.
"""
import argparse
import inspect
import json
import os
import sys
import warnings

CONFIG_EXTRA = "segscale_config.json"


class ExportError(Exception):
    """A run that cannot be exported: the message names the file and the problem."""


def _run_files(run, weights):
    run = os.fspath(run)
    if os.path.isdir(run):
        folder = run
        if weights:
            weights_path = os.path.join(folder, weights)
        else:
            weights_path = next((os.path.join(folder, f) for f in ("model.pt", "last.pt") if os.path.exists(os.path.join(folder, f))), None)
            if weights_path is None:
                raise ExportError(f"{folder}: no model.pt or last.pt (a training run writes them)")
    else:
        folder, weights_path = os.path.dirname(run) or ".", run
    config_path = os.path.join(folder, "config.json")
    if not os.path.exists(config_path):
        raise ExportError(f"{config_path}: the training run's config.json is needed beside the weights")
    if not os.path.exists(weights_path):
        raise ExportError(f"{weights_path}: no such weights file")
    return config_path, weights_path


def build_monai_network(model_config):
    """The class segscale's network mirrors, for a segscale model config (config.json's "model"): MONAI's UNet,
    SegResNet or DynUNet (its constructor arguments + name), or nnU-Net's PlainConvUNet (dynamic-network-architectures;
    input_channels, num_classes and a plans file's arch_kwargs)."""
    args = dict(model_config)
    name = args.pop("name", "unet")
    if name == "plainconvunet":
        import torch
        from dynamic_network_architectures.architectures.unet import PlainConvUNet
        ops = {"torch.nn.modules.conv.Conv3d": torch.nn.Conv3d, "torch.nn.modules.instancenorm.InstanceNorm3d": torch.nn.InstanceNorm3d,
               "torch.nn.LeakyReLU": torch.nn.LeakyReLU, "torch.nn.ReLU": torch.nn.ReLU, None: None}
        for k in ("conv_op", "norm_op", "dropout_op", "nonlin"):
            args[k] = ops[args.get(k)]
        args["deep_supervision"] = False  # the deployed network gives the full-resolution head
        return PlainConvUNet(args.pop("input_channels"), num_classes=args.pop("num_classes"), **args)
    from monai.networks import nets
    classes = {"unet": nets.UNet, "segresnet": nets.SegResNet, "dynunet": nets.DynUNet}
    if name not in classes:
        raise ExportError(f"model {name!r}: segscale export knows {', '.join(classes)}, plainconvunet")
    for key in ("act", "norm", "norm_name", "act_name"):  # JSON lists back to the (name, {args}) tuples MONAI's factories take
        if isinstance(args.get(key), list):
            args[key] = tuple(args[key])
    if name == "unet":
        args.setdefault("spatial_dims", 3)
        args["channels"], args["strides"] = tuple(args["channels"]), tuple(args["strides"])
    return classes[name](**args)


def load_run(run, weights=None):
    """(network in eval mode with the run's weights, config dict, weights path)."""
    import torch
    config_path, weights_path = _run_files(run, weights)
    with open(config_path) as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as e:
            raise ExportError(f"{config_path}: not JSON ({e})") from None
    model_config = config.get("model") or {"name": "unet", "in_channels": config.get("in_channels", 4),
                                           "out_channels": config.get("out_channels", 3), "channels": config.get("channels", [16, 32, 64, 128, 256]),
                                           "strides": config.get("strides", [2, 2, 2, 2]), "num_res_units": config.get("res_units", 2)}
    net = build_monai_network(model_config)
    try:
        # torch >= 2.6 loads weights_only by default, which refuses libtorch's own pickle tags (segscale's model.pt)
        extra = {"weights_only": False} if "weights_only" in inspect.signature(torch.load).parameters else {}
        state = torch.load(weights_path, map_location="cpu", **extra)
    except Exception as e:  # a checkpoint.pt (TorchScript archive) or no torch file at all
        raise ExportError(f"{weights_path}: not model weights ({type(e).__name__}); use RUN/model.pt or RUN/last.pt") from None
    if not isinstance(state, dict):
        raise ExportError(f"{weights_path}: not a state dict; use RUN/model.pt or RUN/last.pt")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ExportError(f"{weights_path}: does not fit the network of {config_path}: {str(e).splitlines()[0]}") from None
    return net.eval(), config, weights_path


def example_input(net_config, config):
    """A small input of the run's channels whose sides are a multiple of the network's divisor."""
    import torch
    name = net_config.get("name", "unet")
    if name == "unet":
        d = 1
        for s in net_config["strides"]:
            d *= s
    elif name == "plainconvunet":
        d = 1
        for s in net_config["strides"]:
            d *= s if isinstance(s, int) else max(s)
    elif name == "segresnet":
        d = 2 ** (len(net_config.get("blocks_down", [1, 2, 2, 4])) - 1)
    else:
        d = 1
        for s in net_config["strides"]:
            d *= s if isinstance(s, int) else max(s)
    side = max(16, d)
    return torch.zeros(1, net_config.get("in_channels", net_config.get("input_channels", 4)), side, side, side)


def export(run, fmt, out, weights=None):
    """Writes `out` (TorchScript or ONNX) from a run folder (or its weights file). Returns a one-line summary."""
    import torch
    from monai.networks.utils import convert_to_torchscript
    net, config, weights_path = load_run(run, weights)
    net_config = config.get("model") or {"name": "unet", "strides": config.get("strides", [2, 2, 2, 2]), "in_channels": config.get("in_channels", 4)}
    x = example_input(net_config, config)
    tmp = out + ".partial"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.onnx's notes on instance norm and shape inference, not the user's concern
        if fmt == "torchscript":
            extra_files = {CONFIG_EXTRA: json.dumps(config, indent=2).encode()}
            try:
                convert_to_torchscript(net, filename_or_obj=tmp, extra_files=extra_files)
            except Exception:  # not scriptable (nnU-Net's PlainConvUNet): traced, its ops do not depend on the input's size
                convert_to_torchscript(net, filename_or_obj=tmp, extra_files=extra_files, use_trace=True, inputs=[x])
        elif fmt == "onnx":
            # torch.onnx.export as MONAI's convert_to_onnx calls it (which also needs the onnx package to reload the file),
            # with the TorchScript-based exporter where newer torch defaults to dynamo.
            extra = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
            axes = {0: "batch", 2: "x", 3: "y", 4: "z"}
            torch.onnx.export(net, (x,), tmp, input_names=["image"], output_names=["logits"], opset_version=17,
                              dynamic_axes={"image": axes, "logits": axes}, do_constant_folding=True, **extra)
        else:
            raise ExportError(f"--format {fmt}: torchscript or onnx")
    os.replace(tmp, out)
    return f"exported {net_config.get('name', 'unet')} from {weights_path} as {fmt} to {out} ({os.path.getsize(out)} bytes)"


def _matching(region, regions):
    """Index of the label set `region` in `regions` (lists compared as sets)."""
    for i, r in enumerate(regions):
        if sorted(r) == sorted(region):
            return i
    raise ExportError(f"dataset.json's region {region} is none of the run's outputs {regions}")


def export_nnunet(run, out, weights=None):
    """Writes an nnU-Net results folder (what nnUNetv2_predict -m / nnUNetPredictor.initialize_from_trained_model_folder
    load) from a run of segscale's nnunet recipe: OUT/plans.json, OUT/dataset.json and OUT/fold_F/checkpoint_final.pth
    with the network's weights under nnU-Net's names, its output channels put back in dataset.json's region order
    (segscale trains them as TC, WT, ET), trainer nnUNetTrainer, the run's configuration and fold, mirroring on all axes."""
    import torch
    net, config, weights_path = load_run(run, weights)
    folder = os.path.dirname(_run_files(run, weights)[0])
    if config.get("store_mode") != "nnunet" or (config.get("model") or {}).get("name") != "plainconvunet":
        raise ExportError(f"{os.path.join(folder, 'config.json')}: --format nnunet exports a run of nnU-Net's recipe (PlainConvUNet trained "
                          f"on a store of segscale prep --plans); export this run as torchscript or onnx")
    files = {}
    for name in ("plans.json", "dataset.json"):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            raise ExportError(f"{path}: missing: a run of nnU-Net's recipe keeps its plan and dataset.json beside config.json")
        with open(path) as f:
            files[name] = json.load(f)  # dicts keep dataset.json's key order (the regions' order)
    ours = config["nnunet"]["regions"]
    foreground = [v if isinstance(v, list) else [v] for k, v in files["dataset.json"]["labels"].items() if v not in (0, [0])]
    perm = [_matching(r, ours) for r in foreground]  # dataset.json's region i is the run's channel perm[i]
    state = net.state_dict()
    for k in state:
        if ".seg_layers." in k:
            state[k] = state[k][perm].clone()
    fold = config.get("fold") or "0"
    fold_dir = os.path.join(out, "fold_all" if fold == "all" else f"fold_{int(fold)}")
    os.makedirs(fold_dir, exist_ok=True)
    for name, content in files.items():
        tmp = os.path.join(out, name + ".partial")
        with open(tmp, "w") as f:
            json.dump(content, f, indent=4)
        os.replace(tmp, os.path.join(out, name))
    checkpoint = {"network_weights": state, "optimizer_state": None, "grad_scaler_state": None, "logging": {}, "_best_ema": None,
                  "current_epoch": 0, "trainer_name": "nnUNetTrainer", "inference_allowed_mirroring_axes": (0, 1, 2),
                  "init_args": {"plans": files["plans.json"], "configuration": config["nnunet"]["configuration"],
                                "fold": fold if fold == "all" else int(fold), "dataset_json": files["dataset.json"], "device": "cpu"}}
    target = os.path.join(fold_dir, "checkpoint_final.pth")
    torch.save(checkpoint, target + ".partial")
    os.replace(target + ".partial", target)
    return f"exported plainconvunet from {weights_path} as an nnU-Net results folder to {out} (fold {fold}, configuration " \
           f"{config['nnunet']['configuration']}; nnUNetv2_predict -d ... or nnUNetPredictor.initialize_from_trained_model_folder loads it)"


def main(argv=None):
    p = argparse.ArgumentParser(prog="segscale export", description=__doc__.splitlines()[0])
    p.add_argument("run", help="run folder (model.pt, else last.pt) or a weights file with config.json beside it")
    p.add_argument("--format", required=True, choices=["torchscript", "onnx", "nnunet"])
    p.add_argument("--out", required=True)
    p.add_argument("--weights", help="model.pt or last.pt in the run folder (default: model.pt, else last.pt)")
    a = p.parse_args(argv)
    try:
        print(export_nnunet(a.run, a.out, a.weights) if a.format == "nnunet" else export(a.run, a.format, a.out, a.weights))
    except ExportError as e:
        print(f"segscale: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"segscale: export needs torch and monai in {sys.executable}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
