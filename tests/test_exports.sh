#!/usr/bin/env bash
# What libsupcon.so shows the dynamic linker: only the public supcon_* API, the versioned
# soname, and no CUDA library among its dependencies; the CUDA module, when built, shows only
# its entry point. Run by ctest (tests/package_tests.cmake); exits non-zero on any failure.
#
# usage: test_exports.sh LIBSUPCON_SO EXPECTED_SONAME PUBLIC_HEADER_DIR [CUDA_MODULE]
set -euo pipefail

lib=$1
soname=$2
headers=$3
module=${4:-}

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }

for tool in nm readelf; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (binutils)"; exit 1; }
done
[[ -f $lib ]] || { echo "FAIL: $lib does not exist"; exit 1; }

# Defined dynamic symbols, without version suffixes (name@@SUPCON_0). Version nodes show up
# as absolute symbols named after the node; they are not functions and are left out.
defined_symbols() {
    nm -D --defined-only "$1" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u
}

# ---- libsupcon.so: exported symbols ------------------------------------------------------
exported=$(defined_symbols "$lib")
declared=$(grep -h -o -E 'SUPCON_API[^(;]*\(' "$headers"/*.h |
           sed -n -E 's/.*[^a-zA-Z0-9_](supcon_[a-z0-9_]+) *\($/\1/p' | sort -u)
[[ -n $declared ]] || fail "no SUPCON_API declarations found under $headers"

not_prefixed=$(grep -v -E '^supcon_' <<<"$exported" || true)
if [[ -n $not_prefixed ]]; then
    fail "libsupcon.so exports symbols outside the supcon_ namespace:"
    sed 's/^/        /' <<<"$not_prefixed"
else
    pass "every exported symbol starts with supcon_ ($(wc -l <<<"$exported") symbols)"
fi

undeclared=$(comm -23 <(grep -E '^supcon_' <<<"$exported" || true) <(echo "$declared"))
if [[ -n $undeclared ]]; then
    fail "libsupcon.so exports supcon_ symbols that no public header declares:"
    sed 's/^/        /' <<<"$undeclared"
else
    pass "every exported symbol is declared in include/supcon/"
fi

missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
if [[ -n $missing ]]; then
    fail "public functions declared but not exported (missing SUPCON_API or definition):"
    sed 's/^/        /' <<<"$missing"
else
    pass "all $(wc -l <<<"$declared") public functions are exported"
fi

# ---- libsupcon.so: soname and dependencies -----------------------------------------------
dyn=$(readelf -d "$lib")
got_soname=$(sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p' <<<"$dyn")
if [[ $got_soname == "$soname" ]]; then
    pass "soname is $soname"
else
    fail "soname is '${got_soname}', expected '$soname'"
fi

needed=$(sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' <<<"$dyn")
echo "      NEEDED: $(tr '\n' ' ' <<<"$needed")"
cuda_re='^lib(cuda|cudart|cublas|cublasLt|cudnn[a-z_]*|nvrtc|nvJitLink|nvidia-ml)\.so'
cuda_needed=$(grep -E "$cuda_re" <<<"$needed" || true)
if [[ -n $cuda_needed ]]; then
    fail "libsupcon.so depends on CUDA libraries: $(tr '\n' ' ' <<<"$cuda_needed")"
else
    pass "no CUDA library among NEEDED"
fi
# The same question asked of everything it loads, transitively.
if command -v ldd >/dev/null; then
    cuda_loaded=$(ldd "$lib" 2>/dev/null | awk '{print $1}' | grep -E "$cuda_re" || true)
    if [[ -n $cuda_loaded ]]; then
        fail "loading libsupcon.so pulls in CUDA libraries: $(tr '\n' ' ' <<<"$cuda_loaded")"
    else
        pass "ldd: no CUDA library loaded with libsupcon.so"
    fi
fi

# ---- The CUDA module -----------------------------------------------------------------------
if [[ -n $module ]]; then
    if [[ ! -f $module ]]; then
        fail "the CUDA module was configured but $module does not exist"
    else
        mod_exported=$(defined_symbols "$module")
        if [[ $mod_exported == "supcon_cuda_backend_entry" ]]; then
            pass "$(basename "$module") exports only supcon_cuda_backend_entry"
        else
            fail "$(basename "$module") must export only supcon_cuda_backend_entry; it exports:"
            head -n 20 <<<"$mod_exported" | sed 's/^/        /'
            n=$(wc -l <<<"$mod_exported")
            ((n <= 20)) || echo "        ... ($n in all)"
        fi
    fi
else
    echo "      (no CUDA module in this build: its checks are skipped)"
fi

if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all export checks passed"
