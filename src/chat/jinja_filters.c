/*
 * jinja_filters.c — jinja2's filters with their Python behaviour
 * (jinja2/filters.py), plus transformers' tojson; the filter table.
 *
 * Each filter declares its parameter names so that positional and keyword
 * arguments bind as in Python; map / select / reject / selectattr /
 * rejectattr take a filter or test name and pass the rest on. Filters jinja2
 * has but herd does not implement are listed as unsupported, so a template
 * using them fails clearly instead of rendering differently.
 */
#define _GNU_SOURCE
#include "chat/jinja_filters.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

herd_status herd_jf_need_str(fcall *c, jv v, const char *filter)
{
    if (v.kind == JV_STR) return HERD_OK;
    return herd_jerr(HERD_E_INVALID, c->line, "the %s filter needs a string, not %s", filter,
                     herd_jv_type_name(v));
}

/* str(v) as a value, for the filters that apply soft_str(). */
herd_status herd_jf_to_s(fcall *c, jv v, jv *out)
{
    bool ok;
    *out = herd_jv_stringify(v, &ok);
    return ok ? HERD_OK
              : herd_jerr(HERD_E_UNSUPPORTED, c->line, "converting a %s to a string",
                          herd_jv_type_name(v));
}

/* make_attrgetter: "a.b.0" looked up item-first, default when undefined. */
herd_status herd_jf_attr_get(fcall *c, jv item, jv attr, jv def, jv *out)
{
    if (attr.kind == JV_INT) return herd_jinja_getitem(item, attr, c->line, out);
    if (attr.kind != JV_STR)
        return herd_jerr(HERD_E_INVALID, c->line, "attribute must be a string");
    *out = herd_jv_retain(item);
    const char *p = jv_sp(attr);
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        bool digits = n > 0;
        for (size_t i = 0; i < n; i++) digits = digits && p[i] >= '0' && p[i] <= '9';
        jv key = digits ? jv_int(strtoll(p, NULL, 10)) : herd_jv_str(p, n), next;
        herd_status st = herd_jinja_getitem(*out, key, c->line, &next);
        herd_jv_release(key);
        herd_jv_release(*out);
        *out = next;
        if (st) return st;
        p += n + (dot ? 1 : 0);
    }
    if (out->kind == JV_UNDEF && given(def) && def.kind != JV_NONE) {
        *out = herd_jv_retain(def);
    }
    return HERD_OK;
}

bool herd_jf_fill(jbuf *b, char ch, int64_t n)
{
    if (n <= 0) return true;
    if ((uint64_t)n > HERD_CHAT_MAX_OUTPUT) /* a width is checked before anything is made */
        return herd_jv_limit(HERD_CHAT_LIMIT_OUTPUT);
    char chunk[256];
    memset(chunk, ch, sizeof chunk);
    for (int64_t k; n > 0 && !herd_jv_nomem; n -= k) {
        k = n < (int64_t)sizeof chunk ? n : (int64_t)sizeof chunk;
        herd_jbuf_put(b, chunk, (size_t)k);
    }
    return !herd_jv_nomem;
}

herd_status herd_jf_iter(fcall *c, jv v, jv *out)
{
    return herd_jinja_iterate(v, c->line, out);
}

const char herd_jf_missing[] = "<missing>";

/* ---------------------------------------------------------------- filters */

static herd_status f_abs(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    if (v.kind == JV_FLOAT)
        *out = jv_float(fabs(v.u.f));
    else if (v.kind == JV_INT && v.u.i != INT64_MIN)
        *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
    else if (v.kind == JV_BOOL)
        *out = jv_int(v.u.b);
    else
        return herd_jerr(HERD_E_INVALID, c->line, "bad operand type for abs(): '%s'",
                         herd_jv_type_name(v));
    return HERD_OK;
}

