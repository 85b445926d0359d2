/*
 * kld.c — how far a second model's predictions are from a base model's, as
 * llama-perplexity --kl-divergence measures it.
 *
 * The base run (usually the F16/F32 model) goes through herd_perplexity_each
 * with herd_kld_writer_add as its hook and saves, for every scored position,
 * the whole log-softmax distribution (eval.h documents the file). The second
 * run decodes the same tokens, chunked the same way, with herd_kld_compare as
 * its hook: position by position it reads the saved distribution back and
 * adds up what llama.cpp adds up:
 *
 *   KL(base ‖ model) = Σ_i p_base(i) · (log p_base(i) − log p(i))
 *   same top         = argmax of both distributions is the same token
 *   Δp               = p(right token) − p_base(right token)
 *   nll, nll_base    = −log p of the right token under each, for the
 *                      perplexity ratio and its correlated uncertainty.
 *
 * herd_kld_summarize turns the sums into llama.cpp's printed figures with its
 * uncertainty formulas (mean_and_uncertainty, covariance), so the two tools'
 * outputs read the same.
 */
#include "eval/eval.h"
#include "util/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HEADER_BYTES 24

/* Scored positions per chunk: n/2 .. n-2. */
static int per_chunk(int n_chunk)
{
    return n_chunk - 1 - n_chunk / 2;
}

/* log-softmax of logits into out (double accumulation, as llama.cpp). */
static void log_softmax(const float *logits, int n_vocab, float *out)
{
    float mx = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    const double lse = mx + log(sum);
    for (int i = 0; i < n_vocab; i++) out[i] = (float)((double)logits[i] - lse);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------ writer */

struct herd_kld_writer {
    herd_out out; /* a temporary file, renamed over the path by a complete run */
    FILE *f;
    char path[512];
    int n_vocab;
    long expected, written; /* positions */
    float *row;
    bool failed;
};

static herd_status write_header(herd_kld_writer *w, const int32_t *tokens, int n_chunk,
                                int n_chunks)
{
    unsigned char h[HEADER_BYTES];
    memcpy(h, HERD_KLD_MAGIC, 8);
    put_u32(h + 8, (uint32_t)w->n_vocab);
    put_u32(h + 12, (uint32_t)n_chunk);
    put_u32(h + 16, (uint32_t)n_chunks);
    put_u32(h + 20, 0);
    bool ok = fwrite(h, 1, sizeof h, w->f) == sizeof h;
    const size_t n = (size_t)n_chunk * (size_t)n_chunks;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char b[4];
        put_u32(b, (uint32_t)tokens[i]);
        ok = fwrite(b, 1, 4, w->f) == 4;
    }
    return ok ? HERD_OK : herd_seterr(HERD_E_IO, "%s: write failed", w->path);
}

herd_status herd_kld_writer_open(const char *path, int n_vocab, const int32_t *tokens, int n_tokens,
                                 int n_chunk, int max_chunks, herd_kld_writer **out)
{
    *out = NULL;
    const int n_chunks = herd_ppl_chunks(n_tokens, n_chunk, max_chunks);
    if (n_vocab < 1 || n_chunk < 4 || n_chunks < 1)
        return herd_seterr(HERD_E_INVALID, "kl-divergence base: nothing to save (%d chunks of %d)",
                           n_chunks, n_chunk);
    herd_kld_writer *w = herd_calloc(1, sizeof *w);
    if (!w) return HERD_E_NOMEM;
    snprintf(w->path, sizeof w->path, "%s", path);
    w->n_vocab = n_vocab;
    w->expected = (long)n_chunks * per_chunk(n_chunk);
    w->row = malloc((size_t)n_vocab * sizeof *w->row);
    herd_status st = HERD_OK;
    if (!w->row)
        st = herd_seterr(HERD_E_NOMEM, "kl-divergence base: out of memory");
    else if (!(st = herd_out_open(&w->out, path, NULL))) {
        w->f = w->out.fp;
        st = write_header(w, tokens, n_chunk, n_chunks);
    }
    if (st) {
        herd_out_abort(&w->out);
        free(w->row);
        free(w);
        return st;
    }
    *out = w;
    return HERD_OK;
}

