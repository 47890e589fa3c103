#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds examples/consumer against what was
# installed, the way a user would: with find_package(supcon) (shared and static) and with
# pkg-config (shared and static), then runs each program. Exits non-zero on any failure.
# Run by ctest (tests/package_tests.cmake).
#
# usage: test_install.sh BUILD_DIR SOURCE_DIR LIBDIR C_COMPILER VERSION [SANITIZE]
#   LIBDIR: CMAKE_INSTALL_LIBDIR (relative to the prefix); SANITIZE: the build's
#   SUPCON_SANITIZE, passed on to the consumer (an instrumented library needs an
#   instrumented program).
set -euo pipefail

build=$1
src=$2
libdir=$3
cc=$4
version=$5
sanitize=${6:-}
cmake=${CMAKE_COMMAND:-cmake}

work=$(mktemp -d "${TMPDIR:-/tmp}/supcon-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
step() { echo; echo "== $*"; }
die() { echo "FAIL: $*"; exit 1; }

san_flags=()
if [[ -n $sanitize ]]; then
    san_flags=("-fsanitize=$sanitize" -fno-omit-frame-pointer)
fi

step "cmake --install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" ||
    { cat "$work/install.log"; die "cmake --install failed"; }

lib=$prefix/$libdir
headers=()
for h in "$src"/include/supcon/*.h; do headers+=("include/supcon/${h##*/}"); done
for f in "${headers[@]}" "$libdir/libsupcon.so" "$libdir/libsupcon.so.0" \
         "$libdir/libsupcon.so.$version" "$libdir/libsupcon.a" \
         "$libdir/cmake/supcon/supconConfig.cmake" \
         "$libdir/cmake/supcon/supconConfigVersion.cmake" \
         "$libdir/cmake/supcon/supconTargets.cmake" "$libdir/pkgconfig/supcon.pc"; do
    [[ -e $prefix/$f ]] || die "not installed: $f"
done
echo "ok: ${#headers[@]} headers, libsupcon.so{,.0,.$version}, libsupcon.a, CMake package, supcon.pc"

# The core looks for the CUDA module beside itself, so an install must carry it along.
if [[ -e $build/lib/libsupcon_cuda.so ]]; then
    [[ -e $lib/libsupcon_cuda.so ]] || die "libsupcon_cuda.so is built but not installed"
    echo "ok: libsupcon_cuda.so installed beside libsupcon.so"
fi

# Installed libraries must not point back into the build tree.
# (Outputs are captured first: `cmd | grep -q` fails under pipefail when grep exits early.)
paths=$(readelf -d "$lib/libsupcon.so" | grep -E '(RPATH|RUNPATH)' || true)
if [[ -n $paths && $paths == *"$build"* ]]; then
    die "installed libsupcon.so has an RPATH into the build tree"
fi

# Runs a consumer and checks what it printed.
check_run() {
    local what=$1 exe=$2 out
    out=$(LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$exe") ||
        { echo "$out"; die "$what: the program failed"; }
    echo "$out"
    grep -qE "^consumer: OK libsupcon $version backend (cpu|cuda) loss 0\.5514[0-9]*$" \
        <<<"$out" || die "$what: unexpected output"
}

# ---- find_package(supcon CONFIG) ------------------------------------------------------------
for kind in shared static; do
    step "CMake consumer, $kind"
    static=OFF
    [[ $kind == static ]] && static=ON
    "$cmake" -S "$src/examples/consumer" -B "$work/cmake-$kind" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_STATIC=$static \
        -DCMAKE_C_FLAGS="${san_flags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${san_flags[*]}" \
        >"$work/cmake-$kind.log" 2>&1 ||
        { cat "$work/cmake-$kind.log"; die "configuring the CMake consumer ($kind) failed"; }
    "$cmake" --build "$work/cmake-$kind" >>"$work/cmake-$kind.log" 2>&1 ||
        { cat "$work/cmake-$kind.log"; die "building the CMake consumer ($kind) failed"; }
    check_run "CMake consumer ($kind)" "$work/cmake-$kind/consumer"
done
# The shared consumer must really use the installed library, not the build tree's.
resolved=$(LD_LIBRARY_PATH="$lib" ldd "$work/cmake-shared/consumer" | awk '$1 ~ /^libsupcon\.so/ {print $3}')
[[ $resolved == "$lib/"* ]] || die "the CMake consumer loads libsupcon from '$resolved', not $lib"
echo "ok: the CMake consumer loads $resolved"
static_syms=$(nm "$work/cmake-static/consumer")
if grep -q ' T supcon_loss_forward$' <<<"$static_syms"; then
    echo "ok: the static consumer carries libsupcon inside"
else
    die "the static consumer does not contain supcon_loss_forward"
fi

# ---- pkg-config -------------------------------------------------------------------------------
export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
[[ $(pkg-config --modversion supcon) == "$version" ]] || die "pkg-config --modversion supcon"
for kind in shared static; do
    step "pkg-config consumer, $kind"
    if [[ $kind == shared ]]; then
        flags=$(pkg-config --cflags --libs supcon)
    else
        flags="$(pkg-config --cflags supcon) -Wl,-Bstatic $(pkg-config --libs-only-L supcon) -lsupcon -Wl,-Bdynamic"
        flags+=" $(pkg-config --static --libs supcon | sed 's/ -lsupcon\b//')"
    fi
    echo "$cc ${san_flags[*]} consumer.c $flags -lm"
    # shellcheck disable=SC2086 # the flags are meant to split into words
    "$cc" -std=c11 -Wall -Werror "${san_flags[@]}" -o "$work/pc-$kind" \
        "$src/examples/consumer/consumer.c" $flags -lm ||
        die "building with pkg-config ($kind) failed"
    check_run "pkg-config consumer ($kind)" "$work/pc-$kind"
done

echo
echo "all install checks passed"
