#!/usr/bin/python3
"""Convert the reference's PyTorch checkpoints (.pth) to safetensors files that libsupcon
reads, and back. Needs PyTorch only: the safetensors format is written and read by hand
(8-byte little-endian header length, JSON header, tensor bytes; docs/checkpoint.md).

  pth_to_safetensors.py ckpt_epoch_100.pth model.safetensors     .pth -> safetensors
  pth_to_safetensors.py model.safetensors back.pth                safetensors -> .pth

.pth -> safetensors: the reference saves {'opt': Namespace, 'model': state_dict,
'optimizer': SGD state_dict, 'epoch': int} (save_model in util.py); a bare state_dict is
accepted too. The model's tensors keep their names ("module." segments included, unless
--strip-module); float32 stays F32, int64 (BatchNorm's num_batches_tracked, a scalar) I64,
int32 I32; float16 / bfloat16 / float64 are cast to float32 with a note. 'epoch' and 'opt'
go to the metadata ("epoch", "opt" as JSON). The SGD momentum buffers become entries
"optimizer.momentum_buffer.<parameter name>" with the metadata supcon_sgd_load_state reads
("optimizer.steps", "optimizer.groups", "optimizer.group.<g>.<field>"); parameter k of the
optimizer is the k-th non-buffer entry of the state_dict, as model.parameters() orders them.
PyTorch's SGD does not count steps: "optimizer.steps" is 1 when buffers exist, else 0.

safetensors -> .pth: the reverse, {'model': OrderedDict, 'epoch', 'opt', 'optimizer'} with
whatever the file holds; names are kept as they are in the file.

Exit status: 0 on success, 1 on a bad input file, 2 on bad arguments.
"""
import argparse
import collections
import json
import struct
import sys

BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
MOMENTUM_PREFIX = "optimizer.momentum_buffer."
MAX_HEADER = 100_000_000


class BadFile(Exception):
    pass


def dtype_tables(torch):
    to_st = {torch.float32: "F32", torch.int64: "I64", torch.int32: "I32"}
    from_st = {v: k for k, v in to_st.items()}
    return to_st, from_st


def strip_module(name):
    return ".".join(p for p in name.split(".") if p != "module")


def is_buffer(name):
    return name.rsplit(".", 1)[-1] in BUFFER_SUFFIXES


