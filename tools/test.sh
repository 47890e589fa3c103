#!/usr/bin/env bash
# The test command of the README: install missing Debian packages (tools/deps.sh), configure
# (first time) or refresh, build, run every test.
#   bash tools/test.sh [BUILD_DIR [CMAKE_ARGS...]]
# BUILD_DIR defaults to build/ in the source tree (a relative one is taken from there too);
# CMAKE_ARGS go to the configure step (e.g. -DSUPCON_CUDA=OFF). JOBS sets the parallelism
# (default: every core). Exits with ctest's status; its summary line is the last thing printed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
(($# > 0)) && shift
[[ $build == /* ]] || build=$root/$build
jobs=${JOBS:-$(nproc)}

bash "$root/tools/deps.sh"
# The CUDA toolkit, where a machine has one, is usually not on PATH.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
cmake -S "$root" -B "$build" "$@"
cmake --build "$build" --parallel "$jobs"
exec ctest --test-dir "$build" --output-on-failure --parallel "$jobs"
