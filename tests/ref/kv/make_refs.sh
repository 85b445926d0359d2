#!/bin/sh
# make_refs.sh — llama.cpp's references for tests/test_kv_quant.c.
#
# Builds make_refs.c against the oracle's libllama (installed by
# ../shared/oracle/setup into ~/.cache/herd-oracle, the way that script builds
# the oracle) and writes, for ../shared/models/tiny/ladder-f32.gguf (head
# size 64, 4 heads over 2 KV heads) and a fixed 100-token prompt (BOS then
# 99 random ids of its 1024-token vocabulary), the logits at every position
# with each pair of cache types below, decoded in one batch of 100:
#   ladder-f32-K-V.logits.f32   float32 [100][1024]
# plus ids.txt, the prompt. llama.cpp takes its vector flash-attention path
# for every quantized or BF16 cache whatever the batch size.
#
# Run from the project root: sh tests/ref/kv/make_refs.sh (a few seconds).
set -eu
ORACLE=${ORACLE:-../shared/oracle/oracle}
home=${ORACLE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/herd-oracle}
lib=$home/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
OUT=tests/ref/kv
MODEL=../shared/models/tiny/ladder-f32.gguf
TMP=$(mktemp -d /tmp/herd-kv-refs.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

"$(dirname "$ORACLE")/setup" # installs the libraries and headers once
cc -O2 -o "$TMP/make_refs" "$OUT/make_refs.c" -I"$home/include" -I"$home/ggml/include" \
    -L"$lib" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -lm \
    -Wl,-rpath,"$lib"

IDS=$(python3 -c "import random; random.seed(17); print(' '.join(['1'] + [str(random.randrange(3, 1024)) for _ in range(99)]))")
echo "$IDS" >"$OUT/ids.txt"
for pair in q8_0:q8_0 q4_0:q4_0 bf16:bf16 q8_0:f16 f16:q4_0; do
    k=${pair%:*} v=${pair#*:}
    ORACLE_LIBDIR=$lib "$TMP/make_refs" "$MODEL" "$k" "$v" 100 \
        "$OUT/ladder-f32-$k-$v.logits.f32" "$IDS"
    echo "ladder-f32 K $k V $v: $(wc -c <"$OUT/ladder-f32-$k-$v.logits.f32") bytes"
done