static herd_status f_attr(fcall *c, jv v, jv *p, jv *out)
{
    if (p[0].kind != JV_STR) return herd_jerr(HERD_E_INVALID, c->line, "attr needs a name");
    if (v.kind == JV_DICT) { /* attribute only: no item fallback */
        jv m;
        herd_status st = herd_jinja_getattr(v, jv_sp(p[0]), c->line, &m);
        if (st) return st;
        if (m.kind == JV_METHOD)
            *out = m;
        else
            herd_jv_release(m);
        return HERD_OK;
    }
    return herd_jinja_getattr(v, jv_sp(p[0]), c->line, out);
}

static herd_status f_case(fcall *c, jv v, int mode, jv *out)
{
    jv s;
    herd_status st = herd_jf_to_s(c, v, &s);
    if (st) return st;
    *out = herd_pystr_case(s, mode);
    herd_jv_release(s);
    return HERD_OK;
}
static herd_status f_capitalize(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return f_case(c, v, 3, out);
}
static herd_status f_lower(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return f_case(c, v, 0, out);
}
static herd_status f_upper(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return f_case(c, v, 1, out);
}
static herd_status f_title(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return f_case(c, v, 4, out);
}

static herd_status f_length(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    switch (v.kind) {
    case JV_UNDEF:
        *out = jv_int(0);
        break;
    case JV_STR:
        *out = jv_int((int64_t)herd_u8_len(jv_sp(v), jv_slen(v)));
        break;
    case JV_LIST:
        if (jv_is_iterator(v))
            return herd_jerr(HERD_E_INVALID, c->line, "object of type '%s' has no len()",
                             herd_jv_type_name(v));
        *out = jv_int((int64_t)v.u.l->n);
        break;
    case JV_DICT:
        *out = jv_int((int64_t)v.u.d->n);
        break;
    case JV_LOOP:
        *out = jv_int((int64_t)v.u.lp->length);
        break;
    default:
        return herd_jerr(HERD_E_INVALID, c->line, "object of type '%s' has no len()",
                         herd_jv_type_name(v));
    }
    return HERD_OK;
}

static herd_status f_default(fcall *c, jv v, jv *p, jv *out)
{
    (void)c;
    bool use = v.kind == JV_UNDEF || (given(p[1]) && herd_jv_truthy(p[1]) && !herd_jv_truthy(v));
    *out = use ? (given(p[0]) ? herd_jv_retain(p[0]) : herd_jv_str("", 0)) : herd_jv_retain(v);
    return HERD_OK;
}

static herd_status f_escape(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    jv s;
    herd_status st = herd_jf_to_s(c, v, &s);
    if (st) return st;
    jbuf b = {0};
    for (size_t i = 0; i < jv_slen(s); i++) {
        char ch = jv_sp(s)[i];
        const char *e = ch == '&'    ? "&amp;"
                        : ch == '<'  ? "&lt;"
                        : ch == '>'  ? "&gt;"
                        : ch == '"'  ? "&#34;"
                        : ch == '\'' ? "&#39;"
                                     : NULL;
        if (e)
            herd_jbuf_puts(&b, e);
        else
            herd_jbuf_putc(&b, ch);
    }
    herd_jv_release(s);
    *out = b.p ? herd_jbuf_to_str(&b) : herd_jv_str("", 0);
    return HERD_OK;
}

static herd_status f_float(fcall *c, jv v, jv *p, jv *out)
{
    (void)c;
    if (herd_jv_is_number(v))
        *out = jv_float(herd_jv_num(v));
    else {
        char *end = NULL;
        double d = v.kind == JV_STR ? strtod(jv_sp(v), &end) : 0;
        if (v.kind == JV_STR && end != jv_sp(v) && *end == 0)
            *out = jv_float(d);
        else
            *out = given(p[0]) ? herd_jv_retain(p[0]) : jv_float(0.0);
    }
    return HERD_OK;
}

/* int(d) for a float, as Python: NaN is a ValueError (the default), an
 * infinity or a value beyond 64 bits an error (Python would make a big int). */
