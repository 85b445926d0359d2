/*
 * server.c — starting and stopping a server: parameters and their defaults,
 * the order things are brought up (chat format, scheduler with its context,
 * then the listening socket) and torn down (stop accepting, end every job,
 * join the HTTP threads, then the scheduler's), stats and logging.
 */
#include "server/server_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

herd_server_params herd_server_default_params(void)
{
    herd_server_params p = {
        .host = "127.0.0.1",
        .port = 8080,
        .n_parallel = 1,
        .queue_max = 64,
        .body_max = 8u << 20,
        .timeout_s = 600,
    };
    return p;
}

void srv_log(herd_server *srv, const char *fmt, ...)
{
    if (!srv->p.log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    srv->p.log(srv->p.log_ud, line);
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* Fill in defaults; the strings are copied, so the caller's may go. */
static herd_status take_params(herd_server *s, const herd_server_params *p)
{
    s->p = *p;
    if (!p->model) return herd_seterr(HERD_E_INVALID, "herd_server_start: no model");
    if (p->n_parallel < 1 || p->n_parallel > 256)
        return herd_seterr(HERD_E_INVALID, "--parallel %d is outside 1..256", p->n_parallel);
    if (p->port < 0 || p->port > 65535)
        return herd_seterr(HERD_E_INVALID, "--port %d is outside 0..65535", p->port);
    if (p->n_ctx < 0) return herd_seterr(HERD_E_INVALID, "context size %d is negative", p->n_ctx);
    if (s->p.n_batch <= 0) s->p.n_batch = 512;
    if (s->p.queue_max < 0) s->p.queue_max = 64;
    if (s->p.body_max == 0) s->p.body_max = 8u << 20;
    if (s->p.timeout_s <= 0) s->p.timeout_s = 600;
    s->model = p->model;
    s->model_id = strdup(p->model_id && *p->model_id ? p->model_id : "herd");
    s->host = strdup(p->host && *p->host ? p->host : "127.0.0.1");
    s->api_key = dup_or_null(p->api_key);
    s->cors_origin = dup_or_null(p->cors_origin);
    if (!s->model_id || !s->host || (p->api_key && *p->api_key && !s->api_key) ||
        (p->cors_origin && *p->cors_origin && !s->cors_origin))
        return herd_seterr(HERD_E_NOMEM, "out of memory");
    s->p.host = s->host;
    return HERD_OK;
}

herd_status herd_server_start(const herd_server_params *params, herd_server **out)
{
    *out = NULL;
    herd_server *s = calloc(1, sizeof *s);
    if (!s) return herd_seterr(HERD_E_NOMEM, "out of memory");
    metrics_init(&s->metrics);
    s->created = (long)time(NULL);
    herd_status st = take_params(s, params);
    if (!st) st = chat_setup(s, params->chat_template);
    if (!st) {
        /* The default context is the model's (at most 4096), shared by the slots. */
        int n_ctx = s->p.n_ctx;
        if (n_ctx == 0) {
            int train = herd_n_ctx_train(s->model);
            n_ctx = train > 0 && train < 4096 ? train : 4096;
        }
        srv_sched_params sp = {s->model,     s->p.n_parallel, n_ctx,
                               s->p.n_batch, s->p.queue_max,  &s->metrics};
        st = sched_start(&sp, &s->sched);
    }
    if (!st) st = http_start(s);
    if (st) {
        herd_server_stop(s);
        return st;
    }
    srv_log(s, "listening on %s port %d: %d slot%s of %d tokens, chat format %s", s->host, s->port,
            s->p.n_parallel, s->p.n_parallel == 1 ? "" : "s", sched_n_ctx_slot(s->sched),
            s->tmpl ? "from the model's template" : s->chat_format);
    *out = s;
    return HERD_OK;
}

int herd_server_port(const herd_server *s)
{
    return s->port;
}

void herd_server_stop(herd_server *s)
{
    if (!s) return;
    http_quiesce(s);
    sched_close(s->sched);
    http_stop(s);
    sched_free(s->sched);
    chat_teardown(s);
    metrics_destroy(&s->metrics);
    free(s->model_id);
    free(s->host);
    free(s->api_key);
    free(s->cors_origin);
    free(s);
}

void herd_server_get_stats(herd_server *s, herd_server_stats *out)
{
    memset(out, 0, sizeof *out);
    sched_stats(s->sched, out);
    srv_metrics *m = &s->metrics;
    pthread_mutex_lock(&m->mu);
    out->requests = m->requests;
    out->requests_failed = m->requests_failed;
    out->jobs_done = m->jobs_done;
    out->jobs_cancelled = m->jobs_cancelled;
    out->prompt_tokens = m->prompt_tokens;
    out->cached_tokens = m->cached_tokens;
    out->generated_tokens = m->generated_tokens;
    out->decode_steps = m->decode_steps;
    out->decode_seconds = m->decode_seconds;
    pthread_mutex_unlock(&m->mu);
}

void herd_server_pause(herd_server *s, bool paused)
{
    sched_pause(s->sched, paused);
}
