#!/usr/bin/python3
"""Checkpoints between libsupcon and PyTorch, run by ctest:
  1. a file libsupcon writes (through ctypes) loads into a PyTorch model with
     load_state_dict(strict=True), num_batches_tracked an I64 scalar, outputs identical;
  2. tools/pth_to_safetensors.py: a reference-style .pth ({'opt', 'model' with
     "encoder.module." names from DataParallel, 'optimizer' SGD state, 'epoch'}) converts to
     safetensors, libsupcon reads it (names with and without "module."), and it converts back
     to a .pth whose model, optimizer state, epoch and options equal the original, and whose
     network gives the same outputs.
usage: test_checkpoint_python.py LIBSUPCON_SO TOOL_PY     (exit 77 without torch)
"""
import argparse
import ctypes
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("skipped: this python3 has no torch")
    sys.exit(77)

FAILURES = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        FAILURES.append(what)


# ---- a small network with the reference's names ---------------------------------------------

class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.bn1(self.conv1(x)) + self.shortcut(x))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(Block(4, 8))

    def forward(self, x):
        x = self.layer1(torch.relu(self.bn1(self.conv1(x))))
        return x.mean(dim=(2, 3))


class Net(nn.Module):
    def __init__(self, data_parallel=False):
        super().__init__()
        self.encoder = Encoder()
        if data_parallel:
            self.encoder = nn.DataParallel(self.encoder)  # as main_supcon.py does with GPUs
        self.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 5))
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        f = self.encoder(x)
        return torch.cat([nn.functional.normalize(self.head(f), dim=1), self.fc(f)], dim=1)


def trained(net):
    """A few SGD steps in training mode, so running statistics and momentum are not trivial."""
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for _ in range(3):
        x = torch.randn(6, 3, 8, 8)
        loss = net(x).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return opt


# ---- libsupcon through ctypes -----------------------------------------------------------------

class Lib:
    DTYPES = {torch.float32: 0, torch.int32: 1, torch.int64: 2}

    def __init__(self, path):
        os.environ["SUPCON_BACKEND"] = "cpu"
        L = ctypes.CDLL(path)
        P, S, I64 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64
        sig = {
            "supcon_context_create": ([P, ctypes.POINTER(P)], ctypes.c_int),
            "supcon_context_free": ([P], None),
            "supcon_context_last_error": ([P], S),
            "supcon_safetensors_create": ([P, ctypes.POINTER(P)], ctypes.c_int),
            "supcon_safetensors_load": ([P, S, P, ctypes.POINTER(P)], ctypes.c_int),
            "supcon_safetensors_save": ([P, S], ctypes.c_int),
            "supcon_safetensors_free": ([P], None),
            "supcon_safetensors_add": ([P, S, ctypes.c_int, ctypes.c_int, ctypes.POINTER(I64), P, ctypes.c_size_t],
                                       ctypes.c_int),
            "supcon_safetensors_set_metadata": ([P, S, S], ctypes.c_int),
            "supcon_safetensors_metadata": ([P, S], S),
            "supcon_safetensors_count": ([P], I64),
            "supcon_safetensors_find": ([P, S], I64),
            "supcon_safetensors_name": ([P, I64], S),
            "supcon_safetensors_dtype": ([P, I64], ctypes.c_int),
            "supcon_safetensors_ndim": ([P, I64], ctypes.c_int),
            "supcon_safetensors_dim": ([P, I64, ctypes.c_int], I64),
            "supcon_safetensors_bytes": ([P, I64], ctypes.c_size_t),
            "supcon_safetensors_data": ([P, I64], P),
        }
        for name, (args, res) in sig.items():
            f = getattr(L, name)
            f.argtypes, f.restype = args, res
        self.L = L
        self.ctx = P()
        if L.supcon_context_create(None, ctypes.byref(self.ctx)) != 0:
            raise SystemExit("cannot create a context: %s" % L.supcon_context_last_error(None))

    def err(self):
        return self.L.supcon_context_last_error(self.ctx).decode()

    def save(self, path, tensors, metadata):
        L = self.L
        st = ctypes.c_void_p()
        assert L.supcon_safetensors_create(self.ctx, ctypes.byref(st)) == 0
        keep = []
        for name, t in tensors:
            t = t.detach().contiguous()
            a = t.numpy()
            keep.append(a)
            shape = (ctypes.c_int64 * max(1, t.dim()))(*t.shape)
            s = L.supcon_safetensors_add(st, name.encode(), self.DTYPES[t.dtype], t.dim(), shape,
                                         a.ctypes.data_as(ctypes.c_void_p), a.nbytes)
            assert s == 0, self.err()
        for k, v in metadata.items():
            assert L.supcon_safetensors_set_metadata(st, k.encode(), v.encode()) == 0
        s = L.supcon_safetensors_save(st, path.encode())
        L.supcon_safetensors_free(st)
        assert s == 0, self.err()

    def load(self, path):
        """[(name, tensor)], {key: value for the keys asked}, and a find function."""
        L = self.L
        st = ctypes.c_void_p()
        s = L.supcon_safetensors_load(self.ctx, path.encode(), None, ctypes.byref(st))
        if s != 0:
            raise RuntimeError(self.err())
        inv = {v: k for k, v in self.DTYPES.items()}
        out = []
        for i in range(L.supcon_safetensors_count(st)):
            nd = L.supcon_safetensors_ndim(st, i)
            shape = [L.supcon_safetensors_dim(st, i, d) for d in range(nd)]
            nbytes = L.supcon_safetensors_bytes(st, i)
            raw = bytearray(ctypes.string_at(L.supcon_safetensors_data(st, i), nbytes))
            dt = inv[L.supcon_safetensors_dtype(st, i)]
            t = torch.frombuffer(raw, dtype=dt) if nbytes else torch.empty(0, dtype=dt)
            out.append((L.supcon_safetensors_name(st, i).decode(), t.reshape(shape).clone()))
        return st, out

    def meta(self, st, key):
        v = self.L.supcon_safetensors_metadata(st, key.encode())
        return v.decode() if v is not None else None

    def find(self, st, name):
        return self.L.supcon_safetensors_find(st, name.encode())

    def free(self, st):
        self.L.supcon_safetensors_free(st)


