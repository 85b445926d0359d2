/*
 * routes.c — the endpoints. Each takes a request (body complete) and returns
 * a reply; the generation endpoints turn their prompts into jobs, submit
 * them to the scheduler, and either return a wait (http.c parks the
 * connection until every job is done; a client that leaves meanwhile has
 * its jobs cancelled by the watcher) or hand the job to a streamed response
 * (stream.c).
 */
#include "model/model.h"
#include "server/server_impl.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

static http_reply fail(int status, const char *param, const char *msg)
{
    api_error e;
    herd_api_fail(&e, status, param, "%s", msg);
    return herd_http_error(&e);
}

/* 200 when a request sent now would be taken; 503 while loading, while
 * draining, and when every slot is busy and the queue is full, so that a
 * balancer sends the request elsewhere. */
http_reply herd_route_health(http_req *r)
{
    herd_server *s = r->srv;
    herd_server_stats st;
    herd_server_get_stats(s, &st);
    bool full = st.slots_busy + st.queue_depth >= st.n_slots + s->p.queue_max;
    const char *status = !herd_srv_loaded(s) ? "loading"
                         : !st.ready         ? "draining"
                         : full              ? "busy"
                                             : "ok";
    json_t *j =
        json_pack("{s:s,s:i,s:i,s:i}", "status", status, "slots_idle", st.n_slots - st.slots_busy,
                  "slots_processing", st.slots_busy, "queue_depth", st.queue_depth);
    http_reply rep = herd_http_json(strcmp(status, "ok") ? 503 : 200, j);
    if (rep.resp && rep.status == 503) MHD_add_response_header(rep.resp, "Retry-After", "1");
    return rep;
}

http_reply herd_route_models(http_req *r)
{
    herd_server *s = r->srv;
    herd_model_info mi;
    herd_model_get_info(s->model, &mi);
    json_t *meta =
        json_pack("{s:i,s:i,s:i,s:i,s:I,s:I,s:s}", "n_ctx", herd_sched_n_ctx_slot(s->sched),
                  "n_parallel", s->p.n_parallel, "n_ctx_train", mi.n_ctx_train, "n_vocab",
                  mi.n_vocab, "n_params", (json_int_t)mi.n_params, "size",
                  (json_int_t)mi.tensor_bytes, "file_type", mi.file_type ? mi.file_type : "");
    json_t *m = json_pack("{s:s,s:s,s:I,s:s,s:o}", "id", s->model_id, "object", "model", "created",
                          (json_int_t)s->created, "owned_by", "herd", "meta", meta);
    return herd_http_json(200, json_pack("{s:s,s:[o]}", "object", "list", "data", m));
}

http_reply herd_route_metrics(http_req *r)
{
    herd_server_stats st;
    herd_server_get_stats(r->srv, &st);
    return herd_http_text(200, "text/plain; version=0.0.4; charset=utf-8",
                          herd_metrics_render(&r->srv->metrics, &st));
}

/* ---------------------------------------------------------------- tokens */

static bool opt_bool(const json_t *o, const char *key, bool dflt, bool *out, api_error *e)
{
    json_t *v = json_object_get(o, key);
    *out = dflt;
    if (!v || json_is_null(v)) return true;
    if (!json_is_boolean(v)) return herd_api_fail(e, 400, key, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return true;
}

http_reply herd_route_tokenize(http_req *r)
{
    api_error e;
    const herd_model *m = r->srv->model;
    json_t *o = herd_api_parse_body(r->body, r->len, &e), *content = json_object_get(o, "content");
    bool add_special, parse_special, pieces;
    http_reply rep;
    if (!o) return herd_http_error(&e);
    if (!json_is_string(content)) {
        json_decref(o);
        return fail(400, "content", "'content' must be a string");
    }
    if (!opt_bool(o, "add_special", false, &add_special, &e) ||
        !opt_bool(o, "parse_special", true, &parse_special, &e) ||
        !opt_bool(o, "with_pieces", false, &pieces, &e)) {
        json_decref(o);
        return herd_http_error(&e);
    }
    const char *text = json_string_value(content);
    size_t len = json_string_length(content);
    bool bos = add_special && herd_add_bos(m);
    int need = 0, n = 0;
    herd_status st = herd_tokenize(m, text, len, bos, parse_special, NULL, 0, &need);
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    if (!ids || (st && need == 0) ||
        herd_tokenize(m, text, len, bos, parse_special, ids, need + 1, &n))
        rep = fail(400, "content", herd_errmsg());
    else {
        json_t *toks = json_array();
        for (int i = 0; i < n; i++) {
            if (!pieces) {
                json_array_append_new(toks, json_integer(ids[i]));
                continue;
            }
            size_t k;
            char *p = herd_reply_piece(m, ids[i], true, &k);
            json_array_append_new(toks, json_pack("{s:i,s:o}", "id", ids[i], "piece",
                                                  herd_reply_string(p ? p : "", p ? k : 0)));
            free(p);
        }
        rep = herd_http_json(200, json_pack("{s:o}", "tokens", toks));
    }
    free(ids);
    json_decref(o);
    return rep;
}

http_reply herd_route_detokenize(http_req *r)
{
    api_error e;
    const herd_model *m = r->srv->model;
    json_t *o = herd_api_parse_body(r->body, r->len, &e), *toks = json_object_get(o, "tokens");
    if (!o) return herd_http_error(&e);
    size_t n = json_array_size(toks);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    http_reply rep = {0, NULL, NULL};
    if (!json_is_array(toks)) rep = fail(400, "tokens", "'tokens' must be an array of token ids");
    for (size_t i = 0; ids && !rep.status && i < n; i++) {
        json_t *v = json_array_get(toks, i);
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id >= herd_n_vocab(m))
            rep = fail(400, "tokens", "'tokens' must hold token ids of this model's vocabulary");
        ids[i] = (int32_t)id;
    }
    size_t len = 0;
    char *text = ids && !rep.status ? herd_prompt_ids_text(m, ids, (int)n, &len) : NULL;
    if (!rep.status)
        rep = text
                  ? herd_http_json(200, json_pack("{s:o}", "content", herd_reply_string(text, len)))
                  : fail(500, NULL, "out of memory");
    free(text);
    free(ids);
    json_decref(o);
    return rep;
}

