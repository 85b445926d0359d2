/*
 * sample.c — turning a row of logits into a token.
 *
 * One call of herd_sampler_sample() runs the chain of llama.cpp's common
 * sampler with its default order:
 *
 *   penalties → top-k → top-p → min-p → temperature → draw
 *
 * The logits are copied into a work row first (the caller's row is const), the
 * repetition penalty is applied there, and from then on the sampler works on a
 * list of candidate ids that each stage shortens. Sorting is avoided where it
 * can be: top-k selects with a heap of k elements (O(n log k)), and top-p
 * without top-k grows a sorted prefix until it holds the wanted mass, so a
 * 256k vocabulary is not sorted just to keep the few dozen tokens that matter.
 *
 * Ties between equal logits are broken by the lower token id everywhere, so
 * the result never depends on the sort algorithm.
 */
#include "sample/sample.h"
#include "grammar/grammar.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct herd_sampler {
    herd_sampler_params p;
    int n_vocab;
    uint64_t seed; /* the seed in use (resolved if p.seed was random) */
    uint64_t rng[4];
    /* The last p.repeat_last_n accepted tokens, a ring buffer. */
    int32_t *hist;
    int hist_n, hist_head;
    /* stamp[id] == stamp_gen marks a token already penalised this call. */
    uint32_t *stamp;
    uint32_t stamp_gen;
    float *work;          /* [n_vocab] penalised logits */
    int32_t *cand;        /* [n_vocab] candidate ids */
    float *prob;          /* [n_vocab] exp values of the candidates */
    herd_gmatch *grammar; /* the caller's, or NULL */
    uint32_t budget;      /* characters the output may still take (grammar) */
    bool *allowed;        /* [n_vocab] the grammar's mask, allocated with the grammar */
};

/* ------------------------------------------------------------------ RNG */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman & Vigna): small, fast, and the same everywhere. */
static uint64_t rng_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4])
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static uint64_t random_seed(const void *salt)
{
    static _Thread_local uint64_t counter;
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)(uintptr_t)salt ^ (++counter << 32);
    uint64_t seed = splitmix64(&x);
    return seed == HERD_SEED_RANDOM ? 0 : seed;
}

