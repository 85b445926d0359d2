/*
 * test_server.c — `herd serve` (src/server) in-process on ephemeral ports,
 * with the tiny llama (gibberish, but deterministic), spoken to over plain
 * sockets by the small blocking HTTP/1.1 client below.
 *
 * Covered: every guarded error (malformed JSON, wrong types, impossible
 * values, n > 1, prompts past the context, absurd max_tokens, 413 declared
 * and streamed, 401, 404, 405, 503 with the queue full), greedy completions
 * equal to `herd run --temp 0`, streamed text equal to non-streamed (both
 * endpoints), SSE framing, echo + logprobs against log-softmax of the
 * model's logits, prefix reuse measured in computed prompt tokens, a client
 * disconnecting mid-stream freeing its slot, parallel requests equal to
 * sequential ones, CORS, the small endpoints, and a few seconds of the load
 * that bench/server-load runs for minutes.
 */
#define _GNU_SOURCE /* strcasestr */
#include "helpers.h"
#include "http_client.h"
#include "server/server_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MODEL "models/tiny/llama-f32.gguf"

static herd_model *model;

/* A 4xx/5xx with OpenAI's error shape. */
static void expect_error(int port, const char *path, const char *body, int status)
{
    reply r = post(port, path, body);
    json_t *j = body_json(&r), *e = json_object_get(j, "error");
    CHECKF(r.status == status, "%s -> %d, want %d: %s", body, r.status, status, r.body);
    CHECKF(json_is_string(json_object_get(e, "message")) &&
               json_is_string(json_object_get(e, "type")),
           "error shape: %s", r.body);
    json_decref(j);
    reply_free(&r);
}

/* ---------------------------------------------------------------- helpers */

static herd_server *start(int parallel, int n_ctx, int queue, const char *key, const char *cors)
{
    herd_server_params p = herd_server_default_params();
    p.model = model;
    p.model_id = "tiny";
    p.port = 0;
    p.n_parallel = parallel;
    p.n_ctx = n_ctx;
    p.queue_max = queue;
    p.body_max = 64 * 1024;
    p.api_key = key;
    p.cors_origin = cors;
    herd_server *s = NULL;
    herd_status st = herd_server_start(&p, &s);
    CHECKF(st == HERD_OK, "server start: %s", herd_errmsg());
    return s;
}

static const char *text_of(json_t *j)
{
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    json_t *t = json_object_get(c, "text");
    if (!t) t = json_object_get(json_object_get(c, "message"), "content");
    return json_string_value(t);
}

/* POST and return choices[0] text (malloc'ed) and the whole object. */
static char *complete(int port, const char *path, const char *body, json_t **whole)
{
    reply r = post(port, path, body);
    json_t *j = body_json(&r);
    CHECKF(r.status == 200 && text_of(j), "%s -> %d %s", body, r.status, r.body);
    char *t = strdup(text_of(j) ? text_of(j) : "");
    if (whole)
        *whole = j;
    else
        json_decref(j);
    reply_free(&r);
    return t;
}

/* Parse an SSE body: the concatenated text deltas, the events, [DONE]. */
static char *sse_text(const reply *r, json_t **events, bool *done)
{
    *events = json_array();
    *done = false;
    size_t cap = r->len + 1, n = 0;
    char *out = calloc(1, cap);
    const char *p = r->body ? r->body : "";
    while ((p = strstr(p, "data: "))) {
        p += 6;
        const char *end = strstr(p, "\n\n");
        if (!end) break;
        CHECK(!*done); /* nothing after [DONE] */
        if (!strncmp(p, "[DONE]", 6))
            *done = true;
        else {
            json_t *j = json_loadb(p, (size_t)(end - p), 0, NULL);
            CHECKF(j != NULL, "bad event %.*s", (int)(end - p), p);
            json_t *c = json_array_get(json_object_get(j, "choices"), 0);
            json_t *t = json_object_get(c, "text");
            if (!t) t = json_object_get(json_object_get(c, "delta"), "content");
            if (json_is_string(t)) {
                memcpy(out + n, json_string_value(t), json_string_length(t));
                n += json_string_length(t);
            }
            json_array_append_new(*events, j);
        }
        p = end + 2;
    }
    return out;
}

static void wait_for(herd_server *s, int busy, int queued)
{
    herd_server_stats st;
    for (int i = 0; i < 400; i++) {
        herd_server_get_stats(s, &st);
        if (st.slots_busy == busy && st.queue_depth == queued) return;
        usleep(10000);
    }
    CHECKF(false, "slots busy %d (want %d), queued %d (want %d)", st.slots_busy, busy,
           st.queue_depth, queued);
}