herd_status herd_kld_writer_add(const float *logits, int n_vocab, int32_t next, void *user)
{
    (void)next;
    herd_kld_writer *w = user;
    if (n_vocab != w->n_vocab || w->written >= w->expected)
        return herd_seterr(HERD_E_INVALID, "%s: more positions than the header says", w->path);
    log_softmax(logits, n_vocab, w->row);
    /* The file is little-endian; so are the machines herd runs on (x86-64). */
    if (fwrite(w->row, sizeof(float), (size_t)n_vocab, w->f) != (size_t)n_vocab) {
        w->failed = true;
        return herd_seterr(HERD_E_IO, "%s: write failed", w->path);
    }
    w->written++;
    return HERD_OK;
}

herd_status herd_kld_writer_close(herd_kld_writer *w)
{
    if (!w) return HERD_OK;
    herd_status st = HERD_OK;
    /* Only a complete file replaces the path; anything less is removed. */
    if (w->failed)
        st = HERD_E_IO;
    else if (w->written != w->expected)
        st = herd_seterr(HERD_E_INVALID, "%s: %ld positions written, the header says %ld", w->path,
                         w->written, w->expected);
    if (st)
        herd_out_abort(&w->out);
    else
        st = herd_out_commit(&w->out);
    free(w->row);
    free(w);
    return st;
}

/* ------------------------------------------------------------ reader */

struct herd_kld_base {
    FILE *f;
    char path[512];
    int n_vocab, n_chunk, n_chunks;
    int32_t *tokens;
    long expected, read; /* positions */
    float *row;
    herd_kld_stats s;
};

static herd_status read_header(herd_kld_base *b)
{
    unsigned char h[HEADER_BYTES];
    if (fread(h, 1, sizeof h, b->f) != sizeof h || memcmp(h, HERD_KLD_MAGIC, 8) != 0)
        return herd_seterr(HERD_E_FORMAT, "%s: not a herd KL-divergence base file", b->path);
    const uint32_t nv = get_u32(h + 8), nc = get_u32(h + 12), nk = get_u32(h + 16);
    if (nv < 1 || nv > (1u << 24) || nc < 4 || nc > (1u << 24) || nk < 1 || nk > (1u << 24))
        return herd_seterr(HERD_E_FORMAT, "%s: bad header (vocab %u, chunk %u, chunks %u)", b->path,
                           nv, nc, nk);
    b->n_vocab = (int)nv, b->n_chunk = (int)nc, b->n_chunks = (int)nk;
    uint64_t n_tok, n_pos, size = HEADER_BYTES, bytes;
    if (!herd_mul_ok(nc, nk, &n_tok) || n_tok > INT32_MAX ||
        !herd_mul_ok(nk, (uint64_t)per_chunk((int)nc), &n_pos) ||
        !herd_mul_ok(n_pos, 4ull * nv, &bytes) || !herd_add_ok(size, 4 * n_tok, &size) ||
        !herd_add_ok(size, bytes, &size))
        return herd_seterr(HERD_E_FORMAT, "%s: header sizes overflow", b->path);
    struct stat sb;
    if (fstat(fileno(b->f), &sb) != 0 || (uint64_t)sb.st_size != size)
        return herd_seterr(HERD_E_FORMAT, "%s: %lld bytes, its header needs %llu", b->path,
                           (long long)sb.st_size, (unsigned long long)size);
    b->expected = (long)n_pos;
    b->tokens = malloc(n_tok * sizeof *b->tokens);
    b->row = malloc((size_t)nv * sizeof *b->row);
    b->s.kld = malloc(n_pos * sizeof *b->s.kld);
    b->s.p_diff = malloc(n_pos * sizeof *b->s.p_diff);
    if (!b->tokens || !b->row || !b->s.kld || !b->s.p_diff)
        return herd_seterr(HERD_E_NOMEM, "%s: out of memory", b->path);
    for (uint64_t i = 0; i < n_tok; i++) {
        unsigned char t[4];
        if (fread(t, 1, 4, b->f) != 4) return herd_seterr(HERD_E_IO, "%s: read failed", b->path);
        b->tokens[i] = (int32_t)get_u32(t);
        if (b->tokens[i] < 0 || b->tokens[i] >= b->n_vocab)
            return herd_seterr(HERD_E_FORMAT, "%s: token %d outside the vocabulary", b->path,
                               b->tokens[i]);
    }
    return HERD_OK;
}

