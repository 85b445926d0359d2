/*
 * catalog.h — the landscape of open LLMs (late 2023), with a source for every
 * fact, and the recommender built on it.
 *
 * The data lives in data/catalog.json; the build embeds that file into libherd
 * (src/catalog/embed.cmake), so `herd catalog` works from any directory and
 * the data cannot drift from the binary. Each model entry is a set of facts;
 * a fact is a JSON object with a "value" and a "source":
 *
 *   seed:LINE     a line of the landscape document (seed/landscape.txt), with a "quote" that
 *                 must appear on that line (herd_catalog_verify checks it);
 *   gguf:KEY      the GGUF metadata key a model file carries the value in;
 *   https://...   a model card, paper or licence page, for what the seed lacks
 *                 or gets wrong;
 *   computed: ... derived by the stated formula (the GGUF file sizes);
 *   unknown       nothing is known: the value is null.
 *
 * Where the seed is wrong or stale, the fact keeps the seed's statements in a
 * "seed" array (each with its line and a status) and its value is the
 * correction, sourced elsewhere.
 *
 * herd_catalog_model below is a typed view of the entries for the program and
 * the recommender; the strings point into the loaded JSON and live as long as
 * the catalog.
 */
#ifndef HERD_CATALOG_H
#define HERD_CATALOG_H

#include "catalog/predict.h"
#include "herd.h"

#define HERD_CATALOG_MAX_LANG    24
#define HERD_CATALOG_MAX_FEAT    12
#define HERD_CATALOG_MAX_VARIANT 6
#define HERD_CATALOG_MAX_QUANT   12

/* What a variant is tuned for. Queries use them as a bit mask. */
enum { HERD_TASK_TEXT = 1, HERD_TASK_CHAT = 2, HERD_TASK_INSTRUCT = 4 };

typedef enum herd_commercial {
    HERD_COMMERCIAL_UNKNOWN = 0,
    HERD_COMMERCIAL_NO,
    HERD_COMMERCIAL_CONDITIONAL, /* allowed under the terms the licence states */
    HERD_COMMERCIAL_YES,
} herd_commercial;

typedef struct herd_catalog_quant {
    const char *type; /* llama.cpp's name: "Q4_K_M" */
    double bpw;       /* effective bits per weight of a whole file */
    double size_gb;   /* approximate file size, 10^9 bytes */
} herd_catalog_quant;

typedef struct herd_catalog_variant {
    const char *repo; /* "meta-llama/Llama-2-7b-chat-hf" */
    unsigned task;    /* one HERD_TASK_* */
    const char *source;
} herd_catalog_variant;

typedef struct herd_catalog_model {
    const char *id, *name, *family;
    const char *developer, *developer_source;
    double params_b, active_params_b; /* billions; active = total unless MoE */
    const char *params_source, *active_source;
    const char *arch; /* GGUF general.architecture: llama, falcon, mpt, phi2, ... */
    const char *features[HERD_CATALOG_MAX_FEAT];
    int n_features;
    int context_length; /* 0: unknown */
    const char *context_source;
    const char *licence, *licence_source;
    herd_commercial commercial;
    const char *commercial_source;
    const char *terms, *terms_source;
    const char *languages[HERD_CATALOG_MAX_LANG]; /* ISO 639-1 */
    int n_languages;                              /* 0: unknown */
    const char *languages_source;
    herd_catalog_variant variants[HERD_CATALOG_MAX_VARIANT];
    int n_variants;
    unsigned tasks; /* union of the variants' tasks */
    double mmlu;    /* < 0: not in the catalog */
    const char *mmlu_source;
    herd_catalog_quant quants[HERD_CATALOG_MAX_QUANT]; /* ascending bpw */
    int n_quants;
    /* What the memory and speed formulas need, from the model's config.json
     * (the "shape" fact); shape_source NULL: the catalog has no shape. */
    herd_shape shape;
    const char *shape_source;
} herd_catalog_model;

typedef struct herd_catalog herd_catalog;

/* The catalog built into libherd. */
herd_status herd_catalog_load(herd_catalog **out);
/* A catalog from a file or from memory (same format as data/catalog.json). */
herd_status herd_catalog_load_file(const char *path, herd_catalog **out);
herd_status herd_catalog_parse(const char *text, size_t len, herd_catalog **out);
void herd_catalog_free(herd_catalog *cat);

/* The embedded JSON text, exactly as data/catalog.json was at build time. */
const char *herd_catalog_embedded(size_t *len);

int herd_catalog_n_models(const herd_catalog *cat);
const herd_catalog_model *herd_catalog_model_at(const herd_catalog *cat, int i);
/* Index of the model with this id, or -1. */
int herd_catalog_find(const herd_catalog *cat, const char *id);
/* Memory a running model needs on top of its file (GB), and its source. */
double herd_catalog_overhead_gb(const herd_catalog *cat, const char **source);

const char *herd_commercial_name(herd_commercial c);
const char *herd_task_name(unsigned task);
/* "text", "chat", "instruct" (or "base", "completion", "assistant") -> mask. */
herd_status herd_catalog_parse_task(const char *s, unsigned *mask);

/* ------------------------------------------------------------ facts */

/* One fact of a model, flattened for display: the path of the fact in the
 * entry ("licence.name", "benchmarks: MMLU (5-shot)"), its value as text, its
 * source, and for a statement of the seed about it, seed = true and the
 * status ("stale", "wrong", ...). */