/* ---------------------------------------------------------------- cases */

static void test_small_endpoints(int port)
{
    reply r = http(port, "GET", "/health", NULL, NULL);
    CHECKF(r.status == 200 && strstr(r.body, "\"ok\""), "health: %d %s", r.status, r.body);
    CHECK(header(&r, "Access-Control-Allow-Origin") == NULL); /* CORS off by default */
    reply_free(&r);
    r = http(port, "GET", "/v1/models", NULL, NULL);
    json_t *j = body_json(&r), *m = json_array_get(json_object_get(j, "data"), 0);
    CHECKF(r.status == 200 && !strcmp(json_string_value(json_object_get(m, "id")), "tiny"),
           "models: %s", r.body);
    CHECK(json_integer_value(json_object_get(json_object_get(m, "meta"), "n_ctx")) == 256);
    json_decref(j);
    reply_free(&r);
    r = post(port, "/tokenize", "{\"content\": \"Hello world\", \"add_special\": true}");
    j = body_json(&r);
    json_t *toks = json_object_get(j, "tokens");
    CHECKF(r.status == 200 && json_array_size(toks) == 3 &&
               json_integer_value(json_array_get(toks, 0)) == 1,
           "tokenize: %s", r.body);
    json_decref(j);
    reply_free(&r);
    r = post(port, "/detokenize", "{\"tokens\": [15043, 3186]}");
    CHECKF(r.status == 200 && strstr(r.body, "\"content\":\" Hello world\""), "detokenize: %s",
           r.body);
    reply_free(&r);
    r = post(port, "/apply-template",
             "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}");
    CHECKF(r.status == 200 && strstr(r.body, "\"prompt\":\"") && strstr(r.body, "Hi"),
           "apply-template: %s", r.body);
    reply_free(&r);
    r = http(port, "GET", "/metrics", NULL, NULL);
    CHECKF(r.status == 200 && strstr(r.body, "herd_requests_total ") &&
               strstr(r.body, "herd_queue_depth 0") && strstr(r.body, "# TYPE"),
           "metrics: %s", r.body);
    reply_free(&r);
}

static void test_errors(int port)
{
    static const char *const bad[] = {
        "{\"prompt\": \"x\",", /* malformed */
        "[1, 2]",              /* not an object */
        "",                    /* empty */
        "{\"max_tokens\": 4}", /* no prompt */
        "{\"prompt\": 5}",
        "{\"prompt\": []}",
        "{\"prompt\": [1, \"a\"]}",
        "{\"prompt\": [999999]}", /* not a token id */
        "{\"prompt\": \"x\", \"max_tokens\": \"5\"}",
        "{\"prompt\": \"x\", \"max_tokens\": 2.5}",
        "{\"prompt\": \"x\", \"max_tokens\": -1}",
        "{\"prompt\": \"x\", \"max_tokens\": 1000000000}", /* absurd */
        "{\"prompt\": \"x\", \"max_tokens\": 300}",        /* past the slot's 256 */
        "{\"prompt\": \"x\", \"temperature\": \"hot\"}",
        "{\"prompt\": \"x\", \"temperature\": 5}",
        "{\"prompt\": \"x\", \"top_p\": 1.5}",
        "{\"prompt\": \"x\", \"n\": 2}",
        "{\"prompt\": \"x\", \"n\": 0}",
        "{\"prompt\": \"x\", \"best_of\": 3}",
        "{\"prompt\": \"x\", \"stop\": 5}",
        "{\"prompt\": \"x\", \"stop\": [\"a\", 1]}",
        "{\"prompt\": \"x\", \"stop\": \"\"}",
        "{\"prompt\": \"x\", \"stream\": \"yes\"}",
        "{\"prompt\": \"x\", \"stream_options\": 1}",
        "{\"prompt\": \"x\", \"seed\": \"s\"}",
        "{\"prompt\": \"x\", \"logprobs\": true}",
        "{\"prompt\": \"x\", \"logprobs\": 50}",
        "{\"prompt\": \"x\", \"echo\": 1}",
        "{\"prompt\": \"x\", \"presence_penalty\": 3}",
        "{\"prompt\": \"x\", \"frequency_penalty\": \"x\"}",
        "{\"prompt\": \"x\", \"logit_bias\": {\"99999999\": 1}}",
        "{\"prompt\": \"x\", \"logit_bias\": {\"5\": 500}}",
        "{\"prompt\": \"x\", \"model\": 7}",
        "{\"prompt\": [\"a\", \"b\"], \"stream\": true}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_error(port, "/v1/completions", bad[i], 400);
    static const char *const bad_chat[] = {
        "{\"messages\": \"hi\"}",
        "{\"messages\": []}",
        "{\"messages\": [{\"content\": \"hi\"}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_logprobs\": 2}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": 3}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_completion_tokens\": "
        "-4}",
    };
    for (size_t i = 0; i < sizeof bad_chat / sizeof *bad_chat; i++)
        expect_error(port, "/v1/chat/completions", bad_chat[i], 400);
    /* A prompt longer than the slot's context: refused, never cut. */
    char big[8192] = "{\"prompt\": [1";
    for (int i = 0; i < 300; i++) strcat(big, ", 450");
    strcat(big, "], \"max_tokens\": 1}");
    reply r = post(port, "/v1/completions", big);
    CHECKF(r.status == 400 && strstr(r.body, "context_length_exceeded"), "long prompt: %s", r.body);
    reply_free(&r);
    /* Unknown fields are ignored. */
    char *t = complete(
        port, "/v1/completions",
        "{\"prompt\": \"x\", \"max_tokens\": 2, \"user\": \"u\", \"foo\": {\"a\": 1}}", NULL);
    free(t);
    /* Routes and methods. */
    r = http(port, "GET", "/v2/nothing", NULL, NULL);
    CHECKF(r.status == 404 && strstr(r.body, "\"error\""), "404: %d", r.status);
    reply_free(&r);
    r = http(port, "GET", "/v1/completions", NULL, NULL);
    CHECKF(r.status == 405 && header(&r, "Allow") && !strcmp(header(&r, "Allow"), "POST"),
           "405: %d", r.status);
    reply_free(&r);
    r = http(port, "OPTIONS", "/v1/completions", NULL, NULL);
    CHECKF(r.status == 405, "OPTIONS without --cors: %d", r.status);
    reply_free(&r);
}

