/*
 * metrics.c — the server's counters, and GET /metrics in the Prometheus text
 * exposition format (version 0.0.4): requests by status class, tokens read
 * and generated, prompt tokens reused from the cache, queue depth and busy
 * slots, and throughput. Throughput is tokens per second of decoding (time
 * inside herd_decode), the figure that shows whether batching pays: it is
 * aggregate over all slots, not per request.
 */
#include "server/server_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void herd_metrics_init(srv_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->t_start = herd_time();
}

void herd_metrics_destroy(srv_metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

void herd_metrics_response(srv_metrics *m, int status)
{
    pthread_mutex_lock(&m->mu);
    m->requests++;
    if (status >= 400) m->requests_failed++;
    if (status >= 100 && status < 600) m->status[status / 100]++;
    pthread_mutex_unlock(&m->mu);
}

void herd_metrics_step(srv_metrics *m, int n_prompt, int n_gen, double seconds)
{
    pthread_mutex_lock(&m->mu);
    m->decode_steps++;
    m->decode_seconds += seconds;
    m->prompt_tokens += (uint64_t)n_prompt;
    m->generated_tokens += (uint64_t)n_gen;
    /* A mixed step's time is shared in proportion to its tokens. */
    int n = n_prompt + n_gen;
    if (n > 0) {
        m->prompt_seconds += seconds * n_prompt / n;
        m->generation_seconds += seconds * n_gen / n;
    }
    pthread_mutex_unlock(&m->mu);
}

/* Bucket bounds in seconds (the last, +Inf, is implied). */
static const double ttft_le[SRV_HIST_BUCKETS - 1] = {0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                     2.5,   5,    10,  30,   60};
static const double tpot_le[SRV_HIST_BUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1,    2.5};

static void observe(srv_hist *h, const double *le, double v)
{
    for (int i = 0; i < SRV_HIST_BUCKETS; i++)
        if (i == SRV_HIST_BUCKETS - 1 || v <= le[i]) h->le[i]++;
    h->count++;
    h->sum += v;
}

void herd_metrics_job(srv_metrics *m, const srv_job *j)
{
    pthread_mutex_lock(&m->mu);
    m->jobs_done++;
    m->cached_tokens += (uint64_t)j->n_cached;
    /* A hit is a prompt mostly served from the cache (a conversation's next
     * turn on the replica that holds it), not the few tokens of a chat
     * template's opening that every prompt shares. */
    if (j->n_cached > 0 && 2 * j->n_cached >= j->n_prompt) m->prefix_hits++;
    if (j->cancelled) m->jobs_cancelled++;
    /* Only jobs that generated: the first token comes out of the step that
     * finishes the prompt, so t_prompt is when it was there. */
    if (j->n_gen > 0 && j->finish != SRV_FINISH_ERROR) {
        observe(&m->ttft, ttft_le, j->t_prompt - j->t_submit);
        if (j->n_gen > 1) observe(&m->tpot, tpot_le, (j->t_end - j->t_prompt) / (j->n_gen - 1));
    }
    pthread_mutex_unlock(&m->mu);
}

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    if (!b->buf) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        char *p = realloc(b->buf, b->cap * 2 + (size_t)n);
        if (!p) {
            free(b->buf);
            b->buf = NULL;
            return;
        }
        b->buf = p;
        b->cap = b->cap * 2 + (size_t)n;
    }
}

static void metric(sbuf *b, const char *name, const char *type, const char *help, double v)
{
    put(b, "# HELP herd_%s %s\n# TYPE herd_%s %s\nherd_%s %.17g\n", name, help, name, type, name,
        v);
}

static void histogram(sbuf *b, const char *name, const char *help, const srv_hist *h,
                      const double *le)
{
    put(b, "# HELP herd_%s %s\n# TYPE herd_%s histogram\n", name, help, name);
    for (int i = 0; i < SRV_HIST_BUCKETS - 1; i++)
        put(b, "herd_%s_bucket{le=\"%g\"} %llu\n", name, le[i], (unsigned long long)h->le[i]);
    put(b, "herd_%s_bucket{le=\"+Inf\"} %llu\nherd_%s_sum %.17g\nherd_%s_count %llu\n", name,
        (unsigned long long)h->le[SRV_HIST_BUCKETS - 1], name, h->sum, name,
        (unsigned long long)h->count);
}

