/*
 * jinja_value.c — Python-like values for the template interpreter: reference
 * counting, construction, truth, equality, ordering, str() and repr().
 *
 * The rules are Python's, because jinja2 compiles templates to Python: bool is
 * an int (True == 1), a list never equals a tuple, dicts compare without
 * regard to order, and str() of a list shows the repr() of its items.
 */
#include "chat/jinja.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Thread_local bool herd_jv_nomem;

static void *jalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) herd_jv_nomem = true;
    return p;
}

/* ------------------------------------------------------ reference counts */

jv herd_jv_retain(jv v)
{
    switch (v.kind) {
    case JV_STR:
        if (v.u.s->refs > 0) v.u.s->refs++; /* < 0: a template constant, never counted */
        break;
    case JV_LIST:
        v.u.l->refs++;
        break;
    case JV_DICT:
    case JV_NS:
        v.u.d->refs++;
        break;
    case JV_MACRO:
        v.u.m->refs++;
        break;
    case JV_METHOD:
        v.u.bm->refs++;
        break;
    case JV_LOOP:
        v.u.lp->refs++;
        break;
    default:
        break;
    }
    return v;
}

static void dict_free(jv_dict *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (--d->k[i]->refs == 0) free(d->k[i]);
        herd_jv_release(d->v[i]);
    }
    free(d->k);
    free(d->v);
    free(d);
}

void herd_jv_release(jv v)
{
    switch (v.kind) {
    case JV_STR:
        if (v.u.s->refs > 0 && --v.u.s->refs == 0) free(v.u.s);
        break;
    case JV_LIST:
        if (--v.u.l->refs == 0) {
            for (size_t i = 0; i < v.u.l->n; i++) herd_jv_release(v.u.l->v[i]);
            free(v.u.l->v);
            free(v.u.l);
        }
        break;
    case JV_DICT:
    case JV_NS:
        if (--v.u.d->refs == 0) dict_free(v.u.d);
        break;
    case JV_MACRO:
        if (--v.u.m->refs == 0) free(v.u.m);
        break;
    case JV_METHOD:
        if (--v.u.bm->refs == 0) {
            herd_jv_release(v.u.bm->self);
            free(v.u.bm);
        }
        break;
    case JV_LOOP:
        if (--v.u.lp->refs == 0) {
            herd_jv_release(v.u.lp->items);
            free(v.u.lp);
        }
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------- constructors */

jv herd_jv_str(const char *p, size_t n)
{
    if (!herd_jv_room(0, n) || !herd_jv_charge_bytes(n)) return jv_undef(NULL);
    jv_string *s = jalloc(sizeof *s + n + 1);
    if (!s) return jv_undef(NULL);
    s->refs = 1;
    s->len = n;
    if (n) memcpy(s->p, p, n);
    s->p[n] = 0;
    return (jv){.kind = JV_STR, .u.s = s};
}

void herd_jv_set_constant(jv v)
{
    if (v.kind == JV_STR) v.u.s->refs = -1;
}

void herd_jv_free_constant(jv v)
{
    if (v.kind == JV_STR && v.u.s->refs < 0)
        free(v.u.s);
    else
        herd_jv_release(v);
}

jv herd_jv_cstr(const char *p)
{
    return herd_jv_str(p, strlen(p));
}

jv herd_jv_list_new(size_t cap, bool tuple)
{
    jv_list *l = jalloc(sizeof *l);
    if (!l) return jv_undef(NULL);
    l->refs = 1;
    l->tuple = tuple;
    l->depth = 1;
    if (cap) {
        l->v = jalloc(cap * sizeof *l->v);
        if (l->v) l->cap = cap;
    }
    return (jv){.kind = JV_LIST, .u.l = l};
}

int herd_jv_depth(jv v)
{
    switch (v.kind) {
    case JV_LIST:
        return v.u.l->depth;
    case JV_DICT:
        return v.u.d->depth;
    case JV_NS: /* its entries are not counted: see herd_jv_dict_set_take */
        return 1;
    case JV_METHOD:
        return 1 + herd_jv_depth(v.u.bm->self);
    case JV_LOOP:
        return 1 + herd_jv_depth(v.u.lp->items);
    default:
        return 0;
    }
}

/* A container's depth with item added; false (limit recorded) if too deep.
 * Bounding depth where values are made bounds every recursive walk of them
 * (==, <, tojson, release); only namespaces can change after they are made,
 * and only printing walks into them (herd_jv_to_str counts its own depth). */
static bool deepen(int *depth, jv item)
{
    int d = herd_jv_depth(item) + 1;
    if (d <= *depth) return true;
    if (!herd_jv_depth_ok(d)) return false;
    *depth = d;
    return true;
}

void herd_jv_list_push_take(jv list, jv item)
{
    if (list.kind != JV_LIST || !jv_charge(1) || !deepen(&list.u.l->depth, item)) {
        herd_jv_release(item);
        return;
    }
    jv_list *l = list.u.l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        jv *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            herd_jv_nomem = true;
            herd_jv_release(item);
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = item;
}

jv herd_jv_list_as(jv list, int view)
{
    if (list.kind == JV_LIST) list.u.l->view = (uint8_t)view;
    return list;
}

static jv dict_new(jv_kind kind)
{
    jv_dict *d = jalloc(sizeof *d);
    if (!d) return jv_undef(NULL);
    d->refs = 1;
    d->depth = 1;
    return (jv){.kind = kind, .u.d = d};
}

jv herd_jv_dict_new(void)
{
    return dict_new(JV_DICT);
}
jv herd_jv_ns_new(void)
{
    return dict_new(JV_NS);
}

static long dict_find(const jv_dict *d, const char *key, size_t klen)
{
    if (d->n > 16) jv_charge(d->n / 16); /* a linear search: dicts in templates are small */
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i]->len == klen && memcmp(d->k[i]->p, key, klen) == 0) return (long)i;
    return -1;
}

