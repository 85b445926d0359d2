/*
 * recommend.c — which models fit a person's constraints, and in what order.
 *
 * The filters are hard facts from the catalog: what a variant is tuned for,
 * whether the licence allows commercial use, the languages the model card
 * lists, the context length, and whether some GGUF quantization of it fits in
 * the memory given. A model whose language or licence is unknown does not
 * pass a filter on it: the catalog does not guess.
 *
 * Memory comes one of two ways. The catalog's rule of thumb is the file plus
 * the working memory its memory fact states. `herd recommend` asks for herd's
 * own figure instead (query.estimate): the model's shape (layers, widths,
 * heads, vocabulary, experts, window: the "shape" fact of data/catalog.json,
 * from config.json) goes through herd_estimate_memory_ctx, the very formula
 * `herd info` prints for a file and tests/cli_info_mem.sh checks against a
 * measured peak RSS; the weights are the quantization's file size.
 *
 * The order is deliberately simple, so that it can be explained: models that
 * fit at Q4_K_M or better come before those that only fit at a lower
 * quantization (where llama.cpp's own tables show the quality loss growing
 * fast); for a context filter, longer contexts first; then bigger models
 * first; then higher MMLU where the catalog has it. Every recommendation
 * carries its reasons and every exclusion its cause, each with the source of
 * the fact behind it, so the person can overrule the ranking knowingly.
 */
#include "catalog/catalog_impl.h"
#include "model/model.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The type a recommendation is measured against, and the largest one worth
 * running: beyond Q8_0, F16 doubles the memory for no visible gain. */
#define GOOD_QUANT "Q4_K_M"
#define TOP_QUANT  "Q8_0"

/* ------------------------------------------------------------ shapes */

/* The shape facts the formulas need (data/catalog.json's "shape"), or NULL. */
static const herd_shape *shape_of(const herd_catalog_model *m)
{
    return m->shape_source ? &m->shape : NULL;
}

const char *herd_catalog_shape_source(const herd_catalog *cat, int model)
{
    const herd_catalog_model *m = herd_catalog_model_at(cat, model);
    return m ? m->shape_source : NULL;
}

/* The tensor type of a llama.cpp file type name: "Q4_K_M" -> Q4_K. */
static uint32_t type_of_quant(const char *name)
{
    char base[16];
    snprintf(base, sizeof base, "%s", name);
    size_t n = strlen(base);
    if (n > 2 && base[n - 2] == '_' && strchr("SML", base[n - 1])) base[n - 2] = 0;
    for (uint32_t t = 0; t < HERD_TYPE_COUNT; t++)
        if (!strcmp(herd_type_name(t), base)) return t;
    return HERD_TYPE_F16;
}

herd_status herd_catalog_estimate(const herd_catalog *cat, int model, int quant,
                                  const herd_catalog_query *q, herd_mem_estimate *out, int *n_ctx)
{
    const herd_catalog_model *cm = herd_catalog_model_at(cat, model);
    const herd_shape *s = cm ? shape_of(cm) : NULL;
    if (!s || quant < 0 || quant >= cm->n_quants)
        return herd_seterr(HERD_E_INVALID, "no shape facts for model %d", model);
    /* A model of that shape, with no file: herd_estimate_memory_ctx takes
     * the weights from tensor_bytes and sizes scratch from file_type. */
    herd_model m;
    memset(&m, 0, sizeof m);
    herd_hparams *hp = &m.hp;
    hp->n_ctx_train = cm->context_length > 0 ? cm->context_length : 2048;
    hp->n_layer = s->n_layer, hp->n_embd = s->n_embd, hp->n_ff = s->n_ff;
    hp->n_head = s->n_head, hp->n_head_kv = s->n_head_kv, hp->n_vocab = s->n_vocab;
    hp->head_dim = s->head_dim;
    hp->n_embd_kv = hp->head_dim * s->n_head_kv;
    hp->n_expert = s->n_expert, hp->n_expert_used = s->n_expert_used;
    hp->swa_window = s->swa;
    m.file_type = type_of_quant(cm->quants[quant].type);
    m.tensor_bytes = (uint64_t)(cm->quants[quant].size_gb * 1e9);
    herd_ctx_params p = herd_ctx_default_params();
    p.n_ctx = q && q->n_ctx < 0 ? hp->n_ctx_train : q ? q->n_ctx : 0;
    p.n_seq_max = q && q->n_seq > 0 ? q->n_seq : 1;
    if (q) p.type_k = q->type_k, p.type_v = q->type_v;
    *out = herd_estimate_memory_ctx(&m, &p);
    if (n_ctx) *n_ctx = p.n_ctx > 0 ? p.n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    return HERD_OK;
}

