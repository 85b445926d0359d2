/*
 * schema_str.c — the leaves of the schema converter: built-in rules, strings
 * (length bounds, formats, regular-expression patterns), integer ranges and
 * "any key but these".
 *
 * A pattern is translated piece by piece into GBNF, whose operators are the
 * regex ones (| ( ) * + ? {m,n} [...] .), so no automaton is built. The
 * pattern speaks of the string's characters; the grammar writes them inside a
 * JSON string, so '"', '\' and control characters are left out of classes and
 * '.', and a literal one is refused.
 */
#include "grammar/schema_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- strings */

static void sb_grow(sbuf *b, size_t more)
{
    if (b->oom || b->n + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + more + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->p = p, b->cap = cap;
}

void herd_sb_addn(sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->oom) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void herd_sb_add(sbuf *b, const char *s)
{
    herd_sb_addn(b, s, strlen(s));
}

void herd_sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_grow(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

char *herd_sb_take(sbuf *b)
{
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    return b->p ? b->p : strdup("");
}

void herd_sb_literal(sbuf *b, const char *s, size_t n)
{
    herd_sb_add(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            herd_sb_printf(b, "\\%c", c);
        else if (c == '\n')
            herd_sb_add(b, "\\n");
        else if (c < 0x20 || c == 0x7F)
            herd_sb_printf(b, "\\x%02X", c);
        else
            herd_sb_addn(b, (const char *)&c, 1);
    }
    herd_sb_add(b, "\"");
}

/* ------------------------------------------------------------- built-ins */

typedef struct {
    const char *name, *body, *deps;
} builtin;

/* llama.cpp's PRIMITIVE_RULES and STRING_FORMAT_RULES, with a one-space
 * `space` (a small model left free to pad would pad). */
static const builtin BUILTINS[] = {
    {"space", "\" \"?", ""},
    {"boolean", "\"true\" | \"false\"", ""},
    {"null", "\"null\"", ""},
    {"decimal-part", "[0-9]{1,16}", ""},
    {"integral-part", "[0] | [1-9] [0-9]{0,15}", ""},
    {"number", "\"-\"? integral-part (\".\" decimal-part)? ([eE] [-+]? [0-9]{1,2})?",
     "integral-part decimal-part"},
    {"integer", "\"-\"? integral-part", "integral-part"},
    {"char", "[^\"\\\\\\x7F\\x00-\\x1F] | [\\\\] ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})", ""},
    {"string", "\"\\\"\" char* \"\\\"\"", "char"},
    {"value", "object | array | string | number | boolean | null",
     "object array string number boolean null"},
    {"object",
     "\"{\" space ( string space \":\" space value space (\",\" space string space \":\" space "
     "value space)* )? \"}\"",
     "space string value"},
    {"array", "\"[\" space ( value space (\",\" space value space)* )? \"]\"", "space value"},
    {"uuid",
     "\"\\\"\" [0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} "
     "\"-\" [0-9a-fA-F]{12} \"\\\"\"",
     ""},
    {"date",
     "[0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [1-2] [0-9] | "
     "\"3\" [0-1] )",
     ""},
    {"time",
     "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{3} "
     ")? ( \"Z\" | ( \"+\" | \"-\" ) ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )",
     ""},
    {"date-time", "date \"T\" time", "date time"},
    {"date-string", "\"\\\"\" date \"\\\"\"", "date"},
    {"time-string", "\"\\\"\" time \"\\\"\"", "time"},
    {"date-time-string", "\"\\\"\" date-time \"\\\"\"", "date-time"},
};

const char *herd_conv_prim(conv *c, const char *name)
{
    for (size_t i = 0; i < sizeof BUILTINS / sizeof *BUILTINS; i++) {
        const builtin *b = &BUILTINS[i];
        if (strcmp(b->name, name)) continue;
        if (json_object_get(c->rules, name)) return b->name;
        if (json_object_set_new(c->rules, name, json_string(b->body))) {
            c->st = herd_seterr(HERD_E_NOMEM, "json_schema: out of memory");
            return NULL;
        }
        char dep[32];
        for (const char *d = b->deps; *d;) {
            size_t n = strcspn(d, " ");
            snprintf(dep, sizeof dep, "%.*s", (int)n, d);
            if (!herd_conv_prim(c, dep)) return NULL;
            d += n + (d[n] == ' ');
        }
        return b->name;
    }
    return NULL;
}

/* ------------------------------------------------------------- patterns */

typedef struct {
    conv *c;
    const char *start, *s, *end, *path;
    sbuf out;
    int depth;
} regex;

static bool rx_fail(regex *r, const char *what)
{
    herd_conv_fail(r->c, r->path, "pattern: %s at offset %d", what, (int)(r->s - r->start));
    return false;
}

/* Characters a JSON string holds unescaped are the ones a pattern may
 * produce; the exclusions that keep classes inside them. */
#define JSON_SAFE_NOT "\\\"\\\\\\x00-\\x1F\\x7F"

/* Append one class member (a code point) as GBNF class text. */
static void rx_class_char(sbuf *b, uint32_t c)
{
    if (c == ']' || c == '-' || c == '\\' || c == '^' || c == '"')
        herd_sb_printf(b, "\\%c", (char)c);
    else if (c < 0x20 || c == 0x7F)
        herd_sb_printf(b, "\\x%02X", c);
    else if (c < 0x80)
        herd_sb_printf(b, "%c", (char)c);
    else
        herd_sb_printf(b, "\\U%08X", c);
}

/* Decode one UTF-8 code point from the pattern. */
static uint32_t rx_utf8(regex *r)
{
    unsigned char c = (unsigned char)*r->s++;
    int n = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    uint32_t v = n == 0 ? c : c & (0x3F >> n);
    for (int i = 0; i < n && r->s < r->end; i++) v = v << 6 | ((unsigned char)*r->s++ & 0x3F);
    return v;
}

/* \d \w \s (and their negations) as class bodies. */
static const char *rx_shorthand(char e, bool *negated)
{
    *negated = e == 'D' || e == 'W' || e == 'S';
    switch (e) {
    case 'd':
    case 'D':
        return "0-9";
    case 'w':
    case 'W':
        return "a-zA-Z0-9_";
    case 's':
    case 'S':
        return " \\t\\n\\r";
    default:
        return NULL;
    }
}

/* An escaped literal: its code point, or false if not a plain escape. */
static bool rx_escape_char(char e, uint32_t *cp)
{
    const char *lit = ".^$|?*+()[]{}/\\-";
    if (strchr(lit, e)) return *cp = (unsigned char)e, true;
    if (e == 'n') return *cp = '\n', true;
    if (e == 't') return *cp = '\t', true;
    if (e == 'r') return *cp = '\r', true;
    return false;
}

static bool rx_class(regex *r)
{
    r->s++; /* [ */
    bool neg = r->s < r->end && *r->s == '^';
    if (neg) r->s++;
    sbuf body = {0};
    bool first = true;
    while (r->s < r->end && (*r->s != ']' || first)) {
        first = false;
        uint32_t lo;
        if (*r->s == '\\' && r->s + 1 < r->end) {
            bool sneg;
            const char *sh = rx_shorthand(r->s[1], &sneg);
            if (sh && !sneg) {
                herd_sb_add(&body, sh);
                r->s += 2;
                continue;
            }
            if (!rx_escape_char(r->s[1], &lo))
                return free(body.p), rx_fail(r, "unsupported escape in a class");
            r->s += 2;
        } else {
            lo = rx_utf8(r);
        }
        uint32_t hi = lo;
        if (r->s + 1 < r->end && *r->s == '-' && r->s[1] != ']') {
            r->s++;
            if (*r->s == '\\' && r->s + 1 < r->end) {
                if (!rx_escape_char(r->s[1], &hi)) return free(body.p), rx_fail(r, "bad range end");
                r->s += 2;
            } else {
                hi = rx_utf8(r);
            }
            if (hi < lo) return free(body.p), rx_fail(r, "range end below its start");
        }
        if (!neg && (lo == '"' || lo == '\\' || lo < 0x20)) { /* unwritable: drop */
            if (hi == lo) continue;
            if (lo < 0x20) lo = 0x20;
        }
        rx_class_char(&body, lo);
        if (hi != lo) herd_sb_add(&body, "-"), rx_class_char(&body, hi);
    }
    if (r->s >= r->end) return free(body.p), rx_fail(r, "unterminated class");
    r->s++;
    if (!body.n && !neg) return free(body.p), rx_fail(r, "a class of unwritable characters");
    if (neg)
        herd_sb_printf(&r->out, "[^%s" JSON_SAFE_NOT "]", body.p ? body.p : "");
    else
        herd_sb_printf(&r->out, "[%s]", body.p);
    free(body.p);
    return true;
}

static bool rx_alternates(regex *r);

static bool rx_atom(regex *r)
{
    char ch = *r->s;
    if (ch == '(') {
        r->s++;
        if (r->s < r->end && *r->s == '?') {
            if (r->s + 1 < r->end && r->s[1] == ':')
                r->s += 2;
            else
                return rx_fail(r, "lookaround and named groups are not supported");
        }
        if (++r->depth > 100) return rx_fail(r, "too deeply nested");
        herd_sb_add(&r->out, "(");
        if (!rx_alternates(r)) return false;
        if (r->s >= r->end || *r->s != ')') return rx_fail(r, "expecting ')'");
        r->s++, r->depth--;
        herd_sb_add(&r->out, ")");
        return true;
    }
    if (ch == '[') return rx_class(r);
    if (ch == '.') {
        r->s++;
        herd_sb_add(&r->out, "[^" JSON_SAFE_NOT "]");
        return true;
    }
    uint32_t cp;
    if (ch == '\\') {
        if (r->s + 1 >= r->end) return rx_fail(r, "trailing backslash");
        bool neg;
        const char *sh = rx_shorthand(r->s[1], &neg);
        if (sh) {
            herd_sb_printf(&r->out, neg ? "[^%s" JSON_SAFE_NOT "]" : "[%s]", sh);
            r->s += 2;
            return true;
        }
        if (!rx_escape_char(r->s[1], &cp)) return rx_fail(r, "unsupported escape");
        r->s += 2;
    } else if (strchr("*+?{", ch)) {
        return rx_fail(r, "a quantifier follows nothing");
    } else {
        cp = rx_utf8(r);
    }
    if (cp == '"' || cp == '\\' || cp < 0x20)
        return rx_fail(r, "a character a JSON string escapes");
    herd_sb_add(&r->out, "[");
    rx_class_char(&r->out, cp);
    herd_sb_add(&r->out, "]");
    return true;
}

static bool rx_quantifier(regex *r)
{
    if (r->s >= r->end) return true;
    char ch = *r->s;
    if (ch == '*' || ch == '+' || ch == '?') {
        herd_sb_printf(&r->out, "%c", ch);
        r->s++;
    } else if (ch == '{') {
        char *e;
        long lo = strtol(r->s + 1, &e, 10), hi = lo;
        if (e == r->s + 1) return rx_fail(r, "expecting a count");
        if (*e == ',') {
            const char *h = e + 1;
            hi = *h == '}' ? -1 : strtol(h, &e, 10);
            if (hi >= 0 && e == h) return rx_fail(r, "expecting a count");
            if (hi < 0) e = (char *)h;
        }
        if (*e != '}') return rx_fail(r, "expecting '}'");
        if (lo > 1000 || hi > 1000 || (hi >= 0 && hi < lo)) return rx_fail(r, "bad repetition");
        if (hi < 0)
            herd_sb_printf(&r->out, "{%ld,}", lo);
        else
            herd_sb_printf(&r->out, "{%ld,%ld}", lo, hi);
        r->s = e + 1;
    } else {
        return true;
    }
    if (r->s < r->end && (*r->s == '?' || *r->s == '+')) r->s++; /* lazy/possessive: same set */
    return true;
}

static bool rx_alternates(regex *r)
{
    for (;;) {
        bool empty = true;
        while (r->s < r->end && *r->s != '|' && *r->s != ')') {
            if (*r->s == '^' || *r->s == '$') return rx_fail(r, "an anchor inside the pattern");
            herd_sb_add(&r->out, " ");
            if (!rx_atom(r) || !rx_quantifier(r)) return false;
            empty = false;
        }
        if (empty) herd_sb_add(&r->out, " \"\"");
        if (r->s >= r->end || *r->s != '|') return true;
        r->s++;
        herd_sb_add(&r->out, " |");
    }
}

/* The GBNF for a pattern's match (unanchored ends may hold anything). */
static char *pattern_expr(conv *c, const char *pat, const char *path)
{
    size_t n = strlen(pat);
    bool head = n && pat[0] == '^',
         tail = n > head && pat[n - 1] == '$' && (n < 2 || pat[n - 2] != '\\');
    regex r = {.c = c, .start = pat, .s = pat + head, .end = pat + n - tail, .path = path};
    herd_sb_add(&r.out, "\"\\\"\" ");
    if (!head) herd_sb_add(&r.out, "[^" JSON_SAFE_NOT "]* ");
    herd_sb_add(&r.out, "(");
    bool ok = rx_alternates(&r);
    if (ok && r.s != r.end) ok = rx_fail(&r, "unbalanced ')'");
    herd_sb_add(&r.out, " )");
    if (!tail) herd_sb_add(&r.out, " [^" JSON_SAFE_NOT "]*");
    herd_sb_add(&r.out, " \"\\\"\"");
    if (!ok) return free(r.out.p), NULL;
    return herd_sb_take(&r.out);
}

/* ------------------------------------------------------------- strings */

static bool get_count(conv *c, const json_t *s, const char *key, const char *path, long *out)
{
    const json_t *v = json_object_get(s, key);
    if (!v) return true;
    double d = json_number_value(v);
    if (!json_is_number(v) || d < 0 || d != floor(d) || d > 100000)
        return herd_conv_fail(c, path, "%s must be a non-negative integer", key), false;
    *out = (long)d;
    return true;
}

char *herd_schema_string(conv *c, const json_t *s, const char *name, const char *path)
{
    const json_t *fmt = json_object_get(s, "format"), *pat = json_object_get(s, "pattern");
    long min = 0, max = -1;
    if (!get_count(c, s, "minLength", path, &min) || !get_count(c, s, "maxLength", path, &max))
        return NULL;
    if (max >= 0 && max < min) return herd_conv_fail(c, path, "maxLength is below minLength");
    bool lengths = json_object_get(s, "minLength") || json_object_get(s, "maxLength");
    if ((fmt || pat) && lengths)
        return herd_conv_fail(c, path, "minLength/maxLength with %s is not supported",
                              fmt ? "format" : "pattern");
    if (fmt && pat) return herd_conv_fail(c, path, "format with pattern is not supported");
    if (pat) {
        if (!json_is_string(pat)) return herd_conv_fail(c, path, "pattern must be a string");
        return pattern_expr(c, json_string_value(pat), path);
    }
    if (fmt) {
        const char *f = json_string_value(fmt);
        const char *prim = !f                        ? NULL
                           : !strcmp(f, "date")      ? "date-string"
                           : !strcmp(f, "time")      ? "time-string"
                           : !strcmp(f, "date-time") ? "date-time-string"
                           : !strcmp(f, "uuid")      ? "uuid"
                                                     : NULL;
        if (!prim) return herd_conv_fail(c, path, "format \"%s\" is not supported", f ? f : "?");
        const char *r = herd_conv_prim(c, prim);
        return r ? strdup(r) : NULL;
    }
    if (!herd_conv_prim(c, "char")) return NULL;
    sbuf b = {0};
    if (max < 0)
        herd_sb_printf(&b, "\"\\\"\" char{%ld,} \"\\\"\"", min);
    else
        herd_sb_printf(&b, "\"\\\"\" char{%ld,%ld} \"\\\"\"", min, max);
    if (min > 2000 || max > 2000)
        return free(b.p), herd_conv_fail(c, path, "string lengths above 2000");
    (void)name;
    return herd_sb_take(&b);
}

/* ------------------------------------------------------------- integers */

/* Numbers of the same length between x and y (decimal strings, x <= y). */
static void same_len(sbuf *b, const char *x, const char *y, size_t n)
{
    size_t i = 0;
    while (i < n && x[i] == y[i]) i++;
    if (i) herd_sb_literal(b, x, i);
    if (i == n) return;
    size_t rest = n - i - 1;
    bool zeros = strspn(x + i + 1, "0") == rest, nines = strspn(y + i + 1, "9") == rest;
    char lo = zeros ? x[i] : (char)(x[i] + 1), hi = nines ? y[i] : (char)(y[i] - 1);
    char nine[24], zero[24];
    memset(nine, '9', rest), memset(zero, '0', rest);
    herd_sb_add(b, i ? " (" : "(");
    bool alt = false;
    if (!zeros) {
        herd_sb_printf(b, "[%c] (", x[i]);
        same_len(b, x + i + 1, nine, rest);
        herd_sb_add(b, ")");
        alt = true;
    }
    if (lo <= hi) {
        herd_sb_printf(b, "%s[%c-%c]", alt ? " | " : "", lo, hi);
        if (rest) herd_sb_printf(b, " [0-9]{%zu}", rest);
        alt = true;
    }
    if (!nines) {
        herd_sb_printf(b, "%s[%c] (", alt ? " | " : "", y[i]);
        same_len(b, zero, y + i + 1, rest);
        herd_sb_add(b, ")");
    }
    herd_sb_add(b, ")");
}

/* a <= x <= b for 0 <= a <= b: one alternative per length. */
static void range_nonneg(sbuf *b, int64_t a, int64_t hi)
{
    char x[24], y[24];
    int la = snprintf(x, sizeof x, "%lld", (long long)a),
        lb = snprintf(y, sizeof y, "%lld", (long long)hi);
    herd_sb_add(b, "(");
    for (int len = la; len <= lb; len++) {
        char lo_s[24], hi_s[24];
        if (len == la)
            memcpy(lo_s, x, (size_t)la + 1);
        else
            lo_s[0] = '1', memset(lo_s + 1, '0', (size_t)len - 1), lo_s[len] = 0;
        if (len == lb)
            memcpy(hi_s, y, (size_t)lb + 1);
        else
            memset(hi_s, '9', (size_t)len), hi_s[len] = 0;
        if (len > la) herd_sb_add(b, " | ");
        same_len(b, lo_s, hi_s, (size_t)len);
    }
    herd_sb_add(b, ")");
}

/* x >= a for a >= 0: a's length from a on, or more digits (at most 16). */
static void at_least(sbuf *b, int64_t a)
{
    char x[24];
    int la = snprintf(x, sizeof x, "%lld", (long long)a);
    int64_t top = 1;
    for (int i = 0; i < la; i++) top *= 10;
    herd_sb_add(b, "(");
    range_nonneg(b, a, top - 1);
    if (la < 16) herd_sb_printf(b, " | [1-9] [0-9]{%d,15}", la);
    herd_sb_add(b, ")");
}

static bool bound(conv *c, const json_t *s, const char *key, const char *path, bool lower,
                  bool exclusive, int64_t *out, bool *have)
{
    const json_t *v = json_object_get(s, key);
    if (!v) return true;
    if (!json_is_number(v)) return herd_conv_fail(c, path, "%s must be a number", key), false;
    double d = json_number_value(v);
    if (fabs(d) > 1e15)
        return herd_conv_fail(c, path, "%s beyond 1e15 is not supported", key), false;
    double r = lower ? (exclusive ? floor(d) + 1 : ceil(d)) : (exclusive ? ceil(d) - 1 : floor(d));
    int64_t x = (int64_t)r;
    if (!*have || (lower ? x > *out : x < *out)) *out = x;
    *have = true;
    return true;
}

char *herd_schema_integer(conv *c, const json_t *s, const char *path)
{
    int64_t lo = 0, hi = 0;
    bool has_lo = false, has_hi = false;
    if (!bound(c, s, "minimum", path, true, false, &lo, &has_lo) ||
        !bound(c, s, "exclusiveMinimum", path, true, true, &lo, &has_lo) ||
        !bound(c, s, "maximum", path, false, false, &hi, &has_hi) ||
        !bound(c, s, "exclusiveMaximum", path, false, true, &hi, &has_hi))
        return NULL;
    if (!has_lo && !has_hi) {
        const char *r = herd_conv_prim(c, "integer");
        return r ? strdup(r) : NULL;
    }
    if (has_lo && has_hi && hi < lo) return herd_conv_fail(c, path, "no integer within the bounds");
    sbuf b = {0};
    herd_sb_add(&b, "(");
    if (has_lo && lo >= 0) { /* non-negative only */
        if (has_hi)
            range_nonneg(&b, lo, hi);
        else
            at_least(&b, lo);
    } else if (has_hi && hi < 0) { /* negative only */
        herd_sb_add(&b, "\"-\" ");
        if (has_lo)
            range_nonneg(&b, -hi, -lo);
        else
            at_least(&b, -hi);
    } else { /* both signs */
        herd_sb_add(&b, "\"-\" ");
        if (has_lo)
            range_nonneg(&b, 1, -lo);
        else
            herd_sb_add(&b, "[1-9] [0-9]{0,15}");
        herd_sb_add(&b, " | ");
        if (has_hi)
            range_nonneg(&b, 0, hi);
        else
            herd_sb_add(&b, "([0] | [1-9] [0-9]{0,15})");
    }
    herd_sb_add(&b, ")");
    return herd_sb_take(&b);
}

/* ------------------------------------------------------------- keys */

/* Keys other than names: over the trie of the names, at each node either a
 * character leading to a child (and on), or any other character (then
 * anything), or the end where no name ends. Such keys are printable ASCII
 * without escapes, so a key cannot spell a declared name another way, and
 * names outside that alphabet need no exclusion. */
static void not_strings_at(sbuf *b, const char *const *names, int n, size_t depth, int lo, int hi)
{
    /* names[lo..hi) share their first depth bytes and are sorted. */
    bool ends_here = false;
    sbuf others = {0};
    bool alt = false;
    herd_sb_add(b, "(");
    for (int i = lo; i < hi;) {
        if (names[i][depth] == 0) {
            ends_here = true, i++;
            continue;
        }
        int j = i + 1;
        while (j < hi && names[j][depth] == names[i][depth]) j++;
        unsigned char ch = (unsigned char)names[i][depth];
        herd_sb_add(b, alt ? " | " : "");
        herd_sb_add(b, "[");
        rx_class_char(b, ch);
        herd_sb_add(b, "] ");
        rx_class_char(&others, ch);
        not_strings_at(b, names, n, depth + 1, i, j);
        alt = true;
        i = j;
    }
    /* Any other key character, then anything. */
    herd_sb_printf(b, "%s[^%s" JSON_SAFE_NOT "\\x80-\\U0010FFFF] kchar*", alt ? " | " : "",
                   others.p ? others.p : "");
    if (!ends_here) herd_sb_add(b, " | \"\"");
    herd_sb_add(b, ")");
    free(others.p);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *herd_schema_not_strings(conv *c, const char *const *names, int n)
{
    if (!json_object_get(c->rules, "kchar") &&
        json_object_set_new(c->rules, "kchar",
                            json_string("[^" JSON_SAFE_NOT "\\x80-\\U0010FFFF]")))
        return herd_conv_fail(c, "", "out of memory");
    const char **sorted = malloc((size_t)(n ? n : 1) * sizeof *sorted);
    if (!sorted) return herd_conv_fail(c, "", "out of memory");
    int k = 0; /* only names a key of kchar could spell */
    for (int i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)names[i];
        while (*p >= 0x20 && *p < 0x7F && *p != '"' && *p != '\\') p++;
        if (!*p) sorted[k++] = names[i];
    }
    n = k;
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
    sbuf b = {0};
    herd_sb_add(&b, "\"\\\"\" ");
    if (n == 0)
        herd_sb_add(&b, "kchar*");
    else
        not_strings_at(&b, sorted, n, 0, 0, n);
    herd_sb_add(&b, " \"\\\"\"");
    free(sorted);
    return herd_sb_take(&b);
}
