/*
 * mc.c — scoring multiple-choice questions by the log-likelihood of each
 * choice, as lm-evaluation-harness does with a local model.
 *
 * A request (context, continuation) is encoded as the harness encodes it
 * (herd_mc_encode) and scored as the sum over the continuation's tokens of
 * log p(token | everything before it). The three metrics pick a choice each:
 *
 *   acc            argmax ll                  (harness)
 *   acc_norm       argmax ll / len(choice)    (harness; characters)
 *   acc_per_token  argmax ll / tokens         (llama.cpp's HellaSwag score,
 *                                              the mean log-prob per token)
 *
 * and are reported with the harness's standard error of a mean, sqrt(p(1-p) /
 * (n-1)). Ties go to the first choice, as numpy.argmax.
 *
 * The choices of a question share a prefix of tokens (all of the context, for
 * every kind but Winogrande). It is decoded once into the KV cache; each
 * choice then decodes only its own tokens after it, and herd_kv_remove cuts
 * the cache back to the prefix for the next choice. Nothing is random and the
 * order is the file's, so a run is reproducible.
 *
 * One choice of ours where the harness depends on its model class: texts are
 * tokenized with BOS first when the GGUF vocabulary says to add one, as
 * llama.cpp does (the harness's Hugging Face models add no BOS by default in
 * v0.4, which llama-family models were not trained to read without).
 */
#include "eval/eval.h"
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *herd_mc_metric_name(int metric)
{
    static const char *names[] = {"acc", "acc_norm", "acc_per_token"};
    return metric >= 0 && metric < HERD_MC_N_METRICS ? names[metric] : "?";
}

const char *herd_mc_metric_about(int metric)
{
    static const char *about[] = {
        "lm-evaluation-harness: the choice with the highest log-likelihood",
        "lm-evaluation-harness: log-likelihood / length of the choice in characters",
        "llama.cpp: log-likelihood / number of tokens (mean log-probability per token)",
    };
    return metric >= 0 && metric < HERD_MC_N_METRICS ? about[metric] : "?";
}

/* ---------------------------------------------------------- encoding */

/* Tokens of s[0..len) (BOS first when the vocabulary adds one), malloc'ed. */
static int32_t *tokenize(const herd_model *m, const char *s, size_t len, int *n)
{
    int cap = (int)len + 8;
    for (;;) {
        int32_t *ids = malloc((size_t)cap * sizeof *ids);
        if (!ids) return NULL;
        herd_status st = herd_tokenize(m, s, len, herd_add_bos(m), false, ids, cap, n);
        if (!st && *n <= cap) return ids;
        free(ids);
        if (*n <= cap) return NULL; /* a real error, message set */
        cap = *n;
    }
}

static bool trailing_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

int32_t *herd_mc_encode(const herd_model *m, const herd_mc_question *q, int i, int *n,
                        int *n_context)
{
    const char *ctx = q->context[i], *cont = q->continuation[i];
    size_t lc = strlen(ctx), lt = strlen(cont);
    /* The harness moves the context's trailing whitespace to the front of
     * the continuation, so "Answer: " + "B" is scored like "Answer:" + " B". */
    size_t keep = lc;
    while (keep > 0 && trailing_space(ctx[keep - 1])) keep--;
    char *whole = malloc(lc + lt + 1);
    int nw = 0, nc = 0;
    int32_t *w = NULL, *c = NULL;
    if (whole) {
        memcpy(whole, ctx, lc);
        memcpy(whole + lc, cont, lt + 1);
        w = tokenize(m, whole, lc + lt, &nw);
        c = tokenize(m, ctx, keep, &nc);
    }
    free(whole);
    if (c && nc == 0) {
        /* An empty context: the harness conditions on the end-of-text token. */
        int32_t prefix = herd_token_bos(m) >= 0 ? herd_token_bos(m) : herd_token_eos(m);
        free(c);
        free(w);
        c = malloc(sizeof *c);
        w = tokenize(m, cont, lt, &nw);
        if (c) c[0] = prefix, nc = 1;
        if (w && c) { /* whole = prefix + tokens of the continuation */
            int32_t *x = realloc(w, ((size_t)nw + 1) * sizeof *x);
            if (x) memmove(x + 1, x, (size_t)nw * sizeof *x), x[0] = prefix, nw++;
            w = x;
        }
    }
    if (!w || !c) {
        free(w), free(c);
        herd_seterr(HERD_E_NOMEM, "line %d: cannot tokenize choice %d", q->line, i);
        return NULL;
    }
    if (nw <= nc) {
        free(w), free(c);
        herd_seterr(HERD_E_INVALID, "line %d: choice %d has no tokens after its context", q->line,
                    i);
        return NULL;
    }
    /* The model reads the context's own tokens, then the continuation's
     * tokens cut from the tokenization of the whole. */
    memcpy(w, c, (size_t)nc * sizeof *w);
    free(c);
    *n = nw;
    *n_context = nc;
    return w;
}

herd_status herd_mc_max_tokens(const herd_model *m, const herd_mc_task *t, int *n)
{
    *n = 1;
    for (int k = 0; k < t->n; k++)
        for (int i = 0; i < t->q[k].n_choices; i++) {
            int len, nc;
            int32_t *ids = herd_mc_encode(m, &t->q[k], i, &len, &nc);
            if (!ids) return HERD_E_INVALID;
            free(ids);
            if (len - 1 > *n) *n = len - 1; /* the last token is never decoded */
        }
    return HERD_OK;
}

