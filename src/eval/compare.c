/*
 * compare.c — one model's figures for `herd compare`, measured in the
 * calling process (the CLI runs each model in a child of its own, so that the
 * child's peak RSS is that model's peak memory, and interleaves the children's
 * bench runs; see eval.h for the three steps).
 *
 *   load      herd_model_load, wall time;
 *   bench     `herd bench`'s runs (bench.c) at small sizes, one at a time:
 *             pp (one batch of pp_n tokens) and tg (tg_n single decodes),
 *             with the same random tokens for every model;
 *   predict   the performance model (src/catalog/predict.h) for the same
 *             tests from the machine's probe, and herd's memory estimate for
 *             the largest context made here;
 *   quality   perplexity on a text (llama.cpp's method, in chunks of
 *             herd_ppl_default_chunk), its bits per byte (comparable across
 *             vocabularies, where perplexity is not), and accuracy on a
 *             multiple-choice task (herd_mc_evaluate);
 *   facts     architecture, parameters, file type and size, training context,
 *             general.license, and the catalog entry whose id the file's name
 *             or general.name contains (its licence and commercial terms).
 */
#include "catalog/catalog.h"
#include "catalog/predict.h"
#include "eval/eval.h"
#include "model/model.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void note(herd_compare_row *row, herd_status *first, herd_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Record the first failure: its status and message. */
static void note(herd_compare_row *row, herd_status *first, herd_status st, const char *fmt, ...)
{
    if (*first) return;
    *first = st;
    if (row->error[0]) return; /* an earlier step's failure comes first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(row->error, sizeof row->error, fmt, ap);
    va_end(ap);
    herd_seterr(st, "%s", row->error);
}

/* "Llama-2-7B-chat.Q4_K_M.gguf" -> "llama-2-7b-chat-q4-k-m-gguf". */
static void normalize(const char *s, char *out, size_t cap)
{
    size_t k = 0;
    for (; *s && k + 1 < cap; s++) {
        char c = isalnum((unsigned char)*s) ? (char)tolower((unsigned char)*s) : '-';
        if (c != '-' || (k > 0 && out[k - 1] != '-')) out[k++] = c;
    }
    out[k] = 0;
}

/* The longest catalog id that the label or general.name contains. */
static void match_catalog(herd_compare_row *row)
{
    herd_catalog *cat;
    if (herd_catalog_load(&cat)) return;
    char a[160], b[160];
    normalize(row->label, a, sizeof a);
    normalize(row->name, b, sizeof b);
    size_t best = 0;
    for (int i = 0; i < herd_catalog_n_models(cat); i++) {
        const herd_catalog_model *m = herd_catalog_model_at(cat, i);
        size_t n = strlen(m->id);
        if (n <= best || (!strstr(a, m->id) && !strstr(b, m->id))) continue;
        best = n;
        snprintf(row->catalog_id, sizeof row->catalog_id, "%s", m->id);
        snprintf(row->catalog_licence, sizeof row->catalog_licence, "%s", m->licence);
        snprintf(row->catalog_commercial, sizeof row->catalog_commercial, "%s",
                 herd_commercial_name(m->commercial));
    }
    herd_catalog_free(cat);
}

/* FNV-1a over every token's text: two models with the same hash split text
 * the same way, so their perplexities are over the same tokens. */
static uint64_t vocab_hash(const herd_model *m)
{
    uint64_t h = 1469598103934665603ull;
    char buf[512];
    for (int id = 0; id < herd_n_vocab(m); id++) {
        int n = herd_token_to_piece(m, id, true, buf, sizeof buf);
        for (int k = 0; k < n && k < (int)sizeof buf; k++)
            h = (h ^ (uint8_t)buf[k]) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* a byte no UTF-8 text holds: the separator */
    }
    return h;
}

static void file_facts(const herd_model *m, const char *path, herd_compare_row *row)
{
    herd_model_info in;
    herd_model_get_info(m, &in);
    const char *base = strrchr(path, '/');
    snprintf(row->label, sizeof row->label, "%s", base ? base + 1 : path);
    snprintf(row->name, sizeof row->name, "%s", in.name);
    snprintf(row->arch, sizeof row->arch, "%s", in.arch);
    snprintf(row->file_type, sizeof row->file_type, "%s", in.file_type);
    if (!herd_gguf_get_strz(m->file, "general.license", row->licence, sizeof row->licence))
        row->licence[0] = 0;
    row->params = (double)in.n_params;
    row->n_vocab = in.n_vocab;
    row->vocab_hash = vocab_hash(m);
    row->file_bytes = (double)in.file_size;
    row->ctx_train = in.n_ctx_train;
    match_catalog(row);
}

struct herd_compare_model {
    herd_model *m;
    herd_ctx *bench; /* the bench's context, until the quality step */
    herd_compare_opts o;
    unsigned rng; /* the same tokens for every model of a comparison */
    int pp, tg;
};

static herd_ctx_params ctx_params(int n_ctx, int n_batch, int n_threads)
{
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch < n_ctx ? n_batch : n_ctx;
    cp.n_threads = n_threads;
    return cp;
}

static herd_ctx *new_ctx(herd_model *m, int n_ctx, int n_batch, int n_threads)
{
    herd_ctx_params cp = ctx_params(n_ctx, n_batch, n_threads);
    herd_ctx *c = NULL;
    return herd_ctx_new(m, &cp, &c) ? NULL : c;
}

/* The bench's context holds the longer test and a batch of the prompt. */
static int bench_ctx_len(const herd_compare_model *cm)
{
    return (cm->pp > cm->tg ? cm->pp : cm->tg) + 8;
}

/* herd's estimate of the peak memory: the weights and the largest of the
 * contexts this measurement makes, one at a time (bench, perplexity, task). */
static double predicted_memory(const herd_compare_model *cm)
{
    herd_ctx_params cp[3];
    int k = 0, need = 0;
    cp[k++] = ctx_params(bench_ctx_len(cm), cm->pp, cm->o.n_threads);
    if (cm->o.text_path)
        cp[k++] = ctx_params(herd_ppl_default_chunk(cm->m, cm->o.n_ctx), 512, cm->o.n_threads);
    if (cm->o.task && !herd_mc_max_tokens(cm->m, cm->o.task, &need) && need > 0)
        cp[k++] = ctx_params(need, 512, cm->o.n_threads);
    double best = 0;
    for (int i = 0; i < k; i++) {
        const herd_mem_estimate e = herd_estimate_memory_ctx(cm->m, &cp[i]);
        best = (double)e.total > best ? (double)e.total : best;
    }
    return best;
}

/* The performance model's pp and tg for this file at the bench's sizes. */
static void predict_speed(const herd_compare_model *cm, herd_compare_row *row)
{
    if (!cm->o.probe) return;
    herd_model_info in;
    herd_model_get_info(cm->m, &in);
    herd_shape s;
    herd_shape_of_model(cm->m, &s);
    const double bpw = 8.0 * (double)in.file_size / (double)(in.n_params ? in.n_params : 1);
    herd_prediction pr;
    if (herd_predict(cm->o.probe, &s, herd_model_matrix_type(cm->m), bpw, in.n_threads, cm->pp,
                     cm->tg, 0, &pr))
        return; /* no rates for this file: the figures stay < 0 */
    row->pp_pred = pr.pp, row->tg_pred = pr.tg, row->pred_threads = pr.threads;
}

typedef struct {
    const herd_model *m;
    double bytes;
} byte_count;

/* Bytes of text the scored tokens stand for (a herd_ppl_each_fn). */
static herd_status count_bytes(const float *logits, int n_vocab, int32_t next, void *user)
{
    (void)logits;
    (void)n_vocab;
    byte_count *bc = user;
    char buf[8];
    const int n = herd_token_to_piece(bc->m, next, false, buf, sizeof buf); /* length needed */
    if (n > 0) bc->bytes += n;
    return HERD_OK;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    fclose(f);
    *len = n;
    return buf;
}

static herd_status perplexity(herd_model *m, const herd_compare_opts *o, herd_compare_row *row)
{
    size_t len = 0;
    char *text = read_all(o->text_path, &len);
    if (!text) return herd_seterr(HERD_E_IO, "%s: cannot read", o->text_path);
    const int chunk = herd_ppl_default_chunk(m, o->n_ctx);
    int n = 0;
    int32_t *ids = NULL;
    herd_status st = herd_tokenize(m, text, len, herd_add_bos(m), false, NULL, 0, &n);
    if (!st && !(ids = malloc(((size_t)n + 1) * sizeof *ids))) st = HERD_E_NOMEM;
    if (!st) st = herd_tokenize(m, text, len, herd_add_bos(m), false, ids, n + 1, &n);
    free(text);
    herd_ctx *c = st ? NULL : new_ctx(m, chunk, 512, o->n_threads);
    herd_ppl_result r;
    if (!st && !c) st = HERD_E_NOMEM;
    byte_count bc = {m, 0};
    if (!st) st = herd_perplexity_each(c, ids, n, chunk, o->max_chunks, NULL, count_bytes, &bc, &r);
    if (!st) row->ppl = r.ppl, row->ppl_err = r.err, row->ppl_ctx = chunk;
    /* Bits per byte: the same total log-loss, per byte of the text scored
     * rather than per token, so that it does not depend on the vocabulary. */
    if (!st && bc.bytes > 0) row->bpb = r.nll / (M_LN2 * bc.bytes);
    herd_ctx_free(c);
    free(ids);
    return st;
}

static herd_status accuracy(herd_model *m, const herd_compare_opts *o, herd_compare_row *row)
{
    int need = 0;
    herd_status st = herd_mc_max_tokens(m, o->task, &need);
    herd_ctx *c = st ? NULL : new_ctx(m, need, 512, o->n_threads);
    herd_mc_result r;
    if (!st && !c) st = HERD_E_NOMEM;
    if (!st) st = herd_mc_evaluate(c, o->task, NULL, NULL, NULL, &r);
    if (!st) {
        row->acc = r.value[HERD_MC_ACC], row->acc_err = r.stderr_[HERD_MC_ACC];
        row->acc_norm = r.value[HERD_MC_ACC_NORM], row->acc_norm_err = r.stderr_[HERD_MC_ACC_NORM];
    }
    herd_ctx_free(c);
    return st;
}

static void phase(const herd_compare_opts *o, const char *what)
{
    if (o->phase) o->phase(what, o->user);
}

static void row_init(herd_compare_row *row, const char *path)
{
    memset(row, 0, sizeof *row);
    snprintf(row->path, sizeof row->path, "%s", path);
    const char *base = strrchr(path, '/');
    snprintf(row->label, sizeof row->label, "%s", base ? base + 1 : path);
    row->params = row->file_bytes = row->load_s = row->peak_rss_bytes = -1;
    row->pp_ts = row->tg_ts = row->pp_sd = row->tg_sd = row->ppl = row->ppl_err = row->bpb = -1;
    row->pp_pred = row->tg_pred = row->mem_pred_bytes = -1;
    row->acc = row->acc_err = row->acc_norm = row->acc_norm_err = -1;
}

herd_status herd_compare_open(const char *path, const herd_compare_opts *o, herd_compare_row *row,
                              herd_compare_model **out)
{
    *out = NULL;
    row_init(row, path);
    herd_compare_model *cm = calloc(1, sizeof *cm);
    if (!cm) return herd_seterr(HERD_E_NOMEM, "compare: out of memory");
    cm->o = *o;
    cm->rng = 1234;
    cm->pp = o->pp_n > 0 ? o->pp_n : 64, cm->tg = o->tg_n > 0 ? o->tg_n : 16;
    row->pp_n = cm->pp, row->tg_n = cm->tg, row->reps = o->reps > 0 ? o->reps : 3;
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = o->n_threads;
    herd_status first = HERD_OK, st;
    const double t0 = herd_time();
    phase(o, "load");
    if ((st = herd_model_load(path, &mp, &cm->m))) {
        note(row, &first, st, "load: %s", herd_errmsg());
        free(cm);
        return first;
    }
    row->load_s = herd_time() - t0;
    file_facts(cm->m, path, row);
    predict_speed(cm, row);
    row->mem_pred_bytes = predicted_memory(cm);
    if (!(cm->bench = new_ctx(cm->m, bench_ctx_len(cm), cm->pp, o->n_threads)))
        note(row, &first, HERD_E_NOMEM, "bench: %s", herd_errmsg());
    *out = cm;
    return first;
}

herd_status herd_compare_bench(herd_compare_model *cm, bool prompt, double *tps)
{
    *tps = -1;
    if (!cm->bench) return herd_seterr(HERD_E_INVALID, "bench: no context");
    return herd_bench_run(cm->bench, cm->m, prompt, prompt ? cm->pp : cm->tg, NULL, &cm->rng, tps);
}

herd_status herd_compare_quality(herd_compare_model *cm, herd_compare_row *row)
{
    herd_ctx_free(cm->bench);
    cm->bench = NULL;
    herd_status first = HERD_OK, st;
    const herd_compare_opts *o = &cm->o;
    if (o->text_path) phase(o, "perplexity");
    if (o->text_path && (st = perplexity(cm->m, o, row)))
        note(row, &first, st, "perplexity: %s", herd_errmsg());
    if (o->task) phase(o, "task");
    if (o->task && (st = accuracy(cm->m, o, row))) note(row, &first, st, "task: %s", herd_errmsg());
    return first;
}

void herd_compare_close(herd_compare_model *cm)
{
    if (!cm) return;
    herd_ctx_free(cm->bench);
    herd_model_free(cm->m);
    free(cm);
}
