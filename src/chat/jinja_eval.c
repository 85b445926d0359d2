/*
 * herd_jinja_eval.c — running the AST: expressions, statements, scopes, macros.
 *
 * Scoping is jinja2's: {% for %} bodies, macro calls and {% with %} get a
 * fresh scope (per iteration for loops), so a {% set %} inside a loop does not
 * leak out of it, while {% if %} does not open one. A name is looked up from
 * the innermost scope outwards, and each loop iteration starts again from the
 * outer values — which is what jinja2's generated code amounts to. Mutation
 * that must cross scopes goes through namespace() objects, as in jinja2.
 *
 * A macro remembers the scope it was defined in and runs in a child of it.
 * Such scopes are kept until the end of the render (jrender.captured), so a
 * macro never outlives what it can see and no reference cycle forms.
 */
#define _GNU_SOURCE
#include "chat/jinja.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CALL_DEPTH 200
#define MAX_EVAL_DEPTH 3000

/* Once the budget ran out (or memory), whatever failed because of it
 * reports that instead ("printing a list" failed: the depth limit). */
herd_status herd_jerr(herd_status st, int line, const char *fmt, ...)
{
    if (herd_jv_nomem) return herd_jv_stop_error(line);
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return herd_seterr(st, "template error, line %d: %s", line, msg);
}

herd_status herd_jerr_undef(jv v, int line)
{
    if (v.u.hint) return herd_jerr(HERD_E_INVALID, line, "'%s' is undefined", v.u.hint);
    return herd_jerr(HERD_E_INVALID, line, "an undefined value was used");
}

static herd_status check_mem(int line)
{
    return herd_jv_nomem ? herd_jv_stop_error(line) : HERD_OK;
}

/* ---------------------------------------------------------------- scopes */

jscope *herd_jscope_new(jscope *parent)
{
    jscope *s = calloc(1, sizeof *s);
    if (!s) {
        herd_jv_nomem = true;
        return NULL;
    }
    s->parent = parent;
    s->vars = herd_jv_dict_new();
    if (s->vars.kind != JV_DICT) {
        free(s);
        return NULL;
    }
    s->vars.u.d->scope = true;
    return s;
}

static void scope_end(jrender *r, jscope *s)
{
    if (!s) return;
    if (s->captured) { /* a macro may still run in it */
        s->next_captured = r->captured;
        r->captured = s;
        return;
    }
    herd_jv_release(s->vars);
    free(s);
}

jv herd_jinja_lookup(jscope *s, const char *name)
{
    for (; s; s = s->parent) {
        const jv *v = herd_jv_dict_get(s->vars, name, strlen(name));
        if (v) return herd_jv_retain(*v);
    }
    return jv_undef(name);
}

void herd_jscope_set_take(jscope *s, const char *name, jv val)
{
    herd_jv_dict_set_take(s->vars, name, strlen(name), val);
}

/* Bind for-loop / set targets: one name takes the value, several unpack it. */
static herd_status assign(jscope *s, char **names, size_t n, jv val, int line)
{
    if (n == 1) {
        herd_jscope_set_take(s, names[0], herd_jv_retain(val));
        return HERD_OK;
    }
    jv items;
    herd_status st = herd_jinja_iterate(val, line, &items);
    if (st) return st;
    if (items.u.l->n != n) {
        bool many = items.u.l->n > n;
        herd_jv_release(items);
        return herd_jerr(HERD_E_INVALID, line, "%s values to unpack (expected %zu)",
                         many ? "too many" : "not enough", n);
    }
    for (size_t i = 0; i < n; i++)
        herd_jscope_set_take(s, names[i], herd_jv_retain(items.u.l->v[i]));
    herd_jv_release(items);
    return HERD_OK;
}

/* ------------------------------------------------------------ expressions */

/* Evaluate n->args into vals (caller releases). */
static herd_status eval_args(jrender *r, jscope *s, const jnode *n, jv *vals)
{
    for (size_t i = 0; i < n->nargs; i++) vals[i] = jv_undef(NULL);
    for (size_t i = 0; i < n->nargs; i++) {
        herd_status st = herd_jinja_eval(r, s, n->args[i], &vals[i]);
        if (st) return st;
    }
    return HERD_OK;
}

