#!/usr/bin/python3
"""Time the steps bench/bench_model times, in PyTorch: a SupCon training step, a
cross-entropy training step, or encoder inference, on CIFAR-sized images (3x32x32).

The networks are written here from SPEC.md section 2 (CIFAR-style ResNet: 3x3 stem without
max-pool, BasicBlock / Bottleneck stages, projection head Linear-ReLU-Linear with an
L2-normalised output); the loss is bench/loss_torch.py's reference SupConLoss (SPEC section
1). One case per process, so its peak memory is its own: the process RSS high-water mark
above the level with the inputs in place (model, optimiser state, activations and
gradients included). Not a test: nothing here checks a value.
"""
import argparse
import json
import os
import sys
import time

NUM_CLASSES = 10
IMG = 32
FEAT_DIM = 128


# ---- Networks (SPEC section 2) ---------------------------------------------------------------
def build_networks(torch):
    nn = torch.nn
    F = torch.nn.functional

    def conv(cin, cout, k, stride=1):
        return nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=k // 2, bias=False)

    def shortcut(cin, cout, stride):
        if stride == 1 and cin == cout:
            return nn.Sequential()
        return nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    class Basic(nn.Module):
        expansion = 1

        def __init__(self, cin, planes, stride):
            super().__init__()
            self.conv1 = conv(cin, planes, 3, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = conv(planes, planes, 3)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut = shortcut(cin, planes, stride)

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return F.relu(y + self.shortcut(x))

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, planes, stride):
            super().__init__()
            self.conv1 = conv(cin, planes, 1)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = conv(planes, planes, 3, stride)  # the stride sits on the 3x3
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = conv(planes, 4 * planes, 1)
            self.bn3 = nn.BatchNorm2d(4 * planes)
            self.shortcut = shortcut(cin, 4 * planes, stride)

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = F.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return F.relu(y + self.shortcut(x))

    class Encoder(nn.Module):
        def __init__(self, block, counts, in_channels=3, width=64):
            super().__init__()
            self.conv1 = conv(in_channels, width, 3)
            self.bn1 = nn.BatchNorm2d(width)
            cin = width
            for i, (count, stride) in enumerate(zip(counts, (1, 2, 2, 2))):
                planes = width << i
                blocks = []
                for j in range(count):
                    blocks.append(block(cin, planes, stride if j == 0 else 1))
                    cin = planes * block.expansion
                setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
            self.dim = cin
            for mod in self.modules():
                if isinstance(mod, nn.Conv2d):
                    nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(mod, nn.BatchNorm2d):
                    nn.init.ones_(mod.weight)
                    nn.init.zeros_(mod.bias)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    archs = {"resnet18": (Basic, [2, 2, 2, 2]), "resnet34": (Basic, [3, 4, 6, 3]),
             "resnet50": (Bottleneck, [3, 4, 6, 3]), "resnet101": (Bottleneck, [3, 4, 23, 3])}

    class SupConNet(nn.Module):
        """Encoder + MLP head (Linear(d, d) - ReLU - Linear(d, 128)), normalised output."""

        def __init__(self, arch):
            super().__init__()
            self.encoder = Encoder(*archs[arch])
            d = self.encoder.dim
            self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, FEAT_DIM))

        def forward(self, x):
            return F.normalize(self.head(self.encoder(x)), dim=1)

    class CENet(nn.Module):
        """Encoder + Linear(d, classes): the cross-entropy baseline."""

        def __init__(self, arch):
            super().__init__()
            self.encoder = Encoder(*archs[arch])
            self.fc = nn.Linear(self.encoder.dim, NUM_CLASSES)

        def forward(self, x):
            return self.fc(self.encoder(x))

    return archs, Encoder, SupConNet, CENet


# ---- Memory: the helpers of loss_torch.py -------------------------------------------------------
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loss_torch import current_rss_bytes, peak_rss_bytes, reset_peak_rss  # noqa: E402


