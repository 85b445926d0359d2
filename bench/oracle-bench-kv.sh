#!/bin/sh
# oracle-bench-kv.sh — build bench/oracle-bench-kv.c (the oracle's bench with
# -ctk/-ctv and --fill-once) against the oracle's own libllama, as
# tests/ref/kv/make_refs.sh builds make_refs.c, and run it with the
# arguments given:
#
#   bench/oracle-bench-kv.sh MODEL [-p 512] [-n 128] [-d 0] [-t 2] [-r 5]
#                            [-ctk T] [-ctv T] [--fill-once] [--json]
#
# The binary goes to build/oracle-bench-kv and is rebuilt when the source is
# newer. Exits 77 when the oracle cannot be installed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ORACLE=${ORACLE:-$here/../../shared/oracle/oracle}
home=${ORACLE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/herd-oracle}
lib=$home/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
bin=${OBK_BIN:-$here/../build/oracle-bench-kv}
"$(dirname "$ORACLE")/setup" >/dev/null || { echo "oracle-bench-kv: no oracle" >&2; exit 77; }
if [ ! -x "$bin" ] || [ "$here/oracle-bench-kv.c" -nt "$bin" ] ||
    [ "$here/../tests/ref/kv/llama_cache_type.h" -nt "$bin" ]; then
    mkdir -p "$(dirname "$bin")"
    cc -O2 -Wall -Wextra -Werror -o "$bin" "$here/oracle-bench-kv.c" -I"$home/include" \
        -I"$home/ggml/include" -L"$lib" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so \
        -l:libggml-base.so -lm -Wl,-rpath,"$lib"
fi
ORACLE_LIBDIR=$lib exec "$bin" "$@"
