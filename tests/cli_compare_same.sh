#!/bin/sh
# cli_compare_same.sh — `herd compare` of two copies of one file: the same
# model must measure the same. In either order, their pp and tg speeds
# (medians) may not differ by more than the sum of their spreads (standard
# deviations). Before the runs were interleaved across the models, the model
# measured second was measured in another state of the machine than the
# first (TinyLlama Q4_0: tg 66.5 ± 1.1 against 54.3 ± 2.5 t/s for two copies).
# Then, on the idle 2-core VM, each model's process stayed on its own core and
# the two cores differ (one thread: 54,000 against 40,000 t/s in either order):
# the measuring processes now share the same CPUs (tools/compare_proc.c).
#
# The tiny ladder model keeps it short (a second); 15 runs of a 256-token
# prompt and 64 decodes (milliseconds each) on one thread keep it stable on
# a busy machine.
set -u
HERD=$1
case $HERD in /*) ;; *) HERD=$(pwd)/$HERD ;; esac
T=../shared/models/tiny
. tests/lib.sh
need_shared "$T/ladder-q4_0.gguf"
need_tool python3
fail=0
bad() { echo "FAIL: $*"; fail=1; }

cp "$T/ladder-q4_0.gguf" "$TMP/a.gguf"
cp "$T/ladder-q4_0.gguf" "$TMP/b.gguf"
for order in "a b" "b a"; do
    set -- $order
    "$HERD" compare "$TMP/$1.gguf" "$TMP/$2.gguf" -p 256 -n 64 -r 15 -t 1 --json \
        >"$TMP/$1$2.json" 2>"$TMP/$1$2.err" || { bad "compare $order failed"; cat "$TMP/$1$2.err"; continue; }
    python3 - "$TMP/$1$2.json" "$order" <<'EOF' || fail=1
import json, sys
doc = json.load(open(sys.argv[1]))
m = doc["models"]
ok = doc["speed"]["interleaved"] is True and len(m) == 2
if not ok:
    print("FAIL: %s: the runs were not interleaved: %s" % (sys.argv[2], doc["speed"]))
for test in ("pp", "tg"):
    (x, y) = (m[0][test], m[1][test])
    if not all(isinstance(v, (int, float)) and v > 0 for v in (x["tokens_per_s"], y["tokens_per_s"])):
        print("FAIL: %s %s: no speed" % (sys.argv[2], test)); ok = False; continue
    d, s = abs(x["tokens_per_s"] - y["tokens_per_s"]), x["sd"] + y["sd"]
    print("%s %s: %.1f ± %.1f vs %.1f ± %.1f t/s: differ by %.1f, spreads %.1f" % (
        sys.argv[2], test, x["tokens_per_s"], x["sd"], y["tokens_per_s"], y["sd"], d, s))
    if d > s:
        print("FAIL: %s: two copies of one file differ by more than their spreads" % test); ok = False
sys.exit(0 if ok else 1)
EOF
done
finish $fail
