/*
 * token.c — what happens to a slot between two decodes: penalties and
 * biases on its logits, the sampler's pick, the pick's log-probability, and
 * turning token pieces into text a client can be sent.
 *
 * Text is committed to the job only when it can no longer change: bytes that
 * might be the start of a stop string, or the first bytes of a UTF-8
 * character whose other bytes come with the next token, are held back. So a
 * streamed response never shows a stop string or half a character, and
 * streamed and non-streamed text are the same bytes. Bytes that are not
 * valid UTF-8 (a model can emit any byte-fallback token) become U+FFFD,
 * because JSON strings must be valid UTF-8.
 */
#define _GNU_SOURCE /* memmem */
#include "server/sched_impl.h"
#include "grammar/grammar.h"
#include "sample/sample.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- UTF-8 */

/* > 0: a complete valid sequence of that length; 0: a valid but unfinished
 * start; -1: invalid (overlong forms, surrogates and values past U+10FFFF
 * are invalid, as for Jansson). */
static int utf8_check(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    int len;
    if (c < 0x80) return 1;
    if (c < 0xC2) return -1;
    len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (!len) return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return 0;
        if ((s[i] & 0xC0) != 0x80) return -1;
        if (i == 1 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) ||
                       (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F)))
            return -1;
    }
    return len;
}

