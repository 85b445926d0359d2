#!/bin/sh
# cli_first_hour.sh — what a newcomer meets in the first hour (issue 15, the
# command line): no ignored arguments, -f read as llama.cpp reads it, values
# that make no sense refused, one prefix per error line, --help everywhere,
# --version, a newline before the timing line, the chat-format fallback named,
# perplexity's default chunk, outputs that never replace an input, progress
# on a terminal. Every check fails on the code before these fixes.
set -u
HERD=$1
case $HERD in /*) ;; *) HERD=$(pwd)/$HERD ;; esac
M=models/kjv-llama-q8_0.gguf
S=models/kjv-stablelm-q8_0.gguf
[ -f "$M" ] && [ -f "$S" ] || { echo "skip: $M or $S missing"; exit 77; }
TMP=$(mktemp -d /tmp/herd-first-hour.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# expect CODE CMD...: the exit code and exactly one line on stderr.
expect() {
    want=$1; shift
    "$HERD" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    got=$?
    [ "$got" = "$want" ] || { bad "herd $* exited $got, want $want: $(cat "$TMP/err")"; return; }
    [ "$want" = 0 ] || [ "$(wc -l <"$TMP/err")" = 1 ] || bad "herd $*: not one error line: $(cat "$TMP/err")"
}

# ---- stray arguments are errors, in every command that takes cli options
expect 2 run -m "$M" "And God said"
grep -q "unexpected argument 'And God said'" "$TMP/err" || bad "run: stray prompt not named"
expect 2 tokenize -m "$M" "Hello"
expect 2 info "$M" extra
expect 2 eval -m "$M" --task tests/data/tasks/arc.jsonl stray
expect 2 run -m "$M" -p "a" -f "$M"
# an option the command would not use is refused too
expect 2 info "$M" -p "Hello"
expect 2 chat -m "$M" -f "$M"
expect 2 perplexity -m "$M" -f tests/data/kjv-heldout-20k.txt --temp 0
expect 2 bench -m "$M" --temp 0.5
expect 2 tokenize -m "$M" -p "Hello" -n 4

# ---- -f FILE: the prompt is the file, less one final newline (llama.cpp's -f)
printf 'And God said\n' >"$TMP/p.txt"
"$HERD" run -m "$M" -f "$TMP/p.txt" -n 8 --temp 0 >"$TMP/f.out" 2>/dev/null || bad "run -f failed"
"$HERD" run -m "$M" -p "And God said" -n 8 --temp 0 >"$TMP/p.out" 2>/dev/null || bad "run -p failed"
cmp -s "$TMP/f.out" "$TMP/p.out" || bad "run -f differs from run -p with the file's text"
grep -q "^And God said" "$TMP/f.out" || bad "run -f did not use the file: $(head -c 80 "$TMP/f.out")"
expect 1 run -m "$M" -f "$TMP/missing.txt"

# ---- values that make no sense
expect 2 run -m "$M" --top-p 2
expect 2 run -m "$M" --min-p -0.5
expect 2 run -m "$M" --temp -1
expect 2 run -m "$M" -t 100000
expect 2 run -m "$M" -n -5
expect 2 run -m "$M" --seed -7
expect 2 perplexity -m "$M" -f tests/data/kjv-heldout-20k.txt --chunks 0
expect 2 bench -m "$M" -r 0
expect 2 compare "$M" -t 100000
expect 2 synth --shape tinyllama-1.1b --type q4_0 -o "$TMP/x.gguf" -t 100000
# -c past the training context (256): runs, one warning
"$HERD" run -m "$M" -p "And" -n 2 -c 1024 >/dev/null 2>"$TMP/err" || bad "run -c 1024 failed"
[ "$(grep -c "warning: -c 1024 is more than the 256 tokens" "$TMP/err")" = 1 ] ||
    bad "-c beyond the training context: $(cat "$TMP/err")"

# ---- vocabulary-only files (../shared/vocab): tokenize, template, info
V=../shared/vocab
if [ -d "$V" ]; then
    printf '[{"role": "user", "content": "Hello"}]' >"$TMP/msgs.json"
    for v in "$V"/*.gguf; do
        "$HERD" tokenize -m "$v" -p "Hello world" --no-bos >"$TMP/out" 2>"$TMP/err" ||
            bad "tokenize $v: $(cat "$TMP/err")"
        # llama.cpp's ids for the input "Hello world" in $v.inp / $v.out
        k=$(awk 'prev && $0 == "Hello world" { print n + 1; exit } { prev = ($0 == "__ggml_vocab_test__") } prev { n++ }' "$v.inp")
        want=$(sed -n "${k:-0}p" "$v.out" | sed 's/^ *//')
        [ -n "$k" ] && [ "$(cat "$TMP/out")" = "$want" ] ||
            bad "tokenize $v: '$(cat "$TMP/out")', llama.cpp '$want'"
        "$HERD" template -m "$v" --messages "$TMP/msgs.json" >/dev/null 2>"$TMP/err" || bad "template $v: $(cat "$TMP/err")"
        "$HERD" info "$v" >"$TMP/out" 2>"$TMP/err" && grep -q "vocabulary only" "$TMP/out" ||
            bad "info $v: $(cat "$TMP/err")"
    done
    # a vocabulary is no model to run
    expect 1 run -m "$V/ggml-vocab-llama-spm.gguf" -p "Hello"
