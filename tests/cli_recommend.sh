#!/bin/sh
# cli_recommend.sh — `herd recommend` as a person uses it: models that fit are
# suggested with their reasons, the others are excluded with theirs, every
# reason with a source, memory by herd info's formula.
set -u
HERD=$1
. tests/lib.sh
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
"$HERD" recommend --ram 8G --license commercial >"$TMP/rc" 2>"$TMP/rc.err" || bad "exit status $?"
grep -q '^herd recommend: --ram 8G (8.59 GB) --license commercial' "$TMP/rc" || bad "header"
suggested rc mistral-7b
suggested rc phi-2
suggested rc llama-2-7b
not_suggested rc mpt-7b-chat
excluded rc mpt-7b-chat "commercial use no"
excluded rc stablelm-tuned-alpha-7b "commercial use no"
excluded rc vicuna-33b-v1.3 "commercial use no"
excluded rc llama-2-70b "does not fit in 8.59 GB"
excluded rc falcon-180b "does not fit in 8.59 GB"
excluded rc mixtral-8x7b "KV cache"
# Every model is in exactly one of the two lists.
n=$("$HERD" catalog --json | grep -c '^      "id": ')
s=$(section rc Suggested | grep -c '^ *[0-9]*\. ')
e=$(section rc Excluded | grep -c '^  [a-z]')
[ $((s + e)) -eq "$n" ] || bad "$s suggested + $e excluded != $n models"
# Suggested: each fits by herd's estimate, has a licence line with a source.
section rc Suggested | grep '^ *[0-9]*\. ' | while read -r _ id quant gb _; do
    awk -v g="$gb" 'BEGIN { exit !(g > 0 && g <= 8.59) }' || echo "FAIL: $id needs $gb GB"
done | grep . && fail=1
[ "$(section rc Suggested | grep -c '^      licence .* commercial use: \(yes\|conditional\) \[')" -eq "$s" ] ||
    bad "a suggestion lacks its licence reason"
[ "$(section rc Suggested | grep -c "herd's estimate .*(weights .* + KV cache .* + scratch")" -eq "$s" ] ||
    bad "a suggestion lacks its memory estimate"

# Chinese: only Yi lists it.
"$HERD" recommend --lang zh >"$TMP/zh" || bad "--lang zh exit status"
suggested zh yi-34b
[ "$(section zh Suggested | grep -c '^ *[0-9]*\. ')" -eq 1 ] || bad "--lang zh suggests more than Yi"
excluded zh mistral-7b "language 'zh' not listed (en)"

# Long context: memory at the whole context; a sliding window keeps Mistral's
# cache small, MPT-StoryWriter's 65k cache does not fit.
"$HERD" recommend --ram 8G --task long-context >"$TMP/lc" || bad "long-context exit status"
suggested lc mistral-7b
grep -q "KV cache 0.60 at -c 32768" "$TMP/lc" || bad "mistral's KV at 32768 (window 4096) is not 0.60 GB"
excluded lc mpt-7b-storywriter "at -c 65536"
excluded lc llama-2-7b "context 4096 tokens, less than 8192"

# Code: models with code facts; Zephyr is said to lag.
"$HERD" recommend --task code >"$TMP/code" || bad "code exit status"
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

# Bad arguments: usage error, exit 2.
"$HERD" recommend --ram lots >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "is not a size" "$TMP/err" || bad "--ram lots accepted"
"$HERD" recommend --task poetry >/dev/null 2>&1
[ $? -eq 2 ] || bad "--task poetry accepted"
exit $fail
