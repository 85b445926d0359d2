#!/bin/sh
# cli_synth_quick.sh — `herd synth --quick`: the same file as without it when
# no tensor has more rows than the pool (1,024), and a file of a real shape with
# the right size that loads and runs when tensors are larger (its rows repeat).
set -u
. tests/lib.sh
HERD=$1
V=../shared/vocab/ggml-vocab-llama-spm.gguf
need_shared "$V"

"$HERD" synth --arch llama --shape tiny --type q4_k_m -o "$TMP/a.gguf" 2>/dev/null || { echo "FAIL: synth"; exit 1; }
"$HERD" synth --arch llama --shape tiny --type q4_k_m -o "$TMP/b.gguf" --quick 2>/dev/null ||
    { echo "FAIL: synth --quick"; exit 1; }
cmp -s "$TMP/a.gguf" "$TMP/b.gguf" || { echo "FAIL: tiny --quick differs from tiny"; failed=1; }

# TinyLlama's shape (2048 × 5632 products, 32000-token embeddings): past the pool.
"$HERD" synth --shape tinyllama-1.1b --type q4_0 -o "$TMP/t.gguf" --quick 2>"$TMP/err" ||
    { echo "FAIL: synth --quick tinyllama: $(cat "$TMP/err")"; exit 1; }
size=$(stat -c %s "$TMP/t.gguf")
# 1,100,048,384 parameters at Q4_0 (output.weight Q6_K) as llama-quantize lays them out.
[ "$size" -gt 600000000 ] && [ "$size" -lt 700000000 ] || { echo "FAIL: size $size"; failed=1; }
"$HERD" run -m "$TMP/t.gguf" -p "Hello" -n 2 -t 2 >"$TMP/out" 2>"$TMP/err" ||
    { echo "FAIL: run on the quick file: $(cat "$TMP/err")"; failed=1; }
finish
