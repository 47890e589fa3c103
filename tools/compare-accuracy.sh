#!/usr/bin/env bash
# Issue 6's evidence that the whole pipeline is right: the README's Fashion-MNIST
# configuration run by `supcon` and by the same programs in PyTorch (tools/accuracy_torch.py),
# then one table of final test accuracies. Configurations (CONFIGS, space-separated):
#   supcon   SupCon pre-training, 1 epoch, lr 0.1, temp 0.1, then linear evaluation
#   simclr   the same with --method SimCLR --temp 0.5
#   ce       the cross-entropy baseline, 2 epochs at lr 0.1 (the same images through the encoder)
#   random   linear evaluation of an untrained encoder (the floor)
# Linear evaluation: 2 epochs at lr 0.1. ResNet-18 width 8, 28x28, batch 256, 2 threads.
#   bash tools/compare-accuracy.sh [OUT_DIR]     # default build/compare-accuracy
# Environment: CONFIGS (default "supcon simclr ce random"), SEEDS (default "0"), SIDES
# (libsupcon torch, default both), BUILD_DIR (default build/; `supcon` is built there when
# missing), PYTHON (default /usr/bin/python3, Debian's python3-torch + python3-torchvision),
# SUBSET (first N images of each split, for a quick trial; default all).
# Takes about 35 minutes a side for the four configurations at one seed on 2 cores.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
[[ $build == /* ]] || build=$root/$build
out=${1:-$build/compare-accuracy}
configs=${CONFIGS:-supcon simclr ce random}
seeds=${SEEDS:-0}
sides=${SIDES:-libsupcon torch}
python=${PYTHON:-/usr/bin/python3}
subset=${SUBSET:-0}
supcon=$build/bin/supcon
mkdir -p "$out"

if [[ " $sides " == *" libsupcon "* && ! -x $supcon ]]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" --target supcon_cli --parallel "$(nproc)" >/dev/null
fi
if [[ " $sides " == *" torch "* ]] && ! "$python" -c 'import torch, torchvision' 2>/dev/null; then
    echo "compare-accuracy: $python cannot import torch and torchvision" \
         "(apt-get install python3-torch python3-torchvision)" >&2
    exit 1
fi

common=(--dataset fashion-mnist --model resnet18 --width 8 --size 28 --batch_size 256
        --num_workers 2 --threads 2 --print_freq 50)
((subset > 0)) && common+=(--subset "$subset")

# The final epoch's test top-1 from a log: `Val: * Acc@1 X` (supcon) or `test accuracy: X`.
final_acc() {
    local a
    a=$(sed -n 's/^test accuracy: //p' "$1" | tail -n 1)
    [[ -n $a ]] || a=$(grep '^Val:' "$1" | tail -n 1 | awk '{print $4}')
    printf '%.2f' "${a:-nan}"
}

run_libsupcon() { # config seed dir
    local cfg=$1 seed=$2 d=$3 ckpt
    rm -rf "$d" && mkdir -p "$d"
    case $cfg in
    supcon | simclr)
        local method=SupCon temp=0.1
        [[ $cfg == simclr ]] && method=SimCLR temp=0.5
        "$supcon" pretrain "${common[@]}" --seed "$seed" --method "$method" --temp "$temp" \
            --learning_rate 0.1 --epochs 1 --save_folder "$d/pretrain" >"$d/pretrain.log"
        ckpt=$d/pretrain/last.safetensors ;;
    random) ckpt=random ;;
    ce)
        "$supcon" ce "${common[@]}" --seed "$seed" --learning_rate 0.1 --epochs 2 \
            --save_folder "$d/ce" >"$d/run.log"
        return ;;
    *) echo "compare-accuracy: unknown configuration '$cfg'" >&2; exit 2 ;;
    esac
    "$supcon" linear "${common[@]}" --seed "$seed" --ckpt "$ckpt" --learning_rate 0.1 \
        --epochs 2 --save_folder "$d/linear" >"$d/run.log"
}

run_torch() { # config seed dir
    local cfg=$1 seed=$2 d=$3 args=()
    rm -rf "$d" && mkdir -p "$d"
    case $cfg in
    supcon) args=(--method SupCon --temp 0.1) ;;
    simclr) args=(--method SimCLR --temp 0.5) ;;
    ce) args=(--method CE --epochs 2) ;;
    random) args=(--method random) ;;
    *) echo "compare-accuracy: unknown configuration '$cfg'" >&2; exit 2 ;;
    esac
    "$python" "$root/tools/accuracy_torch.py" "${args[@]}" --seed "$seed" --subset "$subset" \
        --learning_rate 0.1 --linear_epochs 2 --linear_lr 0.1 --print_freq 50 >"$d/run.log"
}

results=$out/results.tsv
: >"$results"
for cfg in $configs; do
    for seed in $seeds; do
        for side in $sides; do
            d=$out/$side-$cfg-seed$seed
            t0=$SECONDS
            echo "compare-accuracy: $side $cfg seed $seed ..." >&2
            "run_${side}" "$cfg" "$seed" "$d"
            printf '%s\t%s\t%s\t%s\t%s\n' "$cfg" "$seed" "$side" "$(final_acc "$d/run.log")" \
                $((SECONDS - t0)) | tee -a "$results" >&2
        done
    done
done

echo "| configuration | seed | libsupcon test top-1 % | PyTorch test top-1 % | libsupcon s | PyTorch s |"
echo "|---|---:|---:|---:|---:|---:|"
for cfg in $configs; do
    for seed in $seeds; do
        awk -F'\t' -v c="$cfg" -v s="$seed" '
            $1 == c && $2 == s { acc[$3] = $4; sec[$3] = $5 }
            END { printf "| %s | %s | %s | %s | %s | %s |\n", c, s,
                  ("libsupcon" in acc) ? acc["libsupcon"] : "-", ("torch" in acc) ? acc["torch"] : "-",
                  ("libsupcon" in sec) ? sec["libsupcon"] : "-", ("torch" in sec) ? sec["torch"] : "-" }' "$results"
    done
done
