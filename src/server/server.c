/*
 * server.c — starting and stopping a server: parameters and their defaults,
 * the order things are brought up (the watcher and the listening socket
 * first, so that /health answers 503 while the model loads; then, in the
 * loader thread when the server loads the model itself, the model, the
 * chat format and the scheduler) and torn down (stop accepting, end every
 * job, resume the parked connections, join the HTTP threads, then the
 * watcher's and the scheduler's), the graceful drain, stats and logging.
 */
#include "server/server_impl.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long the answers of requests just cut ("shutting down") may take to
 * leave before their connections are closed. */
#define CUT_GRACE_S 0.5

herd_server_params herd_server_default_params(void)
{
    herd_server_params p = {
        .host = "127.0.0.1",
        .port = 8080,
        .n_parallel = 1,
        .queue_max = 64,
        .body_max = 8u << 20,
        .timeout_s = 600,
        .request_timeout_s = 10,
        .max_conns = 4096,
        .conns_per_ip = 64,
        .http_threads = 4,
    };
    p.model_params = herd_model_default_params();
    return p;
}

void herd_srv_log(herd_server *srv, const char *fmt, ...)
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
    if (!p->model && !(p->model_path && *p->model_path))
        return herd_seterr(HERD_E_INVALID, "herd_server_start: no model");
    if (p->http_threads < 0 || p->http_threads > 64)
        return herd_seterr(HERD_E_INVALID, "--http-threads %d is outside 1..64", p->http_threads);
    if (p->n_parallel < 1 || p->n_parallel > 256)
        return herd_seterr(HERD_E_INVALID, "--parallel %d is outside 1..256", p->n_parallel);
    if (p->port < 0 || p->port > 65535)
        return herd_seterr(HERD_E_INVALID, "--port %d is outside 0..65535", p->port);
    if (p->n_ctx < 0) return herd_seterr(HERD_E_INVALID, "context size %d is negative", p->n_ctx);
    if (s->p.n_batch <= 0) s->p.n_batch = 512;
    if (s->p.queue_max < 0) s->p.queue_max = 64;
    if (s->p.body_max == 0) s->p.body_max = 8u << 20;
    if (s->p.timeout_s <= 0) s->p.timeout_s = 600;
    if (s->p.request_timeout_s <= 0) s->p.request_timeout_s = 10;
    if (s->p.max_conns <= 0) s->p.max_conns = 4096;
    if (s->p.conns_per_ip == 0) s->p.conns_per_ip = 64;
    if (s->p.http_threads == 0) s->p.http_threads = 4;
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

bool herd_srv_loaded(herd_server *srv)
{
    return atomic_load_explicit((_Atomic int *)&srv->loaded, memory_order_acquire);
}

bool herd_srv_ready(herd_server *srv)
{
    return herd_srv_loaded(srv) &&
           !atomic_load_explicit((_Atomic int *)&srv->draining, memory_order_relaxed);
}

void herd_srv_request_begin(herd_server *srv)
{
    pthread_mutex_lock(&srv->life_mu);
    srv->requests_active++;
    pthread_mutex_unlock(&srv->life_mu);
}

void herd_srv_request_end(herd_server *srv)
{
    pthread_mutex_lock(&srv->life_mu);
    srv->requests_active--;
    pthread_cond_broadcast(&srv->life_cv);
    pthread_mutex_unlock(&srv->life_mu);
}

/* The model (unless the caller loaded it), the chat format, the scheduler. */
static herd_status set_up(herd_server *s)
{
    herd_status st = HERD_OK;
    if (!s->model) {
        st = herd_model_load(s->p.model_path, &s->p.model_params, &s->model);
        if (st) return st;
        s->owns_model = true;
    }
    st = herd_chat_setup(s, s->p.chat_template);
    if (st) return st;
    /* The default context is the model's (at most 4096), shared by the slots. */
    int n_ctx = s->p.n_ctx;
    if (n_ctx == 0) {
        int train = herd_n_ctx_train(s->model);
        n_ctx = train > 0 && train < 4096 ? train : 4096;
    }
    srv_sched_params sp = {s->model,     s->p.n_parallel, n_ctx,
                           s->p.n_batch, s->p.queue_max,  &s->metrics};
    return herd_sched_start(&sp, &s->sched);
}

static void set_up_done(herd_server *s, herd_status st)
{
    pthread_mutex_lock(&s->life_mu);
    s->load_status = st;
    if (st) snprintf(s->load_error, sizeof s->load_error, "%s", herd_errmsg());
    s->load_done = true;
    if (!st) atomic_store_explicit((_Atomic int *)&s->loaded, 1, memory_order_release);
    pthread_cond_broadcast(&s->life_cv);
    pthread_mutex_unlock(&s->life_mu);
    if (!st)
        herd_srv_log(s, "listening on %s port %d: %d slot%s of %d tokens, chat format %s", s->host,
                     s->port, s->p.n_parallel, s->p.n_parallel == 1 ? "" : "s",
                     herd_sched_n_ctx_slot(s->sched),
                     s->tmpl ? "from the model's template" : s->chat_format);
}

