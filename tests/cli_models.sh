#!/bin/sh
# cli_models.sh — the trained models herd ships (models/kjv-*.gguf): herd's greedy
# continuation of "And God said" (32 tokens, printed after the prompt) equals llama.cpp's,
# recorded below from `../shared/oracle/oracle generate MODEL -p "And God said" -n 32`
# (the prompt's and the generated ids detokenized; tools/train/eval.py), and reads as
# King James English.
set -u
HERD=$1
PROMPT="And God said"
fail=0
tested=0

check_model() {
    m=models/$1
    want=$2
    if [ ! -f "$m" ]; then echo "FAIL: $m missing"; fail=1; return; fi
    tested=$((tested + 1))
    got=$("$HERD" run -m "$m" -p "$PROMPT" -n 32 --temp 0 2>/dev/null)
    if [ "$got" != "$want" ]; then
        echo "FAIL: $1: greedy continuation"
        echo "  got  [$got]"
        echo "  want [$want]"
        fail=1
    fi
    # Readable: at least three common KJV words as whole words.
    n=0
    for w in the and of unto that he shall said God LORD him his is was be; do
        printf '%s\n' "$got" | grep -qw "$w" && n=$((n + 1))
    done
    if [ "$n" -lt 3 ]; then echo "FAIL: $1: text does not read as KJV English: [$got]"; fail=1; fi
}

# model file, then llama.cpp's text (prompt + continuation)
check_model kjv-llama-q8_0.gguf "And God said unto him, I will go unto thee, and I will go unto thee, and I will bring thee a great land, and thou shalt be with thee."
check_model kjv-stablelm-q8_0.gguf "And God said unto him, The LORD hath said, I will not be a man of the LORD, and the people that are in the land of Egypt. And the LORD"
check_model kjv-phi2-q8_0.gguf "And God said, Behold, I will go out of the land of Egypt, and the children of Israel, and the children of Israel, and the children of Israel, and"

[ "$fail" = 0 ] && echo "ok: $tested models"
exit "$fail"
