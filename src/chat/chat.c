/*
 * chat.c — the chat-template entry points: parse once, render many times
 * with the variables transformers' apply_chat_template passes.
 *
 * transformers renders with
 *   render(messages=..., tools=tools or None, documents=documents or None,
 *          add_generation_prompt=..., **special_tokens, **kwargs)
 * so `tools` and `documents` are always defined (none when absent or empty),
 * bos_token / eos_token exist only when the tokenizer has them, and every
 * other extra key becomes a top-level variable. The globals are jinja2's
 * range / namespace / dict plus transformers' raise_exception and
 * strftime_now.
 */
#include "chat/jinja.h"

#include <stdlib.h>
#include <string.h>

herd_status herd_chat_template_parse(const char *src, herd_chat_template **out)
{
    *out = NULL;
    if (!src) return herd_seterr(HERD_E_INVALID, "no template");
    herd_chat_template *t = calloc(1, sizeof *t);
    if (!t) return herd_seterr(HERD_E_NOMEM, "out of memory");
    jtoks toks;
    herd_jv_nomem = false;
    herd_status st = herd_jinja_lex(src, &toks);
    if (!st) {
        st = herd_jinja_parse(&toks, t);
        herd_jinja_toks_free(&toks);
    }
    if (!st && herd_jv_nomem) st = herd_seterr(HERD_E_NOMEM, "out of memory parsing the template");
    if (st) {
        herd_chat_template_free(t);
        return st;
    }
    *out = t;
    return HERD_OK;
}

void herd_chat_template_free(herd_chat_template *t)
{
    if (!t) return;
    herd_jinja_nodes_free(t);
    free(t);
}

static void set_var(jscope *s, const char *name, jv v)
{
    herd_jscope_set_take(s, name, v);
}

/* The value of extra[key] if truthy (Python's `x or None`), else none. */
static jv or_none(const json_t *extra, const char *key)
{
    const json_t *j = extra ? json_object_get(extra, key) : NULL;
    if (!j) return jv_none();
    jv v = herd_jv_from_json(j);
    if (herd_jv_truthy(v)) return v;
    herd_jv_release(v);
    return jv_none();
}

static void fill_context(jscope *g, jscope *ctx, const herd_chat_input *in)
{
    static const struct {
        const char *name;
        jfunc fn;
    } funcs[] = {{"range", F_RANGE},
                 {"namespace", F_NAMESPACE},
                 {"dict", F_DICT},
                 {"raise_exception", F_RAISE},
                 {"strftime_now", F_STRFTIME}};
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
        set_var(g, funcs[i].name, jv_func(funcs[i].fn));
    if (in->bos_token) set_var(ctx, "bos_token", herd_jv_cstr(in->bos_token));
    if (in->eos_token) set_var(ctx, "eos_token", herd_jv_cstr(in->eos_token));
    if (in->extra && json_is_object(in->extra)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)in->extra, k, v)
        {
            if (strcmp(k, "tools") && strcmp(k, "documents")) set_var(ctx, k, herd_jv_from_json(v));
        }
    }
    set_var(ctx, "messages",
            in->messages ? herd_jv_from_json(in->messages) : herd_jv_list_new(0, false));
    set_var(ctx, "tools", or_none(in->extra, "tools"));
    set_var(ctx, "documents", or_none(in->extra, "documents"));
    set_var(ctx, "add_generation_prompt", jv_bool(in->add_generation_prompt));
}

static void free_scope(jscope *s)
{
    if (!s) return;
    herd_jv_release(s->vars);
    free(s);
}

/* The end of a render: empty every namespace (the only possible cycles),
 * then free the scopes macros kept alive. */
static void render_cleanup(jrender *r)
{
    if (r->namespaces.kind == JV_LIST)
        for (size_t i = 0; i < r->namespaces.u.l->n; i++)
            herd_jv_dict_clear(r->namespaces.u.l->v[i]);
    herd_jv_release(r->namespaces);
    while (r->captured) {
        jscope *s = r->captured;
        r->captured = s->next_captured;
        free_scope(s);
    }
    herd_jbuf_free(&r->out);
}

herd_status herd_chat_template_render(const herd_chat_template *t, const herd_chat_input *in,
                                      char **out, size_t *len, bool *raised)
{
    *out = NULL;
    if (len) *len = 0;
    if (raised) *raised = false;
    if (!t || !in) return herd_seterr(HERD_E_INVALID, "no template or input");
    if (in->messages && !json_is_array(in->messages))
        return herd_seterr(HERD_E_INVALID, "messages must be a JSON array");
    if (in->extra && !json_is_object(in->extra) && !json_is_null(in->extra))
        return herd_seterr(HERD_E_INVALID, "extra variables must be a JSON object");
    herd_jv_nomem = false;
    herd_jv_budget_start(in->cancel); /* the input's values count too */
    jrender r = {.namespaces = herd_jv_list_new(0, false), .filter_input = jv_undef(NULL)};
    jscope *g = herd_jscope_new(NULL), *ctx = g ? herd_jscope_new(g) : NULL;
    herd_status st = HERD_OK;
    if (!g || !ctx)
        st = herd_jv_stop_error(0);
    else {
        r.globals = g;
        fill_context(g, ctx, in);
        if (herd_jv_nomem)
            st = herd_jv_stop_error(0);
        else if (herd_jinja_exec(&r, ctx, t->root) != JF_OK)
            st = r.st ? r.st : HERD_E_INVALID;
        if (!st && herd_jv_nomem) st = herd_jv_stop_error(0); /* never a rendering cut short */
    }
    herd_jv_budget_stop(st ? 0 : r.out.n);
    if (!st) {
        *out = r.out.p ? r.out.p : calloc(1, 1);
        if (len) *len = r.out.n;
        r.out = (jbuf){0};
        if (!*out) st = herd_seterr(HERD_E_NOMEM, "out of memory");
    }
    if (raised) *raised = st && r.raised;
    if (ctx && ctx->captured) { /* freed with the other captured scopes */
        ctx->next_captured = r.captured;
        r.captured = ctx;
        ctx = NULL;
    }
    render_cleanup(&r);
    free_scope(ctx);
    free_scope(g);
    return st;
}

herd_status herd_chat_render(const char *template_src, const herd_chat_input *in, char **out,
                             size_t *len, bool *raised)
{
    herd_chat_template *t;
    *out = NULL;
    if (raised) *raised = false;
    herd_status st = herd_chat_template_parse(template_src, &t);
    if (st) return st;
    st = herd_chat_template_render(t, in, out, len, raised);
    herd_chat_template_free(t);
    return st;
}
