"""nnU-Net 2.8.1 itself, run by the nnU-Net oracle tests in the venv that holds it (scripts/nnunet_oracle_env.sh).

  nnunet_oracle.py plan RAW OUT NAME[=FINGERPRINT] ...   per dataset RAW/NAME: nnUNetv2_extract_fingerprint (or
                                                     FINGERPRINT as its fingerprint) and nnUNetv2_plan_experiment;
                                                     writes OUT/NAME/dataset_fingerprint.json, nnUNetPlans.json
  nnunet_oracle.py use-plans PLANS DATASET_JSON      nnU-Net reads a plans file: per configuration, the network it
                                                     builds from it (parameter count) and its label manager; JSON out
  nnunet_oracle.py preprocess PLANS DATASET_JSON CONFIGURATION OUT LABEL|- IMAGE...
                                                     DefaultPreprocessor.run_case on one case: OUT/data.npy,
                                                     OUT/seg.npy, OUT/properties.json, OUT/class_locations_K.npy
  nnunet_oracle.py sampler SPEC OUT                  nnUNetDataLoader (no transforms) after np.random.seed: the
                                                     boxes of each batch, its images and segmentations (the
                                                     tests/tools/nnunet_sampler_tool.cc spec and outputs)
  nnunet_oracle.py augment IN OPS OUT                 batchgeneratorsv2's transforms applied with the given
                                                     parameters (tests/tools/nnunet_augment_tool.cc's ops)
"""
import json
import os
import shutil
import sys


def paths(raw, out):
    os.environ["nnUNet_raw"] = raw
    os.environ["nnUNet_preprocessed"] = out
    os.environ["nnUNet_results"] = os.path.join(out, "results")


def plan(raw, out, *items):
    paths(raw, out)
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import DatasetFingerprintExtractor
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
    for item in items:
        name, _, fingerprint = item.partition("=")
        os.makedirs(os.path.join(out, name), exist_ok=True)
        if fingerprint:
            shutil.copy(fingerprint, os.path.join(out, name, "dataset_fingerprint.json"))
        else:
            ex = DatasetFingerprintExtractor(name, num_processes=1)
            ex.show_progress_bar = False
            ex.run()
        ExperimentPlanner(name).plan_experiment()


def use_plans(plans_file, dataset_json):
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    pm = PlansManager(plans_file)
    dj = json.load(open(dataset_json))
    lm = pm.get_label_manager(dj)
    out = {"label_manager": {"has_regions": lm.has_regions, "heads": lm.num_segmentation_heads}}
    for name in pm.available_configurations:
        c = pm.get_configuration(name)
        net = get_network_from_plans(c.network_arch_class_name, c.network_arch_init_kwargs, c.network_arch_init_kwargs_req_import,
                                     len(dj["channel_names"]), lm.num_segmentation_heads, allow_init=True, deep_supervision=True)
        out[name] = {"parameters": sum(p.numel() for p in net.parameters()), "patch_size": list(c.patch_size),
                     "batch_size": c.batch_size}
    print(json.dumps(out))


def preprocess(plans_file, dataset_json, configuration, out, label, *images):
    import numpy as np
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    pm = PlansManager(plans_file)
    data, seg, props = DefaultPreprocessor(verbose=False).run_case(list(images), None if label == "-" else label, pm,
                                                                   pm.get_configuration(configuration), dataset_json)
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "data.npy"), data)
    np.save(os.path.join(out, "seg.npy"), seg)
    locs = props.pop("class_locations", {})
    for i, (k, v) in enumerate(locs.items()):
        np.save(os.path.join(out, f"class_locations_{i}.npy"), np.asarray(v, dtype=np.int64).reshape(-1, 4))
    keep = {k: np.asarray(v).tolist() for k, v in props.items() if k in ("spacing", "shape_before_cropping", "bbox_used_for_cropping",
                                                                           "shape_after_cropping_and_before_resampling")}
    keep["class_locations"] = [list(k) if isinstance(k, tuple) else [k] for k in locs]
    json.dump(keep, open(os.path.join(out, "properties.json"), "w"))


