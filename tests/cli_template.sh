#!/bin/sh
# cli_template.sh — `herd template` end to end: real templates and built-in
# formats rendered byte for byte, kwargs and tools from a request object, a
# template that raises, and bad input (one error line, non-zero exit).
# Usage: sh tests/cli_template.sh path/to/herd   (from the repository root)
HERD=${1:?usage: cli_template.sh HERD_BINARY}
T=../shared/chat/templates
TINY=../shared/models/tiny
. tests/lib.sh
D=$TMP
fails=0

fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

# expect NAME EXPECTED_TEXT ARGS... : stdout must be exactly EXPECTED_TEXT
# (printf escapes allowed), stderr empty, exit 0.
expect() {
    name=$1 want=$2
    shift 2
    printf "$want" >"$D/want"
    "$HERD" template "$@" >"$D/out" 2>"$D/err"
    rc=$?
    [ $rc -eq 0 ] || fail "$name: exit $rc: $(cat "$D/err")"
    [ -s "$D/err" ] && fail "$name: unexpected stderr: $(cat "$D/err")"
    cmp -s "$D/want" "$D/out" || fail "$name: got '$(cat "$D/out")'"
}

# expect_error NAME CODE NEEDLE ARGS... : exit CODE, nothing on stdout, one
# stderr line containing NEEDLE.
expect_error() {
    name=$1 code=$2 needle=$3
    shift 3
    "$HERD" template "$@" >"$D/out" 2>"$D/err"
    rc=$?
    [ $rc -eq "$code" ] || fail "$name: exit $rc, want $code"
    [ -s "$D/out" ] && fail "$name: unexpected stdout: $(cat "$D/out")"
    [ "$(wc -l <"$D/err")" -eq 1 ] || fail "$name: want one stderr line, got: $(cat "$D/err")"
    grep -qF -- "$needle" "$D/err" || fail "$name: stderr lacks '$needle': $(cat "$D/err")"
}

need_shared "$T" "$TINY"

cat >"$D/chat.json" <<'EOF'
[{"role": "system", "content": "Be brief."},
 {"role": "user", "content": "Hello!"},
 {"role": "assistant", "content": "Hi there."},
 {"role": "user", "content": "  Ça va? 🙂\n"}]
EOF

# A real template from a file, with the tokens given on the command line.
expect "chatml file" \
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi there.<|im_end|>\n<|im_start|>user\n  Ça va? 🙂\n<|im_end|>\n<|im_start|>assistant\n' \
    --chat-template "$T/chatml.jinja" --messages "$D/chat.json" --add-generation-prompt
expect "llama-2 template, tokens" \
    '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello! [/INST] Hi there. </s><s>[INST] Ça va? 🙂 [/INST]' \
    --chat-template "$T/llama-2-chat.jinja" --messages "$D/chat.json" --bos-token '<s>' --eos-token '</s>'
# Omitted tokens are undefined: they print as nothing, and '+' on them fails as in jinja2.
printf '%s' '[{{ bos_token }}|{{ eos_token is defined }}]' >"$D/tok.jinja"
expect "no tokens" '[|False]' --chat-template "$D/tok.jinja" --messages "$D/chat.json"
expect_error "undefined token in +" 1 "'bos_token' is undefined" \
    --chat-template "$T/llama-2-chat.jinja" --messages "$D/chat.json"

# Built-in formats, by name and by alias.
expect "named llama2" '[INST] Be brief.\nHello! [/INST]Hi there.</s>[INST]   Ça va? 🙂\n [/INST]' \
    --chat-template llama-2 --messages "$D/chat.json" --add-generation-prompt
expect "named phi-2" 'Be brief.\nInstruct: Hello!\nOutput: Hi there.\nInstruct:   Ça va? 🙂\n\nOutput:' \
    --chat-template phi-2 --messages "$D/chat.json" --add-generation-prompt

# An OpenAI-style request: tools and chat_template_kwargs become variables.
cat >"$D/req.json" <<'EOF'
{"messages": [{"role": "user", "content": "hi"}],
 "tools": [{"type": "function", "function": {"name": "f"}}],
 "chat_template_kwargs": {"enable_thinking": false, "who": "you"}}
EOF
printf '%s' '{{ messages[0].content }}|{{ tools[0].function.name }}|{{ enable_thinking }}|{{ who }}|{{ documents }}|{{ add_generation_prompt }}' >"$D/vars.jinja"
expect "request object" 'hi|f|False|you|None|False' --chat-template "$D/vars.jinja" --messages "$D/req.json"
"$HERD" template --chat-template "$T/qwen3.jinja" --messages "$D/req.json" --add-generation-prompt >"$D/out" 2>&1 ||
    fail "qwen3: exit $?"