static void release_all(jv *vals, size_t n)
{
    for (size_t i = 0; i < n; i++) herd_jv_release(vals[i]);
    free(vals);
}

static herd_status eval_call_like(jrender *r, jscope *s, const jnode *n, jv base, jv *out)
{
    jv *vals = calloc(n->nargs + 1, sizeof *vals);
    if (!vals) return herd_seterr(HERD_E_NOMEM, "out of memory");
    herd_status st = eval_args(r, s, n, vals);
    size_t npos = n->nargs - n->nnames;
    if (!st) {
        if (n->kind == N_CALL)
            st = herd_jinja_call(r, s, base, vals, npos, n->names, vals + npos, n->nnames, n->line,
                                 out);
        else if (n->kind == N_FILTER)
            st = herd_jinja_filter(r, s, n->filter_id, base, vals, npos, n->names, vals + npos,
                                   n->nnames, n->line, out);
        else {
            bool t = false;
            if (n->nnames)
                st = herd_jerr(HERD_E_UNSUPPORTED, n->line, "keyword arguments to a test");
            else
                st = herd_jinja_test(r, s, n->filter_id, base, vals, npos, n->line, &t);
            *out = jv_bool(t != n->flag);
        }
    }
    release_all(vals, n->nargs);
    return st;
}

static herd_status eval_slice(jrender *r, jscope *s, const jnode *n, jv obj, jv *out)
{
    jv parts[3] = {jv_none(), jv_none(), jv_none()};
    const jnode *pn[3] = {n->b, n->c, n->d};
    herd_status st = HERD_OK;
    for (int i = 0; i < 3 && !st; i++)
        if (pn[i]) st = herd_jinja_eval(r, s, pn[i], &parts[i]);
    for (int i = 0; i < 3 && !st; i++)
        if (parts[i].kind != JV_NONE && !jv_is_intlike(parts[i]))
            st = herd_jerr(HERD_E_INVALID, n->line, "slice indices must be integers or None");
    int64_t step = parts[2].kind == JV_NONE ? 1 : jv_ival(parts[2]);
    if (!st && step == 0) st = herd_jerr(HERD_E_INVALID, n->line, "slice step cannot be zero");
    if (!st && obj.kind == JV_UNDEF) st = herd_jerr_undef(obj, n->line);
    if (!st) {
        bool hs = parts[0].kind != JV_NONE, he = parts[1].kind != JV_NONE;
        int64_t a = hs ? jv_ival(parts[0]) : 0, z = he ? jv_ival(parts[1]) : 0;
        if (obj.kind == JV_STR)
            *out = herd_pystr_slice(obj, hs, a, he, z, step);
        else if (obj.kind == JV_LIST &&
                 (obj.u.l->view == JV_VIEW_NONE || obj.u.l->view == JV_VIEW_RANGE)) {
            int64_t len = (int64_t)obj.u.l->n;
            if (!hs)
                a = step < 0 ? len - 1 : 0;
            else if (a < 0)
                a = a + len < 0 ? (step < 0 ? -1 : 0) : a + len;
            else if (a >= len)
                a = step < 0 ? len - 1 : len;
            if (!he)
                z = step < 0 ? -1 : len;
            else if (z < 0)
                z = z + len < 0 ? (step < 0 ? -1 : 0) : z + len;
            else if (z >= len)
                z = step < 0 ? len - 1 : len;
            *out = herd_jv_list_as(herd_jv_list_new(0, obj.u.l->tuple), obj.u.l->view);
            for (int64_t i = a; step > 0 ? i < z : i > z;) {
                herd_jv_list_push_take(*out, herd_jv_retain(obj.u.l->v[i]));
                if (!jinja_slice_next(&i, z, step)) break;
            }
        } else /* slices bypass jinja2's getitem: a TypeError is an error */
            st = herd_jerr(HERD_E_INVALID, n->line,
                           obj.kind == JV_DICT ? "unhashable type: 'slice'"
                                               : "'%s' object is not subscriptable",
                           herd_jv_type_name(obj));
    }
    for (int i = 0; i < 3; i++) herd_jv_release(parts[i]);
    return st;
}

