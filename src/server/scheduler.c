/*
 * scheduler.c — continuous batching over N slots of one herd_ctx.
 *
 * One thread owns the context. Each slot is a sequence id of the context
 * (n_seq_max = N), with its own sampler and the list of tokens whose K/V
 * cells it holds. A step of the loop:
 *
 *   1. (locked)   drop cancelled jobs, move queued jobs onto free slots;
 *   2. (locked)   build one batch: the next token of every generating slot,
 *                 then chunks of the prompts being read, up to n_batch tokens;
 *   3. (unlocked) herd_decode the batch; for every slot whose logits came
 *                 out, compute log-probabilities, sample, cut stop strings
 *                 (token.c) — into the slot's private staging area;
 *   4. (locked)   publish the staged output to the jobs, free the slots whose
 *                 jobs finished, wake the watcher (herd_sched_notify).
 *
 * The decode runs unlocked so that HTTP threads can queue, cancel and read
 * while the model works; slots are touched only by this thread, so step 3
 * needs no lock. The per-slot context is n_ctx / N: the KV cache holds
 * every slot's cells at once, so a slot never waits for another's memory,
 * and a finished slot keeps its cells: the next job whose prompt shares a
 * prefix with them skips recomputing it (prefix reuse). A model with a
 * sliding window evicts old cells as it goes, so it reuses nothing.
 */
#include "server/sched_impl.h"
#include "grammar/grammar.h"
#include "sample/sample.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- queue */

sched_result herd_sched_submit(srv_sched *s, srv_job *const *jobs, int n)
{
    sched_result r = SCHED_OK;
    pthread_mutex_lock(&s->mu);
    /* A slot whose client left is as good as free: it is freed at the next
     * step, and a client that hangs up and retries must not find it full. */
    int busy = 0;
    for (int i = 0; i < s->n_slots; i++) busy += s->slots[i].job && !s->slots[i].job->cancelled;
    if (s->closing)
        r = SCHED_CLOSED;
    else if (busy + s->n_queued + n > s->n_slots + s->queue_max)
        r = SCHED_FULL;
    else {
        double now = herd_time();
        for (int i = 0; i < n; i++) {
            srv_job *j = jobs[i];
            j->refs++;
            j->t_submit = now;
            j->next = NULL;
            if (s->qtail)
                s->qtail->next = j;
            else
                s->qhead = j;
            s->qtail = j;
            s->n_queued++;
        }
        pthread_cond_signal(&s->work);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

static srv_job *queue_pop(srv_sched *s)
{
    srv_job *j = s->qhead;
    if (!j) return NULL;
    s->qhead = j->next;
    if (!s->qhead) s->qtail = NULL;
    j->next = NULL;
    s->n_queued--;
    return j;
}

/* Queued jobs whose client left never reach a slot. */
void herd_queue_drop_cancelled(srv_sched *s)
{
    srv_job **pp = &s->qhead, *last = NULL;
    while (*pp) {
        srv_job *j = *pp;
        if (j->cancelled) {
            *pp = j->next;
            s->n_queued--;
            herd_job_finish(s, j, SRV_FINISH_ERROR, "cancelled");
            herd_job_unref(j);
        } else {
            last = j;
            pp = &j->next;
        }
    }
    s->qtail = last;
}

/* ---------------------------------------------------------------- slots */

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

/* Whether a free slot holds the job's prefix: the job's prompt starts with
 * everything the slot's last job was asked (the next turn of that
 * conversation: the reply and the new message follow), or the slot holds the
 * whole prompt (the same prompt again, or an earlier point of it). A prefix
 * that is only shared, such as a system prompt common to every
 * conversation, does not count: taking that slot would evict the rest of
 * another conversation to save what every slot has. k: the common prefix. */
static bool holds_prefix(const slot *sl, const srv_job *j, int k)
{
    int asked = sl->n_asked < sl->n_cache ? sl->n_asked : sl->n_cache;
    return k > 0 && (k >= asked || k == j->n_prompt);
}

/* The free slot for a job: of those holding its prefix, the one holding the
 * longest; when none does, the one unused for longest (a slot never used
 * first), so that a newcomer does not evict a conversation's cache while a
 * slot nobody will come back to exists. */
static slot *pick_slot(srv_sched *s, const srv_job *j)
{
    slot *best = NULL, *lru = NULL;
    int best_k = 0;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->job) continue;
        if (!lru || sl->last_used < lru->last_used) lru = sl;
        int k = s->reuse ? common_prefix(sl->cache, sl->n_cache, j->prompt, j->n_prompt) : 0;
        if (holds_prefix(sl, j, k) &&
            (k > best_k || (k == best_k && sl->last_used < best->last_used))) {
            best = sl;
            best_k = k;
        }
    }
    return best ? best : lru;
}

