/*
 * jinja_seqfilters.c — the filters over sequences: first, last, items, join,
 * list, reverse, sort, sum, unique, min, max, and the higher-order map,
 * select, reject, selectattr, rejectattr, which take a filter or test name.
 *
 * In jinja2 several of these return generators; here they return lists,
 * which iterate, test and pass on the same way.
 */
#define _GNU_SOURCE
#include "chat/jinja_filters.h"

#include <stdlib.h>
#include <string.h>

static herd_status f_first_last(fcall *c, jv v, bool last, jv *out)
{
    if (last && jv_is_iterator(v)) /* reversed() needs a sequence */
        return herd_jerr(HERD_E_INVALID, c->line, "'%s' object is not reversible",
                         herd_jv_type_name(v));
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    if (st) return st;
    size_t n = items.u.l->n;
    *out = n ? herd_jv_retain(items.u.l->v[last ? n - 1 : 0]) : jv_undef(NULL);
    herd_jv_release(items);
    return HERD_OK;
}

herd_status herd_f_first(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return f_first_last(c, v, false, out);
}

herd_status herd_f_last(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return f_first_last(c, v, true, out);
}

herd_status herd_f_items(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    if (v.kind == JV_UNDEF) {
        *out = herd_jv_list_new(0, false);
        return HERD_OK;
    }
    if (v.kind != JV_DICT)
        return herd_jerr(HERD_E_INVALID, c->line, "Can only get item pairs from a mapping.");
    herd_status st = herd_jinja_call_method(c->r, v, "items", NULL, 0, NULL, NULL, 0, c->line, out);
    herd_jv_list_as(*out, JV_VIEW_GENERATOR); /* jinja2 yields the pairs */
    return st;
}

herd_status herd_f_join(fcall *c, jv v, jv *p, jv *out)
{
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    if (st) return st;
    jbuf b = {0};
    for (size_t i = 0; i < items.u.l->n && !st && jv_charge(1); i++) {
        if (i && given(p[0]) && !herd_jv_to_str(&b, p[0]))
            st = herd_jerr(HERD_E_INVALID, c->line, "bad separator");
        jv it = herd_jv_retain(items.u.l->v[i]);
        if (given(p[1]) && p[1].kind != JV_NONE) {
            jv a;
            st = herd_jf_attr_get(c, it, p[1], jv_none(), &a);
            herd_jv_release(it);
            it = a;
        }
        if (!st && !herd_jv_to_str(&b, it))
            st = herd_jerr(HERD_E_UNSUPPORTED, c->line, "joining a %s", herd_jv_type_name(it));
        herd_jv_release(it);
    }
    herd_jv_release(items);
    if (st)
        herd_jbuf_free(&b);
    else
        *out = b.p ? herd_jbuf_to_str(&b) : herd_jv_str("", 0);
    return st;
}

herd_status herd_f_list(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    if (st) return st;
    *out = herd_jv_list_new(items.u.l->n, false);
    for (size_t i = 0; i < items.u.l->n; i++)
        herd_jv_list_push_take(*out, herd_jv_retain(items.u.l->v[i]));
    herd_jv_release(items);
    return HERD_OK;
}

herd_status herd_f_reverse(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    if (v.kind == JV_STR) {
        *out = herd_pystr_slice(v, false, 0, false, 0, -1);
        return HERD_OK;
    }
    /* jinja2 returns reversed(value): an iterator, or a list for an iterator */
    bool iterator = jv_is_iterator(v);
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    if (st) return st;
    *out = herd_jv_list_new(items.u.l->n, false);
    if (!iterator) herd_jv_list_as(*out, JV_VIEW_REVERSED);
    for (size_t i = items.u.l->n; i-- > 0;)
        herd_jv_list_push_take(*out, herd_jv_retain(items.u.l->v[i]));
    herd_jv_release(items);
    return HERD_OK;
}

