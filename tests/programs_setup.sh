# Sourced by the `supcon` program tests (test_programs.sh, test_programs_cuda.sh) with the
# test's arguments: $supcon is the tool (an absolute path), the test exits 77 (skipped)
# without Fashion-MNIST, and it runs in a fresh folder removed at exit.
supcon=${1:?usage: $(basename "$0") PATH/TO/supcon}
[[ $supcon == /* ]] || supcon=$PWD/$supcon
[[ -x $supcon ]] || { echo "FAIL: no executable $supcon"; exit 1; }
data=${SUPCON_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
if [[ ! -e $data/train-images-idx3-ubyte.gz && ! -e $data/train-images-idx3-ubyte ]]; then
    echo "skipped: no Fashion-MNIST in $data (Debian package dataset-fashion-mnist)"
    exit 77
fi
work=$(mktemp -d "/tmp/$(basename "$0" .sh)_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