static void test_too_large(int port)
{
    /* Declared too large: answered from the headers, body never sent. */
    int fd = dial(port);
    const char *declared = "POST /v1/completions HTTP/1.1\r\nHost: t\r\n"
                           "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n";
    send_all(fd, declared, strlen(declared));
    reply r = read_reply(fd);
    CHECKF(r.status == 413 && strstr(r.body, "\"error\""), "413 declared: %d %s", r.status, r.body);
    reply_free(&r);
    /* Streamed (chunked) past the limit. */
    fd = dial(port);
    const char *h = "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
    send_all(fd, h, strlen(h));
    char *chunk = malloc(70 * 1024 + 32);
    int n = sprintf(chunk, "%x\r\n", 70 * 1024);
    memset(chunk + n, ' ', 70 * 1024);
    memcpy(chunk + n + 70 * 1024, "\r\n0\r\n\r\n", 7);
    send_all(fd, chunk, (size_t)n + 70 * 1024 + 7);
    free(chunk);
    r = read_reply(fd);
    CHECKF(r.status == 413, "413 chunked: %d", r.status);
    reply_free(&r);
}

static void test_auth_cors(void)
{
    herd_server *s = start(1, 128, 4, "sekret", "https://example.com");
    int port = herd_server_port(s);
    reply r = post(port, "/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 1}");
    CHECKF(r.status == 401 && strstr(r.body, "invalid_api_key"), "no key: %d", r.status);
    reply_free(&r);
    r = http(port, "POST", "/v1/completions", "Authorization: Bearer wrong\r\n",
             "{\"prompt\": \"x\", \"max_tokens\": 1}");
    CHECKF(r.status == 401, "wrong key: %d", r.status);
    reply_free(&r);
    r = http(port, "POST", "/v1/completions", "Authorization: Bearer sekret\r\n",
             "{\"prompt\": \"x\", \"max_tokens\": 1}");
    CHECKF(r.status == 200, "right key: %d %s", r.status, r.body);
    const char *o = header(&r, "Access-Control-Allow-Origin");
    CHECKF(o && !strcmp(o, "https://example.com"), "CORS origin: %s", o ? o : "(none)");
    reply_free(&r);
    r = http(port, "GET", "/health", NULL, NULL);
    CHECK(r.status == 200); /* health needs no key */
    reply_free(&r);
    r = http(port, "OPTIONS", "/v1/chat/completions", "Origin: https://example.com\r\n", NULL);
    CHECKF(r.status == 204 && header(&r, "Access-Control-Allow-Headers"), "preflight: %d",
           r.status);
    reply_free(&r);
    herd_server_stop(s);
}