static void slot_release(srv_sched *s, slot *sl)
{
    herd_sampler_free(sl->smp);
    sl->smp = NULL;
    herd_gmatch_free(sl->gm);
    sl->gm = NULL;
    for (int i = 0; i < sl->n_gen_ids; i++) sl->counts[sl->gen_ids[i]] = 0;
    sl->n_gen_ids = 0;
    sl->hold_len = 0;
    sl->last_used = ++s->clock;
    herd_job_unref(sl->job);
    sl->job = NULL;
}

/* Put a job on a slot: keep the cached prefix, drop the rest. */
static bool slot_assign(srv_sched *s, slot *sl, srv_job *j)
{
    int keep = s->reuse ? common_prefix(sl->cache, sl->n_cache, j->prompt, j->n_prompt) : 0;
    /* The last prompt token is always decoded again: its logits pick the
     * first new token. Echoed log-probabilities need every position's logits. */
    if (keep >= j->n_prompt) keep = j->n_prompt - 1;
    if (j->gen.echo_logprobs || keep < 0) keep = 0;
    herd_kv_remove(s->ctx, sl->id, keep, -1);
    sl->n_cache = keep;
    if (herd_sampler_new(&j->gen.sp, s->n_vocab, &sl->smp)) return false;
    for (int i = 0; i < j->n_prompt; i++) herd_sampler_accept(sl->smp, j->prompt[i]);
    if (j->gen.grammar) { /* after the prompt: the grammar sees generated tokens only */
        if ((!s->gvocab && herd_gvocab_from_model(s->model, &s->gvocab)) ||
            herd_gmatch_new(j->gen.grammar, s->gvocab, &sl->gm) ||
            herd_sampler_set_grammar(sl->smp, sl->gm)) {
            herd_sampler_free(sl->smp);
            herd_gmatch_free(sl->gm);
            sl->smp = NULL, sl->gm = NULL;
            return false;
        }
    }
    sl->job = j;
    sl->n_asked = j->n_prompt;
    sl->n_done = keep;
    sl->n_gen = 0;
    sl->hold_len = 0;
    j->n_cached = keep;
    j->t_start = herd_time();
    return true;
}

static void admit(srv_sched *s)
{
    while (s->qhead) {
        slot *sl = pick_slot(s, s->qhead);
        if (!sl) return;
        srv_job *j = queue_pop(s);
        if (!slot_assign(s, sl, j)) {
            herd_job_finish(s, j, SRV_FINISH_ERROR, "out of memory");
            herd_job_unref(j);
            continue;
        }
    }
}

static void reap_cancelled(srv_sched *s)
{
    herd_queue_drop_cancelled(s);
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->job && sl->job->cancelled) {
            herd_job_finish(s, sl->job, SRV_FINISH_ERROR, "cancelled");
            slot_release(s, sl);
        }
    }
}

/* ---------------------------------------------------------------- steps */

static void add_token(srv_sched *s, slot *sl, int32_t tok, bool want)
{
    int i = s->b_n++;
    s->b_tok[i] = tok;
    s->b_pos[i] = sl->n_cache + sl->b_len;
    s->b_seq[i] = sl->id;
    s->b_want[i] = want;
    if (sl->b_len++ == 0) sl->b_first = i;
}

/* Generating slots first (one token each keeps their latency flat), then
 * prompt chunks in turn from a rotating start, so that a long prompt cannot
 * starve the others. */
static void build_batch(srv_sched *s)
{
    s->b_n = 0;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->b_len = 0;
        sl->b_first = -1;
        if (sl->job && sl->n_done == sl->job->n_prompt) add_token(s, sl, sl->next, true);
    }
    for (int k = 0; k < s->n_slots && s->b_n < s->n_batch; k++) {
        slot *sl = &s->slots[(s->rr + k) % s->n_slots];
        srv_job *j = sl->job;
        if (!j || sl->n_done == j->n_prompt) continue;
        int take = j->n_prompt - sl->n_done;
        if (take > s->n_batch - s->b_n) take = s->n_batch - s->b_n;
        for (int t = 0; t < take; t++) {
            int p = sl->n_done + t;
            add_token(s, sl, j->prompt[p], j->gen.echo_logprobs || p == j->n_prompt - 1);
        }
    }
    s->rr = (s->rr + 1) % s->n_slots;
}

