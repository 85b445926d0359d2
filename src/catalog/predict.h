/*
 * predict.h — how fast a model of a given shape will run on this machine.
 *
 * Two halves. The probe (probe.c) measures the machine once: read bandwidth
 * with 1..N threads, the product kernels' throughput per weight type for one
 * token (bytes of weights per second: decode) and for a 512-token batch
 * (multiply-adds per second: prompt), the fixed cost of one threaded product,
 * and the cost of attention per query and cached token. It is kept as JSON in
 * the user's cache folder and reused while the CPU and herd stay the same.
 *
 * The model (predict.c) turns a shape (layers, widths, heads, experts,
 * vocabulary) and the mix of weight types a file holds (predict_mix.c: a
 * Q4_K_M file is Q4_K and Q6_K, a Q4_0 file has a Q6_K output) into tokens
 * per second:
 *
 *   decode (one token):  sum over the types of the bytes the token reads of
 *                        that type x max(1 / the type's kernel rate streaming
 *                        weights twice the L3 from memory, 1 / its rate with
 *                        the weights in cache): a kernel is bound by the bus
 *                        (as its own loads use it) or by its arithmetic,
 *                        whichever is slower (Q4_0 decodes slower than Q4_K
 *                        on Zen 4 at one thread though it reads fewer bytes)
 *                        + one call cost per product, one pool dispatch per
 *                          layer for attention (the per-token fixed cost)
 *                        + attention: layers x heads x cached tokens x cost
 *   prompt (n tokens):   sum over the types of 2 x n x weights / that type's
 *                        512-token product rate, the output matrix for the
 *                        last token only, + attention over the triangle
 *
 * A mixture of experts reads only the experts it uses per token when
 * decoding; a prompt batch touches every expert but multiplies each token by
 * its own few.
 */
#ifndef HERD_PREDICT_H
#define HERD_PREDICT_H

#include "herd.h"

#define HERD_PROBE_MAX_THREADS 8
#define HERD_PROBE_MAX_TYPES   8
#define HERD_PROBE_SCHEMA      4

typedef struct herd_probe_type {
    uint32_t type;                                     /* HERD_TYPE_* */
    double gemv_gbs[HERD_PROBE_MAX_THREADS + 1];       /* [threads]: GB/s of weights, one token,
                                                          streamed from memory */
    double gemm_gflops[HERD_PROBE_MAX_THREADS + 1];    /* [threads]: 10^9 flop/s, 512 tokens */
    double gemv_cache_gbs[HERD_PROBE_MAX_THREADS + 1]; /* [threads]: GB/s of weights, one token,
                                                          weights in L2: the kernel's own speed */
} herd_probe_type;

typedef struct herd_probe {
    char cpu[128];                               /* /proc/cpuinfo's model name and the core count */
    char herd[64];                               /* herd's version and kernel level that made it */
    int max_threads;                             /* measured with 1..max_threads */
    double read_gbs[HERD_PROBE_MAX_THREADS + 1]; /* [threads] */
    double call_us[HERD_PROBE_MAX_THREADS + 1];  /* [threads]: one small product */
    double sync_us[HERD_PROBE_MAX_THREADS + 1];  /* [threads]: one empty pool dispatch */
    double attn_ns_decode; /* per query x cached token, head size 128, one thread */
    double attn_ns_prompt; /* the same in a 64-query batch */
    double seconds;        /* how long the probe took */
    herd_probe_type types[HERD_PROBE_MAX_TYPES];
    int n_types;
} herd_probe;

/* This machine's identity as the probe records it. */
void herd_probe_identity(char *cpu, size_t cpu_cap, char *herd, size_t herd_cap);
/* Measure (a few seconds, up to max_threads threads). */
herd_status herd_probe_run(int max_threads, herd_probe *out);
/* The probe as JSON (malloc'ed) and back. Parsing checks every field and the
 * identity: a probe of another CPU or herd is refused (HERD_E_INVALID, with
 * herd_errmsg saying why). */
char *herd_probe_json(const herd_probe *p);
herd_status herd_probe_parse(const char *text, size_t len, herd_probe *out);
/* $XDG_CACHE_HOME/herd/probe.json, else ~/.cache/herd/probe.json. */
herd_status herd_probe_path(char *buf, size_t cap);
/* The probe kept at path if it is valid and this machine's; otherwise
 * measure and store it. *remeasured tells which, and why (if not NULL, cap
 * bytes) gets the reason the stored one was not used ("" if there was none). */
herd_status herd_probe_cached(const char *path, int max_threads, herd_probe *out, bool *remeasured,
                              char *why, size_t cap);

/* ---------------------------------------------------------- model */

typedef struct herd_shape {
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab;
    int n_expert, n_expert_used; /* 0: dense */
    int swa;                     /* sliding window; 0: none */
} herd_shape;

typedef struct herd_prediction {
    double pp, tg;       /* tokens/s: a prompt of n_prompt tokens, n_gen generated from empty */
    double tg_depth;     /* tokens/s of one generated token after depth cached tokens */
    double gb_per_token; /* weights read per generated token, 10^9 bytes */
    int threads;         /* the threads the probe measured that were used */
} herd_prediction;

/* The shape of a loaded model, and the type most of its matrices have. */
void herd_shape_of_model(const herd_model *m, herd_shape *s);
uint32_t herd_model_matrix_type(const herd_model *m);
/* Parameters of the products a token goes through (active: the experts it
 * uses), and all of them, from the shape. */
double herd_shape_params(const herd_shape *s, bool active);

/* Predict for weights of `type` averaging bpw bits per weight (every
 * matrix of one type: the catalog's estimate when the mix is not known). */
herd_status herd_predict(const herd_probe *p, const herd_shape *s, uint32_t type, double bpw,
                         int threads, int n_prompt, int n_gen, int depth, herd_prediction *out);

/* GB/s of weights at which one token's product of `type` goes with t
 * threads: min(its streamed rate, its in-cache rate); 0 if not probed. */
double herd_predict_gemv_gbs(const herd_probe *p, uint32_t type, int t);

/* The weights one token multiplies, grouped by type (predict_mix.c). */
#define HERD_MIX_MAX 12
typedef struct herd_mix_group {
    uint32_t type;
    double params; /* weights a token multiplies (of a mixture: the experts it uses) */
    double bytes;  /* their bytes */
    bool output;   /* the output matrix: a prompt multiplies only its last token */
} herd_mix_group;

typedef struct herd_weight_mix {
    herd_mix_group g[HERD_MIX_MAX];
    int n;
    int products; /* matrix products per token */
} herd_weight_mix;

/* The mix of a loaded model, from its tensors. */
herd_status herd_weight_mix_of_model(const herd_model *m, herd_weight_mix *out);
/* The mix of a file of type ftype ("Q4_K_M", "q8_0", "F16") for a shape of
 * architecture arch (GGUF name; NULL: llama's layout), by herd quantize's
 * (llama-quantize's) rules. */
herd_status herd_weight_mix_of_ftype(const herd_shape *s, const char *arch, const char *ftype,
                                     herd_weight_mix *out);
/* Predict from a mix. */
herd_status herd_predict_mix(const herd_probe *p, const herd_shape *s, const herd_weight_mix *mix,
                             int threads, int n_prompt, int n_gen, int depth, herd_prediction *out);

#endif