herd_status herd_kld_base_open(const char *path, herd_kld_base **out)
{
    *out = NULL;
    herd_kld_base *b = herd_calloc(1, sizeof *b);
    if (!b) return HERD_E_NOMEM;
    snprintf(b->path, sizeof b->path, "%s", path);
    b->f = fopen(path, "rb");
    herd_status st = b->f ? read_header(b) : herd_seterr(HERD_E_IO, "%s: cannot open", path);
    if (st) {
        herd_kld_base_close(b);
        return st;
    }
    *out = b;
    return HERD_OK;
}

void herd_kld_base_close(herd_kld_base *b)
{
    if (!b) return;
    if (b->f) fclose(b->f);
    free(b->tokens);
    free(b->row);
    free(b->s.kld);
    free(b->s.p_diff);
    free(b);
}

int herd_kld_base_n_vocab(const herd_kld_base *b)
{
    return b->n_vocab;
}
int herd_kld_base_n_chunk(const herd_kld_base *b)
{
    return b->n_chunk;
}
int herd_kld_base_n_chunks(const herd_kld_base *b)
{
    return b->n_chunks;
}
const herd_kld_stats *herd_kld_base_stats(const herd_kld_base *b)
{
    return &b->s;
}

const int32_t *herd_kld_base_tokens(const herd_kld_base *b, int *n_tokens)
{
    *n_tokens = b->n_chunk * b->n_chunks;
    return b->tokens;
}

/* First index of the largest value, as llama.cpp picks the top token. */
static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Add one position to the sums; base holds the saved log p. */
static void accumulate(herd_kld_stats *s, const float *logits, const float *base, int n_vocab,
                       int32_t tok)
{
    const int top = argmax(logits, n_vocab);
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - logits[top]);
    const double lse = logits[top] + log(sum);
    const double nll = lse - logits[tok], nll_base = -(double)base[tok];
    double kld = 0;
    for (int i = 0; i < n_vocab; i++) {
        const double lp_base = base[i];
        kld += exp(lp_base) * (lp_base - ((double)logits[i] - lse));
    }
    const double p_diff = exp(-nll) - exp(-nll_base);
    s->sum_nll += nll;
    s->sum_nll2 += nll * nll;
    s->sum_nll_base += nll_base;
    s->sum_nll_base2 += nll_base * nll_base;
    s->sum_nll_nll_base += nll * nll_base;
    s->sum_kld += kld;
    s->sum_kld2 += kld * kld;
    s->sum_p_diff += p_diff;
    s->sum_p_diff2 += p_diff * p_diff;
    s->sum_p_diff4 += p_diff * p_diff * p_diff * p_diff;
    s->n_same_top += top == argmax(base, n_vocab);
    s->kld[s->count] = (float)kld;
    s->p_diff[s->count] = (float)p_diff;
    s->count++;
}

herd_status herd_kld_compare(const float *logits, int n_vocab, int32_t next, void *user)
{
    herd_kld_base *b = user;
    if (n_vocab != b->n_vocab)
        return herd_seterr(HERD_E_INVALID, "%s: saved with a vocabulary of %d, the model has %d",
                           b->path, b->n_vocab, n_vocab);
    if (b->read >= b->expected)
        return herd_seterr(HERD_E_INVALID, "%s: more positions than the base run had", b->path);
    if (fread(b->row, sizeof(float), (size_t)n_vocab, b->f) != (size_t)n_vocab)
        return herd_seterr(HERD_E_IO, "%s: read failed", b->path);
    b->read++;
    accumulate(&b->s, logits, b->row, n_vocab, next);
    return HERD_OK;
}

/* ----------------------------------------------------------- summary */

const float herd_kld_fractions[HERD_KLD_NQ] = {1,   .999f, .99f, .95f,  .90f, .5f,
                                               .1f, .05f,  .01f, .001f, 0};
const float herd_pdiff_fractions[HERD_PDIFF_NQ] = {1,    .999f, .99f, .95f, .90f,  .75f, .5f,
                                                   .25f, .1f,   .05f, .01f, .001f, 0};

