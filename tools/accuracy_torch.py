#!/usr/bin/python3
"""The README's main job (and its variants) in PyTorch, as the reference programs run it:
main_supcon.py (SupCon / SimCLR pre-training), main_linear.py (linear evaluation on the
frozen encoder) and main_ce.py (the cross-entropy baseline), on Fashion-MNIST read from the
IDX files of Debian's dataset-fashion-mnist package, with torchvision's transforms.

It is the other half of issue 6's accuracy comparison (tools/compare-accuracy.sh runs both
sides): same data, network (bench/model_torch.py's CIFAR ResNet, SPEC section 2, one input
channel, base width --width), losses, optimiser, schedule and budget as `supcon`; only the
random streams differ. Prints the reference programs' kinds of lines and, last,
`test accuracy: NN.NN` (linear or ce: the final epoch's top-1 on the 10 000 test images).

    /usr/bin/python3 tools/accuracy_torch.py --method SupCon --seed 0
    /usr/bin/python3 tools/accuracy_torch.py --method CE --epochs 2
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's, as `supcon --dataset fashion-mnist`


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(folder, train, subset):
    prefix = "train" if train else "t10k"
    x = read_idx(os.path.join(folder, prefix + "-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(folder, prefix + "-labels-idx1-ubyte.gz")).astype(np.int64)
    if subset:
        x, y = x[:subset], y[:subset]
    return x, y


def make_dataset(torch, x, y, transform):
    from PIL import Image

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return transform(Image.fromarray(x[i], mode="L")), int(y[i])

    return Images()


class TwoCrop:
    """The reference's TwoCropTransform: two independent draws of the same pipeline."""

    def __init__(self, t):
        self.t = t

    def __call__(self, img):
        return [self.t(img), self.t(img)]


def transforms_for(size):
    from torchvision import transforms as T
    norm = T.Normalize(mean=(MEAN,), std=(STD,))
    contrastive = T.Compose([
        T.RandomResizedCrop(size=size, scale=(0.2, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.ToTensor(), norm])
    supervised = T.Compose([T.RandomResizedCrop(size=size, scale=(0.2, 1.0)),
                            T.RandomHorizontalFlip(), T.ToTensor(), norm])
    evaluation = T.Compose([T.ToTensor(), norm])
    return contrastive, supervised, evaluation


def loader(torch, ds, args, shuffle):
    g = torch.Generator()
    g.manual_seed(args.seed)
    return torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=shuffle,
                                       num_workers=args.num_workers, generator=g,
                                       persistent_workers=args.num_workers > 0)


def log(msg):
    print(msg, flush=True)


def evaluate(torch, encoder, fc, val):
    """Top-1 (percent) of fc(encoder(x)) on the test split, both in inference mode."""
    encoder.eval()
    fc.eval()
    right = total = 0
    with torch.no_grad():
        for x, y in val:
            right += (fc(encoder(x)).argmax(1) == y).sum().item()
            total += y.numel()
    return 100.0 * right / total


def pretrain(torch, encoder, args, train_x, train_y):
    from loss_torch import supcon_loss
    nn = torch.nn
    F = torch.nn.functional
    head = nn.Sequential(nn.Linear(encoder.dim, encoder.dim), nn.ReLU(inplace=True),
                         nn.Linear(encoder.dim, 128))
    contrastive, _, _ = transforms_for(args.size)
    train = loader(torch, make_dataset(torch, train_x, train_y, TwoCrop(contrastive)), args, True)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=args.learning_rate, momentum=0.9, weight_decay=1e-4)
    encoder.train()
    head.train()
    step = 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        losses = []
        for i, (views, labels) in enumerate(train):
            b = labels.shape[0]
            z = F.normalize(head(encoder(torch.cat([views[0], views[1]], dim=0))), dim=1)
            f1, f2 = torch.split(z, [b, b], dim=0)
            feats = torch.cat([f1.unsqueeze(1), f2.unsqueeze(1)], dim=1)
            loss = supcon_loss(torch, feats, labels if args.method == "SupCon" else None,
                               temperature=args.temp)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if (i + 1) % args.print_freq == 0:
                log("Train: [%d][%d/%d]\tloss %.4f (%.4f)\t%.0f img/s" % (
                    epoch, i + 1, len(train), losses[-1], sum(losses) / len(losses),
                    2 * args.batch_size * (i + 1) / (time.time() - t0)))
            if args.max_steps and step >= args.max_steps:
                break
        log("epoch %d, total time %.2f, loss %.4f" % (epoch, time.time() - t0,
                                                      sum(losses) / len(losses)))


