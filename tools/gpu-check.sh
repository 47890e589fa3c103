#!/usr/bin/env bash
# One-call GPU check for a lent CUDA machine (see docs/gpu-check.md): unpack the Debian
# packages carried in ./.debs into a private prefix, configure and build with the CUDA
# module for sm_90, run the gpu-labelled tests (they must run, not skip), time training steps
# beside PyTorch (fp32, tf32, bf16), run the README's Fashion-MNIST job on the GPU, time the
# loss beside PyTorch's, run the other tests, print a compact summary last and copy the logs
# to $OUT.
# Every step has its own time limit and the whole script keeps within GPU_CHECK_BUDGET
# seconds (default 480). Run from the repository root: bash tools/gpu-check.sh
set -uo pipefail

t0=$(date +%s)
BUDGET="${GPU_CHECK_BUDGET:-480}"
RESERVE=10 # kept back for the summary and the copy to $OUT
JOBS="${GPU_CHECK_JOBS:-16}"
ARCH="${GPU_CHECK_ARCH:-90}"
SIZES="${GPU_CHECK_SIZES:-512,2048,8192,65536}"
BUILD="${GPU_CHECK_BUILD:-build-gpu}"
PREFIX="${GPU_CHECK_PREFIX:-/tmp/supcon-gpu-deps}"
LOGS="$(mktemp -d /tmp/supcon-gpu-check.XXXXXX)"
ORIG_LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"

if [ ! -f CMakeLists.txt ] || [ ! -d src/cuda ]; then
    echo "run from the libsupcon repository root" >&2
    exit 2
fi

summary=()
note() { summary+=("$(printf '%-14s %-6s %s' "$1" "$2" "$3")"); }
elapsed() { echo $(($(date +%s) - t0)); }

