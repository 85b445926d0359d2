#!/bin/sh
# cli_kv_cache.sh — the KV cache types on the command line (-ctk, -ctv,
# --cache-type-k/-v, --cache-type for both), as llama.cpp spells them:
#   herd run and herd bench decode with a q8_0/q4_0/bf16 cache (test_kv_quant
#   checks the logits against llama.cpp's);
#   herd info and herd recommend size the cache by its type;
#   an unknown type, or one the model's head size cannot use, is one error
#   line naming the value and the accepted ones, exit status 2 (1 for the
#   head size, found when the context is made).
set -u
HERD=$1
. tests/lib.sh
L=../shared/models/tiny/ladder-f32.gguf # heads of 64
S=../shared/models/tiny/llama-f32.gguf  # heads of 16
need_shared "$L" "$S"
fail=0

# One 'herd:' line matching $2, exit status $1; then the command.
bad() {
    want_rc=$1 what=$2
    shift 2
    "$HERD" "$@" >/dev/null 2>"$TMP/err.all"
    rc=$?
    grep -v "^herd: loaded .* in [0-9.]* s$" "$TMP/err.all" >"$TMP/err" # run's progress note
    if [ $rc -ne "$want_rc" ] || [ "$(wc -l <"$TMP/err")" -ne 1 ] || ! grep -q "^herd: .*$what" "$TMP/err"; then
        echo "FAIL: herd $*: exit $rc, stderr: $(cat "$TMP/err")"
        fail=1
    fi
}
acc="accepted: f32, f16, bf16, q8_0, q4_0"
bad 2 "-ctk: unknown cache type 'q5_1' ($acc)" run -m "$L" -ctk q5_1 -p hi -n 1
bad 2 "--cache-type-v: unknown cache type 'f8' ($acc)" run -m "$L" --cache-type-v f8 -p hi -n 1
bad 2 "-ctv: unknown cache type '' ($acc)" info "$L" -ctv ""
bad 2 "recommend: -ctk: unknown cache type 'int8' ($acc)" recommend -ctk int8
bad 1 "cache type q8_0 needs a head size that is a multiple of 32; this model's is 16 (accepted: f32, f16, bf16)" \
    run -m "$S" -ctk q8_0 -p hi -n 1
bad 1 "cache type q4_0 needs a head size .*is 16 (accepted: f32, f16, bf16)" \
    bench -m "$S" -ctv q4_0 -p 8 -n 4 -r 1

# Runs: greedy generation with each type, and a bench with a depth.
for t in q8_0 q4_0 bf16; do
    "$HERD" run -m "$L" --cache-type $t -p "Once upon" -n 4 --temp 0 >"$TMP/run.$t" 2>"$TMP/err" ||
        { echo "FAIL: run --cache-type $t: $(cat "$TMP/err")"; fail=1; }
done
"$HERD" run -m "$L" -ctk q8_0 -ctv f16 -p "Once upon" -n 4 --temp 0 >/dev/null 2>"$TMP/err" ||
    { echo "FAIL: run -ctk q8_0 -ctv f16: $(cat "$TMP/err")"; fail=1; }
"$HERD" bench -m "$L" -ctk q8_0 -ctv q8_0 -p 8 -n 4 -d 64 -r 1 --json >"$TMP/bench" 2>"$TMP/err" &&
    grep -q '"test":"tg4@d64"' "$TMP/bench" ||
    { echo "FAIL: bench with a q8_0 cache: $(cat "$TMP/err" "$TMP/bench")"; fail=1; }

# herd info: ladder's KV rows are 128 values in 2 layers; at -c 4096 that is
# 4 MiB in F16, 2.125 MiB in Q8_0 (34 bytes per 32), 1.125 MiB in Q4_0
# (18 per 32), and 3.0625 MiB for K Q8_0 with V F16.
kv() { sed -n 's/^  KV cache *\([0-9.]*\) MiB$/\1/p' "$TMP/info"; }
check_kv() { # $1 expected MiB, then the cache options
    want=$1
    shift
    "$HERD" info "$L" -c 4096 "$@" >"$TMP/info" 2>"$TMP/err" ||
        { echo "FAIL: info $*: $(cat "$TMP/err")"; fail=1; return; }
    [ "$(kv)" = "$want" ] || { echo "FAIL: info $*: KV cache $(kv) MiB, want $want"; fail=1; }
}
check_kv 4.00
check_kv 2.12 --cache-type q8_0
check_kv 1.12 -ctk q4_0 -ctv q4_0
check_kv 3.06 -ctk q8_0
check_kv 4.00 -ctk bf16 --cache-type-v bf16
"$HERD" info "$L" -c 4096 -ctk q8_0 | grep -q "^memory at -c 4096, -ctk q8_0 -ctv f16:" ||
    { echo "FAIL: info does not name the cache types"; fail=1; }

# herd recommend: a q8_0 cache makes mistral's KV at -c 32768 (window 4096)
# about half of its F16 0.60 GB.
"$HERD" recommend --ram 8G --task long-context --explain >"$TMP/r16" 2>&1 &&
    "$HERD" recommend --ram 8G --task long-context --explain --cache-type q8_0 >"$TMP/r8" 2>&1 ||
    { echo "FAIL: recommend: $(cat "$TMP/r16" "$TMP/r8")"; fail=1; }
grep -q "KV cache 0.60 at -c 32768" "$TMP/r16" && grep -q "KV cache 0.32 at -c 32768" "$TMP/r8" &&
    grep -q -- "-ctk q8_0 -ctv q8_0" "$TMP/r8" ||
    { echo "FAIL: recommend's KV estimate does not follow the cache type"; fail=1; }
exit $fail
