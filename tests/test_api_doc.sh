#!/usr/bin/env bash
# The API reference keeps up with the headers: every function declared with SUPCON_API in
# include/supcon/*.h is named in docs/api.md, and every supcon_* call that docs/api.md shows
# in a code block is still declared. Run by ctest (tests/package_tests.cmake, label
# "package"); exits non-zero on any failure, listing what is missing.
#
# usage: test_api_doc.sh PUBLIC_HEADER_DIR API_DOC
set -euo pipefail

headers=${1:?usage: test_api_doc.sh PUBLIC_HEADER_DIR API_DOC}
doc=${2:?usage: test_api_doc.sh PUBLIC_HEADER_DIR API_DOC}

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }

[[ -d $headers ]] || { echo "FAIL: $headers is not a folder"; exit 1; }
[[ -f $doc ]] || { echo "FAIL: $doc does not exist"; exit 1; }
shopt -s nullglob
header_files=("$headers"/*.h)
shopt -u nullglob
((${#header_files[@]})) || { echo "FAIL: no headers under $headers"; exit 1; }

# C source without comments, string and character literals or preprocessor lines, as one
# line per file: a declaration may then span lines, and text in a comment ("see
# SUPCON_API ...") or the #define of SUPCON_API itself cannot pass for a declaration.
strip_c() {
    awk '
    BEGIN { state = 0 }   # 0 code, 1 block comment, 2 string, 3 char literal
    {
        line = $0
        if (state == 0 && line ~ /^[ \t]*#/) {
            # a preprocessor line (continuations included): skipped whole
            while (line ~ /\\$/ && (getline nxt) > 0) line = nxt
            print ""
            next
        }
        out = ""
        n = length(line)
        for (i = 1; i <= n; i++) {
            c = substr(line, i, 1)
            d = substr(line, i, 2)
            if (state == 1) {
                if (d == "*/") { state = 0; i++; out = out " " }
            } else if (state == 2 || state == 3) {
                if (c == "\\") i++
                else if ((state == 2 && c == "\"") || (state == 3 && c == "'\''")) state = 0
            } else if (d == "/*") {
                state = 1; i++
            } else if (d == "//") {
                break
            } else if (c == "\"") {
                state = 2; out = out " "
            } else if (c == "'\''") {
                state = 3; out = out " "
            } else {
                out = out c
            }
        }
        print out
    }' "$1" | tr '\n' ' '
}

# Names of the functions a header declares with SUPCON_API: the last identifier before the
# first "(" after the macro (return types, pointers and qualifiers come in between).
declared=$(
    for h in "${header_files[@]}"; do
        strip_c "$h" | grep -o -E 'SUPCON_API[^;(){}]*\(' || true
    done | sed -n -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\($/\1/p' | sort -u
)
if [[ -z $declared ]]; then
    fail "no SUPCON_API function declarations found under $headers"
    exit 1
fi
count=$(wc -l <<<"$declared")

not_prefixed=$(grep -v -E '^supcon_' <<<"$declared" || true)
if [[ -n $not_prefixed ]]; then
    fail "SUPCON_API declarations this script could not read as supcon_* functions:"
    sed 's/^/        /' <<<"$not_prefixed"
fi

# ---- every declared function is named in the reference ---------------------------------
# Whole words only: supcon_model_param is not covered by supcon_model_param_count.
doc_words=$(grep -o -E '[A-Za-z0-9_]+' "$doc" | grep -E '^supcon_' | sort -u || true)
undocumented=$(comm -23 <(grep -E '^supcon_' <<<"$declared" || true) <(echo "$doc_words"))
if [[ -n $undocumented ]]; then
    fail "$(wc -l <<<"$undocumented") SUPCON_API function(s) not mentioned in $(basename "$doc"):"
    for f in $undocumented; do
        where=$(grep -l -E "SUPCON_API[^;]*[^A-Za-z0-9_]$f[[:space:]]*\(" "${header_files[@]}" 2>/dev/null |
                head -n 1 || true)
        echo "        $f${where:+  ($(basename "$where"))}"
    done
else
    pass "all $count SUPCON_API functions are mentioned in $(basename "$doc")"
fi

# ---- nothing documented as a call that no header declares -------------------------------
# Inside ``` blocks, "supcon_name(" is a declaration or a call: it must still exist. (Types
# and macros are never followed by "(" there; function-pointer typedefs are, after a ")".)
shown=$(awk '/^[ \t]*```/ { code = !code; next } code { print }' "$doc" |
        grep -o -E '(^|[^A-Za-z0-9_*])supcon_[a-z0-9_]+[[:space:]]*\(' |
        sed -E 's/^[^s]*(supcon_[a-z0-9_]+).*/\1/' | sort -u || true)
stale=$(comm -23 <(echo "$shown" | sed '/^$/d') <(echo "$declared"))
if [[ -n $stale ]]; then
    fail "$(basename "$doc") shows calls to functions that no public header declares:"
    sed 's/^/        /' <<<"$stale"
else
    pass "every supcon_* call in $(basename "$doc")'s code blocks is declared"
fi

if ((failures)); then
    echo "$failures check(s) failed: update $doc to match the headers"
    exit 1
fi
echo "all API reference checks passed"
