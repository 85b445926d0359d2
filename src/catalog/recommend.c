/*
 * recommend.c — which models fit a person's constraints, and in what order.
 *
 * The filters are hard facts from the catalog: what a variant is tuned for,
 * whether the licence allows commercial use, the languages the model card
 * lists, the context length, and whether some GGUF quantization of it fits in
 * the memory given (file size + the working memory the catalog's memory fact
 * states). A model whose language or licence is unknown does not pass a
 * filter on it: the catalog does not guess.
 *
 * The order is deliberately simple, so that it can be explained: models that
 * fit at Q4_K_M or better come before those that only fit at a lower
 * quantization (where llama.cpp's own tables show the quality loss growing
 * fast); then bigger models first; then higher MMLU where the catalog has it.
 * Every recommendation carries its reasons, each with the source of the fact
 * behind it, so the person can overrule the ranking knowingly.
 */
#include "catalog/catalog_impl.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The type a recommendation is measured against, and the largest one worth
 * running: beyond Q8_0, F16 doubles the memory for no visible gain. */
#define GOOD_QUANT "Q4_K_M"
#define TOP_QUANT  "Q8_0"

static int quant_index(const herd_catalog_model *m, const char *type)
{
    for (int i = 0; i < m->n_quants; i++)
        if (!strcmp(m->quants[i].type, type)) return i;
    return -1;
}

/* The largest quantization up to Q8_0 whose file plus overhead fits in
 * max_ram_gb; with no limit, Q4_K_M. -1 if none fits. */
static int pick_quant(const herd_catalog *cat, const herd_catalog_model *m, double max_ram_gb)
{
    int top = quant_index(m, TOP_QUANT);
    if (top < 0) top = m->n_quants - 1;
    if (max_ram_gb <= 0) {
        int good = quant_index(m, GOOD_QUANT);
        return good >= 0 ? good : top;
    }
    for (int i = top; i >= 0; i--)
        if (m->quants[i].size_gb + cat->overhead_gb <= max_ram_gb) return i;
    return -1;
}

static int pick_variant(const herd_catalog_model *m, unsigned tasks)
{
    for (int i = 0; i < m->n_variants; i++)
        if (!tasks || (m->variants[i].task & tasks)) return i;
    return -1;
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
    else if (q->tasks && pick_variant(m, q->tasks) < 0)
        why = "no variant tuned for the task";
    else if (q->commercial && m->commercial != HERD_COMMERCIAL_YES &&
             m->commercial != HERD_COMMERCIAL_CONDITIONAL)
        why = m->commercial == HERD_COMMERCIAL_NO ? "licence forbids commercial use"
                                                  : "commercial use unknown";
    else if (q->language && q->language[0] && !speaks(m, q->language))
        why = m->n_languages ? "language not listed" : "languages unknown";
    else if (q->min_context > 0 && m->context_length < q->min_context)
        why = m->context_length ? "context too short" : "context length unknown";
    else if (q->max_ram_gb > 0 && pick_quant(cat, m, q->max_ram_gb) < 0)
        why = "does not fit in memory";
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

static void explain(const herd_catalog *cat, const herd_catalog_query *q, herd_recommendation *r)
{
    const herd_catalog_model *m = &cat->m[r->model];
    const herd_catalog_quant *qu = &m->quants[r->quant];
    const herd_catalog_variant *v = &m->variants[r->variant];
    text t = {r->reasons, 0, sizeof r->reasons};
    r->reasons[0] = 0;
    const char *osrc;
    double over = herd_catalog_overhead_gb(cat, &osrc);
    if (q->max_ram_gb > 0)
        line(&t,
             "fits in %g GB as %s: %.2f GB file + %.1f GB working memory [computed: "
             "params_b x bpw / 8; %s]",
             q->max_ram_gb, qu->type, qu->size_gb, over, osrc);
    else
        line(&t, "%s: %.2f GB file, about %.1f GB of memory [computed: params_b x bpw / 8; %s]",
             qu->type, qu->size_gb, qu->size_gb + over, osrc);
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
        char langs[64] = "";
        for (int i = 0; i < m->n_languages; i++) {
            size_t at = strlen(langs);
            snprintf(langs + at, sizeof langs - at, "%s%s", i ? ", " : "", m->languages[i]);
        }
        line(&t, "languages: %s [%s]", langs, m->languages_source);
    } else {
        line(&t, "languages: unknown [%s]", m->languages_source);
    }
    if (m->context_length)
        line(&t, "context: %d tokens [%s]", m->context_length, m->context_source);
    if (m->mmlu >= 0) line(&t, "MMLU %.1f [%s]", m->mmlu, m->mmlu_source);
}

/* --------------------------------------------------------- ranking */

static int cmp_rec(const void *pa, const void *pb, const herd_catalog *cat)
{
    const herd_recommendation *a = pa, *b = pb;
    const herd_catalog_model *ma = &cat->m[a->model], *mb = &cat->m[b->model];
    if (a->low_quant != b->low_quant) return a->low_quant ? 1 : -1;
    if (ma->params_b != mb->params_b) return ma->params_b > mb->params_b ? -1 : 1;
    if (ma->mmlu != mb->mmlu) return ma->mmlu > mb->mmlu ? -1 : 1;
    return a->model - b->model;
}

/* qsort has no context argument in C11; an insertion sort over the few dozen
 * models of the catalog is as fast and keeps the catalog at hand. */
static void sort_recs(herd_recommendation *r, int n, const herd_catalog *cat)
{
    for (int i = 1; i < n; i++) {
        herd_recommendation x = r[i];
        int j = i;
        for (; j > 0 && cmp_rec(&r[j - 1], &x, cat) > 0; j--) r[j] = r[j - 1];
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
        r->variant = pick_variant(m, q->tasks);
        r->quant = pick_quant(cat, m, q->max_ram_gb);
        r->ram_gb = m->quants[r->quant].size_gb + cat->overhead_gb;
        good = quant_index(m, GOOD_QUANT);
        r->low_quant = good >= 0 && m->quants[r->quant].bpw < m->quants[good].bpw;
    }
    sort_recs(all, k, cat);
    for (int i = 0; i < k && i < cap; i++) {
        out[i] = all[i];
        explain(cat, q, &out[i]);
    }
    free(all);
    *n = k;
    return HERD_OK;
}
