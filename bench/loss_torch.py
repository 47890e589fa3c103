#!/usr/bin/python3
"""Time PyTorch's reference SupConLoss (SPEC.md section 1, with the full N x N logits the
reference builds) forward+backward, for comparison with bench/bench_loss.

Inputs are the ones bench_loss generates (same counter-based splitmix64 stream), so the
loss values printed by the two programs should agree to float32 rounding. Peak memory on
CPU is the process RSS high-water mark above the level with the inputs in place, measured
in a fresh child process per size; on CUDA it is torch.cuda.max_memory_allocated above the
inputs. Not a test: nothing here fails on a wrong number.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

NUM_CLASSES = 10
MASK64 = (1 << 64) - 1


# ---- Inputs, bit for bit as bench_loss.c makes them -----------------------------------------
def splitmix64_at(np, seed, k):
    """splitmix64 of counter k (uint64 array) in stream seed; wraps modulo 2^64."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed & MASK64) + (k + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform_at(np, seed, k):
    return (splitmix64_at(np, seed, k) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def make_inputs(np, n, views, dim, seed):
    b = n // views
    k = np.arange(b * views * dim, dtype=np.uint64)
    u1 = uniform_at(np, seed, np.uint64(2) * k)
    u2 = uniform_at(np, seed, np.uint64(2) * k + np.uint64(1))
    g = (np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(6.283185307179586 * u2)).reshape(b * views, dim)
    ss = (g * g).sum(axis=1, keepdims=True)
    ss[ss <= 0.0] = 1.0
    feats = (g / np.sqrt(ss)).astype(np.float32).reshape(b, views, dim)
    labels = (splitmix64_at(np, seed ^ 0x5EED, np.arange(b, dtype=np.uint64)) % np.uint64(NUM_CLASSES)).astype(np.int64)
    return feats, labels


# ---- The reference loss ---------------------------------------------------------------------
def supcon_loss(torch, features, labels=None, temperature=0.07, base_temperature=0.07):
    """SupConLoss, contrast mode 'all', as the reference computes it: N x N dense tensors."""
    b, v = features.shape[0], features.shape[1]
    feats = features.reshape(b, v, -1)
    dev = feats.device
    if labels is None:
        same = torch.eye(b, dtype=torch.float32, device=dev)
    else:
        lab = labels.reshape(-1, 1)
        same = torch.eq(lab, lab.T).float()
    contrast = torch.cat(torch.unbind(feats, dim=1), dim=0)  # view-major (v*B + i)
    anchor = contrast
    n = anchor.shape[0]
    logits = torch.matmul(anchor, contrast.T) / temperature
    row_max, _ = torch.max(logits, dim=1, keepdim=True)
    logits = logits - row_max.detach()
    pos = same.repeat(v, v)
    not_self = torch.ones_like(pos)
    idx = torch.arange(n, device=dev).view(-1, 1)
    not_self = not_self.scatter(1, idx, 0.0)
    pos = pos * not_self
    exp_logits = torch.exp(logits) * not_self
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    n_pos = pos.sum(1)
    n_pos = torch.where(n_pos < 1e-6, torch.ones_like(n_pos), n_pos)
    mean_log_prob_pos = (pos * log_prob).sum(1) / n_pos
    loss = -(temperature / base_temperature) * mean_log_prob_pos
    return loss.mean()


# ---- Memory -------------------------------------------------------------------------------
def _status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss():
    """VmHWM := VmRSS (Linux >= 4.0); False when the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def current_rss_bytes():
    kb = _status_kb("VmRSS")
    if kb is None:
        try:
            import psutil  # optional
            return psutil.Process().memory_info().rss
        except ImportError:
            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * 1024


def peak_rss_bytes():
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return kb * 1024


def dense_bytes_estimate(n):
    """Peak bytes of the N x N temporaries above: about ten float32 N x N tensors alive at
    once (logits, masks, exp, log_prob, products, saved for backward, their gradients)."""
    return 10 * 4 * n * n


# ---- One size, in this process ---------------------------------------------------------------
def run_one(args, n):
    out = {"kind": "loss", "impl": "pytorch", "N": n, "B": n // args.views, "V": args.views,
           "D": args.dim, "mode": args.mode, "device": args.device, "threads": args.threads,
           "repeat": args.repeat, "warmup": args.warmup}
    need = dense_bytes_estimate(n)
    if args.device == "cpu" and need > args.max_bytes:
        out["skipped"] = "needs ~%.0f GB" % (need / 1e9)
        return out
    import numpy as np
    import torch
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out["torch"] = torch.__version__
    out["threads"] = torch.get_num_threads()
    dev = torch.device(args.device)
    feats_np, labels_np = make_inputs(np, n, args.views, args.dim, args.seed)
    feats = torch.from_numpy(feats_np).to(dev).requires_grad_(True)
    labels = None if args.mode == "simclr" else torch.from_numpy(labels_np).to(dev)
    del feats_np, labels_np

    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        reset_peak_rss()
        base = current_rss_bytes()
    oom_errors = (RuntimeError, MemoryError)
    if hasattr(torch.cuda, "OutOfMemoryError"):
        oom_errors = (torch.cuda.OutOfMemoryError,) + oom_errors
    times = []
    value = None
    try:
        for r in range(args.warmup + args.repeat):
            feats.grad = None
            sync()
            t0 = time.perf_counter()
            loss = supcon_loss(torch, feats, labels)
            loss.backward()
            sync()
            dt = time.perf_counter() - t0
            value = float(loss.detach())
            del loss
            if r >= args.warmup:
                times.append(dt)
    except oom_errors as e:  # noqa: PERF203
        msg = str(e)
        if isinstance(e, MemoryError) or "out of memory" in msg.lower() or "alloc" in msg.lower():
            out["oom"] = msg.splitlines()[0][:200] if msg else "out of memory"
            return out
        raise
    if cuda:
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = peak_rss_bytes() - base
    times.sort()
    m = len(times)
    med = times[m // 2] if m % 2 else 0.5 * (times[m // 2 - 1] + times[m // 2])
    out.update({"ms_median": med * 1e3, "ms_min": times[0] * 1e3, "peak_bytes": peak,
                "loss": value})
    return out


# ---- Driver ---------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--sizes", default="512,2048,8192,65536", help="N = B*V anchors, comma list")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--mode", choices=["labels", "simclr"], default="labels")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 = torch default")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--max-gb", type=float, default=8.0,
                   help="CPU: skip sizes whose N x N temporaries need more than this")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--in-process", action="store_true",
                   help="measure every size in this process (RSS peaks then overlap)")
    a = p.parse_args(argv)
    a.sizes = [int(s) for s in a.sizes.split(",") if s]
    a.max_bytes = a.max_gb * 1e9
    if a.repeat < 1 or any(n <= 0 or n % a.views for n in a.sizes):
        p.error("--repeat >= 1 and every size a positive multiple of --views")
    return a


def child_result(args, n):
    """Run one size in a fresh interpreter so its RSS peak is its own."""
    cmd = [sys.executable, os.path.abspath(__file__), "--in-process", "--json",
           "--device", args.device, "--sizes", str(n), "--dim", str(args.dim),
           "--views", str(args.views), "--mode", args.mode, "--repeat", str(args.repeat),
           "--warmup", str(args.warmup), "--threads", str(args.threads),
           "--seed", str(args.seed), "--max-gb", str(args.max_gb)]
    env = dict(os.environ)
    if args.threads > 0:  # OpenBLAS inside torch follows its own variable
        env.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
        env.setdefault("OMP_NUM_THREADS", str(args.threads))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    err = (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]
    base = {"kind": "loss", "impl": "pytorch", "N": n, "mode": args.mode, "device": args.device}
    if proc.returncode < 0 or "out of memory" in proc.stderr.lower():
        base["oom"] = "child died (%s)" % err[:160]  # e.g. killed by the OOM killer
    else:
        base["error"] = err[:200]
    return base


def fmt_row(r):
    head = "%8d %7s %5s" % (r["N"], r["mode"], r["device"])
    if "skipped" in r:
        return head + "  skipped: " + r["skipped"]
    if "oom" in r:
        return head + "  OOM: " + r["oom"]
    if "error" in r:
        return head + "  error: " + r["error"]
    return head + " %11.2f %11.2f %12.1f %10.6f" % (r["ms_median"], r["ms_min"],
                                                    r["peak_bytes"] / 1048576.0, r["loss"])


def main(argv):
    args = parse_args(argv)
    if not args.json:
        print("PyTorch reference SupConLoss, D=%d, V=%d, mode %s, %d warm-up + %d timed fwd+bwd"
              % (args.dim, args.views, args.mode, args.warmup, args.repeat))
        print("%8s %7s %5s %11s %11s %12s %10s" % ("N", "mode", "dev", "median ms", "min ms",
                                                 "peak +MB", "loss"))
    status = 0
    for n in args.sizes:
        r = run_one(args, n) if args.in_process else child_result(args, n)
        if "error" in r:
            status = 1
        print(json.dumps(r) if args.json else fmt_row(r), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
