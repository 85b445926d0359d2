/*
 * gbnf.c — the GBNF parser: llama.cpp's grammar syntax into rules.
 *
 *   rule     ::= name "::=" alternatives (newline | end)
 *   item     ::= "literal" | [class] | [^class] | name | ( alternatives ) | .
 *                followed by any of * + ? {m} {m,} {m,n}
 *
 * Comments run from '#' to the end of the line; newlines end a rule except
 * inside parentheses or after '|'. Escapes: \n \r \t \\ \" \[ \] \- \xHH
 * \uHHHH \UHHHHHHHH. Groups become generated rules and repetitions are
 * rewritten as llama.cpp rewrites them (S{m,n} = m copies of S then n-m nested
 * optional rules), so the matcher sees only characters and references.
 * Token references (<...>, !<...>) are not supported: they are an error.
 *
 * Errors name the line and column of the offending character.
 */
#include "grammar/grammar_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    gelem *v;
    uint32_t n, cap;
    bool defined;
    char *name;
} rvec;

typedef struct {
    const char *src; /* NUL-terminated copy */
    rvec *rules;
    uint32_t n_rules, cap_rules;
    uint32_t *hash; /* open addressing: rule id + 1, 0 = empty */
    uint32_t hash_cap;
    herd_status st;
} parser;

/* ------------------------------------------------------------- errors */

static const char *fail(parser *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *fail(parser *p, const char *at, const char *fmt, ...)
{
    if (p->st) return NULL;
    int line = 1, col = 1;
    for (const char *s = p->src; s < at && *s; s++) {
        if (*s == '\n')
            line++, col = 1;
        else if (((unsigned char)*s & 0xC0) != 0x80)
            col++;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->st = herd_seterr(HERD_E_INVALID, "grammar: line %d, column %d: %s", line, col, msg);
    return NULL;
}

static const char *oom(parser *p)
{
    if (!p->st) p->st = herd_seterr(HERD_E_NOMEM, "grammar: out of memory");
    return NULL;
}

/* ------------------------------------------------------------- rules */

static bool push(parser *p, rvec *r, uint32_t type, uint32_t value)
{
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        gelem *v = realloc(r->v, cap * sizeof *v);
        if (!v) return oom(p), false;
        r->v = v, r->cap = cap;
    }
    r->v[r->n++] = (gelem){type, value};
    return true;
}

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static bool grow_hash(parser *p)
{
    uint32_t cap = p->hash_cap ? p->hash_cap * 2 : 64;
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h) return false;
    for (uint32_t i = 0; i < p->n_rules; i++) {
        const char *nm = p->rules[i].name;
        uint64_t k = hash_name(nm, strlen(nm)) & (cap - 1);
        while (h[k]) k = (k + 1) & (cap - 1);
        h[k] = i + 1;
    }
    free(p->hash);
    p->hash = h, p->hash_cap = cap;
    return true;
}

/* A new rule named name[0..n) (the caller knows the name is new). */
static int64_t new_rule(parser *p, const char *name, size_t n)
{
    if (p->n_rules >= HERD_GRAMMAR_MAX_RULES) return -2;
    if (p->n_rules == p->cap_rules) {
        uint32_t cap = p->cap_rules ? p->cap_rules * 2 : 32;
        rvec *r = realloc(p->rules, cap * sizeof *r);
        if (!r) return -1;
        p->rules = r, p->cap_rules = cap;
    }
    if ((p->n_rules + 1) * 2 > p->hash_cap && !grow_hash(p)) return -1;
    rvec *r = &p->rules[p->n_rules];
    memset(r, 0, sizeof *r);
    if (!(r->name = malloc(n + 1))) return -1;
    memcpy(r->name, name, n);
    r->name[n] = 0;
    uint64_t k = hash_name(name, n) & (p->hash_cap - 1);
    while (p->hash[k]) k = (k + 1) & (p->hash_cap - 1);
    p->hash[k] = p->n_rules + 1;
    return p->n_rules++;
}

