#!/usr/bin/python3
"""Time the steps bench/bench_model times, in PyTorch: a SupCon training step, a
cross-entropy training step, or encoder inference, on CIFAR-sized images (3x32x32).

The networks are written here from SPEC.md section 2 (CIFAR-style ResNet: 3x3 stem without
max-pool, BasicBlock / Bottleneck stages, projection head Linear-ReLU-Linear with an
L2-normalised output); the loss is bench/loss_torch.py's reference SupConLoss (SPEC section
1). One case per process, so its peak memory is its own: the process RSS high-water mark
above the level with the inputs in place (model, optimiser state, activations and
gradients included). --precision tf32 / bf16 (autocast, channels_last) are the GPU settings
people train with. --profile N then times N more steps under torch.profiler, by the categories
bench_model --profile reports. Not a test: nothing here checks a value.
"""
import argparse
import contextlib
import json
import os
import sys
import time

NUM_CLASSES = 10
IMG = 32
FEAT_DIM = 128


# ---- Networks (SPEC section 2) ---------------------------------------------------------------
def build_networks(torch, mark=None):
    """mark(name): a context manager labelling a region for --profile (default: none, as
    tools/accuracy_torch.py builds them)."""
    if mark is None:
        def mark(name):
            return contextlib.nullcontext()
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
            with mark("pool"):
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
            z = self.head(self.encoder(x))
            with mark("l2norm"):
                return F.normalize(z, dim=1)

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


# ---- Profile categories (--profile) -------------------------------------------------------------
# The categories bench_model --profile reports, so the two can be set side by side, except that
# PyTorch computes a convolution's data and filter gradients in one op (aten::convolution_backward),
# so its backward convolutions are one category, "conv backward", in place of libsupcon's
# "conv backward data" + "conv backward filter" (which are left out here; compare with their sum).
CATEGORIES = ("conv forward", "conv backward", "batchnorm forward", "batchnorm backward",
              "elementwise", "pool", "linear", "l2norm", "loss", "optimizer", "copies", "other")
# Regions the forward labels with record_function while profiling (mark()); their top-level
# events are the label, and the backward nodes their ops created are found by sequence number.
LABELS = ("pool", "l2norm", "loss")
BACKWARD_PREFIX = "autograd::engine::evaluate_function: "
# Top-level forward ops, by name without "aten::". The ops inside the labelled regions and the
# optimizer (a record_function of its own) never get here.
FORWARD_OPS = {
    "conv forward": ("conv2d", "convolution", "_convolution", "cudnn_convolution",
                     "mkldnn_convolution", "_slow_conv2d_forward"),
    "batchnorm forward": ("batch_norm", "_batch_norm_impl_index", "native_batch_norm",
                          "cudnn_batch_norm", "_native_batch_norm_legit",
                          "add_"),  # the only top-level add_: BatchNorm's num_batches_tracked += 1
    "elementwise": ("relu", "relu_", "add", "threshold", "threshold_", "clamp_min", "clamp_min_"),
    "linear": ("linear", "addmm", "t", "matmul"),
    "copies": ("to", "_to_copy", "copy_", "item", "_local_scalar_dense", "contiguous", "clone"),
}
# Backward nodes (evaluate_function: <Node>), by node name without "Backward<n>". The pool,
# l2norm and loss nodes are found by sequence number first; these names are the fallback.
BACKWARD_NODES = {
    "conv backward": ("Convolution", "CudnnConvolution", "MkldnnConvolution", "SlowConv2D"),
    "batchnorm backward": ("NativeBatchNorm", "CudnnBatchNorm", "MiopenBatchNorm"),
    "elementwise": ("Relu", "Threshold", "Add", "AccumulateGrad"),  # AccumulateGrad: grad sums
    "pool": ("Mean", "AdaptiveAvgPool2D", "View", "ReshapeAlias", "UnsafeView"),
    "linear": ("Addmm", "T"),
    "copies": ("ToCopy", "Clone"),  # bf16: autocast's casts
}


def invert(table):
    return {name: cat for cat, names in table.items() for name in names}


FORWARD_CAT = invert(FORWARD_OPS)
BACKWARD_CAT = invert(BACKWARD_NODES)


