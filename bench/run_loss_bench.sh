#!/usr/bin/env bash
# libsupcon's SupConLoss against PyTorch's reference loss, interleaved size by size (and mode
# by mode) so both see the same machine state, then one combined table. Builds bench_loss
# first when needed. Knobs (environment):
#   BENCH_BIN       a bench_loss already built elsewhere (skips the build)
#   BUILD_DIR       build tree (default <repo>/build-bench; when absent it is configured with
#                   SUPCON_CUDA=OFF and without tests/examples, which the bench does not need)
#   BENCH_SIZES     anchors N = B*V, space-separated (default "512 2048 8192 65536")
#   BENCH_MODES     "labels simclr" (default)
#   BENCH_BIG_N     sizes >= this run once, without warm-up, modes BENCH_BIG_MODES (65536)
#   BENCH_BIG_MODES modes measured at the big sizes (default "labels")
#   BENCH_BUDGET_S  a big size is skipped when its time, projected as N^2 from the largest
#                   smaller size measured, would end the run past this many seconds (290;
#                   0 = never skip)
#   BENCH_THREADS   threads for both sides (default 2)
#   BENCH_BACKEND   libsupcon backend cpu|cuda|auto (default cpu); PyTorch device follows
#   PYTHON          interpreter with torch (default /usr/bin/python3)
#   BENCH_JSON      file to keep the raw JSON lines in (default: a temporary file)
# OPENBLAS_CORETYPE and the other OpenBLAS variables are passed through untouched.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$repo/build-bench}"
BENCH_SIZES="${BENCH_SIZES:-512 2048 8192 65536}"
BENCH_MODES="${BENCH_MODES:-labels simclr}"
BENCH_BIG_N="${BENCH_BIG_N:-65536}"
BENCH_BIG_MODES="${BENCH_BIG_MODES:-labels}"
BENCH_BUDGET_S="${BENCH_BUDGET_S:-290}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_BACKEND="${BENCH_BACKEND:-cpu}"
PYTHON="${PYTHON:-/usr/bin/python3}"
torch_device=cpu
[ "$BENCH_BACKEND" = cuda ] && torch_device=cuda

# Repeats per size: many where a pair takes milliseconds, one where it takes a minute.
repeats_for() {
    if [ "$1" -le 1024 ]; then echo 20
    elif [ "$1" -le 4096 ]; then echo 10
    elif [ "$1" -lt "$BENCH_BIG_N" ]; then echo 3
    else echo 1; fi
}

start=$(date +%s)  # the budget counts the build too

# ---- Build ------------------------------------------------------------------------------------
if [ -n "${BENCH_BIN:-}" ]; then
    bench="$BENCH_BIN"
else
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
        cmake -S "$repo" -B "$BUILD_DIR" -DSUPCON_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
              -DSUPCON_BUILD_TESTS=OFF -DSUPCON_BUILD_EXAMPLES=OFF >/dev/null
    elif [ ! -f "$BUILD_DIR/Makefile" ] && [ ! -f "$BUILD_DIR/build.ninja" ]; then
        cmake -S "$repo" -B "$BUILD_DIR" >/dev/null  # an earlier configure failed: retry it
    fi
    cmake --build "$BUILD_DIR" --target bench_loss -j"$(nproc)" >/dev/null
    bench="$BUILD_DIR/bin/bench_loss"
fi
[ -x "$bench" ] || { echo "bench_loss not built at $bench" >&2; exit 1; }

json="${BENCH_JSON:-$(mktemp /tmp/supcon-bench.XXXXXX)}"
: >"$json"
have_torch=1
"$PYTHON" -c 'import torch' 2>/dev/null || have_torch=0