/* llama.cpp's mean_and_uncertainty: no uncertainty from 10 values or fewer. */
static herd_vu mean_unc(double sum, double sum2, long count)
{
    herd_vu r = {0, 0};
    if (count < 1) return r;
    r.val = sum / count;
    const double var = sum2 / count - r.val * r.val;
    r.unc = var > 0 && count > 10 ? sqrt(var / (count - 1)) : 0;
    return r;
}

static double covariance(double a, double b, double ab, long count)
{
    if (count < 10) return 0;
    return (ab / count - (a / count) * (b / count)) / (count - 1);
}

static int cmp_float(const void *pa, const void *pb)
{
    const float a = *(const float *)pa, b = *(const float *)pb;
    return a < b ? -1 : a > b;
}

/* llama.cpp's percentile: linear interpolation between sorted neighbours. */
static double percentile(const float *v, long n, float fraction)
{
    if (fraction <= 0) return v[0];
    if (fraction >= 1) return v[n - 1];
    float p = fraction * (float)(n - 1);
    long ip = (long)p;
    p -= (float)ip;
    return (1 - p) * v[ip] + p * v[ip + 1 < n ? ip + 1 : n - 1];
}

static herd_status quantiles(const float *values, long n, const float *fr, int nq, double *out)
{
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return herd_seterr(HERD_E_NOMEM, "kl-divergence: out of memory");
    memcpy(v, values, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    for (int i = 0; i < nq; i++) out[i] = percentile(v, n, fr[i]);
    free(v);
    return HERD_OK;
}

herd_status herd_kld_summarize(const herd_kld_stats *s, herd_kld_summary *o)
{
    memset(o, 0, sizeof *o);
    if (s->count < 1) return herd_seterr(HERD_E_INVALID, "kl-divergence: no positions compared");
    const long n = s->count;
    const herd_vu lp = mean_unc(s->sum_nll, s->sum_nll2, n);
    const herd_vu lpb = mean_unc(s->sum_nll_base, s->sum_nll_base2, n);
    const double cov = covariance(s->sum_nll, s->sum_nll_base, s->sum_nll_nll_base, n);
    o->ppl = (herd_vu){exp(lp.val), exp(lp.val) * lp.unc};
    o->ppl_base = (herd_vu){exp(lpb.val), exp(lpb.val) * lpb.unc};
    o->log_ppl_cor = lp.unc > 0 && lpb.unc > 0 ? cov / (lp.unc * lpb.unc) : 0;
    const double lr_var = lp.unc * lp.unc + lpb.unc * lpb.unc - 2 * cov;
    o->log_ppl_ratio = (herd_vu){lp.val - lpb.val, lr_var > 0 ? sqrt(lr_var) : 0};
    o->ppl_ratio =
        (herd_vu){exp(o->log_ppl_ratio.val), exp(o->log_ppl_ratio.val) * o->log_ppl_ratio.unc};
    const double d_var = o->ppl.unc * o->ppl.unc + o->ppl_base.unc * o->ppl_base.unc -
                         2 * o->ppl.val * o->ppl_base.val * cov;
    o->ppl_diff = (herd_vu){o->ppl.val - o->ppl_base.val, d_var > 0 ? sqrt(d_var) : 0};
    o->kld = mean_unc(s->sum_kld, s->sum_kld2, n);
    o->p_diff = mean_unc(s->sum_p_diff, s->sum_p_diff2, n);
    const herd_vu mse = mean_unc(s->sum_p_diff2, s->sum_p_diff4, n);
    const double rms = sqrt(mse.val);
    o->p_diff_rms = (herd_vu){rms, rms > 0 ? 0.5 / rms * mse.unc : 0};
    const double same = (double)s->n_same_top / n;
    o->same_top = (herd_vu){same, n > 1 ? sqrt(same * (1 - same) / (n - 1)) : 0};
    herd_status st = quantiles(s->kld, n, herd_kld_fractions, HERD_KLD_NQ, o->kld_q);
    if (!st) st = quantiles(s->p_diff, n, herd_pdiff_fractions, HERD_PDIFF_NQ, o->p_diff_q);
    return st;
}