static herd_status eval_compare(jrender *r, jscope *s, const jnode *n, jv *out)
{
    jv left;
    herd_status st = herd_jinja_eval(r, s, n->args[0], &left);
    bool res = true;
    for (size_t i = 1; !st && i < n->nargs && res; i++) {
        jv right;
        if ((st = herd_jinja_eval(r, s, n->args[i], &right))) break;
        st = herd_jinja_compare(n->names[i - 1], left, right, n->line, &res);
        herd_jv_release(left);
        left = right;
    }
    herd_jv_release(left);
    *out = jv_bool(res);
    return st;
}

static herd_status eval_seq(jrender *r, jscope *s, const jnode *n, jv *out)
{
    herd_status st = HERD_OK;
    if (n->kind == N_DICT) {
        *out = herd_jv_dict_new();
        for (size_t i = 0; !st && i + 1 < n->nargs; i += 2) {
            jv k, v;
            if ((st = herd_jinja_eval(r, s, n->args[i], &k))) break;
            if (k.kind != JV_STR) {
                herd_jv_release(k);
                return herd_jerr(HERD_E_UNSUPPORTED, n->line, "dict keys other than strings");
            }
            if (!(st = herd_jinja_eval(r, s, n->args[i + 1], &v)))
                herd_jv_dict_set_take(*out, jv_sp(k), jv_slen(k), v);
            herd_jv_release(k);
        }
        return st;
    }
    *out = herd_jv_list_new(n->nargs, n->kind == N_TUPLE);
    for (size_t i = 0; !st && i < n->nargs; i++) {
        jv v;
        if (!(st = herd_jinja_eval(r, s, n->args[i], &v))) herd_jv_list_push_take(*out, v);
    }
    return st;
}

static herd_status eval_inner(jrender *r, jscope *s, const jnode *n, jv *out)
{
    jv a = jv_undef(NULL), b = jv_undef(NULL);
    herd_status st = HERD_OK;
    switch (n->kind) {
    case N_CONST:
        *out = herd_jv_retain(n->val);
        return HERD_OK;
    case N_NAME:
        *out = herd_jinja_lookup(s, n->str);
        return HERD_OK;
    case N_GETATTR:
        if (!(st = herd_jinja_eval(r, s, n->a, &a)))
            st = herd_jinja_getattr(a, n->str, n->line, out);
        break;
    case N_GETITEM:
        if (!(st = herd_jinja_eval(r, s, n->a, &a)) && !(st = herd_jinja_eval(r, s, n->b, &b)))
            st = herd_jinja_getitem(a, b, n->line, out);
        break;
    case N_SLICE:
        if (!(st = herd_jinja_eval(r, s, n->a, &a))) st = eval_slice(r, s, n, a, out);
        break;
    case N_CALL:
    case N_TEST:
        if (!(st = herd_jinja_eval(r, s, n->a, &a))) st = eval_call_like(r, s, n, a, out);
        break;
    case N_FILTER:
        if (n->a)
            st = herd_jinja_eval(r, s, n->a, &a);
        else
            a = herd_jv_retain(r->filter_input);
        if (!st) st = eval_call_like(r, s, n, a, out);
        break;
    case N_UNARY:
        if ((st = herd_jinja_eval(r, s, n->a, &a))) break;
        if (a.kind == JV_UNDEF)
            st = herd_jerr_undef(a, n->line);
        else if (!herd_jv_is_number(a))
            st = herd_jerr(HERD_E_INVALID, n->line, "bad operand type for unary %s: '%s'", n->op,
                           herd_jv_type_name(a));
        else if (n->op[0] == '+')
            *out = a.kind == JV_BOOL ? jv_int(a.u.b) : herd_jv_retain(a);
        else if (a.kind == JV_FLOAT)
            *out = jv_float(-a.u.f);
        else
            st = herd_jinja_int_op('-', 0, jv_ival(a), n->line, out);
        break;
    case N_BINARY:
        if (!(st = herd_jinja_eval(r, s, n->a, &a)) && !(st = herd_jinja_eval(r, s, n->b, &b)))
            st = herd_jinja_binop(n->op, a, b, n->line, out);
        break;
    case N_CONCAT: {
        jbuf buf = {0};
        for (size_t i = 0; !st && i < n->nargs; i++) {
            jv v;
            if ((st = herd_jinja_eval(r, s, n->args[i], &v))) break;
            if (!herd_jv_to_str(&buf, v))
                st = herd_jerr(HERD_E_UNSUPPORTED, n->line, "converting a %s to a string",
                               herd_jv_type_name(v));
            herd_jv_release(v);
        }
        if (st)
            herd_jbuf_free(&buf);
        else
            *out = buf.p ? herd_jbuf_to_str(&buf) : herd_jv_str("", 0);
        break;
    }
    case N_COMPARE:
        return eval_compare(r, s, n, out);
    case N_AND:
    case N_OR:
        if ((st = herd_jinja_eval(r, s, n->a, &a))) break;
        if (herd_jv_truthy(a) == (n->kind == N_OR)) {
            *out = a;
            return HERD_OK;
        }
        st = herd_jinja_eval(r, s, n->b, out);
        break;
    case N_NOT:
        if (!(st = herd_jinja_eval(r, s, n->a, &a))) *out = jv_bool(!herd_jv_truthy(a));
        break;
    case N_COND:
        if ((st = herd_jinja_eval(r, s, n->a, &a))) break;
        if (herd_jv_truthy(a))
            st = herd_jinja_eval(r, s, n->b, out);
        else if (n->c)
            st = herd_jinja_eval(r, s, n->c, out);
        else
            *out = jv_undef(NULL);
        break;
    case N_LIST:
    case N_TUPLE:
    case N_DICT:
        return eval_seq(r, s, n, out);
    default:
        st = herd_jerr(HERD_E_INVALID, n->line, "internal error: not an expression");
    }
    herd_jv_release(a);
    herd_jv_release(b);
    return st;
}