/* The id of the rule named name[0..n), created on first use. */
static int64_t symbol(parser *p, const char *name, size_t n)
{
    if (p->hash_cap) {
        uint64_t k = hash_name(name, n) & (p->hash_cap - 1);
        for (; p->hash[k]; k = (k + 1) & (p->hash_cap - 1)) {
            const char *nm = p->rules[p->hash[k] - 1].name;
            if (strlen(nm) == n && !memcmp(nm, name, n)) return p->hash[k] - 1;
        }
    }
    return new_rule(p, name, n);
}

/* A generated rule (group or repetition) named after its parent. */
static int64_t generated(parser *p, uint32_t parent)
{
    char name[300];
    for (uint32_t i = p->n_rules;; i++) {
        snprintf(name, sizeof name, "%.200s_%u", p->rules[parent].name, i);
        int64_t id = symbol(p, name, strlen(name));
        if (id < 0 || (uint32_t)id == p->n_rules - 1) return id; /* fresh */
    }
}

static int64_t check_id(parser *p, const char *at, int64_t id)
{
    if (id == -2)
        fail(p, at, "more than %d rules", HERD_GRAMMAR_MAX_RULES);
    else if (id < 0)
        oom(p);
    return id;
}

/* ------------------------------------------------------------- lexing */

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *skip_space(const char *s, bool newline_ok)
{
    while (*s == ' ' || *s == '\t' || *s == '#' || (newline_ok && (*s == '\r' || *s == '\n'))) {
        if (*s == '#')
            while (*s && *s != '\r' && *s != '\n') s++;
        else
            s++;
    }
    return s;
}

/* One UTF-8 code point (invalid bytes are taken as themselves, as llama.cpp). */
static const char *decode_utf8(const char *s, uint32_t *cp)
{
    static const int len_of[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    unsigned char c = (unsigned char)*s;
    int n = len_of[c >> 4];
    uint32_t v = n == 1 ? c : c & ((1u << (8 - n - 1)) - 1);
    const char *e = s + 1;
    for (int i = 1; i < n && *e; i++, e++) v = (v << 6) | ((unsigned char)*e & 0x3F);
    *cp = v;
    return e;
}

static const char *parse_hex(parser *p, const char *s, int n, uint32_t *cp)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return fail(p, s + i, "expecting %d hex digits", n);
        v = v << 4 | (uint32_t)d;
    }
    *cp = v;
    return s + n;
}

/* One character of a literal or class, with escapes. */
static const char *parse_char(parser *p, const char *s, uint32_t *cp)
{
    if (*s != '\\') {
        if (!*s) return fail(p, s, "unexpected end of input");
        return decode_utf8(s, cp);
    }
    switch (s[1]) {
    case 'x':
        return parse_hex(p, s + 2, 2, cp);
    case 'u':
        return parse_hex(p, s + 2, 4, cp);
    case 'U':
        return parse_hex(p, s + 2, 8, cp);
    case 't':
        *cp = '\t';
        return s + 2;
    case 'r':
        *cp = '\r';
        return s + 2;
    case 'n':
        *cp = '\n';
        return s + 2;
    case '\\':
    case '"':
    case '[':
    case ']':
    case '-':
        *cp = (unsigned char)s[1];
        return s + 2;
    default:
        return fail(p, s, "unknown escape '\\%c'", s[1] ? s[1] : ' ');
    }
}

static const char *parse_int(parser *p, const char *s, uint64_t *out)
{
    if (!is_digit(*s)) return fail(p, s, "expecting an integer");
    uint64_t v = 0;
    for (; is_digit(*s); s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > 1000000) return fail(p, s, "repetition count too large");
    }
    *out = v;
    return s;
}

/* ------------------------------------------------------------- parsing */

static const char *parse_alternates(parser *p, const char *s, uint32_t rule, bool nested);

/* Rewrite the item rv[start..n) of rule `rule` as repeated min..max times
 * (max = UINT64_MAX: unbounded), llama.cpp's way:
 *   S{m,n} -> S…S (m times) S'(n-m),  S'(k) ::= S S'(k-1) | ,  S'(1) ::= S |
 *   S{m,}  -> S…S (m times) S',       S'    ::= S S' | */
