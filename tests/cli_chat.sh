#!/bin/sh
# cli_chat.sh — `herd chat` from a pipe and in a real pseudo-terminal (tmux),
# and `herd run --chat`, on the tiny llama (gibberish but greedy, so every
# answer is reproducible).
#
# The terminal tests type into a tmux pane and read the screen back
# (capture-pane). The expected screen is the banner, then each typed line
# after the "> " prompt, then what the same input gives through a pipe
# (answers on stdout, notices on stderr): the same library call makes both, so
# any difference is the terminal layer's. Cases: a three-turn conversation,
# /reset, a context overflow (-c 128), and Ctrl-C in the middle of an answer,
# after which the program must be back at the prompt and answer again.
set -u
HERD=$1
M=../shared/models/tiny/llama-f32.gguf
. tests/lib.sh
need_shared "$M"
export OMP_WAIT_POLICY=passive
fail=0
tmp=$TMP
SOCK=herd-chat-test-$$
cleanup() {
    if command -v tmux >/dev/null 2>&1; then
        sock=$(tmux -L "$SOCK" display-message -p '#{socket_path}' 2>/dev/null)
        tmux -L "$SOCK" kill-server 2>/dev/null
        [ -n "$sock" ] && rm -f "$sock"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
check() { if [ "$1" != "$2" ]; then printf 'FAIL: %s\n  got:  [%s]\n  want: [%s]\n' "$3" "$1" "$2"; fail=1; fi; }
bad() { echo "FAIL: $1"; fail=1; }

# ---- pipe: one message per line, answers only, deterministic
printf 'hi\nhow are you\n' | "$HERD" chat -m "$M" --temp 0 -n 12 >"$tmp/p1" 2>"$tmp/p1.err" || bad "chat from a pipe exited non-zero"
printf 'hi\nhow are you\n' | "$HERD" chat -m "$M" --temp 0 -n 12 >"$tmp/p2" 2>/dev/null
cmp -s "$tmp/p1" "$tmp/p2" || bad "two runs from a pipe differ"
[ -s "$tmp/p1" ] || bad "no answers from a pipe"
[ -s "$tmp/p1.err" ] && { bad "a quiet pipe run wrote to stderr"; cat "$tmp/p1.err"; }
grep -q "$(printf '\033')" "$tmp/p1" && bad "escape codes in piped output"
grep -q '^> ' "$tmp/p1" && bad "a prompt in piped output"
# the first answer is `herd run --chat`'s
one=$(printf 'hi\n' | "$HERD" chat -m "$M" --temp 0 -n 12 2>/dev/null)
run=$("$HERD" run --chat -m "$M" -p hi --temp 0 -n 12 2>/dev/null)
check "$run" "$one" "run --chat = the first answer of chat"
# /save writes OpenAI-style messages; /quit stops reading
printf 'hi\n/save %s\n/quit\nnot read\n' "$tmp/conv.json" |
    "$HERD" chat -m "$M" --temp 0 -n 12 --system "Be brief." >/dev/null 2>"$tmp/save.err"
grep -q "^\[saved 3 messages to $tmp/conv.json\]$" "$tmp/save.err" || bad "/save notice"
got=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(" ".join(x["role"] for x in m), m[0]["content"], m[1]["content"], m[2]["content"] == sys.argv[2])' "$tmp/conv.json" "$one")
check "$got" "system user assistant Be brief. hi False" "/save contents"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m[2]["content"])' "$tmp/conv.json" >"$tmp/saved"
[ -s "$tmp/saved" ] || bad "/save: empty answer"
# cache reuse, as -v reports it: turn 2 finds all of turn 1 in the cache
printf 'hi\nhow are you\n' | "$HERD" chat -m "$M" --temp 0 -n 12 -v 2>&1 >/dev/null | sed 's/\[prompt \([0-9]*\) tokens: \([0-9]*\) from the cache, \([0-9]*\) decoded; \([0-9]*\) generated; \([0-9]*\) cached\]/\1 \2 \3 \4 \5/' >"$tmp/stats"
set -- $(sed -n 1p "$tmp/stats") $(sed -n 2p "$tmp/stats")
if [ $# -eq 10 ]; then
    check "$2 $3" "0 $1" "turn 1 decodes its whole prompt"
    check "$7" "$5" "turn 2 reuses all of turn 1 ($5 cached tokens)"
    check "$(($7 + $8))" "$6" "turn 2 decodes only its new tokens"
else bad "-v stats: $(cat "$tmp/stats")"; fi

# ---- terminal: tmux (installed by `make test-deps`)
if ! command -v tmux >/dev/null 2>&1; then
    skip_part "tmux not installed (make test-deps installs it), terminal tests not run"
    finish $fail
fi
T() { tmux -L "$SOCK" -f /dev/null "$@"; }
S=none n_sess=0 # the current tmux session
screen() { T capture-pane -p -J -t "$S" | sed 's/[[:space:]]*$//' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }
# wait until the screen shows N prompts ("> " at the start of a line: the
# prompt, with whatever was typed after it) and the program sits at the last
wait_prompts() {
    i=0
    until screen >"$tmp/now" && [ "$(grep -c '^>' "$tmp/now")" -ge "$1" ] &&
        [ "$(tail -n 1 "$tmp/now")" = ">" ]; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! T has-session -t "$S" 2>/dev/null; then
            bad "timeout waiting for prompt $1 ($2)"
            cat "$tmp/now"
            return 1
        fi
        sleep 0.1
    done
}
start() { # start ARGS...: herd chat in a fresh 250-column pane
    old=$S
    n_sess=$((n_sess + 1))
    S=chat$n_sess
    T new-session -d -s "$S" -x 250 -y 50 \
        "\"$HERD\" chat -m \"$M\" --temp 0 $*; echo \"[exit \$?]\"; sleep 600"
    T kill-session -t "$old" 2>/dev/null
}
# session NAME ARGS -- LINE...: type the lines one by one, then compare the
# screen with the banner, the typed lines and the piped output.
session() {
    name=$1 args=$2
    shift 2
    start "$args"
    wait_prompts 1 "$name start" || return
    : >"$tmp/in"
    k=1
    for line in "$@"; do
        printf '%s\n' "$line" >>"$tmp/in"
        T send-keys -t "$S" -l "$line"
        T send-keys -t "$S" Enter
        k=$((k + 1))
        wait_prompts $k "$name: $line" || return
    done
    screen >"$tmp/screen.$name"
    # expected: banner, then per line "> LINE" and what the pipe prints for it
    "$HERD" chat -m "$M" --temp 0 $args <"$tmp/in" >"$tmp/pipe.$name" 2>&1
    sed -n 1,2p "$tmp/screen.$name" >"$tmp/banner"
    grep -q '^herd chat: format chatml\. Commands: /reset, /system TEXT, /save FILE, /quit\.$' "$tmp/banner" ||
        bad "$name: banner"
    sed '1,2d' "$tmp/screen.$name" | grep -v '^>' >"$tmp/got.$name"
    sed 's/[[:space:]]*$//' "$tmp/pipe.$name" >"$tmp/want.$name"
    cmp -s "$tmp/got.$name" "$tmp/want.$name" || {
        bad "$name: screen differs from the piped output"
        diff "$tmp/want.$name" "$tmp/got.$name" | head -20
    }
    sed 's/^/> /' "$tmp/in" >"$tmp/want_in"
    echo ">" >>"$tmp/want_in"
    grep '^>' "$tmp/screen.$name" | sed 's/[[:space:]]*$//' >"$tmp/got_in"
    cmp -s "$tmp/got_in" "$tmp/want_in" || bad "$name: prompts and typed lines"
}

session three "-n 12" "hello" "how are you" "third turn"
[ "$(grep -c . "$tmp/got.three")" -ge 3 ] || bad "three turns: fewer than 3 answer lines"

session reset "-n 12" "hi" "/reset" "hi"
grep -q '^\[conversation reset\]$' "$tmp/got.reset" || bad "/reset notice"
# after /reset the conversation starts over: the same first answer
a1=$(sed -n 1p "$tmp/got.reset") a2=$(sed -n 3p "$tmp/got.reset")
check "$a2" "$a1" "the answer after /reset"

session overflow "-n 16 -c 128 --system Terse." "hi" "how are you" "third one" "fourth message"
check "$(grep -c '^\[context full: dropped the oldest 2 messages\]$' "$tmp/got.overflow")" 2 \
    "overflow notices"

# Ctrl-C in the middle of a long answer: back at the prompt, and answering.
# wait until the answer to LINE has begun
wait_answer() {
    i=0
    until screen | sed -n "/^> $1\$/{n;p;}" | grep -q .; do
        i=$((i + 1))
        [ $i -gt 600 ] && { bad "no answer to '$1'"; return 1; }
        sleep 0.1
    done
    sleep 0.3
}
start "-n 1000000 -c 16384"
wait_prompts 1 "ctrl-c start"
T send-keys -t "$S" "tell me a long story" Enter
wait_answer "tell me a long story"
T send-keys -t "$S" C-c
wait_prompts 2 "after Ctrl-C"
screen >"$tmp/screen.ctrlc"
grep -q '^\[stopped\]$' "$tmp/screen.ctrlc" || bad "Ctrl-C: no [stopped] notice"
[ "$(tail -n 1 "$tmp/screen.ctrlc")" = ">" ] || bad "Ctrl-C: not at the prompt"
grep -q '^\[exit' "$tmp/screen.ctrlc" && bad "Ctrl-C ended the program"
T send-keys -t "$S" "and now" Enter
wait_answer "and now"
T send-keys -t "$S" C-c
wait_prompts 3 "second answer"
screen >"$tmp/screen.ctrlc2"
[ "$(grep -c '^\[stopped\]$' "$tmp/screen.ctrlc2")" = 2 ] || bad "Ctrl-C: the next message got no answer"
ans=$(sed -n '/^> and now$/{n;p;}' "$tmp/screen.ctrlc2")
[ -n "$ans" ] && [ "$ans" != "[stopped]" ] || bad "Ctrl-C: empty second answer"
# Ctrl-C at the prompt ends the program
T send-keys -t "$S" C-c
i=0
while ! screen | grep -q '^\[exit 0\]$'; do
    i=$((i + 1))
    [ $i -gt 100 ] && { bad "Ctrl-C at the prompt did not exit"; screen | tail -5; break; }
    sleep 0.1
done
[ $fail = 0 ] && echo "cli_chat: all passed"
finish $fail