def node_key(name):
    """'autograd::engine::evaluate_function: ConvolutionBackward0' -> 'Convolution'."""
    node = name[len(BACKWARD_PREFIX):].split("::")[-1].rstrip("0123456789")
    return node[:-len("Backward")] if node.endswith("Backward") else node


def seq_nr(ev):
    """The autograd sequence number of an event, or of the node its first children ran."""
    s = getattr(ev, "sequence_nr", -1)
    if s is not None and s >= 0:
        return s
    for ch in getattr(ev, "cpu_children", None) or ():
        s = getattr(ch, "sequence_nr", -1)
        if s is not None and s >= 0:
            return s
    return -1


def label_sequences(top):
    """sequence number -> label, for every op recorded inside a labelled region (top: pairs of
    top_level()): the backward node an op creates carries the op's sequence number."""
    seqs = {}
    for ev, orphans in top:
        if ev.name not in LABELS:
            continue
        stack = list(getattr(ev, "cpu_children", None) or ()) + list(orphans)
        while stack:
            ch = stack.pop()
            s = getattr(ch, "sequence_nr", -1)
            if s is not None and s >= 0:
                seqs[s] = ev.name
            stack.extend(getattr(ch, "cpu_children", None) or ())
    return seqs


def category_of(ev, seqs):
    name = ev.name
    if name in LABELS:
        return name
    if name.startswith("Optimizer."):  # Optimizer.step#SGD.step, Optimizer.zero_grad#SGD.zero_grad
        return "optimizer"
    if name.startswith(BACKWARD_PREFIX):
        cat = seqs.get(seq_nr(ev))
        if cat is None:
            cat = BACKWARD_CAT.get(node_key(name))
        if cat is None:
            # Without sequence numbers the remaining nodes are the loss's and l2norm's: merged.
            cat = "other" if seqs else "loss"
        return cat
    if name.startswith("aten::"):
        return FORWARD_CAT.get(name[len("aten::"):], "other")
    return "other"


def is_cpu_event(torch, ev):
    cpu = getattr(getattr(torch.autograd, "DeviceType", None), "CPU", None)
    dt = getattr(ev, "device_type", None)
    if cpu is not None and dt is not None:
        return dt == cpu
    return not str(dt).upper().endswith(("CUDA", "HIP"))


def device_us(ev, skip=frozenset()):
    """Inclusive device (kernel) time of an event in us: its kernels' and its children's. Summed
    here rather than read from device_time_total, to leave out "kernels" named as CPU events
    (skip): the GPU-side copies of record_function ranges (user annotations), which span kernels
    already counted. Falls back on device_time_total (newer PyTorch) or cuda_time_total
    (older; deprecated in newer)."""
    kernels = getattr(ev, "kernels", None)
    if kernels is not None and not getattr(ev, "is_legacy", False):
        try:
            return (sum(float(k.duration) for k in kernels if k.name not in skip)
                    + sum(device_us(ch, skip) for ch in getattr(ev, "cpu_children", None) or ()))
        except Exception:  # an unexpected Kernel layout: use PyTorch's own sum
            pass
    for attr in ("device_time_total", "cuda_time_total"):
        try:
            v = getattr(ev, attr)
        except Exception:  # AttributeError, or a property that fails on this event
            continue
        if v is not None:
            return float(v)
    return 0.0


def cpu_us(ev):
    try:
        return float(getattr(ev, "cpu_time_total", 0.0) or 0.0)
    except Exception:
        return 0.0


def kernel_us(torch, events, cpu_names):
    """Time of every device-side event (kernels, memcpy, memset), to check the attribution:
    GPU user annotations (copies of record_function ranges) are left out by flag or name."""
    total = 0.0
    for ev in events:
        if is_cpu_event(torch, ev) or getattr(ev, "is_async", False):
            continue
        if getattr(ev, "is_user_annotation", False) or ev.name in cpu_names:
            continue
        try:
            total += float(ev.time_range.end - ev.time_range.start)
        except Exception:
            pass
    return total