def median(v):
    v = sorted(v)
    m = len(v)
    return v[m // 2] if m % 2 else 0.5 * (v[m // 2 - 1] + v[m // 2])


# ---- One case ----------------------------------------------------------------------------------
def run_case(args):
    import torch
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from loss_torch import supcon_loss

    archs, Encoder, SupConNet, CENet = build_networks(torch)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # as the reference programs set it
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False  # fp32, as libsupcon's default

    def sync():
        if cuda:
            torch.cuda.synchronize()
    b = args.bsz
    n = 2 * b if args.case == "supcon" else b
    out = {"kind": "model", "impl": "pytorch", "case": args.case, "arch": args.arch, "bsz": b,
           "images": n, "threads": torch.get_num_threads(), "warmup": args.warmup,
           "repeat": args.repeat, "torch": torch.__version__}
    # Two views already stacked view-major, as the reference's torch.cat([v0, v1]).
    images = torch.empty(n, 3, IMG, IMG).uniform_(-2.0, 2.0).to(dev)
    labels = torch.randint(0, NUM_CLASSES, (b,), dtype=torch.int64).to(dev)
    out["device"] = args.device

    reset_peak_rss()
    base = current_rss_bytes()
    if args.case == "supcon":
        model = SupConNet(args.arch)
    elif args.case == "ce":
        model = CENet(args.arch)
    else:
        model = Encoder(*archs[args.arch])
    model = model.to(dev)
    out["params"] = sum(p.numel() for p in model.parameters())
    optimizer = None
    if args.case == "infer":
        model.eval()
    else:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05 if args.case == "supcon" else 0.2,
                                    momentum=0.9, weight_decay=1e-4)

    phases = {"fwd": [], "loss": [], "bwd": [], "opt": [], "step": []}
    value = 0.0
    for r in range(args.warmup + args.repeat):
        sync()
        t0 = time.perf_counter()
        if args.case == "infer":
            with torch.no_grad():
                model(images)
            sync()
            t1 = t2 = t3 = t4 = time.perf_counter()
        else:
            z = model(images)
            t1 = time.perf_counter()
            if args.case == "supcon":
                # As main_supcon.py: split the two views, stack them to [B, 2, 128].
                f1, f2 = torch.split(z, [b, b], dim=0)
                feats = torch.cat([f1.unsqueeze(1), f2.unsqueeze(1)], dim=1)
                loss = supcon_loss(torch, feats, labels, temperature=0.1, base_temperature=0.07)
            else:
                loss = torch.nn.functional.cross_entropy(z, labels)
            t2 = time.perf_counter()
            optimizer.zero_grad()
            loss.backward()
            t3 = time.perf_counter()
            optimizer.step()
            sync()
            t4 = time.perf_counter()
            value = float(loss.detach())
            del z, loss
        if r >= args.warmup:
            for k, dt in (("fwd", t1 - t0), ("loss", t2 - t1), ("bwd", t3 - t2),
                          ("opt", t4 - t3), ("step", t4 - t0)):
                phases[k].append(dt)
    peak = peak_rss_bytes()
    if cuda:
        out["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
    step = median(phases["step"])
    out.update({"ms_median": 1e3 * step, "ms_min": 1e3 * min(phases["step"]),
                "images_per_s": n / step, "fwd_ms": 1e3 * median(phases["fwd"]),
                "loss_ms": 1e3 * median(phases["loss"]), "bwd_ms": 1e3 * median(phases["bwd"]),
                "opt_ms": 1e3 * median(phases["opt"]), "rss_delta_bytes": peak - base,
                "rss_peak_bytes": peak, "loss": value,
                "step_ms": [round(1e3 * t, 3) for t in phases["step"]]})
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=["supcon", "ce", "infer"], default="supcon")
    p.add_argument("--arch", choices=["resnet18", "resnet34", "resnet50", "resnet101"],
                   default="resnet18")
    p.add_argument("--bsz", type=int, default=32,
                   help="supcon: samples (two views each); ce, infer: images")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 = torch default")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--device", default="cpu", help="cpu or cuda (fp32, cudnn.benchmark, no TF32)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    a = p.parse_args(argv)
    if a.repeat < 1 or a.bsz < 1 or (a.case == "supcon" and a.bsz < 2):
        p.error("--repeat >= 1, --bsz >= 1 (>= 2 for supcon)")
    return a


def main(argv):
    args = parse_args(argv)
    r = run_case(args)
    if args.json:
        print(json.dumps(r), flush=True)
    else:
        print("PyTorch %s, %s %s bsz %d (%d images/step), %d threads, %d warm-up + %d timed"
              % (r["torch"], r["case"], r["arch"], r["bsz"], r["images"], r["threads"],
                 r["warmup"], r["repeat"]))
        print("step: median %.1f ms, min %.1f ms, %.1f images/s"
              % (r["ms_median"], r["ms_min"], r["images_per_s"]))
        print("  forward %.1f ms, loss %.1f ms, backward %.1f ms, optimizer %.1f ms"
              % (r["fwd_ms"], r["loss_ms"], r["bwd_ms"], r["opt_ms"]))
        print("memory: RSS +%.1f MB (peak %.1f MB)"
              % (r["rss_delta_bytes"] / 1048576.0, r["rss_peak_bytes"] / 1048576.0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
