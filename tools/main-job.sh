#!/usr/bin/env bash
# The README's main command: on a Debian 12 machine, install the packages (tools/deps.sh),
# build the `supcon` tool (Release), pre-train a small ResNet-18 with SupCon on Fashion-MNIST
# (the dataset-fashion-mnist package), evaluate it linearly and print the test accuracy, then
# picture the test features with t-SNE (a PNG) and score them by kNN accuracy.
# Sized to take about 10 minutes on 2 CPU cores; see docs/programs.md for what it prints.
#   bash tools/main-job.sh [OUT_DIR]        # default OUT_DIR: main-job/ in the build folder
# Environment: BUILD_DIR (default build/), JOBS (build parallelism, default every core),
# DEVICE (auto|cpu|cuda, default auto), EXTRA_PRETRAIN / EXTRA_LINEAR (more flags for each step),
# NO_BUILD=1 (no package install or build: use the `supcon` already in BUILD_DIR, as
# tools/gpu-check.sh does on a machine without a package registry), DATA_FOLDER (where the
# Fashion-MNIST files are, default the package's folder).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
[[ $build == /* ]] || build=$root/$build
out=${1:-$build/main-job}
jobs=${JOBS:-$(nproc)}
device=${DEVICE:-auto}
t0=$SECONDS

supcon=$build/bin/supcon
if [[ ${NO_BUILD:-0} != 1 ]]; then
    bash "$root/tools/deps.sh"
    if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
        export PATH=/usr/local/cuda/bin:$PATH
    fi
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" --target supcon_cli --parallel "$jobs" >/dev/null
elif [[ ! -x $supcon ]]; then
    echo "main-job: NO_BUILD=1 but there is no $supcon" >&2
    exit 1
fi
t_build=$((SECONDS - t0))
if [[ ${NO_BUILD:-0} == 1 ]]; then
    echo "main-job: using $supcon as built"
else
    echo "main-job: built $supcon in ${t_build}s"
fi

# One fixed configuration (docs/programs.md): ResNet-18 at width 8 (64-d features, 0.7 M
# parameters), 28x28 grey images as the data set gives them, batch 256 (512 views),
# SupCon at temperature 0.1, 1 epoch of pre-training at lr 0.1, then a linear classifier
# for 2 epochs at lr 0.1.
rm -rf "$out"
mkdir -p "$out"
data=()
[[ -n ${DATA_FOLDER:-} ]] && data=(--data_folder "$DATA_FOLDER")
common=(--dataset fashion-mnist "${data[@]}" --model resnet18 --width 8 --size 28 --batch_size 256
        --num_workers 2 --device "$device" --seed 0 --print_freq 20)

t1=$SECONDS
# shellcheck disable=SC2086
"$supcon" pretrain "${common[@]}" --method SupCon --temp 0.1 --learning_rate 0.1 --epochs 1 \
    --save_folder "$out/pretrain" ${EXTRA_PRETRAIN:-} | tee "$out/pretrain.log"
t_pre=$((SECONDS - t1))

t2=$SECONDS
# shellcheck disable=SC2086
"$supcon" linear "${common[@]}" --ckpt "$out/pretrain/last.safetensors" --learning_rate 0.1 --epochs 2 \
    --save_folder "$out/linear" ${EXTRA_LINEAR:-} | tee "$out/linear.log"
t_lin=$((SECONDS - t2))

t3=$SECONDS
"$supcon" tsne --dataset fashion-mnist "${data[@]}" --ckpt "$out/pretrain/last.safetensors" --num_workers 2 \
    --device "$device" --seed 0 --out "$out/tsne_test" | tee "$out/tsne.log"
t_tsne=$((SECONDS - t3))

acc=$(sed -n 's/^best accuracy: //p' "$out/linear.log" | tail -n 1)
last_val=$(grep '^Val:' "$out/linear.log" | tail -n 1 | awk '{print $4}')
pre_rate=$(grep '^epoch ' "$out/pretrain.log" | tail -n 1 | sed -n 's/.*, \([0-9]*\) img\/s.*/\1/p')
echo
knn=$(sed -n 's/^kNN accuracy (k 20, cosine, votes from the training split): \([0-9.]*\)%.*/\1/p' "$out/tsne.log")
echo "main-job: SupCon pre-training ${t_pre}s (${pre_rate} images/s through the encoder), linear evaluation ${t_lin}s, t-SNE ${t_tsne}s, build ${t_build}s, total $((SECONDS - t0))s"
echo "main-job: checkpoints and logs in $out"
echo "main-job: t-SNE picture of the 10 000 test images' features: $out/tsne_test.png (kNN accuracy ${knn}%)"
echo "main-job: Fashion-MNIST test accuracy (linear evaluation, final epoch): ${last_val}%"
echo "test accuracy: ${acc}"
