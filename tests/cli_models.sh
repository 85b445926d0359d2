#!/bin/sh
# cli_models.sh — the trained models herd ships (models/kjv-*.gguf): herd's greedy
# continuation of "And God said" equals llama.cpp's, and reads as King James English.
# The expected texts (the prompt, then N generated tokens) were recorded from
# `../shared/oracle/oracle generate MODEL -p "And God said" -n 32` by tools/train/eval.py
# and written here by tools/train/record_test.py. N is the longest prefix (16..32 tokens)
# along which llama.cpp's top-1 logit leads the second by >= 0.03, so a rounding-level
# change in herd cannot flip a near-tie; herd matched llama.cpp on all 32 tokens.
set -u
HERD=$1
PROMPT="And God said"
fail=0
tested=0

check_model() {
    m=models/$1
    n=$2
    want=$3
    if [ ! -f "$m" ]; then echo "FAIL: $m missing"; fail=1; return; fi
    tested=$((tested + 1))
    got=$("$HERD" run -m "$m" -p "$PROMPT" -n "$n" --temp 0 2>/dev/null)
    if [ "$got" != "$want" ]; then
        echo "FAIL: $1: greedy continuation"
        echo "  got  [$got]"
        echo "  want [$want]"
        fail=1
    fi
    # Readable: at least three common KJV words, as whole words.
    k=0
    for w in the and of unto that he shall said God LORD him his is was be; do
        printf '%s\n' "$got" | grep -qw "$w" && k=$((k + 1))
    done
    if [ "$k" -lt 3 ]; then echo "FAIL: $1: text does not read as KJV English: [$got]"; fail=1; fi
}

# model file, tokens generated, llama.cpp's text (prompt + continuation)
check_model kjv-llama-q8_0.gguf 25 "And God said unto them, I am the LORD. And he said unto them, What is the LORD. And he said unto them,"
check_model kjv-stablelm-q8_0.gguf 19 "And God said unto him, I am the LORD God of Israel, and I will give thee this people unto"
check_model kjv-phi2-q8_0.gguf 32 "And God said unto him, I will not hearken unto thee, that thou mayest be with me. And he said unto him, I am the LORD, that I may"

[ "$fail" = 0 ] && echo "ok: $tested models"
exit "$fail"