char *herd_metrics_render(srv_metrics *m, const herd_server_stats *st)
{
    sbuf b = {malloc(4096), 0, 4096};
    pthread_mutex_lock(&m->mu);
    srv_metrics c = *m;
    pthread_mutex_unlock(&m->mu);
    metric(&b, "requests_total", "counter", "HTTP requests answered.", (double)c.requests);
    put(&b, "# HELP herd_responses_total HTTP responses by status class.\n"
            "# TYPE herd_responses_total counter\n");
    for (int k = 1; k <= 5; k++)
        put(&b, "herd_responses_total{code=\"%dxx\"} %llu\n", k, (unsigned long long)c.status[k]);
    metric(&b, "requests_failed_total", "counter", "HTTP responses with a 4xx or 5xx status.",
           (double)c.requests_failed);
    metric(&b, "jobs_total", "counter", "Prompts completed, cancelled or failed.",
           (double)c.jobs_done);
    metric(&b, "jobs_cancelled_total", "counter", "Prompts whose client went away.",
           (double)c.jobs_cancelled);
    metric(&b, "prefix_cache_hits_total", "counter",
           "Prompts that took at least half their tokens from a slot's cache.",
           (double)c.prefix_hits);
    metric(&b, "prompt_tokens_total", "counter", "Prompt tokens computed.",
           (double)c.prompt_tokens);
    metric(&b, "prompt_tokens_cached_total", "counter",
           "Prompt tokens reused from a slot's cache instead of computed.",
           (double)c.cached_tokens);
    metric(&b, "tokens_predicted_total", "counter", "Tokens generated.",
           (double)c.generated_tokens);
    metric(&b, "decode_steps_total", "counter", "Batched forward passes.", (double)c.decode_steps);
    metric(&b, "decode_seconds_total", "counter", "Time spent in forward passes.",
           c.decode_seconds);
    metric(&b, "prompt_tokens_seconds", "gauge", "Prompt tokens per second of decoding.",
           c.prompt_seconds > 0 ? (double)c.prompt_tokens / c.prompt_seconds : 0);
    metric(&b, "predicted_tokens_seconds", "gauge",
           "Generated tokens per second of decoding, all slots together.",
           c.generation_seconds > 0 ? (double)c.generated_tokens / c.generation_seconds : 0);
    metric(&b, "queue_depth", "gauge", "Jobs waiting for a slot.", (double)st->queue_depth);
    metric(&b, "slots_busy", "gauge", "Slots running a job.", (double)st->slots_busy);
    metric(&b, "slots", "gauge", "Slots (sequences decoded together).", (double)st->n_slots);
    metric(&b, "slot_context_size", "gauge", "Context of one slot, tokens.",
           (double)st->n_ctx_slot);
    histogram(&b, "time_to_first_token_seconds",
              "From a prompt's arrival to its first generated token.", &c.ttft, ttft_le);
    histogram(&b, "time_per_output_token_seconds",
              "Mean time per generated token after the first, per prompt.", &c.tpot, tpot_le);
    metric(&b, "connections_open", "gauge", "HTTP connections open.", (double)st->conns_open);
    metric(&b, "connections_cut_total", "counter",
           "Connections closed for not sending a whole request within --request-timeout.",
           (double)st->conns_cut);
    metric(&b, "requests_active", "gauge", "HTTP requests being received, run or answered.",
           (double)st->requests_active);
    metric(&b, "ready", "gauge", "1 when the model is loaded and the server not draining.",
           st->ready ? 1 : 0);
    metric(&b, "uptime_seconds", "gauge", "Seconds since the server started.",
           herd_time() - c.t_start);
    return b.buf;
}
