#!/bin/sh
# cli_run.sh — `herd run`, `herd tokenize`, `herd logits`, `herd info` on the
# tiny llama: the greedy continuation is llama.cpp's (ref/llama-f32.json), the
# logits file has the right size, info names the architecture; `herd logits` on
# the shipped models equals llama.cpp's logits at every position
# (tests/data/ref, made by tests/data/ref/make-refs with the oracle).
set -u
HERD=$1
M=../shared/models/tiny/llama-f32.gguf
REF=../shared/models/tiny/ref/llama-f32.json
. tests/lib.sh
need_tool python3
fail=0

# The shipped models against llama.cpp's stored logits: every position within
# 5e-3 (the parity bound of test_parity) and the same top token.
prompt_ref=$(cat tests/data/ref/prompt.txt)
for m in kjv-llama-q8_0 kjv-stablelm-q8_0 kjv-phi2-q8_0; do
    "$HERD" logits -m "models/$m.gguf" -p "$prompt_ref" --out "$TMP/$m.f32" 2>/dev/null ||
        { echo "FAIL: herd logits $m"; fail=1; continue; }
    python3 - "$TMP/$m.f32" "tests/data/ref/$m.f32" "$m" <<'EOF' || fail=1
import array, sys
got, want = array.array("f"), array.array("f")
got.frombytes(open(sys.argv[1], "rb").read())
want.frombytes(open(sys.argv[2], "rb").read())
n_vocab = 2000
if len(got) != len(want) or len(want) % n_vocab:
    print("FAIL: %s: %d logits, llama.cpp %d" % (sys.argv[3], len(got), len(want))); sys.exit(1)
d = max(abs(a - b) for a, b in zip(got, want))
top = lambda v, i: max(range(i * n_vocab, (i + 1) * n_vocab), key=v.__getitem__)
same = all(top(got, i) == top(want, i) for i in range(len(want) // n_vocab))
print("%s %s: max |herd - llama.cpp| = %.2g over %d positions%s" %
      ("ok:" if d <= 5e-3 and same else "FAIL:", sys.argv[3], d, len(want) // n_vocab,
       "" if same else ", top token differs"))
sys.exit(0 if d <= 5e-3 and same else 1)
EOF
done

[ $fail = 0 ] || exit 1 # before a skip for lack of ../shared could hide it
need_shared "$M" "$REF"
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
tmp=$TMP
"$HERD" logits -m "$M" --ids "$want_ids" --out "$tmp/l.f32" 2>/dev/null
check "$(wc -c <"$tmp/l.f32" | tr -d ' ')" $((25 * 32000 * 4)) "logits size"
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
finish $fail
