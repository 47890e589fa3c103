#!/usr/bin/env bash
# The data pipeline benchmark: libsupcon's loader (bench_data) beside the reference's
# torchvision pipeline (torchvision_pipeline.py, needs /usr/bin/python3 with torch and
# torchvision: apt-get install python3-torchvision), on the same machine and images.
#
# usage: bench/data/run_data_bench.sh BUILD_DIR [IMAGES] [WORKERS]
#        (defaults: 20000 images, workers 0,1,2)
# env:   TRAIN_IMAGES_PER_S  the training step's consumption rate (images/s) from the network
#                            benchmark, printed alongside when given
set -euo pipefail
build=${1:?usage: run_data_bench.sh BUILD_DIR [IMAGES] [WORKERS]}
images=${2:-20000}
workers=${3:-0,1,2}
here=$(cd "$(dirname "$0")" && pwd)

echo "== libsupcon ($(nproc) cores)"
"$build/bin/bench_data" --images "$images" --epochs 2 --workers "$workers"
echo
if /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null; then
    echo "== torchvision"
    /usr/bin/python3 "$here/torchvision_pipeline.py" --images "$images" --epochs 2 \
        --workers "$workers"
else
    echo "== torchvision: skipped (torch/torchvision not importable by /usr/bin/python3)"
fi
if [[ -n ${TRAIN_IMAGES_PER_S:-} ]]; then
    echo
    echo "== training step consumes ${TRAIN_IMAGES_PER_S} images/s (network benchmark)"
fi
