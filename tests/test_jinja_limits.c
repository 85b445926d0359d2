/*
 * test_jinja_limits.c — hostile templates end with a clean error (issue 21).
 *
 * Each template here crashed the renderer (stack overflow), spun forever, or
 * allocated gigabytes before the render budget existed (chat.h: steps, output
 * bytes, depth, and the cancel flag). Each must now stop with a status and a
 * message naming the limit, never a rendering cut short and reported as
 * complete. The tests assert the error, not the time; that each one ends
 * within 2 s and 256 MB, plain and under ASan, was checked once with
 * /usr/bin/time -v (README).
 */
#include "helpers.h"
#include "chat/chat.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Render src over one user message; *out NULL unless it rendered. */
static herd_status render_with(const char *src, const atomic_bool *cancel, char **out)
{
    json_t *msgs = json_loads("[{\"role\": \"user\", \"content\": \"hi\"}]", 0, NULL);
    herd_chat_input in = {.messages = msgs, .add_generation_prompt = true, .cancel = cancel};
    herd_status st = herd_chat_render(src, &in, out, NULL, NULL);
    json_decref(msgs);
    return st;
}

/* The render of src stops on limit, with status st and a message holding needle. */
static void expect_limit(const char *what, const char *src, herd_chat_limit limit, herd_status want,
                         const char *needle)
{
    char *out = NULL;
    herd_status st = render_with(src, NULL, &out);
    herd_chat_usage u;
    herd_chat_last_usage(&u);
    CHECKF(st == want && strstr(herd_errmsg(), needle), "%s: status %d \"%s\" (want %d, \"%s\")",
           what, st, herd_errmsg(), want, needle);
    CHECKF(u.limit == limit, "%s: limit %s, want %s", what, herd_chat_limit_name(u.limit),
           herd_chat_limit_name(limit));
    CHECKF(out == NULL, "%s: a rendering was returned", what);
    free(out);
}

static void expect_text(const char *what, const char *src, const char *want)
{
    char *out = NULL;
    herd_status st = render_with(src, NULL, &out);
    CHECKF(st == HERD_OK && out && !strcmp(out, want), "%s: status %d \"%s\", got \"%.80s\"", what,
           st, st ? herd_errmsg() : "", out ? out : "");
    free(out);
}

static void expect_error(const char *what, const char *src, herd_status want, const char *needle)
{
    char *out = NULL;
    herd_status st = render_with(src, NULL, &out);
    CHECKF(st == want && strstr(herd_errmsg(), needle), "%s: status %d \"%s\" (want %d, \"%s\")",
           what, st, herd_errmsg(), want, needle);
    CHECK(out == NULL);
    free(out);
}

/* Unbounded recursion: a namespace printed inside itself, lists nested
 * 100,000 deep printed and compared, a deep input. */
