/*
 * bench.c — llama-bench's two tests, measured once for `herd bench` and
 * `herd compare` alike:
 *
 *   pp<N>: one batch of N random tokens decoded from an empty cache;
 *   tg<N>: N single-token decodes from an empty cache (the first is BOS);
 *   with a depth D (llama-bench's -d): before each run, untimed, D random
 *   tokens are put in the cache and the test continues after them
 *   (pp<N>@d<D>, tg<N>@d<D>).
 *
 * One warm-up run (it pages the weights in and settles the caches), then
 * n_reps timed runs; tokens/s as mean, sample standard deviation, median and
 * range, so that a figure comes with its spread.
 */
#include "eval/eval.h"
#include "util/util.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void herd_bench_summarize(double *ts, int n, herd_bench_result *out)
{
    out->n_reps = n;
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += ts[i] / n;
    for (int i = 0; i < n; i++) var += (ts[i] - mean) * (ts[i] - mean);
    qsort(ts, (size_t)n, sizeof *ts, cmp_double);
    out->mean = mean;
    out->sd = n > 1 ? sqrt(var / (n - 1)) : 0;
    out->median = n % 2 ? ts[n / 2] : (ts[n / 2 - 1] + ts[n / 2]) / 2;
    out->min = ts[0];
    out->max = ts[n - 1];
}

/* Put `depth` random tokens in the cache in batches of n_batch (untimed). */
static herd_status fill_depth(herd_ctx *c, int nv, int depth, int n_batch, int32_t *toks,
                              int32_t *pos, unsigned *rng)
{
    herd_status st = HERD_OK;
    for (int p0 = 0; p0 < depth && !st; p0 += n_batch) {
        const int n = depth - p0 < n_batch ? depth - p0 : n_batch;
        for (int j = 0; j < n; j++)
            toks[j] = (int32_t)(rand_r(rng) % (unsigned)nv), pos[j] = p0 + j;
        herd_batch b = {.n_tokens = n, .token = toks, .pos = pos};
        st = herd_decode(c, &b);
    }
    return st;
}

/* One timed run (after the untimed depth); tokens/s in *tps. toks and pos
 * hold max(n, n_batch) entries. */
static herd_status run_once(herd_ctx *c, const herd_model *m, bool prompt, int32_t *toks,
                            int32_t *pos, int n, const herd_bench_depth *d, unsigned *rng,
                            double *tps)
{
    const int nv = herd_n_vocab(m);
    herd_status st = HERD_OK;
    if (d && d->depth > 0 && d->filled)
        herd_kv_remove(c, -1, d->depth, -1); /* what the last run added */
    else {
        herd_kv_remove(c, -1, 0, -1);
        if (d && d->depth > 0) st = fill_depth(c, nv, d->depth, d->n_batch, toks, pos, rng);
    }
    if (st) return st;
    const int p0 = d ? d->depth : 0;
    for (int j = 0; j < n; j++) toks[j] = (int32_t)(rand_r(rng) % (unsigned)nv), pos[j] = p0 + j;
    if (!prompt && !p0 && herd_token_bos(m) >= 0) toks[0] = herd_token_bos(m);
    const double t0 = herd_time();
    if (prompt) {
        herd_batch b = {.n_tokens = n, .token = toks, .pos = pos};
        st = herd_decode(c, &b);
    } else {
        for (int j = 0; j < n && !st; j++) {
            herd_batch b = {.n_tokens = 1, .token = toks + j, .pos = pos + j};
            st = herd_decode(c, &b);
        }
    }
    const double dt = herd_time() - t0;
    *tps = n / (dt > 0 ? dt : 1e-9);
    return st;
}

herd_status herd_bench_run(herd_ctx *c, const herd_model *m, bool prompt, int n,
                           const herd_bench_depth *d, unsigned *rng, double *tps)
{
    if (n < 1 || (d && d->depth > 0 && d->n_batch < 1))
        return herd_seterr(HERD_E_INVALID, "bench: %d tokens", n);
    const int cap = d && d->depth > 0 && d->n_batch > n ? d->n_batch : n;
    int32_t *toks = malloc((size_t)cap * sizeof *toks), *pos = malloc((size_t)cap * sizeof *pos);
    herd_status st = toks && pos ? run_once(c, m, prompt, toks, pos, n, d, rng, tps)
                                 : herd_seterr(HERD_E_NOMEM, "bench: out of memory");
    free(toks);
    free(pos);
    return st;
}

herd_status herd_bench_fill(herd_ctx *c, const herd_model *m, const herd_bench_depth *d,
                            unsigned *rng)
{
    if (!d || d->depth < 1 || d->n_batch < 1)
        return herd_seterr(HERD_E_INVALID, "bench: nothing to fill");
    int32_t *toks = malloc((size_t)d->n_batch * sizeof *toks),
            *pos = malloc((size_t)d->n_batch * sizeof *pos);
    herd_kv_remove(c, -1, 0, -1);
    herd_status st = toks && pos
                         ? fill_depth(c, herd_n_vocab(m), d->depth, d->n_batch, toks, pos, rng)
                         : herd_seterr(HERD_E_NOMEM, "bench: out of memory");
    free(toks);
    free(pos);
    return st;
}

herd_status herd_bench_test(herd_ctx *c, const herd_model *m, bool prompt, int n, int n_reps,
                            const herd_bench_depth *d, unsigned *rng, herd_bench_progress progress,
                            void *user, herd_bench_result *out)
{
    if (n_reps < 1) return herd_seterr(HERD_E_INVALID, "bench: %d repetitions", n_reps);
    double *ts = malloc((size_t)n_reps * sizeof *ts);
    herd_status st = ts ? HERD_OK : herd_seterr(HERD_E_NOMEM, "bench: out of memory");
    for (int r = -1; r < n_reps && !st; r++) {
        double v = 0;
        if (progress) progress(prompt, n, r, n_reps, user);
        st = herd_bench_run(c, m, prompt, n, d, rng, &v);
        if (r >= 0) ts[r] = v;
    }
    if (!st) {
        out->n = n;
        herd_bench_summarize(ts, n_reps, out);
    }
    free(ts);
    return st;
}
