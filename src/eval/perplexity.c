/*
 * perplexity.c — llama.cpp's perplexity (llama-perplexity's default mode), so
 * that herd's figure and llama.cpp's are the same number on the same file,
 * text and context:
 *
 *   chunk i = tokens[i·n .. i·n + n), its first token replaced by BOS when the
 *   vocabulary adds one; decoded from an empty cache with every logit kept;
 *   positions n/2 .. n-2 score the token that follows them.
 *
 * PPL = exp(mean -log p); its error is llama.cpp's: the standard error of the
 * mean log-probability, scaled by PPL.
 *
 * herd_perplexity_each hands every scored position's logits to a hook; the KL
 * divergence (kld.c) saves or compares full distributions through it, so the
 * chunking above exists once.
 */
#include "eval/eval.h"
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double herd_log_softmax_at(const float *logits, int n_vocab, int32_t token)
{
    double mx = logits[0];
    for (int k = 1; k < n_vocab; k++)
        if (logits[k] > mx) mx = logits[k];
    double sum = 0;
    for (int k = 0; k < n_vocab; k++) sum += exp(logits[k] - mx);
    return logits[token] - mx - log(sum);
}

/* What a run hands to each scored position. */
typedef struct {
    herd_ppl_each_fn each;
    void *user;
} ppl_hook;

/* Decode one chunk in batches of the context's n_batch, scoring as we go.
 * pos and want are scratch of n_batch entries. */
static herd_status score_chunk(herd_ctx *c, const int32_t *buf, const int32_t *next, int n,
                               int32_t *pos, int8_t *want, const ppl_hook *hook, herd_ppl_result *r)
{
    const int nb = c->params.n_batch, V = c->model->hp.n_vocab, first = n / 2;
    herd_kv_remove(c, -1, 0, -1);
    for (int b0 = 0; b0 < n; b0 += nb) {
        const int k = n - b0 < nb ? n - b0 : nb;
        for (int j = 0; j < k; j++) pos[j] = b0 + j, want[j] = b0 + j >= first && b0 + j < n - 1;
        herd_batch b = {.n_tokens = k, .token = buf + b0, .pos = pos, .logits = want};
        herd_status st = herd_decode(c, &b);
        if (st) return st;
        for (int j = 0; j < k; j++) {
            if (!want[j]) continue;
            const float *logits = herd_get_logits(c, j);
            const double lp = herd_log_softmax_at(logits, V, next[b0 + j]);
            r->nll -= lp;
            r->nll2 += lp * lp;
            r->count++;
            if (hook->each && (st = hook->each(logits, V, next[b0 + j], hook->user))) return st;
        }
    }
    return HERD_OK;
}

int herd_ppl_chunks(int n_tokens, int n, int max_chunks)
{
    int n_chunks = n > 0 ? n_tokens / n : 0;
    return max_chunks >= 0 && max_chunks < n_chunks ? max_chunks : n_chunks;
}

int herd_ppl_default_chunk(const herd_model *m, int n_ctx)
{
    if (n_ctx > 0) return n_ctx;
    const int train = herd_n_ctx_train(m);
    return train > 0 && train < 512 ? train : 512;
}

herd_status herd_perplexity(herd_ctx *c, const int32_t *tokens, int n_tokens, int n, int max_chunks,
                            herd_ppl_progress progress, void *user, herd_ppl_result *r)
{
    return herd_perplexity_each(c, tokens, n_tokens, n, max_chunks, progress, NULL, user, r);
}

herd_status herd_perplexity_each(herd_ctx *c, const int32_t *tokens, int n_tokens, int n,
                                 int max_chunks, herd_ppl_progress progress, herd_ppl_each_fn each,
                                 void *user, herd_ppl_result *r)
{
    memset(r, 0, sizeof *r);
    if (!c || !tokens || n < 4)
        return herd_seterr(HERD_E_INVALID,
                           "perplexity: need a context and chunks of at least 4 tokens");
    if (n > c->params.n_ctx)
        return herd_seterr(HERD_E_INVALID,
                           "perplexity: chunk of %d tokens exceeds the context (%d)", n,
                           c->params.n_ctx);
    const int n_chunks = herd_ppl_chunks(n_tokens, n, max_chunks);
    const ppl_hook hook = {each, user};
    if (n_chunks < 1)
        return herd_seterr(HERD_E_INVALID, "perplexity: need at least %d tokens, the text has %d",
                           n, n_tokens);
    const herd_vocab *v = c->model->vocab;
    int32_t *buf = malloc((size_t)n * sizeof *buf);
    int32_t *pos = malloc((size_t)c->params.n_batch * sizeof *pos);
    int8_t *want = malloc((size_t)c->params.n_batch);
    if (!buf || !pos || !want) {
        free(buf), free(pos), free(want);
        return herd_seterr(HERD_E_NOMEM, "perplexity: out of memory");
    }
    herd_status st = HERD_OK;
    for (int i = 0; i < n_chunks && !st; i++) {
        const int32_t *chunk = tokens + (size_t)i * n;
        memcpy(buf, chunk, (size_t)n * sizeof *buf);
        if (herd_vocab_add_bos(v) && herd_vocab_bos(v) >= 0) buf[0] = herd_vocab_bos(v);
        st = score_chunk(c, buf, chunk + 1, n, pos, want, &hook, r);
        r->n_chunks = i + 1;
        if (!st && progress) progress(i + 1, exp(r->nll / (double)r->count), user);
    }
    free(buf);
    free(pos);
    free(want);
    if (st) return st;
    const double mean = r->nll / (double)r->count, var = r->nll2 / (double)r->count - mean * mean;
    r->ppl = exp(mean);
    r->err = r->count > 1 && var > 0 ? r->ppl * sqrt(var / (double)(r->count - 1)) : 0;
    return HERD_OK;
}