/* The greedy continuation is `herd run --temp 0`'s; streamed text is the same. */
static void test_greedy_and_stream(int port)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "%s run -m ../shared/" MODEL " -p 'Once upon a time' -n 16 --temp 0 "
             "--no-display-prompt 2>/dev/null",
             test_herd_bin());
    int rc = test_run(cmd, &out, NULL);
    CHECKF(rc == 0 && out, "herd run: %d", rc);
    size_t n = out ? strlen(out) : 0;
    if (n && out[n - 1] == '\n') out[--n] = 0;
    char *want = calloc(1, 3 * n + 1);
    if (out) herd_utf8_repair(out, n, want);
    const char *req =
        "{\"prompt\": \"Once upon a time\", \"max_tokens\": 16, \"temperature\": 0%s}";
    char body[256];
    snprintf(body, sizeof body, req, "");
    json_t *whole;
    char *got = complete(port, "/v1/completions", body, &whole);
    CHECKF(!strcmp(got, want), "greedy: got [%s] want [%s]", got, want);
    json_t *usage = json_object_get(whole, "usage"), *tm = json_object_get(whole, "timings");
    CHECK(json_integer_value(json_object_get(usage, "completion_tokens")) == 16);
    CHECK(json_integer_value(json_object_get(usage, "prompt_tokens")) == 5);
    CHECK(json_is_number(json_object_get(tm, "predicted_per_second")));
    CHECK(json_integer_value(json_object_get(json_object_get(whole, "context"), "used")) == 21);
    CHECK(!strcmp(json_string_value(json_object_get(
                      json_array_get(json_object_get(whole, "choices"), 0), "finish_reason")),
                  "length"));
    json_decref(whole);
    snprintf(body, sizeof body, req,
             ", \"stream\": true, \"stream_options\": {\"include_usage\": true}");
    reply r = post(port, "/v1/completions", body);
    json_t *ev;
    bool done;
    char *streamed = sse_text(&r, &ev, &done);
    CHECKF(r.status == 200 && !strcmp(streamed, want), "stream: [%s] want [%s]", streamed, want);
    CHECK(done && header(&r, "Content-Type") &&
          strstr(header(&r, "Content-Type"), "text/event-stream"));
    size_t ne = json_array_size(ev);
    json_t *last = json_array_get(ev, ne - 1), *fin = json_array_get(ev, ne - 2);
    CHECKF(json_array_size(json_object_get(last, "choices")) == 0 &&
               json_integer_value(
                   json_object_get(json_object_get(last, "usage"), "completion_tokens")) == 16,
           "usage chunk");
    CHECK(!strcmp(json_string_value(json_object_get(
                      json_array_get(json_object_get(fin, "choices"), 0), "finish_reason"))
                      ?: "",
                  "length"));
    json_decref(ev);
    free(streamed);
    reply_free(&r);
    free(got);
    free(want);
    free(out);
}