tail -c 19 "$D/out" | grep -q '<think>' || fail "qwen3: no empty think block: $(tail -c 60 "$D/out")"

# A model file without a template gets the built-in format for its architecture.
if [ -f "$TINY/phi2-f32.gguf" ]; then
    printf '[{"role": "user", "content": "Hello!"}]' >"$D/one.json"
    expect "-m phi2" 'Instruct: Hello!\nOutput:' -m "$TINY/phi2-f32.gguf" --messages "$D/one.json" --add-generation-prompt
    expect "-m stablelm" '<|USER|>Hello!<|ASSISTANT|>' -m "$TINY/stablelm-f32.gguf" --messages "$D/one.json" --add-generation-prompt
fi

# raise_exception: the template's message, exit 1.
expect_error "gemma system" 1 "herd: template error: System role not supported" \
    --chat-template "$T/gemma-2-it.jinja" --messages "$D/chat.json" --bos-token '<bos>'

# Bad input.
expect_error "missing messages file" 1 "cannot read" --chat-template chatml --messages "$D/nope.json"
printf '[{"role": "user", "content": "x"' >"$D/bad.json"
expect_error "invalid JSON" 1 "invalid JSON" --chat-template chatml --messages "$D/bad.json"
printf '{"msgs": []}' >"$D/shape.json"
expect_error "wrong shape" 1 "messages" --chat-template chatml --messages "$D/shape.json"
expect_error "unknown template" 1 "neither a built-in format nor a readable file" \
    --chat-template no-such-format --messages "$D/chat.json"
printf '{%% if x %%}' >"$D/broken.jinja"
expect_error "syntax error" 1 "template syntax error" --chat-template "$D/broken.jinja" --messages "$D/chat.json"
printf '{%% include "x" %%}' >"$D/unsup.jinja"
expect_error "unsupported" 1 "unsupported template construct" --chat-template "$D/unsup.jinja" --messages "$D/chat.json"
expect_error "missing model" 1 "$D/none.gguf" -m "$D/none.gguf" --messages "$D/chat.json"
# Hostile templates (issue 21): one error line naming the limit, exit 1,
# nothing rendered; before the render budget these crashed, hung or ate memory.
hostile() {
    name=$1 needle=$2
    printf '%s' "$3" >"$D/hostile.jinja"
    expect_error "$name" 1 "$needle" --chat-template "$D/hostile.jinja" --messages "$D/chat.json"
}
hostile "namespace containing itself" HERD_CHAT_MAX_DEPTH \
    '{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}'
hostile "list nested 100,000 deep" HERD_CHAT_MAX_DEPTH \
    '{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l == ns.l }}'
hostile "2 ** INT64_MAX" "big integers" '{{ 2 ** 9223372036854775807 }}'
hostile "three nested range(1000)" HERD_CHAT_MAX_STEPS \
    '{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}'
hostile "string repetition" HERD_CHAT_MAX_OUTPUT "{{ 'aaaa' * 4611686018427387904 }}"
hostile "center width" HERD_CHAT_MAX_OUTPUT "{{ 'x' | center(9223372036854775807) }}"
hostile "indent width" HERD_CHAT_MAX_OUTPUT "{{ 'x' | indent(9223372036854775807) }}"
hostile "large string in a long loop" HERD_CHAT_MAX_OUTPUT \
    "{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{{ s }}{% endfor %}"
hostile "70-digit integer" "integer literal 1234567890123456789012345678901234567890" \
    '{{ 1234567890123456789012345678901234567890123456789012345678901234567890 }}'
printf '{{ 1%072d.5 }}' 0 >"$D/float.jinja"
expect "long float literal" '1e+72' --chat-template "$D/float.jinja" --messages "$D/chat.json"
printf '{{ 1 ** 9223372036854775807 }}' >"$D/pow.jinja"
expect "1 ** INT64_MAX" '1' --chat-template "$D/pow.jinja" --messages "$D/chat.json"

"$HERD" template --messages "$D/chat.json" >/dev/null 2>&1
[ $? -eq 2 ] || fail "no template source: want exit 2"
"$HERD" template --chat-template chatml --bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown option: want exit 2"

if [ $fails -ne 0 ]; then
    echo "cli_template: $fails failure(s)" >&2
    exit 1
fi
echo "cli_template: ok"