herd_status herd_catalog_predict(const herd_catalog *cat, int model, int quant,
                                 const herd_catalog_query *q, herd_prediction *out)
{
    const herd_catalog_model *cm = herd_catalog_model_at(cat, model);
    const herd_shape *s = cm ? shape_of(cm) : NULL;
    if (!s || !q || !q->probe || quant < 0 || quant >= cm->n_quants)
        return herd_seterr(HERD_E_INVALID, "no shape facts or no probe for model %d", model);
    herd_mem_estimate e;
    int n_ctx = 0;
    herd_status st = herd_catalog_estimate(cat, model, quant, q, &e, &n_ctx);
    if (st) return st;
    /* The mix of types such a file holds (llama-quantize's rules), or, for
     * a type herd cannot make, every matrix at the file's average bits. */
    herd_weight_mix mix;
    if (herd_weight_mix_of_ftype(s, cm->arch, cm->quants[quant].type, &mix) == HERD_OK)
        return herd_predict_mix(q->probe, s, &mix, q->threads, 512, 128, n_ctx, out);
    return herd_predict(q->probe, s, type_of_quant(cm->quants[quant].type), cm->quants[quant].bpw,
                        q->threads, 512, 128, n_ctx, out);
}

/* ------------------------------------------------------- code facts */

/* What the seed says about a model and code: +1 trained or measured on it,
 * -1 said to lag at it. Each with the line and the words it says it in. */
typedef struct {
    const char *prefix; /* catalog ids starting with it */
    int sign;
    const char *what, *source, *quote;
} code_fact;

static const code_fact CODE[] = {
    {"phi-2", 1, "trained on Python code (StackOverflow, competitions, textbooks)", "seed:104",
     "StackOverflow的Python代码子集"},
    {"mpt-", 1, "pre-trained on English text and code", "seed:93", "包含文本和代码的令牌"},
    {"llama-2-", 1, "beats other open LLMs on coding benchmarks (the seed's claim)", "seed:35",
     "编码"},
    {"falcon-180b", 1, "excels at coding tests (the seed's claim)", "seed:74", "编码"},
    {"zephyr-7b", -1, "lags at coding and maths", "seed:25", "它在编码和数学等任务上落后"},
};

static const code_fact *code_of(const herd_catalog_model *m)
{
    for (size_t i = 0; i < sizeof CODE / sizeof CODE[0]; i++)
        if (!strncmp(m->id, CODE[i].prefix, strlen(CODE[i].prefix))) return &CODE[i];
    return NULL;
}

/* ---------------------------------------------------------- filters */

static int quant_index(const herd_catalog_model *m, const char *type)
{
    for (int i = 0; i < m->n_quants; i++)
        if (!strcmp(m->quants[i].type, type)) return i;
    return -1;
}

/* Memory (GB, 10^9 bytes) the model needs at a quantization: herd's
 * estimate, or the file plus the catalog's overhead. -1 if unknown. */
static double need_gb(const herd_catalog *cat, int model, int quant, const herd_catalog_query *q)
{
    const herd_catalog_model *m = &cat->m[model];
    if (!q->estimate) return m->quants[quant].size_gb + cat->overhead_gb;
    herd_mem_estimate e;
    if (herd_catalog_estimate(cat, model, quant, q, &e, NULL)) return -1;
    return (double)e.total / 1e9;
}

/* Can the shape's heads use the query's cache types? The rule is the one a
 * context is made by (herd_kv_check_type: Q8_0 and Q4_0 need a head size that
 * is a multiple of their 32-value block), so recommend never picks a model
 * `herd run -ctk` would refuse. */