/* Stop strings cut the text (streamed or not) before them; logit_bias steers. */
static void test_stop_and_bias(int port)
{
    const char *req =
        "{\"prompt\": \"Once upon a time\", \"max_tokens\": 16, \"temperature\": 0%s}";
    char body[512];
    snprintf(body, sizeof body, req, "");
    char *full = complete(port, "/v1/completions", body, NULL);
    /* A stop string from the middle of the greedy text: its first 3-letter run. */
    char stop[8] = "";
    for (size_t i = 3; full[i] && !stop[0]; i++)
        if (isalpha((unsigned char)full[i]) && isalpha((unsigned char)full[i + 1]) &&
            isalpha((unsigned char)full[i + 2]))
            memcpy(stop, full + i, 3);
    CHECKF(stop[0], "no stop candidate in [%s]", full);
    if (stop[0]) {
        size_t cut = (size_t)(strstr(full, stop) - full);
        char with[128];
        snprintf(with, sizeof with, ", \"stop\": [\"zzzz\", \"%s\"]", stop);
        snprintf(body, sizeof body, req, with);
        json_t *j;
        char *got = complete(port, "/v1/completions", body, &j);
        CHECKF(strlen(got) == cut && !strncmp(got, full, cut), "stop [%s]: [%s] of [%s]", stop, got,
               full);
        const char *fr = json_string_value(
            json_object_get(json_array_get(json_object_get(j, "choices"), 0), "finish_reason"));
        CHECK(fr && !strcmp(fr, "stop"));
        json_decref(j);
        snprintf(with, sizeof with, ", \"stop\": \"%s\", \"stream\": true", stop);
        snprintf(body, sizeof body, req, with);
        reply r = post(port, "/v1/completions", body);
        json_t *ev;
        bool done;
        char *streamed = sse_text(&r, &ev, &done);
        CHECKF(!strcmp(streamed, got) && done, "stop streamed [%s] vs [%s]", streamed, got);
        json_decref(ev);
        free(streamed);
        reply_free(&r);
        free(got);
    }
    free(full);
    char *t = complete(port, "/v1/completions",
                       "{\"prompt\": \"x\", \"max_tokens\": 3, \"temperature\": 0, "
                       "\"logit_bias\": {\"3186\": 100}}",
                       NULL);
    CHECKF(!strcmp(t, " world world world"), "logit_bias: [%s]", t);
    free(t);
    /* A penalty on what was generated keeps the biased token from repeating. */
    t = complete(
        port, "/v1/completions",
        "{\"prompt\": \"x\", \"max_tokens\": 2, \"temperature\": 0, "
        "\"logit_bias\": {\"3186\": 3}, \"presence_penalty\": 2, \"frequency_penalty\": 2}",
        NULL);
    CHECKF(!strncmp(t, " world", 6) && strncmp(t, " world world", 12), "penalties: [%s]", t);
    free(t);
}

static void test_chat_stream(int port)
{
    const char *req =
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, "
        "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}]}], "
        "\"max_tokens\": 12, \"temperature\": 0, \"logprobs\": true, \"top_logprobs\": 2%s}";
    char body[512];
    snprintf(body, sizeof body, req, "");
    json_t *whole;
    char *got = complete(port, "/v1/chat/completions", body, &whole);
    json_t *c = json_array_get(json_object_get(whole, "choices"), 0);
    json_t *lp = json_object_get(json_object_get(c, "logprobs"), "content");
    CHECKF(json_array_size(lp) == 12, "chat logprobs: %zu", json_array_size(lp));
    CHECK(json_array_size(json_object_get(json_array_get(lp, 0), "top_logprobs")) == 2);
    CHECK(!strcmp(json_string_value(json_object_get(whole, "object")), "chat.completion"));
    json_decref(whole);
    snprintf(body, sizeof body, req, ", \"stream\": true");
    reply r = post(port, "/v1/chat/completions", body);
    json_t *ev;
    bool done;
    char *streamed = sse_text(&r, &ev, &done);
    CHECKF(!strcmp(streamed, got) && done, "chat stream [%s] vs [%s]", streamed, got);
    json_t *first = json_array_get(json_object_get(json_array_get(ev, 0), "choices"), 0);
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(first, "delta"), "role")) ?: "",
                  "assistant"));
    json_decref(ev);
    free(streamed);
    reply_free(&r);
    free(got);
}