static void test_depth(void)
{
    expect_limit("namespace containing itself",
                 "{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}", HERD_CHAT_LIMIT_DEPTH,
                 HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_DEPTH");
    expect_limit("namespace cycle through a list",
                 "{% set ns = namespace(a=1) %}{% set ns.a = [1, ns] %}{{ [ns] }}",
                 HERD_CHAT_LIMIT_DEPTH, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_DEPTH");
    expect_limit("namespace cycle in a join",
                 "{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ [ns] | join(',') }}",
                 HERD_CHAT_LIMIT_DEPTH, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_DEPTH");
    const char *deep = "{% set ns = namespace(l=[]) %}"
                       "{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}";
    char src[512];
    snprintf(src, sizeof src, "%s{{ ns.l }}", deep);
    expect_limit("list nested 100,000 deep, printed", src, HERD_CHAT_LIMIT_DEPTH,
                 HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_DEPTH");
    snprintf(src, sizeof src, "%s{{ ns.l == ns.l }}", deep);
    expect_limit("list nested 100,000 deep, compared", src, HERD_CHAT_LIMIT_DEPTH,
                 HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_DEPTH");
    expect_limit("dict nested 100,000 deep, tojson",
                 "{% set ns = namespace(d={}) %}{% for i in range(100000) %}"
                 "{% set ns.d = {'a': ns.d} %}{% endfor %}{{ ns.d | tojson }}",
                 HERD_CHAT_LIMIT_DEPTH, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_DEPTH");
    /* Just inside the limit still works: a list nested 900 deep prints. */
    expect_text("list nested 900 deep",
                "{% set ns = namespace(l=0) %}{% for i in range(900) %}{% set ns.l = [ns.l] %}"
                "{% endfor %}{{ (ns.l | string)[:3] }}{{ ns.l == ns.l }}",
                "[[[True");

    /* The JSON input is bounded the same way. */
    size_t n = 3000;
    char *j = malloc(2 * n + 1);
    memset(j, '[', n);
    memset(j + n, ']', n);
    j[2 * n] = 0;
    json_t *msgs = json_loads(j, 0, NULL);
    free(j);
    if (!msgs) { /* Jansson refuses nesting past 2048: build it by hand */
        msgs = json_array();
        json_t *cur = msgs;
        for (size_t i = 0; i < n; i++) {
            json_t *inner = json_array();
            json_array_append_new(cur, inner);
            cur = inner;
        }
    }
    herd_chat_input in = {.messages = msgs};
    char *out = NULL;
    herd_status st = herd_chat_render("{{ messages }}", &in, &out, NULL, NULL);
    CHECKF(st == HERD_E_UNSUPPORTED && strstr(herd_errmsg(), "HERD_CHAT_MAX_DEPTH"),
           "deep input: %d %s", st, herd_errmsg());
    CHECK(out == NULL);
    json_decref(msgs);
}

/* Work without end: huge powers, nested loops, quadratic built-ins. */
static void test_steps(void)
{
    /* 1 ** n is 1 in Python: by squaring, with 0, 1 and -1 answered at once. */
    expect_text("1 ** 9223372036854775807", "{{ 1 ** 9223372036854775807 }}", "1");
    expect_text("(-1) ** 9223372036854775807", "{{ (-1) ** 9223372036854775807 }}", "-1");
    expect_text("3 ** 39", "{{ 3 ** 39 }}", "4052555153018976267");
    expect_error("2 ** 9223372036854775807", "{{ 2 ** 9223372036854775807 }}", HERD_E_UNSUPPORTED,
                 "big integers");
    expect_error("3 ** 40", "{{ 3 ** 40 }}", HERD_E_UNSUPPORTED, "big integers");
    expect_limit("three nested range(1000)",
                 "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
                 "{% endfor %}{% endfor %}{% endfor %}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
    expect_limit("recursive macro in a loop",
                 "{% macro m(n) %}{% for i in range(100) %}{% if n %}{{ m(n - 1) }}{% endif %}"
                 "{% endfor %}{% endmacro %}{{ m(5) }}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
    expect_limit("sorting a long reversed list in a loop",
                 "{% for i in range(100) %}{{ range(100000) | reverse | sort | first }}"
                 "{% endfor %}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
    expect_limit("'in' over a long list in a loop",
                 "{% set big = range(100000) | list %}{% for i in range(100000) %}"
                 "{% if -1 in big %}x{% endif %}{% endfor %}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
    expect_limit("a filtered loop over a long list, repeated",
                 "{% set big = range(100000) | list %}{% for a in range(1000) %}"
                 "{% for b in big if false %}{% endfor %}{% endfor %}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
    expect_limit("joining empty strings, repeated",
                 "{% set e = [''] * 100000 %}{% for a in range(1000) %}{{ e | join }}{% endfor %}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
    expect_limit("selecting from a long list, repeated",
                 "{% set z = [0] * 100000 %}{% for a in range(1000) %}{{ z | select | list }}"
                 "{% endfor %}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
    expect_limit("the length of a long string, repeated",
                 "{% set s = 'x' * 1000000 %}{% for a in range(100000) %}{{ (s | length) % 2 }}"
                 "{% endfor %}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
    expect_limit("list repetition", "{{ ([1, 2, 3] * 4611686018427387904) | length }}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
}

/* Sizes: repetition, widths, an output that grows without end. */
static void test_output(void)
{
    expect_limit("'aaaa' * 4611686018427387904", "{{ 'aaaa' * 4611686018427387904 }}",
                 HERD_CHAT_LIMIT_OUTPUT, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_OUTPUT");
    expect_limit("'ab' * -1 * huge", "{{ ('ab' * 9223372036854775807) | length }}",
                 HERD_CHAT_LIMIT_OUTPUT, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_OUTPUT");
    expect_text("'' * huge", "[{{ '' * 9223372036854775807 }}]", "[]");
    expect_text("'ab' * -5", "[{{ 'ab' * -5 }}]", "[]");
    expect_limit("center with a huge width", "{{ 'x' | center(9223372036854775807) }}",
                 HERD_CHAT_LIMIT_OUTPUT, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_OUTPUT");
    expect_limit("indent with a huge width", "{{ 'a\nb' | indent(9223372036854775807) }}",
                 HERD_CHAT_LIMIT_OUTPUT, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_OUTPUT");
    expect_limit("indent of many lines", "{{ ('a\n' * 1000000) | indent(100) }}",
                 HERD_CHAT_LIMIT_OUTPUT, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_OUTPUT");
    expect_text("center", "[{{ 'ab' | center(7) }}]", "[   ab  ]");
    expect_text("indent", "{{ 'a\nb' | indent(2, first=true) }}", "  a\n  b");
    expect_limit("a large string printed in a long loop",
                 "{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{{ s }}{% endfor %}",
                 HERD_CHAT_LIMIT_OUTPUT, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_OUTPUT");
    expect_limit("a string doubled in a loop",
                 "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                 "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
                 HERD_CHAT_LIMIT_OUTPUT, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_OUTPUT");
    expect_limit("joins of a growing list",
                 "{% set ns = namespace(l=['abcdefgh']) %}{% for i in range(64) %}"
                 "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | join }}",
                 HERD_CHAT_LIMIT_STEPS, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_STEPS");
    expect_limit("replace growing a string",
                 "{% set ns = namespace(s='aa') %}{% for i in range(64) %}"
                 "{% set ns.s = ns.s.replace('a', 'aa') %}{% endfor %}{{ ns.s | length }}",
                 HERD_CHAT_LIMIT_OUTPUT, HERD_E_UNSUPPORTED, "HERD_CHAT_MAX_OUTPUT");
}

/* Ranges and slices at the edges of int64 (no signed overflow: UBSan). */
static void test_int_edges(void)
{
    expect_text("range near INT64_MAX",
                "{{ range(9223372036854775800, 9223372036854775807, 5) | list }}",
                "[9223372036854775800, 9223372036854775805]");
    expect_text("range down near INT64_MIN",
                "{{ range(-9223372036854775800, -9223372036854775807, -4) | list }}",
                "[-9223372036854775800, -9223372036854775804]");
    expect_error("range of the whole int64",
                 "{{ range(-9223372036854775807, 9223372036854775807) | length }}", HERD_E_INVALID,
                 "Range too big");
    expect_text("list slice, huge step", "{{ [1, 2, 3][1::9223372036854775807] }}", "[2]");
    expect_text("list slice, most negative step", "{{ [1, 2, 3][::-9223372036854775807 - 1] }}",
                "[3]");
    expect_text("string slice, huge step", "{{ 'abc'[1::9223372036854775807] }}", "b");
    expect_text("sum near INT64_MAX", "{{ [9223372036854775806, 1] | sum }}",
                "9223372036854775807");
    expect_error("sum overflowing", "{{ [9223372036854775807, 1] | sum }}", HERD_E_UNSUPPORTED,
                 "big integers");
    expect_error("int of a huge float string", "{{ '1e300' | int }}", HERD_E_UNSUPPORTED,
                 "big integers");
    expect_text("int of nan", "{{ 'nan' | int(7) }}", "7");
    expect_text("find and rfind",
                "{{ 'abcabc'.find('bc') }} {{ 'abcabc'.rfind('bc') }} "
                "{{ 'abc'.rfind('') }} {{ 'aaa'.count('a') }}",
                "1 4 3 3");
}

/* Number literals: bounded lexing, exact floats, big integers refused. */
static void test_literals(void)
{
    char src[512], want[256];
    /* A long literal with a decimal point wrote past a 64-byte buffer. */
    snprintf(src, sizeof src, "{{ %s.5 }}",
             "1000000000000000000000000000000000000000000000000000"
             "000000000000000000000");
    expect_text("long float literal", src, "1e+72");
    snprintf(src, sizeof src, "{{ 0.%s1 }}",
             "000000000000000000000000000000000000000000000000000"
             "000000000000000000");
    expect_text("long fraction", src, "1e-70");
    /* Rounded from every digit, as Python's float(): just above the midpoint
     * between 0.1 and the next double, which a cut at 63 digits reads as the
     * midpoint itself (and rounds to even, 0.1). */
    expect_text("float from every digit",
                "{{ 0.1000000000000000124900090270330110797658562660217285156250000000001 }}",
                "0.10000000000000002");
    /* A 70-digit integer: Python's int is exact; herd refuses, naming it. */
    const char *i70 = "1234567890123456789012345678901234567890123456789012345678901234567890";
    snprintf(src, sizeof src, "{{ %s }}", i70);
    snprintf(want, sizeof want, "integer literal %.60s...", i70);
    expect_error("70-digit integer", src, HERD_E_UNSUPPORTED, want);
    expect_text("largest int64 literal", "{{ 9223372036854775807 }}", "9223372036854775807");
    expect_error("int64 max + 1", "{{ 9223372036854775808 }}", HERD_E_UNSUPPORTED,
                 "integer literal 9223372036854775808 is beyond 64 bits");
    expect_text("underscores and bases",
                "{{ 1_000 }} {{ 0x_ff }} {{ 0o17 }} {{ 0b101 }} {{ 1_0.5 }}", "1000 255 15 5 10.5");
    expect_error("hex beyond 64 bits", "{{ 0x1ffffffffffffffff }}", HERD_E_UNSUPPORTED,
                 "0x1ffffffffffffffff");
    /* Very long literals: a megabyte of digits. */
    size_t n = 1 << 20;
    char *big = malloc(n + 16);
    memcpy(big, "{{ ", 3);
    memset(big + 3, '7', n);
    memcpy(big + 3 + n, ".0 }}", 6);
    expect_text("a megabyte float literal", big, "inf");
    memcpy(big + 3 + n, " }}", 4);
    expect_error("a megabyte integer literal", big, HERD_E_UNSUPPORTED, "beyond 64 bits");
    free(big);
}

/* The cancel flag stops a render that would otherwise run to its limit. */
typedef struct {
    atomic_bool *flag;
    herd_status st;
} cancel_job;

static void *run_cancelled(void *arg)
{
    cancel_job *j = arg;
    char *out = NULL;
    j->st = render_with("{% for a in range(100000) %}{% for b in range(100000) %}"
                        "{% endfor %}{% endfor %}",
                        j->flag, &out);
    free(out);
    herd_chat_usage u;
    herd_chat_last_usage(&u);
    CHECKF(u.limit == HERD_CHAT_CANCELLED, "limit %s", herd_chat_limit_name(u.limit));
    CHECK(u.steps < HERD_CHAT_MAX_STEPS);
    return NULL;
}

static void test_cancel(void)
{
    atomic_bool flag = true; /* already set: stops at once */
    char *out = NULL;
    herd_status st = render_with("{% for i in range(10) %}x{% endfor %}", &flag, &out);
    CHECKF(st == HERD_E_INVALID && strstr(herd_errmsg(), "cancelled"), "%d %s", st, herd_errmsg());
    CHECK(out == NULL);
    free(out);

    atomic_store(&flag, false); /* not set: renders */
    st = render_with("{% for i in range(10) %}x{% endfor %}", &flag, &out);
    CHECK(st == HERD_OK && out && !strcmp(out, "xxxxxxxxxx"));
    free(out);

    /* Set from another thread while the render runs. */
    cancel_job j = {.flag = &flag, .st = HERD_OK};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_cancelled, &j) == 0);
    struct timespec ms = {0, 20 * 1000 * 1000};
    nanosleep(&ms, NULL);
    atomic_store(&flag, true);
    pthread_join(t, NULL);
    CHECK(j.st == HERD_E_INVALID);
}

/* The budget is per render: a template that needs much, rendered many times,
 * never accumulates toward a limit. */
static void test_per_render(void)
{
    herd_chat_template *t = NULL;
    CHECK(herd_chat_template_parse("{% for i in range(20000) %}{{ i % 10 }}{% endfor %}", &t) ==
          HERD_OK);
    json_t *msgs = json_array();
    herd_chat_input in = {.messages = msgs};
    for (int k = 0; k < 200 && t; k++) {
        char *out = NULL;
        herd_status st = herd_chat_template_render(t, &in, &out, NULL, NULL);
        if (st || !out || strlen(out) != 20000) {
            CHECKF(false, "render %d: %s", k, herd_errmsg());
            free(out);
            break;
        }
        free(out);
    }
    json_decref(msgs);
    herd_chat_template_free(t);
}

int main(void)
{
    test_depth();
    test_steps();
    test_output();
    test_int_edges();
    test_literals();
    test_cancel();
    test_per_render();
    return test_report();
}