def top_level(torch, events):
    """The CPU events no other contains, each with the orphans nested in it. Not just those
    without cpu_parent: with whole-us timestamps (PyTorch 1.x) a child can end 1 us after its
    parent and be left without one, so an event that starts inside an earlier one on its thread
    and ends by its end (+ 2 us) is nested in it. Its CPU time is inside its container's time
    range, but its kernels are not in the container's device time (summed over cpu_children)."""
    threads = {}
    for ev in events:
        if (is_cpu_event(torch, ev) and not getattr(ev, "is_async", False)
                and getattr(ev, "cpu_parent", None) is None):
            threads.setdefault(getattr(ev, "thread", 0), []).append(ev)
    top = []
    for evs in threads.values():
        evs.sort(key=lambda ev: (ev.time_range.start, -ev.time_range.end))
        end = float("-inf")
        for ev in evs:
            if top and ev.time_range.start < end and ev.time_range.end <= end + 2:
                top[-1][1].append(ev)
                continue
            top.append((ev, []))
            end = max(end, ev.time_range.end)
    return top


def breakdown(torch, events, steps, on_device):
    """ms per step by category, and by top-level name, from the top-level CPU events (those
    without cpu_parent): each op's time counted once, with what it ran inside. On CUDA each
    event's inclusive device time (the kernels it launched), else its inclusive CPU time."""
    top = top_level(torch, events)
    seqs = label_sequences(top)
    cpu_names = {ev.name for ev in events if is_cpu_event(torch, ev)}
    basis = "cpu"
    if on_device and any(device_us(ev, cpu_names) > 0.0 for ev, _ in top):
        basis = "device"
    elif on_device:
        basis = "cpu (no device time recorded)"
    cats = dict.fromkeys(CATEGORIES, 0.0)
    ops = {}
    for ev, orphans in top:
        if basis == "device":
            us = device_us(ev, cpu_names) + sum(device_us(o, cpu_names) for o in orphans)
        else:
            us = cpu_us(ev)
        cat = category_of(ev, seqs)
        cats[cat] += us
        op = ops.setdefault((ev.name, cat), [0.0, 0])
        op[0] += us
        op[1] += 1
    out = {"profile_steps": steps, "profile_time": basis,
           "profile": {c: round(us / 1e3 / steps, 4) for c, us in cats.items()},
           "profile_ops": [{"name": n, "category": c, "calls": round(k / steps, 2),
                            "ms": round(us / 1e3 / steps, 4)}
                           for (n, c), (us, k) in sorted(ops.items(), key=lambda kv: -kv[1][0])]}
    if basis == "device":
        out["profile_kernel_ms"] = round(kernel_us(torch, events, cpu_names) / 1e3 / steps, 4)
    return out


def profile_steps(torch, step, steps, cuda, marks):
    """Run the profiled steps; the categories of breakdown() and the wall ms per step."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    marks["on"] = True
    try:
        with profile(activities=acts) as prof:
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            wall = time.perf_counter() - t0
    finally:
        marks["on"] = False
    out = breakdown(torch, prof.events(), steps, cuda)
    out["profile_step_ms"] = 1e3 * wall / steps
    return out


# ---- Precision ---------------------------------------------------------------------------------
def set_precision(torch, precision, cuda):
    """fp32: no TF32 anywhere (libsupcon's default); tf32: TF32 matmuls and convolutions (a no-op
    on CPU); bf16: autocast (see make_step), TF32 off for the ops autocast leaves in fp32."""
    if cuda:
        torch.backends.cudnn.benchmark = True  # as the reference programs set it
    if cuda or precision == "tf32":
        tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def autocast_for(torch, precision, dev):
    """A fresh autocast context per use: bf16 mixed precision, fp32 master weights (bf16 needs
    no GradScaler: its exponent range is fp32's)."""
    if precision != "bf16":
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=dev.type, dtype=torch.bfloat16)


