"""MONAI 1.4.0's version of a segscale pipeline, run step by step, for parity tests.

Builds the same transforms with the same seeding as Compose after set_determinism(seed), runs them one
at a time and returns every intermediate, with:
  - the zero leak of MONAI's bilinear resampling snapped to 0 right after Spacingd (|v| < 1e-6 on axis-aligned
    grids as spec 3.6 says; |v| < 1e-9 on oblique ones, whose small values are legitimate), so normalisation
    sees the same foreground as an exact implementation;
  - a "tie" mask carried from Spacingd on: output voxels whose nearest-neighbour source coordinate lies on a
    half-voxel, where MONAI's choice is float noise (labels are compared off these voxels only).
"""
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (CenterSpatialCropd, Compose, EnsureChannelFirstd, LoadImaged, MapTransform,
                              NormalizeIntensityd, Orientationd, RandCropByPosNegLabeld, RandFlipd, RandScaleIntensityd,
                              RandShiftIntensityd, RandSpatialCropd, Spacingd)
from monai.utils import set_determinism

PRESETS = {"blog": ([2, 3], [1, 2, 3], [2]), "msd": ([2, 3], [1, 2, 3], [3]),
           "brats21": ([1, 4], [1, 2, 4], [4]), "brats23": ([1, 3], [1, 2, 3], [3])}


class LabelsToChannels(MapTransform):
    """The blog's ConvertToMultiChannelBasedOnBratsClassesd, generalised to the presets."""

    def __init__(self, keys, preset):
        super().__init__(keys)
        self.sets = PRESETS[preset]

    def __call__(self, data):
        d = dict(data)
        for k in self.keys:
            lab = d[k]
            chans = [sum((lab == v) for v in vals) > 0 for vals in self.sets]
            d[k] = torch.stack(chans, 0).float()
        return d


def build(pipeline, keys=("image", "label", "tie")):
    out = []
    for t in pipeline["transforms"]:
        ty = t["type"]
        if ty == "spacing":
            out.append(("spacing", Spacingd(keys=["image", "label"], pixdim=t.get("pixdim", [1.5, 1.5, 2.0]),
                                            mode=("bilinear", "nearest"))))
        elif ty == "orientation":
            out.append(("orientation", Orientationd(keys=list(keys), axcodes=t.get("axcodes", "RAS"))))
        elif ty == "rand_spatial_crop":
            out.append(("rand_spatial_crop", RandSpatialCropd(keys=list(keys), roi_size=t.get("roi", [128, 128, 64]),
                                                              random_size=False)))
        elif ty == "center_spatial_crop":
            out.append(("center_spatial_crop", CenterSpatialCropd(keys=list(keys), roi_size=t.get("roi", [128, 128, 64]))))
        elif ty == "rand_crop_by_pos_neg_label":
            out.append(("rand_crop_by_pos_neg_label", RandCropByPosNegLabeld(
                keys=list(keys), label_key="label", spatial_size=t.get("roi", [96, 96, 96]), pos=t.get("pos", 1.0),
                neg=t.get("neg", 1.0), num_samples=t.get("num_samples", 1),
                image_key="image" if t.get("use_image", False) else None, image_threshold=t.get("image_threshold", 0.0),
                allow_smaller=t.get("allow_smaller", False))))
        elif ty == "rand_flip":
            out.append(("rand_flip", RandFlipd(keys=list(keys), prob=t.get("prob", 0.5), spatial_axis=t.get("spatial_axis", 0))))
        elif ty == "normalize_intensity":
            out.append(("normalize_intensity", NormalizeIntensityd(keys="image", nonzero=t.get("nonzero", True),
                                                                   channel_wise=t.get("channel_wise", True))))
        elif ty == "rand_scale_intensity":
            out.append(("rand_scale_intensity", RandScaleIntensityd(keys="image", factors=t.get("factors", 0.1),
                                                                    prob=t.get("prob", 0.5))))
        elif ty == "rand_shift_intensity":
            out.append(("rand_shift_intensity", RandShiftIntensityd(keys="image", offsets=t.get("offsets", 0.1),
                                                                    prob=t.get("prob", 0.5))))
        else:
            raise ValueError(ty)
    return out