static herd_status float_to_int(fcall *c, double d, jv def, jv *out)
{
    if (isnan(d)) {
        *out = given(def) ? herd_jv_retain(def) : jv_int(0);
        return HERD_OK;
    }
    if (!(fabs(d) < 9.2e18))
        return herd_jerr(HERD_E_UNSUPPORTED, c->line, "integer overflow (big integers)");
    *out = jv_int((int64_t)d);
    return HERD_OK;
}

static herd_status f_int(fcall *c, jv v, jv *p, jv *out)
{
    int base = given(p[1]) && p[1].kind == JV_INT ? (int)p[1].u.i : 10;
    jv def = given(p[0]) ? p[0] : jv_int(0);
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        *out = jv_int(jv_ival(v));
        return HERD_OK;
    }
    if (v.kind == JV_FLOAT) return float_to_int(c, v.u.f, def, out);
    herd_status st = HERD_OK;
    char *end = NULL;
    jv t = v.kind == JV_STR ? herd_pystr_strip(v, jv_none(), true, true) : jv_none();
    errno = 0;
    long long x = t.kind == JV_STR ? strtoll(jv_sp(t), &end, base) : 0;
    if (t.kind == JV_STR && jv_slen(t) && *end == 0 && errno == ERANGE)
        st = herd_jerr(HERD_E_UNSUPPORTED, c->line, "integer overflow (big integers)");
    else if (t.kind == JV_STR && jv_slen(t) && *end == 0)
        *out = jv_int(x);
    else if (t.kind == JV_STR && jv_slen(t)) { /* "42.23" | int is 42 */
        double d = strtod(jv_sp(t), &end);
        if (*end == 0)
            st = float_to_int(c, d, def, out);
        else
            *out = herd_jv_retain(def);
    } else
        *out = herd_jv_retain(def);
    herd_jv_release(t);
    return st;
}

/* jinja2's do_indent, including its "s += newline" quirk. */
static herd_status f_indent(fcall *c, jv v, jv *p, jv *out)
{
    herd_status st = herd_jf_need_str(c, v, "indent");
    if (st) return st;
    jbuf ind = {0};
    if (p[0].kind == JV_STR)
        herd_jbuf_put(&ind, jv_sp(p[0]), jv_slen(p[0]));
    else {
        int64_t w = !given(p[0]) ? 4 : p[0].kind == JV_INT ? p[0].u.i : -1;
        if (w < 0 && given(p[0]) && p[0].kind != JV_INT)
            return herd_jerr(HERD_E_INVALID, c->line, "indent width must be an int or a string");
        if (!herd_jf_fill(&ind, ' ', w)) return herd_jv_stop_error(c->line);
    }
    bool first = given(p[1]) && herd_jv_truthy(p[1]), blank = given(p[2]) && herd_jv_truthy(p[2]);
    jbuf t = {0}; /* the lines of s + "\n", streamed rather than split into a list */
    herd_jbuf_put(&t, jv_sp(v), jv_slen(v));
    herd_jbuf_putc(&t, '\n');
    jbuf b = {0};
    if (first) herd_jbuf_put(&b, ind.p, ind.n);
    for (size_t i = 0, next, k = 0; i < t.n && !herd_jv_nomem; i = next, k++) {
        size_t end = herd_pystr_line(t.p, t.n, i, &next);
        if (k) {
            herd_jbuf_putc(&b, '\n');
            if (blank || end > i) herd_jbuf_put(&b, ind.p, ind.n);
        }
        herd_jbuf_put(&b, t.p + i, end - i);
    }
    herd_jbuf_free(&t);
    herd_jbuf_free(&ind);
    if (herd_jv_nomem) {
        herd_jbuf_free(&b);
        return herd_jv_stop_error(c->line);
    }
    *out = b.p ? herd_jbuf_to_str(&b) : herd_jv_str("", 0);
    return HERD_OK;
}