static void rng_seed(herd_sampler *s)
{
    s->seed = s->p.seed == HERD_SEED_RANDOM ? random_seed(s) : s->p.seed;
    uint64_t x = s->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* ------------------------------------------------------------ lifecycle */

herd_sampler_params herd_sampler_default_params(void)
{
    /* llama.cpp's common_params_sampling defaults. */
    herd_sampler_params p = {
        .temp = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = HERD_SEED_RANDOM,
    };
    return p;
}

static herd_status check_params(const herd_sampler_params *p, int n_vocab)
{
    if (n_vocab <= 0)
        return herd_seterr(HERD_E_INVALID, "sampler: n_vocab must be > 0, got %d", n_vocab);
    if (isnan(p->temp)) return herd_seterr(HERD_E_INVALID, "sampler: temperature is NaN");
    if (!(p->top_p >= 0.0f))
        return herd_seterr(HERD_E_INVALID, "sampler: top_p must be >= 0, got %g", (double)p->top_p);
    if (!(p->min_p <= 1.0f) || isnan(p->min_p))
        return herd_seterr(HERD_E_INVALID, "sampler: min_p must be <= 1, got %g", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return herd_seterr(HERD_E_INVALID, "sampler: repeat_penalty must be > 0, got %g",
                           (double)p->repeat_penalty);
    if (p->repeat_last_n < 0)
        return herd_seterr(HERD_E_INVALID, "sampler: repeat_last_n must be >= 0, got %d",
                           p->repeat_last_n);
    return HERD_OK;
}

herd_status herd_sampler_new(const herd_sampler_params *params, int n_vocab, herd_sampler **out)
{
    if (!out) return herd_seterr(HERD_E_INVALID, "sampler: out is NULL");
    *out = NULL;
    if (!params) return herd_seterr(HERD_E_INVALID, "sampler: params is NULL");
    herd_status st = check_params(params, n_vocab);
    if (st) return st;

    herd_sampler *s = herd_calloc(1, sizeof *s);
    if (!s) return HERD_E_NOMEM;
    s->p = *params;
    s->n_vocab = n_vocab;
    s->work = herd_calloc((size_t)n_vocab, sizeof *s->work);
    s->cand = herd_calloc((size_t)n_vocab, sizeof *s->cand);
    s->prob = herd_calloc((size_t)n_vocab, sizeof *s->prob);
    s->stamp = herd_calloc((size_t)n_vocab, sizeof *s->stamp);
    s->hist =
        herd_calloc(params->repeat_last_n ? (size_t)params->repeat_last_n : 1, sizeof *s->hist);
    if (!s->work || !s->cand || !s->prob || !s->stamp || !s->hist) {
        herd_sampler_free(s);
        return HERD_E_NOMEM;
    }
    rng_seed(s);
    *out = s;
    return HERD_OK;
}

void herd_sampler_free(herd_sampler *s)
{
    if (!s) return;
    free(s->work);
    free(s->cand);
    free(s->prob);
    free(s->stamp);
    free(s->hist);
    free(s->allowed);
    free(s);
}

uint64_t herd_sampler_seed(const herd_sampler *s)
{
    return s ? s->seed : 0;
}

/* Reset forgets the history and restarts the random stream, as llama.cpp's
 * sampler reset does (a random seed is drawn afresh). */
void herd_sampler_reset(herd_sampler *s)
{
    if (!s) return;
    s->hist_n = s->hist_head = 0;
    rng_seed(s);
}

herd_status herd_sampler_set_grammar(herd_sampler *s, herd_gmatch *m)
{
    if (!s) return herd_seterr(HERD_E_INVALID, "sampler: NULL");
    if (m && herd_gvocab_n_vocab(herd_gmatch_vocab(m)) != s->n_vocab)
        return herd_seterr(HERD_E_INVALID,
                           "sampler: the grammar's vocabulary has %d tokens, not %d",
                           herd_gvocab_n_vocab(herd_gmatch_vocab(m)), s->n_vocab);
    if (m && !s->allowed && !(s->allowed = herd_calloc((size_t)s->n_vocab, sizeof *s->allowed)))
        return HERD_E_NOMEM;
    s->grammar = m;
    s->budget = HERD_GMATCH_NO_BUDGET;
    return HERD_OK;
}

void herd_sampler_set_budget(herd_sampler *s, int n_tokens)
{
    if (s)
        s->budget =
            n_tokens < 0 ? HERD_GMATCH_NO_BUDGET : (uint32_t)(n_tokens > 0 ? n_tokens - 1 : 0);
}

void herd_sampler_accept(herd_sampler *s, int32_t token)
{
    if (!s) return;
    if (s->grammar) herd_gmatch_accept(s->grammar, token); /* a refused token leaves it as is */
    if (s->p.repeat_last_n == 0) return;
    s->hist[s->hist_head] = token;
    s->hist_head = (s->hist_head + 1) % s->p.repeat_last_n;
    if (s->hist_n < s->p.repeat_last_n) s->hist_n++;
}

/* ------------------------------------------------------------- penalties */

/* llama.cpp's repetition penalty: each distinct token of the window once,
 * positive logits divided, the others multiplied, so both become less likely. */
static void apply_penalty(herd_sampler *s)
{
    float pen = s->p.repeat_penalty;
    if (pen == 1.0f || s->hist_n == 0) return;
    if (++s->stamp_gen == 0) { /* wrapped: clear the marks once in 2^32 calls */
        memset(s->stamp, 0, (size_t)s->n_vocab * sizeof *s->stamp);
        s->stamp_gen = 1;
    }
    for (int i = 0; i < s->hist_n; i++) {
        int32_t t = s->hist[i];
        if (t < 0 || t >= s->n_vocab || s->stamp[t] == s->stamp_gen) continue;
        s->stamp[t] = s->stamp_gen;
        float *l = &s->work[t];
        *l = *l > 0 ? *l / pen : *l * pen;
    }
}

/* --------------------------------------------------------- ordering */

/* a ranks before b: higher logit, then lower id. */
static bool ranks_before(const float *w, int32_t a, int32_t b)
{
    return w[a] > w[b] || (w[a] == w[b] && a < b);
}

/* qsort has no context argument; per thread, as samplers may run in parallel. */
static _Thread_local const float *sort_logits;

static int cmp_rank(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return ranks_before(sort_logits, a, b) ? -1 : ranks_before(sort_logits, b, a) ? 1 : 0;
}

static void sort_by_rank(const float *w, int32_t *ids, int n)
{
    sort_logits = w;
    qsort(ids, (size_t)n, sizeof *ids, cmp_rank);
}

/* Min-heap of k ids whose root is the worst of the best k seen so far. */
static void heap_sift_down(const float *w, int32_t *h, int k, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && ranks_before(w, h[m], h[l])) m = l;
        if (r < k && ranks_before(w, h[m], h[r])) m = r;
        if (m == i) return;
        int32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Put the k best of ids[0..n) into ids[0..k), sorted best first. */
static void select_top(const float *w, int32_t *ids, int n, int k)
{
    if (k >= n) {
        sort_by_rank(w, ids, n);
        return;
    }
    for (int i = k / 2 - 1; i >= 0; i--) heap_sift_down(w, ids, k, i);
    for (int i = k; i < n; i++) {
        if (ranks_before(w, ids[i], ids[0])) {
            int32_t t = ids[0];
            ids[0] = ids[i];
            ids[i] = t;
            heap_sift_down(w, ids, k, 0);
        }
    }
    sort_by_rank(w, ids, k);
}

/* ---------------------------------------------------------------- stages */

static int32_t argmax(const float *w, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (w[i] > w[best]) best = i;
    return best;
}

static float max_logit(const float *w, const int32_t *ids, int n)
{
    float m = -INFINITY;
    for (int i = 0; i < n; i++)
        if (w[ids[i]] > m) m = w[ids[i]];
    return m;
}

/* Sum of exp(logit - max) over the candidates (the softmax denominator). */
static double exp_sum(const float *w, const int32_t *ids, int n, float max)
{
    double sum = 0;
    for (int i = 0; i < n; i++) sum += expf(w[ids[i]] - max);
    return sum;
}

/* Keep the smallest best-first prefix whose probability reaches top_p (at
 * least one token). Without a previous sort, the prefix is grown by selecting
 * the best 64, 512, … until it holds the mass. */
static int apply_top_p(const float *w, int32_t *ids, int n, bool sorted, float top_p)
{
    float max = max_logit(w, ids, n);
    double total = exp_sum(w, ids, n, max);
    int k = sorted ? n : 64;
    for (;;) {
        if (k > n) k = n;
        if (!sorted) select_top(w, ids, n, k);
        double cum = 0;
        for (int i = 0; i < k; i++) {
            cum += expf(w[ids[i]] - max) / total;
            if (cum >= top_p) return i + 1;
        }
        if (k == n) return n;
        k *= 8;
    }
}

/* Keep the tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p);
 * order is preserved and the best token always stays. */
static int apply_min_p(const float *w, int32_t *ids, int n, float min_p)
{
    float cut = max_logit(w, ids, n) + logf(min_p);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (w[ids[i]] >= cut) ids[m++] = ids[i];
    return m;
}

/* Draw from softmax(logit / temp) over the candidates. (logit - max) / temp
 * rather than logit / temp - max: a tiny temperature must not overflow. */
static int32_t draw(herd_sampler *s, const int32_t *ids, int n)
{
    float inv_t = 1.0f / s->p.temp, max = max_logit(s->work, ids, n);
    if (isinf(inv_t)) inv_t = FLT_MAX; /* a denormal temperature: as sharp as it gets */
    double sum = 0;
    for (int i = 0; i < n; i++) {
        s->prob[i] = expf((s->work[ids[i]] - max) * inv_t);
        sum += s->prob[i];
    }
    if (!(sum > 0) || !isfinite(sum)) return ids[0]; /* all -inf: nothing better to do */
    double target = rng_uniform(s->rng) * sum, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += s->prob[i];
        if (target < cum) return ids[i];
    }
    for (int i = n - 1; i > 0; i--) /* rounding left target past the end */
        if (s->prob[i] > 0) return ids[i];
    return ids[0];
}

/* The chain from top-k on, over the (penalised, maybe masked) work row. */
static int32_t run_chain(herd_sampler *s)
{
    int n = s->n_vocab;
    if (s->p.temp <= 0) return argmax(s->work, n);

    for (int i = 0; i < n; i++) s->cand[i] = i;
    bool sorted = false;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        select_top(s->work, s->cand, n, s->p.top_k);
        n = s->p.top_k;
        sorted = true;
    }
    if (s->p.top_p < 1.0f) {
        n = apply_top_p(s->work, s->cand, n, sorted, s->p.top_p);
    }
    if (s->p.min_p > 0.0f) n = apply_min_p(s->work, s->cand, n, s->p.min_p);
    return draw(s, s->cand, n);
}