def sampler(spec_file, out):
    import numpy as np
    import torch
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
    from nnunetv2.utilities.label_handling.label_handling import LabelManager
    spec = json.load(open(spec_file))
    C = spec["channels"]

    class SpecCases:  # nnU-Net's dataset interface (identifiers, load_case) over the spec's generated cases
        def __init__(self):
            self.identifiers = [f"case_{i:03d}" for i in range(len(spec["cases"]))]

        def load_case(self, key):
            c = spec["cases"][int(key.split("_")[1])]
            n = int(np.prod(c["shape"]))
            data = (np.arange(C)[:, None] * 1000000 + np.arange(n)[None]).astype(np.float32).reshape(C, *c["shape"])
            seg = (np.arange(n) % 5 - 1).astype(np.int16).reshape(1, *c["shape"])
            locs = {k + 1: np.asarray(v, dtype=np.int64).reshape(-1, 4) for k, v in enumerate(c["class_locations"])}
            return data, seg, None, {"class_locations": locs}

    labels = {"background": 0, **{f"c{k + 1}": k + 1 for k in range(max(len(c["class_locations"]) for c in spec["cases"]))}}
    dl = nnUNetDataLoader(SpecCases(), spec["batch_size"], spec["patch_size"], spec["final_patch_size"], LabelManager(labels, None),
                          oversample_foreground_percent=0.33)
    boxes, batch = [], []
    get_bbox = dl.get_bbox

    def recording(shape, force_fg, class_locations, *a, **k):
        lbs, ubs = get_bbox(shape, force_fg, class_locations, *a, **k)
        batch.append({"forced": bool(force_fg), "lbs": [int(x) for x in lbs], "ubs": [int(x) for x in ubs]})
        return lbs, ubs

    dl.get_bbox = recording
    np.random.seed(spec["seed"])
    images, segs = [], []
    for _ in range(spec["batches"]):
        batch = []
        b = dl.generate_train_batch()
        for slot, key in zip(batch, b["keys"]):
            slot["case"] = int(key.split("_")[1])
        boxes.append(batch)
        images.append(b["data"].numpy())
        segs.append(b["target"].numpy())
    os.makedirs(out, exist_ok=True)
    json.dump(boxes, open(os.path.join(out, "boxes.json"), "w"))
    np.save(os.path.join(out, "image.npy"), np.concatenate(images))
    np.save(os.path.join(out, "seg.npy"), np.concatenate(segs))
    del torch


def augment(in_dir, ops_file, out):
    import numpy as np
    import torch
    from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
    from batchgeneratorsv2.transforms.intensity.contrast import ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
    from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
    from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform
    from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform
    from batchgeneratorsv2.transforms.utils.seg_to_regions import ConvertSegmentationToRegionsTransform
    torch.set_num_threads(1)
    d = {"image": torch.from_numpy(np.load(os.path.join(in_dir, "image.npy"))),
         "segmentation": torch.from_numpy(np.load(os.path.join(in_dir, "seg.npy")))}
    os.makedirs(out, exist_ok=True)
    target = None
    for op in json.load(open(ops_file)):
        name, c = op["op"], torch.tensor([op.get("channel", 0)])
        if name == "spatial":
            from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
            angles, zoom = op["angles"], op["zoom"]
            t = SpatialTransform(op["patch"], 0, False, p_elastic_deform=0, p_rotation=1 if angles else 0,
                                 rotation=lambda **kw: angles[kw["dim"]], p_scaling=1 if zoom else 0, scaling=lambda **kw: zoom,
                                 p_synchronize_scaling_across_axes=1, bg_style_seg_sampling=False, border_mode_seg="constant",
                                 padding_value_seg=-1)
            d = t.apply(d, **t.get_parameters(**d))
        elif name == "blur":
            from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
            mask = torch.zeros(d["image"].shape[0], dtype=torch.bool)
            mask[op["channel"]] = True
            d = GaussianBlurTransform((0.5, 1.0), False, False, 0.5, benchmark=False).apply(d, apply_to_channel=mask, sigmas=[op["sigmas"]])
        elif name == "brightness":
            d = MultiplicativeBrightnessTransform((0.75, 1.25), False, 1).apply(d, apply_to_channel=c, multipliers=torch.Tensor([op["multiplier"]]))
        elif name == "contrast":
            d = ContrastTransform((0.75, 1.25), True, False, 1).apply(d, apply_to_channel=c, multipliers=torch.tensor([op["multiplier"]],
                                                                                                                         dtype=torch.float32))
        elif name == "gamma":
            d = GammaTransform((0.7, 1.5), 0, False, 1, 1).apply(d, apply_to_channel=c, retain_stats=torch.tensor([op["retain_stats"]]),
                                                                 invert_image=torch.tensor([op["invert"]]),
                                                                 gamma=torch.tensor([op["gamma"]], dtype=torch.float32))
        elif name == "low_resolution":
            d = SimulateLowResolutionTransform((0.5, 1), False, True, None, None, 0.5).apply(
                d, apply_to_channel=[int(c)], scales=torch.Tensor([[op["zoom"]] * 3]))
        elif name == "mirror":
            d = MirrorTransform((0, 1, 2)).apply(d, axes=op["axes"])
        elif name == "mask":
            d = MaskImageTransform([i for i, m in enumerate(op["channels"]) if m], 0, 0).apply(d)
        elif name == "remove_label":
            d = RemoveLabelTansform(-1, 0).apply(d)
        elif name == "regions":
            target = ConvertSegmentationToRegionsTransform([tuple(r) for r in op["regions"]], 0).apply(dict(segmentation=d["segmentation"]))["segmentation"]
        elif name == "downsample":
            src = target if target is not None else d["segmentation"]
            outs = DownsampleSegForDSTransform([tuple(s) for s in op["scales"]]).apply(dict(segmentation=src))["segmentation"]
            for k, t in enumerate(outs):
                np.save(os.path.join(out, f"target_{k}.npy"), t.numpy().astype(np.uint8 if t.dtype == torch.bool else np.int16))
    np.save(os.path.join(out, "image.npy"), d["image"].numpy())
    np.save(os.path.join(out, "seg.npy"), d["segmentation"].numpy())


