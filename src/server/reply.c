/*
 * reply.c — response JSON in OpenAI's shapes: text_completion and
 * chat.completion objects, their streamed chunks, usage, and both logprobs
 * shapes (the legacy completions one that lm-evaluation-harness reads, and
 * chat's "content" list). Extras that llama.cpp's server adds and clients
 * ignore: `timings` (tokens per second of the prompt and of generation,
 * cache_n = prompt tokens reused from the slot's cache) and herd's own
 * `context` (the slot's context size and how much of it the request used).
 */
#include "server/server_impl.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void herd_reply_ctx_init(reply_ctx *rc, herd_server *srv, api_kind kind)
{
    static atomic_uint counter;
    memset(rc, 0, sizeof *rc);
    rc->model = srv->model;
    rc->model_id = srv->model_id;
    rc->created = (long)time(NULL);
    rc->n_ctx_slot = herd_sched_n_ctx_slot(srv->sched);
    rc->kind = kind;
    snprintf(rc->id, sizeof rc->id, "%s-%lx%06x", kind == API_CHAT ? "chatcmpl" : "cmpl",
             rc->created, atomic_fetch_add(&counter, 1) & 0xffffff);
}

const char *herd_reply_finish_name(srv_finish f)
{
    return f == SRV_FINISH_STOP ? "stop" : f == SRV_FINISH_LENGTH ? "length" : NULL;
}

json_t *herd_reply_string(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j) return j;
    char *fixed = malloc(3 * len + 1);
    if (!fixed) return json_string("");
    size_t n = herd_utf8_repair(s, len, fixed);
    j = json_stringn_nocheck(fixed, n);
    free(fixed);
    return j;
}

