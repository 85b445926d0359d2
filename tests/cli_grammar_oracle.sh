#!/bin/sh
# cli_grammar_oracle.sh — llama.cpp's grammars/ folder judged by llama.cpp
# itself: each grammar must parse in herd and in llama.cpp (the oracle's
# libllama, through tests/grammar_oracle/accept.c), and the text `herd run
# --grammar-file` generates with it on the KJV llama must be accepted, token by
# token and as complete, by llama.cpp's grammar sampler. Skipped (77) without
# the oracle's installation or a C compiler.
set -u
HERD=$1
home=${ORACLE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/herd-oracle}
lib=$home/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
G=${HERD_GBNF_DIR:-$home/node_modules/node-llama-cpp/llama/grammars}
V=../shared/vocab/ggml-vocab-gpt-2.gguf  # byte-level BPE: its tokens spell any text exactly
M=models/kjv-llama-q8_0.gguf
for f in "$lib/libllama.v0.5.0.so" "$home/include/llama.h" "$G/json.gbnf" "$V" "$M"; do
  [ -e "$f" ] || { echo "skip: $f missing (run ../shared/oracle/oracle once)"; exit 77; }
done
command -v cc >/dev/null 2>&1 || { echo "skip: no cc"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/accept" tests/grammar_oracle/accept.c -I"$home/include" -I"$home/ggml/include" \
  -L"$lib" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -lm -Wl,-rpath,"$lib" ||
  { echo "skip: cannot build against libllama"; exit 77; }
fail=0 n=0
for g in "$G"/*.gbnf; do
  name=$(basename "$g")
  "$tmp/accept" "$V" "$g" || { echo "FAIL: llama.cpp refuses $name"; fail=1; continue; }
  for seed in 1 2 3; do
    n=$((n + 1))
    if ! "$HERD" run -m "$M" -p "Once" --no-display-prompt -n 120 --temp 1 --seed $seed \
        --grammar-file "$g" >"$tmp/out" 2>"$tmp/err"; then
      echo "FAIL: herd run with $name"; cat "$tmp/err"; fail=1; continue
    fi
    # herd run ends its output with one newline of its own
    head -c -1 "$tmp/out" >"$tmp/text"
    if ! "$tmp/accept" "$V" "$g" "$tmp/text"; then
      echo "FAIL: $name seed $seed: llama.cpp refuses herd's output:"; cat "$tmp/text"; echo; fail=1
    fi
  done
done
echo "grammar oracle: $n outputs of $(ls "$G"/*.gbnf | wc -l) grammars checked by llama.cpp"
exit $fail
