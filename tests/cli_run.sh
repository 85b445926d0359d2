#!/bin/sh
# cli_run.sh — `herd run`, `herd tokenize`, `herd logits`, `herd info` on the
# tiny llama: the greedy continuation is llama.cpp's (ref/llama-f32.json), the
# logits file has the right size, info names the architecture.
set -u
HERD=$1
M=../shared/models/tiny/llama-f32.gguf
REF=../shared/models/tiny/ref/llama-f32.json
[ -f "$M" ] || { echo "skip: $M missing"; exit 0; }
fail=0
check() { if [ "$1" != "$2" ]; then echo "FAIL: $3: got [$1] want [$2]"; fail=1; fi; }
prompt=$(sed -n 's/^ "prompt": "\(.*\)",$/\1/p' "$REF")
want_text=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["greedy16_text"])' "$REF")
got=$("$HERD" run -m "$M" -p "$prompt" -n 16 --temp 0 --no-display-prompt 2>/dev/null)
check "$got" "$want_text" "greedy continuation"
got=$("$HERD" run -m "$M" -p "$prompt" -n 16 --temp 0 2>/dev/null)
check "$got" "$prompt$want_text" "prompt + continuation"
want_ids=$(python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["ids"])))' "$REF")
got=$("$HERD" tokenize -m "$M" -p "$prompt")
check "$got" "$want_ids" "tokenize"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$HERD" logits -m "$M" --ids "$want_ids" --out "$tmp/l.f32" 2>/dev/null
check "$(wc -c <"$tmp/l.f32" | tr -d ' ')" $((25 * 32000 * 4)) "logits size"
cmp -s "$tmp/l.f32" "$tmp/l.f32" || fail=1
"$HERD" info "$M" >"$tmp/info" 2>&1
grep -q "^architecture *llama" "$tmp/info" || { echo "FAIL: info"; cat "$tmp/info"; fail=1; }
grep -q "^kv heads *2 (GQA)" "$tmp/info" || { echo "FAIL: info kv heads"; fail=1; }
# Sampling with a seed is reproducible; different seeds differ.
a=$("$HERD" run -m "$M" -p "$prompt" -n 12 --temp 1.0 --seed 7 2>/dev/null)
b=$("$HERD" run -m "$M" -p "$prompt" -n 12 --temp 1.0 --seed 7 2>/dev/null)
c=$("$HERD" run -m "$M" -p "$prompt" -n 12 --temp 1.0 --seed 8 2>/dev/null)
check "$a" "$b" "same seed"
[ "$a" != "$c" ] || { echo "FAIL: different seeds gave the same text"; fail=1; }
# Context too small for the prompt: one error line, non-zero exit.
"$HERD" run -m "$M" -p "$prompt" -c 8 -n 4 >/dev/null 2>"$tmp/err" && { echo "FAIL: -c 8 accepted"; fail=1; }
grep -q "^herd: prompt has 25 tokens, more than the context (8)$" "$tmp/err" || { echo "FAIL: context error"; cat "$tmp/err"; fail=1; }
exit $fail