/* Room for one more entry; false (val released) if not. */
static bool dict_room(jv dict, jv val)
{
    jv_dict *d = dict.u.d;
    bool deep_ok = dict.kind == JV_NS || d->scope || deepen(&d->depth, val);
    if (!jv_charge(1) || !deep_ok) {
        herd_jv_release(val);
        return false;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 4;
        jv_string **k = realloc(d->k, cap * sizeof *k);
        if (k) d->k = k;
        jv *v = k ? realloc(d->v, cap * sizeof *v) : NULL;
        if (!v) {
            herd_jv_nomem = true;
            herd_jv_release(val);
            return false;
        }
        d->v = v;
        d->cap = cap;
    }
    return true;
}

void herd_jv_dict_set_take(jv dict, const char *key, size_t klen, jv val)
{
    if (dict.kind != JV_DICT && dict.kind != JV_NS) {
        herd_jv_release(val);
        return;
    }
    jv_dict *d = dict.u.d;
    long at = dict_find(d, key, klen);
    if (at >= 0) {
        if (dict.kind == JV_DICT && !d->scope && !deepen(&d->depth, val)) {
            herd_jv_release(val);
            return;
        }
        herd_jv_release(d->v[at]);
        d->v[at] = val;
        return;
    }
    if (!dict_room(dict, val)) return;
    jv ks = herd_jv_str(key, klen);
    if (ks.kind != JV_STR) {
        herd_jv_release(val);
        return;
    }
    d->k[d->n] = ks.u.s;
    d->v[d->n++] = val;
}

void herd_jv_dict_append_take(jv dict, jv_string *key, jv val)
{
    if ((dict.kind != JV_DICT && dict.kind != JV_NS) || !dict_room(dict, val)) {
        if (key && --key->refs == 0) free(key);
        if (dict.kind != JV_DICT && dict.kind != JV_NS) herd_jv_release(val);
        return;
    }
    jv_dict *d = dict.u.d;
    d->k[d->n] = key;
    d->v[d->n++] = val;
}

void herd_jv_dict_clear(jv dict)
{
    if (dict.kind != JV_DICT && dict.kind != JV_NS) return;
    jv_dict *d = dict.u.d;
    size_t n = d->n;
    d->n = 0; /* first detach, so that releasing an entry never sees a half-cleared dict */
    for (size_t i = 0; i < n; i++) {
        if (--d->k[i]->refs == 0) free(d->k[i]);
        herd_jv_release(d->v[i]);
    }
}

const jv *herd_jv_dict_get(jv dict, const char *key, size_t klen)
{
    if (dict.kind != JV_DICT && dict.kind != JV_NS) return NULL;
    long at = dict_find(dict.u.d, key, klen);
    return at < 0 ? NULL : &dict.u.d->v[at];
}

jv herd_jv_method_new(jv self, const char *name)
{
    jv_method *m = jalloc(sizeof *m);
    if (!m) return jv_undef(NULL);
    m->refs = 1;
    m->self = herd_jv_retain(self);
    m->name = name;
    return (jv){.kind = JV_METHOD, .u.bm = m};
}