typedef struct herd_catalog_fact {
    char *key, *value;
    const char *source, *note, *status;
    bool seed;
} herd_catalog_fact;

herd_status herd_catalog_facts(const herd_catalog *cat, int model, herd_catalog_fact **out, int *n);
void herd_catalog_facts_free(herd_catalog_fact *facts, int n);

/* ------------------------------------------------------------- JSON */

/* The catalog as JSON (malloc'ed, free()): every model if models is NULL,
 * else the n models listed, with the catalog's header either way. */
char *herd_catalog_json(const herd_catalog *cat, const int *models, int n);
/* One model entry as JSON (malloc'ed). */
char *herd_catalog_model_json(const herd_catalog *cat, int model);

/* ---------------------------------------------------- verification */

/* Check every fact of the catalog against the rules above and the seed text:
 * each has a well-formed source, each seed:LINE exists and its quote is on
 * that line, unknown facts are null, ids are unique, GGUF sizes follow their
 * formula and grow with bpw. Calls report (if not NULL) once per problem and
 * returns how many there were. */
typedef void (*herd_catalog_report_fn)(void *ud, const char *problem);
int herd_catalog_verify(const herd_catalog *cat, const char *seed, size_t seed_len,
                        herd_catalog_report_fn report, void *ud);

/* ------------------------------------------- filters and recommender */

typedef struct herd_catalog_query {
    unsigned tasks;       /* HERD_TASK_* mask a variant must match; 0: any */
    bool commercial;      /* only licences that allow commercial use (yes/conditional) */
    const char *language; /* ISO 639-1 code the model must list; NULL: any */
    double max_ram_gb;    /* file + working memory must fit; <= 0: no limit */
    int min_context;      /* tokens; 0: any */
    /* `herd recommend`'s rules (all zero: the ones above).
     * estimate: the memory a model needs is herd's own estimate, by the
     * formula of `herd info` (herd_catalog_estimate), not file + overhead;
     * n_ctx: the context it is estimated for, 0 = min(context length, 4096)
     * as herd info, -1 = the model's whole context; n_seq: sequences (herd
     * info --parallel), 0 = 1; code: only models the catalog shows trained or
     * measured on code, ranked as for any task. */
    bool estimate;
    int n_ctx, n_seq;
    herd_kv_type type_k, type_v; /* the KV cache types to estimate for (0: f16) */
    bool code;
    /* Speed (with estimate): predicted by the performance model from this
     * probe at `threads`; min_tg > 0 keeps only quantizations predicted to
     * generate at least min_tg tokens/s, by the model's 15% margin. */
    const herd_probe *probe;
    int threads;
    double min_tg;
} herd_catalog_query;

/* Does the model pass the query (at some quantization)? If not and why_not is
 * not NULL, *why_not says which filter failed. */
bool herd_catalog_matches(const herd_catalog *cat, int model, const herd_catalog_query *q,
                          const char **why_not);

#define HERD_REASONS_MAX 2048

typedef struct herd_recommendation {
    int model;   /* index in the catalog */
    int variant; /* index in model->variants: the one that fits the task */
    int quant;   /* index in model->quants: the quantization to download */
    double ram_gb;
    bool low_quant;                 /* only a quantization below Q4_K_M fits */
    char reasons[HERD_REASONS_MAX]; /* lines "text [source]" */
    herd_mem_estimate mem;          /* with query.estimate: the breakdown of ram_gb */
    int n_ctx;                      /* ... and the context it is for */
    herd_prediction pred;           /* with query.probe: pp512, tg128 at the quantization */
    bool has_pred;
} herd_recommendation;

/* Rank the models that pass the query: those that fit at Q4_K_M or better
 * first, then by parameter count (the crudest proxy for quality, and the one
 * the catalog has for every model), then by MMLU where known. Writes up to
 * cap recommendations; *n gets how many models passed. */
herd_status herd_catalog_recommend(const herd_catalog *cat, const herd_catalog_query *q,
                                   herd_recommendation *out, int cap, int *n);

/* The memory herd needs to run model at its quant-th quantization, from the
 * model's shape (layers, widths, heads, vocabulary: the "shape" fact of
 * data/catalog.json, from config.json) through herd_estimate_memory_ctx,
 * the code behind `herd info`; the weights are the quantization's file size.
 * q gives n_ctx and n_seq; *n_ctx gets the context used. */
herd_status herd_catalog_estimate(const herd_catalog *cat, int model, int quant,
                                  const herd_catalog_query *q, herd_mem_estimate *out, int *n_ctx);
/* The predicted speed of model at its quant-th quantization (q: probe and
 * threads; the prompt is 512 tokens, generation 128, depth q's context). */
herd_status herd_catalog_predict(const herd_catalog *cat, int model, int quant,
                                 const herd_catalog_query *q, herd_prediction *out);
/* The one-line ranking rule herd_catalog_recommend applies to q. */
const char *herd_catalog_ranking_rule(const herd_catalog_query *q);
/* The source of a model's shape facts, or NULL if the recommender has none. */
const char *herd_catalog_shape_source(const herd_catalog *cat, int model);

/* Why the model does not pass q, as one line with the facts and figures
 * behind it and their sources ("" and false if it passes). */
bool herd_catalog_why_not(const herd_catalog *cat, int model, const herd_catalog_query *q,
                          char *buf, size_t cap);

#endif