char *herd_reply_piece(const herd_model *m, int32_t id, bool special, size_t *len)
{
    char tmp[256];
    int n = herd_token_to_piece(m, id, special, tmp, sizeof tmp);
    if (n < 0) n = 0;
    char *p = malloc((size_t)n + 1);
    if (!p) return NULL;
    if (n <= (int)sizeof tmp)
        memcpy(p, tmp, (size_t)n);
    else
        herd_token_to_piece(m, id, special, p, n);
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

/* A token's name in logprobs: its piece, control tokens by their text. */
static json_t *token_name(const herd_model *m, int32_t id)
{
    size_t n;
    char *p = herd_reply_piece(m, id, true, &n);
    json_t *j = p ? herd_reply_string(p, n) : json_string("");
    free(p);
    return j;
}

static json_t *token_bytes(const herd_model *m, int32_t id)
{
    size_t n;
    char *p = herd_reply_piece(m, id, true, &n);
    json_t *a = json_array();
    for (size_t i = 0; p && i < n; i++) json_array_append_new(a, json_integer((unsigned char)p[i]));
    free(p);
    return a;
}

/* ---------------------------------------------------------------- logprobs */

static json_t *top_dict(const herd_model *m, const srv_lp *lp)
{
    json_t *d = json_object();
    for (int k = 0; k < lp->n_top; k++) {
        size_t n;
        char *p = herd_reply_piece(m, lp->top_id[k], true, &n);
        json_t *name = p ? herd_reply_string(p, n) : NULL;
        /* Sorted best first: a later token with the same text keeps the first. */
        if (name && !json_object_get(d, json_string_value(name)))
            json_object_set_new(d, json_string_value(name), json_real(lp->top_lp[k]));
        json_decref(name);
        free(p);
    }
    return d;
}

static void legacy_entry(const herd_model *m, json_t *lp, int32_t id, const srv_lp *e,
                         size_t *offset)
{
    json_array_append_new(json_object_get(lp, "tokens"), token_name(m, id));
    json_array_append_new(json_object_get(lp, "token_logprobs"),
                          e ? json_real(e->logprob) : json_null());
    json_array_append_new(json_object_get(lp, "top_logprobs"), e ? top_dict(m, e) : json_null());
    json_array_append_new(json_object_get(lp, "text_offset"), json_integer((json_int_t)*offset));
    size_t n;
    free(herd_reply_piece(m, id, false, &n));
    *offset += n;
}

json_t *herd_reply_logprobs_legacy(const herd_model *m, const srv_lp *prompt_lp, int n_prompt,
                                   const int32_t *prompt, const srv_lp *lp, int n_lp,
                                   size_t offset0)
{
    json_t *j = json_pack("{s:[],s:[],s:[],s:[]}", "tokens", "token_logprobs", "top_logprobs",
                          "text_offset");
    size_t off = 0;
    for (int i = 0; prompt_lp && i < n_prompt; i++)
        legacy_entry(m, j, prompt[i], i ? &prompt_lp[i] : NULL, &off);
    off = offset0;
    for (int i = 0; i < n_lp; i++) legacy_entry(m, j, lp[i].token, &lp[i], &off);
    return j;
}

static json_t *chat_lp_entry(const herd_model *m, int32_t id, float logprob)
{
    return json_pack("{s:o,s:f,s:o}", "token", token_name(m, id), "logprob", (double)logprob,
                     "bytes", token_bytes(m, id));
}

static json_t *logprobs_chat(const herd_model *m, const srv_lp *lp, int n_lp)
{
    json_t *content = json_array();
    for (int i = 0; i < n_lp; i++) {
        json_t *e = chat_lp_entry(m, lp[i].token, lp[i].logprob);
        json_t *top = json_array();
        for (int k = 0; k < lp[i].n_top; k++)
            json_array_append_new(top, chat_lp_entry(m, lp[i].top_id[k], lp[i].top_lp[k]));
        json_object_set_new(e, "top_logprobs", top);
        json_array_append_new(content, e);
    }
    return json_pack("{s:o,s:n}", "content", content, "refusal");
}

/* ---------------------------------------------------------------- usage */

json_t *herd_reply_usage(const srv_job *const *jobs, int n)
{
    long prompt = 0, gen = 0, cached = 0;
    for (int i = 0; i < n; i++) {
        prompt += jobs[i]->n_prompt;
        gen += jobs[i]->n_gen;
        cached += jobs[i]->n_cached;
    }
    return json_pack("{s:I,s:I,s:I,s:{s:I}}", "prompt_tokens", (json_int_t)prompt,
                     "completion_tokens", (json_int_t)gen, "total_tokens",
                     (json_int_t)(prompt + gen), "prompt_tokens_details", "cached_tokens",
                     (json_int_t)cached);
}

/* llama.cpp's timings; with several prompts, their sums over the spans. */
json_t *herd_reply_timings(const srv_job *const *jobs, int n)
{
    long prompt_n = 0, cache_n = 0, pred_n = 0;
    double t_start = 1e300, t_prompt = 0, t_end = 0;
    for (int i = 0; i < n; i++) {
        const srv_job *j = jobs[i];
        cache_n += j->n_cached;
        prompt_n += j->n_prompt - j->n_cached;
        pred_n += j->n_gen;
        if (j->t_start < t_start) t_start = j->t_start;
        if (j->t_prompt > t_prompt) t_prompt = j->t_prompt;
        if (j->t_end > t_end) t_end = j->t_end;
    }
    double pms = n ? (t_prompt - t_start) * 1e3 : 0, gms = n ? (t_end - t_prompt) * 1e3 : 0;
    if (pms < 0) pms = 0;
    if (gms < 0) gms = 0;
    return json_pack("{s:I,s:I,s:f,s:f,s:f,s:I,s:f,s:f,s:f}", "cache_n", (json_int_t)cache_n,
                     "prompt_n", (json_int_t)prompt_n, "prompt_ms", pms, "prompt_per_token_ms",
                     prompt_n ? pms / prompt_n : 0.0, "prompt_per_second",
                     pms > 0 ? prompt_n * 1e3 / pms : 0.0, "predicted_n", (json_int_t)pred_n,
                     "predicted_ms", gms, "predicted_per_token_ms", pred_n ? gms / pred_n : 0.0,
                     "predicted_per_second", gms > 0 ? pred_n * 1e3 / gms : 0.0);
}

static json_t *context_json(const reply_ctx *rc, const srv_job *const *jobs, int n)
{
    int used = 0;
    for (int i = 0; i < n; i++)
        if (jobs[i]->n_prompt + jobs[i]->n_gen > used) used = jobs[i]->n_prompt + jobs[i]->n_gen;
    return json_pack("{s:i,s:i}", "n_ctx", rc->n_ctx_slot, "used", used);
}

/* ---------------------------------------------------------------- objects */

static json_t *envelope(const reply_ctx *rc, const char *object)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", rc->id, "object", object, "created",
                     (json_int_t)rc->created, "model", rc->model_id, "system_fingerprint", "herd");
}

static json_t *finish_json(srv_finish f)
{
    const char *s = herd_reply_finish_name(f);
    return s ? json_string(s) : json_null();
}

