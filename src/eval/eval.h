/*
 * eval.h — measuring models: how well they predict a text, how far a
 * quantization moves their predictions, how they do on multiple-choice
 * benchmarks, and a report that puts several models side by side.
 *
 * Every measure here is somebody else's, reproduced exactly, so that herd's
 * figures can be set beside published ones:
 *
 *   perplexity.c  llama-perplexity's perplexity (herd_perplexity in herd.h),
 *                 with a hook on every scored position that the KL divergence
 *                 builds on, so there is one chunk loop, not two.
 *   kld.c         llama-perplexity's --kl-divergence: a base run saves the
 *                 full log-softmax of every scored position (herd's own file
 *                 format, below); a second model's run over the same tokens
 *                 is compared position by position: mean KL divergence, the
 *                 share of positions whose top token is the same ("Same top
 *                 p"), the change in the probability of the right token.
 *   task.c        multiple-choice task files (HellaSwag, ARC, MMLU and
 *                 Winogrande JSON lines) turned into (context, continuation)
 *                 requests exactly as lm-evaluation-harness builds them.
 *   mc.c          scoring them: the log-likelihood of each continuation, with
 *                 the computation of the context shared by the choices; acc,
 *                 acc_norm and llama.cpp's per-token variant.
 *   bench.c       llama-bench's pp and tg tests with warm-up and repetitions,
 *                 for `herd bench` and `herd compare` alike.
 *   compare.c     one model's figures for `herd compare`: load time, a quick
 *                 bench, perplexity, task accuracy, licence (the file's and
 *                 the catalog's).
 *   report.c      the side-by-side comparison as one standalone HTML page
 *                 with inline SVG charts.
 *
 * Like the rest of libherd, nothing here prints or exits: progress is a
 * callback, errors are a herd_status with a message.
 */
#ifndef HERD_EVAL_H
#define HERD_EVAL_H

#include "herd.h"

#include <stdio.h>

/* ------------------------------------------------------------ perplexity */

/* How many chunks herd_perplexity scores: n_tokens / n_chunk, at most
 * max_chunks when that is >= 0. */
int herd_ppl_chunks(int n_tokens, int n_chunk, int max_chunks);

/* The chunk length `herd perplexity` and `herd compare` use: n_ctx when it is
 * given (> 0), else min(the model's training context, 512): llama.cpp's 512,
 * but never longer than what the model was trained on (a model trained on
 * 256 tokens scored in chunks of 512 gives a meaningless figure). */
int herd_ppl_default_chunk(const herd_model *m, int n_ctx);

/* Called for every scored position, in order (chunk by chunk, position by
 * position): its logits and the token that follows it. A status other than
 * HERD_OK stops the run and is returned by herd_perplexity_each. */
typedef herd_status (*herd_ppl_each_fn)(const float *logits, int n_vocab, int32_t next, void *user);

/* herd_perplexity with a hook on every scored position (each may be NULL). */
herd_status herd_perplexity_each(herd_ctx *ctx, const int32_t *tokens, int n_tokens, int n_chunk,
                                 int max_chunks, herd_ppl_progress progress, herd_ppl_each_fn each,
                                 void *user, herd_ppl_result *out);

/* ------------------------------------------------------ KL divergence */

/*
 * The base file (--kl-divergence-base FILE), all little-endian:
 *
 *   offset  size            field
 *   0       8               magic "HERDKLD1"
 *   8       4               u32 n_vocab
 *   12      4               u32 n_chunk: tokens per chunk (the run's -c)
 *   16      4               u32 n_chunks
 *   20      4               u32 zero (reserved)
 *   24      4·n_chunk·n_chunks  i32 tokens, the chunks as scored (before the
 *                           first token of each chunk is replaced by BOS)
 *   then, for each chunk and each scored position (n_chunk/2 .. n_chunk-2,
 *   n_chunk - 1 - n_chunk/2 positions a chunk): f32 log p[n_vocab], the
 *   natural-log softmax of that position's logits, computed in double.
 *
 * Unlike llama.cpp's file (log-probabilities quantized to 16 bits), the
 * distributions are kept exactly, so a model compared with itself gives a KL
 * divergence of 0 and the figures do not depend on a quantization of the base.
 */
#define HERD_KLD_MAGIC "HERDKLD1"

typedef struct herd_kld_writer herd_kld_writer;

/* Create FILE for a run over tokens[0..n_tokens) in chunks of n_chunk (at most
 * max_chunks when >= 0), and write its header. */
