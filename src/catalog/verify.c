/*
 * verify.c — holding the catalog to its rules.
 *
 * The catalog is only worth something if each of its facts can be traced, so
 * this is strict: every value of a model entry must sit inside a fact (an
 * object with a "source"), every source must be one of the five forms
 * (seed:LINE, gguf:KEY, a URL, "computed: ...", "unknown"), and a seed:LINE
 * must name a line that exists and carry a "quote" found on that line — the
 * quote is what makes "line 106 says this" checkable by a program rather than
 * by trust. The GGUF sizes are recomputed from their formula.
 *
 * Problems are reported one by one (the test prints them all) and counted.
 */
#include "catalog/catalog_impl.h"
#include "util/util.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *seed;
    size_t *start, *len; /* byte range of each line of the seed */
    int n_lines;
    herd_catalog_report_fn report;
    void *ud;
    int problems;
} checker;

static void problem(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(checker *c, const char *fmt, ...)
{
    c->problems++;
    if (!c->report) return;
    char buf[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->report(c->ud, buf);
}

/* Split the seed into lines; the last line may lack its newline. */
static bool split_lines(checker *c, const char *seed, size_t len)
{
    int n = 0;
    for (size_t i = 0; i < len; i++) n += seed[i] == '\n';
    if (len && seed[len - 1] != '\n') n++;
    c->start = herd_calloc((size_t)n + 1, sizeof *c->start);
    c->len = herd_calloc((size_t)n + 1, sizeof *c->len);
    if (!c->start || !c->len) return false;
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        size_t e = at;
        while (e < len && seed[e] != '\n') e++;
        c->start[k] = at;
        c->len[k] = e - at - (e > at && seed[e - 1] == '\r');
        at = e + 1;
    }
    c->seed = seed;
    c->n_lines = n;
    return true;
}

static bool on_line(const checker *c, int line, const char *quote)
{
    const char *s = c->seed + c->start[line - 1];
    size_t n = c->len[line - 1], q = strlen(quote);
    if (q == 0 || q > n) return false;
    for (size_t i = 0; i + q <= n; i++)
        if (!memcmp(s + i, quote, q)) return true;
    return false;
}

static void check_seed_source(checker *c, const char *where, const json_t *f, const char *src)
{
    const char *p = src + 5;
    char *end;
    long line = strtol(p, &end, 10);
    if (!isdigit((unsigned char)*p) || *end || line < 1) {
        problem(c, "%s: '%s' is not seed:LINE", where, src);
        return;
    }
    const char *quote = json_string_value(json_object_get(f, "quote"));
    if (!quote) problem(c, "%s: %s has no quote", where, src);
    if (!c->seed) return; /* no seed text given: only the form is checked */
    if (line > c->n_lines) {
        problem(c, "%s: %s: the seed has %d lines", where, src, c->n_lines);
        return;
    }
    if (quote && !on_line(c, (int)line, quote))
        problem(c, "%s: %s: quote \"%s\" is not on that line", where, src, quote);
}

static void check_fact(checker *c, const char *where, const json_t *f, bool seed_statement)
{
    const char *src = catalog_source(f);
    if (!src[0]) {
        problem(c, "%s: empty source", where);
        return;
    }
    if (seed_statement && strncmp(src, "seed:", 5))
        problem(c, "%s: a statement of the seed must cite seed:LINE, not '%s'", where, src);
    if (!strncmp(src, "seed:", 5)) {
        check_seed_source(c, where, f, src);
    } else if (!strncmp(src, "gguf:", 5)) {
        const char *k = src + 5;
        bool ok = *k != 0;
        for (; *k; k++) ok &= isalnum((unsigned char)*k) || *k == '_' || *k == '.';
        if (!ok) problem(c, "%s: '%s' is not gguf:KEY", where, src);
    } else if (!strncmp(src, "https://", 8) || !strncmp(src, "http://", 7)) {
        const char *r = strstr(src, "//") + 2;
        if (!*r || strpbrk(r, " \t\n")) problem(c, "%s: '%s' is not a URL", where, src);
    } else if (!strncmp(src, "computed: ", 10)) {
        if (!src[10]) problem(c, "%s: 'computed:' without a method", where);
    } else if (!strcmp(src, "unknown")) {
        const json_t *v = json_object_get(f, "value");
        if (v && !json_is_null(v)) problem(c, "%s: an unknown fact must have a null value", where);
    } else {
        problem(c, "%s: source '%s' is not seed:LINE, gguf:KEY, a URL, computed: or unknown", where,
                src);
    }

    const json_t *seed = json_object_get(f, "seed"), *s;
    size_t i;
    char sub[300];
    if (seed && !json_is_array(seed)) problem(c, "%s: 'seed' must be an array", where);
    json_array_foreach(seed, i, s)
    {
        snprintf(sub, sizeof sub, "%s (seed %zu)", where, i);
        if (json_is_object(s) && json_is_string(json_object_get(s, "source")))
            check_fact(c, sub, s, true);
        else
            problem(c, "%s: not a fact", sub);
    }
}

/* Every leaf under node must be inside a fact. */
static void check_node(checker *c, const json_t *node, const char *path)
{
    char sub[300];
    if (json_is_object(node) && json_object_get(node, "source")) {
        if (!json_is_string(json_object_get(node, "source")))
            problem(c, "%s: source is not a string", path);
        else
            check_fact(c, path, node, false);
    } else if (json_is_object(node)) {
        const char *k;
        const json_t *x;
        if (json_object_size(node) == 0) problem(c, "%s: empty object", path);
        json_object_foreach((json_t *)node, k, x)
        {
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            check_node(c, x, sub);
        }
    } else if (json_is_array(node)) {
        size_t i;
        const json_t *x;
        json_array_foreach(node, i, x)
        {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            check_node(c, x, sub);
        }
    } else {
        problem(c, "%s: a value without a source", path);
    }
}

static bool good_id(const char *id)
{
    if (!*id) return false;
    for (; *id; id++)
        if (!(islower((unsigned char)*id) || isdigit((unsigned char)*id) || *id == '-' ||
              *id == '.'))
            return false;
    return true;
}

/* The GGUF sizes: the formula of their source, growing with bpw, and the bpw
 * of each type as the catalog's gguf_types table says. */
static void check_sizes(checker *c, const json_t *types, const herd_catalog_model *m)
{
    for (int i = 0; i < m->n_quants; i++) {
        const herd_catalog_quant *q = &m->quants[i];
        double want = m->params_b * q->bpw / 8;
        if (fabs(q->size_gb - want) > 0.011 + 0.005 * want)
            problem(c, "%s: gguf %s: %.2f GB, but params_b x bpw / 8 = %.2f GB", m->id, q->type,
                    q->size_gb, want);
        if (i > 0 && (q->bpw <= q[-1].bpw || q->size_gb <= q[-1].size_gb))
            problem(c, "%s: gguf %s: sizes must grow with bpw", m->id, q->type);
        bool known = false;
        size_t k;
        const json_t *t;
        json_array_foreach(types, k, t)
        {
            const char *name = json_string_value(json_object_get(t, "type"));
            if (name && !strcmp(name, q->type)) {
                known = true;
                if (fabs(json_number_value(json_object_get(t, "bpw")) - q->bpw) > 1e-9)
                    problem(c, "%s: gguf %s: bpw differs from gguf_types", m->id, q->type);
            }
        }
        if (!known) problem(c, "%s: gguf type %s is not in gguf_types", m->id, q->type);
    }
}

int herd_catalog_verify(const herd_catalog *cat, const char *seed, size_t seed_len,
                        herd_catalog_report_fn report, void *ud)
{
    checker c = {.report = report, .ud = ud};
    if (seed && !split_lines(&c, seed, seed_len)) {
        problem(&c, "out of memory splitting the seed");
        goto done;
    }
    const json_t *types = json_object_get(cat->root, "gguf_types");
    if (!json_is_array(types) || json_array_size(types) == 0) problem(&c, "gguf_types: missing");
    check_node(&c, types, "gguf_types");
    check_node(&c, json_object_get(cat->root, "memory"), "memory");

    for (int i = 0; i < cat->n; i++) {
        const herd_catalog_model *m = &cat->m[i];
        if (!good_id(m->id)) problem(&c, "model %d: id '%s' is not [a-z0-9.-]+", i, m->id);
        for (int j = 0; j < i; j++)
            if (!strcmp(cat->m[j].id, m->id)) problem(&c, "%s: id used twice", m->id);
        const json_t *e = json_array_get(cat->models, (size_t)i), *x;
        const char *k;
        char path[200];
        json_object_foreach((json_t *)e, k, x)
        {
            if (!strcmp(k, "id") || !strcmp(k, "name") || !strcmp(k, "family")) continue;
            snprintf(path, sizeof path, "%s.%s", m->id, k);
            check_node(&c, x, path);
        }
        check_sizes(&c, types, m);
    }
done:
    free(c.start);
    free(c.len);
    return c.problems;
}
