#!/usr/bin/env bash
# The `supcon` programs on the CUDA backend against the CPU: pretrain (SupCon, in fp32 and
# bf16) on a slice of Fashion-MNIST, then linear evaluation of the CUDA run's checkpoint on
# both backends. Same seed on both: each step's loss must agree (float32 sums in another
# order: 1e-3 relative; bf16, whose roundings move with that order: 2e-2), and the linear runs
# must reach the same accuracy. CTest runs it with SUPCON_CUDA_MODULE naming the CUDA
# emulation's module (label emu, tests/cuda_emu). Exit 77 = skipped: no Fashion-MNIST.
#   bash tests/test_programs_cuda.sh PATH/TO/supcon
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/programs_setup.sh" "$@"
failures=0

common=(--dataset fashion-mnist --model resnet18 --width 8 --batch_size 32 --epochs 1 --subset 128
        --num_workers 2 --size 28 --print_freq 1 --seed 5)

# the losses a run printed, one per line
losses() { sed -n 's/^Train: .*\tloss \([0-9.]*\) .*/\1/p' "$1"; }

for precision in fp32 bf16; do
    for device in cpu cuda; do
        if ! "$supcon" pretrain "${common[@]}" --device $device --precision $precision \
            --save_folder "pre-$device-$precision" > "pre-$device-$precision.log" 2>&1; then
            echo "FAIL pretrain --device $device --precision $precision:"
            tail -5 "pre-$device-$precision.log"
            failures=$((failures + 1))
        fi
    done
    bound=$([[ $precision == fp32 ]] && echo 1e-3 || echo 2e-2)
    if paste <(losses "pre-cpu-$precision.log") <(losses "pre-cuda-$precision.log") |
        awk -v b="$bound" 'NF != 2 { bad = 1 } NF == 2 { n++; e = ($2 - $1) / $1; if (e < 0) e = -e;
            printf "  step %d: loss cpu %s cuda %s (rel %.1e)\n", n, $1, $2, e; if (e > b) bad = 1 }
            END { exit bad || n != 4 }'; then
        echo "ok   pretrain $precision: the CUDA steps' losses are the CPU's within $bound"
    else
        echo "FAIL pretrain $precision: the losses differ beyond $bound (or a run printed too few)"
        failures=$((failures + 1))
    fi
done

ckpt=pre-cuda-fp32/last.safetensors
for device in cpu cuda; do
    "$supcon" linear "${common[@]}" --device $device --ckpt "$ckpt" --save_folder "lin-$device" \
        > "lin-$device.log" 2>&1 || { echo "FAIL linear --device $device"; tail -5 "lin-$device.log"; failures=$((failures + 1)); }
done
acc_cpu=$(sed -n 's/^best accuracy: //p' lin-cpu.log)
acc_cuda=$(sed -n 's/^best accuracy: //p' lin-cuda.log)
if [[ -n $acc_cpu && $acc_cpu == "$acc_cuda" ]]; then
    echo "ok   linear on the CUDA run's checkpoint: $acc_cuda % on both backends"
else
    echo "FAIL linear: accuracy cpu '${acc_cpu}' cuda '${acc_cuda}'"
    failures=$((failures + 1))
fi
echo "programs on cuda: $failures failure(s)"
[[ $failures -eq 0 ]]
