/*
 * fuzz_server.c — libFuzzer target for the server's request decoding: a
 * request body through the code the routes run before any job is queued.
 *
 * The first input byte picks the route, the rest is the body:
 *   0  /v1/completions       herd_api_parse_body, herd_api_parse_completion, then each
 *                            prompt through herd_prompt_from_json and herd_prompt_fits
 *                            (herd_route_completions' steps up to run());
 *   1  /v1/chat/completions  herd_api_parse_body, herd_api_parse_chat, herd_prompt_from_chat
 *                            and herd_prompt_fits (herd_route_chat's steps up to run());
 *   2  /tokenize, 3 /detokenize, 4 /apply-template: the route handlers
 *                            themselves, which answer without a job.
 * Bit 3 of the first byte renders chat with a Jinja template (tools and
 * chat_template_kwargs reach it) instead of the model's built-in format.
 *
 * The model is the shipped default, models/kjv-llama-q8_0.gguf (run from the
 * project root, or set HERD_FUZZ_MODEL); only its vocabulary is used.
 * Built and run by `make fuzz` from the seeds in tests/fuzz/corpus/server.
 *
 * Properties checked, beyond "no crash, no bad read, no leak": a refused
 * request is a 4xx with a message (a 5xx only for out of memory), an
 * accepted one has prompt ids inside the vocabulary.
 */
#include "chat/chat.h"
#include "server/server_impl.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static herd_server named, jinja;

/* A ChatML template that also reads tools and a kwarg, as real ones do. */
static const char *const tmpl_src =
    "{% if tools %}<|im_start|>system\n{{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think></think>{% endif %}"
    "{% endif %}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *path = getenv("HERD_FUZZ_MODEL");
    if (!path) path = "models/kjv-llama-q8_0.gguf";
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = 1;
    mp.mmap = true;
    herd_model *m = NULL;
    if (herd_model_load(path, &mp, &m) || (named.model = jinja.model = m, 0) ||
        herd_chat_setup(&named, NULL) || herd_chat_setup(&jinja, tmpl_src)) {
        fprintf(stderr, "fuzz_server: %s: %s\n", path, herd_errmsg());
        exit(1);
    }
    return 0;
}

static void check_error(const api_error *e)
{
    if (e->status < 400 || e->status > 500 || !e->message[0]) abort();
}

static void check_prompt(const srv_prompt *p)
{
    for (int i = 0; i < p->n; i++)
        if (p->ids[i] < 0 || p->ids[i] >= herd_n_vocab(named.model)) abort();
}

enum { N_CTX = 512 }; /* a slot's context, as `herd serve -c 512` */

static void completions(const char *body, size_t len)
{
    api_error e;
    api_request req;
    json_t *o = herd_api_parse_body(body, len, &e);
    if (!o) return check_error(&e);
    bool ok = herd_api_parse_completion(o, herd_n_vocab(named.model), &req, &e);
    json_decref(o);
    /* As in the routes: req is freed whether or not it parsed. */
    for (size_t i = 0; ok && i < json_array_size(req.prompts); i++) {
        srv_prompt p;
        ok = herd_prompt_from_json(named.model, json_array_get(req.prompts, i), &p, &e) &&
             herd_prompt_fits(p.n, req.gen.max_tokens, N_CTX, &e);
        if (ok) check_prompt(&p);
        herd_prompt_free(&p);
    }
    if (!ok) check_error(&e);
    herd_api_request_free(&req);
}

static void chat(herd_server *srv, const char *body, size_t len)
{
    api_error e;
    api_request req;
    json_t *o = herd_api_parse_body(body, len, &e);
    if (!o) return check_error(&e);
    bool ok = herd_api_parse_chat(o, herd_n_vocab(srv->model), &req, &e);
    json_decref(o);
    srv_prompt p = {0};
    ok = ok && herd_prompt_from_chat(srv, req.messages, req.extra, &p, NULL, &e) &&
         herd_prompt_fits(p.n, req.gen.max_tokens, N_CTX, &e);
    if (ok)
        check_prompt(&p);
    else
        check_error(&e);
    herd_prompt_free(&p);
    herd_api_request_free(&req);
}

static void route(http_reply (*handler)(http_req *), herd_server *srv, const char *body, size_t len)
{
    http_req r = {.srv = srv, .fd = -1, .body = body, .len = len};
    http_reply rep = handler(&r);
    if (rep.status < 200 || rep.status > 500 || !rep.resp) abort();
    MHD_destroy_response(rep.resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    herd_server *srv = data[0] & 8 ? &jinja : &named;
    /* The body as libmicrohttpd hands it over: its bytes, not a C string. */
    char *body = malloc(size);
    if (!body) return 0;
    memcpy(body, data + 1, size - 1);
    const size_t len = size - 1;
    switch (data[0] % 8 % 5) {
    case 0:
        completions(body, len);
        break;
    case 1:
        chat(srv, body, len);
        break;
    case 2:
        route(herd_route_tokenize, srv, body, len);
        break;
    case 3:
        route(herd_route_detokenize, srv, body, len);
        break;
    default:
        route(herd_route_apply_template, srv, body, len);
        break;
    }
    free(body);
    return 0;
}