static bool repeat(parser *p, const char *at, uint32_t rule, uint32_t start, uint64_t min,
                   uint64_t max)
{
    rvec *r = &p->rules[rule];
    uint32_t len = r->n - start;
    gelem *item = malloc((len ? len : 1) * sizeof *item);
    if (!item) return oom(p), false;
    memcpy(item, r->v + start, len * sizeof *item);
    bool ok = true;
    if (min == 0) r->n = start;
    for (uint64_t i = 1; ok && i < min; i++)
        for (uint32_t j = 0; ok && j < len; j++)
            ok = push(p, &p->rules[rule], item[j].type, item[j].value);
    bool unbounded = max == UINT64_MAX;
    uint64_t n_opt = unbounded ? 1 : max - min;
    int64_t last = -1;
    for (uint64_t i = 0; ok && i < n_opt; i++) {
        int64_t id = check_id(p, at, generated(p, rule));
        if (id < 0) {
            ok = false;
            break;
        }
        rvec *o = &p->rules[id];
        o->defined = true;
        for (uint32_t j = 0; ok && j < len; j++) ok = push(p, o, item[j].type, item[j].value);
        if (ok && (unbounded || last >= 0))
            ok = push(p, o, GE_RULE_REF, unbounded ? (uint32_t)id : (uint32_t)last);
        ok = ok && push(p, o, GE_ALT, 0) && push(p, o, GE_END, 0);
        last = id;
    }
    if (ok && last >= 0) ok = push(p, &p->rules[rule], GE_RULE_REF, (uint32_t)last);
    free(item);
    return ok;
}

static const char *parse_repetition(parser *p, const char *s, bool nested, uint64_t *min,
                                    uint64_t *max)
{
    const char *at = s;
    s = skip_space(s + 1, nested);
    if (!(s = parse_int(p, s, min))) return NULL;
    s = skip_space(s, nested);
    *max = *min;
    if (*s == ',') {
        s = skip_space(s + 1, nested);
        *max = UINT64_MAX;
        if (is_digit(*s)) {
            if (!(s = parse_int(p, s, max))) return NULL;
            s = skip_space(s, nested);
        }
    }
    if (*s != '}') return fail(p, s, "expecting '}'");
    if (*min > HERD_GRAMMAR_MAX_REPEAT || (*max != UINT64_MAX && *max > HERD_GRAMMAR_MAX_REPEAT))
        return fail(p, at, "more than %d repetitions", HERD_GRAMMAR_MAX_REPEAT);
    if (*max < *min) return fail(p, at, "repetition maximum below its minimum");
    return skip_space(s + 1, nested);
}

static const char *parse_class(parser *p, const char *s, uint32_t rule, bool nested)
{
    const char *open = s;
    uint32_t start_type = GE_CHAR, first = p->rules[rule].n;
    if (*++s == '^') s++, start_type = GE_CHAR_NOT;
    while (*s != ']') {
        uint32_t cp, hi;
        if (!*s) return fail(p, open, "unterminated character class");
        if (!(s = parse_char(p, s, &cp))) return NULL;
        if (!push(p, &p->rules[rule], p->rules[rule].n > first ? GE_CHAR_ALT : start_type, cp))
            return NULL;
        if (s[0] == '-' && s[1] != ']') {
            if (!s[1]) return fail(p, open, "unterminated character class");
            if (!(s = parse_char(p, s + 1, &hi))) return NULL;
            if (hi < cp) return fail(p, s, "range end below its start");
            if (!push(p, &p->rules[rule], GE_CHAR_RNG, hi)) return NULL;
        }
    }
    if (p->rules[rule].n == first) return fail(p, s, "empty character class");
    return skip_space(s + 1, nested);
}