static bool cache_fits(const herd_shape *s, const herd_catalog_query *q)
{
    return herd_kv_check_type(q->type_k, s->head_dim) == HERD_OK &&
           herd_kv_check_type(q->type_v, s->head_dim) == HERD_OK;
}

/* The performance model's bound on generation (bench/predict: within 15%):
 * a pick must clear --min-speed by it, or one predicted at 5.4 tokens/s for
 * --min-speed 5 (bench/recommend-check's picks at one thread) may measure
 * 4.7. */
#define SPEED_MARGIN 1.15

/* Is the quantization predicted to generate at least q->min_tg tokens/s,
 * with the model's margin? */
static bool fast_enough(const herd_catalog *cat, int model, int quant, const herd_catalog_query *q)
{
    herd_prediction p;
    if (!q->probe || q->min_tg <= 0) return true;
    return herd_catalog_predict(cat, model, quant, q, &p) == HERD_OK &&
           p.tg >= q->min_tg * SPEED_MARGIN;
}

/* The largest quantization up to Q8_0 that fits in max_ram_gb and is fast
 * enough; with no limits, Q4_K_M. -1 if none fits, -2 if some fit but none
 * is fast enough. */
static int pick_quant(const herd_catalog *cat, int model, const herd_catalog_query *q)
{
    const herd_catalog_model *m = &cat->m[model];
    int top = quant_index(m, TOP_QUANT);
    if (top < 0) top = m->n_quants - 1;
    int good = quant_index(m, GOOD_QUANT);
    if (good < 0) good = top;
    bool fits = false;
    for (int i = q->max_ram_gb > 0 ? top : good; i >= 0; i--) {
        double need = q->max_ram_gb > 0 ? need_gb(cat, model, i, q) : 0;
        if (need < 0 || need > q->max_ram_gb) continue;
        fits = true;
        if (fast_enough(cat, model, i, q)) return i;
    }
    return fits ? -2 : -1;
}

/* The variant for the task; for code an assistant if there is one. */
static int pick_variant(const herd_catalog_model *m, const herd_catalog_query *q)
{
    unsigned tasks = q->tasks ? q->tasks : q->code ? HERD_TASK_CHAT | HERD_TASK_INSTRUCT : 0;
    for (int i = 0; i < m->n_variants; i++)
        if (!tasks || (m->variants[i].task & tasks)) return i;
    return q->tasks ? -1 : 0;
}

static bool speaks(const herd_catalog_model *m, const char *lang)
{
    for (int i = 0; i < m->n_languages; i++)
        if (!strcmp(m->languages[i], lang)) return true;
    return false;
}

bool herd_catalog_matches(const herd_catalog *cat, int model, const herd_catalog_query *q,
                          const char **why_not)
{
    const herd_catalog_model *m = herd_catalog_model_at(cat, model);
    const char *why = NULL;
    if (!m)
        why = "no such model";
    else if (q->tasks && pick_variant(m, q) < 0)
        why = "no variant tuned for the task";
    else if (q->code && (!code_of(m) || code_of(m)->sign < 0))
        why = code_of(m) ? "said to lag at code" : "no code facts";
    else if (q->commercial && m->commercial != HERD_COMMERCIAL_YES &&
             m->commercial != HERD_COMMERCIAL_CONDITIONAL)
        why = m->commercial == HERD_COMMERCIAL_NO ? "licence forbids commercial use"
                                                  : "commercial use unknown";
    else if (q->language && q->language[0] && !speaks(m, q->language))
        why = m->n_languages ? "language not listed" : "languages unknown";
    else if (q->min_context > 0 && m->context_length < q->min_context)
        why = m->context_length ? "context too short" : "context length unknown";
    else if (q->estimate && !shape_of(m))
        why = "no shape facts to estimate its memory";
    else if (shape_of(m) && !cache_fits(shape_of(m), q))
        why = "cache type needs another head size";
    else if ((q->max_ram_gb > 0 || q->min_tg > 0) && pick_quant(cat, model, q) < 0)
        why = pick_quant(cat, model, q) == -1 ? "does not fit in memory" : "too slow";
    if (why_not) *why_not = why;
    return why == NULL;
}

/* ---------------------------------------------------------- reasons */