static herd_status f_replace(fcall *c, jv v, jv *p, jv *out)
{
    jv s, o, n;
    herd_status st = herd_jf_to_s(c, v, &s);
    if (st) return st;
    if ((st = herd_jf_to_s(c, p[0], &o))) {
        herd_jv_release(s);
        return st;
    }
    if ((st = herd_jf_to_s(c, p[1], &n))) {
        herd_jv_release(s);
        herd_jv_release(o);
        return st;
    }
    int64_t count = given(p[2]) && p[2].kind == JV_INT ? p[2].u.i : -1;
    *out = herd_pystr_replace(s, o, n, count);
    herd_jv_release(s);
    herd_jv_release(o);
    herd_jv_release(n);
    return HERD_OK;
}

static herd_status f_string(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return herd_jf_to_s(c, v, out);
}
static herd_status f_safe(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return herd_jf_to_s(c, v, out);
}

/* A sort / unique key: the attribute, lower-cased unless case sensitive. */
herd_status herd_jf_sort_key(fcall *c, jv item, jv attr, bool cs, jv *out)
{
    herd_status st = HERD_OK;
    if (given(attr) && attr.kind != JV_NONE)
        st = herd_jf_attr_get(c, item, attr, jv_none(), out);
    else
        *out = herd_jv_retain(item);
    if (!st && !cs && out->kind == JV_STR) {
        jv l = herd_pystr_case(*out, 0);
        herd_jv_release(*out);
        *out = l;
    }
    return st;
}

static herd_status f_tojson(fcall *c, jv v, jv *p, jv *out)
{
    int indent = -1;
    if (given(p[1]) && p[1].kind != JV_NONE) {
        if (p[1].kind != JV_INT)
            return herd_jerr(HERD_E_UNSUPPORTED, c->line, "tojson indent that is not an int");
        indent = p[1].u.i < 0 ? 0 : (int)(p[1].u.i > 64 ? 64 : p[1].u.i);
    }
    const char *isep = NULL, *ksep = NULL;
    jv seps = given(p[2]) ? p[2] : jv_none();
    if (seps.kind == JV_LIST && seps.u.l->n == 2 && seps.u.l->v[0].kind == JV_STR &&
        seps.u.l->v[1].kind == JV_STR) {
        isep = jv_sp(seps.u.l->v[0]);
        ksep = jv_sp(seps.u.l->v[1]);
    } else if (seps.kind != JV_NONE)
        return herd_jerr(HERD_E_INVALID, c->line, "bad tojson separators");
    const char *bad = NULL;
    jbuf b = {0};
    bool ascii = given(p[0]) && herd_jv_truthy(p[0]), sort = given(p[3]) && herd_jv_truthy(p[3]);
    if (!herd_jv_to_json(&b, v, ascii, indent, isep, ksep, sort, &bad)) {
        herd_jbuf_free(&b);
        return herd_jerr(HERD_E_INVALID, c->line, "Object of type %s is not JSON serializable",
                         bad);
    }
    *out = b.p ? herd_jbuf_to_str(&b) : herd_jv_str("", 0);
    return HERD_OK;
}

static herd_status f_trim(fcall *c, jv v, jv *p, jv *out)
{
    jv s;
    herd_status st = herd_jf_to_s(c, v, &s);
    if (st) return st;
    jv chars = given(p[0]) ? p[0] : jv_none();
    if (chars.kind != JV_NONE && chars.kind != JV_STR) {
        herd_jv_release(s);
        return herd_jerr(HERD_E_INVALID, c->line, "strip arg must be None or str");
    }
    *out = herd_pystr_strip(s, chars, true, true);
    herd_jv_release(s);
    return HERD_OK;
}