static const char *parse_sequence(parser *p, const char *s, uint32_t rule, bool nested)
{
    uint32_t last_start = p->rules[rule].n;
    bool have_item = false;
    uint64_t n_prev = 1; /* rules an item would copy: bounded like llama.cpp */
    while (*s) {
        const char *at = s;
        if (*s == '"') {
            last_start = p->rules[rule].n, have_item = true, n_prev = 1;
            for (s++; *s != '"';) {
                uint32_t cp;
                if (!*s) return fail(p, at, "unterminated string literal");
                if (!(s = parse_char(p, s, &cp))) return NULL;
                if (!push(p, &p->rules[rule], GE_CHAR, cp)) return NULL;
            }
            s = skip_space(s + 1, nested);
        } else if (*s == '[') {
            last_start = p->rules[rule].n, have_item = true, n_prev = 1;
            if (!(s = parse_class(p, s, rule, nested))) return NULL;
        } else if (is_word(*s)) {
            const char *e = s;
            while (is_word(*e)) e++;
            int64_t id = check_id(p, s, symbol(p, s, (size_t)(e - s)));
            if (id < 0) return NULL;
            last_start = p->rules[rule].n, have_item = true, n_prev = 1;
            if (!push(p, &p->rules[rule], GE_RULE_REF, (uint32_t)id)) return NULL;
            s = skip_space(e, nested);
        } else if (*s == '(') {
            uint32_t before = p->n_rules;
            int64_t id = check_id(p, s, generated(p, rule));
            if (id < 0) return NULL;
            p->rules[id].defined = true;
            if (!(s = parse_alternates(p, skip_space(s + 1, true), (uint32_t)id, true)))
                return NULL;
            if (*s != ')') return fail(p, s, "expecting ')'");
            n_prev = p->n_rules - before > 1 ? p->n_rules - before : 1;
            last_start = p->rules[rule].n, have_item = true;
            if (!push(p, &p->rules[rule], GE_RULE_REF, (uint32_t)id)) return NULL;
            s = skip_space(s + 1, nested);
        } else if (*s == '.') {
            last_start = p->rules[rule].n, have_item = true, n_prev = 1;
            if (!push(p, &p->rules[rule], GE_CHAR_ANY, 0)) return NULL;
            s = skip_space(s + 1, nested);
        } else if (*s == '*' || *s == '+' || *s == '?' || *s == '{') {
            uint64_t min = *s == '+', max = *s == '?' ? 1 : UINT64_MAX;
            if (!have_item) return fail(p, s, "'%c' follows nothing", *s);
            if (*s == '{') {
                if (!(s = parse_repetition(p, s, nested, &min, &max))) return NULL;
            } else {
                s = skip_space(s + 1, nested);
            }
            uint64_t total = max != UINT64_MAX && max > 0 ? max : min > 0 ? min : 1;
            if (n_prev * total > HERD_GRAMMAR_MAX_REPEAT)
                return fail(p, at, "repetition expands to too many rules");
            if (!repeat(p, at, rule, last_start, min, max)) return NULL;
            n_prev *= total;
        } else if (*s == '<' || *s == '!') {
            return fail(p, s, "token references (<...>) are not supported");
        } else {
            break;
        }
    }
    return s;
}

static const char *parse_alternates(parser *p, const char *s, uint32_t rule, bool nested)
{
    if (!(s = parse_sequence(p, s, rule, nested))) return NULL;
    while (*s == '|') {
        if (!push(p, &p->rules[rule], GE_ALT, 0)) return NULL;
        if (!(s = parse_sequence(p, skip_space(s + 1, true), rule, nested))) return NULL;
    }
    if (!push(p, &p->rules[rule], GE_END, 0)) return NULL;
    return s;
}