/* After a decode: what the batch did to each slot, computed unlocked. */
static void process_slot(srv_sched *s, slot *sl)
{
    srv_job *j = sl->job;
    sl->st_prompt_done = false;
    sl->st_finish = SRV_FINISH_NONE;
    sl->st_len = 0;
    sl->st_has_lp = false;
    if (sl->b_len == 0) return;
    bool prompting = sl->n_done < j->n_prompt;
    if (prompting) {
        for (int t = 0; t < sl->b_len; t++) {
            int p = sl->n_done + t;
            sl->cache[sl->n_cache + t] = j->prompt[p];
            if (j->gen.echo_logprobs && p + 1 < j->n_prompt)
                herd_tok_logprob(herd_get_logits(s->ctx, sl->b_first + t), s->n_vocab,
                                 j->prompt[p + 1], j->gen.logprobs, &j->prompt_lp[p + 1]);
        }
        sl->n_done += sl->b_len;
        sl->n_cache += sl->b_len;
        if (sl->n_done < j->n_prompt) return;
        sl->st_prompt_done = true;
        if (j->gen.max_tokens == 0) {
            sl->st_finish = SRV_FINISH_LENGTH;
            return;
        }
    } else
        sl->cache[sl->n_cache++] = sl->next;
    herd_tok_next(s, sl, herd_get_logits(s->ctx, sl->b_first + sl->b_len - 1));
}

static void publish_slot(srv_sched *s, slot *sl, double now)
{
    srv_job *j = sl->job;
    bool ok = true;
    if (sl->st_prompt_done) {
        j->prompt_done = true;
        j->t_prompt = now;
    }
    if (sl->st_len) ok = herd_job_append(j, sl->st_text, sl->st_len);
    if (sl->st_has_lp) ok = ok && herd_job_push_lp(j, &sl->st_lp);
    j->n_gen = sl->n_gen;
    if (!ok) sl->st_finish = SRV_FINISH_ERROR;
    if (sl->st_finish != SRV_FINISH_NONE) {
        herd_job_finish(s, j, sl->st_finish, ok ? NULL : "out of memory");
        slot_release(s, sl);
    }
}

/* A failed decode ends every job that had tokens in the batch. */
static void fail_batch(srv_sched *s, const char *msg)
{
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (!sl->job || sl->b_len == 0) continue;
        herd_kv_remove(s->ctx, sl->id, 0, -1);
        sl->n_cache = 0;
        herd_job_finish(s, sl->job, SRV_FINISH_ERROR, msg);
        slot_release(s, sl);
    }
}

static bool any_active(const srv_sched *s)
{
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].job) return true;
    return false;
}

/* One step; called with s->mu held, returns with it held. */
static void step(srv_sched *s)
{
    build_batch(s);
    int n_prompt = 0;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->job && sl->n_done < sl->job->n_prompt) n_prompt += sl->b_len;
    }
    pthread_mutex_unlock(&s->mu);
    herd_batch b = {.n_tokens = s->b_n,
                    .token = s->b_tok,
                    .pos = s->b_pos,
                    .seq_id = s->b_seq,
                    .logits = s->b_want};
    double t0 = herd_time();
    herd_status st = herd_decode(s->ctx, &b);
    double t1 = herd_time();
    char err[256] = "";
    if (st)
        snprintf(err, sizeof err, "decode failed: %s", herd_errmsg());
    else
        for (int i = 0; i < s->n_slots; i++)
            if (s->slots[i].job) process_slot(s, &s->slots[i]);
    pthread_mutex_lock(&s->mu);
    herd_metrics_step(s->metrics, n_prompt, st ? 0 : s->b_n - n_prompt, t1 - t0);
    if (st) {
        fail_batch(s, err);
        return;
    }
    double now = herd_time();
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].job) publish_slot(s, &s->slots[i], now);
    herd_sched_notify(s);
}

static void *sched_main(void *arg)
{
    srv_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->closing && (s->paused || (!any_active(s) && !s->qhead)))
            pthread_cond_wait(&s->work, &s->mu);
        if (s->closing) break;
        reap_cancelled(s);
        admit(s);
        if (any_active(s)) step(s);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---------------------------------------------------------------- life */

static herd_status slots_init(srv_sched *s)
{
    s->slots = herd_calloc((size_t)s->n_slots, sizeof *s->slots);
    if (!s->slots) return HERD_E_NOMEM;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->id = i;
        sl->cache = herd_calloc((size_t)s->n_ctx_slot, sizeof *sl->cache);
        sl->gen_ids = herd_calloc((size_t)s->n_ctx_slot, sizeof *sl->gen_ids);
        sl->counts = herd_calloc((size_t)s->n_vocab, sizeof *sl->counts);
        sl->work = herd_calloc((size_t)s->n_vocab, sizeof *sl->work);
        sl->hold = herd_calloc(SRV_HOLD_BYTES, 1);
        sl->st_text = herd_calloc(SRV_HOLD_BYTES * 3 + 8, 1);
        if (!sl->cache || !sl->gen_ids || !sl->counts || !sl->work || !sl->hold || !sl->st_text)
            return HERD_E_NOMEM;
    }
    return HERD_OK;
}

