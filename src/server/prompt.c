/*
 * prompt.c — from a request to the token ids a job decodes: completions
 * prompts (text or ids), chat messages rendered with the model's chat
 * template, and the check that prompt and answer fit a slot's context.
 *
 * The chat format is chosen once at start: --chat-template (a built-in
 * format name or Jinja source), else the file's tokenizer.chat_template, else
 * the built-in format picked from the model's architecture and name. A file
 * template that herd's Jinja subset cannot parse falls back to the picked
 * format with a log line, so that a server still starts; /apply-template
 * shows what the model is given.
 *
 * A prompt that does not fit is refused (400, context_length_exceeded), never
 * cut: a silently truncated prompt gives answers to a question nobody asked.
 */
#include "chat/chat.h"
#include "model/model.h"
#include "server/server_impl.h"

#include <stdlib.h>
#include <string.h>

static char *token_text(const herd_model *m, int32_t id)
{
    const char *s = id >= 0 ? herd_vocab_token_text(m->vocab, id) : NULL;
    return s ? strdup(s) : NULL;
}

herd_status herd_chat_setup(herd_server *srv, const char *override)
{
    const herd_model *m = srv->model;
    srv->bos_text = token_text(m, herd_token_bos(m));
    srv->eos_text = token_text(m, herd_token_eos(m));
    const char *named = override ? herd_chat_named_canonical(override) : NULL;
    if (named) return (srv->chat_format = strdup(named)) ? HERD_OK : HERD_E_NOMEM;
    srv->tool_format = herd_tools_detect(override); /* a name (or none): generic */
    if (override) return herd_chat_template_parse(override, &srv->tmpl);
    gguf_str s;
    if (herd_gguf_get_str(m->file, "tokenizer.chat_template", &s)) {
        char *src = strndup(s.ptr, s.len);
        if (!src) return herd_seterr(HERD_E_NOMEM, "out of memory");
        herd_status st = herd_chat_template_parse(src, &srv->tmpl);
        srv->tool_format = herd_tools_detect(src);
        free(src);
        if (!st) return HERD_OK;
        herd_srv_log(srv,
                     "the model's chat template cannot be used (%s); using the built-in format",
                     herd_errmsg());
    }
    srv->chat_format = strdup(herd_chat_named_pick(m->arch_name, m->name));
    return srv->chat_format ? HERD_OK : HERD_E_NOMEM;
}

void herd_chat_teardown(herd_server *srv)
{
    herd_chat_template_free(srv->tmpl);
    free(srv->chat_format);
    free(srv->bos_text);
    free(srv->eos_text);
    srv->tmpl = NULL;
    srv->chat_format = srv->bos_text = srv->eos_text = NULL;
}

void herd_prompt_free(srv_prompt *p)
{
    free(p->ids);
    free(p->text);
    memset(p, 0, sizeof *p);
}

static bool tokenize(const herd_model *m, const char *text, size_t len, bool add_bos,
                     srv_prompt *out, api_error *e)
{
    int need = 0;
    herd_status st = herd_tokenize(m, text, len, add_bos, true, NULL, 0, &need);
    if (st && need == 0)
        return herd_api_fail(e, 400, "prompt", "cannot tokenize: %s", herd_errmsg());
    out->ids = malloc(((size_t)need + 1) * sizeof *out->ids);
    if (!out->ids) return herd_api_fail(e, 500, NULL, "out of memory");
    if (herd_tokenize(m, text, len, add_bos, true, out->ids, need + 1, &out->n))
        return herd_api_fail(e, 400, "prompt", "cannot tokenize: %s", herd_errmsg());
    if (out->n == 0) return herd_api_fail(e, 400, "prompt", "the prompt is empty");
    return true;
}

char *herd_prompt_ids_text(const herd_model *m, const int32_t *ids, int n, size_t *len)
{
    size_t at = 0, cap = 64;
    char *s = malloc(cap);
    for (int i = 0; s && i < n; i++) {
        size_t k;
        char *p = herd_reply_piece(m, ids[i], false, &k);
        while (p && at + k + 1 > cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) free(s);
            s = t;
            if (!s) break;
        }
        if (p && s) memcpy(s + at, p, k), at += k;
        free(p);
    }
    if (s) s[at] = 0;
    if (len) *len = at;
    return s;
}

