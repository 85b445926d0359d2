/*
 * jinja_methods.c — attribute and item access, iteration, the methods of str,
 * dict and list values, and the global functions.
 *
 * Access follows jinja2's sandbox exactly, because templates lean on its
 * corners:
 *   a.b   tries the Python attribute first (so d.items is the dict method even
 *         when d has an "items" key), then the item d["b"];
 *   a[b]  tries the item first, then (for a string b) the attribute;
 *   missing either way gives undefined, not an error, but any access on an
 *   undefined value is an error; on none it is undefined.
 * The sandbox is immutable: list.append, dict.update and the like exist but
 * refuse to run, as in transformers.
 */
#define _GNU_SOURCE
#include "chat/jinja.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RANGE 100000

/* Python's method names per type; the ones herd implements are handled in
 * call_* below, the rest are unsupported when called. */
static const char *const str_methods[] = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill",        NULL};
static const char *const dict_methods[] = {"clear",      "copy",   "fromkeys", "get",
                                           "items",      "keys",   "pop",      "popitem",
                                           "setdefault", "update", "values",   NULL};
static const char *const list_methods[] = {"append", "clear",   "copy",   "count",
                                           "extend", "index",   "insert", "pop",
                                           "remove", "reverse", "sort",   NULL};
/* Methods that mutate: the immutable sandbox forbids them. */
static const char *const unsafe_methods[] = {"clear",  "pop",     "popitem", "setdefault",
                                             "update", "append",  "extend",  "insert",
                                             "remove", "reverse", "sort",    NULL};

static const char *find_name(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name)) return names[i];
    return NULL;
}

static const char *method_of(jv obj, const char *name)
{
    switch (obj.kind) {
    case JV_STR:
        return find_name(str_methods, name);
    case JV_DICT:
        return find_name(dict_methods, name);
    case JV_LIST:
        return find_name(list_methods, name);
    case JV_LOOP:
        return !strcmp(name, "cycle") ? "cycle" : NULL;
    default:
        return NULL;
    }
}

static bool loop_attr(const jv_loop *lp, const char *name, jv *out)
{
    size_t i = lp->index0, n = lp->length;
    const jv *items = lp->items.u.l->v;
    if (!strcmp(name, "index"))
        *out = jv_int((int64_t)i + 1);
    else if (!strcmp(name, "index0"))
        *out = jv_int((int64_t)i);
    else if (!strcmp(name, "revindex"))
        *out = jv_int((int64_t)(n - i));
    else if (!strcmp(name, "revindex0"))
        *out = jv_int((int64_t)(n - i - 1));
    else if (!strcmp(name, "first"))
        *out = jv_bool(i == 0);
    else if (!strcmp(name, "last"))
        *out = jv_bool(i + 1 == n);
    else if (!strcmp(name, "length"))
        *out = jv_int((int64_t)n);
    else if (!strcmp(name, "depth"))
        *out = jv_int(1);
    else if (!strcmp(name, "depth0"))
        *out = jv_int(0);
    else if (!strcmp(name, "previtem"))
        *out = i > 0 ? herd_jv_retain(items[i - 1]) : jv_undef("previtem");
    else if (!strcmp(name, "nextitem"))
        *out = i + 1 < n ? herd_jv_retain(items[i + 1]) : jv_undef("nextitem");
    else if (!strcmp(name, "changed"))
        return false;
    else
        return false;
    return true;
}

herd_status herd_jinja_getattr(jv obj, const char *name, int line, jv *out)
{
    if (obj.kind == JV_UNDEF) return herd_jerr_undef(obj, line);
    const char *m = method_of(obj, name);
    if (m) {
        *out = herd_jv_method_new(obj, m);
        return HERD_OK;
    }
    if (obj.kind == JV_LOOP && !strcmp(name, "changed"))
        return herd_jerr(HERD_E_UNSUPPORTED, line, "loop.changed()");
    if (obj.kind == JV_LOOP && loop_attr(obj.u.lp, name, out)) return HERD_OK;
    if (obj.kind == JV_DICT || obj.kind == JV_NS) {
        const jv *v = herd_jv_dict_get(obj, name, strlen(name));
        if (v) {
            *out = herd_jv_retain(*v);
            return HERD_OK;
        }
    }
    *out = jv_undef(name);
    return HERD_OK;
}

