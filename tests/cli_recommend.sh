#!/bin/sh
# cli_recommend.sh — `herd recommend` as a person uses it: models that fit are
# suggested with their reasons, the others are excluded with theirs, every
# reason with a source, memory by herd info's formula.
set -u
HERD=$1
. tests/lib.sh
# The probe (a few seconds) is measured once, into the test's own cache.
export XDG_CACHE_HOME="$TMP/cache"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# suggested NAME ID / excluded NAME ID [PATTERN]: the model's line in a section.
section() { sed -n "/^$2 (/,/^\$/p" "$TMP/$1"; }
suggested() { section "$1" Suggested | grep -q "^ *[0-9]*\. $2 " || bad "$1: $2 not suggested"; }
not_suggested() { section "$1" Suggested | grep -q "^ *[0-9]*\. $2 " && bad "$1: $2 suggested"; }
excluded() {
    line=$(section "$1" Excluded | grep "^  $2 ") || { bad "$1: $2 not excluded"; return; }
    case $line in *"$3"*) ;; *) bad "$1: $2 excluded without '$3': $line" ;; esac
    case $line in *"["*"]"*) ;; *) bad "$1: $2's exclusion has no source: $line" ;; esac
}

# The issue's case: 8 GB, commercial use.
"$HERD" recommend --ram 8G --license commercial --explain >"$TMP/rc" 2>"$TMP/rc.err" ||
    bad "exit status $?"
grep -q '^herd recommend: --ram 8G (8.59 GB, less a reserve of 1.00 GB: 7.59 GB for the model) --license commercial' "$TMP/rc" || bad "header"
grep -q "^herd: probe: measured this machine" "$TMP/rc.err" || bad "first run did not say it measured"
[ -s "$TMP/cache/herd/probe.json" ] || bad "no probe.json in XDG_CACHE_HOME"
grep -q '^ranking: ' "$TMP/rc" || bad "no ranking rule line"
suggested rc mistral-7b
suggested rc phi-2
suggested rc llama-2-7b
not_suggested rc mpt-7b-chat
excluded rc mpt-7b-chat "commercial use no"
excluded rc stablelm-tuned-alpha-7b "commercial use no"
excluded rc vicuna-33b-v1.3 "commercial use no"
excluded rc llama-2-70b "does not fit in 7.59 GB"
excluded rc falcon-180b "does not fit in 7.59 GB"
excluded rc mixtral-8x7b "KV cache"
# Every model is in exactly one of the two lists.
n=$("$HERD" catalog --json | grep -c '^      "id": ')
s=$(section rc Suggested | grep -c '^ *[0-9]*\. ')
e=$(section rc Excluded | grep -c '^  [a-z]')
[ $((s + e)) -eq "$n" ] || bad "$s suggested + $e excluded != $n models"
# Suggested: each fits by herd's estimate, has a licence line with a source.
section rc Suggested | grep '^ *[0-9]*\. ' | while read -r _ id quant gb _; do
    awk -v g="$gb" 'BEGIN { exit !(g > 0 && g <= 7.59) }' || echo "FAIL: $id needs $gb GB"
done | grep . && fail=1
[ "$(section rc Suggested | grep -c '^      licence .* commercial use: \(yes\|conditional\) \[')" -eq "$s" ] ||
    bad "a suggestion lacks its licence reason"