http_reply herd_route_apply_template(http_req *r)
{
    api_error e;
    api_request req;
    json_t *o = herd_api_parse_body(r->body, r->len, &e);
    if (!o) return herd_http_error(&e);
    bool ok = herd_api_parse_chat(o, herd_n_vocab(r->srv->model), &req, &e);
    json_decref(o);
    http_reply rep;
    char *text = NULL;
    size_t len = 0;
    bool raised;
    if (!ok)
        rep = herd_http_error(&e);
    else if (herd_i_chat_render(r->srv, req.messages, req.extra, &text, &len, &raised))
        rep = herd_render_stopped(r->srv, &e) ? herd_http_error(&e)
                                              : fail(400, "messages", herd_errmsg());
    else
        rep = herd_http_json(200, json_pack("{s:o}", "prompt", herd_reply_string(text, len)));
    free(text);
    herd_api_request_free(&req);
    return rep;
}

/* ---------------------------------------------------------------- generation */

static http_reply finished(const reply_ctx *rc, srv_job **jobs, int n, char **echo)
{
    for (int i = 0; i < n; i++)
        if (jobs[i]->finish == SRV_FINISH_ERROR) {
            bool closing = strstr(jobs[i]->error, "shutting down") != NULL;
            return fail(closing ? 503 : 500, NULL, jobs[i]->error);
        }
    return herd_http_json(200, herd_reply_full(rc, jobs, n, echo));
}

/* A non-streamed request waiting for its jobs (parked by http.c). */
typedef struct pending {
    srv_wait w; /* first: the wait is the pending */
    herd_server *srv;
    srv_job **jobs;
    char **echo;
    int n;
    reply_ctx rc;
    api_request req;
    srv_prompt *p;
} pending;

static http_reply pending_finish(srv_wait *w)
{
    pending *pd = (pending *)w;
    return finished(&pd->rc, pd->jobs, pd->n, pd->echo);
}

static void pending_free(srv_wait *w)
{
    pending *pd = (pending *)w;
    for (int i = 0; i < pd->n; i++) {
        herd_sched_cancel(pd->srv->sched, pd->jobs[i]); /* a no-op once done */
        herd_sched_release(pd->srv->sched, pd->jobs[i]);
        herd_prompt_free(&pd->p[i]);
    }
    free(pd->jobs);
    free(pd->echo);
    free(pd->p);
    herd_api_request_free(&pd->req);
    free(pd);
}

/* Hand the submitted jobs to a wait; takes over everything. */
static http_reply wait_for_jobs(herd_server *s, api_request *req, srv_prompt *p, srv_job **jobs,
                                char **echo, int n, const reply_ctx *rc)
{
    pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        for (int i = 0; i < n; i++) herd_sched_cancel(s->sched, jobs[i]);
        return fail(500, NULL, "out of memory");
    }
    *pd = (pending){.w = {.finish = pending_finish, .free = pending_free},
                    .srv = s,
                    .jobs = jobs,
                    .echo = echo,
                    .n = n,
                    .rc = *rc,
                    .req = *req,
                    .p = p};
    pd->w.park.jobs = jobs;
    pd->w.park.n_jobs = n;
    return (http_reply){0, NULL, &pd->w};
}

