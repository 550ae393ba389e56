#!/usr/bin/env python3
"""The peer for segscale's GPU rows: MONAI's own training step and data paths on the same card, in one run.

Rows (JSON lines on stdout, or --out):
  monai-step-<prec>-b<B>       MONAI UNet + DiceLoss + Adam, the batch already on the device: the model's ceiling.
  monai-todeviced-<prec>-b<B>  MONAI's fastest documented data path (fast-training guide): CacheDataset holding the
                               deterministic stage, ToDeviced, the case study's random transforms on the device,
                               ThreadDataLoader(num_workers=0).
The random transforms are the case study's (as segscale's default pipeline): crop, one flip on axis 0, nonzero
channel-wise normalisation, scale and shift with probability 0.5. (Before 2026-11-26 18:00 this script ran
MONAI's BraTS tutorial chain instead, three flips and scale/shift always: the H100 figures of that date.)
  monai-workers-<prec>-b<B>    the case study's path: CacheDataset on the host, random transforms in
                               DataLoader(num_workers=W) worker processes, then .to(device).
With --model segresnet the same rows, named monai-segresnet-..., train the monai-brats recipe's SegResNet
(blocks 1,2,2,4 / 1,1,1, 16 filters, dropout 0.2; Adam wd 1e-5) on the same crop: the peer of segscale's
`--recipe monai-brats` rows.
The cached cases are synthetic: a brain-like ellipsoid of random intensities in zero background, shaped like a
BraTS case after the case study's deterministic stage (4 x 160 x 160 x 78 at 1.5 x 1.5 x 2.0 mm), three 0/1
label channels (TC, WT, ET), float32 as MONAI caches them. Precision: fp32, or bf16 autocast (--amp, as
segscale's --amp on CUDA). Runs on CPU with small shapes for a smoke test (--device cpu).
"""
import argparse
import json
import os
import sys
import time

import torch


def parse_shape(text):
    return tuple(int(v) for v in text.split(","))


def make_cases(n, shape, seed):
    g = torch.Generator().manual_seed(seed)
    c, x, y, z = shape
    grid = torch.stack(torch.meshgrid(*(torch.linspace(-1, 1, s) for s in (x, y, z)), indexing="ij"))
    brain = (grid.pow(2).sum(0) < 0.8).float()
    tumour = ((grid - 0.2).pow(2).sum(0) < 0.05).float()
    cases = []
    for _ in range(n):
        image = (torch.rand((c, x, y, z), generator=g) + 0.5) * brain
        label = torch.stack([tumour, torch.clamp(tumour * 1.5, 0, 1), tumour * (grid[0] > 0.2).float()])
        cases.append({"image": image, "label": label})
    return cases


def model_and_loss(device, name="unet"):
    from monai.losses import DiceLoss
    from monai.networks.nets import SegResNet, UNet

    loss = DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True, to_onehot_y=False, sigmoid=True)
    if name == "segresnet":  # segscale's monai-brats recipe: MONAI's BraTS tutorial model, Adam wd 1e-5
        model = SegResNet(blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1), init_filters=16, in_channels=4, out_channels=3,
                          dropout_prob=0.2).to(device)
        return model, loss, torch.optim.Adam(model.parameters(), 1e-4, weight_decay=1e-5)
    model = UNet(spatial_dims=3, in_channels=4, out_channels=3, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
                 num_res_units=2).to(device)
    return model, loss, torch.optim.Adam(model.parameters(), 1e-4)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train(device, amp, batches, steps, warmup, model_name="unet"):
    """Runs warmup + steps training steps on batches (an iterator of dicts); returns samples/s and data wait."""
    model, loss_fn, opt = model_and_loss(device, model_name)
    dtype = torch.bfloat16
    wait = busy = 0.0
    samples = 0
    it = iter(batches)
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        batch = next(it)
        image = batch["image"].to(device, non_blocking=True)
        label = batch["label"].to(device, non_blocking=True)
        sync(device)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = loss_fn(model(image), label)
        loss.backward()
        opt.step()
        sync(device)
        t2 = time.perf_counter()
        if step >= warmup:
            wait += t1 - t0
            busy += t2 - t0
            samples += image.shape[0]
    return {"samples_per_s": samples / busy, "data_wait": wait / busy, "last_loss": loss.item()}


def random_transforms(roi, device):
    from monai.transforms import (Compose, NormalizeIntensityd, RandFlipd, RandScaleIntensityd,
                                  RandShiftIntensityd, RandSpatialCropd, ToDeviced)

    chain = [] if device is None else [ToDeviced(keys=["image", "label"], device=device)]
    chain += [
        RandSpatialCropd(keys=["image", "label"], roi_size=roi, random_size=False),
        RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=0),
        NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True),
        RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
        RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5),
    ]
    return Compose(chain)


def endless(loader):
    while True:
        yield from loader


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--batches", default="2,16", help="batch sizes, comma-separated")
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--shape", default="4,160,160,78", help="cached case: channels,x,y,z")
    ap.add_argument("--roi", default="128,128,64")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--paths", default="step,todeviced,workers")
    ap.add_argument("--model", default="unet", choices=["unet", "segresnet"],
                    help="unet: the case study's; segresnet: the monai-brats recipe's (rows named monai-segresnet-...)")
    ap.add_argument("--out", help="append JSON lines here too")
    a = ap.parse_args()

    import monai
    from monai.data import CacheDataset, DataLoader, ThreadDataLoader
    from monai.utils import set_determinism

    set_determinism(0)  # seeds everything, but also makes cuDNN deterministic: undone below for speed
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = True  # as MONAI's fast-training guide; segscale sets it too
    device = torch.device(a.device)
    roi = parse_shape(a.roi)
    shape = parse_shape(a.shape)
    cases = make_cases(a.cases, shape, 0)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    common = {"monai": monai.__version__, "torch": torch.__version__, "device": name, "threads": torch.get_num_threads()}
    out = open(a.out, "a") if a.out else None
    for path in a.paths.split(","):
        for b in (int(v) for v in a.batches.split(",")):
            for amp in (False, True):
                if path == "step":
                    fixed = {"image": torch.randn((b, shape[0], *roi), device=device),
                             "label": (torch.rand((b, 3, *roi), device=device) > 0.5).float()}
                    batches = iter(lambda: fixed, None)
                elif path == "todeviced":
                    ds = CacheDataset(cases, transform=random_transforms(roi, device), cache_rate=1.0, progress=False)
                    batches = endless(ThreadDataLoader(ds, batch_size=b, shuffle=True, num_workers=0))
                else:
                    ds = CacheDataset(cases, transform=random_transforms(roi, None), cache_rate=1.0, progress=False)
                    batches = endless(DataLoader(ds, batch_size=b, shuffle=True, num_workers=a.workers,
                                                 pin_memory=device.type == "cuda", persistent_workers=a.workers > 0))
                try:
                    r = train(device, amp, batches, a.steps, a.warmup, a.model)
                except getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError):  # torch 1.13: only torch.cuda.OutOfMemoryError
                    r = {"error": "out of memory"}
                except RuntimeError as e:  # e.g. torch 1.13's CPU autocast has no bf16 group_norm: the row says so, the rest run
                    r = {"error": str(e).splitlines()[0][:200]}
                prefix = "monai" if a.model == "unet" else f"monai-{a.model}"
                row = {"run": f"{prefix}-{path}-{'amp' if amp else 'fp32'}-b{b}", "model": a.model, "batch": b, **r, **common}
                line = json.dumps(row)
                print(line, flush=True)
                if out:
                    out.write(line + "\n")
                    out.flush()
                del batches
                if device.type == "cuda":
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