static void *loader_main(void *arg)
{
    herd_server *s = arg;
    set_up_done(s, set_up(s));
    return NULL;
}

herd_status herd_server_start(const herd_server_params *params, herd_server **out)
{
    *out = NULL;
    herd_server *s = calloc(1, sizeof *s);
    if (!s) return herd_seterr(HERD_E_NOMEM, "out of memory");
    herd_metrics_init(&s->metrics);
    pthread_mutex_init(&s->life_mu, NULL);
    pthread_cond_init(&s->life_cv, NULL);
    s->created = (long)time(NULL);
    herd_status st = take_params(s, params);
    if (!st) st = herd_watch_start(s);
    if (!st) st = herd_http_start(s);
    if (!st && s->model) /* loaded by the caller: set up now, as before */
        set_up_done(s, st = set_up(s));
    else if (!st) {
        if (pthread_create(&s->loader, NULL, loader_main, s))
            st = herd_seterr(HERD_E_NOMEM, "cannot start the loader thread");
        else
            s->loader_started = true;
    }
    if (st) {
        herd_server_stop(s);
        return st;
    }
    *out = s;
    return HERD_OK;
}

herd_status herd_server_wait_ready(herd_server *s)
{
    pthread_mutex_lock(&s->life_mu);
    while (!s->load_done) pthread_cond_wait(&s->life_cv, &s->life_mu);
    herd_status st = s->load_status;
    pthread_mutex_unlock(&s->life_mu);
    if (st) herd_seterr(st, "%s", s->load_error);
    return st;
}

bool herd_server_load_done(herd_server *s, herd_status *status)
{
    pthread_mutex_lock(&s->life_mu);
    bool done = s->load_done;
    *status = s->load_status;
    pthread_mutex_unlock(&s->life_mu);
    if (done && *status) herd_seterr(*status, "%s", s->load_error);
    return done;
}

/* Wait at most timeout_s for every request to be answered; true if they were. */
static bool wait_requests(herd_server *s, double timeout_s)
{
    double until = herd_time() + timeout_s;
    pthread_mutex_lock(&s->life_mu);
    while (s->requests_active > 0 && herd_time() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&s->life_cv, &s->life_mu, &ts);
    }
    bool all = s->requests_active == 0;
    pthread_mutex_unlock(&s->life_mu);
    return all;
}

/* End what still runs: every job ends with "the server is shutting down" (a
 * stream's client gets that error event, then [DONE]; a waiting request a
 * 503), the parked connections are resumed to send it, and those answers get
 * a moment to leave before anything closes their connections. */
static void end_running(herd_server *s)
{
    herd_sched_close(s->sched);
    herd_watch_release_all(s);
    wait_requests(s, CUT_GRACE_S);
}

/* A drain that ran out of time cuts what still runs there and then, so that
 * what remains for herd_server_stop is joining threads and freeing memory:
 * milliseconds of CPU. */
static void cut_running(herd_server *s)
{
    if (!herd_srv_loaded(s)) return; /* nothing can run before the model is loaded */
    end_running(s);
}

int herd_server_drain(herd_server *s, double timeout_s)
{
    atomic_store((_Atomic int *)&s->draining, 1);
    herd_http_quiesce(s);
    if (wait_requests(s, timeout_s)) return 0;
    pthread_mutex_lock(&s->life_mu);
    int n = s->requests_active;
    pthread_mutex_unlock(&s->life_mu);
    if (n > 0) cut_running(s); /* 0: the last one ended just now */
    return n;
}

int herd_server_port(const herd_server *s)
{
    return s->port;
}

void herd_server_stop(herd_server *s)
{
    if (!s) return;
    atomic_store((_Atomic int *)&s->draining, 1);
    herd_http_quiesce(s);
    if (s->loader_started) pthread_join(s->loader, NULL);
    end_running(s);
    herd_http_stop(s);
    herd_watch_stop(s);
    herd_sched_free(s->sched);
    herd_chat_teardown(s);
    if (s->owns_model) herd_model_free(s->model);
    herd_metrics_destroy(&s->metrics);
    pthread_cond_destroy(&s->life_cv);
    pthread_mutex_destroy(&s->life_mu);
    free(s->model_id);
    free(s->host);
    free(s->api_key);
    free(s->cors_origin);
    free(s);
}

void herd_server_get_stats(herd_server *s, herd_server_stats *out)
{
    memset(out, 0, sizeof *out);
    if (herd_srv_loaded(s)) herd_sched_stats(s->sched, out);
    herd_watch_stats(s, out);
    out->ready = herd_srv_ready(s);
    pthread_mutex_lock(&s->life_mu);
    out->requests_active = s->requests_active;
    pthread_mutex_unlock(&s->life_mu);
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
    out->prefix_hits = m->prefix_hits;
    pthread_mutex_unlock(&m->mu);
}

void herd_server_pause(herd_server *s, bool paused)
{
    if (herd_srv_loaded(s)) herd_sched_pause(s->sched, paused);
}