herd_status herd_jinja_eval(jrender *r, jscope *s, const jnode *n, jv *out)
{
    *out = jv_undef(NULL);
    herd_status st;
    if (++r->eval_depth > MAX_EVAL_DEPTH)
        st = herd_jerr(HERD_E_INVALID, n->line, "template nested too deeply to evaluate");
    else if (herd_jv_nomem)
        st = herd_jv_stop_error(n->line);
    else
        st = eval_inner(r, s, n, out);
    r->eval_depth--;
    if (!st && herd_jv_nomem) st = herd_jv_stop_error(n->line);
    if (st) {
        r->st = st;
        herd_jv_release(*out);
        *out = jv_undef(NULL);
    }
    return st;
}

/* ------------------------------------------------------------- statements */

/* Statements report errors as JF_ERROR; the status itself waits in r->st. */
static jflow fail(jrender *r, herd_status st)
{
    if (st) r->st = st;
    return st ? JF_ERROR : JF_OK;
}

/* Run body with its output captured into *text. */
static jflow capture(jrender *r, jscope *s, const jnode *body, jv *text)
{
    jbuf saved = r->out;
    *text = jv_undef(NULL);
    r->out = (jbuf){0};
    jflow f = herd_jinja_exec(r, s, body);
    *text = r->out.p ? herd_jbuf_to_str(&r->out) : herd_jv_str("", 0);
    herd_jbuf_free(&r->out);
    r->out = saved;
    return f;
}

/* The body of {% set x %}...{% endset %} or {% filter %}: its own scope, as in
 * jinja2, so assignments inside do not leak. */
static jflow capture_scoped(jrender *r, jscope *s, const jnode *body, jv *text)
{
    jscope *bs = herd_jscope_new(s);
    if (!bs) {
        *text = jv_undef(NULL);
        return fail(r, check_mem(body->line));
    }
    jflow f = capture(r, bs, body, text);
    scope_end(r, bs);
    return f;
}

/* Apply a filter chain (innermost input NULL) to text. */
static herd_status apply_chain(jrender *r, jscope *s, const jnode *chain, jv text, jv *out)
{
    jv saved = r->filter_input;
    r->filter_input = text;
    herd_status st = herd_jinja_eval(r, s, chain, out);
    r->filter_input = saved;
    return st;
}

