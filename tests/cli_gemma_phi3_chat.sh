#!/bin/sh
# cli_gemma_phi3_chat.sh — Gemma 2 and Phi-3 files carry their chat templates
# (herd synth copies ../shared/chat/templates/gemma-2-it, phi-3.5-mini-instruct
# and phi-3-mini-4k into them, as the real files have theirs): `herd template
# -m FILE` must render with the file's own template, byte for byte what the
# same template gives when named, not a built-in format. herd chat and serve
# take their prompt format from the same place.
# Usage: sh tests/cli_gemma_phi3_chat.sh path/to/herd   (from the repository root)
HERD=${1:?usage: cli_gemma_phi3_chat.sh HERD_BINARY}
T=../shared/chat/templates
[ -d "$T" ] || { echo "skip: no ../shared"; exit 77; }
D=$(mktemp -d "${TMPDIR:-/tmp}/herd-gemma-phi3.XXXXXX") || exit 1
trap 'rm -rf "$D"' EXIT
fails=0
printf '%s' '[{"role":"user","content":"Hello"},{"role":"assistant","content":"Hi there"},{"role":"user","content":"How are you?"}]' >"$D/m.json"
# arch shape template marker
for c in "gemma2 tiny gemma-2-it <start_of_turn>model" \
         "phi3 tiny phi-3.5-mini-instruct <|assistant|>" \
         "phi3 tiny-separate phi-3-mini-4k <|assistant|>"; do
    set -- $c
    f="$D/$1-$2.gguf"
    "$HERD" synth --arch "$1" --shape "$2" --type f32 -o "$f" 2>/dev/null ||
        { echo "FAIL: synth $1 $2"; fails=$((fails + 1)); continue; }
    "$HERD" template -m "$f" --messages "$D/m.json" --add-generation-prompt >"$D/got" 2>"$D/err" ||
        { echo "FAIL: template -m $f: $(cat "$D/err")"; fails=$((fails + 1)); continue; }
    # The tiny vocabulary's BOS and EOS are <|endoftext|>.
    "$HERD" template --chat-template "$T/$3.jinja" --messages "$D/m.json" --add-generation-prompt \
        --bos-token '<|endoftext|>' --eos-token '<|endoftext|>' >"$D/want" 2>&1 ||
        { echo "FAIL: template $3"; fails=$((fails + 1)); continue; }
    cmp -s "$D/got" "$D/want" || { echo "FAIL: $1 $2 does not render with $3"; fails=$((fails + 1)); }
    grep -qF "$4" "$D/got" || { echo "FAIL: $1 $2: no $4 in the rendering"; fails=$((fails + 1)); }
done
[ "$fails" -eq 0 ] && echo "ok" || exit 1