/* Does the grammar take the free draw as it is? With a budget, only if the
 * draw keeps the output able to finish in time. */
static bool free_draw_ok(herd_sampler *s, int32_t tok)
{
    if (s->budget == HERD_GMATCH_NO_BUDGET) return herd_gmatch_allows(s->grammar, tok);
    return herd_gmatch_cost_after(s->grammar, tok) <= s->budget;
}

/* The grammar refused the free draw: mask the row and draw again. As
 * llama.cpp's common sampler does, the cheap check of one token comes first,
 * since most draws of a model that follows the format are allowed. */
static int32_t constrained_draw(herd_sampler *s)
{
    int count = herd_gmatch_mask(s->grammar, s->allowed, s->budget);
    if (count == 0) {
        herd_seterr(HERD_E_INVALID, "sampler: the grammar admits no token here");
        return -1;
    }
    int32_t first = -1;
    for (int i = 0; i < s->n_vocab; i++) {
        if (!s->allowed[i])
            s->work[i] = -INFINITY;
        else if (first < 0)
            first = i;
    }
    int32_t tok = run_chain(s);
    /* Every allowed token had logit -inf (or NaN): the first allowed one. */
    return tok >= 0 && s->allowed[tok] ? tok : first;
}

int32_t herd_sampler_sample(herd_sampler *s, const float *logits)
{
    if (!s || !logits) {
        herd_seterr(HERD_E_INVALID, "sampler: %s is NULL", s ? "logits" : "sampler");
        return -1;
    }
    int n = s->n_vocab;
    for (int i = 0; i < n; i++) s->work[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    apply_penalty(s);
    int32_t tok = run_chain(s);
    if (s->grammar && !free_draw_ok(s, tok)) tok = constrained_draw(s);
    return tok;
}
