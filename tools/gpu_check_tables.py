#!/usr/bin/env python3
"""The tables of tools/gpu-check.sh's summary, from the benchmarks' JSON lines.

    python3 tools/gpu_check_tables.py bench.jsonl

Reads the lines of bench/bench_model.c and bench/model_torch.py ("kind": "model") and of
bench/bench_loss.c and bench/loss_torch.py ("kind": "loss") and prints:
  - training steps: images/s of libsupcon and PyTorch per model, batch, precision and
    inputs (resident on the device; a new host batch per step from pageable memory, as
    supcon_tensor_upload and .to(device); or from pinned memory on a copy stream, as a
    supcon_uploader and pin_memory + non_blocking);
  - where a step's time goes, for the runs made with --profile (ms per step per category;
    PyTorch computes both convolution gradients in one call, so ours are summed to match);
  - the loss: ms per forward+backward at each N and how far the two loss values are apart.
Works on the standard library alone; lines that are not JSON are skipped.
"""
import json
import sys

PROFILE_ROWS = ["conv forward", "conv backward", "batchnorm forward", "batchnorm backward",
                "elementwise", "pool", "linear", "l2norm", "loss", "optimizer", "copies", "other"]


def read(path):
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def side(r):
    return "torch" if r.get("impl") == "pytorch" else "lib"


def prec_label(r):
    """The precision, and bench_model's --variant after it where a run has one (bf16-nchw)."""
    p = r.get("precision", "fp32")
    return p + "-" + r["variant"] if r.get("variant") else p


def fmt(v, spec, missing="-"):
    return spec % v if isinstance(v, (int, float)) else missing


# The two sides' names for the same way of feeding a step (bench_model --inputs,
# model_torch.py --inputs).
INPUTS = {"resident": "resident", "upload": "pageable", "pageable": "pageable", "push": "pinned",
          "pinned": "pinned"}


def model_table(rows):
    cases = {}
    for r in rows:
        if r.get("kind") == "model":
            key = (r.get("arch"), r.get("bsz"), prec_label(r), INPUTS.get(r.get("inputs", "resident"), "?"))
            cases.setdefault(key, {})[side(r)] = r
    if not cases:
        return []
    out = ["%10s %6s %9s %9s %13s %13s %7s %10s %10s" % ("model", "bsz", "prec", "inputs", "supcon img/s",
                                                         "torch img/s", "ratio", "supcon MB", "torch MB")]
    order = {"fp32": 0, "fp32-fast": 1, "tf32": 2, "bf16": 3, "bf16-nchw": 4, "resident": 0, "pageable": 1,
             "pinned": 2}
    for (arch, bsz, prec, inputs), d in sorted(cases.items(), key=lambda kv: (
            str(kv[0][0]), kv[0][1] or 0, order.get(kv[0][2], 9), order.get(kv[0][3], 9))):
        a, b = d.get("lib", {}), d.get("torch", {})
        ia, ib = a.get("images_per_s"), b.get("images_per_s")
        ma, mb = a.get("ctx_peak_bytes"), b.get("cuda_peak_bytes")
        out.append("%10s %6s %9s %9s %13s %13s %7s %10s %10s" % (
            arch, bsz, prec, inputs, fmt(ia, "%.0f", (a.get("error") or "-")[:13]),
            fmt(ib, "%.0f", (b.get("error") or "-")[:13]),
            "%.2fx" % (ia / ib) if ia and ib else "-",
            fmt(ma and ma / 1048576.0, "%.0f"), fmt(mb and mb / 1048576.0, "%.0f")))
    return out


def folded(profile):
    """libsupcon's categories with the two convolution gradients summed, as PyTorch has them."""
    p = dict(profile)
    if "conv backward data" in p or "conv backward filter" in p:
        p["conv backward"] = p.pop("conv backward data", 0.0) + p.pop("conv backward filter", 0.0)
    return p


def profile_tables(rows):
    cases = {}
    for r in rows:
        if r.get("kind") == "model" and isinstance(r.get("profile"), dict):
            key = (r.get("arch"), r.get("bsz"), prec_label(r))
            cases.setdefault(key, {})[side(r)] = r
    out = []
    for (arch, bsz, prec), d in sorted(cases.items(), key=lambda kv: str(kv[0])):
        a = folded(d.get("lib", {}).get("profile", {}))
        b = folded(d.get("torch", {}).get("profile", {}))
        out.append("profile %s bsz %s %s, ms per step (each call synchronised): libsupcon %s, PyTorch %s" % (
            arch, bsz, prec, fmt(d.get("lib", {}).get("profile_step_ms"), "%.1f"),
            fmt(d.get("torch", {}).get("profile_step_ms"), "%.1f")))
        out.append("%22s %10s %10s %8s" % ("category", "supcon", "torch", "ratio"))
        names = PROFILE_ROWS + sorted(k for k in set(a) | set(b) if k not in PROFILE_ROWS)
        for k in names:
            va, vb = a.get(k), b.get(k)
            if not va and not vb:
                continue
            out.append("%22s %10s %10s %8s" % (k, fmt(va, "%.2f"), fmt(vb, "%.2f"),
                                               "%.2fx" % (va / vb) if va and vb else "-"))
    return out


def loss_table(rows):
    lib, ref = {}, {}
    for r in rows:
        if r.get("kind") == "loss":
            (ref if side(r) == "torch" else lib)[r.get("N")] = r
    if not lib and not ref:
        return []
    out = ["%8s %12s %12s %10s %10s %12s" % ("N", "supcon ms", "torch ms", "speed-up", "peak MB", "loss rel")]
    for n in sorted(set(lib) | set(ref), key=lambda x: x or 0):
        a, b = lib.get(n, {}), ref.get(n, {})
        ta, tb = a.get("ms_median"), b.get("ms_median")
        la, lb = a.get("loss"), b.get("loss")
        fb = fmt(tb, "%.2f", "OOM" if "oom" in b else (b.get("skipped") or b.get("error") or "-")[:12])
        out.append("%8s %12s %12s %10s %10s %12s" % (
            n, fmt(ta, "%.2f", (a.get("error") or "-")[:12]), fb, "%.1fx" % (tb / ta) if ta and tb else "-",
            fmt(a.get("ctx_peak_bytes") and a["ctx_peak_bytes"] / 1048576.0, "%.0f"),
            "%.1e" % (abs(la - lb) / max(abs(lb), 1e-12)) if la is not None and lb is not None else "-"))
    return out


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    rows = read(argv[1])
    for block in (model_table(rows), profile_tables(rows), loss_table(rows)):
        for line in block:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
