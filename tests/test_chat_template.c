/*
 * test_chat_template.c — the chat-template renderer against transformers.
 *
 * Runs every case of ../shared/chat/cases.jsonl (real model templates,
 * expected renderings made with jinja2 as transformers configures it) and
 * ../shared/chat/named.jsonl (the built-in formats), byte for byte, printing
 * the name of each failing case. Then checks that unsupported constructs and
 * malformed templates fail with a message naming the problem, never a crash
 * or a silent wrong rendering, plus a few semantics the cases do not reach.
 */
#include "helpers.h"
#include "chat/chat.h"
#include "gguf/gguf.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where two strings first differ, for the failure report. */
static void show_diff(const char *name, const char *want, const char *got)
{
    size_t i = 0;
    while (want[i] && want[i] == got[i]) i++;
    size_t from = i > 30 ? i - 30 : 0;
    fprintf(stderr, "FAIL %s: differs at byte %zu\n  want: %.80s\n  got:  %.80s\n", name, i,
            want + from, got + from);
}

static const char *str_or_null(const json_t *j)
{
    return json_is_string(j) ? json_string_value(j) : NULL;
}

/* The most any case used of the render budget (chat.h's limits). */
static herd_chat_usage most;

/* One case of cases.jsonl; true if it passes. */
static bool run_case(const json_t *c, const char *tmpl_dir)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmpl_dir,
             json_string_value(json_object_get(c, "template")));
    char *src = test_read_file(path, NULL);
    if (!src) {
        fprintf(stderr, "FAIL %s: cannot read %s\n", name, path);
        return false;
    }
    herd_chat_input in = {
        .messages = json_object_get(c, "messages"),
        .extra = json_object_get(c, "extra"),
        .bos_token = str_or_null(json_object_get(c, "bos_token")),
        .eos_token = str_or_null(json_object_get(c, "eos_token")),
        .add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt")),
    };
    char *out = NULL;
    bool raised = false;
    herd_status st = herd_chat_render(src, &in, &out, NULL, &raised);
    free(src);
    herd_chat_usage u;
    herd_chat_last_usage(&u);
    CHECKF(u.limit == HERD_CHAT_LIMIT_NONE, "%s hit %s", name, herd_chat_limit_name(u.limit));
    if (u.steps > most.steps) most.steps = u.steps;
    if (u.output > most.output) most.output = u.output;
    if (u.depth > most.depth) most.depth = u.depth;
    const char *want = str_or_null(json_object_get(c, "expected"));
    const char *err = str_or_null(json_object_get(c, "error"));
    bool ok;
    if (want) {
        ok = st == HERD_OK && !strcmp(out, want);
        if (st)
            fprintf(stderr, "FAIL %s: %s\n", name, herd_errmsg());
        else if (!ok)
            show_diff(name, want, out);
    } else {
        ok = st == HERD_E_INVALID && raised && err && !strcmp(herd_errmsg(), err);
        if (!ok)
            fprintf(stderr, "FAIL %s: want error \"%s\", got status %d \"%s\"\n", name,
                    err ? err : "?", st, st ? herd_errmsg() : "(rendered)");
    }
    free(out);
    return ok;
}

static bool run_named_case(const json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *fmt = json_string_value(json_object_get(c, "format"));
    char *out = NULL;
    herd_status st = herd_chat_named_render(
        fmt, json_object_get(c, "messages"),
        json_is_true(json_object_get(c, "add_generation_prompt")), &out, NULL);
    const char *want = str_or_null(json_object_get(c, "expected"));
    bool ok = st == HERD_OK && want && !strcmp(out, want);
    if (st)
        fprintf(stderr, "FAIL %s: %s\n", name, herd_errmsg());
    else if (!ok)
        show_diff(name, want ? want : "", out);
    free(out);
    return ok;
}

/* Run every JSON line of a file through fn; returns false if the file is missing. */
static bool run_file(const char *rel, bool named, const char *tmpl_dir)
{
    char path[1024];
    if (!test_shared(rel, path, sizeof path)) return false;
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return false;
    char *line = NULL;
    size_t cap = 0;
    int total = 0, passed = 0, lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line)) continue; /* a blank line */
        json_error_t e;
        json_t *c = json_loads(line, 0, &e);
        CHECKF(c != NULL, "%s:%d: %s", rel, lineno, e.text); /* a case that does not parse fails */
        if (!c) continue;
        total++;
        bool ok = named ? run_named_case(c) : run_case(c, tmpl_dir);
        passed += ok;
        CHECKF(ok, "%s", json_string_value(json_object_get(c, "name")));
        json_decref(c);
    }
    free(line);
    fclose(f);
    fprintf(stderr, "%s: %d/%d passed\n", rel, passed, total);
    CHECK(total > 0);
    return true;
}