echo "libsupcon vs PyTorch SupConLoss, D=128, V=2, threads=$BENCH_THREADS, backend=$BENCH_BACKEND," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>}" >&2
# Seconds one libsupcon pair at N should take: the largest smaller N of this mode, times N^2.
projected_s() {
    "$PYTHON" -c '
import json, sys
n, mode, best = int(sys.argv[2]), sys.argv[3], None
for line in open(sys.argv[1]):
    r = json.loads(line) if line.startswith("{") else {}
    if r.get("kind") == "loss" and r.get("impl") != "pytorch" and r.get("mode") == mode \
            and "ms_median" in r and r["N"] < n and (best is None or r["N"] > best["N"]):
        best = r
print(0 if best is None else int(best["ms_median"] * 1e-3 * (n / best["N"]) ** 2 + 1))
' "$json" "$1" "$2"
}
for n in $BENCH_SIZES; do
    big=0; [ "$n" -ge "$BENCH_BIG_N" ] && big=1
    modes="$BENCH_MODES"; [ $big = 1 ] && modes="$BENCH_BIG_MODES"
    r=$(repeats_for "$n"); w=1; [ $big = 1 ] && w=0
    for mode in $modes; do
        if [ $big = 1 ] && [ "$BENCH_BUDGET_S" -gt 0 ]; then
            proj=$(projected_s "$n" "$mode")
            left=$(( BENCH_BUDGET_S - ($(date +%s) - start) ))
            if [ "$proj" -gt "$left" ]; then
                echo "  N=$n $mode: skipped, one pair projected at ~${proj} s, ${left} s of budget left" >&2
                printf '{"kind":"loss","N":%s,"mode":"%s","skipped":"projected ~%s s per pair, %s s of BENCH_BUDGET_S left"}\n' \
                       "$n" "$mode" "$proj" "$left" >>"$json"
                continue
            fi
        fi
        echo "  N=$n $mode: libsupcon ($w warm-up, $r timed)..." >&2
        "$bench" --backend "$BENCH_BACKEND" --sizes "$n" --mode "$mode" --repeat "$r" \
                 --warmup "$w" --threads "$BENCH_THREADS" --json >>"$json" || true
        if [ $have_torch = 1 ]; then
            echo "  N=$n $mode: PyTorch..." >&2
            "$PYTHON" "$here/loss_torch.py" --device "$torch_device" --sizes "$n" --mode "$mode" \
                      --repeat "$r" --warmup "$w" --threads "$BENCH_THREADS" --json >>"$json" || true
        fi
    done
done
echo "  done in $(( $(date +%s) - start )) s; raw results in $json" >&2

# ---- One table ---------------------------------------------------------------------------
"$PYTHON" - "$json" <<'EOF'
import json, sys
lib, ref, sgemm = {}, {}, []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r.get("kind") == "sgemm":
        if r.get("gflops", -1) > 0:
            sgemm.append((r["gflops"], r.get("openblas_core", "?"), r.get("openblas_threads")))
        continue
    (ref if r.get("impl") == "pytorch" else lib)[(r["N"], r["mode"])] = r

def mb(x):
    return "%.1f" % (x / 1048576.0) if x is not None and x >= 0 else "-"

def torch_cell(t):
    if t is None: return "n/a", None
    for k in ("skipped", "oom", "error"):
        if k in t: return ("OOM" if k == "oom" else k if k == "error" else "skipped"), None
    return "%.2f" % t["ms_median"], t["ms_median"]

if sgemm:
    g = sorted(x[0] for x in sgemm)
    print("cblas_sgemm 2048^3: median %.1f GFLOP/s over %d runs (range %.1f-%.1f), OpenBLAS core %s, %s threads"
          % (g[len(g) // 2], len(g), g[0], g[-1], sgemm[0][1], sgemm[0][2]))
hdr = ("N", "mode", "libsupcon ms", "PyTorch ms", "speed-up", "lib peak MB", "lib ctx MB",
       "PyTorch peak MB", "% sgemm", "loss lib", "loss torch")
fmt = "%7s %7s %12s %11s %9s %11s %10s %15s %8s %10s %10s"
print(fmt % hdr)
notes = []
for key in sorted(set(lib) | set(ref)):
    l, t = lib.get(key), ref.get(key)
    tcell, tms = torch_cell(t)
    if l is None or "error" in l or "skipped" in l:
        lcell, lms = ("n/a" if l is None else "error" if "error" in l else "skipped"), None
        if l: notes.append("N=%d %s libsupcon %s" % (key[0], key[1],
                           "error: " + l["error"] if "error" in l else "skipped: " + l["skipped"]))
    else:
        lcell, lms = "%.2f" % l["ms_median"], l["ms_median"]
    if t and "skipped" in t: notes.append("N=%d %s PyTorch skipped: %s" % (key[0], key[1], t["skipped"]))
    if t and "oom" in t: notes.append("N=%d %s PyTorch OOM: %s" % (key[0], key[1], t["oom"]))
    if t and "error" in t: notes.append("N=%d %s PyTorch error: %s" % (key[0], key[1], t["error"]))
    speed = "%.1fx" % (tms / lms) if lms and tms else "-"
    pct = "%.1f" % l["pct_sgemm"] if l and l.get("pct_sgemm", -1) >= 0 else "-"
    print(fmt % (key[0], key[1], lcell, tcell, speed,
                 mb(l.get("rss_delta_bytes")) if l else "-", mb(l.get("ctx_peak_bytes")) if l else "-",
                 mb(t.get("peak_bytes")) if t else "-", pct,
                 "%.6f" % l["loss"] if l and "loss" in l else "-",
                 "%.6f" % t["loss"] if t and "loss" in t else "-"))
for n in notes:
    print("  " + n)
EOF