def train_classifier(torch, encoder, args, train_x, train_y, val, frozen, epochs, lr, wd):
    """main_linear.py (frozen: encoder in eval mode under no_grad, only fc learns) or
    main_ce.py (encoder and fc learn together). Returns the last epoch's test top-1; the
    state_dict ('encoder.*', 'fc.*') goes to --save."""
    nn = torch.nn
    _, supervised, _ = transforms_for(args.size)
    train = loader(torch, make_dataset(torch, train_x, train_y, supervised), args, True)
    fc = nn.Linear(encoder.dim, 10)
    params = list(fc.parameters()) if frozen else list(encoder.parameters()) + list(fc.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    crit = nn.CrossEntropyLoss()
    acc = best = 0.0
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        fc.train()
        if frozen:
            encoder.eval()
        else:
            encoder.train()
        losses, right, seen = [], 0, 0
        for i, (x, y) in enumerate(train):
            if frozen:
                with torch.no_grad():
                    feat = encoder(x)
                logits = fc(feat.detach())
            else:
                logits = fc(encoder(x))
            loss = crit(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            right += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
            if (i + 1) % args.print_freq == 0:
                log("Train: [%d][%d/%d]\tloss %.4f (%.4f)\tacc %.2f" % (
                    epoch, i + 1, len(train), losses[-1], sum(losses) / len(losses),
                    100.0 * right / seen))
        acc = evaluate(torch, encoder, fc, val)
        best = max(best, acc)
        log("epoch %d, total time %.2f, loss %.4f, train acc %.2f" % (
            epoch, time.time() - t0, sum(losses) / len(losses), 100.0 * right / seen))
        log("Val: * Acc@1 %.3f (best %.2f)" % (acc, best))
    log("best accuracy: %.2f" % best)
    if args.save:
        state = {"encoder." + k: v for k, v in encoder.state_dict().items()}
        state.update({"fc." + k: v for k, v in fc.state_dict().items()})
        torch.save({"model": state, "epoch": epochs}, args.save)
    return acc


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", choices=["SupCon", "SimCLR", "CE", "random"], default="SupCon")
    p.add_argument("--data_folder", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--learning_rate", type=float, default=0.1,
                   help="pre-training (SupCon, SimCLR) or ce learning rate")
    p.add_argument("--temp", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=1, help="pre-training or ce epochs")
    p.add_argument("--linear_epochs", type=int, default=2)
    p.add_argument("--linear_lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--num_workers", type=int, default=2)
    p.add_argument("--print_freq", type=int, default=20)
    p.add_argument("--subset", type=int, default=0, help="first N images of each split (smoke runs)")
    p.add_argument("--max_steps", type=int, default=0, help="stop pre-training after N steps")
    p.add_argument("--save", default="", help="write the trained encoder (and classifier) as the "
                   "reference's .pth ({'model': state_dict}); tools/pth_to_safetensors.py converts it")
    args = p.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from model_torch import build_networks
    archs, Encoder, _, _ = build_networks(torch)
    encoder = Encoder(*archs["resnet18"], in_channels=1, width=args.width)

    train_x, train_y = load_split(args.data_folder, True, args.subset)
    test_x, test_y = load_split(args.data_folder, False, args.subset)
    _, _, evaluation = transforms_for(args.size)
    val = loader(torch, make_dataset(torch, test_x, test_y, evaluation), args, False)
    log("PyTorch %s, %d threads, %d loader workers: %s, resnet18 width %d, %d training / %d test "
        "images, batch %d, seed %d" % (torch.__version__, torch.get_num_threads(), args.num_workers,
                                       args.method, args.width, len(train_y), len(test_y),
                                       args.batch_size, args.seed))
    t0 = time.time()
    if args.method == "CE":
        acc = train_classifier(torch, encoder, args, train_x, train_y, val, False, args.epochs,
                               args.learning_rate, 1e-4)
    else:
        if args.method in ("SupCon", "SimCLR"):
            pretrain(torch, encoder, args, train_x, train_y)
        t1 = time.time()
        log("linear evaluation (%.0f s of pre-training)" % (t1 - t0))
        acc = train_classifier(torch, encoder, args, train_x, train_y, val, True,
                               args.linear_epochs, args.linear_lr, 0.0)
    log("total time %.0f s" % (time.time() - t0))
    log("test accuracy: %.2f" % acc)


if __name__ == "__main__":
    main(sys.argv[1:])
