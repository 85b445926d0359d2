/*
 * job.c — jobs and the threads that wait for them.
 *
 * A job is shared by the HTTP thread that submitted it and the scheduler;
 * each holds a reference, and whoever drops the last one frees it, so a
 * client that hangs up mid-step never frees memory the scheduler is using.
 * Everything a reader sees is guarded by the scheduler's mutex. Nobody
 * blocks on a job: a request whose job has nothing new parks its connection
 * with the watcher (watch.c), which herd_sched_notify wakes after every step and
 * every job that ends, and which asks herd_sched_ready whether to resume it.
 */
#include "server/sched_impl.h"
#include "grammar/grammar.h"

#include <stdlib.h>
#include <string.h>

srv_job *herd_job_new(const int32_t *prompt, int n_prompt, const srv_gen *gen)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->prompt = malloc((size_t)(n_prompt > 0 ? n_prompt : 1) * sizeof *j->prompt);
    if (gen->echo_logprobs) j->prompt_lp = calloc((size_t)n_prompt + 1, sizeof *j->prompt_lp);
    if (!j->prompt || (gen->echo_logprobs && !j->prompt_lp)) {
        free(j->prompt);
        free(j->prompt_lp);
        free(j);
        return NULL;
    }
    memcpy(j->prompt, prompt, (size_t)n_prompt * sizeof *prompt);
    j->n_prompt = n_prompt;
    j->gen = *gen;
    herd_grammar_retain(j->gen.grammar);
    j->refs = 1;
    return j;
}

static void job_free(srv_job *j)
{
    free(j->prompt);
    free(j->prompt_lp);
    free(j->text);
    free(j->lp);
    herd_grammar_free(j->gen.grammar);
    free(j);
}

/* Drop a reference; s->mu held. */
void herd_job_unref(srv_job *j)
{
    if (--j->refs == 0) job_free(j);
}

void herd_sched_release(srv_sched *s, srv_job *j)
{
    if (!j) return;
    pthread_mutex_lock(&s->mu);
    herd_job_unref(j);
    pthread_mutex_unlock(&s->mu);
}

void herd_sched_cancel(srv_sched *s, srv_job *j)
{
    pthread_mutex_lock(&s->mu);
    if (!j->done) {
        j->cancelled = true;
        herd_queue_drop_cancelled(s); /* a queued job leaves the queue now */
        pthread_cond_signal(&s->work);
    }
    pthread_mutex_unlock(&s->mu);
}

/* End a job (s->mu held): record why, wake the watcher. */
void herd_job_finish(srv_sched *s, srv_job *j, srv_finish f, const char *error)
{
    j->finish = f;
    j->done = true;
    j->t_end = herd_time();
    if (!j->prompt_done) j->t_prompt = j->t_end;
    if (error) snprintf(j->error, sizeof j->error, "%s", error);
    herd_metrics_job(s->metrics, j);
    herd_sched_notify(s);
}

void herd_sched_notify(srv_sched *s)
{
    s->epoch++;
    pthread_cond_broadcast(&s->news);
}

/* Append bytes to the job's text (s->mu held). */
bool herd_job_append(srv_job *j, const char *p, size_t n)
{
    if (j->text_len + n + 1 > j->text_cap) {
        size_t cap = j->text_cap ? j->text_cap : 256;
        while (cap < j->text_len + n + 1) cap *= 2;
        char *t = realloc(j->text, cap);
        if (!t) return false;
        j->text = t;
        j->text_cap = cap;
    }
    memcpy(j->text + j->text_len, p, n);
    j->text_len += n;
    j->text[j->text_len] = 0;
    return true;
}

bool herd_job_push_lp(srv_job *j, const srv_lp *lp)
{
    if (j->n_lp == j->lp_cap) {
        int cap = j->lp_cap ? 2 * j->lp_cap : 16;
        srv_lp *p = realloc(j->lp, (size_t)cap * sizeof *p);
        if (!p) return false;
        j->lp = p;
        j->lp_cap = cap;
    }
    j->lp[j->n_lp++] = *lp;
    return true;
}

/* ---------------------------------------------------------------- waiting */

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static bool has_news(const srv_job *j, const srv_cursor *c)
{
    return j->text_len > c->text || j->n_lp > c->lp || (j->prompt_done && !c->prompt_seen) ||
           (j->done && !c->done_seen);
}

bool herd_sched_ready(srv_sched *s, srv_job *const *jobs, int n, const srv_cursor *c)
{
    bool ready = true;
    pthread_mutex_lock(&s->mu);
    if (c)
        ready = has_news(jobs[0], c);
    else
        for (int i = 0; i < n && ready; i++) ready = jobs[i]->done;
    pthread_mutex_unlock(&s->mu);
    return ready;
}

void herd_sched_wait_news(srv_sched *s, uint64_t *seen, int timeout_ms)
{
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&s->mu);
    while (s->epoch == *seen)
        if (pthread_cond_timedwait(&s->news, &s->mu, &ts)) break;
    *seen = s->epoch;
    pthread_mutex_unlock(&s->mu);
}

bool herd_sched_poll(srv_sched *s, srv_job *j, srv_cursor *c, srv_news *n)
{
    memset(n, 0, sizeof *n);
    pthread_mutex_lock(&s->mu);
    bool any = has_news(j, c);
    if (any) {
        n->len = j->text_len - c->text;
        n->text = malloc(n->len + 1);
        n->n_lp = j->n_lp - c->lp;
        n->lp = n->n_lp ? malloc((size_t)n->n_lp * sizeof *n->lp) : NULL;
        if (n->text) {
            memcpy(n->text, j->text ? j->text + c->text : "", n->len);
            n->text[n->len] = 0;
        } else
            n->len = 0;
        if (n->lp)
            memcpy(n->lp, j->lp + c->lp, (size_t)n->n_lp * sizeof *n->lp);
        else
            n->n_lp = 0;
        n->prompt_done = j->prompt_done && !c->prompt_seen;
        n->done = j->done && !c->done_seen;
        c->text += n->len;
        c->lp += n->n_lp;
        c->prompt_seen = j->prompt_done;
        c->done_seen = j->done;
    }
    pthread_mutex_unlock(&s->mu);
    return any;
}

void herd_srv_news_free(srv_news *n)
{
    free(n->text);
    free(n->lp);
    memset(n, 0, sizeof *n);
}
