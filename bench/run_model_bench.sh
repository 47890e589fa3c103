#!/usr/bin/env bash
# libsupcon's ResNet training steps and inference against the same steps in PyTorch
# (bench/model_torch.py), interleaved case by case so both see the same machine state, then
# one combined table. Every measurement is a fresh process (its own context, its own peak
# memory). The cases run in rounds: round 1 goes through every case, libsupcon first; round 2
# again with PyTorch first (and so on, alternating), so slow spells of a shared machine fall
# on both sides. Times are pooled over the rounds and the median is reported. Builds
# bench_model first when needed. Knobs (environment):
#   BENCH_BIN      a bench_model already built elsewhere (skips the build)
#   BUILD_DIR      build tree (default <repo>/build-bench; when absent it is configured with
#                  SUPCON_CUDA=OFF and without tests/examples)
#   BENCH_CASES    case:arch:bsz, space-separated (default "supcon:resnet18:32
#                  supcon:resnet50:8 ce:resnet18:64 infer:resnet18:256"); bsz is samples
#                  (two views each) for supcon, images for ce and infer
#   BENCH_ROUNDS   rounds (default 2)
#   BENCH_REPEAT   timed steps per process (default 3)
#   BENCH_WARMUP   untimed steps per process first (default 1)
#   BENCH_BUDGET_S a round is not started when the rounds so far project past this many
#                  seconds (default 330; 0 = always run every round)
#   BENCH_THREADS  threads for both sides (default 2)
#   BENCH_OMP_WAIT_POLICY  OMP_WAIT_POLICY for PyTorch's OpenMP threads (default PASSIVE; empty
#                  = libgomp's default, spinning). On a shared, oversubscribed machine the
#                  spinning default made PyTorch's steps 2-13x slower, which is not what it
#                  costs on cores of its own; an OMP_WAIT_POLICY already set is kept.
#   PYTHON         interpreter with torch (default /usr/bin/python3)
#   BENCH_JSON     file to keep the raw JSON lines in (default: a temporary file)
# OPENBLAS_CORETYPE and the other OpenBLAS variables are passed through untouched.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$repo/build-bench}"
BENCH_CASES="${BENCH_CASES:-supcon:resnet18:32 supcon:resnet50:8 ce:resnet18:64 infer:resnet18:256}"
BENCH_ROUNDS="${BENCH_ROUNDS:-2}"
BENCH_REPEAT="${BENCH_REPEAT:-3}"
BENCH_WARMUP="${BENCH_WARMUP:-1}"
BENCH_BUDGET_S="${BENCH_BUDGET_S:-330}"
BENCH_THREADS="${BENCH_THREADS:-2}"
PYTHON="${PYTHON:-/usr/bin/python3}"
BENCH_OMP_WAIT_POLICY="${OMP_WAIT_POLICY-${BENCH_OMP_WAIT_POLICY-PASSIVE}}"

start=$(date +%s)  # the budget counts the build too

# ---- Build ------------------------------------------------------------------------------------
if [ -n "${BENCH_BIN:-}" ]; then
    bench="$BENCH_BIN"
else
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
        cmake -S "$repo" -B "$BUILD_DIR" -DSUPCON_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
              -DSUPCON_BUILD_TESTS=OFF -DSUPCON_BUILD_EXAMPLES=OFF >/dev/null
    else
        # Re-configure: a tree configured before bench_model existed does not know the target
        # (and an earlier configure that failed is retried).
        cmake -S "$repo" -B "$BUILD_DIR" >/dev/null
    fi
    cmake --build "$BUILD_DIR" --target bench_model -j"$(nproc)" >/dev/null
    bench="$BUILD_DIR/bin/bench_model"
fi
[ -x "$bench" ] || { echo "bench_model not built at $bench" >&2; exit 1; }

json="${BENCH_JSON:-$(mktemp /tmp/supcon-model-bench.XXXXXX)}"
: >"$json"
have_torch=1
"$PYTHON" -c 'import torch' 2>/dev/null || have_torch=0
[ $have_torch = 1 ] || echo "  $PYTHON has no torch: libsupcon only" >&2
# PyTorch's OpenMP and the OpenBLAS it calls follow their own variables.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$BENCH_THREADS}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$BENCH_THREADS}"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
printf '{"kind":"env","when":"start","loadavg":"%s","nproc":%s,"openblas_coretype":"%s","omp_wait_policy":"%s"}\n' \
       "$(loadavg)" "$(nproc)" "${OPENBLAS_CORETYPE:-}" "$BENCH_OMP_WAIT_POLICY" >>"$json"
echo "libsupcon vs PyTorch, ResNet steps on 3x32x32, threads=$BENCH_THREADS, rounds=$BENCH_ROUNDS," \
     "$BENCH_WARMUP warm-up + $BENCH_REPEAT timed steps per process," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>}, PyTorch OMP_WAIT_POLICY=${BENCH_OMP_WAIT_POLICY:-<default>}," \
     "load average $(loadavg)" >&2

run_lib() {
    "$bench" --case "$1" --arch "$2" --bsz "$3" --repeat "$BENCH_REPEAT" --warmup "$BENCH_WARMUP" \
             --threads "$BENCH_THREADS" --json >>"$json" || true
}
run_torch() {
    [ $have_torch = 1 ] || return 0
    local policy=(env -u OMP_WAIT_POLICY)
    [ -n "$BENCH_OMP_WAIT_POLICY" ] && policy=(env OMP_WAIT_POLICY="$BENCH_OMP_WAIT_POLICY")
    "${policy[@]}" "$PYTHON" "$here/model_torch.py" --case "$1" --arch "$2" --bsz "$3" --repeat "$BENCH_REPEAT" \
              --warmup "$BENCH_WARMUP" --threads "$BENCH_THREADS" --json >>"$json" || true
}