herd_status herd_jinja_getitem(jv obj, jv key, int line, jv *out)
{
    if (obj.kind == JV_UNDEF) return herd_jerr_undef(obj, line);
    bool intkey = key.kind == JV_INT || key.kind == JV_BOOL;
    int64_t k = key.kind == JV_BOOL ? key.u.b : key.u.i;
    if (obj.kind == JV_DICT && key.kind == JV_STR) {
        const jv *v = herd_jv_dict_get(obj, jv_sp(key), jv_slen(key));
        if (v) {
            *out = herd_jv_retain(*v);
            return HERD_OK;
        }
    } else if (obj.kind == JV_LIST && intkey &&
               (obj.u.l->view == JV_VIEW_NONE || obj.u.l->view == JV_VIEW_RANGE)) {
        int64_t n = (int64_t)obj.u.l->n;
        if (k < 0) k += n;
        *out = k >= 0 && k < n ? herd_jv_retain(obj.u.l->v[k]) : jv_undef(NULL);
        return HERD_OK;
    } else if (obj.kind == JV_STR && intkey) {
        *out = herd_pystr_index(obj, k);
        return HERD_OK;
    }
    if (key.kind == JV_STR) { /* the attribute, as jinja2's getitem falls back to */
        const char *m = method_of(obj, jv_sp(key));
        if (m) {
            *out = herd_jv_method_new(obj, m);
            return HERD_OK;
        }
        if (obj.kind == JV_NS || obj.kind == JV_LOOP)
            return herd_jinja_getattr(obj, jv_sp(key), line, out);
    }
    *out = jv_undef(NULL);
    return HERD_OK;
}

herd_status herd_jinja_iterate(jv v, int line, jv *out)
{
    switch (v.kind) {
    case JV_LIST:
        if (jv_is_iterator(v)) { /* single pass: the items once, then nothing */
            *out = herd_jv_list_new(v.u.l->consumed ? 0 : v.u.l->n, false);
            for (size_t i = 0; !v.u.l->consumed && i < v.u.l->n; i++)
                herd_jv_list_push_take(*out, herd_jv_retain(v.u.l->v[i]));
            v.u.l->consumed = true;
            return HERD_OK;
        }
        *out = herd_jv_retain(v);
        return HERD_OK;
    case JV_UNDEF:
        *out = herd_jv_list_new(0, false);
        return HERD_OK;
    case JV_DICT:
        *out = herd_jv_list_new(v.u.d->n, false);
        for (size_t i = 0; i < v.u.d->n; i++)
            herd_jv_list_push_take(*out, herd_jv_str(v.u.d->k[i]->p, v.u.d->k[i]->len));
        return HERD_OK;
    case JV_STR: {
        const char *p = jv_sp(v);
        size_t n = jv_slen(v);
        *out = herd_jv_list_new(n, false);
        for (size_t i = 0; i < n;) {
            size_t st = i;
            herd_u8_next(p, n, &i);
            herd_jv_list_push_take(*out, herd_jv_str(p + st, i - st));
        }
        return HERD_OK;
    }
    case JV_LOOP:
        return herd_jinja_iterate(v.u.lp->items, line, out);
    default:
        *out = jv_undef(NULL);
        return herd_jerr(HERD_E_INVALID, line, "'%s' object is not iterable", herd_jv_type_name(v));
    }
}

/* ---------------------------------------------------------------- methods */

static herd_status want_str(jv v, const char *what, int line)
{
    if (v.kind == JV_STR) return HERD_OK;
    return herd_jerr(HERD_E_INVALID, line, "%s must be str, not %s", what, herd_jv_type_name(v));
}