static jflow exec_for(jrender *r, jscope *s, const jnode *n)
{
    jv it, items;
    herd_status st = herd_jinja_eval(r, s, n->a, &it);
    if (st) return JF_ERROR;
    st = herd_jinja_iterate(it, n->line, &items);
    herd_jv_release(it);
    if (st) return fail(r, st);
    if (n->d) { /* for x in xs if cond: filter first, loop.* counts what passes */
        jv kept = herd_jv_list_new(items.u.l->n, false);
        for (size_t i = 0; !st && i < items.u.l->n; i++) {
            if (!jv_charge(1)) { /* every item tested is an iteration */
                st = herd_jv_stop_error(n->line);
                break;
            }
            jscope *fs = herd_jscope_new(s);
            jv c = jv_undef(NULL);
            if (!fs)
                st = check_mem(n->line);
            else if (!(st = assign(fs, n->names, n->nnames, items.u.l->v[i], n->line)) &&
                     !(st = herd_jinja_eval(r, fs, n->d, &c)) && herd_jv_truthy(c))
                herd_jv_list_push_take(kept, herd_jv_retain(items.u.l->v[i]));
            herd_jv_release(c);
            scope_end(r, fs);
        }
        herd_jv_release(items);
        items = kept;
        if (st) {
            herd_jv_release(items);
            return fail(r, st);
        }
    }
    jflow f = JF_OK;
    size_t count = items.kind == JV_LIST ? items.u.l->n : 0;
    for (size_t i = 0; i < count && f != JF_ERROR; i++) {
        if (!jv_charge(1)) {
            f = fail(r, herd_jv_stop_error(n->line));
            break;
        }
        jscope *ls = herd_jscope_new(s);
        if (!ls) {
            f = fail(r, check_mem(n->line));
            break;
        }
        herd_jscope_set_take(ls, "loop", herd_jv_loop_new(items, i));
        if ((st = assign(ls, n->names, n->nnames, items.u.l->v[i], n->line)))
            f = fail(r, st);
        else
            f = herd_jinja_exec(r, ls, n->b);
        scope_end(r, ls);
        if (f == JF_BREAK) {
            f = JF_OK;
            break;
        }
        if (f == JF_CONTINUE) f = JF_OK;
    }
    herd_jv_release(items);
    if (f == JF_OK && count == 0 && n->c) f = herd_jinja_exec(r, s, n->c);
    return f;
}

static jflow exec_set(jrender *r, jscope *s, const jnode *n)
{
    jv v;
    herd_status st;
    if (n->kind == S_SETBLOCK) {
        jv text;
        jflow f = capture_scoped(r, s, n->b, &text);
        if (f == JF_ERROR) {
            herd_jv_release(text);
            return f;
        }
        if (n->d) {
            st = apply_chain(r, s, n->d, text, &v);
            herd_jv_release(text);
            if (st) return JF_ERROR;
        } else
            v = text;
    } else if (herd_jinja_eval(r, s, n->a, &v))
        return JF_ERROR;
    if (n->str) { /* {% set ns.attr = v %} */
        jv ns = herd_jinja_lookup(s, n->names[0]);
        if (ns.kind != JV_NS) {
            st = herd_jerr(HERD_E_INVALID, n->line,
                           "cannot assign attribute on non-namespace object");
            herd_jv_release(ns);
            herd_jv_release(v);
            return fail(r, st);
        }
        herd_jv_dict_set_take(ns, n->str, strlen(n->str), v);
        herd_jv_release(ns);
        return fail(r, check_mem(n->line));
    }
    st = assign(s, n->names, n->nnames, v, n->line);
    herd_jv_release(v);
    return fail(r, st ? st : check_mem(n->line));
}

static jflow exec_output(jrender *r, jscope *s, const jnode *n)
{
    jv v;
    if (herd_jinja_eval(r, s, n->a, &v)) return JF_ERROR;
    herd_status st = HERD_OK;
    if (!herd_jv_to_str(&r->out, v))
        st = herd_jerr(HERD_E_UNSUPPORTED, n->line, "printing a %s value", herd_jv_type_name(v));
    herd_jv_release(v);
    return fail(r, st ? st : check_mem(n->line));
}

