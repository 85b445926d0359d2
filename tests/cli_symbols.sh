#!/bin/sh
# cli_symbols.sh — libherd exports only names that start with "herd", so a
# program can link it beside ggml (whose GGUF API has gguf_* names) or any
# other library: every global the archive defines is checked with nm.
set -u
HERD=$1
LIB=$(dirname "$HERD")/libherd.a
command -v nm >/dev/null 2>&1 || { echo "skip: nm not installed"; exit 77; }
[ -f "$LIB" ] || { echo "FAIL: $LIB not found"; exit 1; }
# The sanitizers' own instrumentation (__odr_asan.NAME in the ASan build) is
# theirs, not the library's.
bad=$(nm -g --defined-only "$LIB" | awk 'NF == 3 && $3 !~ /^herd/ && $3 !~ /^__(odr_)?asan/ { print $3 }' | sort -u)
n=$(nm -g --defined-only "$LIB" | awk 'NF == 3' | wc -l)
[ "$n" -gt 100 ] || { echo "FAIL: only $n globals in $LIB"; exit 1; }
if [ -n "$bad" ]; then
    echo "FAIL: globals without the herd prefix:"
    echo "$bad" | head -20
    exit 1
fi
echo "ok: $n globals, all herd*"