def raw_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def same_state(a, b):
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("tool")
    args = ap.parse_args()
    lib = Lib(args.lib)
    spec = importlib.util.spec_from_file_location("pth_to_safetensors", args.tool)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)

    with tempfile.TemporaryDirectory() as tmp:
        # 1. libsupcon writes, PyTorch loads strictly
        net = Net()
        trained(net)
        path = os.path.join(tmp, "c.safetensors")
        lib.save(path, list(net.state_dict().items()), {"epoch": "3"})
        hdr = raw_header(path)
        nbt = hdr["encoder.bn1.num_batches_tracked"]
        check(nbt["dtype"] == "I64" and nbt["shape"] == [], "num_batches_tracked is an I64 scalar")
        tensors, meta = tool.read_safetensors(path)
        check(meta == {"epoch": "3"}, "metadata reads back in Python")
        fresh = Net().eval()
        fresh.load_state_dict(dict(tensors), strict=True)
        with torch.no_grad():
            check(torch.equal(fresh(x), net(x)), "a file written by libsupcon gives PyTorch the same network")
        check(same_state(fresh.state_dict(), net.state_dict()), "every tensor equal after load_state_dict(strict)")

        # 2. a reference-style .pth through the tool, both ways
        torch.manual_seed(1)
        net = Net(data_parallel=True)
        opt = trained(net)
        options = argparse.Namespace(model="resnet50", learning_rate=0.5, cosine=True, lr_decay_epochs=[700, 800])
        pth = os.path.join(tmp, "ckpt_epoch_7.pth")
        torch.save({"opt": options, "model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 7}, pth)
        st_path = os.path.join(tmp, "ckpt.safetensors")
        r = subprocess.run([sys.executable, args.tool, pth, st_path], capture_output=True, text=True)
        check(r.returncode == 0, "tool: .pth -> safetensors (%s)" % (r.stdout.strip() or r.stderr.strip()))
        st, got = lib.load(st_path)
        names = [n for n, _ in got]
        model_names = list(net.state_dict())
        check(names[:len(model_names)] == model_names, "libsupcon reads every name, in order")
        check(all(torch.equal(t, net.state_dict()[n]) for n, t in got if n in model_names),
              "libsupcon reads every value")
        check(lib.find(st, "encoder.conv1.weight") == names.index("encoder.module.conv1.weight"),
              "'encoder.conv1.weight' finds 'encoder.module.conv1.weight'")
        check(lib.meta(st, "epoch") == "7" and json.loads(lib.meta(st, "opt"))["learning_rate"] == 0.5,
              "epoch and options in the metadata")
        check(lib.meta(st, "optimizer.steps") == "1" and lib.meta(st, "optimizer.group.0.momentum") == "0.9",
              "optimizer metadata for supcon_sgd_load_state")
        params = [n for n in model_names if not tool.is_buffer(n)]
        bufs = {n[len(tool.MOMENTUM_PREFIX):]: t for n, t in got if n.startswith(tool.MOMENTUM_PREFIX)}
        check(list(bufs) == params and all(torch.equal(bufs[p], opt.state_dict()["state"][i]["momentum_buffer"])
                                           for i, p in enumerate(params)),
              "momentum buffers by parameter name")
        lib.free(st)

        back = os.path.join(tmp, "back.pth")
        r = subprocess.run([sys.executable, args.tool, st_path, back], capture_output=True, text=True)
        check(r.returncode == 0, "tool: safetensors -> .pth (%s)" % (r.stdout.strip() or r.stderr.strip()))
        ck = torch.load(back)
        check(same_state(ck["model"], net.state_dict()), "round trip: model state_dict equal")
        check(ck["epoch"] == 7 and vars(ck["opt"]) == vars(options), "round trip: epoch and options")
        o2 = torch.optim.SGD(Net(data_parallel=True).parameters(), lr=0.1, momentum=0.9)
        o2.load_state_dict(ck["optimizer"])
        orig = opt.state_dict()
        check(all(torch.equal(ck["optimizer"]["state"][i]["momentum_buffer"], orig["state"][i]["momentum_buffer"])
                  for i in orig["state"]) and o2.state_dict()["param_groups"][0]["weight_decay"] == 1e-4,
              "round trip: optimizer state loads into torch.optim.SGD")
        net2 = Net(data_parallel=True).eval()
        net2.load_state_dict(ck["model"], strict=True)
        with torch.no_grad():
            check(torch.equal(net2(x), net(x)), "round trip: the network's outputs agree")

        # 3. --strip-module: plain names, and libsupcon still finds "module." spellings
        plain = os.path.join(tmp, "plain.safetensors")
        r = subprocess.run([sys.executable, args.tool, "--strip-module", pth, plain], capture_output=True, text=True)
        check(r.returncode == 0, "tool: --strip-module")
        st, got = lib.load(plain)
        check(all("module" not in n.split(".") for n, _ in got), "no 'module.' left in names")
        check(lib.find(st, "encoder.module.bn1.running_var") == [n for n, _ in got].index("encoder.bn1.running_var"),
              "'encoder.module.bn1.running_var' finds 'encoder.bn1.running_var'")
        lib.free(st)
        fresh = Net().eval()
        fresh.load_state_dict(dict((n, t) for n, t in tool.read_safetensors(plain)[0]
                                   if not n.startswith(tool.MOMENTUM_PREFIX)), strict=True)
        with torch.no_grad():
            check(torch.equal(fresh(x), net(x)), "stripped names load into the plain network")

        # 4. a damaged file is refused by the tool with a message, not a traceback
        with open(plain, "r+b") as f:
            f.truncate(os.path.getsize(plain) - 4)
        r = subprocess.run([sys.executable, args.tool, plain, back], capture_output=True, text=True)
        check(r.returncode == 1 and "pth_to_safetensors.py:" in r.stderr, "tool: a truncated file exits 1")
        try:
            lib.load(plain)
            check(False, "libsupcon refuses the truncated file")
        except RuntimeError as e:
            check("run past the end" in str(e) or "cover" in str(e), "libsupcon refuses the truncated file: %s" % e)

    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("all checkpoint interop checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