static jflow exec_macro_def(jrender *r, jscope *s, const jnode *n)
{
    jv_macro *m = calloc(1, sizeof *m);
    if (!m) return fail(r, herd_seterr(HERD_E_NOMEM, "out of memory"));
    m->refs = 1;
    m->def = n;
    m->scope = s;
    s->captured = true;
    herd_jscope_set_take(s, n->str, (jv){.kind = JV_MACRO, .u.m = m});
    return fail(r, check_mem(n->line));
}

static jflow exec_with(jrender *r, jscope *s, const jnode *n)
{
    jscope *ws = herd_jscope_new(s);
    if (!ws) return fail(r, check_mem(n->line));
    jflow f = JF_OK;
    for (size_t i = 0; i < n->nargs && f == JF_OK; i++) {
        jv v;
        if (herd_jinja_eval(r, s, n->args[i], &v))
            f = JF_ERROR;
        else
            herd_jscope_set_take(ws, n->names[i], v);
    }
    if (f == JF_OK) f = herd_jinja_exec(r, ws, n->b);
    scope_end(r, ws);
    return f;
}

static jflow exec_inner(jrender *r, jscope *s, const jnode *n);

/* Every statement and expression counts toward one depth limit, so that no
 * template (long operator chains, elif ladders, recursive macros) can
 * exhaust the C stack. */
jflow herd_jinja_exec(jrender *r, jscope *s, const jnode *n)
{
    if (!jv_charge(1)) return fail(r, herd_jv_stop_error(n->line));
    if (++r->eval_depth > MAX_EVAL_DEPTH) {
        r->eval_depth--;
        return fail(r,
                    herd_jerr(HERD_E_INVALID, n->line, "template nested too deeply to evaluate"));
    }
    jflow f = exec_inner(r, s, n);
    r->eval_depth--;
    return f;
}

static jflow exec_inner(jrender *r, jscope *s, const jnode *n)
{
    switch (n->kind) {
    case S_BODY:
        for (size_t i = 0; i < n->nargs; i++) {
            jflow f = herd_jinja_exec(r, s, n->args[i]);
            if (f != JF_OK) return f;
        }
        return JF_OK;
    case S_TEXT:
        herd_jbuf_put(&r->out, jv_sp(n->val), jv_slen(n->val));
        return fail(r, check_mem(n->line));
    case S_OUTPUT:
        return exec_output(r, s, n);
    case S_IF: {
        jv c;
        if (herd_jinja_eval(r, s, n->a, &c)) return JF_ERROR;
        bool t = herd_jv_truthy(c);
        herd_jv_release(c);
        if (t) return herd_jinja_exec(r, s, n->b);
        return n->c ? herd_jinja_exec(r, s, n->c) : JF_OK;
    }
    case S_FOR:
        return exec_for(r, s, n);
    case S_SET:
    case S_SETBLOCK:
        return exec_set(r, s, n);
    case S_MACRO:
        return exec_macro_def(r, s, n);
    case S_BREAK:
        return JF_BREAK;
    case S_CONTINUE:
        return JF_CONTINUE;
    case S_WITH:
        return exec_with(r, s, n);
    case S_FILTERBLOCK: {
        jv text, v;
        jflow f = capture_scoped(r, s, n->b, &text);
        if (f == JF_OK && !apply_chain(r, s, n->d, text, &v)) {
            if (!herd_jv_to_str(&r->out, v))
                f = fail(r, herd_jerr(HERD_E_UNSUPPORTED, n->line, "printing a value"));
            herd_jv_release(v);
        } else if (f == JF_OK)
            f = JF_ERROR;
        herd_jv_release(text);
        return f;
    }
    default:
        return fail(r, herd_jerr(HERD_E_INVALID, n->line, "internal error: not a statement"));
    }
}

/* ------------------------------------------------------------------ calls */