herd_status herd_f_sort(fcall *c, jv v, jv *p, jv *out)
{
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    if (st) return st;
    size_t n = items.u.l->n;
    jv *keys = calloc(n + 1, sizeof *keys);
    size_t *idx = calloc(n + 1, sizeof *idx);
    bool rev = given(p[0]) && herd_jv_truthy(p[0]), cs = given(p[1]) && herd_jv_truthy(p[1]);
    for (size_t i = 0; keys && idx && i < n && !st; i++) {
        idx[i] = i;
        st = herd_jf_sort_key(c, items.u.l->v[i], p[2], cs, &keys[i]);
    }
    /* insertion sort: stable, and lists in templates are short */
    for (size_t i = 1; keys && idx && !st && i < n; i++) {
        size_t j = i, cur = idx[i];
        while (j > 0 && !st) {
            int cmp;
            if (!jv_charge(1)) /* insertion sort is quadratic: pay per comparison */
                st = herd_jv_stop_error(c->line);
            else if (!herd_jv_compare(keys[idx[j - 1]], keys[cur], &cmp))
                st = herd_jerr(HERD_E_INVALID, c->line,
                               "'<' not supported between instances of '%s' and '%s'",
                               herd_jv_type_name(keys[idx[j - 1]]), herd_jv_type_name(keys[cur]));
            else if (rev ? cmp < 0 : cmp > 0) {
                idx[j] = idx[j - 1];
                j--;
            } else
                break;
        }
        if (idx) idx[j] = cur;
    }
    if (!keys || !idx) st = herd_seterr(HERD_E_NOMEM, "out of memory");
    if (!st) {
        *out = herd_jv_list_new(n, false);
        for (size_t i = 0; i < n; i++)
            herd_jv_list_push_take(*out, herd_jv_retain(items.u.l->v[idx[i]]));
    }
    for (size_t i = 0; keys && i < n; i++) herd_jv_release(keys[i]);
    free(keys);
    free(idx);
    herd_jv_release(items);
    return st;
}

herd_status herd_f_sum(fcall *c, jv v, jv *p, jv *out)
{
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    if (st) return st;
    jv acc = given(p[1]) ? herd_jv_retain(p[1]) : jv_int(0);
    for (size_t i = 0; i < items.u.l->n && !st && jv_charge(1); i++) {
        jv it, next;
        if ((st = herd_jf_sort_key(c, items.u.l->v[i], p[0], true, &it))) break;
        if (!herd_jv_is_number(acc) || !herd_jv_is_number(it))
            st = herd_jerr(HERD_E_INVALID, c->line,
                           "unsupported operand type(s) for +: '%s' and '%s'",
                           herd_jv_type_name(acc), herd_jv_type_name(it));
        else if (acc.kind == JV_FLOAT || it.kind == JV_FLOAT)
            next = jv_float(herd_jv_num(acc) + herd_jv_num(it));
        else /* exact, and an overflow is an error, as for + */
            st = herd_jinja_int_op('+', jv_ival(acc), jv_ival(it), c->line, &next);
        herd_jv_release(it);
        if (!st) {
            herd_jv_release(acc);
            acc = next;
        }
    }
    herd_jv_release(items);
    if (st)
        herd_jv_release(acc);
    else
        *out = acc;
    return st;
}

herd_status herd_f_unique(fcall *c, jv v, jv *p, jv *out)
{
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    if (st) return st;
    bool cs = given(p[0]) && herd_jv_truthy(p[0]);
    jv seen = herd_jv_list_new(0, false);
    *out = herd_jv_list_as(herd_jv_list_new(0, false), JV_VIEW_GENERATOR);
    for (size_t i = 0; i < items.u.l->n && !st; i++) {
        jv k;
        if ((st = herd_jf_sort_key(c, items.u.l->v[i], p[1], cs, &k))) break;
        if (k.kind == JV_LIST || k.kind == JV_DICT)
            st = herd_jerr(HERD_E_INVALID, c->line, "unhashable type: '%s'", herd_jv_type_name(k));
        bool dup = false;
        for (size_t j = 0; j < seen.u.l->n && !dup && jv_charge(1); j++)
            dup = herd_jv_equal(seen.u.l->v[j], k);
        if (herd_jv_nomem && !st) st = herd_jv_stop_error(c->line);
        if (!dup && !st) {
            herd_jv_list_push_take(seen, k);
            herd_jv_list_push_take(*out, herd_jv_retain(items.u.l->v[i]));
        } else
            herd_jv_release(k);
    }
    herd_jv_release(seen);
    herd_jv_release(items);
    return st;
}

/* map(attribute=..., default=...) or map('filter', args...). */
herd_status herd_f_map(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    *out = herd_jv_list_as(herd_jv_list_new(0, false), JV_VIEW_GENERATOR);
    if (!herd_jv_truthy(v)) return HERD_OK;
    jv attr = jv_undef(herd_jf_missing), def = jv_none();
    for (size_t i = 0; i < c->nkw; i++) {
        if (!strcmp(c->kwn[i], "attribute"))
            attr = c->kw[i];
        else if (!strcmp(c->kwn[i], "default"))
            def = c->kw[i];
        else if (!c->nargs)
            return herd_jerr(HERD_E_INVALID, c->line, "unexpected keyword argument '%s'",
                             c->kwn[i]);
    }
    int fid = -1;
    if (!given(attr)) {
        if (c->nargs == 0 || c->args[0].kind != JV_STR)
            return herd_jerr(HERD_E_INVALID, c->line, "map requires a filter argument");
        fid = herd_jinja_filter_id(jv_sp(c->args[0]));
        if (fid < 0)
            return herd_jerr(HERD_E_INVALID, c->line, "No filter named '%s'.", jv_sp(c->args[0]));
    }
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    for (size_t i = 0; !st && i < items.u.l->n; i++) {
        jv r;
        if (given(attr))
            st = herd_jf_attr_get(c, items.u.l->v[i], attr, def, &r);
        else
            st = herd_jinja_filter(c->r, c->s, fid, items.u.l->v[i], c->args + 1, c->nargs - 1,
                                   c->kwn, c->kw, c->nkw, c->line, &r);
        if (!st) herd_jv_list_push_take(*out, r);
    }
    herd_jv_release(items);
    return st;
}