herd_status herd_kld_writer_open(const char *path, int n_vocab, const int32_t *tokens, int n_tokens,
                                 int n_chunk, int max_chunks, herd_kld_writer **out);
/* A herd_ppl_each_fn: append the log-softmax of logits (user: the writer). */
herd_status herd_kld_writer_add(const float *logits, int n_vocab, int32_t next, void *user);
/* Flush and close; checks that every position of the header was written. */
herd_status herd_kld_writer_close(herd_kld_writer *w);

/* Running sums over compared positions, as llama.cpp keeps them. nll is of
 * the token that follows; "base" is the saved run. */
typedef struct herd_kld_stats {
    long count, n_same_top;
    double sum_nll, sum_nll2, sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2;
    double sum_p_diff, sum_p_diff2, sum_p_diff4;
    float *kld, *p_diff; /* [count] each position's value, for percentiles */
} herd_kld_stats;

typedef struct herd_kld_base herd_kld_base;

/* Open a base file and check its size against its header. */
herd_status herd_kld_base_open(const char *path, herd_kld_base **out);
void herd_kld_base_close(herd_kld_base *b);
int herd_kld_base_n_vocab(const herd_kld_base *b);
int herd_kld_base_n_chunk(const herd_kld_base *b);
int herd_kld_base_n_chunks(const herd_kld_base *b);
const int32_t *herd_kld_base_tokens(const herd_kld_base *b, int *n_tokens);
/* A herd_ppl_each_fn (user: the base): compare logits with the next saved
 * distribution and add to the base's statistics. */
herd_status herd_kld_compare(const float *logits, int n_vocab, int32_t next, void *user);
const herd_kld_stats *herd_kld_base_stats(const herd_kld_base *b);

/* A value with its uncertainty (one standard error). */
typedef struct herd_vu {
    double val, unc;
} herd_vu;

/* What llama-perplexity --kl-divergence prints, from the running sums. The
 * quantiles are of the per-position KL divergence and Δp (p - p_base of the
 * right token): kld_q[i] is at herd_kld_kld_fractions[i], likewise p_diff_q. */
#define HERD_KLD_NQ   11
#define HERD_PDIFF_NQ 13
typedef struct herd_kld_summary {
    herd_vu ppl, ppl_base, log_ppl_ratio, ppl_ratio, ppl_diff;
    double log_ppl_cor;
    herd_vu kld, p_diff, p_diff_rms, same_top;
    double kld_q[HERD_KLD_NQ], p_diff_q[HERD_PDIFF_NQ];
} herd_kld_summary;
extern const float herd_kld_fractions[HERD_KLD_NQ]; /* 1, .999, …, 0: max … min */
extern const float herd_pdiff_fractions[HERD_PDIFF_NQ];

herd_status herd_kld_summarize(const herd_kld_stats *s, herd_kld_summary *out);

/* ------------------------------------------------ multiple-choice tasks */

typedef enum herd_mc_kind {
    HERD_MC_HELLASWAG,
    HERD_MC_ARC,
    HERD_MC_MMLU,
    HERD_MC_WINOGRANDE,
} herd_mc_kind;

const char *herd_mc_kind_name(herd_mc_kind k);

#define HERD_MC_MAX_CHOICES 8

/* One question, as lm-evaluation-harness's requests: choice i is scored as
 * log P(continuation[i] | context[i]). All kinds but Winogrande have one
 * context for every choice; Winogrande fills the blank with each option (the
 * contexts differ) and scores the rest of the sentence after it. norm_len[i]
 * is the length in characters (code points) of the harness's choice string,
 * acc_norm's divisor. */
typedef struct herd_mc_question {
    int line; /* in the task file, from 1 */
    int n_choices, gold;
    char *context[HERD_MC_MAX_CHOICES];
    char *continuation[HERD_MC_MAX_CHOICES];
    int norm_len[HERD_MC_MAX_CHOICES];
} herd_mc_question;

typedef struct herd_mc_task {
    herd_mc_kind kind;
    int n;
    herd_mc_question *q;
} herd_mc_task;

/* Parse a task file of JSON lines (one question a line, blank lines
 * skipped); the kind is told by the first question's fields and every line
 * must be of it. At most limit questions are kept (limit < 0: all). A
 * malformed line fails with HERD_E_FORMAT and "NAME:LINE: what is wrong". */