RANDOM = {"rand_spatial_crop", "rand_crop_by_pos_neg_label", "rand_flip", "rand_scale_intensity", "rand_shift_intensity"}


def tie_mask(label_affine_in, label_affine_out, out_shape):
    """Voxels of the Spacingd output whose source coordinate is within 1e-6 of a half-voxel on any axis."""
    t = np.linalg.solve(np.asarray(label_affine_in, dtype=np.float64), np.asarray(label_affine_out, dtype=np.float64))
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in out_shape], indexing="ij"), 0).reshape(3, -1)
    p = t[:3, :3] @ idx + t[:3, 3:4]
    frac = np.abs(p - np.floor(p) - 0.5)
    return (frac < 1e-6).any(0).reshape(out_shape)


def run(images, label, pipeline, seed, copies, snap_zero_leak=True):
    """Returns (cached_steps, samples_steps): lists of snapshot() tuples; one entry of samples_steps per output
    sample (copies x num_samples of a RandCropByPosNegLabeld, in order)."""
    set_determinism(seed=seed)
    steps = build(pipeline)
    compose = Compose([t for _, t in steps])  # assigns each random transform its child seed, in list order
    data = LoadImaged(keys=["image", "label"], image_only=True)({"image": images if len(images) > 1 else images[0],
                                                                 "label": label})
    data = EnsureChannelFirstd(keys="image")(data)
    data = LabelsToChannels(keys="label", preset=pipeline.get("label_map", "blog"))(data)
    label_affine_in = data["label"].affine.numpy().copy()
    first_random = next((i for i, (n, _) in enumerate(steps) if n in RANDOM), len(steps))
    cached = []
    for name, t in steps[:first_random]:
        if name != "spacing" and "tie" not in data:
            data["tie"] = MetaTensor(torch.zeros((1, *data["label"].shape[1:])), affine=data["label"].affine)
        data = t(data)
        if name == "spacing":
            # Axis-aligned grids: the spec's 1e-6 snap. Oblique grids hold legitimately small values, so snap
            # only the float noise itself (measured 1e-14..1e-12 where a neighbour's weight should be 0).
            aligned = np.count_nonzero(np.abs(data["image"].affine.numpy()[:3, :3]) > 1e-9) == 3
            if snap_zero_leak:
                img = data["image"]
                img[img.abs() < (1e-6 if aligned else 1e-9)] = 0
            mask = tie_mask(label_affine_in, data["label"].affine.numpy(), data["label"].shape[1:])
            data["tie"] = MetaTensor(torch.from_numpy(mask[None].astype(np.float32)), affine=data["label"].affine)
        cached.append(snapshot(name, data))
    results = []
    for _ in range(copies):
        d = dict(data)
        d = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in d.items()}
        # A transform returning a list (RandCropByPosNegLabeld's num_samples) is followed, as Compose does, by
        # every later transform applied to each item in turn; each item is one output sample.
        items = [d]
        per = [[]]
        for name, t in steps[first_random:]:
            new_items, new_per = [], []
            for item, trail in zip(items, per):
                out = t(item)
                outs = out if isinstance(out, list) else [out]
                for o in outs:
                    new_items.append(o)
                    new_per.append(trail + [snapshot(name, o)])
            items, per = new_items, new_per
        results.extend(per)
    return cached, results


def snapshot(name, d):
    """(name, image, label, tie mask, crop centre or None): the centre is RandCropByPosNegLabeld's, from the meta."""
    tie = d["tie"].numpy()[0] > 0.5 if "tie" in d else None
    centre = d["image"].meta.get("crop_center") if name == "rand_crop_by_pos_neg_label" else None
    return name, d["image"].numpy().copy(), d["label"].numpy().copy(), tie, centre