static herd_status bind_macro_args(jrender *r, jscope *ms, const jnode *def, jv *args, size_t nargs,
                                   char **kwnames, jv *kwargs, size_t nkw, int line)
{
    size_t np = def->nnames;
    if (nargs > np && !def->flag)
        return herd_jerr(HERD_E_INVALID, line, "macro '%s' takes not more than %zu argument(s)",
                         def->str, np);
    bool *bound = calloc(np + 1, sizeof *bound);
    if (!bound) return herd_seterr(HERD_E_NOMEM, "out of memory");
    jv varargs = herd_jv_list_new(0, true), kw = herd_jv_dict_new();
    herd_status st = HERD_OK;
    for (size_t i = 0; i < nargs; i++) {
        if (i < np) {
            herd_jscope_set_take(ms, def->names[i], herd_jv_retain(args[i]));
            bound[i] = true;
        } else
            herd_jv_list_push_take(varargs, herd_jv_retain(args[i]));
    }
    for (size_t k = 0; k < nkw && !st; k++) {
        size_t i = 0;
        while (i < np && strcmp(def->names[i], kwnames[k])) i++;
        if (i < np && bound[i])
            st = herd_jerr(HERD_E_INVALID, line, "macro '%s' got multiple values for argument '%s'",
                           def->str, kwnames[k]);
        else if (i < np) {
            herd_jscope_set_take(ms, def->names[i], herd_jv_retain(kwargs[k]));
            bound[i] = true;
        } else if (def->flag2)
            herd_jv_dict_set_take(kw, kwnames[k], strlen(kwnames[k]), herd_jv_retain(kwargs[k]));
        else
            st = herd_jerr(HERD_E_INVALID, line, "macro '%s' takes no keyword argument '%s'",
                           def->str, kwnames[k]);
    }
    for (size_t i = 0; i < np && !st; i++) { /* defaults, in the macro's scope */
        if (bound[i]) continue;
        jv v = jv_undef(def->names[i]);
        if (def->args[i] && (st = herd_jinja_eval(r, ms, def->args[i], &v))) break;
        herd_jscope_set_take(ms, def->names[i], v);
    }
    if (def->flag)
        herd_jscope_set_take(ms, "varargs", varargs);
    else
        herd_jv_release(varargs);
    if (def->flag2)
        herd_jscope_set_take(ms, "kwargs", kw);
    else
        herd_jv_release(kw);
    free(bound);
    return st;
}

static herd_status call_macro(jrender *r, jv_macro *m, jv *args, size_t nargs, char **kwnames,
                              jv *kwargs, size_t nkw, int line, jv *out)
{
    if (r->depth >= MAX_CALL_DEPTH)
        return herd_jerr(HERD_E_INVALID, line, "maximum recursion depth exceeded in macro calls");
    jscope *ms = herd_jscope_new(m->scope);
    if (!ms) return check_mem(line);
    herd_status st = bind_macro_args(r, ms, m->def, args, nargs, kwnames, kwargs, nkw, line);
    if (!st) {
        r->depth++;
        jflow f = capture(r, ms, m->def->b, out);
        r->depth--;
        if (f == JF_ERROR) st = r->st;
    }
    scope_end(r, ms);
    return st;
}

herd_status herd_jinja_call(jrender *r, jscope *s, jv fn, jv *args, size_t nargs, char **kwnames,
                            jv *kwargs, size_t nkw, int line, jv *out)
{
    (void)s;
    if (!jv_charge(1)) return herd_jv_stop_error(line);
    switch (fn.kind) {
    case JV_MACRO:
        return call_macro(r, fn.u.m, args, nargs, kwnames, kwargs, nkw, line, out);
    case JV_FUNC:
        return herd_jinja_call_func(r, fn.u.fn, args, nargs, kwnames, kwargs, nkw, line, out);
    case JV_METHOD:
        return herd_jinja_call_method(r, fn.u.bm->self, fn.u.bm->name, args, nargs, kwnames, kwargs,
                                      nkw, line, out);
    case JV_UNDEF:
        return herd_jerr_undef(fn, line);
    default:
        return herd_jerr(HERD_E_INVALID, line, "'%s' object is not callable",
                         herd_jv_type_name(fn));
    }
}