# ---- One step ----------------------------------------------------------------------------------
def make_feed(torch, args, dev, fmt, n, b):
    """Each step's (images, labels). resident: one batch made on the device once (the network
    alone is timed). pageable / pinned: a new host batch every step, copied with .to(device)
    from ordinary memory, or from page-locked memory with non_blocking=True (a DataLoader
    with pin_memory=True), as libsupcon's bench_model --inputs upload / push."""
    # Two views already stacked view-major, as the reference's torch.cat([v0, v1]).
    images = torch.empty(n, 3, IMG, IMG).uniform_(-2.0, 2.0)
    labels = torch.randint(0, NUM_CLASSES, (b,), dtype=torch.int64)
    if args.inputs == "resident":
        x, y = images.to(dev, memory_format=fmt), labels.to(dev)
        return lambda r: (x, y)
    g = torch.Generator().manual_seed(args.seed + 1)  # the model's initialisation stays as it is
    host = [images, torch.empty(n, 3, IMG, IMG).uniform_(-2.0, 2.0, generator=g)]
    host_labels = [labels, torch.randint(0, NUM_CLASSES, (b,), dtype=torch.int64, generator=g)]
    pinned = args.inputs == "pinned" and dev.type == "cuda"
    if pinned:
        host = [h.pin_memory() for h in host]
        host_labels = [h.pin_memory() for h in host_labels]

    def feed(r):
        return (host[r & 1].to(dev, memory_format=fmt, non_blocking=pinned),
                host_labels[r & 1].to(dev, non_blocking=pinned))
    return feed


def make_step(torch, args, model, optimizer, feed, amp, mark, sync):
    """One training step (or inference) on feed(r)'s batch; returns its phase times (t0..t4)
    and the loss. With a new batch every step the steps are not synchronised one by one."""
    from loss_torch import supcon_loss
    b = args.bsz
    pipelined = args.inputs != "resident"

    def infer(r=0):
        if not pipelined:
            sync()
        t0 = time.perf_counter()
        images, _ = feed(r)
        with torch.no_grad(), amp():
            model(images)
        if not pipelined:
            sync()
        t = time.perf_counter()
        return (t0, t, t, t, t), 0.0

    def train(r=0):
        if not pipelined:
            sync()
        t0 = time.perf_counter()
        images, labels = feed(r)
        with amp():
            z = model(images)
        t1 = time.perf_counter()
        with amp(), mark("loss"):
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
        if not pipelined:
            sync()
        t4 = time.perf_counter()
        return (t0, t1, t2, t3, t4), float(loss.detach())

    return infer if optimizer is None else train