bool herd_prompt_from_json(const herd_model *m, const json_t *p, srv_prompt *out, api_error *e)
{
    memset(out, 0, sizeof *out);
    if (json_is_string(p)) {
        if (!(out->text = strdup(json_string_value(p))))
            return herd_api_fail(e, 500, NULL, "out of memory");
        return tokenize(m, json_string_value(p), json_string_length(p), herd_add_bos(m), out, e);
    }
    size_t n = json_array_size(p), i;
    out->ids = malloc((n ? n : 1) * sizeof *out->ids);
    if (!out->ids) return herd_api_fail(e, 500, NULL, "out of memory");
    json_t *v;
    json_array_foreach(p, i, v)
    {
        json_int_t id = json_integer_value(v);
        if (id < 0 || id >= herd_n_vocab(m))
            return herd_api_fail(e, 400, "prompt",
                                 "token id %lld is outside the vocabulary (0..%d)", (long long)id,
                                 herd_n_vocab(m) - 1);
        out->ids[i] = (int32_t)id;
    }
    out->n = (int)n;
    out->text = herd_prompt_ids_text(m, out->ids, out->n, NULL);
    return out->text ? true : herd_api_fail(e, 500, NULL, "out of memory");
}

herd_status herd_i_chat_render(herd_server *srv, const json_t *messages, const json_t *extra,
                               char **out, size_t *len, bool *raised)
{
    *raised = false;
    if (!srv->tmpl) return herd_chat_named_render(srv->chat_format, messages, true, out, len);
    herd_chat_input in = {.messages = messages,
                          .extra = extra,
                          .bos_token = srv->bos_text,
                          .eos_token = srv->eos_text,
                          .add_generation_prompt = true,
                          .cancel = herd_http_cancel_flag()};
    return herd_chat_template_render(srv->tmpl, &in, out, len, raised);
}

/* A render stopped by its budget (500 naming the limit: the template is the
 * server's, not the client's) or cancelled (503: the client left or the
 * server stops). False when the failure was something else. */
bool herd_render_stopped(herd_server *srv, api_error *e)
{
    if (!srv->tmpl) return false; /* a built-in format: no Jinja render ran */
    herd_chat_usage u;
    herd_chat_last_usage(&u);
    if (u.limit == HERD_CHAT_LIMIT_NONE) return false;
    if (u.limit == HERD_CHAT_CANCELLED) {
        herd_api_fail(e, 503, NULL, "%s",
                      "the request was cancelled (client gone, or shutting down)");
        e->code = "cancelled";
        return true;
    }
    herd_api_fail(e, 500, "messages", "the chat template exceeded %s: %s",
                  herd_chat_limit_name(u.limit), herd_errmsg());
    e->code = "template_limit_exceeded";
    return true;
}

bool herd_prompt_from_chat(herd_server *srv, const json_t *messages, const json_t *extra,
                           srv_prompt *out, char **rendered, api_error *e)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    bool raised = false;
    herd_status st = herd_i_chat_render(srv, messages, extra, &text, &len, &raised);
    if (st == HERD_E_NOMEM) return herd_api_fail(e, 500, NULL, "out of memory");
    if (st && herd_render_stopped(srv, e)) return false;
    if (st)
        return herd_api_fail(e, st == HERD_E_UNSUPPORTED ? 500 : 400, "messages",
                             "the chat template refused the messages: %s", herd_errmsg());
    /* A template that writes bos_token itself gets no second BOS. */
    size_t nb = srv->bos_text ? strlen(srv->bos_text) : 0;
    bool bos = herd_add_bos(srv->model) && !(nb && len >= nb && !memcmp(text, srv->bos_text, nb));
    bool ok = tokenize(srv->model, text, len, bos, out, e);
    if (ok && rendered)
        *rendered = text;
    else
        free(text);
    return ok;
}

bool herd_prompt_fits(int n_prompt, int max_tokens, int n_ctx, api_error *e)
{
    bool ok = true;
    if (n_prompt > n_ctx || (max_tokens != 0 && n_prompt >= n_ctx))
        ok = herd_api_fail(
            e, 400, "messages",
            "this model's maximum context length is %d tokens; the prompt is %d tokens%s", n_ctx,
            n_prompt, max_tokens ? ", which leaves no room for an answer" : "");
    else if (max_tokens > 0 && n_prompt + max_tokens > n_ctx)
        ok = herd_api_fail(
            e, 400, "max_tokens",
            "this model's maximum context length is %d tokens; you requested %d tokens "
            "(%d in the prompt, %d for the completion)",
            n_ctx, n_prompt + max_tokens, n_prompt, max_tokens);
    if (!ok) e->code = "context_length_exceeded";
    return ok;
}