size_t herd_utf8_repair(const char *in, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int r = utf8_check(s + i, n - i);
        if (r > 0) {
            memcpy(out + o, s + i, (size_t)r);
            o += (size_t)r;
            i += (size_t)r;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    return o;
}

size_t herd_utf8_partial_tail(const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        if ((s[n - k] & 0xC0) == 0x80) continue; /* a continuation byte */
        return utf8_check(s + n - k, k) == 0 ? k : 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- logprobs */

void herd_tok_logprob(const float *l, int n_vocab, int32_t tok, int n_top, srv_lp *out)
{
    float mx = l[0];
    for (int i = 1; i < n_vocab; i++)
        if (l[i] > mx) mx = l[i];
    double sum = exp((double)l[0] - mx); /* > 0: the max's term is 1 */
    for (int i = 1; i < n_vocab; i++) sum += exp((double)l[i] - mx);
    double lse = mx + log(sum);
    out->token = tok;
    out->logprob = (float)(l[tok] - lse);
    if (n_top > SRV_MAX_TOP) n_top = SRV_MAX_TOP;
    if (n_top > n_vocab) n_top = n_vocab;
    int k = 0;
    /* Insertion into a short sorted list: ties keep the lower id first. */
    for (int i = 0; i < n_vocab && n_top > 0; i++) {
        if (k == n_top && l[i] <= l[out->top_id[k - 1]]) continue;
        int p = k < n_top ? k++ : k - 1;
        while (p > 0 && l[out->top_id[p - 1]] < l[i]) {
            out->top_id[p] = out->top_id[p - 1];
            p--;
        }
        out->top_id[p] = i;
    }
    out->n_top = k;
    for (int i = 0; i < k; i++) out->top_lp[i] = (float)(l[out->top_id[i]] - lse);
}

/* ---------------------------------------------------------------- text */

/* Move the first n held bytes to the staged output. */
static void commit(slot *sl, size_t n)
{
    sl->st_len += herd_utf8_repair(sl->hold, n, sl->st_text + sl->st_len);
    memmove(sl->hold, sl->hold + n, sl->hold_len - n);
    sl->hold_len -= n;
}

static void finish(slot *sl, srv_finish f)
{
    commit(sl, sl->hold_len);
    sl->st_finish = f;
}

/* The longest end of the held text that begins stop string s. */
static size_t stop_overlap(const char *h, size_t n, const char *s, size_t ls)
{
    for (size_t k = ls - 1 < n ? ls - 1 : n; k > 0; k--)
        if (!memcmp(h + n - k, s, k)) return k;
    return 0;
}

/* Add a piece; true if a stop string ended the generation. */
static bool add_piece(slot *sl, const char *piece, size_t len)
{
    const srv_gen *g = &sl->job->gen;
    memcpy(sl->hold + sl->hold_len, piece, len);
    sl->hold_len += len;
    size_t cut = SIZE_MAX, keep = 0;
    for (int i = 0; i < g->n_stop; i++) {
        size_t ls = strlen(g->stop[i]);
        const char *at = memmem(sl->hold, sl->hold_len, g->stop[i], ls);
        if (at && (size_t)(at - sl->hold) < cut) cut = (size_t)(at - sl->hold);
        size_t k = stop_overlap(sl->hold, sl->hold_len, g->stop[i], ls);
        if (k > keep) keep = k;
    }
    if (cut != SIZE_MAX) {
        commit(sl, cut);
        sl->hold_len = 0;
        sl->st_finish = SRV_FINISH_STOP;
        return true;
    }
    size_t tail = herd_utf8_partial_tail(sl->hold, sl->hold_len);
    if (tail > keep) keep = tail;
    commit(sl, sl->hold_len - keep);
    return false;
}

/* ---------------------------------------------------------------- sampling */

/* OpenAI's presence and frequency penalties (over this job's generated
 * tokens) and logit_bias, on a copy of the logits. */
static const float *adjusted(srv_sched *s, slot *sl, const float *logits)
{
    const srv_gen *g = &sl->job->gen;
    if (!g->n_bias && g->presence_penalty == 0 && g->frequency_penalty == 0) return logits;
    memcpy(sl->work, logits, (size_t)s->n_vocab * sizeof *logits);
    for (int i = 0; i < sl->n_gen_ids; i++) {
        int32_t t = sl->gen_ids[i]; /* repeated ids assign the same value again */
        sl->work[t] = logits[t] - (float)sl->counts[t] * g->frequency_penalty - g->presence_penalty;
    }
    for (int i = 0; i < g->n_bias; i++) sl->work[g->bias_id[i]] += g->bias[i];
    return sl->work;
}

void herd_tok_next(srv_sched *s, slot *sl, const float *logits)
{
    srv_job *j = sl->job;
    if (sl->n_cache >= s->n_ctx_slot) {
        finish(sl, SRV_FINISH_LENGTH);
        return;
    }
    if (sl->gm) { /* the tokens left, so that the grammar closes in time */
        int left = s->n_ctx_slot - 1 - sl->n_cache + 1;
        if (j->gen.max_tokens >= 0 && j->gen.max_tokens - sl->n_gen < left)
            left = j->gen.max_tokens - sl->n_gen;
        herd_sampler_set_budget(sl->smp, left);
    }
    int32_t tok = herd_sampler_sample(sl->smp, adjusted(s, sl, logits));
    if (tok < 0) { /* the grammar admits no token: end here, never spin */
        fprintf(stderr, "herd: job ended: %s\n", herd_errmsg());
        finish(sl, SRV_FINISH_LENGTH);
        return;
    }
    if (herd_token_is_eog(s->model, tok)) {
        finish(sl, SRV_FINISH_STOP);
        return;
    }
    herd_sampler_accept(sl->smp, tok);
    if (j->gen.logprobs >= 0) {
        herd_tok_logprob(logits, s->n_vocab, tok, j->gen.logprobs, &sl->st_lp);
        sl->st_has_lp = true;
    }
    sl->n_gen++;
    sl->counts[tok]++;
    sl->gen_ids[sl->n_gen_ids++] = tok;
    char piece[512];
    int n = herd_token_to_piece(s->model, tok, false, piece, sizeof piece);
    if (n < 0) n = 0;
    if (n > (int)sizeof piece) n = (int)sizeof piece;
    if (add_piece(sl, piece, (size_t)n)) return;
    /* The token sits at position n_cache; one more would not fit. */
    if (sl->n_gen == j->gen.max_tokens || sl->n_cache + 1 >= s->n_ctx_slot)
        finish(sl, SRV_FINISH_LENGTH);
    else
        sl->next = tok;
}