/* ------------------------------------------------------ targeted checks */

/* Render src with messages [{"role":"user","content":"hi"}] and no tokens. */
static herd_status render(const char *src, const char *extra_json, char **out)
{
    json_t *msgs = json_loads("[{\"role\": \"user\", \"content\": \"hi\"}]", 0, NULL);
    json_t *extra = extra_json ? json_loads(extra_json, 0, NULL) : NULL;
    herd_chat_input in = {.messages = msgs, .extra = extra, .add_generation_prompt = true};
    herd_status st = herd_chat_render(src, &in, out, NULL, NULL);
    json_decref(msgs);
    json_decref(extra);
    return st;
}

static void expect_render(const char *src, const char *extra, const char *want)
{
    char *out = NULL;
    herd_status st = render(src, extra, &out);
    CHECKF(st == HERD_OK && !strcmp(out, want), "%s -> \"%s\" (want \"%s\") %s", src,
           out ? out : "", want, st ? herd_errmsg() : "");
    free(out);
}

/* The render fails with status st and a message containing needle. */
static void expect_error(const char *src, herd_status want, const char *needle)
{
    char *out = NULL;
    herd_status st = render(src, NULL, &out);
    CHECKF(st == want && strstr(herd_errmsg(), needle), "%s -> status %d \"%s\" (want %d, \"%s\")",
           src, st, herd_errmsg(), want, needle);
    CHECK(out == NULL);
    free(out);
}

static void test_unsupported(void)
{
    expect_error("{% include 'x.jinja' %}", HERD_E_UNSUPPORTED, "{% include %}");
    expect_error("a\n{% extends 'base' %}", HERD_E_UNSUPPORTED, "line 2");
    expect_error("{% import 'm' as m %}", HERD_E_UNSUPPORTED, "{% import %}");
    expect_error("{% call foo() %}x{% endcall %}", HERD_E_UNSUPPORTED, "{% call %}");
    expect_error("{% block b %}{% endblock %}", HERD_E_UNSUPPORTED, "{% block %}");
    expect_error("{% for x in y recursive %}{% endfor %}", HERD_E_UNSUPPORTED, "recursive");
    expect_error("{{ 'a' | format(1) }}", HERD_E_UNSUPPORTED, "'format' filter");
    expect_error("{{ [1] | batch(1) }}", HERD_E_UNSUPPORTED, "'batch' filter");
    expect_error("{{ '%s' % 'x' }}", HERD_E_UNSUPPORTED, "string formatting");
    expect_error("{{ 'a{}'.format(1) }}", HERD_E_UNSUPPORTED, "str.format");
    expect_error("{{ f(*args) }}", HERD_E_UNSUPPORTED, "*args");
}

static void test_malformed(void)
{
    expect_error("{{ x", HERD_E_FORMAT, "unclosed '{{'");
    expect_error("{% if x %}", HERD_E_FORMAT, "'endif'");
    expect_error("{% for x in y %}", HERD_E_FORMAT, "expected 'endfor'");
    expect_error("{% endif %}", HERD_E_FORMAT, "unexpected 'endif'");
    expect_error("{# never closed", HERD_E_FORMAT, "unclosed comment");
    expect_error("{{ x | nosuchfilter }}", HERD_E_FORMAT, "no filter named 'nosuchfilter'");
    expect_error("{% if 0 %}{{ x | nosuchfilter }}{% endif %}", HERD_E_FORMAT, "no filter named");
    expect_error("{{ x is nosuchtest }}", HERD_E_FORMAT, "no test named 'nosuchtest'");
    expect_error("{% do x %}", HERD_E_FORMAT, "unknown tag 'do'");
    expect_error("{{ 'unterminated }}", HERD_E_FORMAT, "unterminated string");
    expect_error("{{ (1 + }}", HERD_E_FORMAT, "line 1");
    expect_error("{{ ) }}", HERD_E_FORMAT, "unexpected ')'");
    expect_error("{% break %}", HERD_E_FORMAT, "outside of a loop");
    expect_error("{% set %}", HERD_E_FORMAT, "expected a variable name");
    expect_error("{{ }}", HERD_E_FORMAT, "expected an expression");
    expect_error("{% macro m(a=1, b) %}{% endmacro %}", HERD_E_FORMAT, "non-default");
    expect_error("{% %}", HERD_E_FORMAT, "tag name");
    expect_error("{{ a $ b }}", HERD_E_FORMAT, "unexpected character");
    /* Deep nesting is refused, not a stack overflow. */
    char deep[4096] = "{{ ";
    for (int i = 0; i < 1000; i++) strcat(deep, "(");
    strcat(deep, "1 }}");
    expect_error(deep, HERD_E_FORMAT, "nested too deeply");
    /* Runtime errors are errors, not renderings. */
    expect_error("{{ undefined_name + 'x' }}", HERD_E_INVALID, "'undefined_name' is undefined");
    expect_error("{{ 'a' + 1 }}", HERD_E_INVALID, "can only concatenate str");
    expect_error("{{ nothing.attr }}", HERD_E_INVALID, "'nothing' is undefined");
    expect_error("{% for x in none %}{% endfor %}", HERD_E_INVALID, "not iterable");
    expect_error("{{ [1].append(2) }}", HERD_E_INVALID, "unsafe");
    expect_error("{{ raise_exception('boom') }}", HERD_E_INVALID, "boom");
    expect_error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", HERD_E_INVALID, "recursion");
    expect_error("{{ range(1000000) | length }}", HERD_E_INVALID, "Range too big");
    expect_error("{{ 1 // 0 }}", HERD_E_INVALID, "division");
}