def chain(in_dir, settings_file, out):
    """nnUNetTrainer.get_training_transforms applied `samples` times after np.random.seed / torch.manual_seed."""
    import numpy as np
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    torch.set_num_threads(1)
    s = json.load(open(settings_file))
    regions = [tuple(r) for r in s["regions"]] or None
    pipe = nnUNetTrainer.get_training_transforms(
        s["patch"], (-30. / 360 * 2. * np.pi, 30. / 360 * 2. * np.pi), [tuple(x) for x in s["ds_scales"]] or None, (0, 1, 2), False,
        use_mask_for_norm=s["use_mask_for_norm"], is_cascaded=False, foreground_labels=[1, 2, 3], regions=regions, ignore_label=None)
    img = torch.from_numpy(np.load(os.path.join(in_dir, "image.npy")))
    seg = torch.from_numpy(np.load(os.path.join(in_dir, "seg.npy")))
    os.makedirs(out, exist_ok=True)
    np.random.seed(s["numpy_seed"])
    torch.manual_seed(s["torch_seed"])
    for k in range(s["samples"]):
        r = pipe(image=img.clone(), segmentation=seg.clone())
        np.save(os.path.join(out, f"image_{k}.npy"), r["image"].numpy())
        targets = r["segmentation"] if isinstance(r["segmentation"], list) else [r["segmentation"]]
        for t, x in enumerate(targets):
            np.save(os.path.join(out, f"target_{k}_{t}.npy"), x.numpy().astype(np.int16))


def folds(keys_file, fold):
    """nnunetv2's generate_crossval_split of the sorted keys, and nnUNetTrainer.do_split's rule for FOLD."""
    import numpy as np
    from nnunetv2.utilities.crossval_split import generate_crossval_split
    with open(keys_file) as f:
        keys = list(np.sort(json.load(f)))
    splits = generate_crossval_split(keys, seed=12345, n_splits=5)
    fold = int(fold)
    if fold < len(splits):
        tr, val = splits[fold]["train"], splits[fold]["val"]
    else:  # nnUNetTrainer.do_split, verbatim
        rnd = np.random.RandomState(seed=12345 + fold)
        k = np.sort(keys)
        idx_tr = rnd.choice(len(k), int(len(k) * 0.8), replace=False)
        idx_val = [i for i in range(len(k)) if i not in idx_tr]
        tr, val = [k[i] for i in idx_tr], [k[i] for i in idx_val]
    print(json.dumps({"folds": [{"train": list(map(str, s["train"])), "val": list(map(str, s["val"]))} for s in splits],
                      "fold": {"train": list(map(str, tr)), "val": list(map(str, val))}}))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"plan": plan, "use-plans": use_plans, "preprocess": preprocess, "sampler": sampler, "augment": augment, "chain": chain,
     "folds": folds}[cmd](*args)