/* s.startswith(x) / endswith(x), x a str or a tuple of them. */
static herd_status affix(jv s, jv x, bool end, int line, bool *out)
{
    *out = false;
    if (x.kind == JV_LIST && x.u.l->tuple) {
        for (size_t i = 0; i < x.u.l->n && !*out; i++) {
            herd_status st = affix(s, x.u.l->v[i], end, line, out);
            if (st) return st;
        }
        return HERD_OK;
    }
    herd_status st = want_str(x, end ? "endswith arg" : "startswith arg", line);
    if (st) return st;
    size_t n = jv_slen(s), m = jv_slen(x);
    *out = m <= n && memcmp(jv_sp(s) + (end ? n - m : 0), jv_sp(x), m) == 0;
    return HERD_OK;
}

static bool str_is(jv s, bool (*pred)(uint32_t))
{
    const char *p = jv_sp(s);
    size_t n = jv_slen(s);
    if (n == 0) return false;
    herd_jv_charge_bytes(n);
    for (size_t i = 0; i < n;)
        if (!pred(herd_u8_next(p, n, &i))) return false;
    return true;
}
static bool isalnum_cp(uint32_t c)
{
    return herd_py_isalpha(c) || herd_py_isdigit(c);
}

static herd_status str_case_is(jv s, bool upper, jv *out)
{
    const char *p = jv_sp(s);
    size_t n = jv_slen(s);
    bool cased = false, ok = true;
    herd_jv_charge_bytes(n);
    for (size_t i = 0; i < n && ok;) {
        uint32_t c = herd_u8_next(p, n, &i);
        if (!herd_py_iscased(c)) continue;
        cased = true;
        ok = upper ? herd_py_upper(c) == c : herd_py_lower(c) == c;
    }
    *out = jv_bool(cased && ok);
    return HERD_OK;
}

static herd_status str_join(jv sep, jv seq, int line, jv *out)
{
    jv items;
    herd_status st = herd_jinja_iterate(seq, line, &items);
    if (st) return st;
    jbuf b = {0};
    for (size_t i = 0; i < items.u.l->n && !st; i++) {
        jv it = items.u.l->v[i];
        if (it.kind != JV_STR)
            st = herd_jerr(HERD_E_INVALID, line,
                           "sequence item %zu: expected str instance, %s found", i,
                           herd_jv_type_name(it));
        if (i) herd_jbuf_put(&b, jv_sp(sep), jv_slen(sep));
        if (!st) herd_jbuf_put(&b, jv_sp(it), jv_slen(it));
    }
    herd_jv_release(items);
    if (st)
        herd_jbuf_free(&b);
    else
        *out = b.p ? herd_jbuf_to_str(&b) : herd_jv_str("", 0);
    return st;
}

