/*
 * api.c — OpenAI request bodies → api_request.
 *
 * The rules (as OpenAI-compatible servers do): a field herd does not know is
 * ignored, because clients send extras (user, metadata, ...); a field it
 * knows must have the right type and a possible value, else the request is a
 * 400 naming the field, in OpenAI's error shape. JSON null means "default",
 * as in OpenAI's API. Nothing here touches the model beyond its vocabulary
 * size; tokenizing and the context check are prompt.c's.
 */
#include "server/server_impl.h"

#include "grammar/grammar.h"
#include "sample/sample.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool herd_api_fail(api_error *e, int status, const char *param, const char *fmt, ...)
{
    e->status = status;
    e->type = status >= 500 ? "server_error" : "invalid_request_error";
    e->code = NULL;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return false;
}

json_t *herd_api_error_json(const api_error *e)
{
    json_t *err = json_object();
    json_object_set_new(err, "message", herd_reply_string(e->message, strlen(e->message)));
    json_object_set_new(err, "type", json_string(e->type ? e->type : "invalid_request_error"));
    json_object_set_new(err, "param", e->param[0] ? json_string(e->param) : json_null());
    json_object_set_new(err, "code", e->code ? json_string(e->code) : json_null());
    json_t *j = json_object();
    json_object_set_new(j, "error", err);
    return j;
}

json_t *herd_api_parse_body(const char *body, size_t len, api_error *e)
{
    json_error_t je;
    json_t *j = len ? json_loadb(body, len, 0, &je) : NULL;
    if (!j) {
        if (!len)
            herd_api_fail(e, 400, NULL, "the request body is empty; expected a JSON object");
        else
            herd_api_fail(e, 400, NULL,
                          "malformed JSON in the request body (line %d, column %d): %s", je.line,
                          je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        herd_api_fail(e, 400, NULL, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---------------------------------------------------------------- fields */

/* Each getter leaves *out alone when the field is absent or null. */

static bool get_number(const json_t *o, const char *key, double lo, double hi, float *out,
                       api_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_number(v)) return herd_api_fail(e, 400, key, "'%s' must be a number", key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return herd_api_fail(e, 400, key, "'%s' is %g; it must be between %g and %g", key, x, lo,
                             hi);
    *out = (float)x;
    return true;
}

static bool get_int(const json_t *o, const char *key, long long lo, long long hi, long long *out,
                    api_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_integer(v)) return herd_api_fail(e, 400, key, "'%s' must be an integer", key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return herd_api_fail(e, 400, key, "'%s' is %lld; it must be between %lld and %lld", key, x,
                             lo, hi);
    *out = x;
    return true;
}

static bool get_bool(const json_t *o, const char *key, bool *out, api_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_boolean(v)) return herd_api_fail(e, 400, key, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return true;
}

static bool add_stop(srv_gen *g, const json_t *s, api_error *e)
{
    if (!json_is_string(s))
        return herd_api_fail(e, 400, "stop", "'stop' must be a string or an array of strings");
    size_t n = json_string_length(s);
    if (n == 0) return herd_api_fail(e, 400, "stop", "a stop string must not be empty");
    if (n >= SRV_STOP_BYTES)
        return herd_api_fail(e, 400, "stop", "a stop string is %zu bytes; the limit is %d", n,
                             SRV_STOP_BYTES - 1);
    if (g->n_stop == SRV_MAX_STOP)
        return herd_api_fail(e, 400, "stop", "at most %d stop strings are allowed", SRV_MAX_STOP);
    memcpy(g->stop[g->n_stop], json_string_value(s), n + 1);
    g->n_stop++;
    return true;
}

static bool get_stop(const json_t *o, srv_gen *g, api_error *e)
{
    json_t *v = json_object_get(o, "stop");
    if (!v || json_is_null(v)) return true;
    if (!json_is_array(v)) return add_stop(g, v, e);
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!add_stop(g, json_array_get(v, i), e)) return false;
    return true;
}

static bool get_logit_bias(const json_t *o, int n_vocab, srv_gen *g, api_error *e)
{
    json_t *v = json_object_get(o, "logit_bias");
    if (!v || json_is_null(v)) return true;
    if (!json_is_object(v))
        return herd_api_fail(e, 400, "logit_bias",
                             "'logit_bias' must be an object of token id: bias");
    const char *key;
    json_t *b;
    json_object_foreach(v, key, b)
    {
        char *end;
        long id = strtol(key, &end, 10);
        if (!*key || *end || id < 0 || id >= n_vocab)
            return herd_api_fail(e, 400, "logit_bias",
                                 "logit_bias key '%s' is not a token id (0..%d)", key, n_vocab - 1);
        if (!json_is_number(b) || !(fabs(json_number_value(b)) <= 100))
            return herd_api_fail(e, 400, "logit_bias",
                                 "a logit bias must be a number in -100..100");
        if (g->n_bias == SRV_MAX_BIAS)
            return herd_api_fail(e, 400, "logit_bias", "at most %d logit_bias entries are allowed",
                                 SRV_MAX_BIAS);
        g->bias_id[g->n_bias] = (int32_t)id;
        g->bias[g->n_bias++] = (float)json_number_value(b);
    }
    return true;
}

/* What completions and chat share: sampling, limits, stop, stream. */
static bool parse_common(const json_t *o, int n_vocab, api_request *r, api_error *e)
{
    srv_gen *g = &r->gen;
    memset(g, 0, sizeof *g);
    g->max_tokens = -1;
    g->logprobs = -1;
    /* OpenAI's defaults, not llama.cpp's: temperature 1, no top-k/min-p. */
    g->sp = herd_sampler_default_params();
    g->sp.temp = 1.0f;
    g->sp.top_k = 0;
    g->sp.top_p = 1.0f;
    g->sp.min_p = 0.0f;
    g->sp.repeat_penalty = 1.0f;
    g->sp.seed = HERD_SEED_RANDOM;
    json_t *model = json_object_get(o, "model");
    if (model && !json_is_string(model) && !json_is_null(model))
        return herd_api_fail(e, 400, "model", "'model' must be a string");
    long long n = 1, best_of = 1, max_tokens = -1, top_k = 0, seed = -1;
    /* max_tokens past any context is refused here; past this model's slot
     * context, by herd_prompt_fits once the prompt is tokenized. */
    const long long absurd = 1 << 24;
    if (!get_int(o, "n", 1, 128, &n, e) || !get_int(o, "best_of", 1, 128, &best_of, e))
        return false;
    if (n != 1 || best_of != 1)
        return herd_api_fail(e, 400, n != 1 ? "n" : "best_of",
                             "only one choice per request (n = 1)");
    const char *mt = r->kind == API_CHAT && json_object_get(o, "max_completion_tokens")
                         ? "max_completion_tokens"
                         : "max_tokens";
    if (!get_int(o, mt, 0, absurd, &max_tokens, e) || !get_int(o, "top_k", 0, 1 << 30, &top_k, e) ||
        !get_int(o, "seed", INT64_MIN, INT64_MAX, &seed, e))
        return false;
    g->max_tokens = (int)max_tokens;
    g->sp.top_k = (int)top_k;
    g->sp.seed = seed == -1 ? HERD_SEED_RANDOM : (uint64_t)seed;
    if (!get_number(o, "temperature", 0, 2, &g->sp.temp, e) ||
        !get_number(o, "top_p", 0, 1, &g->sp.top_p, e) ||
        !get_number(o, "min_p", 0, 1, &g->sp.min_p, e) ||
        !get_number(o, "repeat_penalty", 0.01, 100, &g->sp.repeat_penalty, e) ||
        !get_number(o, "presence_penalty", -2, 2, &g->presence_penalty, e) ||
        !get_number(o, "frequency_penalty", -2, 2, &g->frequency_penalty, e) ||
        !get_stop(o, g, e) || !get_logit_bias(o, n_vocab, g, e) ||
        !get_bool(o, "stream", &r->stream, e))
        return false;
    if (!herd_structured_parse(o, r, e)) return false;
    json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return herd_api_fail(e, 400, "stream_options", "'stream_options' must be an object");
        if (!get_bool(so, "include_usage", &r->include_usage, e)) return false;
    }
    return true;
}

/* ---------------------------------------------------------------- completions */

static bool all_integers(const json_t *a)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_integer(json_array_get(a, i))) return false;
    return true;
}

