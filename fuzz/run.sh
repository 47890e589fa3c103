#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan) and run each for a bounded time.
#
# usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s; cifar idx image safetensors)
# env:   FUZZ_BUILD   build folder (default build-fuzz in the repository root)
#        FUZZ_JOBS    parallel build jobs (default 2)
# Seeds come from fuzz/corpus/<target>/ and are never written to; new inputs go to a
# temporary folder that is deleted afterwards. A crash leaves its input as
# $FUZZ_BUILD/crash-<target>-* and makes the script exit non-zero.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(cifar idx image safetensors)
build=${FUZZ_BUILD:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-2}

command -v clang >/dev/null || { echo "fuzz/run.sh: clang not found" >&2; exit 1; }
CC=clang cmake -S "$root" -B "$build" -DSUPCON_FUZZ=ON -DSUPCON_CUDA=OFF \
    -DSUPCON_BUILD_TESTS=OFF -DSUPCON_BUILD_EXAMPLES=OFF -DSUPCON_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if ! cmake --build "$build" -j "$jobs" --target $(printf 'fuzz_%s ' "${targets[@]}") \
        >"$build/fuzz-build.log" 2>&1; then
    tail -40 "$build/fuzz-build.log"
    exit 1
fi

status=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    echo "== fuzz_$t for ${secs}s"
    # leaks are checked too (ASan's leak sanitizer at exit of each run)
    if ! "$build/bin/fuzz_$t" "$work/$t" "$here/corpus/$t" \
            -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
            -artifact_prefix="$build/crash-$t-" -print_final_stats=1 2>"$work/$t.log"; then
        echo "fuzz_$t FAILED; log tail:"
        tail -40 "$work/$t.log"
        status=1
    else
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)" \
            "$work/$t.log" || tail -3 "$work/$t.log"
    fi
done
exit $status
