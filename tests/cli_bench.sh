#!/bin/sh
# cli_bench.sh — `herd bench`: llama-bench's tests and JSON fields, with and
# without a depth (-d: tokens in the cache before each test, tests named
# pp<N>@d<D>), and one error line for a bad depth.
#
# The model is ../shared/models/tiny/llama-q8_0.gguf (training context 2048);
# without ../shared the test is skipped (77).
set -u
HERD=$1
M=../shared/models/tiny/llama-q8_0.gguf
[ -f "$M" ] || { echo "skip: $M not found"; exit 77; }
TMP=$(mktemp -d /tmp/herd-cli-bench.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
fail=0

"$HERD" bench -m "$M" -t 1 -p 8 -n 4 -r 2 --json >"$TMP/j0" 2>"$TMP/e0" ||
    { echo "FAIL: bench"; cat "$TMP/e0"; fail=1; }
for want in '"test":"pp8"' '"test":"tg4"' '"n_depth":0' '"n_prompt":8' '"n_gen":4'; do
    grep -q "$want" "$TMP/j0" || { echo "FAIL: no $want in $(cat "$TMP/j0")"; fail=1; }
done

# Depth: the cache holds 40 tokens (not a multiple of the batch) before each run.
"$HERD" bench -m "$M" -t 2 -p 8 -n 4 -d 40 -r 2 --json >"$TMP/j1" 2>"$TMP/e1" ||
    { echo "FAIL: bench -d"; cat "$TMP/e1"; fail=1; }
for want in '"test":"pp8@d40"' '"test":"tg4@d40"' '"n_depth":40'; do
    grep -q "$want" "$TMP/j1" || { echo "FAIL: no $want in $(cat "$TMP/j1")"; fail=1; }
done
"$HERD" bench -m "$M" -t 1 -p 8 -n 4 -d 40 -r 1 >"$TMP/t1" 2>&1 ||
    { echo "FAIL: bench -d (table)"; fail=1; }
grep -q "| *pp8@d40 |" "$TMP/t1" || { echo "FAIL: table row"; cat "$TMP/t1"; fail=1; }

# --fill-once: the depth filled once, only the cells past it forgotten
# before each run; the same tests come out.
"$HERD" bench -m "$M" -t 1 -p 8 -n 4 -d 40 -r 3 --fill-once --json >"$TMP/j2" 2>"$TMP/e2" ||
    { echo "FAIL: bench --fill-once"; cat "$TMP/e2"; fail=1; }
for want in '"test":"pp8@d40"' '"test":"tg4@d40"' '"n_depth":40'; do
    grep -q "$want" "$TMP/j2" || { echo "FAIL: no $want in $(cat "$TMP/j2")"; fail=1; }
done

# Bad depths: one 'herd:' line naming the value and what is accepted, exit 2.
bad() { # $1 what, then the arguments
    what=$1
    shift
    "$HERD" bench -m "$M" "$@" >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -ne 2 ] || [ "$(wc -l <"$TMP/err")" -ne 1 ] || ! grep -q "^herd: .*$what" "$TMP/err"; then
        echo "FAIL: bench $*: exit $rc, stderr: $(cat "$TMP/err")"
        fail=1
    fi
}
bad "-d 4096: .*context of 2048 (accepted: 0 to 1536)" -p 512 -n 4 -d 4096
bad "-d 100: .*context of 64 (accepted: 0 to 56)" -c 64 -p 8 -n 4 -d 100
bad "invalid count 'x'" -d x
bad "invalid count '-3'" -d -3
bad "--fill-once needs a depth" -p 8 -n 4 --fill-once
exit $fail