/* select / reject / selectattr / rejectattr. */
static herd_status select_common(fcall *c, jv v, bool by_attr, bool keep, jv *out)
{
    *out = herd_jv_list_as(herd_jv_list_new(0, false), JV_VIEW_GENERATOR);
    if (!herd_jv_truthy(v)) return HERD_OK;
    size_t off = by_attr ? 1 : 0;
    if (by_attr && c->nargs < 1)
        return herd_jerr(HERD_E_INVALID, c->line, "Missing parameter for attribute name");
    int tid = -1;
    if (c->nargs > off) {
        if (c->args[off].kind != JV_STR)
            return herd_jerr(HERD_E_INVALID, c->line, "test name must be a string");
        tid = herd_jinja_test_id(jv_sp(c->args[off]));
        if (tid < 0)
            return herd_jerr(HERD_E_INVALID, c->line, "No test named '%s'.", jv_sp(c->args[off]));
    }
    if (c->nkw)
        return herd_jerr(HERD_E_UNSUPPORTED, c->line, "keyword arguments to select filters");
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    for (size_t i = 0; !st && i < items.u.l->n && jv_charge(1); i++) {
        jv x;
        bool t = false;
        if (by_attr)
            st = herd_jf_attr_get(c, items.u.l->v[i], c->args[0], jv_none(), &x);
        else
            x = herd_jv_retain(items.u.l->v[i]);
        if (st) break;
        if (tid >= 0) {
            size_t rest = c->nargs > off + 1 ? c->nargs - off - 1 : 0;
            st = herd_jinja_test(c->r, c->s, tid, x, c->args + off + 1, rest, c->line, &t);
        } else
            t = herd_jv_truthy(x);
        herd_jv_release(x);
        if (!st && t == keep) herd_jv_list_push_take(*out, herd_jv_retain(items.u.l->v[i]));
    }
    herd_jv_release(items);
    return st;
}

herd_status herd_f_select(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return select_common(c, v, false, true, out);
}

herd_status herd_f_reject(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return select_common(c, v, false, false, out);
}

herd_status herd_f_selectattr(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return select_common(c, v, true, true, out);
}

herd_status herd_f_rejectattr(fcall *c, jv v, jv *p, jv *out)
{
    (void)p;
    return select_common(c, v, true, false, out);
}

/* max / min: the first extreme item, compared by the (case-folded) key. */
static herd_status min_max(fcall *c, jv v, jv *p, bool want_max, jv *out)
{
    jv items;
    herd_status st = herd_jf_iter(c, v, &items);
    if (st) return st;
    bool cs = given(p[0]) && herd_jv_truthy(p[0]);
    jv best_key = jv_undef(NULL);
    size_t best = 0;
    for (size_t i = 0; i < items.u.l->n && !st && jv_charge(1); i++) {
        jv k;
        int cmp = 0;
        if ((st = herd_jf_sort_key(c, items.u.l->v[i], p[1], cs, &k))) break;
        if (i > 0 && !herd_jv_compare(k, best_key, &cmp))
            st = herd_jerr(HERD_E_INVALID, c->line,
                           "'<' not supported between instances of '%s' and '%s'",
                           herd_jv_type_name(k), herd_jv_type_name(best_key));
        if (!st && (i == 0 || (cmp != 2 && (want_max ? cmp > 0 : cmp < 0)))) {
            herd_jv_release(best_key);
            best_key = k;
            best = i;
        } else
            herd_jv_release(k);
    }
    if (!st) *out = items.u.l->n ? herd_jv_retain(items.u.l->v[best]) : jv_undef(NULL);
    herd_jv_release(best_key);
    herd_jv_release(items);
    return st;
}

herd_status herd_f_max(fcall *c, jv v, jv *p, jv *out)
{
    return min_max(c, v, p, true, out);
}

herd_status herd_f_min(fcall *c, jv v, jv *p, jv *out)
{
    return min_max(c, v, p, false, out);
}