json_t *herd_reply_message(const srv_job *j, json_t **calls)
{
    const char *text = j->text ? j->text : "";
    *calls = NULL;
    if (!j->gen.tool_format)
        return json_pack("{s:s,s:o}", "role", "assistant", "content",
                         herd_reply_string(text, j->text_len));
    char *content = NULL;
    *calls = herd_tools_parse_output(j->gen.tool_format, text, j->text_len, &content);
    json_t *m = json_pack("{s:s,s:o}", "role", "assistant", "content",
                          content ? herd_reply_string(content, strlen(content)) : json_null());
    if (*calls) json_object_set_new(m, "tool_calls", *calls); /* *calls stays a borrowed flag */
    free(content);
    return m;
}

static json_t *full_choice(const reply_ctx *rc, const srv_job *j, int index, const char *echo)
{
    json_t *c = json_pack("{s:i}", "index", index);
    json_t *calls = NULL;
    if (rc->kind == API_CHAT) {
        json_t *msg = herd_reply_message(j, &calls);
        json_object_set_new(c, "message", msg);
        json_object_set_new(c, "logprobs",
                            j->gen.logprobs >= 0 ? logprobs_chat(rc->model, j->lp, j->n_lp)
                                                 : json_null());
    } else {
        size_t el = echo ? strlen(echo) : 0;
        char *text = malloc(el + j->text_len + 1);
        if (text) {
            memcpy(text, echo ? echo : "", el);
            memcpy(text + el, j->text ? j->text : "", j->text_len);
        }
        json_object_set_new(c, "text",
                            text ? herd_reply_string(text, el + j->text_len) : json_null());
        free(text);
        json_object_set_new(c, "logprobs",
                            j->gen.logprobs >= 0
                                ? herd_reply_logprobs_legacy(rc->model, j->prompt_lp, j->n_prompt,
                                                             j->prompt, j->lp, j->n_lp, el)
                                : json_null());
    }
    json_object_set_new(c, "finish_reason",
                        calls ? json_string("tool_calls") : finish_json(j->finish));
    return c;
}

json_t *herd_reply_full(const reply_ctx *rc, srv_job *const *jobs, int n, char *const *echo_text)
{
    json_t *r = envelope(rc, rc->kind == API_CHAT ? "chat.completion" : "text_completion");
    json_t *choices = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(choices,
                              full_choice(rc, jobs[i], i, echo_text ? echo_text[i] : NULL));
    json_object_set_new(r, "choices", choices);
    const srv_job *const *cj = (const srv_job *const *)jobs;
    json_object_set_new(r, "usage", herd_reply_usage(cj, n));
    json_object_set_new(r, "timings", herd_reply_timings(cj, n));
    json_object_set_new(r, "context", context_json(rc, cj, n));
    return r;
}

json_t *herd_reply_chunk(const reply_ctx *rc, const char *text, size_t len, const srv_lp *lp,
                         int n_lp, size_t offset, srv_finish finish, bool role)
{
    bool chat = rc->kind == API_CHAT;
    json_t *r = envelope(rc, chat ? "chat.completion.chunk" : "text_completion");
    json_t *c = json_pack("{s:i}", "index", 0);
    json_t *lps = json_null();
    if (lp)
        lps = chat ? logprobs_chat(rc->model, lp, n_lp)
                   : herd_reply_logprobs_legacy(rc->model, NULL, 0, NULL, lp, n_lp, offset);
    if (chat) {
        json_t *delta = json_object();
        if (role) json_object_set_new(delta, "role", json_string("assistant"));
        if (role || text)
            json_object_set_new(delta, "content", herd_reply_string(text ? text : "", len));
        json_object_set_new(c, "delta", delta);
    } else
        json_object_set_new(c, "text", herd_reply_string(text ? text : "", len));
    json_object_set_new(c, "logprobs", lps);
    json_object_set_new(c, "finish_reason", finish_json(finish));
    json_object_set_new(r, "choices", json_pack("[o]", c));
    return r;
}

json_t *herd_reply_usage_chunk(const reply_ctx *rc, const srv_job *job)
{
    json_t *r = envelope(rc, rc->kind == API_CHAT ? "chat.completion.chunk" : "text_completion");
    json_object_set_new(r, "choices", json_array());
    json_object_set_new(r, "usage", herd_reply_usage(&job, 1));
    return r;
}