jv herd_jv_loop_new(jv items, size_t index0)
{
    jv_loop *lp = jalloc(sizeof *lp);
    if (!lp) return jv_undef(NULL);
    lp->refs = 1;
    lp->items = herd_jv_retain(items);
    lp->index0 = index0;
    lp->length = items.kind == JV_LIST ? items.u.l->n : 0;
    return (jv){.kind = JV_LOOP, .u.lp = lp};
}

/* ------------------------------------------------------------- semantics */

bool herd_jv_truthy(jv v)
{
    switch (v.kind) {
    case JV_UNDEF:
    case JV_NONE:
        return false;
    case JV_BOOL:
        return v.u.b;
    case JV_INT:
        return v.u.i != 0;
    case JV_FLOAT:
        return v.u.f != 0.0;
    case JV_STR:
        return v.u.s->len != 0;
    case JV_LIST:
        return jv_is_iterator(v) || v.u.l->n != 0;
    case JV_DICT:
        return v.u.d->n != 0;
    default:
        return true;
    }
}

bool herd_jv_is_number(jv v)
{
    return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT;
}

double herd_jv_num(jv v)
{
    switch (v.kind) {
    case JV_BOOL:
        return v.u.b;
    case JV_INT:
        return (double)v.u.i;
    case JV_FLOAT:
        return v.u.f;
    default:
        return 0;
    }
}

static bool dict_equal(const jv_dict *a, const jv_dict *b)
{
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++) {
        if (!jv_charge(1)) return false;
        long j = dict_find(b, a->k[i]->p, a->k[i]->len);
        if (j < 0 || !herd_jv_equal(a->v[i], b->v[j])) return false;
    }
    return true;
}

bool herd_jv_equal(jv a, jv b)
{
    if (herd_jv_is_number(a) && herd_jv_is_number(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) {
            int64_t x = a.kind == JV_BOOL ? a.u.b : a.u.i, y = b.kind == JV_BOOL ? b.u.b : b.u.i;
            return x == y;
        }
        return herd_jv_num(a) == herd_jv_num(b);
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case JV_UNDEF:
    case JV_NONE:
        return true;
    case JV_STR:
        if (a.u.s->len != b.u.s->len) return false;
        herd_jv_charge_bytes(a.u.s->len);
        return memcmp(a.u.s->p, b.u.s->p, a.u.s->len) == 0;
    case JV_LIST:
        if (jv_is_iterator(a) || jv_is_iterator(b)) return a.u.l == b.u.l; /* identity */
        if (a.u.l->view != b.u.l->view) return false;
        if (a.u.l->tuple != b.u.l->tuple || a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_charge(1) || !herd_jv_equal(a.u.l->v[i], b.u.l->v[i])) return false;
        return true;
    case JV_DICT:
        return a.u.d == b.u.d || dict_equal(a.u.d, b.u.d);
    case JV_NS:
        return a.u.d == b.u.d;
    case JV_MACRO:
        return a.u.m == b.u.m;
    case JV_FUNC:
        return a.u.fn == b.u.fn;
    case JV_METHOD:
        return a.u.bm->name == b.u.bm->name && herd_jv_equal(a.u.bm->self, b.u.bm->self);
    case JV_LOOP:
        return a.u.lp == b.u.lp;
    default:
        return false;
    }
}

bool herd_jv_compare(jv a, jv b, int *cmp)
{
    if (herd_jv_is_number(a) && herd_jv_is_number(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) {
            int64_t x = a.kind == JV_BOOL ? a.u.b : a.u.i, y = b.kind == JV_BOOL ? b.u.b : b.u.i;
            *cmp = (x > y) - (x < y);
        } else {
            double x = herd_jv_num(a), y = herd_jv_num(b);
            if (isnan(x) || isnan(y))
                *cmp = 2; /* every comparison false */
            else
                *cmp = (x > y) - (x < y);
        }
        return true;
    }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        /* UTF-8 byte order is code point order. */
        herd_jv_charge_bytes(a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len);
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int c = memcmp(a.u.s->p, b.u.s->p, n);
        if (c == 0) c = (a.u.s->len > b.u.s->len) - (a.u.s->len < b.u.s->len);
        *cmp = (c > 0) - (c < 0);
        return true;
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && a.u.l->tuple == b.u.l->tuple && !a.u.l->view &&
        !b.u.l->view) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (herd_jv_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return herd_jv_compare(a.u.l->v[i], b.u.l->v[i], cmp);
        }
        *cmp = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
        return true;
    }
    return false;
}