/* ----------------------------------------------------------- scoring */

typedef struct {
    herd_ctx *c;
    int32_t *pos;
    int8_t *want;
    long decoded;
} scorer;

/* Decode seq[from..to) at positions from.. in batches; add to *ll the log p of
 * the token after each position >= want_from. */
static herd_status decode_range(scorer *s, const int32_t *seq, int from, int to, int want_from,
                                double *ll)
{
    const int nb = s->c->params.n_batch, V = s->c->model->hp.n_vocab;
    for (int b0 = from; b0 < to; b0 += nb) {
        const int k = to - b0 < nb ? to - b0 : nb;
        for (int j = 0; j < k; j++) s->pos[j] = b0 + j, s->want[j] = b0 + j >= want_from;
        herd_batch b = {.n_tokens = k, .token = seq + b0, .pos = s->pos, .logits = s->want};
        herd_status st = herd_decode(s->c, &b);
        if (st) return st;
        s->decoded += k;
        for (int j = 0; j < k; j++)
            if (s->want[j])
                *ll += herd_log_softmax_at(herd_get_logits(s->c, j), V, seq[b0 + j + 1]);
    }
    return HERD_OK;
}

static int argmax(const double *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static void pick(const herd_mc_question *q, herd_mc_scores *sc)
{
    double norm[HERD_MC_MAX_CHOICES], tok[HERD_MC_MAX_CHOICES];
    for (int i = 0; i < q->n_choices; i++) {
        norm[i] = sc->ll[i] / q->norm_len[i];
        tok[i] = sc->ll[i] / sc->n_tokens[i];
    }
    sc->pred[HERD_MC_ACC] = argmax(sc->ll, q->n_choices);
    sc->pred[HERD_MC_ACC_NORM] = argmax(norm, q->n_choices);
    sc->pred[HERD_MC_ACC_TOKEN] = argmax(tok, q->n_choices);
}

/* Score every choice of q: the shared prefix once, then each choice's rest. */
static herd_status score_question(scorer *s, const herd_mc_question *q, herd_mc_scores *sc)
{
    int32_t *seq[HERD_MC_MAX_CHOICES] = {0};
    int len[HERD_MC_MAX_CHOICES], nctx[HERD_MC_MAX_CHOICES];
    herd_status st = HERD_OK;
    const int n_ctx = s->c->params.n_ctx;
    for (int i = 0; i < q->n_choices && !st; i++) {
        if (!(seq[i] = herd_mc_encode(s->c->model, q, i, &len[i], &nctx[i])))
            st = HERD_E_INVALID;
        else if (len[i] - 1 > n_ctx)
            st = herd_seterr(HERD_E_RANGE,
                             "line %d: choice %d needs %d tokens, the context holds %d", q->line, i,
                             len[i] - 1, n_ctx);
    }
    /* The prefix ends before the first position whose logits any choice
     * needs (its context's last token), so it is decoded without logits. */
    int p = 0;
    for (int i = 0; !st && i < q->n_choices; i++) {
        int lcp = 0, stop = nctx[i] - 1;
        while (lcp < stop && lcp < len[0] && seq[i][lcp] == seq[0][lcp]) lcp++;
        p = i == 0 ? stop : (lcp < p ? lcp : p);
    }
    herd_kv_remove(s->c, -1, 0, -1);
    double none = 0;
    if (!st) st = decode_range(s, seq[0], 0, p, n_ctx, &none);
    for (int i = 0; i < q->n_choices && !st; i++) {
        sc->ll[i] = 0;
        sc->n_tokens[i] = len[i] - nctx[i];
        st = decode_range(s, seq[i], p, len[i] - 1, nctx[i] - 1, &sc->ll[i]);
        herd_kv_remove(s->c, 0, p, -1);
    }
    for (int i = 0; i < q->n_choices; i++) free(seq[i]);
    if (!st) pick(q, sc);
    return st;
}

static void finish(herd_mc_result *r)
{
    for (int k = 0; k < HERD_MC_N_METRICS; k++) {
        const double p = r->n ? (double)r->correct[k] / r->n : 0;
        r->value[k] = p;
        r->stderr_[k] = r->n > 1 ? sqrt(p * (1 - p) / (r->n - 1)) : 0;
    }
}

herd_status herd_mc_evaluate(herd_ctx *c, const herd_mc_task *t, herd_mc_progress progress,
                             void *user, herd_mc_scores *scores, herd_mc_result *out)
{
    memset(out, 0, sizeof *out);
    if (!c || !t) return herd_seterr(HERD_E_INVALID, "eval: no context or task");
    scorer s = {.c = c};
    s.pos = malloc((size_t)c->params.n_batch * sizeof *s.pos);
    s.want = malloc((size_t)c->params.n_batch);
    herd_status st = s.pos && s.want ? HERD_OK : herd_seterr(HERD_E_NOMEM, "eval: out of memory");
    for (int k = 0; k < t->n && !st; k++) {
        herd_mc_scores one, *sc = scores ? &scores[k] : &one;
        memset(sc, 0, sizeof *sc);
        if ((st = score_question(&s, &t->q[k], sc))) break;
        out->n++;
        for (int m = 0; m < HERD_MC_N_METRICS; m++) out->correct[m] += sc->pred[m] == t->q[k].gold;
        out->tokens_decoded = s.decoded;
        finish(out);
        if (progress) progress(k + 1, t->n, out, user);
    }
    herd_kv_remove(c, -1, 0, -1);
    free(s.pos);
    free(s.want);
    return st;
}