[ "$(section rc Suggested | grep -c "herd's estimate .*(weights .* + KV cache .* + scratch")" -eq "$s" ] ||
    bad "a suggestion lacks its memory estimate"
[ "$(section rc Suggested | grep -c "predicted here: generation [0-9.]* tokens/s (tg128), prompt [0-9.]* tokens/s (pp512).*\[computed: herd probe")" -eq "$s" ] ||
    bad "a suggestion lacks its predicted speed"

# The compact table: the same picks, one row each, with the reused probe.
"$HERD" recommend --ram 8G --license commercial >"$TMP/table" 2>"$TMP/table.err" || bad "table exit"
[ -s "$TMP/table.err" ] && bad "the stored probe was not reused: $(cat "$TMP/table.err")"
grep -q '^#  *model  *variant  *type  *file GB  *RAM GB  *tg t/s  *pp t/s  *licence  *context  *quality' "$TMP/table" ||
    bad "table header"
[ "$(grep -c '^[0-9][0-9]*  *[a-z]' "$TMP/table")" -eq "$s" ] || bad "table rows != $s picks"
grep -q '^[0-9]*  *mistral-7b .* MMLU 60.1$' "$TMP/table" || bad "mistral's row lacks MMLU 60.1"
grep -q '^ranking: ' "$TMP/table" || bad "table: no ranking rule line"

# --reserve: a larger reserve leaves less for the model.
"$HERD" recommend --ram 8G --reserve 75% --explain >"$TMP/res" || bad "--reserve exit"
grep -q 'less a reserve of 6.44 GB: 2.15 GB for the model' "$TMP/res" || bad "--reserve 75%"
not_suggested res mistral-7b
suggested res phi-2
"$HERD" recommend --ram 8G --reserve 9G >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "leaves nothing" "$TMP/err" || bad "--reserve 9G of 8G accepted"

# --min-speed: no model generates 100,000 tokens/s; each is excluded as too slow.
"$HERD" recommend --ram 8G --min-speed 100000 --explain >"$TMP/slow" || bad "--min-speed exit"
[ "$(section slow Suggested | grep -c '^ *[0-9]*\. ')" -eq 0 ] || bad "--min-speed 1e5 suggests"
excluded slow mistral-7b "too slow: even"

# --json: valid, with a prediction and a quality figure per pick.
"$HERD" recommend --ram 8G --license commercial --json >"$TMP/json" || bad "--json exit"
python3 - "$TMP/json" "$s" <<'PY' || bad "--json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ranking"].startswith("ranking: ") and abs(d["reserve_gb"] - 1.0) < 1e-9
assert len(d["picks"]) == int(sys.argv[2]), len(d["picks"])
for p in d["picks"]:
    assert p["predict"]["tg128"] > 0 and p["predict"]["pp512"] > 0, p
    assert p["ram_gb"] <= d["ram_gb"] - d["reserve_gb"], p
PY

# --ram below every model: the smallest candidate and its need, exit 1.
"$HERD" recommend --ram 1G >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "nothing fits in .*the smallest candidate, gemma-3-1b as Q2_K, needs" "$TMP/err" ||
    bad "--ram 1G: $(cat "$TMP/err")"

# A bad probe file is measured again, with one line saying why (and, on a
# busy machine, one more saying the new figures are too slow: not counted).
said() { grep -vc "the machine was busy" "$TMP/err"; }
printf '{"schema": 1, "cpu": "' >"$TMP/cache/herd/probe.json"
"$HERD" recommend --ram 8G >/dev/null 2>"$TMP/err" || bad "truncated probe: exit"
[ "$(said)" -eq 1 ] && grep -q "probe.json: not JSON.*measured again" "$TMP/err" ||
    bad "truncated probe: $(cat "$TMP/err")"
# Unreadable (larger than any probe): measured again, one line, and kept.
head -c 2000000 /dev/zero >"$TMP/cache/herd/probe.json"
"$HERD" recommend --ram 8G >/dev/null 2>"$TMP/err" || bad "unreadable probe: exit"
[ "$(said)" -eq 1 ] && grep -q "probe.json: cannot read it.*measured again" "$TMP/err" ||
    bad "unreadable probe: $(cat "$TMP/err")"
grep -q '"schema"' "$TMP/cache/herd/probe.json" || bad "the probe measured again was not kept"
sed 's/"cpu": "[^"]*"/"cpu": "Some Other CPU, 64 cores"/' "$TMP/cache/herd/probe.json" >"$TMP/p" &&
    mv "$TMP/p" "$TMP/cache/herd/probe.json"
"$HERD" probe >/dev/null 2>"$TMP/err" || bad "foreign probe: exit"
grep -q "made on another CPU (Some Other CPU, 64 cores).*measured again" "$TMP/err" ||
    bad "foreign probe: $(cat "$TMP/err")"
sed 's/"herd": "[^"]*"/"herd": "herd 0.0 scalar probe 1"/' "$TMP/cache/herd/probe.json" >"$TMP/p" &&
    mv "$TMP/p" "$TMP/cache/herd/probe.json"
"$HERD" probe >/dev/null 2>"$TMP/err" || bad "old herd's probe: exit"
grep -q "made by another herd" "$TMP/err" || bad "old herd's probe: $(cat "$TMP/err")"

# Chinese: Yi of 2023's models; Qwen 2.5, Mistral NeMo, Mistral Small 3 and
# Phi-3.5-mini of today's (their cards name it).
"$HERD" recommend --lang zh --explain >"$TMP/zh" || bad "--lang zh exit status"
suggested zh yi-34b
suggested zh qwen2.5-7b
suggested zh mistral-nemo-12b
suggested zh mistral-small-24b
suggested zh phi-3.5-mini
[ "$(section zh Suggested | grep -c '^ *[0-9]*\. ')" -eq 5 ] || bad "--lang zh suggests other models"
excluded zh mistral-7b "language 'zh' not listed (en)"

# Long context: memory at the whole context; a sliding window keeps Mistral's
# cache small, MPT-StoryWriter's 65k cache does not fit.
"$HERD" recommend --ram 8G --task long-context --explain >"$TMP/lc" || bad "long-context exit status"
suggested lc mistral-7b
grep -q "KV cache 0.60 at -c 32768" "$TMP/lc" || bad "mistral's KV at 32768 (window 4096) is not 0.60 GB"
excluded lc mpt-7b-storywriter "at -c 65536"
excluded lc llama-2-7b "context 4096 tokens, less than 8192"

# Code: models with code facts; Zephyr is said to lag.
"$HERD" recommend --task code --explain >"$TMP/code" || bad "code exit status"
suggested code phi-2
excluded code zephyr-7b "seed:25"
excluded code yi-34b "no fact"
# Every seed quote the code reasons give is on the line they cite.
SEED=../shared/seed/landscape.txt
if [ -f "$SEED" ]; then
    grep -o 'seed:[0-9]*: "[^"]*"' "$TMP/code" | sort -u | while IFS= read -r cite; do
        n=${cite#seed:}
        n=${n%%:*}
        q=${cite#*\"}
        q=${q%\"}
        sed -n "${n}p" "$SEED" | grep -qF "$q" || echo "FAIL: seed line $n does not say \"$q\""
    done | grep . && fail=1
fi

# A cache type the heads cannot use (Q4_0 and Q8_0 need a head size that is a
# multiple of 32, the rule herd_ctx_new applies): recommend excludes such a
# model and says why; info refuses the file with one line naming the value and
# the accepted ones (a file of head size 16 from ../shared's tiny models).
"$HERD" recommend -ctk q4_0 --explain >"$TMP/ctk" 2>/dev/null || bad "recommend -ctk q4_0 exit status"
excluded ctk phi-2 "cache type q4_0 needs a head size that is a multiple of 32; this model's is 80 (accepted: f32, f16, bf16)"
suggested ctk mistral-7b
"$HERD" recommend -ctv q8_0 --explain >"$TMP/ctv" 2>/dev/null || bad "recommend -ctv q8_0 exit status"
excluded ctv stablelm-3b-4e1t "cache type q8_0 needs a head size"
TINY=../shared/models/tiny/llama-f32.gguf
if [ -f "$TINY" ]; then
    "$HERD" info -m "$TINY" -ctk q4_0 >"$TMP/out" 2>"$TMP/err"
    [ $? -eq 1 ] && [ ! -s "$TMP/out" ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] &&
        grep -q "^herd: info: cache type q4_0 needs a head size that is a multiple of 32; this model's is 16 (accepted: f32, f16, bf16)$" "$TMP/err" ||
        bad "info -ctk q4_0 on head size 16: $(cat "$TMP/out" "$TMP/err")"
    "$HERD" info -m "$TINY" -ctv q8_0 --json >"$TMP/out" 2>"$TMP/err"
    [ $? -eq 1 ] && [ ! -s "$TMP/out" ] && grep -q "cache type q8_0 needs" "$TMP/err" ||
        bad "info --json -ctv q8_0 on head size 16"
    "$HERD" info -m "$TINY" -ctk bf16 >/dev/null 2>&1 || bad "info -ctk bf16 on head size 16 refused"
fi

# Bad arguments: usage error, exit 2.
"$HERD" recommend --ram lots >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "is not a size" "$TMP/err" || bad "--ram lots accepted"
"$HERD" recommend --task poetry >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "chat, instruct, text, code, long-context" "$TMP/err" || bad "--task poetry"
"$HERD" recommend --lang xx >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "'xx' is not listed by any model; known: en, .*zh" "$TMP/err" || bad "--lang xx"
"$HERD" recommend --license gpl >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "not one of: commercial, any" "$TMP/err" || bad "--license gpl"
"$HERD" recommend --min-speed fast >/dev/null 2>&1
[ $? -eq 2 ] || bad "--min-speed fast accepted"
exit $fail
