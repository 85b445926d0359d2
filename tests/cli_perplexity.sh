#!/bin/sh
# cli_perplexity.sh — `herd perplexity` gives llama.cpp's figure: on the tiny
# models (text ../shared/seed/landscape.txt, -c 128) within 1e-5 relative, on
# the shipped King James models (held-out KJV text, -c 256) within 5e-4, the
# bounds README states. The llama.cpp figures were recorded with
# `../shared/oracle/oracle perplexity MODEL TEXT -c CTX` on the same files;
# with HERD_ORACLE=1 the oracle recomputes them.
set -u
HERD=$1
T=../shared/models/tiny
TEXT=../shared/seed/landscape.txt
K=tests/data/kjv-heldout-20k.txt
. tests/lib.sh
fail=0
check() { # model llama.cpp-ppl bound [text ctx]
  model=$1; case $model in */*) ;; *) model=$T/$1.gguf ;; esac
  want=$2 bound=$3 text=${4:-$TEXT} ctx=${5:-128}
  got=$("$HERD" perplexity -m "$model" -f "$text" -c "$ctx" 2>/dev/null | sed -n 's/^Final estimate: PPL = \([0-9.]*\) .*/\1/p')
  if [ "${HERD_ORACLE:-0}" = 1 ] && o=$(../shared/oracle/oracle perplexity "$model" "$text" -c "$ctx" 2>/dev/null); then
    want=$(echo "$o" | sed -n 's/^Final estimate: PPL = \([0-9.]*\) .*/\1/p')
  fi
  if [ -z "$got" ] || ! awk -v g="$got" -v w="$want" -v b="$bound" 'BEGIN { d = (g - w) / w; exit !(d <= b && d >= -b) }'; then
    echo "FAIL: $1: herd $got, llama.cpp $want (bound $bound)"; fail=1
  else
    echo "ok: $1: herd $got, llama.cpp $want"
  fi
}
# herd's own trained models on held-out King James text (tools/train).
check models/kjv-llama-q8_0.gguf 34.5072 5e-4 $K 256
check models/kjv-stablelm-q8_0.gguf 35.2115 5e-4 $K 256
check models/kjv-phi2-q8_0.gguf 38.3784 5e-4 $K 256
[ $fail = 0 ] || exit 1 # before a skip for lack of ../shared could hide it
need_shared "$TEXT" "$T"
check llama-f32 33915.0208 1e-5
check ladder-f32 1044.2015 1e-5
check ladder-q4_0 1044.8944 1e-5
check mpt-f32 529.5195 1e-5
check falcon7b-f32 538.2938 1e-5
check phi2-f32 530.6393 1e-5
check gptneox-f32 516.7484 1e-5
check stablelm-f32 525.7483 1e-5
# The progress line and errors.
"$HERD" perplexity -m "$T/ladder-f32.gguf" -f "$TEXT" -c 128 2>/dev/null | head -1 | grep -q '^\[1\][0-9.]*,\[2\]' || { echo "FAIL: progress line"; fail=1; }
"$HERD" perplexity -m "$T/ladder-f32.gguf" -f /nonexistent -c 128 >/dev/null 2>&1 && { echo "FAIL: missing file accepted"; fail=1; }
"$HERD" perplexity -m "$T/ladder-f32.gguf" -f "$TEXT" -c 100000 >/dev/null 2>&1 && { echo "FAIL: text shorter than one chunk accepted"; fail=1; }
finish $fail