# ---- safetensors by hand ---------------------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, torch tensor) in order. Data laid out 8-byte elements first,
    header padded with spaces to a multiple of 8 (as Python's safetensors does)."""
    import torch
    to_st, _ = dtype_tables(torch)
    if sys.byteorder != "little":
        raise SystemExit("pth_to_safetensors.py: only little-endian machines are supported")
    order = [i for i, (_, t) in enumerate(tensors) if t.element_size() == 8] + \
            [i for i, (_, t) in enumerate(tensors) if t.element_size() != 8]
    begin, at = {}, 0
    for i in order:
        t = tensors[i][1]
        begin[i] = at
        at += t.numel() * t.element_size()
    header = collections.OrderedDict()
    if metadata:
        header["__metadata__"] = metadata
    for i, (name, t) in enumerate(tensors):
        n = t.numel() * t.element_size()
        header[name] = {"dtype": to_st[t.dtype], "shape": list(t.shape),
                        "data_offsets": [begin[i], begin[i] + n]}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for i in order:
            t = tensors[i][1].detach().contiguous().cpu()
            f.write(t.reshape(-1).numpy().tobytes() if t.numel() else b"")


def read_safetensors(path):
    """Returns ([(name, tensor)] in header order, metadata dict). Checks what the C reader
    checks that matters here: sizes, bounds, contiguity, dtypes."""
    import torch
    _, from_st = dtype_tables(torch)
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise BadFile("%s: too short for the header length" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER or n > len(blob) - 8:
        raise BadFile("%s: header length %d does not fit the file" % (path, n))

    def no_duplicates(pairs):
        d = collections.OrderedDict()
        for k, v in pairs:
            if k in d:
                raise BadFile("%s: duplicate key %r in the header" % (path, k))
            d[k] = v
        return d

    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadFile("%s: header is not JSON: %s" % (path, e))
    data = memoryview(blob)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    spans, tensors = [], []
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise BadFile("%s: __metadata__ is not a map of strings" % path)
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise BadFile("%s: entry %r: fields %s" % (path, name, sorted(e)))
        if e["dtype"] not in from_st:
            raise BadFile("%s: entry %r: dtype %s is not F32, I32 or I64" % (path, name, e["dtype"]))
        dt = from_st[e["dtype"]]
        b, end = e["data_offsets"]
        numel = 1
        for d in e["shape"]:
            numel *= d
        if not (0 <= b <= end <= len(data)) or end - b != numel * torch.tensor([], dtype=dt).element_size():
            raise BadFile("%s: entry %r: offsets [%d, %d] do not fit" % (path, name, b, end))
        spans.append((b, end, name))
        raw = bytearray(data[b:end])
        t = torch.frombuffer(raw, dtype=dt) if raw else torch.empty(0, dtype=dt)
        tensors.append((name, t.reshape(e["shape"]).clone()))
    at = 0
    for b, end, name in sorted(spans):
        if b != at:
            raise BadFile("%s: entry %r: data not contiguous at %d" % (path, name, b))
        at = end
    if at != len(data):
        raise BadFile("%s: %d data bytes, entries cover %d" % (path, len(data), at))
    return tensors, metadata


# ---- conversions -------------------------------------------------------------------------------

def pth_to_safetensors(src, dst, strip):
    import torch
    to_st, _ = dtype_tables(torch)
    ckpt = torch.load(src, map_location="cpu")
    if isinstance(ckpt, dict) and "model" in ckpt and isinstance(ckpt["model"], dict):
        state = ckpt["model"]
    elif isinstance(ckpt, dict) and all(torch.is_tensor(v) for v in ckpt.values()):
        state, ckpt = ckpt, {}
    else:
        raise BadFile("%s: neither {'model': state_dict, ...} nor a state_dict" % src)
    tensors, names = [], []
    for name, t in state.items():
        if not torch.is_tensor(t):
            raise BadFile("%s: state_dict entry %r is not a tensor" % (src, name))
        if t.dtype not in to_st:
            if t.dtype in (torch.float16, torch.bfloat16, torch.float64):
                print("note: %s cast from %s to float32" % (name, t.dtype), file=sys.stderr)
                t = t.float()
            else:
                raise BadFile("%s: %r has dtype %s (F32, I32, I64 only)" % (src, name, t.dtype))
        out = strip_module(name) if strip else name
        tensors.append((out, t))
        names.append(out)
    metadata = collections.OrderedDict()
    if "epoch" in ckpt:
        metadata["epoch"] = str(int(ckpt["epoch"]))
    if "opt" in ckpt and ckpt["opt"] is not None:
        opt = ckpt["opt"]
        metadata["opt"] = json.dumps(vars(opt) if hasattr(opt, "__dict__") else opt, default=str,
                                     sort_keys=True)
    optim = ckpt.get("optimizer")
    if isinstance(optim, dict) and "param_groups" in optim and "state" in optim:
        params = [n for n in names if not is_buffer(n)]
        indices = [i for g in optim["param_groups"] for i in g["params"]]
        if sorted(indices) != list(range(len(params))):
            print("note: the optimizer's %d parameters do not map onto the model's %d; its state "
                  "is left out" % (len(indices), len(params)), file=sys.stderr)
        else:
            have = 0
            for i in indices:
                buf = optim["state"].get(i, {}).get("momentum_buffer")
                if buf is not None:
                    tensors.append((MOMENTUM_PREFIX + params[i], buf.float()))
                    have += 1
            metadata["optimizer.steps"] = "1" if have else "0"
            metadata["optimizer.groups"] = str(len(optim["param_groups"]))
            for g, group in enumerate(optim["param_groups"]):
                for field in ("lr", "momentum", "weight_decay", "dampening", "nesterov"):
                    metadata["optimizer.group.%d.%s" % (g, field)] = repr(float(group.get(field, 0)))
    write_safetensors(dst, tensors, metadata)
    return len(tensors)


def safetensors_to_pth(src, dst):
    import argparse as ap
    import torch
    tensors, metadata = read_safetensors(src)
    model = collections.OrderedDict()
    buffers = collections.OrderedDict()
    for name, t in tensors:
        if name.startswith(MOMENTUM_PREFIX):
            buffers[name[len(MOMENTUM_PREFIX):]] = t
        else:
            model[name] = t
    ckpt = {"model": model}
    if "epoch" in metadata:
        ckpt["epoch"] = int(metadata["epoch"])
    if "opt" in metadata:
        try:
            ckpt["opt"] = ap.Namespace(**json.loads(metadata["opt"]))
        except (ValueError, TypeError):
            ckpt["opt"] = metadata["opt"]
    if "optimizer.groups" in metadata:
        params = [n for n in model if not is_buffer(n)]
        canon = {strip_module(n): i for i, n in enumerate(params)}
        state = {}
        for name, t in buffers.items():
            i = canon.get(strip_module(name))
            if i is None:
                raise BadFile("%s: momentum buffer for %r, which is no parameter" % (src, name))
            state[i] = {"momentum_buffer": t}
        groups = []
        ng = int(metadata["optimizer.groups"])
        for g in range(ng):
            get = lambda f: float(metadata.get("optimizer.group.%d.%s" % (g, f), 0))  # noqa: E731
            groups.append({"lr": get("lr"), "momentum": get("momentum"), "dampening": get("dampening"),
                           "weight_decay": get("weight_decay"), "nesterov": bool(get("nesterov")),
                           "maximize": False, "foreach": None,
                           "params": list(range(len(params))) if g == 0 else []})
        if ng == 1:
            ckpt["optimizer"] = {"state": state, "param_groups": groups}
        else:
            print("note: %d parameter groups cannot be mapped back to indices; optimizer left out" % ng,
                  file=sys.stderr)
    torch.save(ckpt, dst)
    return len(tensors)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--to", choices=("safetensors", "pth"),
                   help="direction (default: from the extension of src)")
    p.add_argument("--strip-module", action="store_true",
                   help="remove 'module.' segments from names (.pth -> safetensors)")
    a = p.parse_args(argv)
    to = a.to or ("pth" if a.src.endswith(".safetensors") else "safetensors")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("pth_to_safetensors.py: PyTorch is needed (python3-torch)", file=sys.stderr)
        return 2
    try:
        n = pth_to_safetensors(a.src, a.dst, a.strip_module) if to == "safetensors" \
            else safetensors_to_pth(a.src, a.dst)
    except BadFile as e:
        print("pth_to_safetensors.py: %s" % e, file=sys.stderr)
        return 1
    print("%s -> %s: %d tensors" % (a.src, a.dst, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
