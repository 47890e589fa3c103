#!/usr/bin/env python3
"""Images per second of the reference's torchvision pipeline, measured as bench_data does.

The reference (SupContrast main_supcon.py) builds, per view, on PIL images:
  RandomResizedCrop(32, scale=(0.2, 1.)), RandomHorizontalFlip(),
  RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), RandomGrayscale(p=0.2),
  ToTensor(), Normalize(mean, std)
and TwoCropTransform applies it twice; the supervised pipeline keeps crop, flip, ToTensor,
Normalize. "pil" runs that on PIL images (as the reference); "tensor" runs the same
transforms on float tensors (ToTensor first), which is what libsupcon reproduces.
Batches of 256 come from a torch DataLoader with 0, 1, 2, ... worker processes.

usage: torchvision_pipeline.py [--images N] [--epochs E] [--workers 0,1,2] [--mode pil,tensor]
"""
import argparse
import time

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


class TwoCrop:
    def __init__(self, t):
        self.t = t

    def __call__(self, x):
        return [self.t(x), self.t(x)]


class Synthetic(torch.utils.data.Dataset):
    """Smooth colour fields with noise, as bench_data's synthetic set; PIL or uint8 tensors."""

    def __init__(self, n, mode, transform):
        rng = np.random.default_rng(12345)
        yy, xx = np.mgrid[0:32, 0:32]
        self.images = []
        for i in range(n):
            base = np.stack([(i * 37 + c * 80 + xx * 4 + yy * 3) % 256 for c in range(3)], -1)
            img = np.clip(base + rng.integers(-16, 16, base.shape), 0, 255).astype(np.uint8)
            if mode == "pil":
                self.images.append(Image.fromarray(img))
            else:
                self.images.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), i % 10


def pipeline(kind, mode):
    steps = [transforms.RandomResizedCrop(32, scale=(0.2, 1.0)), transforms.RandomHorizontalFlip()]
    if kind == "contrastive":
        steps += [transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                  transforms.RandomGrayscale(p=0.2)]
    if mode == "pil":
        t = transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    else:
        t = transforms.Compose([transforms.ConvertImageDtype(torch.float)] + steps +
                               [transforms.Normalize(MEAN, STD)])
    return TwoCrop(t) if kind == "contrastive" else t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--mode", default="pil,tensor")
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# torchvision pipeline, {a.images} images 32x32 (synthetic), batch {a.batch}, "
          f"{a.epochs} epochs per measurement, torch {torch.__version__}")
    print(f"{'pipeline':<24} {'workers':>8} {'images/s':>12} {'ms/batch':>10}")
    for mode in a.mode.split(","):
        for kind in ("contrastive", "supervised"):
            ds = Synthetic(a.images, mode, pipeline(kind, mode))
            for w in [int(x) for x in a.workers.split(",")]:
                dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True,
                                                 num_workers=w, persistent_workers=w > 0)
                it = iter(dl)
                next(it)  # warm-up: workers started
                t0 = time.perf_counter()
                images = batches = 0
                for _ in range(a.epochs):
                    for x, y in dl:
                        images += y.shape[0]
                        batches += 1
                dt = time.perf_counter() - t0
                print(f"{kind + ' (' + mode + ')':<24} {w:>8} {images / dt:>12.0f} "
                      f"{1e3 * dt / batches:>10.2f}", flush=True)
                del it, dl


if __name__ == "__main__":
    main()
