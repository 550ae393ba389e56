"""The case study's training loop (MONAI UNet, DiceLoss, Adam) with its data path replaced by segscale.Loader.

    python examples/train_monai.py --store STORE [--epochs 2] [--batch 2] [--max-steps N]
    torchrun --nproc-per-node 2 examples/train_monai.py --store STORE      # DDP: rank/world from torchrun

STORE comes from `segscale prep --cache` (random crop/flip/intensity online, in C++ threads, one shared copy
of the cache in the page cache however many ranks) or `--copies N`.
"""
import argparse
import os

import torch
from monai.losses import DiceLoss
from monai.networks.nets import UNet

import segscale


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="segscale loader threads")
    ap.add_argument("--channels", default="16,32,64,128,256", help="UNet channels (the case study's by default)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: run every epoch)")
    args = ap.parse_args()

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else torch.device("cpu")
    if distributed:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(args.seed)

    loader = segscale.Loader(args.store, batch_size=args.batch, seed=args.seed, threads=args.threads)  # rank/world from torchrun
    in_channels = loader.store[0]["image"].shape[0]
    channels = tuple(int(c) for c in args.channels.split(","))
    model = UNet(spatial_dims=3, in_channels=in_channels, out_channels=3, channels=channels, strides=(2,) * (len(channels) - 1),
                 num_res_units=2).to(device)
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True, to_onehot_y=False, sigmoid=True)
    opt = torch.optim.Adam(model.parameters(), args.lr, weight_decay=1e-5)

    step = 0
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)  # as DistributedSampler.set_epoch
        model.train()
        for batch in loader:
            image = torch.from_dlpack(batch["image"]).to(device, non_blocking=True)  # zero-copy view of the C++ buffer
            label = torch.from_dlpack(batch["label"]).to(device, dtype=torch.float32, non_blocking=True)
            opt.zero_grad()
            loss = loss_fn(model(image), label)
            loss.backward()
            opt.step()
            step += 1
            if loader.rank == 0:
                print(f"epoch {epoch} step {step} loss {loss.item():.4f} keys {batch['keys']}", flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        if args.max_steps and step >= args.max_steps:
            break
    if distributed:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