typedef struct {
    char *buf;
    size_t at, cap;
} text;

static void line(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(text *t, const char *fmt, ...)
{
    if (t->at + 1 >= t->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(t->buf + t->at, t->cap - t->at, fmt, ap);
    va_end(ap);
    if (w < 0) return;
    t->at += (size_t)w < t->cap - t->at ? (size_t)w : t->cap - t->at - 1;
    if (t->at + 1 < t->cap) {
        t->buf[t->at++] = '\n';
        t->buf[t->at] = 0;
    }
}

/* "12.3 GB (weights 7.4 + KV cache 4.3 at -c 32768 + scratch 0.6)" */
static void breakdown(char *buf, size_t cap, const herd_mem_estimate *e, int n_ctx)
{
    snprintf(buf, cap, "%.2f GB (weights %.2f + KV cache %.2f at -c %d + scratch %.2f)",
             e->total / 1e9, e->weights / 1e9, e->kv_cache / 1e9, n_ctx, e->scratch / 1e9);
}

static void memory_reason(const herd_catalog *cat, const herd_catalog_query *q,
                          const herd_recommendation *r, text *t)
{
    const herd_catalog_model *m = &cat->m[r->model];
    const herd_catalog_quant *qu = &m->quants[r->quant];
    if (q->estimate) {
        char b[160];
        breakdown(b, sizeof b, &r->mem, r->n_ctx);
        if (q->max_ram_gb > 0)
            line(t,
                 "fits in %.2f GB as %s: herd's estimate %s [computed: herd info's formula "
                 "on the shape from %s; file: params_b x bpw / 8]",
                 q->max_ram_gb, qu->type, b, m->shape_source);
        else
            line(t,
                 "%s: herd's estimate %s [computed: herd info's formula on the shape from "
                 "%s; file: params_b x bpw / 8]",
                 qu->type, b, m->shape_source);
        return;
    }
    const char *osrc;
    double over = herd_catalog_overhead_gb(cat, &osrc);
    if (q->max_ram_gb > 0)
        line(t,
             "fits in %g GB as %s: %.2f GB file + %.1f GB working memory [computed: "
             "params_b x bpw / 8; %s]",
             q->max_ram_gb, qu->type, qu->size_gb, over, osrc);
    else
        line(t, "%s: %.2f GB file, about %.1f GB of memory [computed: params_b x bpw / 8; %s]",
             qu->type, qu->size_gb, qu->size_gb + over, osrc);
}

static void list_languages(const herd_catalog_model *m, char *langs, size_t cap)
{
    langs[0] = 0;
    for (int i = 0; i < m->n_languages; i++) {
        size_t at = strlen(langs);
        snprintf(langs + at, cap - at, "%s%s", i ? ", " : "", m->languages[i]);
    }
}

static void explain(const herd_catalog *cat, const herd_catalog_query *q, herd_recommendation *r)
{
    const herd_catalog_model *m = &cat->m[r->model];
    const herd_catalog_variant *v = &m->variants[r->variant];
    text t = {r->reasons, 0, sizeof r->reasons};
    r->reasons[0] = 0;
    memory_reason(cat, q, r, &t);
    if (r->has_pred)
        line(&t,
             "predicted here: generation %.1f tokens/s (tg128), prompt %.1f tokens/s (pp512), %d "
             "thread%s [computed: herd probe of this machine on the shape from %s]",
             r->pred.tg, r->pred.pp, r->pred.threads, r->pred.threads > 1 ? "s" : "",
             m->shape_source);
    if (r->low_quant)
        line(&t, "only a quantization below " GOOD_QUANT " fits: expect lower quality");
    line(&t, "%s variant: %s [%s]", herd_task_name(v->task), v->repo, v->source);
    if (m->active_params_b < m->params_b)
        line(&t, "%g B parameters, %g B active per token (mixture of experts) [%s]", m->params_b,
             m->active_params_b, m->active_source);
    else
        line(&t, "%g B parameters [%s]", m->params_b, m->params_source);
    line(&t, "licence %s, commercial use: %s [%s]", m->licence, herd_commercial_name(m->commercial),
         m->commercial_source);
    if (m->commercial == HERD_COMMERCIAL_CONDITIONAL)
        line(&t, "terms: %s [%s]", m->terms, m->terms_source);
    if (m->n_languages) {
        char langs[64];
        list_languages(m, langs, sizeof langs);
        line(&t, "languages: %s [%s]", langs, m->languages_source);
    } else {
        line(&t, "languages: unknown [%s]", m->languages_source);
    }
    if (m->context_length)
        line(&t, "context: %d tokens [%s]", m->context_length, m->context_source);
    const code_fact *cf = code_of(m);
    if (q->code && cf) line(&t, "code: %s [%s: \"%s\"]", cf->what, cf->source, cf->quote);
    if (m->mmlu >= 0) line(&t, "MMLU %.1f [%s]", m->mmlu, m->mmlu_source);
}

/* The memory cause of an exclusion: the smallest quantization's need. */
static void memory_why(const herd_catalog *cat, int model, const herd_catalog_query *q, char *buf,
                       size_t cap)
{
    const herd_catalog_model *m = &cat->m[model];
    if (q->estimate) {
        herd_mem_estimate e;
        int n_ctx = 0;
        char b[160] = "?";
        if (!herd_catalog_estimate(cat, model, 0, q, &e, &n_ctx)) breakdown(b, sizeof b, &e, n_ctx);
        snprintf(buf, cap,
                 "does not fit in %.2f GB: even %s needs %s [computed: herd info's "
                 "formula on the shape from %s]",
                 q->max_ram_gb, m->quants[0].type, b, m->shape_source);
    } else {
        snprintf(buf, cap,
                 "does not fit in %g GB: even %s needs %.2f GB [computed: params_b x "
                 "bpw / 8; %s]",
                 q->max_ram_gb, m->quants[0].type, m->quants[0].size_gb + cat->overhead_gb,
                 cat->overhead_source);
    }
}

/* The speed cause of an exclusion: the fastest quantization that fits. */
static void speed_why(const herd_catalog *cat, int model, const herd_catalog_query *q, char *buf,
                      size_t cap)
{
    const herd_catalog_model *m = &cat->m[model];
    herd_prediction p = {0};
    int i = 0;
    while (i + 1 < m->n_quants && q->max_ram_gb > 0 && need_gb(cat, model, i, q) > q->max_ram_gb)
        i++;
    herd_catalog_predict(cat, model, i, q, &p);
    snprintf(buf, cap,
             "too slow: even %s is predicted at %.1f tokens/s, below --min-speed %g and the "
             "prediction's 15%% margin [computed: "
             "herd probe of this machine, %d thread%s, on the shape from %s]",
             m->quants[i].type, p.tg, q->min_tg, p.threads, p.threads > 1 ? "s" : "",
             m->shape_source);
}

bool herd_catalog_why_not(const herd_catalog *cat, int model, const herd_catalog_query *q,
                          char *buf, size_t cap)
{
    const char *why;
    buf[0] = 0;
    if (herd_catalog_matches(cat, model, q, &why)) return false;
    const herd_catalog_model *m = herd_catalog_model_at(cat, model);
    const code_fact *cf = m ? code_of(m) : NULL;
    char langs[64];
    if (!m)
        snprintf(buf, cap, "%s", why);
    else if (!strcmp(why, "no variant tuned for the task"))
        snprintf(buf, cap, "no %s variant (it has %d, none tuned for the task)",
                 q->tasks & HERD_TASK_TEXT ? "base" : "chat or instruct", m->n_variants);
    else if (q->code && !strncmp(why, "said to lag", 11))
        snprintf(buf, cap, "code: the seed says it %s [%s: \"%s\"]", cf->what, cf->source,
                 cf->quote);
    else if (!strcmp(why, "no code facts"))
        snprintf(buf, cap,
                 "code: the catalog has no fact that it was trained or measured on code "
                 "[unknown]");
    else if (strstr(why, "commercial"))
        snprintf(buf, cap, "licence %s: commercial use %s [%s]", m->licence,
                 herd_commercial_name(m->commercial), m->commercial_source);
    else if (strstr(why, "language")) {
        list_languages(m, langs, sizeof langs);
        snprintf(buf, cap, "language '%s' not listed (%s) [%s]", q->language,
                 m->n_languages ? langs : "languages unknown", m->languages_source);
    } else if (strstr(why, "context"))
        snprintf(buf, cap, "context %d tokens, less than %d [%s]", m->context_length,
                 q->min_context, m->context_source);
    else if (!strcmp(why, "cache type needs another head size")) {
        const herd_shape *s = shape_of(m);
        herd_status st = herd_kv_check_type(q->type_k, s->head_dim);
        if (!st) herd_kv_check_type(q->type_v, s->head_dim);
        snprintf(buf, cap, "%s [head size: %s]", herd_errmsg(), m->shape_source);
    } else if (!strcmp(why, "does not fit in memory"))
        memory_why(cat, model, q, buf, cap);
    else if (!strcmp(why, "too slow"))
        speed_why(cat, model, q, buf, cap);
    else
        snprintf(buf, cap, "%s", why);
    return true;
}

/* --------------------------------------------------------- ranking */

static int cmp_rec(const herd_recommendation *a, const herd_recommendation *b,
                   const herd_catalog *cat, const herd_catalog_query *q)
{
    const herd_catalog_model *ma = &cat->m[a->model], *mb = &cat->m[b->model];
    if (a->low_quant != b->low_quant) return a->low_quant ? 1 : -1;
    if (q->min_context > 0 && ma->context_length != mb->context_length)
        return ma->context_length > mb->context_length ? -1 : 1;
    if (ma->params_b != mb->params_b) return ma->params_b > mb->params_b ? -1 : 1;
    if (ma->mmlu != mb->mmlu) return ma->mmlu > mb->mmlu ? -1 : 1;
    return a->model - b->model;
}

const char *herd_catalog_ranking_rule(const herd_catalog_query *q)
{
    return q->min_context > 0
               ? "ranking: fits at " GOOD_QUANT " or better first, then longer context, then more "
                 "parameters, then higher MMLU"
               : "ranking: fits at " GOOD_QUANT " or better first, then more parameters, then "
                 "higher MMLU";
}

/* qsort has no context argument in C11; an insertion sort over the few dozen
 * models of the catalog is as fast and keeps the catalog at hand. */
static void sort_recs(herd_recommendation *r, int n, const herd_catalog *cat,
                      const herd_catalog_query *q)
{
    for (int i = 1; i < n; i++) {
        herd_recommendation x = r[i];
        int j = i;
        for (; j > 0 && cmp_rec(&r[j - 1], &x, cat, q) > 0; j--) r[j] = r[j - 1];
        r[j] = x;
    }
}

herd_status herd_catalog_recommend(const herd_catalog *cat, const herd_catalog_query *q,
                                   herd_recommendation *out, int cap, int *n)
{
    *n = 0;
    if (cap < 0 || (cap > 0 && !out)) return herd_seterr(HERD_E_INVALID, "bad output array");
    /* Rank every match (without reasons) first, so that cap keeps the best. */
    herd_recommendation *all = herd_calloc((size_t)cat->n, sizeof *all);
    if (!all) return HERD_E_NOMEM;
    int good = -1, k = 0;
    for (int i = 0; i < cat->n; i++) {
        if (!herd_catalog_matches(cat, i, q, NULL)) continue;
        const herd_catalog_model *m = &cat->m[i];
        herd_recommendation *r = &all[k++];
        r->model = i;
        r->variant = pick_variant(m, q);
        r->quant = pick_quant(cat, i, q);
        r->ram_gb = need_gb(cat, i, r->quant, q);
        if (q->estimate) herd_catalog_estimate(cat, i, r->quant, q, &r->mem, &r->n_ctx);
        r->has_pred = q->estimate && q->probe &&
                      herd_catalog_predict(cat, i, r->quant, q, &r->pred) == HERD_OK;
        good = quant_index(m, GOOD_QUANT);
        r->low_quant = good >= 0 && m->quants[r->quant].bpw < m->quants[good].bpw;
    }
    sort_recs(all, k, cat, q);
    for (int i = 0; i < k && i < cap; i++) {
        out[i] = all[i];
        explain(cat, q, &out[i]);
    }
    free(all);
    *n = k;
    return HERD_OK;
}
