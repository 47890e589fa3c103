#!/usr/bin/env bash
# Installs the Debian packages libsupcon needs to build and test, when any is missing.
#   bash tools/deps.sh          # as root: apt-get install what is missing; else says what to run
# One list for the README's commands and for CI, so they cannot drift apart.
set -euo pipefail

packages=(build-essential cmake pkg-config libopenblas-dev libcmocka-dev libpng-dev
          libjpeg62-turbo-dev zlib1g-dev dataset-fashion-mnist)
[[ ${SUPCON_DEPS_EXTRA:-} ]] && read -r -a extra <<<"$SUPCON_DEPS_EXTRA" && packages+=("${extra[@]}")

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "tools/deps.sh: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
elif command -v sudo >/dev/null; then
    sudo apt-get update -q
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "tools/deps.sh: not root and no sudo; run as root: apt-get install ${missing[*]}" >&2
    exit 1
fi