static const char *parse_rule(parser *p, const char *s)
{
    const char *e = s;
    while (is_word(*e)) e++;
    if (e == s) return fail(p, s, "expecting a rule name");
    int64_t id = check_id(p, s, symbol(p, s, (size_t)(e - s)));
    if (id < 0) return NULL;
    const char *q = skip_space(e, false);
    if (strncmp(q, "::=", 3)) return fail(p, q, "expecting '::='");
    if (p->rules[id].defined) return fail(p, s, "rule '%s' defined twice", p->rules[id].name);
    p->rules[id].defined = true;
    if (!(q = parse_alternates(p, skip_space(q + 3, true), (uint32_t)id, false))) return NULL;
    if (*q == '\r')
        q += q[1] == '\n' ? 2 : 1;
    else if (*q == '\n')
        q++;
    else if (*q)
        return fail(p, q, "unexpected '%c'", *q);
    return skip_space(q, true);
}

/* ------------------------------------------------------------- checks */

/* llama.cpp refuses left recursion (the matcher would expand it forever):
 * a rule reaching itself through leftmost references, where the references
 * before it may match the empty string. state: 0 new, 1 in progress, 2 done. */
static bool left_recursive(parser *p, uint32_t r, uint8_t *state, bool *nullable)
{
    if (state[r] == 1) return true;
    if (state[r] == 2) return false;
    state[r] = 1;
    const rvec *rv = &p->rules[r];
    bool at_start = true;
    for (uint32_t i = 0; i < rv->n; i++) {
        if (gelem_is_end(&rv->v[i])) {
            if (at_start) nullable[r] = true;
            at_start = true;
        } else {
            at_start = false;
        }
    }
    bool leftmost = true;
    for (uint32_t i = 0; i < rv->n; i++) {
        const gelem *e = &rv->v[i];
        if (e->type == GE_RULE_REF && leftmost) {
            if (left_recursive(p, e->value, state, nullable)) return true;
            if (!nullable[e->value]) leftmost = false;
        } else {
            leftmost = gelem_is_end(e);
        }
    }
    state[r] = 2;
    return false;
}

static herd_status check_rules(parser *p, const char *end)
{
    int64_t root = symbol(p, "root", 4);
    if (root < 0) return oom(p), p->st;
    for (uint32_t r = 0; r < p->n_rules; r++)
        if (!p->rules[r].defined) {
            fail(p, end, r == (uint32_t)root ? "no rule named 'root'" : "undefined rule '%s'",
                 p->rules[r].name);
            return p->st;
        }
    uint8_t *state = calloc(p->n_rules, 1);
    bool *nullable = calloc(p->n_rules, sizeof *nullable);
    if (!state || !nullable) {
        free(state), free(nullable);
        return oom(p), p->st;
    }
    for (uint32_t r = 0; r < p->n_rules && !p->st; r++) {
        if (state[r] == 2) continue;
        if (left_recursive(p, r, state, nullable))
            fail(p, end, "rule '%s' is left-recursive", p->rules[r].name);
    }
    free(state), free(nullable);
    return p->st;
}

static uint32_t cost_add(uint32_t a, uint32_t b)
{
    return a + b >= HERD_GCOST_INF ? HERD_GCOST_INF : a + b;
}