static void test_semantics(void)
{
    /* whitespace control */
    expect_render("  {% if true %}\n  x\n  {% endif %}\n", NULL, "  x\n");
    expect_render("a  {%- if true -%}  b  {%- endif -%}  c", NULL, "abc");
    expect_render("{{ 'x' }}\n{{ 'y' }}\n", NULL, "x\ny");
    expect_render("a {# c #}\n b", NULL, "a  b");
    expect_render("{% raw %}{{ x }}{% endraw %}", NULL, "{{ x }}");
    expect_render("x\r\ny", NULL, "x\ny");
    /* values and operators */
    expect_render(
        "{{ none }} {{ true }} {{ 1.0 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 7 // -2 }} {{ -7 % 3 }}",
        NULL, "None True 1.0 1e+20 0.30000000000000004 -4 2");
    expect_render("{{ [1, 'a', none, (2,)] }} {{ {'k': \"it's\"} }}", NULL,
                  "[1, 'a', None, (2,)] {'k': \"it's\"}");
    expect_render("{{ 'abc'[::-1] }}{{ '你好'[1] }}{{ '你好'|length }}", NULL, "cba好2");
    expect_render("{{ 1 ~ none ~ undefined_x }}", NULL, "1None");
    expect_render("{{ 'x' if false }}|{{ a or 'd' }}|{{ 0 and 1 }}", NULL, "|d|0");
    expect_render("{{ 'ab' * 3 }} {{ [1] + [2] }} {{ 2 ** 10 }} {{ 1 < 2 < 3 }}", NULL,
                  "ababab [1, 2] 1024 True");
    /* loops */
    expect_render("{% for x in [1,2,3] %}{{ loop.index }}{{ loop.revindex0 }}{% if loop.last %}!{% "
                  "endif %}{% endfor %}",
                  NULL, "122130!");
    expect_render("{% for x in range(10) %}{% if x is even %}{% continue %}{% endif %}{% if x > 6 "
                  "%}{% break %}{% endif %}{{ x }}{% endfor %}",
                  NULL, "135");
    expect_render("{% for k, v in {'a': 1, 'b': 2}.items() if v > 1 %}{{ k }}{{ loop.length }}{% "
                  "else %}none{% endfor %}",
                  NULL, "b1");
    expect_render("{% for x in [] %}x{% else %}empty{% endfor %}", NULL, "empty");
    expect_render("{% set r = 'a' %}{% for x in [1] %}{% set r = 'b' %}{% endfor %}{{ r }}", NULL,
                  "a");
    expect_render("{% set ns = namespace(r='a') %}{% for x in [1] %}{% set ns.r = 'b' %}{% endfor "
                  "%}{{ ns.r }}",
                  NULL, "b");
    expect_render("{% for x in 'ab' %}{{ loop.cycle('x', 'y') }}{{ loop.previtem }}{% endfor %}",
                  NULL, "xya");
    /* macros */
    expect_render("{% macro m(a, b='B') %}{{ a }}{{ b }}{{ varargs|length }}{% endmacro %}{{ m(1) "
                  "}}{{ m(1, b=2) }}{{ m(1, 2, 3) }}",
                  NULL, "1B0120121");
    expect_render("{% set x %}in{{ 1 }}{% endset %}{{ x }}{% filter upper %}up{% endfilter %}",
                  NULL, "in1UP");
    expect_render("{% with a = 1 %}{{ a }}{% endwith %}{{ a }}", NULL, "1");
    /* filters */
    expect_render("{{ '  a b  ' | trim }}|{{ 'a\nb' | indent(2, first=true) }}|{{ [3,1,2] | sort | "
                  "join(',') }}",
                  NULL, "a b|  a\n  b|1,2,3");
    expect_render(
        "{{ ['a','B','a'] | unique | list }} {{ 'hello world-x' | title }} {{ \"it's\".title() }}",
        NULL, "['a', 'B'] Hello World-X It'S");
    expect_render(
        "{{ [{'a': 1}, {'b': 2}] | selectattr('a', 'defined') | map(attribute='a') | list }}", NULL,
        "[1]");
    expect_render("{{ {'a': [1, 2.5, true, none, 'é\"\\n']} | tojson }}", NULL,
                  "{\"a\": [1, 2.5, true, null, \"é\\\"\\n\"]}");
    expect_render("{{ {'a': [], 'b': {'c': 1}} | tojson(indent=2) }}", NULL,
                  "{\n  \"a\": [],\n  \"b\": {\n    \"c\": 1\n  }\n}");
    expect_render("{{ x | default('d') }}{{ '' | default('e', true) }}{{ none | string }}", NULL,
                  "deNone");
    expect_render("{{ strftime_now('%Y-%m-%d %H:%M %A %b') }}", NULL,
                  "2025-01-15 10:30 Wednesday Jan");
    expect_render(
        "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'x'.startswith(('y', 'x')) }}", NULL,
        "['a', 'b', '', 'c'] ['a', 'b'] True");
    /* jinja2 quirks: generators are true and single-pass; block bodies are scoped */
    expect_render(
        "{% set g = [1, 2] | select('odd') %}{% if g %}t{% endif %}{{ g | list }}{{ g | list }}",
        NULL, "t[1][]");
    expect_render("{% if [] | select %}always{% endif %}{{ [] | select | list | length }}", NULL,
                  "always0");
    expect_render(
        "{% set x %}{% set y = 1 %}{% endset %}{% filter upper %}{% set z = 1 %}{% endfilter %}"
        "{{ y is defined }}{{ z is defined }}",
        NULL, "FalseFalse");
    expect_render(
        "{{ 2.5 is odd }}{{ 3.0 is odd }}{{ 4 is divisibleby 2 }}{{ undefined_l | last }}", NULL,
        "FalseTrueTrue");
    expect_render("{{ {'a': 1}.items() }} {{ range(3) | list }}", NULL,
                  "dict_items([('a', 1)]) [0, 1, 2]");
    expect_error("{{ [1] | map('string') }}", HERD_E_UNSUPPORTED, "printing a generator");
    expect_error("{{ [1] | select | length }}", HERD_E_INVALID, "has no len()");
    expect_error("{% set n = 5 %}{{ n[1:] }}", HERD_E_INVALID, "not subscriptable");
    /* context */
    expect_render("{{ tools is none }}{{ documents is defined }}{{ bos_token is defined }}{{ "
                  "messages[0].content }}",
                  NULL, "TrueTrueFalsehi");
    expect_render("{{ tools | length }}{{ custom }}", "{\"tools\": [1], \"custom\": \"c\"}", "1c");
    expect_render("{{ tools }}", "{\"tools\": []}", "None");
}