static herd_status batch_init(srv_sched *s)
{
    s->b_tok = herd_calloc((size_t)s->n_batch, sizeof *s->b_tok);
    s->b_pos = herd_calloc((size_t)s->n_batch, sizeof *s->b_pos);
    s->b_seq = herd_calloc((size_t)s->n_batch, sizeof *s->b_seq);
    s->b_want = herd_calloc((size_t)s->n_batch, sizeof *s->b_want);
    return s->b_tok && s->b_pos && s->b_seq && s->b_want ? HERD_OK : HERD_E_NOMEM;
}

herd_status herd_sched_start(const srv_sched_params *p, srv_sched **out)
{
    *out = NULL;
    srv_sched *s = herd_calloc(1, sizeof *s);
    if (!s) return HERD_E_NOMEM;
    s->model = p->model;
    s->metrics = p->metrics;
    s->n_slots = p->n_slots;
    s->queue_max = p->queue_max;
    s->n_vocab = herd_n_vocab(p->model);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->news, NULL);
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = p->n_ctx;
    /* one token of every slot must fit a step */
    cp.n_batch = p->n_batch > p->n_slots ? p->n_batch : p->n_slots;
    cp.n_seq_max = p->n_slots;
    herd_status st = herd_ctx_new(p->model, &cp, &s->ctx);
    if (!st) {
        s->n_ctx_slot = herd_ctx_n_ctx(s->ctx) / s->n_slots;
        s->n_batch = s->ctx->params.n_batch; /* herd_ctx_new caps it at n_ctx */
        s->reuse = s->ctx->swa == 0;
        if (s->n_ctx_slot < 2)
            st = herd_seterr(HERD_E_INVALID, "a context of %d cells is too small for %d slots",
                             herd_ctx_n_ctx(s->ctx), s->n_slots);
    }
    if (!st) st = slots_init(s);
    if (!st) st = batch_init(s);
    if (!st && pthread_create(&s->thread, NULL, sched_main, s))
        st = herd_seterr(HERD_E_NOMEM, "cannot start the scheduler thread");
    if (st) {
        herd_sched_free(s);
        return st;
    }
    s->started = true;
    *out = s;
    return HERD_OK;
}

void herd_sched_close(srv_sched *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    /* The loop leaves at the next step boundary; then nobody decodes and the
     * remaining jobs can end here. */
    if (s->started) pthread_join(s->thread, NULL);
    s->started = false;
    pthread_mutex_lock(&s->mu);
    srv_job *j;
    while ((j = queue_pop(s))) {
        herd_job_finish(s, j, SRV_FINISH_ERROR, "the server is shutting down");
        herd_job_unref(j);
    }
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].job) {
            herd_job_finish(s, s->slots[i].job, SRV_FINISH_ERROR, "the server is shutting down");
            slot_release(s, &s->slots[i]);
        }
    pthread_mutex_unlock(&s->mu);
}

void herd_sched_free(srv_sched *s)
{
    if (!s) return;
    herd_sched_close(s);
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        free(sl->cache);
        free(sl->gen_ids);
        free(sl->counts);
        free(sl->work);
        free(sl->hold);
        free(sl->st_text);
    }
    free(s->slots);
    free(s->b_tok);
    free(s->b_pos);
    free(s->b_seq);
    free(s->b_want);
    herd_gvocab_free(s->gvocab);
    herd_ctx_free(s->ctx);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->news);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int herd_sched_n_ctx_slot(const srv_sched *s)
{
    return s->n_ctx_slot;
}
int herd_sched_capacity(const srv_sched *s)
{
    return s->n_slots + s->queue_max;
}

void herd_sched_pause(srv_sched *s, bool paused)
{
    pthread_mutex_lock(&s->mu);
    s->paused = paused;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
}

void herd_sched_stats(srv_sched *s, herd_server_stats *out)
{
    pthread_mutex_lock(&s->mu);
    out->n_slots = s->n_slots;
    out->slots_busy = 0;
    for (int i = 0; i < s->n_slots; i++) out->slots_busy += s->slots[i].job != NULL;
    out->queue_depth = s->n_queued;
    out->n_ctx_slot = s->n_ctx_slot;
    pthread_mutex_unlock(&s->mu);
}