/* A prompt is a string, an array of strings, an array of token ids, or an
 * array of arrays of ids. r->prompts becomes the list of single prompts. */
static bool parse_prompts(const json_t *p, api_request *r, api_error *e)
{
    const char *bad = "'prompt' must be a string, an array of strings, an array of token ids "
                      "or an array of arrays of token ids";
    if (!p || json_is_null(p)) return herd_api_fail(e, 400, "prompt", "'prompt' is required");
    r->prompts = json_array();
    if (json_is_string(p)) return json_array_append(r->prompts, (json_t *)p) == 0;
    if (!json_is_array(p) || json_array_size(p) == 0)
        return herd_api_fail(e, 400, "prompt", "%s", json_is_array(p) ? "'prompt' is empty" : bad);
    if (json_is_integer(json_array_get(p, 0))) {
        if (!all_integers(p)) return herd_api_fail(e, 400, "prompt", "%s", bad);
        return json_array_append(r->prompts, (json_t *)p) == 0;
    }
    for (size_t i = 0; i < json_array_size(p); i++) {
        json_t *v = json_array_get(p, i);
        if (json_is_array(v) && json_array_size(v) == 0)
            return herd_api_fail(e, 400, "prompt", "prompt %zu is empty", i);
        if (!json_is_string(v) && !(json_is_array(v) && all_integers(v)))
            return herd_api_fail(e, 400, "prompt", "%s", bad);
        json_array_append(r->prompts, v);
    }
    return true;
}