static void test_named(void)
{
    CHECK(herd_chat_named_exists("llama-2"));
    CHECK(herd_chat_named_exists("mistral"));
    CHECK(!strcmp(herd_chat_named_canonical("llama-2"), "llama2"));
    CHECK(!strcmp(herd_chat_named_canonical("mistral"), "mistral-v1"));
    CHECK(!herd_chat_named_exists("nope"));
    CHECK(!strcmp(herd_chat_named_pick("llama", "Vicuna 13B v1.5"), "vicuna"));
    CHECK(!strcmp(herd_chat_named_pick("phi2", "Phi 2"), "phi-2"));
    CHECK(!strcmp(herd_chat_named_pick("falcon", "Falcon 7B Instruct"), "falcon"));
    CHECK(!strcmp(herd_chat_named_pick("gptneox", "StableLM Tuned Alpha"), "stablelm-alpha"));
    CHECK(!strcmp(herd_chat_named_pick("stablelm", NULL), "stablelm-alpha"));
    CHECK(!strcmp(herd_chat_named_pick("llama", "Mistral 7B Instruct"), "mistral-v1"));
    CHECK(!strcmp(herd_chat_named_pick("llama", "Zephyr 7B Beta"), "zephyr"));
    CHECK(!strcmp(herd_chat_named_pick("llama", "Llama 2 7B Chat"), "llama2"));
    CHECK(!strcmp(herd_chat_named_pick("llama", "Llama 2 7B"), "chatml"));
    CHECK(!strcmp(herd_chat_named_pick(NULL, NULL), "chatml"));
    char *out = NULL;
    json_t *bad = json_loads("[{\"role\": \"user\"}]", 0, NULL);
    CHECK(herd_chat_named_render("chatml", bad, true, &out, NULL) == HERD_OK);
    CHECK(out && !strcmp(out, "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"));
    free(out);
    json_decref(bad);
    CHECK(herd_chat_named_render("nope", NULL, true, &out, NULL) == HERD_E_INVALID);
}