static uint32_t utf8_len(uint32_t c)
{
    return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

/* The fewest UTF-8 bytes a character of the class at pos can take: a model
 * whose vocabulary lacks a character may need a byte token for each. */
static uint32_t class_bytes(const gelem *e, uint32_t pos)
{
    if (e[pos].type != GE_CHAR) return 1; /* '.' and [^...] take some ASCII character */
    uint32_t best = 4;
    do {
        uint32_t n = utf8_len(e[pos].value); /* a range's lowest member is its shortest */
        if (n < best) best = n;
        pos += e[pos + 1].type == GE_CHAR_RNG ? 2 : 1;
    } while (e[pos].type == GE_CHAR_ALT);
    return best;
}

/* minrest: the shortest completions (in bytes), from the rules' shortest lengths (found
 * by relaxation: each pass can only lower them, so it ends). */
static bool compute_minrest(herd_grammar *g)
{
    uint32_t *rmin = malloc(g->n_rules * sizeof *rmin);
    g->minrest = malloc(((size_t)g->n_elems + 1) * sizeof *g->minrest);
    if (!rmin || !g->minrest) return free(rmin), false;
    for (uint32_t r = 0; r < g->n_rules; r++) rmin[r] = HERD_GCOST_INF;
    const gelem *e = g->elems;
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < g->n_rules; r++) {
            uint32_t best = HERD_GCOST_INF, sum = 0;
            for (uint32_t i = g->rule_start[r];; i++) {
                if (gelem_is_end(&e[i])) {
                    if (sum < best) best = sum;
                    if (e[i].type == GE_END) break;
                    sum = 0;
                } else if (e[i].type == GE_RULE_REF) {
                    sum = cost_add(sum, rmin[e[i].value]);
                } else if (gelem_is_char(&e[i])) {
                    sum = cost_add(sum, class_bytes(e, i));
                }
            }
            if (best < rmin[r]) rmin[r] = best, changed = true;
        }
    }
    /* Backwards through each alternative: its end costs 0. */
    uint32_t after = 0;
    for (uint32_t i = g->n_elems; i-- > 0;) {
        if (gelem_is_end(&e[i]))
            after = 0;
        else if (e[i].type == GE_RULE_REF)
            after = cost_add(after, rmin[e[i].value]);
        else if (gelem_is_char(&e[i]))
            after = cost_add(after, class_bytes(e, i));
        g->minrest[i] = after;
    }
    free(rmin);
    return true;
}

static herd_status flatten(parser *p, herd_grammar *g)
{
    uint64_t total = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) total += p->rules[r].n;
    g->elems = malloc((size_t)total * sizeof *g->elems);
    g->rule_start = malloc(p->n_rules * sizeof *g->rule_start);
    if (!g->elems || !g->rule_start) return oom(p), p->st;
    uint32_t at = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        g->rule_start[r] = at;
        memcpy(g->elems + at, p->rules[r].v, p->rules[r].n * sizeof *g->elems);
        at += p->rules[r].n;
    }
    g->n_elems = at;
    g->n_rules = p->n_rules;
    g->root = (uint32_t)symbol(p, "root", 4);
    g->refs = 1;
    if (!compute_minrest(g)) return oom(p), p->st;
    return HERD_OK;
}

/* ------------------------------------------------------------- API */

herd_status herd_grammar_parse(const char *text, size_t len, herd_grammar **out)
{
    if (!out) return herd_seterr(HERD_E_INVALID, "grammar: out is NULL");
    *out = NULL;
    if (!text) return herd_seterr(HERD_E_INVALID, "grammar: text is NULL");
    if (len > HERD_GRAMMAR_MAX_BYTES)
        return herd_seterr(HERD_E_INVALID, "grammar: larger than %u bytes", HERD_GRAMMAR_MAX_BYTES);
    parser p = {0};
    char *src = malloc(len + 1);
    herd_grammar *g = calloc(1, sizeof *g);
    if (!src || !g) {
        free(src), free(g);
        return herd_seterr(HERD_E_NOMEM, "grammar: out of memory");
    }
    memcpy(src, text, len);
    src[len] = 0;
    p.src = src;
    const char *s = memchr(src, 0, len) ? NULL : skip_space(src, true);
    if (!s) fail(&p, src + strlen(src), "NUL byte in the grammar");
    while (s && *s) s = parse_rule(&p, s);
    if (!p.st) check_rules(&p, src + len);
    if (!p.st) flatten(&p, g);
    for (uint32_t r = 0; r < p.n_rules; r++) free(p.rules[r].v), free(p.rules[r].name);
    free(p.rules);
    free(p.hash);
    free(src);
    if (p.st) {
        herd_grammar_free(g);
        return p.st;
    }
    *out = g;
    return HERD_OK;
}

herd_grammar *herd_grammar_retain(herd_grammar *g)
{
    if (g) __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
    return g;
}

void herd_grammar_free(herd_grammar *g)
{
    if (!g || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    free(g->minrest);
    free(g->elems);
    free(g->rule_start);
    free(g);
}

int herd_grammar_n_rules(const herd_grammar *g)
{
    return g ? (int)g->n_rules : 0;
}