static herd_status call_str(jv s, const char *m, jv *a, size_t n, int line, jv *out)
{
    jv none = jv_none(), a0 = n > 0 ? a[0] : none, a1 = n > 1 ? a[1] : none;
    herd_status st = HERD_OK;
    bool b;
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
        if (a0.kind != JV_NONE && (st = want_str(a0, "strip arg", line))) return st;
        *out = herd_pystr_strip(s, a0, m[0] != 'r', m[0] != 'l');
    } else if (!strcmp(m, "split") || (!strcmp(m, "rsplit") && (n < 2 || a1.u.i < 0))) {
        if (a0.kind != JV_NONE && (st = want_str(a0, "separator", line))) return st;
        if (n > 1 && a1.kind != JV_INT)
            return herd_jerr(HERD_E_INVALID, line, "maxsplit must be an int");
        *out = herd_pystr_split(s, a0, n > 1 ? a1.u.i : -1, &b);
        if (!b) st = herd_jerr(HERD_E_INVALID, line, "empty separator");
    } else if (!strcmp(m, "splitlines"))
        *out = herd_pystr_splitlines(jv_sp(s), jv_slen(s));
    else if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        if (n != 1) return herd_jerr(HERD_E_UNSUPPORTED, line, "str.%s with start/end", m);
        if (!(st = affix(s, a0, m[0] == 'e', line, &b))) *out = jv_bool(b);
    } else if (!strcmp(m, "upper"))
        *out = herd_pystr_case(s, 1);
    else if (!strcmp(m, "lower") || !strcmp(m, "casefold"))
        *out = herd_pystr_case(s, 0);
    else if (!strcmp(m, "title"))
        *out = herd_pystr_case(s, 2);
    else if (!strcmp(m, "capitalize"))
        *out = herd_pystr_case(s, 3);
    else if (!strcmp(m, "replace")) {
        if ((st = want_str(a0, "replace arg 1", line)) ||
            (st = want_str(a1, "replace arg 2", line)))
            return st;
        *out = herd_pystr_replace(s, a0, a1, n > 2 && a[2].kind == JV_INT ? a[2].u.i : -1);
    } else if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "count")) {
        if ((st = want_str(a0, "substring", line))) return st;
        *out = jv_int(m[0] == 'c' ? herd_pystr_count(s, a0) : herd_pystr_find(s, a0, m[0] == 'r'));
    } else if (!strcmp(m, "join"))
        st = str_join(s, a0, line, out);
    else if (!strcmp(m, "isdigit") || !strcmp(m, "isdecimal") || !strcmp(m, "isnumeric"))
        *out = jv_bool(str_is(s, herd_py_isdigit));
    else if (!strcmp(m, "isalpha"))
        *out = jv_bool(str_is(s, herd_py_isalpha));
    else if (!strcmp(m, "isalnum"))
        *out = jv_bool(str_is(s, isalnum_cp));
    else if (!strcmp(m, "isspace"))
        *out = jv_bool(str_is(s, herd_py_isspace));
    else if (!strcmp(m, "isupper") || !strcmp(m, "islower"))
        st = str_case_is(s, m[2] == 'u', out);
    else if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        if ((st = want_str(a0, "argument", line))) return st;
        bool end = m[6] == 's';
        if (!(st = affix(s, a0, end, line, &b))) {
            size_t k = b ? jv_slen(a0) : 0;
            *out = herd_jv_str(jv_sp(s) + (end ? 0 : k), jv_slen(s) - k);
        }
    } else
        st = herd_jerr(HERD_E_UNSUPPORTED, line, "the str.%s() method", m);
    return st;
}

static herd_status call_dict(jv d, const char *m, jv *a, size_t n, int line, jv *out)
{
    if (!strcmp(m, "get")) {
        if (n < 1 || n > 2) return herd_jerr(HERD_E_INVALID, line, "get expected 1 or 2 arguments");
        const jv *v = a[0].kind == JV_STR ? herd_jv_dict_get(d, jv_sp(a[0]), jv_slen(a[0])) : NULL;
        *out = v ? herd_jv_retain(*v) : n > 1 ? herd_jv_retain(a[1]) : jv_none();
        return HERD_OK;
    }
    if (!strcmp(m, "copy")) {
        *out = herd_jv_dict_new();
        for (size_t i = 0; i < d.u.d->n; i++) {
            d.u.d->k[i]->refs++; /* keys are shared, and known to be unique */
            herd_jv_dict_append_take(*out, d.u.d->k[i], herd_jv_retain(d.u.d->v[i]));
        }
        return HERD_OK;
    }
    int mode = !strcmp(m, "keys") ? 0 : !strcmp(m, "values") ? 1 : !strcmp(m, "items") ? 2 : -1;
    if (mode < 0) return herd_jerr(HERD_E_UNSUPPORTED, line, "the dict.%s() method", m);
    *out = herd_jv_list_new(d.u.d->n, false);
    herd_jv_list_as(*out, mode == 2 ? JV_VIEW_ITEMS : mode == 0 ? JV_VIEW_KEYS : JV_VIEW_VALUES);
    for (size_t i = 0; i < d.u.d->n; i++) {
        jv k = herd_jv_str(d.u.d->k[i]->p, d.u.d->k[i]->len);
        if (mode == 0)
            herd_jv_list_push_take(*out, k);
        else if (mode == 1) {
            herd_jv_release(k);
            herd_jv_list_push_take(*out, herd_jv_retain(d.u.d->v[i]));
        } else {
            jv pair = herd_jv_list_new(2, true);
            herd_jv_list_push_take(pair, k);
            herd_jv_list_push_take(pair, herd_jv_retain(d.u.d->v[i]));
            herd_jv_list_push_take(*out, pair);
        }
    }
    return HERD_OK;
}