/* Submit the prompts as jobs; stream or wait. Takes over req and prompts. */
static http_reply run(http_req *r, api_request *req, srv_prompt *p, int n)
{
    herd_server *s = r->srv;
    srv_job **jobs = calloc((size_t)n, sizeof *jobs);
    char **echo = calloc((size_t)n, sizeof *echo);
    http_reply rep = {0, NULL, NULL};
    reply_ctx rc;
    herd_reply_ctx_init(&rc, s, req->kind);
    int made = 0;
    while (jobs && echo && made < n &&
           (jobs[made] = herd_job_new(p[made].ids, p[made].n, &req->gen))) {
        echo[made] = req->echo ? p[made].text : NULL;
        made++;
    }
    sched_result sr = made == n ? herd_sched_submit(s->sched, jobs, n) : SCHED_FULL;
    if (made < n)
        rep = fail(500, NULL, "out of memory");
    else if (sr != SCHED_OK) {
        api_error e;
        herd_api_fail(&e, 503, NULL, "%s",
                      sr == SCHED_FULL
                          ? "the server is busy (every slot and queue place is taken); "
                            "retry later"
                          : "the server is shutting down");
        e.code = "server_busy";
        rep = herd_http_error(&e);
    } else if (req->stream) {
        /* The stream owns the request, the job and the echo text now. */
        rep = herd_stream_start(r, req, jobs[0], echo[0], &rc);
        jobs[0] = NULL;
        if (echo[0]) p[0].text = echo[0] = NULL;
    } else {
        rep = wait_for_jobs(s, req, p, jobs, echo, n, &rc);
        if (rep.wait) return rep; /* the wait owns the rest */
    }
    for (int i = 0; i < made; i++) herd_sched_release(s->sched, jobs[i]);
    free(jobs);
    free(echo);
    herd_api_request_free(req);
    for (int i = 0; i < n; i++) herd_prompt_free(&p[i]);
    free(p);
    return rep;
}

http_reply herd_route_completions(http_req *r)
{
    herd_server *s = r->srv;
    api_error e;
    api_request req;
    json_t *o = herd_api_parse_body(r->body, r->len, &e);
    if (!o) return herd_http_error(&e);
    bool ok = herd_api_parse_completion(o, herd_n_vocab(s->model), &req, &e);
    json_decref(o);
    int n = ok ? (int)json_array_size(req.prompts) : 0;
    if (ok && req.stream && n > 1)
        ok = herd_api_fail(&e, 400, "prompt", "streaming takes one prompt, not %d", n);
    if (ok && n > herd_sched_capacity(s->sched))
        ok = herd_api_fail(&e, 400, "prompt", "%d prompts in one request; the limit is %d", n,
                           herd_sched_capacity(s->sched));
    srv_prompt *p = ok ? calloc((size_t)n, sizeof *p) : NULL;
    if (ok && !p) ok = herd_api_fail(&e, 500, NULL, "out of memory");
    for (int i = 0; ok && i < n; i++)
        ok = herd_prompt_from_json(s->model, json_array_get(req.prompts, (size_t)i), &p[i], &e) &&
             herd_prompt_fits(p[i].n, req.gen.max_tokens, herd_sched_n_ctx_slot(s->sched), &e);
    if (ok) return run(r, &req, p, n);
    for (int i = 0; p && i < n; i++) herd_prompt_free(&p[i]);
    free(p);
    herd_api_request_free(&req);
    return herd_http_error(&e);
}

http_reply herd_route_chat(http_req *r)
{
    herd_server *s = r->srv;
    api_error e;
    api_request req;
    json_t *o = herd_api_parse_body(r->body, r->len, &e);
    if (!o) return herd_http_error(&e);
    bool ok = herd_api_parse_chat(o, herd_n_vocab(s->model), &req, &e);
    json_decref(o);
    srv_prompt *p = ok ? calloc(1, sizeof *p) : NULL;
    if (ok && !p) ok = herd_api_fail(&e, 500, NULL, "out of memory");
    ok = ok && herd_tools_prepare(s, &req, &e) &&
         herd_prompt_from_chat(s, req.messages, req.extra, p, NULL, &e) &&
         herd_prompt_fits(p->n, req.gen.max_tokens, herd_sched_n_ctx_slot(s->sched), &e);
    if (ok) return run(r, &req, p, 1);
    if (p) herd_prompt_free(p);
    free(p);
    herd_api_request_free(&req);
    return herd_http_error(&e);
}