elif [ "${HERD_REQUIRE_SHARED:-0}" = 1 ]; then
    bad "$V missing"
else
    echo "skip: $V missing; vocabulary-only files not checked"
fi

# ---- one prefix per error line
head -c 5000 "$M" >"$TMP/trunc.gguf"
expect 1 info "$TMP/trunc.gguf"
[ "$(grep -o "trunc.gguf" "$TMP/err" | wc -l)" = 1 ] || bad "prefix repeated: $(cat "$TMP/err")"
expect 1 run -m "$TMP/nonexistent.gguf"
[ "$(grep -o "nonexistent.gguf" "$TMP/err" | wc -l)" = 1 ] || bad "prefix repeated: $(cat "$TMP/err")"
expect 1 synth --shape nope --type f32 -o "$TMP/x.gguf"
[ "$(grep -o "synth:" "$TMP/err" | wc -l)" = 1 ] || bad "prefix repeated: $(cat "$TMP/err")"

# ---- --help / -h on every command, --version
for c in run info tokenize logits perplexity bench synth quantize chat template serve catalog eval compare recommend; do
    for h in --help -h; do
        "$HERD" $c $h >"$TMP/out" 2>&1
        [ $? = 0 ] || bad "herd $c $h exits non-zero: $(head -1 "$TMP/out")"
        grep -q "usage: herd $c" "$TMP/out" || bad "herd $c $h prints no usage"
    done
done
for v in --version version; do
    "$HERD" $v >"$TMP/out" 2>&1 || bad "herd $v failed"
    grep -q "^herd [0-9]" "$TMP/out" && grep -Eq "^kernels: (scalar|AVX2|AVX-512|AMX)" "$TMP/out" &&
        grep -q "^cpu: ." "$TMP/out" || bad "herd $v: $(cat "$TMP/out")"
done
HERD_NO_SIMD=1 "$HERD" --version | grep -q "^kernels: scalar" || bad "HERD_NO_SIMD=1 not shown as scalar"
if grep -q avx2 /proc/cpuinfo; then
    HERD_SIMD=avx2 "$HERD" --version | grep -q "^kernels: AVX2" || bad "HERD_SIMD=avx2 not shown"
fi
# HERD_SIMD naming no level, or one this CPU lacks: one line on stderr, the
# best level it has, exit 0
"$HERD" --version >"$TMP/best"
HERD_SIMD=avx9 "$HERD" --version >"$TMP/out" 2>"$TMP/err" || bad "HERD_SIMD=avx9 fails"
[ "$(wc -l <"$TMP/err")" = 1 ] && cmp -s "$TMP/best" "$TMP/out" &&
    grep -q "HERD_SIMD=avx9: unknown (accepted: scalar, avx2, avx512, amx)" "$TMP/err" ||
    bad "HERD_SIMD=avx9: $(cat "$TMP/err" "$TMP/out")"
if ! grep -q amx_tile /proc/cpuinfo; then
    HERD_SIMD=amx "$HERD" --version >"$TMP/out" 2>"$TMP/err" || bad "HERD_SIMD=amx fails"
    [ "$(wc -l <"$TMP/err")" = 1 ] && cmp -s "$TMP/best" "$TMP/out" &&
        grep -q "HERD_SIMD=amx: this CPU has no AMX; using" "$TMP/err" ||
        bad "HERD_SIMD=amx: $(cat "$TMP/err" "$TMP/out")"
fi

# ---- run: the text ends with a newline before the timing line (stdout and
# stderr into one pipe: the timing line starts a line of its own)
"$HERD" run -m "$M" -p "And God said" -n 4 --temp 0 2>&1 | grep -q "^herd: prompt " ||
    bad "the timing line does not start a line"
# --chat on a model without a template names the format it falls back to
"$HERD" run -m "$M" --chat -p "Who made the earth?" -n 4 --temp 0 >/dev/null 2>"$TMP/err" ||
    bad "run --chat failed: $(cat "$TMP/err")"
grep -q "has no chat template; using the built-in '[a-z0-9-]*' format" "$TMP/err" ||
    bad "run --chat fallback not named: $(cat "$TMP/err")"

# ---- perplexity: default -c is min(training context, 512), printed
"$HERD" perplexity -m "$S" -f tests/data/kjv-heldout-20k.txt --chunks 2 >"$TMP/out" 2>/dev/null ||
    bad "perplexity failed"
grep -q "chunks of 256 tokens (-c 256, the default" "$TMP/out" || bad "default -c not 256: $(tail -1 "$TMP/out")"