/* echo + logprobs: prompt log-probabilities as lm-evaluation-harness reads them. */
static void test_echo_logprobs(int port)
{
    const char *text = "The quick brown fox jumps over the lazy dog";
    int32_t ids[64];
    int n = 0;
    herd_tokenize(model, text, strlen(text), true, true, ids, 64, &n);
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = 64;
    herd_ctx *ctx;
    CHECK(herd_ctx_new(model, &cp, &ctx) == HERD_OK);
    int32_t pos[64];
    int8_t want[64];
    for (int i = 0; i < n; i++) pos[i] = i, want[i] = 1;
    herd_batch b = {.n_tokens = n, .token = ids, .pos = pos, .logits = want};
    CHECK(herd_decode(ctx, &b) == HERD_OK);
    char body[256];
    snprintf(body, sizeof body,
             "{\"prompt\": \"%s\", \"max_tokens\": 0, \"echo\": true, \"logprobs\": 3, "
             "\"temperature\": 0}",
             text);
    json_t *j;
    char *got = complete(port, "/v1/completions", body, &j);
    CHECKF(!strcmp(got, text), "echo text [%s]", got);
    json_t *lp = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "logprobs");
    json_t *tl = json_object_get(lp, "token_logprobs"), *top = json_object_get(lp, "top_logprobs");
    CHECKF((int)json_array_size(tl) == n &&
               json_array_size(json_object_get(lp, "tokens")) == (size_t)n &&
               json_array_size(json_object_get(lp, "text_offset")) == (size_t)n,
           "echo shape: %zu of %d", json_array_size(tl), n);
    CHECK(json_is_null(json_array_get(tl, 0)) && json_is_null(json_array_get(top, 0)));
    int nv = herd_n_vocab(model);
    for (int i = 1; i < n && i < (int)json_array_size(tl); i++) {
        const float *l = herd_get_logits(ctx, i - 1);
        double mx = l[0], s = 0;
        for (int v = 1; v < nv; v++) mx = l[v] > mx ? l[v] : mx;
        for (int v = 0; v < nv; v++) s += exp(l[v] - mx);
        double ref = l[ids[i]] - mx - log(s), best = -mx - log(s) + mx;
        double got_lp = json_number_value(json_array_get(tl, (size_t)i));
        CHECKF(fabs(got_lp - ref) < 1e-3, "logprob %d: %f vs %f", i, got_lp, ref);
        json_t *d = json_array_get(top, (size_t)i), *v;
        const char *k;
        double top_max = -1e30;
        CHECK(json_object_size(d) == 3);
        json_object_foreach(d, k, v) top_max = fmax(top_max, json_number_value(v));
        CHECKF(fabs(top_max - best) < 1e-3, "top logprob %d: %f vs %f", i, top_max, best);
    }
    double last_lp = json_number_value(json_array_get(tl, (size_t)n - 1));
    json_decref(j);
    free(got);
    /* With max_tokens 1 the generated token follows the prompt's entries. */
    snprintf(body, sizeof body,
             "{\"prompt\": \"%s\", \"max_tokens\": 1, \"echo\": true, \"logprobs\": 1, "
             "\"temperature\": 0}",
             text);
    got = complete(port, "/v1/completions", body, &j);
    lp = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "logprobs");
    CHECK(json_array_size(json_object_get(lp, "token_logprobs")) == (size_t)n + 1);
    json_decref(j);
    free(got);
    /* lm-evaluation-harness's local-completions shape: a batch of token-id
     * prompts, one choice each, the same numbers as the text prompt. */
    char ids_json[512] = "";
    for (int i = 0; i < n; i++) sprintf(ids_json + strlen(ids_json), "%s%d", i ? ", " : "", ids[i]);
    char batch[1400];
    snprintf(batch, sizeof batch,
             "{\"prompt\": [[%s], [%s, 13]], \"max_tokens\": 1, \"echo\": true, \"logprobs\": 1, "
             "\"temperature\": 0, \"seed\": 1234}",
             ids_json, ids_json);
    free(complete(port, "/v1/completions", batch, &j));
    json_t *ch = json_object_get(j, "choices");
    CHECKF(json_array_size(ch) == 2, "batch choices: %zu", json_array_size(ch));
    for (size_t c = 0; c < json_array_size(ch) && c < 2; c++) {
        json_t *cl =
            json_object_get(json_object_get(json_array_get(ch, c), "logprobs"), "token_logprobs");
        CHECK(json_integer_value(json_object_get(json_array_get(ch, c), "index")) == (json_int_t)c);
        CHECK(json_array_size(cl) == (size_t)n + 1 + c);
        CHECKF(fabs(json_number_value(json_array_get(cl, (size_t)n - 1)) - last_lp) < 1e-4,
               "batch lp");
    }
    json_decref(j);
    herd_ctx_free(ctx);
}

static json_int_t timing(json_t *j, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(j, "timings"), k));
}