const char *herd_jv_type_name(jv v)
{
    switch (v.kind) {
    case JV_UNDEF:
        return "Undefined";
    case JV_NONE:
        return "NoneType";
    case JV_BOOL:
        return "bool";
    case JV_INT:
        return "int";
    case JV_FLOAT:
        return "float";
    case JV_STR:
        return "str";
    case JV_LIST:
        switch (v.u.l->view) {
        case JV_VIEW_ITEMS:
            return "dict_items";
        case JV_VIEW_KEYS:
            return "dict_keys";
        case JV_VIEW_VALUES:
            return "dict_values";
        case JV_VIEW_GENERATOR:
            return "generator";
        case JV_VIEW_REVERSED:
            return "list_reverseiterator";
        case JV_VIEW_RANGE:
            return "range";
        default:
            break;
        }
        return v.u.l->tuple ? "tuple" : "list";
    case JV_DICT:
        return "dict";
    case JV_NS:
        return "Namespace";
    case JV_MACRO:
        return "Macro";
    case JV_FUNC:
        return "function";
    case JV_METHOD:
        return "builtin_function_or_method";
    case JV_LOOP:
        return "LoopContext";
    }
    return "object";
}

/* ---------------------------------------------------------------- jbuf */

void herd_jbuf_put(jbuf *b, const char *s, size_t n)
{
    if (n == 0 || !herd_jv_room(b->n, n) || !herd_jv_charge_bytes(n)) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            herd_jv_nomem = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void herd_jbuf_puts(jbuf *b, const char *s)
{
    herd_jbuf_put(b, s, strlen(s));
}
void herd_jbuf_putc(jbuf *b, char c)
{
    herd_jbuf_put(b, &c, 1);
}

void herd_jbuf_printf(jbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) herd_jbuf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

jv herd_jbuf_to_str(jbuf *b)
{
    jv s = herd_jv_str(b->p ? b->p : "", b->n);
    herd_jbuf_free(b);
    return s;
}

void herd_jbuf_free(jbuf *b)
{
    free(b->p);
    *b = (jbuf){0};
}

/* ------------------------------------------------------- str() and repr() */

/* Python's float repr: the shortest digits that read back as the same double,
 * in fixed notation when the exponent is in [-4, 16), else scientific. */
void herd_jv_float_repr(jbuf *b, double f)
{
    if (isnan(f)) {
        herd_jbuf_puts(b, "nan");
        return;
    }
    if (isinf(f)) {
        herd_jbuf_puts(b, f < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[40];
    int prec = 0;
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp: [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) herd_jbuf_putc(b, '-');
    if (exp < -4 || exp >= 16) {
        herd_jbuf_putc(b, digits[0]);
        if (nd > 1) {
            herd_jbuf_putc(b, '.');
            herd_jbuf_put(b, digits + 1, nd - 1);
        }
        herd_jbuf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        herd_jbuf_puts(b, "0.");
        for (int i = 0; i < -exp - 1; i++) herd_jbuf_putc(b, '0');
        herd_jbuf_put(b, digits, nd);
    } else {
        for (int i = 0; i <= exp; i++) herd_jbuf_putc(b, (size_t)i < nd ? digits[i] : '0');
        herd_jbuf_putc(b, '.');
        if ((size_t)exp + 1 < nd)
            herd_jbuf_put(b, digits + exp + 1, nd - (size_t)exp - 1);
        else
            herd_jbuf_putc(b, '0');
    }
}

/* Characters Python's str.isprintable() rejects, as far as templates meet
 * them: controls, the Latin-1 specials, odd spaces, format characters. */
static bool py_unprintable(uint32_t c)
{
    if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) return true;
    if (c == 0x1680 || (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f)) return true;
    if ((c >= 0x205f && c <= 0x2064) || c == 0x3000 || c == 0xfeff) return true;
    if (c >= 0xd800 && c <= 0xdfff) return true;
    return false;
}

static void repr_str(jbuf *b, const char *s, size_t n)
{
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    herd_jbuf_putc(b, q);
    for (size_t i = 0; i < n;) {
        size_t start = i;
        uint32_t c = herd_u8_next(s, n, &i);
        if (c == (uint32_t)q || c == '\\') {
            herd_jbuf_putc(b, '\\');
            herd_jbuf_putc(b, (char)c);
        } else if (c == '\n')
            herd_jbuf_puts(b, "\\n");
        else if (c == '\r')
            herd_jbuf_puts(b, "\\r");
        else if (c == '\t')
            herd_jbuf_puts(b, "\\t");
        else if (py_unprintable(c)) {
            if (c < 0x100)
                herd_jbuf_printf(b, "\\x%02x", c);
            else
                herd_jbuf_printf(b, "\\u%04x", c);
        } else
            herd_jbuf_put(b, s + start, i - start);
    }
    herd_jbuf_putc(b, q);
}

static bool seq_repr(jbuf *b, const jv_list *l)
{
    if (l->view >= JV_VIEW_GENERATOR) return false; /* Python prints an address or range(...) */
    if (l->view) {                                  /* dict_items([...]) */
        herd_jbuf_puts(b, herd_jv_type_name((jv){.kind = JV_LIST, .u.l = (jv_list *)l}));
        herd_jbuf_putc(b, '(');
        jv_list plain = *l;
        plain.view = 0;
        bool ok = seq_repr(b, &plain);
        herd_jbuf_putc(b, ')');
        return ok;
    }
    herd_jbuf_putc(b, l->tuple ? '(' : '[');
    for (size_t i = 0; i < l->n; i++) {
        if (i) herd_jbuf_puts(b, ", ");
        if (!herd_jv_repr(b, l->v[i])) return false;
    }
    if (l->tuple && l->n == 1) herd_jbuf_putc(b, ',');
    herd_jbuf_putc(b, l->tuple ? ')' : ']');
    return true;
}

static bool dict_repr(jbuf *b, const jv_dict *d)
{
    herd_jbuf_putc(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) herd_jbuf_puts(b, ", ");
        repr_str(b, d->k[i]->p, d->k[i]->len);
        herd_jbuf_puts(b, ": ");
        if (!herd_jv_repr(b, d->v[i])) return false;
    }
    herd_jbuf_putc(b, '}');
    return true;
}

/* str() of a container. Printing is the one walk that enters namespaces,
 * which may contain themselves, so it counts its own depth. */
static bool container_str(jbuf *b, jv v)
{
    if (!herd_jv_depth_ok(++herd_jv_budget.walk)) {
        herd_jv_budget.walk--;
        return false;
    }
    bool ok;
    if (v.kind == JV_LIST)
        ok = seq_repr(b, v.u.l);
    else if (v.kind == JV_DICT)
        ok = dict_repr(b, v.u.d);
    else {
        herd_jbuf_puts(b, "<Namespace ");
        ok = dict_repr(b, v.u.d);
        herd_jbuf_putc(b, '>');
    }
    herd_jv_budget.walk--;
    return ok && !herd_jv_nomem;
}

bool herd_jv_to_str(jbuf *b, jv v)
{
    switch (v.kind) {
    case JV_UNDEF:
        return true;
    case JV_NONE:
        herd_jbuf_puts(b, "None");
        return true;
    case JV_BOOL:
        herd_jbuf_puts(b, v.u.b ? "True" : "False");
        return true;
    case JV_INT:
        herd_jbuf_printf(b, "%lld", (long long)v.u.i);
        return true;
    case JV_FLOAT:
        herd_jv_float_repr(b, v.u.f);
        return true;
    case JV_STR:
        herd_jbuf_put(b, v.u.s->p, v.u.s->len);
        return true;
    case JV_LIST:
    case JV_DICT:
    case JV_NS:
        return container_str(b, v);
    case JV_LOOP:
        herd_jbuf_printf(b, "<LoopContext %zu/%zu>", v.u.lp->index0 + 1, v.u.lp->length);
        return true;
    default:
        return false; /* macros, functions, methods: Python prints an address */
    }
}

bool herd_jv_repr(jbuf *b, jv v)
{
    if (v.kind == JV_STR) {
        repr_str(b, v.u.s->p, v.u.s->len);
        return true;
    }
    if (v.kind == JV_UNDEF) {
        herd_jbuf_puts(b, "Undefined");
        return true;
    }
    return herd_jv_to_str(b, v);
}

jv herd_jv_stringify(jv v, bool *ok)
{
    *ok = true;
    if (v.kind == JV_STR) return herd_jv_retain(v);
    jbuf b = {0};
    if (!herd_jv_to_str(&b, v)) {
        *ok = false;
        herd_jbuf_free(&b);
        return jv_undef(NULL);
    }
    return herd_jbuf_to_str(&b);
}