herd_status herd_mc_parse(const char *text, size_t len, const char *name, int limit,
                          herd_mc_task **out);
herd_status herd_mc_load(const char *path, int limit, herd_mc_task **out);
void herd_mc_free(herd_mc_task *t);

/* The harness's text preprocessing of HellaSwag (WikiHow artefacts):
 * strip, " [title]" -> ". ", drop "[...]" spans, "  " -> " ". malloc'ed. */
char *herd_hellaswag_preprocess(const char *text);

/* The metrics, in output order. */
enum { HERD_MC_ACC, HERD_MC_ACC_NORM, HERD_MC_ACC_TOKEN, HERD_MC_N_METRICS };
const char *herd_mc_metric_name(int metric);
const char *herd_mc_metric_about(int metric);

/* One question's scores. */
typedef struct herd_mc_scores {
    double ll[HERD_MC_MAX_CHOICES]; /* sum of log p over the continuation's tokens */
    int n_tokens[HERD_MC_MAX_CHOICES];
    int pred[HERD_MC_N_METRICS]; /* the choice each metric picks */
} herd_mc_scores;

typedef struct herd_mc_result {
    int n; /* questions scored */
    int correct[HERD_MC_N_METRICS];
    double value[HERD_MC_N_METRICS];
    double stderr_[HERD_MC_N_METRICS]; /* standard error (stderr is stdio's) */
    long tokens_decoded;               /* model evaluations, shared prefixes counted once */
} herd_mc_result;

/* The token sequence choice i of q is scored on (lm-evaluation-harness's
 * encoding of the pair: trailing spaces of the context move to the
 * continuation, the continuation's tokens are those of context+continuation
 * after the context's own tokens), and where the continuation starts in it.
 * malloc'ed; NULL with an error if the choice has no continuation tokens. */
int32_t *herd_mc_encode(const herd_model *m, const herd_mc_question *q, int i, int *n,
                        int *n_context);

/* Tokens the longest question of the task needs, to size a context. */
herd_status herd_mc_max_tokens(const herd_model *m, const herd_mc_task *t, int *n);

typedef void (*herd_mc_progress)(int done, int total, const herd_mc_result *sofar, void *user);

/* Score every question of the task. scores (t->n entries) may be NULL.
 * The context must hold the longest question (herd_mc_max_tokens). */
herd_status herd_mc_evaluate(herd_ctx *ctx, const herd_mc_task *t, herd_mc_progress progress,
                             void *user, herd_mc_scores *scores, herd_mc_result *out);

/* --------------------------------------------------------------- bench */

/* One test's figures, in tokens per second. */
typedef struct herd_bench_result {
    int n, n_reps; /* tokens of the test, timed runs */
    double mean, sd, median, min, max;
} herd_bench_result;

/* Called before each run: rep -1 is the warm-up, then 0 .. n_reps-1. */
typedef void (*herd_bench_progress)(bool prompt, int n, int rep, int n_reps, void *user);

/* llama-bench's test on ctx: prompt (pp<n>: one batch of n random tokens) or
 * generation (tg<n>: n single decodes), each run from an empty cache; one
 * warm-up run, then n_reps timed ones. The context holds n tokens, and for
 * a prompt test a batch of n. Tokens are drawn with rand_r(rng). */
/* llama-bench's depth: `depth` random tokens decoded into the cache (in
 * batches of n_batch, untimed) before each run; NULL or depth 0: none.
 * filled: the cache already holds the depth (herd_bench_fill), and each run
 * only forgets the cells past it instead of refilling, which at 16k tokens
 * on a 7B model saves a quarter of an hour per run; the timed part is the
 * same. */
typedef struct herd_bench_depth {
    int depth, n_batch;
    bool filled;
} herd_bench_depth;

/* Empty the cache and put the depth in it (untimed), for d->filled runs. */
herd_status herd_bench_fill(herd_ctx *ctx, const herd_model *m, const herd_bench_depth *d,
                            unsigned *rng);

herd_status herd_bench_test(herd_ctx *ctx, const herd_model *m, bool prompt, int n, int n_reps,
                            const herd_bench_depth *depth, unsigned *rng,
                            herd_bench_progress progress, void *user, herd_bench_result *out);

/* One run of that test (the caller decides which runs are warm-ups): its
 * tokens per second in *tps. herd compare interleaves such runs across
 * models. */
herd_status herd_bench_run(herd_ctx *ctx, const herd_model *m, bool prompt, int n,
                           const herd_bench_depth *depth, unsigned *rng, double *tps);
