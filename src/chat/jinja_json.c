/*
 * jinja_json.c — JSON into template values (from Jansson) and template values
 * out as JSON text, the way Python's json.dumps writes them (transformers'
 * tojson filter is json.dumps, not jinja2's HTML-escaping tojson).
 *
 * json.dumps details that matter for byte-exact prompts: separators ", " and
 * ": " (with an indent: "," at line ends), floats as repr(), non-ASCII kept
 * (ensure_ascii=False), control characters as \u00xx in lower-case hex, key
 * order as given, and "[]" / "{}" for empty containers even when indenting.
 */
#include "chat/jinja.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static jv from_json(const json_t *j, int depth)
{
    if (!herd_jv_depth_ok(depth)) return jv_none(); /* herd_jv_nomem is set: the render stops */
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv d = herd_jv_dict_new();
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            jv key = herd_jv_cstr(k); /* Jansson's keys are unique: no search needed */
            if (key.kind != JV_STR) break;
            herd_jv_dict_append_take(d, key.u.s, from_json(v, depth + 1));
        }
        return d;
    }
    case JSON_ARRAY: {
        jv l = herd_jv_list_new(json_array_size(j), false);
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) herd_jv_list_push_take(l, from_json(v, depth + 1));
        return l;
    }
    case JSON_STRING:
        return herd_jv_str(json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return jv_int((int64_t)json_integer_value(j));
    case JSON_REAL:
        return jv_float(json_real_value(j));
    case JSON_TRUE:
        return jv_bool(true);
    case JSON_FALSE:
        return jv_bool(false);
    case JSON_NULL:
        return jv_none();
    }
    return jv_none();
}

jv herd_jv_from_json(const json_t *j)
{
    return from_json(j, 1);
}

static void json_str(jbuf *b, const char *s, size_t n, bool ensure_ascii)
{
    herd_jbuf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        size_t st = i;
        uint32_t c = herd_u8_next(s, n, &i);
        switch (c) {
        case '"':
            herd_jbuf_puts(b, "\\\"");
            break;
        case '\\':
            herd_jbuf_puts(b, "\\\\");
            break;
        case '\n':
            herd_jbuf_puts(b, "\\n");
            break;
        case '\r':
            herd_jbuf_puts(b, "\\r");
            break;
        case '\t':
            herd_jbuf_puts(b, "\\t");
            break;
        case '\b':
            herd_jbuf_puts(b, "\\b");
            break;
        case '\f':
            herd_jbuf_puts(b, "\\f");
            break;
        default:
            if (c < 0x20)
                herd_jbuf_printf(b, "\\u%04x", c);
            else if (ensure_ascii && c >= 0x80) {
                if (c >= 0x10000) { /* a surrogate pair */
                    uint32_t v = c - 0x10000;
                    herd_jbuf_printf(b, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
                } else
                    herd_jbuf_printf(b, "\\u%04x", c);
            } else
                herd_jbuf_put(b, s + st, i - st);
        }
    }
    herd_jbuf_putc(b, '"');
}

typedef struct jopts {
    bool ascii, sort;
    int indent;
    const char *item_sep, *key_sep;
    const char **bad;
} jopts;

static void newline(jbuf *b, const jopts *o, int level)
{
    herd_jbuf_putc(b, '\n');
    for (int i = 0; i < level * o->indent; i++) herd_jbuf_putc(b, ' ');
}

static bool dump(jbuf *b, jv v, const jopts *o, int level);

static int key_cmp(const void *x, const void *y)
{
    const jv_string *a = *(jv_string *const *)x, *c = *(jv_string *const *)y;
    size_t n = a->len < c->len ? a->len : c->len;
    int r = memcmp(a->p, c->p, n);
    return r ? r : (a->len > c->len) - (a->len < c->len);
}

static bool dump_dict(jbuf *b, const jv_dict *d, const jopts *o, int level)
{
    if (d->n == 0) {
        herd_jbuf_puts(b, "{}");
        return true;
    }
    jv_string **keys = malloc(d->n * sizeof *keys);
    if (!keys) {
        herd_jv_nomem = true;
        return true;
    }
    memcpy(keys, d->k, d->n * sizeof *keys);
    if (o->sort) qsort(keys, d->n, sizeof *keys, key_cmp);
    herd_jbuf_putc(b, '{');
    bool ok = true;
    for (size_t i = 0; i < d->n && ok; i++) {
        if (i) herd_jbuf_puts(b, o->item_sep);
        if (o->indent >= 0) newline(b, o, level + 1);
        json_str(b, keys[i]->p, keys[i]->len, o->ascii);
        herd_jbuf_puts(b, o->key_sep);
        const jv *val =
            herd_jv_dict_get((jv){.kind = JV_DICT, .u.d = (jv_dict *)d}, keys[i]->p, keys[i]->len);
        ok = dump(b, *val, o, level + 1);
    }
    free(keys);
    if (o->indent >= 0) newline(b, o, level);
    herd_jbuf_putc(b, '}');
    return ok;
}

static bool dump(jbuf *b, jv v, const jopts *o, int level)
{
    if (!herd_jv_depth_ok(level + 1))
        return false; /* values are bounded when made; kept as a guard */
    switch (v.kind) {
    case JV_NONE:
        herd_jbuf_puts(b, "null");
        return true;
    case JV_BOOL:
        herd_jbuf_puts(b, v.u.b ? "true" : "false");
        return true;
    case JV_INT:
        herd_jbuf_printf(b, "%lld", (long long)v.u.i);
        return true;
    case JV_FLOAT:
        if (isnan(v.u.f))
            herd_jbuf_puts(b, "NaN");
        else if (isinf(v.u.f))
            herd_jbuf_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else
            herd_jv_float_repr(b, v.u.f);
        return true;
    case JV_STR:
        json_str(b, jv_sp(v), jv_slen(v), o->ascii);
        return true;
    case JV_LIST:
        if (v.u.l->view != JV_VIEW_NONE) {
            *o->bad = herd_jv_type_name(v);
            return false;
        }
        if (v.u.l->n == 0) {
            herd_jbuf_puts(b, "[]");
            return true;
        }
        herd_jbuf_putc(b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) herd_jbuf_puts(b, o->item_sep);
            if (o->indent >= 0) newline(b, o, level + 1);
            if (!dump(b, v.u.l->v[i], o, level + 1)) return false;
        }
        if (o->indent >= 0) newline(b, o, level);
        herd_jbuf_putc(b, ']');
        return true;
    case JV_DICT:
        return dump_dict(b, v.u.d, o, level);
    default:
        *o->bad = herd_jv_type_name(v);
        return false;
    }
}

bool herd_jv_to_json(jbuf *b, jv v, bool ensure_ascii, int indent, const char *item_sep,
                     const char *key_sep, bool sort_keys, const char **bad)
{
    jopts o = {.ascii = ensure_ascii, .sort = sort_keys, .indent = indent, .bad = bad};
    o.item_sep = item_sep ? item_sep : indent >= 0 ? "," : ", ";
    o.key_sep = key_sep ? key_sep : ": ";
    return dump(b, v, &o, 0);
}
