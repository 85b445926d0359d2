#!/bin/sh
# cli_catalog.sh — `herd catalog` as a person uses it. $1: the herd binary;
# run from the repository root. Ends with "N passed, M failed".
HERD=${1:-build/herd}
case $HERD in /*) ;; *) HERD=$(pwd)/$HERD ;; esac
. tests/lib.sh
need_tool python3
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# run NAME ARGS...: herd's stdout, stderr and status in $TMP/NAME.{out,err,rc}
run() {
    name=$1
    shift
    "$HERD" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
}
rc() { cat "$TMP/$1.rc"; }
has() { grep -q -- "$2" "$TMP/$1.out"; }
lines() { wc -l <"$TMP/$1.$2" | tr -d ' '; }

# The table: every family of the landscape, with licence and commercial use.
run table catalog
[ "$(rc table)" = 0 ] && ok || bad "herd catalog exits $(rc table)"
for id in llama-2-7b llama-2-13b llama-2-70b vicuna-33b-v1.3 mistral-7b zephyr-7b mixtral-8x7b \
    yi-34b falcon-7b falcon-40b falcon-180b mpt-7b mpt-30b phi-2 stablelm-tuned-alpha-7b; do
    has table "^$id " && ok || bad "table lacks $id"
done
has table "^MODEL .*DEVELOPER .*LICENCE" && ok || bad "table has no header"
grep -q '^phi-2 .* MIT .* yes ' "$TMP/table.out" && ok || bad "phi-2 is not MIT / commercial yes"
grep -q '^mpt-7b-chat .* no ' "$TMP/table.out" && ok || bad "mpt-7b-chat is not non-commercial"
[ -s "$TMP/table.err" ] && bad "table wrote to stderr" || ok

# --json: valid JSON, with sources.
run json catalog --json
[ "$(rc json)" = 0 ] && ok || bad "--json exits $(rc json)"
has json '"source": "seed:106"' && ok || bad "--json lacks seed sources"
if true; then
    python3 -m json.tool "$TMP/json.out" >/dev/null && ok || bad "--json is not valid JSON"
    run jsonf catalog --json --commercial --lang en
    python3 -m json.tool "$TMP/jsonf.out" >/dev/null && ok || bad "filtered --json is not valid JSON"
    has jsonf '"id": "mistral-7b"' && ok || bad "filtered --json lacks mistral-7b"
    has jsonf '"id": "mpt-7b-chat"' && bad "filtered --json has a non-commercial model" || ok
    run jsonm catalog phi-2 --json
    python3 -m json.tool "$TMP/jsonm.out" >/dev/null && ok || bad "MODEL --json is not valid JSON"
fi

# One model: each fact with its source, the seed's stale statement kept.
run phi catalog phi-2
[ "$(rc phi)" = 0 ] && ok || bad "herd catalog phi-2 exits $(rc phi)"
has phi 'licence.name  *MIT  \[https://huggingface.co/microsoft/phi-2' && ok || bad "phi-2 licence"
has phi 'seed says: .*(stale)  \[seed:106\]' && ok || bad "phi-2 lacks the seed's stale licence"
has phi 'context_length  *2048  \[' && ok || bad "phi-2 context"
grep -q 'NO SOURCE' "$TMP/phi.out" && bad "a fact without a source" || ok
run llama catalog llama-2-70b
has llama 'seed says: 7B到65B (wrong)  \[seed:38\]' && ok || bad "llama-2-70b lacks the 65B correction"

# An unknown model: one line on stderr, nothing on stdout, non-zero exit.
run unknown catalog no-such-model
[ "$(rc unknown)" != 0 ] && ok || bad "unknown model exits 0"
[ "$(lines unknown err)" = 1 ] && ok || bad "unknown model: $(lines unknown err) lines on stderr"
[ -s "$TMP/unknown.out" ] && bad "unknown model wrote to stdout" || ok
run badopt catalog --bogus
[ "$(rc badopt)" = 2 ] && ok || bad "unknown option exits $(rc badopt)"
run badnum catalog --max-ram lots
[ "$(rc badnum)" = 2 ] && [ "$(lines badnum err)" = 1 ] && ok || bad "--max-ram lots"
run badtask catalog --task poetry
[ "$(rc badtask)" != 0 ] && [ "$(lines badtask err)" = 1 ] && ok || bad "--task poetry"

# Filters.
run comm catalog --commercial
has comm '^mistral-7b ' && ok || bad "--commercial lacks mistral-7b"
has comm '^mpt-7b-chat ' && bad "--commercial lists mpt-7b-chat" || ok
has comm '^vicuna-33b-v1.3 ' && bad "--commercial lists vicuna-33b" || ok
run ram catalog --max-ram 8
has ram '^phi-2 ' && ok || bad "--max-ram 8 lacks phi-2"
has ram '^falcon-180b ' && bad "--max-ram 8 lists falcon-180b" || ok
run zh catalog --lang zh
has zh '^yi-34b ' && ok || bad "--lang zh lacks yi-34b"
has zh '^llama-2-7b ' && bad "--lang zh lists llama-2-7b" || ok
run none catalog --max-ram 0.5
[ "$(rc none)" = 0 ] && has none 'no model' && ok || bad "--max-ram 0.5"

# The catalog is built in: it works from any directory.
(cd "$TMP" && "$HERD" catalog mistral-7b >"$TMP/cd.out" 2>&1) && has cd 'Apache-2.0' && ok ||
    bad "herd catalog outside the repository"

# Every fact checked against the seed.
if have_shared ../shared/seed/landscape.txt; then
    run verify catalog --verify ../shared/seed/landscape.txt
    [ "$(rc verify)" = 0 ] && ok || { bad "--verify"; cat "$TMP/verify.err" >&2; }
fi

echo "$pass passed, $fail failed"
finish "$fail"