# Seconds a step may take: its own cap, or what is left of the budget, whichever is less.
limit() {
    local left=$((BUDGET - RESERVE - $(elapsed)))
    [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}

# run NAME CAP LOG cmd...: runs with a time limit, output to LOG; returns the status
# (124 when the limit struck, 125 when no time was left to start).
run() {
    local name=$1 cap=$2 log=$3
    shift 3
    local lim
    lim=$(limit "$cap")
    if [ "$lim" -le 5 ]; then
        echo "[$name] not started: the ${BUDGET}s budget is spent" | tee -a "$log"
        return 125
    fi
    echo "[$name] (limit ${lim}s) $*" >>"$log"
    local s rc
    s=$(date +%s)
    timeout -k 5 "$lim" "$@" >>"$log" 2>&1
    rc=$?
    echo "[$name] exit $rc after $(($(date +%s) - s))s" >>"$log"
    return $rc
}

# shellcheck disable=SC2317 # runs from the EXIT trap
finish() {
    {
        echo
        echo "==== gpu-check summary ($(elapsed)s of ${BUDGET}s) ===="
        printf '%s\n' "${summary[@]}"
    } | tee "$LOGS/summary.txt"
    if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
        # At most 8 files come back: the six logs, the bench JSON and the summary.
        for f in env.log build.log ctest.log ctest-rest.log bench.log main-job.log bench.jsonl summary.txt; do
            [ -f "$LOGS/$f" ] && cp "$LOGS/$f" "$OUT/" 2>/dev/null
        done
    fi
}
trap finish EXIT

# ---- 0. The machine -----------------------------------------------------------------------
export PATH="/usr/local/cuda/bin:$PATH"
{
    echo "date: $(date -u +%FT%TZ)  host: $(uname -srm)  cores: $(nproc)"
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem \
        --format=csv 2>&1 || echo "nvidia-smi failed"
    nvcc --version 2>&1 | tail -2
    cmake --version 2>&1 | head -1
    echo "ninja $(ninja --version 2>&1)"
    timeout 60 python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>&1 | tail -1
} >"$LOGS/env.log" 2>&1
gpu_name=$(timeout 20 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
note "device" "info" "${gpu_name:-no nvidia-smi answer}; $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/CUDA \1/p')"

# ---- 1. Private prefix from ./.debs ---------------------------------------------------------
# dpkg -x into PREFIX, never into /. Debian's alternatives (libopenblas.so.0 in the
# multiarch folder) are not set up by dpkg -x, so the run-time folder gets its own links, and
# libraries the system already has (libgfortran, ...) are not shadowed.
deps_ok=1
if compgen -G ".debs/*.deb" >/dev/null; then
    rm -rf "$PREFIX" && mkdir -p "$PREFIX"
    for f in .debs/*.deb; do
        if command -v dpkg >/dev/null; then
            dpkg -x "$f" "$PREFIX" || deps_ok=0
        else # no dpkg: a .deb is an ar archive holding data.tar.{xz,zst,gz}
            member=$(ar t "$f" | grep '^data\.tar')
            case "$member" in
                *.xz) z=-J ;; *.zst) z=--zstd ;; *.gz) z=-z ;; *) z= ;;
            esac
            ar p "$f" "$member" | tar -x $z -C "$PREFIX" || deps_ok=0
        fi
    done
    P="$PREFIX/usr"
    ML="$P/lib/x86_64-linux-gnu"
    # .pc files name /usr: point them into the prefix. So do absolute symlinks
    # (zlib1g-dev's libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13).
    find "$PREFIX" -name '*.pc' -print0 | xargs -0 -r sed -i -E "s#(^|[=[:space:]]|-[IL])/usr/#\1$P/#g"
    find "$PREFIX" -type l | while IFS= read -r l; do
        t=$(readlink "$l")
        case "$t" in /*) [ -e "$PREFIX$t" ] && ln -sfn "$PREFIX$t" "$l" ;; esac
    done
    RUNLIB="$PREFIX/runlib"
    mkdir -p "$RUNLIB"
    ln -sf "$ML/openblas-pthread/libopenblas.so.0" "$RUNLIB/libopenblas.so.0"
    for so in libgfortran.so.5 libquadmath.so.0 libcmocka.so.0 libpkgconf.so.3 libpng16.so.16 \
        libjpeg.so.62 libz.so.1; do
        for dir in "$ML" "$PREFIX/lib/x86_64-linux-gnu"; do
            if ! ldconfig -p 2>/dev/null | grep -q "$so " && [ -e "$dir/$so" ]; then
                ln -sf "$dir/$so" "$RUNLIB/$so"
            fi
        done
    done
    export PKG_CONFIG_PATH="$ML/pkgconfig:$ML/openblas-pthread/pkgconfig:$P/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export CPATH="$P/include:$P/include/x86_64-linux-gnu:$P/include/x86_64-linux-gnu/openblas-pthread${CPATH:+:$CPATH}"
    export LIBRARY_PATH="$ML:$ML/openblas-pthread:$PREFIX/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$RUNLIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export CMAKE_PREFIX_PATH="$P${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    if ! command -v pkg-config >/dev/null; then
        export PATH="$PATH:$P/bin"
    fi
    pc_ver=$(pkg-config --modversion openblas cmocka libpng zlib 2>/dev/null | tr '\n' ' ')
    [ -n "$pc_ver" ] || deps_ok=0
    note "deps" "$([ $deps_ok = 1 ] && echo ok || echo FAIL)" "$(find .debs -maxdepth 1 -name '*.deb' | wc -l) debs -> $PREFIX; openblas/cmocka/libpng/zlib ${pc_ver:-not found by pkg-config}"
else
    note "deps" "none" "no .debs/*.deb carried: using what the machine has"
fi
# The CUDA libraries, for the module's loader, whatever the toolkit's layout.
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
env | grep -E '^(PATH|PKG_CONFIG_PATH|CPATH|LIBRARY_PATH|LD_LIBRARY_PATH|CMAKE_PREFIX_PATH)=' >>"$LOGS/env.log"

# ---- 2. Configure and build -----------------------------------------------------------------
build_ok=0
# The top-level CMakeLists sets CMAKE_CUDA_ARCHITECTURES from SUPCON_CUDA_ARCHITECTURES: give both.
if run configure 120 "$LOGS/build.log" cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSUPCON_CUDA=ON -DSUPCON_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
    -DSUPCON_WERROR=OFF -DSUPCON_CUDA_EMU=OFF; then
    if run build 300 "$LOGS/build.log" ninja -C "$BUILD" -j"$JOBS"; then
        build_ok=1
    fi
fi
nwarn=$(grep -c -E 'warning[: ]' "$LOGS/build.log")
if [ $build_ok = 1 ]; then
    note "build" "ok" "sm_$ARCH, $nwarn compiler warning line(s), $(elapsed)s elapsed"
else
    note "build" "FAIL" "see build.log: $(grep -m1 -E 'error|Error|FAILED' "$LOGS/build.log" | cut -c1-100)"
fi
if [ -f "$BUILD/lib/libsupcon_cuda.so" ]; then
    exports=$(nm -D --defined-only "$BUILD/lib/libsupcon_cuda.so" 2>/dev/null | awk '{print $3}' | tr '\n' ' ')
    cudadeps=$(readelf -d "$BUILD/lib/libsupcon.so" 2>/dev/null | grep NEEDED | grep -ciE 'cuda|cublas')
    note "module" "$([ "$exports" = "supcon_cuda_backend_entry " ] && [ "$cudadeps" = 0 ] && echo ok || echo FAIL)" \
        "exports: ${exports:-none}; CUDA NEEDED by libsupcon.so: $cudadeps"
fi

# ---- 3. GPU tests ---------------------------------------------------------------------------
# First, so their result is in even if the rest runs long. -V: the tests' own lines (counts,
# FAIL lines, a skip reason) land in the log.
if [ $build_ok = 1 ]; then
    run ctest-gpu 150 "$LOGS/ctest.log" ctest --test-dir "$BUILD" -V -L gpu --timeout 140
    rc_gpu=$?
    gpu_tests=$(grep -c -E 'Test +#[0-9]+: ' "$LOGS/ctest.log")
    gpu_skipped=$(grep -c -E '\*\*\*Skipped' "$LOGS/ctest.log")
    # Every gpu test's own count line (cuda_parity: ..., cuda_ops: ...), joined.
    gpu_line=$(grep -oE '[a-z_]+: [0-9]+ passed, [0-9]+ failed' "$LOGS/ctest.log" | paste -sd ';' - | sed 's/;/; /g')
    if [ $rc_gpu = 0 ] && [ "$gpu_skipped" = 0 ] && [ "$gpu_tests" -gt 0 ]; then
        note "tests gpu" "ok" "$gpu_tests test(s); ${gpu_line:-passed}"
    elif [ "$gpu_skipped" != 0 ]; then
        note "tests gpu" "SKIP" "skipped on a GPU machine: $(grep -m1 -oE 'skipped: .*' "$LOGS/ctest.log" | cut -c1-150)"
    else
        note "tests gpu" "FAIL" "${gpu_line:-exit $rc_gpu}; first: $(grep -m1 -oE 'FAIL .*' "$LOGS/ctest.log" | cut -c1-150)"
    fi
    # test_cuda_ops: the worst CUDA-vs-CPU relative error of each layer family.
    ops_err=$(grep -m1 -oE 'worst relative error:.*' "$LOGS/ctest.log")
    [ -n "$ops_err" ] && note "cuda ops err" "info" "${ops_err#worst relative error: }"
else
    note "tests" "FAIL" "not run: the build failed"
fi

# PyTorch brings its own libraries: it runs with the machine's loader path, not the prefix's.
# (An array, not a function: `timeout` in run() executes a program.)
torch_py=(env LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" PYTHONUNBUFFERED=1 python3)
: >"$LOGS/bench.jsonl"

# ---- 4. Whole training steps beside PyTorch ---------------------------------------------------
# SupCon steps (two views, encoder + MLP head, loss, backward, SGD) in each precision:
# fp32 (both sides strict float32; PyTorch with cudnn.benchmark), tf32 (tensor cores for the
# products on both sides), bf16 (PyTorch's autocast with channels_last; libsupcon's
# SUPCON_PRECISION_BF16: bfloat16 convolutions on float32 activations, NCHW). The first case's
# fp32 and bf16 runs also profile a few steps (GPU_CHECK_PROFILE, default 3) to show where
# each side's time goes.
model_bin="$BUILD/bin/bench_model"
if [ $build_ok = 1 ] && [ -x "$model_bin" ] && [ -f bench/model_torch.py ]; then
    # GPU_CHECK_MODEL_CASES: "arch bsz" pairs separated by commas, each optionally followed by
    # the precisions to time it in ("fp32+bf16"; default all of GPU_CHECK_PRECISIONS).
    IFS=, read -r -a mcases <<<"${GPU_CHECK_MODEL_CASES:-resnet18 256,resnet50 256 fp32+bf16,resnet18 1024 fp32+bf16}"
    IFS=, read -r -a precs <<<"${GPU_CHECK_PRECISIONS:-fp32,tf32,bf16}"
    prof_steps="${GPU_CHECK_PROFILE:-3}"
    first=1
    for mcase in "${mcases[@]}"; do
        set -- $mcase
        for prec in "${precs[@]}"; do
            [ -n "${3:-}" ] && [[ "+$3+" != *"+$prec+"* ]] && continue
            prof=()
            # profiles of the first case in fp32 and bf16 (where bf16's casts and convolutions go)
            [ $first = 1 ] && [ "$prec" != tf32 ] && [ "$prof_steps" -gt 0 ] && prof=(--profile "$prof_steps")
            # GPU_CHECK_MODEL_ENV: e.g. SUPCON_CUDA_CONV_FIND=1 to time convolution algorithms.
            # shellcheck disable=SC2086 # word splitting of the assignments is intended
            run "model $1/$2 $prec" 60 "$LOGS/bench.log" env ${GPU_CHECK_MODEL_ENV:-} "$model_bin" --backend cuda \
                --case supcon --arch "$1" --bsz "$2" --precision "$prec" --warmup 2 --repeat 5 "${prof[@]}" --json
            grep '^{"kind":"model"' "$LOGS/bench.log" | tail -1 >>"$LOGS/bench.jsonl"
            run "torch $1/$2 $prec" 90 "$LOGS/bench.log" "${torch_py[@]}" bench/model_torch.py --device cuda --case supcon \
                --arch "$1" --bsz "$2" --precision "$prec" --warmup 2 --repeat 5 "${prof[@]}" --json
            grep '^{"kind": "model"' "$LOGS/bench.log" | tail -1 >>"$LOGS/bench.jsonl"
        done
        first=0
    done
    # libsupcon's bfloat16 copies in NCHW instead of channels last (GPU_CHECK_BF16_NCHW, default
    # 1): the first case once more, its row bf16-nchw (--variant nchw; no PyTorch counterpart).
    if [ "${GPU_CHECK_BF16_NCHW:-1}" = 1 ] && [[ ",${precs[*]}," == *bf16* ]]; then
        set -- ${mcases[0]}
        # shellcheck disable=SC2086 # word splitting of the assignments is intended
        run "model $1/$2 bf16 nchw" 60 "$LOGS/bench.log" env ${GPU_CHECK_MODEL_ENV:-} SUPCON_CUDA_BF16_LAYOUT=nchw \
            "$model_bin" --backend cuda --case supcon --arch "$1" --bsz "$2" --precision bf16 --variant nchw \
            --warmup 2 --repeat 5 --json
        grep '^{"kind":"model"' "$LOGS/bench.log" | tail -1 >>"$LOGS/bench.jsonl"
    fi
    # PyTorch's own setting (GPU_CHECK_FAST_ROW, default 1): cudnn.benchmark times the
    # algorithms and takes non-deterministic ones too; libsupcon's default is heuristics and
    # deterministic algorithms first. The first case once more in fp32 as PyTorch runs it
    # (SUPCON_CUDA_CONV_FIND=1, SUPCON_CUDA_CONV_DETERMINISTIC=0), row fp32-fast (--variant fast).
    if [ "${GPU_CHECK_FAST_ROW:-1}" = 1 ]; then
        set -- ${mcases[0]}
        run "model $1/$2 fp32 fast" 60 "$LOGS/bench.log" env SUPCON_CUDA_CONV_FIND=1 SUPCON_CUDA_CONV_DETERMINISTIC=0 \
            "$model_bin" --backend cuda --case supcon --arch "$1" --bsz "$2" --precision fp32 --variant fast \
            --warmup 2 --repeat 5 --json
        grep '^{"kind":"model"' "$LOGS/bench.log" | tail -1 >>"$LOGS/bench.jsonl"
    fi
    # Input pipelines (GPU_CHECK_INPUTS, default 1): the first case in fp32 with a new host
    # batch every step, steps not synchronised one by one: libsupcon's supcon_tensor_upload
    # against PyTorch's .to(device) from pageable memory, and libsupcon's uploader (pinned
    # memory, copy stream) against PyTorch's pin_memory + non_blocking.
    if [ "${GPU_CHECK_INPUTS:-1}" = 1 ]; then
        set -- ${mcases[0]}
        for pair in upload:pageable push:pinned; do
            # shellcheck disable=SC2086 # word splitting of the assignments is intended
            run "model $1/$2 fp32 ${pair%%:*}" 60 "$LOGS/bench.log" env ${GPU_CHECK_MODEL_ENV:-} "$model_bin" \
                --backend cuda --case supcon --arch "$1" --bsz "$2" --warmup 2 --repeat 8 --inputs "${pair%%:*}" --json
            grep '^{"kind":"model"' "$LOGS/bench.log" | tail -1 >>"$LOGS/bench.jsonl"
            run "torch $1/$2 fp32 ${pair##*:}" 90 "$LOGS/bench.log" "${torch_py[@]}" bench/model_torch.py --device cuda \
                --case supcon --arch "$1" --bsz "$2" --warmup 2 --repeat 8 --inputs "${pair##*:}" --json
            grep '^{"kind": "model"' "$LOGS/bench.log" | tail -1 >>"$LOGS/bench.jsonl"
        done
    fi
    n_lib=$(grep -c '"impl":"libsupcon".*"images_per_s"' "$LOGS/bench.jsonl")
    n_torch=$(grep -c '"impl": "pytorch".*"images_per_s"' "$LOGS/bench.jsonl")
    note "bench model" "$([ "$n_lib" -gt 0 ] && [ "$n_torch" -gt 0 ] && echo ok || echo FAIL)" \
        "SupCon steps in ${precs[*]}: $n_lib libsupcon and $n_torch PyTorch run(s) timed; table below"
fi

# ---- 5. The main job on the GPU -------------------------------------------------------------
# The README's Fashion-MNIST job (tools/main-job.sh: SupCon pre-training, linear evaluation,
# t-SNE) with --device cuda, when the dataset-fashion-mnist package was carried.
fm=""
for d in "${PREFIX}/usr/share/datasets/fashion-mnist" /usr/share/datasets/fashion-mnist; do
    [ -f "$d/train-images-idx3-ubyte.gz" ] && fm=$d && break
done
if [ $build_ok = 1 ] && [ -n "$fm" ] && [ -x "$BUILD/bin/supcon" ]; then
    run main-job 150 "$LOGS/main-job.log" env NO_BUILD=1 BUILD_DIR="$BUILD" DEVICE=cuda DATA_FOLDER="$fm" \
        bash tools/main-job.sh "$LOGS/main-job"
    rc=$?
    acc=$(sed -n 's/^test accuracy: //p' "$LOGS/main-job.log" | tail -1)
    times=$(grep -m1 -oE 'SupCon pre-training .*total [0-9]+s' "$LOGS/main-job.log")
    knn=$(grep -m1 -oE 'kNN accuracy [0-9.]+%' "$LOGS/main-job.log")
    note "main job" "$([ $rc = 0 ] && [ -n "$acc" ] && echo ok || echo "rc=$rc")" \
        "Fashion-MNIST on cuda: test accuracy ${acc:-none}; ${knn:-no kNN}; ${times:-see main-job.log}"
else
    note "main job" "none" "not run (no Fashion-MNIST: carry dataset-fashion-mnist in .debs)"
fi

# ---- 6. Loss benchmarks (optional) ----------------------------------------------------------
bench_bin="$BUILD/bin/bench_loss"
if [ "${GPU_CHECK_LOSS_BENCH:-1}" = 1 ] && [ $build_ok = 1 ] && [ -x "$bench_bin" ]; then
    run bench_loss 90 "$LOGS/bench.log" "$bench_bin" --backend cuda --sizes "$SIZES" --json
    rc=$?
    grep '^{' "$LOGS/bench.log" | grep -F '"kind":"loss"' >>"$LOGS/bench.jsonl"
    note "bench libsupcon" "$([ $rc = 0 ] && echo ok || echo "rc=$rc")" "bench_loss --backend cuda --sizes $SIZES"
else
    note "bench libsupcon" "none" "not run"
fi
if [ "${GPU_CHECK_LOSS_BENCH:-1}" = 1 ] && [ -f bench/loss_torch.py ]; then
    run loss_torch 120 "$LOGS/bench.log" "${torch_py[@]}" bench/loss_torch.py --device cuda --sizes "$SIZES" --repeat 3 --json
    rc=$?
    grep '^{' "$LOGS/bench.log" | grep -F '"impl": "pytorch"' | grep -F '"kind": "loss"' >>"$LOGS/bench.jsonl"
    note "bench torch" "$([ $rc = 0 ] && echo ok || echo "rc=$rc")" "bench/loss_torch.py --device cuda"
else
    note "bench torch" "none" "not run"
fi

# ---- 7. The same job in bf16 (GPU_CHECK_MAIN_BF16, default 1) ---------------------------------
# Its accuracy beside float32's (step 5) is the check that bfloat16 convolutions train as well.
if [ "${GPU_CHECK_MAIN_BF16:-1}" = 1 ] && [ $build_ok = 1 ] && [ -n "$fm" ] && [ -x "$BUILD/bin/supcon" ]; then
    run main-job-bf16 150 "$LOGS/main-job.log" env NO_BUILD=1 BUILD_DIR="$BUILD" DEVICE=cuda DATA_FOLDER="$fm" \
        EXTRA_PRETRAIN="--precision bf16" EXTRA_LINEAR="--precision bf16" bash tools/main-job.sh "$LOGS/main-job-bf16"
    rc=$?
    acc=$(sed -n 's/^test accuracy: //p' "$LOGS/main-job.log" | tail -1)
    times=$(grep -oE 'SupCon pre-training .*total [0-9]+s' "$LOGS/main-job.log" | tail -1)
    note "main job bf16" "$([ $rc = 0 ] && [ -n "$acc" ] && echo ok || echo "rc=$rc")" \
        "--precision bf16: test accuracy ${acc:-none}; ${times:-see main-job.log}"
fi

# ---- 8. Convolutions alone, per layer and precision -------------------------------------------
# bench_conv --backend cuda over ResNet-18's shapes at 512 images (a step of batch 256, two
# views): fp32, tf32, bf16 (channels-last copies) and bf16 with NCHW copies, each pass the
# fastest of 5. Their sums go in the summary; the per-layer tables in bench.log.
conv_bin="$BUILD/bin/bench_conv"
if [ "${GPU_CHECK_CONV_BENCH:-1}" = 1 ] && [ $build_ok = 1 ] && [ -x "$conv_bin" ]; then
    sums=""
    for variant in fp32 tf32 bf16 bf16-nchw; do
        layout=nhwc
        [ "$variant" = bf16-nchw ] && layout=nchw
        before=$(wc -l <"$LOGS/bench.log")
        run "conv $variant" 60 "$LOGS/bench.log" env SUPCON_CUDA_BF16_LAYOUT=$layout "$conv_bin" --backend cuda \
            --precision "${variant%-nchw}" --repeat 5
        sum=$(tail -n +$((before + 1)) "$LOGS/bench.log" | grep '^sum of the shapes above' | awk '{print $6 "/" $7 "/" $8}')
        sums+="$variant ${sum:-none} "
    done
    note "bench conv" "info" "resnet18 shapes, n 512, ms fwd/data/filter: $sums"
fi

# ---- 9. The other tests (CI runs them too) ----------------------------------------------------
if [ $build_ok = 1 ] && [ "${GPU_CHECK_CPU_TESTS:-1}" = 1 ]; then
    run ctest-rest 150 "$LOGS/ctest-rest.log" ctest --test-dir "$BUILD" --output-on-failure -LE gpu -j8 --timeout 140
    rc_rest=$?
    rest_line=$(grep -E '% tests passed' "$LOGS/ctest-rest.log" | tail -1)
    failed_names=$(sed -n '/The following tests FAILED/,/^$/p' "$LOGS/ctest-rest.log" | grep -E '^\s+[0-9]+ - ' |
        awk '{print $3}' | sort -u | tr '\n' ' ')
    note "tests other" "$([ $rc_rest = 0 ] && echo ok || echo FAIL)" "${rest_line:-exit $rc_rest}${failed_names:+; failed: $failed_names}"
elif [ $build_ok = 1 ]; then
    note "tests other" "info" "not run (GPU_CHECK_CPU_TESTS=0)"
fi

# ---- 10. Tables -----------------------------------------------------------------------------
if [ -s "$LOGS/bench.jsonl" ]; then
    table=$(timeout 30 python3 tools/gpu_check_tables.py "$LOGS/bench.jsonl" 2>&1)
    while IFS= read -r line; do summary+=("  $line"); done <<<"$table"
fi

# ---- Exit status: build and tests decide; benchmarks never do --------------------------------
if printf '%s\n' "${summary[@]}" | grep -qE '^(build|tests[a-z ]*|module|deps) +(FAIL|SKIP)'; then
    exit 1
fi
exit 0