bool herd_api_parse_completion(const json_t *o, int n_vocab, api_request *r, api_error *e)
{
    memset(r, 0, sizeof *r);
    r->kind = API_COMPLETION;
    if (!parse_common(o, n_vocab, r, e)) return false;
    long long logprobs = -1;
    if (!get_bool(o, "echo", &r->echo, e) || !get_int(o, "logprobs", 0, SRV_MAX_TOP, &logprobs, e))
        return false;
    r->gen.logprobs = (int)logprobs;
    r->gen.echo_logprobs = r->echo && logprobs >= 0;
    json_t *suffix = json_object_get(o, "suffix");
    if (suffix && !json_is_null(suffix) && !(json_is_string(suffix) && !json_string_length(suffix)))
        return herd_api_fail(e, 400, "suffix", "'suffix' (insertion) is not supported");
    return parse_prompts(json_object_get(o, "prompt"), r, e);
}

/* ---------------------------------------------------------------- chat */

/* Content may be a string, null, or an array of text parts, which are
 * joined; a template sees a plain string. */
static bool message_content(json_t *m, size_t idx, api_error *e)
{
    json_t *c = json_object_get(m, "content");
    if (!c || json_is_null(c) || json_is_string(c)) return true;
    if (!json_is_array(c))
        return herd_api_fail(e, 400, "messages",
                             "messages[%zu].content must be a string or an array", idx);
    size_t len = 0, i;
    json_t *part;
    json_array_foreach(c, i, part)
    {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") ||
            !json_is_string(text))
            return herd_api_fail(e, 400, "messages",
                                 "messages[%zu].content[%zu]: only text parts are supported", idx,
                                 i);
        len += json_string_length(text);
    }
    char *buf = malloc(len + 1);
    if (!buf) return herd_api_fail(e, 500, NULL, "out of memory");
    size_t at = 0;
    json_array_foreach(c, i, part)
    {
        json_t *text = json_object_get(part, "text");
        memcpy(buf + at, json_string_value(text), json_string_length(text));
        at += json_string_length(text);
    }
    json_object_set_new(m, "content", json_stringn_nocheck(buf, at));
    free(buf);
    return true;
}

static bool parse_messages(const json_t *o, api_request *r, api_error *e)
{
    json_t *ms = json_object_get(o, "messages");
    if (!ms || json_is_null(ms)) return herd_api_fail(e, 400, "messages", "'messages' is required");
    if (!json_is_array(ms) || json_array_size(ms) == 0)
        return herd_api_fail(e, 400, "messages", "'messages' must be a non-empty array");
    r->messages = json_deep_copy(ms);
    if (!r->messages) return herd_api_fail(e, 500, NULL, "out of memory");
    size_t i;
    json_t *m;
    json_array_foreach(r->messages, i, m)
    {
        if (!json_is_object(m))
            return herd_api_fail(e, 400, "messages", "messages[%zu] must be an object", i);
        if (!json_is_string(json_object_get(m, "role")))
            return herd_api_fail(e, 400, "messages", "messages[%zu].role must be a string", i);
        if (!message_content(m, i, e)) return false;
    }
    return true;
}

/* tools, documents and chat_template_kwargs become template variables. */
static bool template_extra(const json_t *o, api_request *r, api_error *e)
{
    json_t *kw = json_object_get(o, "chat_template_kwargs");
    if (kw && !json_is_null(kw) && !json_is_object(kw))
        return herd_api_fail(e, 400, "chat_template_kwargs",
                             "'chat_template_kwargs' must be an object");
    json_t *tools = json_object_get(o, "tools");
    if (tools && !json_is_null(tools) && !json_is_array(tools))
        return herd_api_fail(e, 400, "tools", "'tools' must be an array");
    r->extra = json_object();
    if (json_is_object(kw)) json_object_update(r->extra, kw);
    if (json_is_array(tools)) json_object_set(r->extra, "tools", tools);
    return true;
}

bool herd_api_parse_chat(const json_t *o, int n_vocab, api_request *r, api_error *e)
{
    memset(r, 0, sizeof *r);
    r->kind = API_CHAT;
    if (!parse_common(o, n_vocab, r, e)) return false;
    bool logprobs = false;
    long long top = -1;
    if (!get_bool(o, "logprobs", &logprobs, e) ||
        !get_int(o, "top_logprobs", 0, SRV_MAX_TOP, &top, e))
        return false;
    if (top >= 0 && !logprobs)
        return herd_api_fail(e, 400, "top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
    r->gen.logprobs = logprobs ? (top < 0 ? 0 : (int)top) : -1;
    return parse_messages(o, r, e) && template_extra(o, r, e) && herd_tools_parse_request(o, r, e);
}

void herd_api_request_free(api_request *r)
{
    json_decref(r->prompts);
    json_decref(r->messages);
    json_decref(r->extra);
    json_decref(r->tools);
    r->prompts = r->messages = r->extra = r->tools = NULL;
    herd_grammar_free(r->gen.grammar);
    r->gen.grammar = NULL;
}
