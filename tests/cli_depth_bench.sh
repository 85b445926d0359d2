#!/bin/sh
# cli_depth_bench.sh — the depth tools against llama.cpp, a seconds-long
# smoke version of the runs at d4096/d16384 (README, issue 17):
#   bench/oracle-bench-kv.sh (the oracle's bench plus -ctk/-ctv and
#   --fill-once, built against the oracle's libllama) names its tests as the
#   oracle does and reports the cache types; its bad options are one line;
#   bench/compare-llama-cpp -k q8_0 -F runs both engines with a q8_0 cache and
#   the depth filled once, and prints a ratio per test.
# Skipped (77) without ../shared or without the oracle.
set -u
HERD=$1
. tests/lib.sh
L=../shared/models/tiny/ladder-f32.gguf # heads of 64: q8_0 can hold them
need_shared "$L"
[ -x ../shared/oracle/oracle ] || skip "no oracle"
export OBK_BIN="$TMP/oracle-bench-kv"
fail=0

sh bench/oracle-bench-kv.sh "$L" -p 8 -n 4 -d 40 -r 2 -ctk q8_0 -ctv q8_0 --fill-once --json \
    >"$TMP/j" 2>"$TMP/e"
rc=$?
[ $rc = 77 ] && skip "the oracle cannot be installed"
[ $rc = 0 ] || { echo "FAIL: oracle-bench-kv: exit $rc: $(cat "$TMP/e")"; fail=1; }
for want in '"test":"pp8@d40"' '"test":"tg4@d40"' '"type_k":"q8_0"' '"type_v":"q8_0"' '"n_depth":40'; do
    grep -q "$want" "$TMP/j" || { echo "FAIL: no $want in $(cat "$TMP/j")"; fail=1; }
done

bad() { # $1 what stderr says, then the arguments
    what=$1
    shift
    sh bench/oracle-bench-kv.sh "$L" "$@" >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -ne 1 ] || [ "$(wc -l <"$TMP/err")" -ne 1 ] || ! grep -q "$what" "$TMP/err"; then
        echo "FAIL: oracle-bench-kv $*: exit $rc, stderr: $(cat "$TMP/err")"
        fail=1
    fi
}
bad "unknown cache type (accepted: f32, f16, bf16, q8_0, q4_0): q9" -ctk q9
bad "fill-once needs a depth" --fill-once
bad "invalid count for -d" -d x

HERD=$HERD sh bench/compare-llama-cpp -m "$L" -p 8 -n 4 -d 40 -r 1 -k q8_0 -F >"$TMP/c" 2>"$TMP/ce" ||
    { echo "FAIL: compare-llama-cpp -k q8_0 -F: $(cat "$TMP/ce")"; fail=1; }
grep -q "cache: q8_0 (depth filled once)" "$TMP/c" || { echo "FAIL: header: $(cat "$TMP/c")"; fail=1; }
for t in pp8@d40 tg4@d40; do
    awk -v t="$t" '$1 == t && $2 > 0 && $3 > 0 && $4 > 0 {ok = 1} END {exit !ok}' "$TMP/c" ||
        { echo "FAIL: no $t row with both engines: $(cat "$TMP/c")"; fail=1; }
done
HERD=$HERD sh bench/compare-llama-cpp -m "$L" -k q9 >/dev/null 2>"$TMP/err"
[ $? = 2 ] && grep -q "unknown cache type 'q9'" "$TMP/err" ||
    { echo "FAIL: compare-llama-cpp -k q9: $(cat "$TMP/err")"; fail=1; }
HERD=$HERD sh bench/compare-llama-cpp -m "$L" -F >/dev/null 2>"$TMP/err"
[ $? = 2 ] && grep -q "needs a depth" "$TMP/err" || { echo "FAIL: compare-llama-cpp -F: $(cat "$TMP/err")"; fail=1; }
finish $fail