/* A prompt extending a slot's cached tokens computes only the new ones. */
static void test_prefix_reuse(int port)
{
    char a[512] = "{\"prompt\": [1", b[1024];
    for (int i = 0; i < 40; i++) sprintf(a + strlen(a), ", %d", 300 + 7 * i);
    snprintf(b, sizeof b, "%s, 901, 902, 903, 904, 905], \"max_tokens\": 4, \"temperature\": 0}",
             a);
    strcat(a, "], \"max_tokens\": 4, \"temperature\": 0}");
    json_t *j;
    free(complete(port, "/v1/completions", a, &j));
    json_decref(j);
    char *warm = complete(port, "/v1/completions", b, &j);
    CHECKF(timing(j, "cache_n") == 41 && timing(j, "prompt_n") == 5,
           "reuse: cache_n %lld prompt_n %lld", (long long)timing(j, "cache_n"),
           (long long)timing(j, "prompt_n"));
    CHECK(json_integer_value(
              json_object_get(json_object_get(json_object_get(j, "usage"), "prompt_tokens_details"),
                              "cached_tokens")) == 41);
    json_decref(j);
    /* The same prompt again: all but the last token are reused. */
    char *again = complete(port, "/v1/completions", b, &j);
    CHECK(timing(j, "cache_n") == 45 && timing(j, "prompt_n") == 1);
    CHECKF(!strcmp(warm, again), "same prompt, same text: [%s] [%s]", warm, again);
    json_decref(j);
    /* Echo with logprobs recomputes everything: the same text cold. */
    char cold_req[1100];
    snprintf(cold_req, sizeof cold_req, "%.*s, \"logprobs\": 0, \"echo\": true}",
             (int)strlen(b) - 1, b);
    char *cold = complete(port, "/v1/completions", cold_req, &j);
    CHECK(timing(j, "cache_n") == 0);
    const char *tail = cold + strlen(cold) - strlen(warm);
    CHECKF(strlen(cold) >= strlen(warm) && !strcmp(tail, warm), "cold [%s] warm [%s]", cold, warm);
    json_decref(j);
    free(cold);
    free(warm);
    free(again);
}

typedef struct par_arg {
    int port;
    char *text;
} par_arg;

static void *par_worker(void *p)
{
    par_arg *a = p;
    a->text = complete(
        a->port, "/v1/completions",
        "{\"prompt\": \"In a hole in the ground\", \"max_tokens\": 24, \"temperature\": 0}", NULL);
    return NULL;
}

/* Four requests on two slots at once: each the same as alone. */
static void test_parallel(int port)
{
    char *alone = complete(port, "/v1/completions",
                           "{\"prompt\": \"In a hole in the ground\", \"max_tokens\": 24, "
                           "\"temperature\": 0}",
                           NULL);
    pthread_t t[4];
    par_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (par_arg){port, NULL};
        pthread_create(&t[i], NULL, par_worker, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECKF(a[i].text && !strcmp(a[i].text, alone), "parallel %d: [%s] vs [%s]", i, a[i].text,
               alone);
        free(a[i].text);
    }
    free(alone);
}

/* A client that goes away mid-stream frees its slot at once. */
static void test_disconnect(herd_server *s, int port)
{
    herd_server_stats before, after;
    herd_server_get_stats(s, &before);
    int fd = dial(port);
    send_request(fd, "POST", "/v1/completions", NULL,
                 "{\"prompt\": \"x\", \"max_tokens\": 250, \"stream\": true}");
    char buf[4096];
    ssize_t k = recv(fd, buf, sizeof buf - 1, 0);
    CHECK(k > 0);
    herd_server_pause(s, true); /* the job cannot finish on its own now */
    close(fd);
    usleep(300000);
    herd_server_pause(s, false);
    wait_for(s, 0, 0);
    herd_server_get_stats(s, &after);
    CHECKF(after.jobs_cancelled == before.jobs_cancelled + 1, "cancelled %llu -> %llu",
           (unsigned long long)before.jobs_cancelled, (unsigned long long)after.jobs_cancelled);
    CHECK(after.generated_tokens - before.generated_tokens < 250);
    /* A non-streaming client that leaves while queued never gets a slot. */
    herd_server_pause(s, true);
    fd = dial(port);
    send_request(fd, "POST", "/v1/completions", NULL, "{\"prompt\": \"x\", \"max_tokens\": 200}");
    wait_for(s, 0, 1);
    close(fd);
    usleep(300000);
    herd_server_pause(s, false);
    wait_for(s, 0, 0);
    herd_server_get_stats(s, &before);
    CHECK(before.jobs_cancelled == after.jobs_cancelled + 1);
}

/* Past the slots and the queue: 503, and the queued requests still finish. */
static void test_queue_full(void)
{
    herd_server *s = start(1, 128, 1, NULL, NULL);
    int port = herd_server_port(s);
    herd_server_pause(s, true);
    const char *req = "{\"prompt\": \"x\", \"max_tokens\": 3, \"stream\": true}";
    int fd1 = dial(port), fd2;
    send_request(fd1, "POST", "/v1/completions", NULL, req);
    wait_for(s, 0, 1);
    fd2 = dial(port);
    send_request(fd2, "POST", "/v1/completions", NULL, req);
    wait_for(s, 0, 2);
    reply r = post(port, "/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 3}");
    json_t *j = body_json(&r);
    CHECKF(r.status == 503 && json_object_get(j, "error") && header(&r, "Retry-After"),
           "503: %d %s", r.status, r.body);
    json_decref(j);
    reply_free(&r);
    herd_server_pause(s, false);
    for (int i = 0; i < 2; i++) {
        r = read_reply(i ? fd2 : fd1);
        CHECKF(r.status == 200 && strstr(r.body, "data: [DONE]"), "queued %d: %d", i, r.status);
        reply_free(&r);
    }
    herd_server_stop(s);
}