# ---- One case ----------------------------------------------------------------------------------
def run_case(args):
    import torch
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    marks = {"on": False}  # record_function labels only while profiling

    def mark(name):
        if marks["on"]:
            return torch.autograd.profiler.record_function(name)
        return contextlib.nullcontext()

    archs, Encoder, SupConNet, CENet = build_networks(torch, mark)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    set_precision(torch, args.precision, cuda)

    def sync():
        if cuda:
            torch.cuda.synchronize()
    b = args.bsz
    n = 2 * b if args.case == "supcon" else b
    out = {"kind": "model", "impl": "pytorch", "case": args.case, "arch": args.arch, "bsz": b,
           "images": n, "threads": torch.get_num_threads(), "warmup": args.warmup,
           "repeat": args.repeat, "torch": torch.__version__, "precision": args.precision}
    # bf16 as it is run on GPUs: NHWC (channels_last) images and weights for the convolutions.
    fmt = torch.channels_last if args.precision == "bf16" else torch.contiguous_format
    feed = make_feed(torch, args, dev, fmt, n, b)
    out["device"] = args.device
    out["inputs"] = args.inputs

    reset_peak_rss()
    base = current_rss_bytes()
    if args.case == "supcon":
        model = SupConNet(args.arch)
    elif args.case == "ce":
        model = CENet(args.arch)
    else:
        model = Encoder(*archs[args.arch])
    model = model.to(dev, memory_format=fmt)
    out["params"] = sum(p.numel() for p in model.parameters())
    optimizer = None
    if args.case == "infer":
        model.eval()
    else:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05 if args.case == "supcon" else 0.2,
                                    momentum=0.9, weight_decay=1e-4)
    step = make_step(torch, args, model, optimizer, feed,
                     autocast_for(torch, args.precision, dev), mark, sync)

    phases = {"fwd": [], "loss": [], "bwd": [], "opt": [], "step": []}
    value = 0.0
    starts = []
    for r in range(args.warmup + args.repeat):
        (t0, t1, t2, t3, t4), value = step(r)
        starts.append(t0)
        if r >= args.warmup:
            for k, dt in (("fwd", t1 - t0), ("loss", t2 - t1), ("bwd", t3 - t2),
                          ("opt", t4 - t3), ("step", t4 - t0)):
                phases[k].append(dt)
    if args.inputs != "resident":
        # Not synchronised step by step: a step lasts from its start to the next one's.
        sync()
        starts.append(time.perf_counter())
        phases["step"] = [starts[r + 1] - starts[r] for r in range(args.warmup, len(starts) - 1)]
    peak = peak_rss_bytes()
    if cuda:
        out["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
    step_s = median(phases["step"])
    out.update({"ms_median": 1e3 * step_s, "ms_min": 1e3 * min(phases["step"]),
                "images_per_s": n / step_s, "fwd_ms": 1e3 * median(phases["fwd"]),
                "loss_ms": 1e3 * median(phases["loss"]), "bwd_ms": 1e3 * median(phases["bwd"]),
                "opt_ms": 1e3 * median(phases["opt"]), "rss_delta_bytes": peak - base,
                "rss_peak_bytes": peak, "loss": value,
                "step_ms": [round(1e3 * t, 3) for t in phases["step"]]})
    if args.profile:
        # After the measurements (the profiler's memory and time stay out of them). A failure
        # here must not lose the timings of an unattended run: it is reported instead.
        try:
            out.update(profile_steps(torch, step, args.profile, cuda, marks))
        except Exception as e:  # noqa: BLE001
            out["profile_error"] = "%s: %s" % (type(e).__name__, e)
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
    p.add_argument("--device", default="cpu",
                   help="cpu or cuda (cuda: cudnn.benchmark on; the arithmetic is --precision's)")
    p.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                   help="fp32: TF32 off (default); tf32: TF32 matmuls and convolutions (CUDA "
                        "only; a no-op on CPU); bf16: autocast mixed precision, channels_last, "
                        "fp32 weights")
    p.add_argument("--inputs", choices=["resident", "pageable", "pinned"], default="resident",
                   help="resident: one batch kept on the device; pageable / pinned: a new host "
                        "batch copied every step (pinned: page-locked, non_blocking)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="then N more steps under torch.profiler: ms per step by category")
    p.add_argument("--json", action="store_true", help="one JSON object")
    a = p.parse_args(argv)
    if a.repeat < 1 or a.bsz < 1 or (a.case == "supcon" and a.bsz < 2):
        p.error("--repeat >= 1, --bsz >= 1 (>= 2 for supcon)")
    if a.profile < 0:
        p.error("--profile >= 0")
    return a


def print_profile(r, top=12):
    """The categories (ms per step, % of their sum), then the largest top-level ops."""
    if "profile_error" in r:
        print("profile: FAILED: %s" % r["profile_error"])
        return
    cats = r["profile"]
    total = sum(cats.values())
    print("profile: %d steps, %.1f ms per step under the profiler, %.1f ms in the ops (%s time)"
          % (r["profile_steps"], r["profile_step_ms"], total, r["profile_time"]))
    if "profile_kernel_ms" in r:
        print("  device kernels: %.1f ms per step" % r["profile_kernel_ms"])
    for c in CATEGORIES:
        if cats[c] > 0.0:
            print("  %-22s %9.2f ms  %5.1f %%" % (c, cats[c], 100.0 * cats[c] / total if total else 0.0))
    print("  largest top-level ops (calls per step, ms per step):")
    for op in r["profile_ops"][:top]:
        print("    %-62s %-18s %5g %9.3f" % (op["name"][:62], op["category"], op["calls"], op["ms"]))


def main(argv):
    args = parse_args(argv)
    r = run_case(args)
    if args.json:
        print(json.dumps(r), flush=True)
    else:
        print("PyTorch %s, %s %s %s bsz %d (%d images/step), %d threads, %d warm-up + %d timed"
              % (r["torch"], r["precision"], r["case"], r["arch"], r["bsz"], r["images"],
                 r["threads"], r["warmup"], r["repeat"]))
        print("step: median %.1f ms, min %.1f ms, %.1f images/s"
              % (r["ms_median"], r["ms_min"], r["images_per_s"]))
        print("  forward %.1f ms, loss %.1f ms, backward %.1f ms, optimizer %.1f ms"
              % (r["fwd_ms"], r["loss_ms"], r["bwd_ms"], r["opt_ms"]))
        print("memory: RSS +%.1f MB (peak %.1f MB)"
              % (r["rss_delta_bytes"] / 1048576.0, r["rss_peak_bytes"] / 1048576.0))
        if args.profile:
            print_profile(r)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