static herd_status f_wordcount(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    jv s;
    herd_status st = herd_jf_to_s(c, v, &s);
    if (st) return st;
    int64_t k = 0;
    bool in = false;
    herd_jv_charge_bytes(jv_slen(s));
    for (size_t i = 0; i < jv_slen(s);) {
        uint32_t ch = herd_u8_next(jv_sp(s), jv_slen(s), &i);
        bool w = herd_py_isalpha(ch) || herd_py_isdigit(ch) || ch == '_';
        if (w && !in) k++;
        in = w;
    }
    herd_jv_release(s);
    *out = jv_int(k);
    return HERD_OK;
}

/* str.center(width): Python puts the odd space on the left when width is odd. */
static herd_status f_center(fcall *c, jv v, jv *p, jv *out)
{
    jv s;
    herd_status st = herd_jf_to_s(c, v, &s);
    if (st) return st;
    int64_t width = !given(p[0]) ? 80 : p[0].kind == JV_INT ? p[0].u.i : -1;
    if (given(p[0]) && p[0].kind != JV_INT) {
        herd_jv_release(s);
        return herd_jerr(HERD_E_INVALID, c->line, "center width must be an int");
    }
    int64_t len = (int64_t)herd_u8_len(jv_sp(s), jv_slen(s)), marg = width - len;
    if (marg <= 0) {
        *out = s;
        return HERD_OK;
    }
    int64_t left = marg / 2 + (marg & width & 1);
    jbuf b = {0};
    if (herd_jf_fill(&b, ' ', left)) herd_jbuf_put(&b, jv_sp(s), jv_slen(s));
    if (!herd_jv_nomem) herd_jf_fill(&b, ' ', marg - left);
    herd_jv_release(s);
    if (herd_jv_nomem) {
        herd_jbuf_free(&b);
        return herd_jv_stop_error(c->line);
    }
    *out = herd_jbuf_to_str(&b);
    return HERD_OK;
}

/* round(value, precision=0, method='common'): Python's round() is correctly
 * rounded with ties to even, which is what printf's %.*f does. */
static herd_status f_round(fcall *c, jv v, jv *p, jv *out)
{
    int64_t prec = given(p[0]) && p[0].kind == JV_INT ? p[0].u.i : 0;
    const char *method = given(p[1]) && p[1].kind == JV_STR ? jv_sp(p[1]) : "common";
    if (!herd_jv_is_number(v)) return herd_jerr(HERD_E_INVALID, c->line, "round needs a number");
    if (prec < 0 || prec > 300)
        return herd_jerr(HERD_E_UNSUPPORTED, c->line, "round with precision %lld", (long long)prec);
    if (!strcmp(method, "common")) {
        if (v.kind != JV_FLOAT) {
            *out = jv_int(v.kind == JV_BOOL ? v.u.b : v.u.i);
            return HERD_OK;
        }
        char buf[700]; /* 1e308 with 300 decimals */
        snprintf(buf, sizeof buf, "%.*f", (int)prec, v.u.f);
        *out = jv_float(strtod(buf, NULL));
        return HERD_OK;
    }
    if (strcmp(method, "floor") && strcmp(method, "ceil"))
        return herd_jerr(HERD_E_INVALID, c->line, "method must be common, ceil or floor");
    double scale = pow(10.0, (double)prec), x = herd_jv_num(v) * scale;
    *out = jv_float((method[0] == 'f' ? floor(x) : ceil(x)) / scale);
    return HERD_OK;
}

typedef struct filter_def {
    const char *name;
    filter_fn fn;
    const char *params[MAXP]; /* NULL-padded; variadic filters: "*" */
} filter_def;