/* Mean, sample standard deviation, median and range of n runs' tokens/s
 * (sorts ts). */
void herd_bench_summarize(double *ts, int n, herd_bench_result *out);

/* ------------------------------------------------------------- compare */

/* One model's row of a comparison. Figures not measured are < 0 (strings
 * empty). */
typedef struct herd_compare_row {
    char path[512], label[128], name[128], arch[32], file_type[16];
    char licence[96];    /* general.license of the file */
    char catalog_id[64]; /* the catalog entry the file's name matches */
    char catalog_licence[96], catalog_commercial[16];
    double params, file_bytes, load_s;
    double peak_rss_bytes; /* filled by the caller, who ran the measurement */
    int pp_n, tg_n, reps;  /* the bench: a pp_n-token batch, tg_n single decodes, reps runs */
    double pp_ts, tg_ts;   /* tokens per second, median of the runs */
    double pp_sd, tg_sd;   /* their standard deviation: the spread */
    /* The performance model's figures for this file on this machine
     * (src/catalog/predict.h, from the probe; < 0 without one): tokens/s of
     * the same pp_n and tg_n tests at pred_threads threads. */
    double pp_pred, tg_pred;
    int pred_threads;
    /* herd's memory estimate (herd_estimate_memory_ctx) for the largest
     * context the measurement makes, beside the measured peak_rss_bytes. */
    double mem_pred_bytes;
    double ppl, ppl_err;
    double bpb;  /* bits per byte of the scored text: comparable across vocabularies */
    int ppl_ctx; /* the perplexity's chunk length (-c) */
    int n_vocab;
    uint64_t vocab_hash; /* of every token's text: equal hashes, same vocabulary */
    double acc, acc_err, acc_norm, acc_norm_err;
    int ctx_train;
    char error[256]; /* non-empty: this measurement failed, with this message */
} herd_compare_row;

struct herd_probe; /* catalog/predict.h */

typedef struct herd_compare_opts {
    const char *text_path;    /* perplexity on this text; NULL: none */
    const herd_mc_task *task; /* accuracy on this task; NULL: none */
    const char *task_path;
    int n_ctx;      /* perplexity chunk (llama.cpp's -c); 0: herd_ppl_default_chunk */
    int max_chunks; /* -1: all */
    int pp_n, tg_n; /* bench sizes; 0: 64 and 16 */
    int reps;       /* bench repetitions after the warm-up; 0: 3 */
    int n_threads;  /* 0: the model's default */
    const struct herd_probe *probe; /* for the predicted speed; NULL: none */
    /* How the runs were ordered, for the report: true when every model was
     * resident at once and the runs alternated between them. */
    bool interleaved;
    /* Called as each phase starts ("load", "perplexity", "task"); may be
     * NULL. */
    void (*phase)(const char *phase, void *user);
    void *user;
} herd_compare_opts;

/*
 * One model under comparison, measured in this process in three steps so
 * that a caller holding several of them (each in its own process) can
 * interleave their bench runs, A B B A …, and a drift of the machine's speed
 * hits every model alike:
 *
 *   open      load (timed), the facts of the file and the catalog, the
 *             predicted speed and memory, a context for the bench;
 *   bench     one run of pp (prompt) or tg (!prompt) at a time; the caller
 *             makes the first of each a warm-up and summarizes the rest
 *             (herd_bench_summarize) into the row;
 *   quality   perplexity and task accuracy as asked (the bench's context is
 *             freed first).
 *
 * A failed step is recorded in row->error (the first failure's message) and
 * the figures it could not take stay < 0.
 */
typedef struct herd_compare_model herd_compare_model;

herd_status herd_compare_open(const char *path, const herd_compare_opts *o, herd_compare_row *row,
                              herd_compare_model **out);
herd_status herd_compare_bench(herd_compare_model *cm, bool prompt, double *tps);
herd_status herd_compare_quality(herd_compare_model *cm, herd_compare_row *row);
void herd_compare_close(herd_compare_model *cm);

/* Write the comparison as one HTML page that needs nothing else: the table,
 * a speed-versus-quality scatter, a memory bar chart (measured and
 * predicted) and, with a task, an accuracy bar chart, in inline SVG with
 * inline CSS; no script, no external reference, nothing fetched. */
herd_status herd_compare_html(FILE *out, const herd_compare_opts *o, const herd_compare_row *rows,
                              int n);

#endif
