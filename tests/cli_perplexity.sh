#!/bin/sh
# cli_perplexity.sh — `herd perplexity` gives llama.cpp's figure (within
# 0.1%) on the tiny models, text ../shared/seed/landscape.txt, -c 128. The
# llama.cpp figures were computed with ../shared/oracle/oracle perplexity on
# the same files; with HERD_ORACLE=1 they are recomputed by the oracle.
set -u
HERD=$1
T=../shared/models/tiny
TEXT=../shared/seed/landscape.txt
[ -f "$TEXT" ] || { echo "skip: $TEXT missing"; exit 0; }
fail=0
check() { # model llama.cpp-ppl [text ctx]
  model=$1; case $model in */*) ;; *) model=$T/$1.gguf ;; esac
  text=${3:-$TEXT} ctx=${4:-128}
  got=$("$HERD" perplexity -m "$model" -f "$text" -c "$ctx" 2>/dev/null | sed -n 's/^Final estimate: PPL = \([0-9.]*\) .*/\1/p')
  want=$2
  if [ "${HERD_ORACLE:-0}" = 1 ] && o=$(../shared/oracle/oracle perplexity "$model" "$text" -c "$ctx" 2>/dev/null); then
    want=$(echo "$o" | sed -n 's/^Final estimate: PPL = \([0-9.]*\) .*/\1/p')
  fi
  if [ -z "$got" ] || ! awk -v g="$got" -v w="$want" 'BEGIN { d = (g - w) / w; exit !(d < 0.001 && d > -0.001) }'; then
    echo "FAIL: $1: herd $got, llama.cpp $want"; fail=1
  else
    echo "ok: $1: herd $got, llama.cpp $want"
  fi
}
check llama-f32 33915.0208
check ladder-f32 1044.2015
check ladder-q4_0 1044.8944
check mpt-f32 529.5195
check falcon7b-f32 538.2938
check phi2-f32 530.6393
check gptneox-f32 516.7484
check stablelm-f32 525.7483
# herd's own trained models on held-out King James text (tools/train).
K=tests/data/kjv-heldout-20k.txt
check models/kjv-llama-q8_0.gguf 34.5106 $K 256
check models/kjv-stablelm-q8_0.gguf 35.2108 $K 256
check models/kjv-phi2-q8_0.gguf 38.3736 $K 256
# The progress line and errors.
"$HERD" perplexity -m "$T/ladder-f32.gguf" -f "$TEXT" -c 128 2>/dev/null | head -1 | grep -q '^\[1\][0-9.]*,\[2\]' || { echo "FAIL: progress line"; fail=1; }
"$HERD" perplexity -m "$T/ladder-f32.gguf" -f /nonexistent -c 128 >/dev/null 2>&1 && { echo "FAIL: missing file accepted"; fail=1; }
"$HERD" perplexity -m "$T/ladder-f32.gguf" -f "$TEXT" -c 100000 >/dev/null 2>&1 && { echo "FAIL: text shorter than one chunk accepted"; fail=1; }
exit $fail