# ---- outputs never replace an input, and leave no temporary file
cp "$M" "$TMP/m.gguf"
cp "$M" "$TMP/orig.gguf"
expect 2 perplexity -m "$TMP/m.gguf" -f tests/data/kjv-heldout-20k.txt --kl-divergence-base "$TMP/m.gguf"
expect 1 logits -m "$TMP/m.gguf" -p "And" --out "$TMP/m.gguf"
ln -s m.gguf "$TMP/link.gguf"
expect 1 logits -m "$TMP/m.gguf" -p "And" --out "$TMP/link.gguf"
expect 2 compare "$TMP/m.gguf" -p 8 -n 4 -r 3 --html "$TMP/m.gguf"
printf '/save %s\n' "$TMP/m.gguf" | "$HERD" chat -m "$TMP/m.gguf" >/dev/null 2>"$TMP/err"
grep -q "output is the input file" "$TMP/err" || bad "chat /save onto the model: $(cat "$TMP/err")"
cmp -s "$TMP/m.gguf" "$TMP/orig.gguf" || bad "an output replaced the model"
"$HERD" logits -m "$M" -p "And God" --out "$TMP/l.f32" 2>/dev/null || bad "logits failed"
[ "$(wc -c <"$TMP/l.f32")" -gt 0 ] || bad "logits wrote nothing"
printf '/save %s\n' "$TMP/conv.json" | "$HERD" chat -m "$M" >/dev/null 2>&1
[ -s "$TMP/conv.json" ] || bad "chat /save wrote nothing"
ls "$TMP" | grep -q '\.tmp-' && bad "a temporary file was left: $(ls "$TMP")"

# ---- progress on a terminal (script(1) gives one), none into a file
if command -v script >/dev/null 2>&1; then
    script -qc "'$HERD' bench -m '$M' -p 16 -n 4 -r 3" /dev/null >"$TMP/tty" 2>&1 </dev/null
    grep -q "tg4 run 3/3" "$TMP/tty" || bad "bench shows no progress on a terminal"
    # synth: its first tensors are enough to see (then it is stopped)
    timeout 20 script -qc "'$HERD' synth --shape tinyllama-1.1b --type q4_0 --vocab '$M' -o '$TMP/s.gguf' -t 1" \
        /dev/null >"$TMP/tty" 2>&1 </dev/null
    grep -q "\[ *2/ *[0-9]*\] [a-z]" "$TMP/tty" || bad "synth shows no progress on a terminal"
    rm -f "$TMP"/s.gguf*
else
    echo "skip: script(1) missing; bench progress not checked"
fi
"$HERD" bench -m "$M" -p 16 -n 4 -r 3 2>"$TMP/err" >/dev/null || bad "bench failed"
[ -s "$TMP/err" ] && bad "bench writes progress into a file: $(head -c 100 "$TMP/err")"

# ---- compare: phases, spread, bits per byte, the default -c, vocabularies
"$HERD" compare "$M" "$S" --text tests/data/kjv-heldout-20k.txt --chunks 2 -p 16 -n 4 -r 3 -t 1 \
    >"$TMP/table" 2>"$TMP/err" || bad "compare failed: $(cat "$TMP/err")"
grep -q "compare: \[1/2\] $M: load … " "$TMP/err" &&
    grep -q "compare: speed, runs interleaved across models: warm-up, run 1/3, run 2/3, run 3/3" "$TMP/err" &&
    grep -q "compare: \[1/2\] kjv-llama-q8_0.gguf: perplexity … " "$TMP/err" || bad "compare phases: $(cat "$TMP/err")"
grep -q "| *bpb |" "$TMP/table" || bad "no bits-per-byte column"
[ "$(grep -Ec '^\| kjv-.*[0-9] ± [0-9.]+ \| +[0-9.]+ \| +[0-9.]+ ± [0-9.]+ \|' "$TMP/table")" = 2 ] || bad "speeds without spread"
grep -q "kjv-stablelm-q8_0.gguf 256" "$TMP/table" || bad "compare default -c: $(grep perplexity: "$TMP/table")"
grep -q "herd bench's pp16 and tg4, each model loaded and resident, a warm-up then 3 runs" "$TMP/table" || bad "speed method not stated"
T=../shared/models/tiny
if [ -f "$T/llama-f32.gguf" ]; then
    "$HERD" compare "$M" "$T/llama-f32.gguf" --text tests/data/kjv-heldout-20k.txt --chunks 1 -c 64 \
        -p 8 -n 2 -r 3 -t 1 >"$TMP/table" 2>/dev/null || bad "compare of two vocabularies failed"
    grep -q "different vocabularies.*not comparable; bits per byte is" "$TMP/table" ||
        bad "no note on perplexities over different vocabularies"
elif [ "${HERD_REQUIRE_SHARED:-0}" = 1 ]; then
    bad "$T missing"
else
    echo "skip: $T missing; the vocabulary note is not checked"
fi
exit $fail