static const filter_def filters[] = {
    {"abs", f_abs, {NULL}},
    {"attr", f_attr, {"name"}},
    {"capitalize", f_capitalize, {NULL}},
    {"center", f_center, {"width"}},
    {"count", f_length, {NULL}},
    {"d", f_default, {"default_value", "boolean"}},
    {"default", f_default, {"default_value", "boolean"}},
    {"e", f_escape, {NULL}},
    {"escape", f_escape, {NULL}},
    {"first", herd_f_first, {NULL}},
    {"float", f_float, {"default"}},
    {"indent", f_indent, {"width", "first", "blank"}},
    {"int", f_int, {"default", "base"}},
    {"items", herd_f_items, {NULL}},
    {"join", herd_f_join, {"d", "attribute"}},
    {"last", herd_f_last, {NULL}},
    {"length", f_length, {NULL}},
    {"list", herd_f_list, {NULL}},
    {"lower", f_lower, {NULL}},
    {"map", herd_f_map, {"*"}},
    {"max", herd_f_max, {"case_sensitive", "attribute"}},
    {"min", herd_f_min, {"case_sensitive", "attribute"}},
    {"reject", herd_f_reject, {"*"}},
    {"rejectattr", herd_f_rejectattr, {"*"}},
    {"replace", f_replace, {"old", "new", "count"}},
    {"reverse", herd_f_reverse, {NULL}},
    {"round", f_round, {"precision", "method"}},
    {"safe", f_safe, {NULL}},
    {"select", herd_f_select, {"*"}},
    {"selectattr", herd_f_selectattr, {"*"}},
    {"sort", herd_f_sort, {"reverse", "case_sensitive", "attribute"}},
    {"string", f_string, {NULL}},
    {"sum", herd_f_sum, {"attribute", "start"}},
    {"title", f_title, {NULL}},
    {"tojson", f_tojson, {"ensure_ascii", "indent", "separators", "sort_keys"}},
    {"trim", f_trim, {"chars"}},
    {"unique", herd_f_unique, {"case_sensitive", "attribute"}},
    {"upper", f_upper, {NULL}},
    {"wordcount", f_wordcount, {NULL}},
};
#define N_FILTERS (sizeof filters / sizeof filters[0])

/* jinja2 filters herd does not implement. */
static const char *const unsupported_filters[] = {
    "batch",  "dictsort", "filesizeformat", "forceescape", "format",   "groupby",
    "pprint", "random",   "slice",          "striptags",   "truncate", "urlencode",
    "urlize", "wordwrap", "xmlattr",        NULL};

int herd_jinja_filter_id(const char *name)
{
    for (size_t i = 0; i < N_FILTERS; i++)
        if (!strcmp(filters[i].name, name)) return (int)i;
    for (int i = 0; unsupported_filters[i]; i++)
        if (!strcmp(unsupported_filters[i], name)) return -2;
    return -1;
}

herd_status herd_jinja_filter(jrender *r, jscope *s, int id, jv val, jv *args, size_t nargs,
                              char **kwnames, jv *kwargs, size_t nkw, int line, jv *out)
{
    const filter_def *f = &filters[id];
    if (!jv_charge(1)) return herd_jv_stop_error(line);
    fcall c = {r, s, line, args, nargs, kwnames, kwargs, nkw};
    jv p[MAXP];
    for (int i = 0; i < MAXP; i++) p[i] = jv_undef(herd_jf_missing);
    bool variadic = f->params[0] && !strcmp(f->params[0], "*");
    if (!variadic) {
        size_t np = 0;
        while (np < MAXP && f->params[np]) np++;
        if (nargs > np)
            return herd_jerr(HERD_E_INVALID, line, "the %s filter takes at most %zu argument(s)",
                             f->name, np);
        for (size_t i = 0; i < nargs; i++) p[i] = args[i];
        for (size_t k = 0; k < nkw; k++) {
            size_t i = 0;
            while (i < np && strcmp(f->params[i], kwnames[k])) i++;
            if (i == np)
                return herd_jerr(HERD_E_INVALID, line,
                                 "the %s filter got an unexpected keyword argument '%s'", f->name,
                                 kwnames[k]);
            p[i] = kwargs[k];
        }
    }
    *out = jv_undef(NULL);
    return f->fn(&c, val, p, out);
}