static herd_status call_list(jv l, const char *m, jv *a, size_t n, int line, jv *out)
{
    if (!strcmp(m, "copy")) {
        *out = herd_jv_list_new(l.u.l->n, false);
        for (size_t i = 0; i < l.u.l->n; i++)
            herd_jv_list_push_take(*out, herd_jv_retain(l.u.l->v[i]));
        return HERD_OK;
    }
    if ((!strcmp(m, "count") || !strcmp(m, "index")) && n == 1) {
        int64_t k = 0, at = -1;
        for (size_t i = 0; i < l.u.l->n && jv_charge(1); i++) {
            if (!herd_jv_equal(l.u.l->v[i], a[0])) continue;
            k++;
            if (at < 0) at = (int64_t)i;
        }
        if (m[0] == 'i' && at < 0) return herd_jerr(HERD_E_INVALID, line, "value is not in list");
        *out = jv_int(m[0] == 'c' ? k : at);
        return HERD_OK;
    }
    return herd_jerr(HERD_E_UNSUPPORTED, line, "the list.%s() method", m);
}

herd_status herd_jinja_call_method(jrender *r, jv self, const char *name, jv *args, size_t nargs,
                                   char **kwnames, jv *kwargs, size_t nkw, int line, jv *out)
{
    (void)r;
    (void)kwnames;
    (void)kwargs;
    if (find_name(unsafe_methods, name) && self.kind != JV_STR)
        return herd_jerr(HERD_E_INVALID, line, "access to attribute '%s' of '%s' object is unsafe.",
                         name, herd_jv_type_name(self));
    if (nkw) return herd_jerr(HERD_E_UNSUPPORTED, line, "keyword arguments to %s()", name);
    switch (self.kind) {
    case JV_STR:
        return call_str(self, name, args, nargs, line, out);
    case JV_DICT:
        return call_dict(self, name, args, nargs, line, out);
    case JV_LIST:
        return call_list(self, name, args, nargs, line, out);
    case JV_LOOP:
        if (nargs == 0) return herd_jerr(HERD_E_INVALID, line, "no items for cycling given");
        *out = herd_jv_retain(args[self.u.lp->index0 % nargs]);
        return HERD_OK;
    default:
        return herd_jerr(HERD_E_INVALID, line, "'%s' has no method %s", herd_jv_type_name(self),
                         name);
    }
}

/* --------------------------------------------------------------- globals */

const char *herd_jinja_func_name(int fn)
{
    static const char *const names[F_COUNT] = {"range", "namespace", "dict", "raise_exception",
                                               "strftime_now"};
    return fn >= 0 && fn < F_COUNT ? names[fn] : "?";
}