typedef struct load_arg {
    int port, id, ok, failed;
    double until;
} load_arg;

/* One smoke-load client: streamed requests until the deadline, every third
 * one hung up after its first event; client 0 sends malformed requests. */
static void *load_worker(void *p)
{
    load_arg *a = p;
    for (int k = 0; herd_time() < a->until; k++) {
        if (a->id == 0) {
            reply r = post(a->port, "/v1/completions",
                           k % 2 ? "{\"prompt\": [" : "{\"prompt\": \"x\", \"n\": 9}");
            r.status == 400 ? a->ok++ : a->failed++;
            reply_free(&r);
            continue;
        }
        int fd = dial(a->port);
        char body[200];
        snprintf(body, sizeof body,
                 "{\"prompt\": \"Shared prefix, then %d.%d\", \"max_tokens\": 8, \"seed\": %d, "
                 "\"stream\": true, \"stream_options\": {\"include_usage\": true}}",
                 a->id, k, k);
        send_request(fd, "POST", "/v1/completions", NULL, body);
        if (k % 3 == 2) { /* hang up after the first event */
            char buf[4096];
            size_t n = 0;
            ssize_t got;
            while (n < sizeof buf - 1 && (got = recv(fd, buf + n, sizeof buf - 1 - n, 0)) > 0) {
                buf[n += (size_t)got] = 0;
                if (strstr(buf, "data: ")) break;
            }
            if (!strstr(buf, "data: ") && a->failed++ == 0)
                fprintf(stderr, "smoke client %d: %.100s\n", a->id, n ? buf : "(nothing)");
            close(fd);
            continue;
        }
        reply r = read_reply(fd);
        bool good = r.status == 200 && r.body && strstr(r.body, "\"completion_tokens\":8") &&
                    strstr(r.body, "data: [DONE]\n\n");
        if (good)
            a->ok++;
        else if (a->failed++ == 0)
            fprintf(stderr, "smoke client %d: %d %.200s\n", a->id, r.status, r.body ? r.body : "");
        reply_free(&r);
    }
    return NULL;
}

/* A few seconds of what bench/server-load does for a minute: 16 streaming
 * clients on 2 slots, malformed requests, hang-ups. Nothing valid fails and
 * every slot is free afterwards. */
static void test_load_smoke(void)
{
    herd_server *s = start(2, 512, 16, NULL, NULL); /* room to queue every client */
    int port = herd_server_port(s);
    enum { N = 16 };
    pthread_t t[N];
    load_arg a[N];
    double until = herd_time() + 2.0;
    for (int i = 0; i < N; i++) {
        a[i] = (load_arg){port, i, 0, 0, until};
        pthread_create(&t[i], NULL, load_worker, &a[i]);
    }
    int ok = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ok += a[i].ok;
        failed += a[i].failed;
    }
    CHECKF(failed == 0 && ok > N, "smoke load: %d ok, %d failed", ok, failed);
    wait_for(s, 0, 0);
    herd_server_stop(s);
}

int main(void)
{
    char path[256];
    if (!test_shared(MODEL, path, sizeof path)) return test_report();
    signal(SIGPIPE, SIG_IGN);
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = 2;
    if (herd_model_load(path, &mp, &model)) {
        fprintf(stderr, "load: %s\n", herd_errmsg());
        return 1;
    }
    herd_server *s = start(2, 512, 8, NULL, NULL);
    if (s) {
        int port = herd_server_port(s);
        test_small_endpoints(port);
        test_errors(port);
        test_too_large(port);
        test_greedy_and_stream(port);
        test_stop_and_bias(port);
        test_chat_stream(port);
        test_echo_logprobs(port);
        test_prefix_reuse(port);
        test_parallel(port);
        test_disconnect(s, port);
        herd_server_stop(s);
    }
    test_auth_cors();
    test_queue_full();
    test_load_smoke();
    herd_model_free(model);
    return test_report();
}