round_s=0
for ((round = 1; round <= BENCH_ROUNDS; ++round)); do
    elapsed=$(( $(date +%s) - start ))
    if [ "$round" -gt 1 ] && [ "$BENCH_BUDGET_S" -gt 0 ] && \
       [ $(( elapsed + round_s )) -gt "$BENCH_BUDGET_S" ]; then
        echo "  round $round skipped: the last round took ${round_s} s, ${elapsed} s of" \
             "BENCH_BUDGET_S=$BENCH_BUDGET_S used" >&2
        printf '{"kind":"env","skipped_round":%d}\n' "$round" >>"$json"
        break
    fi
    r0=$(date +%s)
    for c in $BENCH_CASES; do
        IFS=: read -r kind arch bsz <<<"$c"
        if [ $((round % 2)) = 1 ]; then order="lib torch"; else order="torch lib"; fi
        for side in $order; do
            echo "  round $round $kind $arch bsz $bsz: $side..." >&2
            "run_$side" "$kind" "$arch" "$bsz"
        done
    done
    round_s=$(( $(date +%s) - r0 ))
done
printf '{"kind":"env","when":"end","loadavg":"%s"}\n' "$(loadavg)" >>"$json"
echo "  done in $(( $(date +%s) - start )) s; raw results in $json" >&2

# ---- One table ---------------------------------------------------------------------------
"$PYTHON" - "$json" <<'EOF'
import json, sys
rows, env, order = {}, [], []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r.get("kind") == "env":
        env.append(r)
        continue
    key = (r["case"], r["arch"], r["bsz"])
    if key not in order:
        order.append(key)
    rows.setdefault(key, {}).setdefault(r["impl"], []).append(r)

def med(v):
    v = sorted(v)
    n = len(v)
    return None if not n else v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])

def summary(runs):
    """Pooled median step time, median phases, max memory; None when nothing ran."""
    ok = [r for r in runs or [] if "error" not in r]
    if not ok:
        return None
    s = {"ms": med([t for r in ok for t in r["step_ms"]]), "n": sum(len(r["step_ms"]) for r in ok),
         "spread": (min(r["ms_median"] for r in ok), max(r["ms_median"] for r in ok))}
    s["ips"] = ok[0]["images"] / (s["ms"] * 1e-3)
    for k in ("fwd_ms", "loss_ms", "bwd_ms", "opt_ms"):
        s[k] = med([r[k] for r in ok])
    for k in ("ctx_peak_bytes", "rss_delta_bytes", "rss_peak_bytes"):
        if k in ok[0]:
            s[k] = max(r[k] for r in ok)
    return s

def mb(x):
    return "%.0f" % (x / 1048576.0) if x is not None and x >= 0 else "-"

for e in env:
    if e.get("when") == "start":
        print("load average at start %s, %s cores, OPENBLAS_CORETYPE=%s, PyTorch OMP_WAIT_POLICY=%s"
              % (e["loadavg"], e["nproc"], e["openblas_coretype"] or "<unset>",
                 e.get("omp_wait_policy") or "<libgomp default>"))
    elif e.get("when") == "end":
        print("load average at end   %s" % e["loadavg"])
for key in order:
    for impl, runs in rows[key].items():
        for r in runs:
            if "error" in r:
                print("  %s %s bsz %d %s error: %s" % (key + (impl, r["error"])))
names = {"supcon": "SupCon step", "ce": "CE step", "infer": "inference"}
hdr = ("case", "arch", "bsz", "img/step", "lib img/s", "torch img/s", "lib/torch",
       "lib ms", "torch ms", "lib ctx MB", "lib RSS MB", "torch RSS MB", "steps")
fmt = "%-11s %-8s %4s %8s %9s %11s %9s %8s %8s %10s %10s %12s %5s"
print(fmt % hdr)
for key in order:
    l, t = summary(rows[key].get("libsupcon")), summary(rows[key].get("pytorch"))
    images = rows[key][next(iter(rows[key]))][0]["images"]
    print(fmt % (names.get(key[0], key[0]), key[1], key[2], images,
                 "%.1f" % l["ips"] if l else "-", "%.1f" % t["ips"] if t else "-",
                 "%.2fx" % (l["ips"] / t["ips"]) if l and t else "-",
                 "%.0f" % l["ms"] if l else "-", "%.0f" % t["ms"] if t else "-",
                 mb(l.get("ctx_peak_bytes")) if l else "-", mb(l.get("rss_delta_bytes")) if l else "-",
                 mb(t.get("rss_delta_bytes")) if t else "-",
                 "%s/%s" % (l["n"] if l else 0, t["n"] if t else 0)))
print()
print("Where a step's time goes (medians, ms): forward | loss | zero_grad + backward | SGD step")
for key in order:
    for impl in ("libsupcon", "pytorch"):
        s = summary(rows[key].get(impl))
        if not s:
            continue
        print("  %-11s %-8s bsz %-4d %-9s %8.0f | %6.1f | %8.0f | %6.1f   (per-process medians %.0f-%.0f ms)"
              % (names.get(key[0], key[0]), key[1], key[2], impl, s["fwd_ms"], s["loss_ms"],
                 s["bwd_ms"], s["opt_ms"], s["spread"][0], s["spread"][1]))
EOF