static herd_status fn_range(jv *a, size_t n, int line, jv *out)
{
    int64_t v[3] = {0, 0, 1};
    if (n < 1 || n > 3) return herd_jerr(HERD_E_INVALID, line, "range expected 1 to 3 arguments");
    for (size_t i = 0; i < n; i++) {
        if (a[i].kind != JV_INT && a[i].kind != JV_BOOL)
            return herd_jerr(HERD_E_INVALID, line,
                             "'%s' object cannot be interpreted as an integer",
                             herd_jv_type_name(a[i]));
        v[n == 1 ? 1 : i] = a[i].kind == JV_BOOL ? a[i].u.b : a[i].u.i;
    }
    if (v[2] == 0) return herd_jerr(HERD_E_INVALID, line, "range() arg 3 must not be zero");
    /* Python's length: ceil((stop - start) / step), exact in 128 bits. */
    __int128 span = (__int128)v[1] - v[0], step = v[2];
    __int128 count = step > 0 ? (span + step - 1) / step : (span + step + 1) / step;
    if (count < 0) count = 0;
    if (count > MAX_RANGE)
        return herd_jerr(
            HERD_E_INVALID, line,
            "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    *out = herd_jv_list_as(herd_jv_list_new((size_t)count, false), JV_VIEW_RANGE);
    for (int64_t k = 0; k < (int64_t)count; k++) /* start + k*step stays within the bounds */
        herd_jv_list_push_take(*out, jv_int((int64_t)(v[0] + (__int128)k * step)));
    return HERD_OK;
}

/* namespace(...) and dict(...): an optional mapping, then keyword arguments. */
static herd_status fn_mapping(jrender *r, bool ns, jv *a, size_t n, char **kwn, jv *kw, size_t nkw,
                              int line, jv *out)
{
    if (n > 1 || (n == 1 && a[0].kind != JV_DICT))
        return herd_jerr(HERD_E_UNSUPPORTED, line,
                         "%s() with positional arguments other than a dict",
                         ns ? "namespace" : "dict");
    *out = ns ? herd_jv_ns_new() : herd_jv_dict_new();
    if (n == 1)
        for (size_t i = 0; i < a[0].u.d->n; i++) {
            a[0].u.d->k[i]->refs++; /* a fresh mapping: the keys are still unique */
            herd_jv_dict_append_take(*out, a[0].u.d->k[i], herd_jv_retain(a[0].u.d->v[i]));
        }
    for (size_t i = 0; i < nkw; i++)
        herd_jv_dict_set_take(*out, kwn[i], strlen(kwn[i]), herd_jv_retain(kw[i]));
    if (ns) herd_jv_list_push_take(r->namespaces, herd_jv_retain(*out)); /* emptied at the end */
    return HERD_OK;
}

/* strftime_now(fmt) on the fixed clock 2025-01-15 10:30:00 (a Wednesday). */
static herd_status fn_strftime(jv *a, size_t n, int line, jv *out)
{
    if (n != 1 || a[0].kind != JV_STR)
        return herd_jerr(HERD_E_INVALID, line, "strftime_now expects one format string");
    struct tm tm = {.tm_year = 125,
                    .tm_mon = 0,
                    .tm_mday = 15,
                    .tm_hour = 10,
                    .tm_min = 30,
                    .tm_wday = 3,
                    .tm_yday = 14};
    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c) return herd_seterr(HERD_E_NOMEM, "out of memory");
    char buf[512];
    size_t len = jv_slen(a[0]) ? strftime_l(buf, sizeof buf, jv_sp(a[0]), &tm, c) : 0;
    freelocale(c);
    if (len == 0 && jv_slen(a[0]))
        return herd_jerr(HERD_E_INVALID, line, "strftime_now: format too long or empty result");
    *out = herd_jv_str(buf, len);
    return HERD_OK;
}

herd_status herd_jinja_call_func(jrender *r, int fn, jv *a, size_t n, char **kwn, jv *kw,
                                 size_t nkw, int line, jv *out)
{
    if (nkw && fn != F_NAMESPACE && fn != F_DICT)
        return herd_jerr(HERD_E_INVALID, line, "%s() got an unexpected keyword argument '%s'",
                         herd_jinja_func_name(fn), kwn[0]);
    switch (fn) {
    case F_RANGE:
        return fn_range(a, n, line, out);
    case F_NAMESPACE:
    case F_DICT:
        return fn_mapping(r, fn == F_NAMESPACE, a, n, kwn, kw, nkw, line, out);
    case F_STRFTIME:
        return fn_strftime(a, n, line, out);
    case F_RAISE: {
        jbuf b = {0};
        if (n > 0) herd_jv_to_str(&b, a[0]);
        r->raised = true;
        herd_status st = herd_seterr(HERD_E_INVALID, "%s", b.p ? b.p : "");
        herd_jbuf_free(&b);
        return st;
    }
    default:
        return herd_jerr(HERD_E_INVALID, line, "unknown function");
    }
}