/* `herd template -m`: the template and the BOS/EOS texts come from the GGUF
 * file; the token flags override them. */
static void test_cli_model(void)
{
    const char *bin = test_herd_bin();
    if (access(bin, X_OK) != 0) {
        test_skip("no herd binary at %s", bin);
        return;
    }
    char gguf[512], msgs[512], cmd[2048];
    snprintf(gguf, sizeof gguf, "%s/chat.gguf", test_tmpdir());
    snprintf(msgs, sizeof msgs, "%s/msgs.json", test_tmpdir());
    const char *toks[] = {"<unk>", "<s>", "</s>", "hi"};
    gguf_writer *w = herd_gguf_writer_new();
    CHECK(w != NULL);
    if (!w) return;
    CHECK(herd_gguf_set_str(w, "general.architecture", "llama") == HERD_OK);
    CHECK(herd_gguf_set_str(
              w, "tokenizer.chat_template",
              "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{{ "
              "eos_token }}{% endfor %}{% if add_generation_prompt %}>{% endif %}") == HERD_OK);
    CHECK(herd_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4) == HERD_OK);
    CHECK(herd_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1) == HERD_OK);
    CHECK(herd_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2) == HERD_OK);
    CHECK(herd_gguf_write_file(w, gguf) == HERD_OK);
    herd_gguf_writer_free(w);
    const char *json = "[{\"role\": \"user\", \"content\": \"hi\"}]";
    CHECK(test_write_file(msgs, json, strlen(json)));
    char *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "%s template -m %s --messages %s --add-generation-prompt", bin, gguf,
             msgs);
    int rc = test_run(cmd, &out, &err);
    CHECKF(rc == 0 && out && !strcmp(out, "<s>[user:hi]</s>>"), "-m: rc %d out '%s' err '%s'", rc,
           out ? out : "", err ? err : "");
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "%s template -m %s --messages %s --bos-token B --eos-token E", bin,
             gguf, msgs);
    rc = test_run(cmd, &out, &err);
    CHECKF(rc == 0 && out && !strcmp(out, "B[user:hi]E"), "-m with tokens: rc %d out '%s'", rc,
           out ? out : "");
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "%s template -m %s --chat-template zephyr --messages %s", bin, gguf,
             msgs);
    rc = test_run(cmd, &out, &err);
    CHECKF(rc == 0 && out && !strcmp(out, "<|user|>\nhi<|endoftext|>\n"),
           "-m with a named format: rc %d out '%s'", rc, out ? out : "");
    free(out);
    free(err);
}

int main(void)
{
    char tmpl_dir[1024];
    if (test_shared("chat/templates", tmpl_dir, sizeof tmpl_dir)) {
        run_file("chat/cases.jsonl", false, tmpl_dir);
        /* chat.h's limits are meant to be over 100x what real templates need. */
        fprintf(stderr, "most a case needs: %llu steps, %zu output bytes, depth %d\n",
                (unsigned long long)most.steps, most.output, most.depth);
        CHECK(most.steps > 0 && most.steps * 100 <= HERD_CHAT_MAX_STEPS);
        CHECK(most.output > 0 && most.output * 100 <= HERD_CHAT_MAX_OUTPUT);
        CHECK(most.depth > 0 && most.depth * 100 <= HERD_CHAT_MAX_DEPTH);
        run_file("chat/named.jsonl", true, tmpl_dir);
    }
    test_unsupported();
    test_malformed();
    test_semantics();
    test_named();
    test_cli_model();
    return test_report();
}
