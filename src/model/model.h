/*
 * model.h — internal: the model, its architecture row, the KV cache and the
 * context that the forward pass works in.
 *
 * A model is a GGUF file mapped read-only plus what was read out of it: the
 * hyper-parameters, a view (pointer, type, shape) of every weight the
 * architecture uses, and the vocabulary. Weights are used in place; nothing is
 * copied. A context owns everything that changes while decoding: the KV cache
 * (one cell per cached token, each cell tagged with its position and sequence)
 * and scratch buffers sized once for the largest batch.
 *
 * The forward pass (forward.c) is one transformer block driven by the
 * architecture row (arch.c, DESIGN.md decision 1).
 */
#ifndef HERD_MODEL_H
#define HERD_MODEL_H

#include "gguf/gguf.h"
#include "tensor/tensor.h"
#include "tokenizer/tokenizer.h"

#define HERD_MAX_LAYERS 512

typedef enum { NORM_RMS, NORM_LAYER } herd_norm_kind;
typedef enum { ROPE_NONE, ROPE_NORMAL, ROPE_NEOX } herd_rope_kind;
/* MLP_GEGLU: gelu(gate) * up (Gemma); MLP_SWIGLU's gate and up may be one
 * fused ffn_up of 2 n_ff rows, gate first (Phi-3). */
typedef enum { MLP_SWIGLU, MLP_GELU, MLP_GEGLU } herd_mlp_kind;
/* The RoPE of sliding-window layers: the global one (RSWA_SAME, which a
 * rope.freq_base_swa key may rebase: Gemma 2), or its own base from that key
 * or 10000 and no scaling (RSWA_OWN: Gemma 3). */
typedef enum { RSWA_SAME, RSWA_OWN } herd_rope_swa;
typedef enum { QKV_SEPARATE, QKV_FUSED } herd_qkv_kind;
/* Per-head q/k norms: none, one weight row per head in the row's norm kind
 * (StableLM-2 12B: [head_dim, heads]), or one RMSNorm weight shared by every
 * head (Qwen 3: [head_dim]). */
typedef enum { QK_NORM_NONE, QK_NORM_PER_HEAD, QK_NORM_SHARED } herd_qk_norm_kind;

/* How attention and MLP combine with the residual stream x. In every layout
 * the attention reads the (first) attention norm of x.
 *   RES_SEQ       x += attn;  x += mlp(norm_ffn(x))                (llama, mpt)
 *   RES_PARALLEL  x = (mlp(norm_attn(x)) + attn) + x              (falcon, phi2)
 *   RES_NEOX      use_parallel_residual: x = (mlp(norm_ffn(x)) + x) + attn,
 *                 else RES_SEQ                                     (gptneox)
 *   RES_STABLELM  with ffn_norm RES_SEQ, else mlp reads norm_attn(x):
 *                 x = mlp(norm_attn(x)) + (attn + x)               (stablelm)
 * The orders of the adds are llama.cpp's, so rounding matches. A row names
 * the architecture's rule; herd_residual() resolves it for one layer of one
 * file (the only place that does). */
typedef enum { RES_SEQ, RES_PARALLEL, RES_NEOX, RES_STABLELM } herd_residual_kind;

/* Experts: a file of the architecture may have them (llama: Mixtral) and an
 * expert's FFN is n_ff long, or must have them and an expert's FFN is
 * expert_feed_forward_length long (else n_ff / n_expert_used: qwen3moe). */
typedef enum { EXPERTS_OPTIONAL, EXPERTS_REQUIRED } herd_experts_kind;

/* Which biases the converter writes (herd_arch.biases). */
enum {
    BIAS_NORM = 1,     /* LayerNorm biases: attn_norm, ffn_norm, output_norm */
    BIAS_QKV = 2,      /* attn_q/k/v (or attn_qkv) */
    BIAS_OUT_ATTN = 4, /* attn_output */
    BIAS_FFN = 8,      /* ffn_up, ffn_down */
    BIAS_LOGITS = 16   /* output.bias */
};

/* One row per supported general.architecture; arch.c says what each column
 * means and who reads it. */
typedef struct herd_arch {
    const char *name;
    const char *family, *family_moe;
    herd_norm_kind norm;
    const char *eps_key;
    herd_qkv_kind qkv;
    unsigned biases;
    herd_qk_norm_kind qk_norm;
    herd_rope_kind rope;
    bool rope_freqs;
    bool alibi;
    bool q_prescale;
    herd_residual_kind residual;
    herd_mlp_kind mlp;
    herd_experts_kind experts;
    bool tied_output;
    /* Gemma 2/3 and Phi-3; arch.c says what each means. */
    bool embd_scale;
    bool post_norms;
    int swa_pattern;
    int swa_default;
    herd_rope_swa rope_swa;
    float attn_softcap, final_softcap;
    int q_scale_embd_at;
    bool swa_beyond_context;
    bool ffn_fused;
} herd_arch;

const herd_arch *herd_arch_find(const char *name);
/* "llama, falcon, …": the architectures herd runs, for error messages. */
void herd_arch_list(char *buf, size_t cap);

/* Whether the architecture has an ffn_norm: always (RES_SEQ, RES_NEOX),
 * never (RES_PARALLEL) or when the file says so (RES_STABLELM). */
typedef enum { FFN_NORM_NEVER, FFN_NORM_ALWAYS, FFN_NORM_OPTIONAL } herd_ffn_norm_rule;
herd_ffn_norm_rule herd_arch_ffn_norm(const herd_arch *a);

typedef struct herd_hparams {
    int n_ctx_train, n_embd, n_layer, n_ff, n_head, n_head_kv, n_rot, n_vocab;
    int head_dim;  /* attention.key_length, else n_embd / n_head */
    int n_embd_kv; /* head_dim * n_head_kv */
    float norm_eps, rope_freq_base, rope_freq_scale;
    float max_alibi_bias, clamp_kqv; /* 0: off */
    int n_expert, n_expert_used;     /* 0: dense MLP */
    int n_ff_exp;                    /* an expert's FFN length */
    int swa_window;                  /* from the file; 0: none */
    /* Layers that attend to everything although the model has a window
     * (Gemma's global layers); all false: every layer is windowed (Mistral). */
    bool swa_dense[HERD_MAX_LAYERS];
    bool parallel_residual;              /* gptneox.use_parallel_residual */
    float attn_softcap, final_softcap;   /* c·tanh(x / c) of scores / logits; 0: off */
    float q_scale;                       /* Q × this before attention (q_prescale rows) */
    float rope_base_swa, rope_scale_swa; /* RoPE of sliding-window layers */
    float rope_attn_factor;              /* cos and sin × this (rope.scaling.attn_factor) */
    int n_ctx_orig;                      /* longer contexts take rope_factors_long */
} herd_hparams;

/* Rows of Q (and of the attention output): head_dim * n_head, which is
 * n_embd unless the file gives a head size of its own (Mistral Nemo, Qwen 3). */
static inline int herd_n_embd_q(const herd_hparams *hp)
{
    return hp->head_dim * hp->n_head;
}

/* A weight as stored in the file: row-major, ne[0] elements per row. An
 * absent optional weight has data == NULL. */
typedef struct herd_weight {
    const void *data;
    uint32_t type;
    int64_t ne[GGUF_MAX_DIMS];
} herd_weight;

typedef struct herd_layer {
    herd_weight attn_norm, attn_norm_b, attn_norm_2, attn_norm_2_b;
    herd_weight wqkv, bqkv, wq, bq, wk, bk, wv, bv, wo, bo;
    herd_weight q_norm, k_norm; /* per-head LayerNorm weights [head_dim, heads] */
    herd_weight ffn_norm, ffn_norm_b;
    herd_weight w_gate, b_gate, w_up, b_up, w_down, b_down;
    herd_weight router, gate_exps, up_exps, down_exps; /* mixture of experts */
    herd_weight post_attn_norm, post_ffn_norm;         /* Gemma: norms of the block outputs */
} herd_layer;

struct herd_model {
    gguf_file *file;
    char path[512];
    const herd_arch *arch;
    herd_hparams hp;
    herd_vocab *vocab;
    herd_weight tok_embd, output_norm, output_norm_b, output, output_b;
    herd_weight rope_freqs;            /* [n_rot / 2] RoPE frequency factors (Llama 3.1) */
    herd_weight rope_long, rope_short; /* LongRoPE frequency factors [n_rot / 2] (Phi-3) */
    herd_layer *layers;
    bool tied_output;
    bool vocab_only; /* herd_model_params.vocab_only: no weights bound */
    int n_threads;
    uint64_t n_params, tensor_bytes;
    uint32_t file_type; /* the most common matrix type */
    uint8_t *used;      /* while loading: which of the file's tensors are bound */
    char arch_name[64], name[256];
};

/* ------------------------------------------------------------- KV cache */

/* A context keeps one cache for the layers that attend to everything and one
 * for the sliding-window layers (Gemma alternates them): the window's cache
 * holds W - 1 + n_batch cells per sequence and forgets the older ones, so its
 * memory stays flat however long the generation. A model without a window
 * has only the first, Mistral (every layer windowed) only the second. */
typedef struct herd_kv_cache {
    int n_cells;             /* 0: no layer uses this cache */
    uint32_t type_k, type_v; /* HERD_TYPE_F16, F32, BF16, Q8_0 or Q4_0 */
    size_t row_k, row_v;     /* bytes of one cell's K (V) in one layer */
    int32_t *pos;            /* [n_cells]; -1 = free */
    int32_t *seq;            /* [n_cells] */
    int n_used;
    uint8_t **k, **v; /* [n_layer] → [n_cells][n_embd_kv]; NULL: the other cache's layer */
} herd_kv_cache;

/* Whether layer il attends through the window in a context whose window is
 * swa (0: none). */
static inline bool herd_layer_windowed(const herd_hparams *hp, int swa, int il)
{
    return swa > 0 && !hp->swa_dense[il];
}

/* The ggml type of a cache type, and whether a model of head size head_dim
 * can use it (a quantized row holds whole blocks per head); if not, the
 * error names the type and the ones this head size accepts. */
uint32_t herd_kv_ggml_type(herd_kv_type t);
herd_status herd_kv_check_type(herd_kv_type t, int head_dim);
/* A cache of n_cells for the layers whose herd_layer_windowed() is `windowed`. */
herd_status herd_kv_init(herd_kv_cache *kv, const herd_hparams *hp, int swa, bool windowed,
                         int n_cells, herd_kv_type tk, herd_kv_type tv);
void herd_kv_free(herd_kv_cache *kv, int n_layer);
/* Bytes of a cache of n_cells for n_layers layers. */
uint64_t herd_kv_bytes(const herd_hparams *hp, int n_layers, int n_cells, herd_kv_type tk,
                       herd_kv_type tv);
/* Write T rows of K and V (n_embd_kv floats each, rows n_embd_kv apart) into
 * layer il's cells, converted as ggml's set_rows converts them: the cache
 * type's from_float (for Q8_0 the x86 quantizer ggml-cpu uses). For a
 * quantized type, first rotated in place as llama.cpp rotates them (below). */
void herd_kv_store(const herd_kv_cache *kv, int il, const int32_t *cells, float *k, float *v, int T,
                   int n_embd_kv, int head_dim);
/* The Walsh-Hadamard rotation llama.cpp applies with a quantized cache: the
 * chunk length for Q and K (herd_kv_rot_k) and for V and the attention
 * output (herd_kv_rot_v), 0 for none; herd_fwht rotates every chunk of n
 * of n_total floats in place (n a power of two). */
int herd_kv_rot_k(const herd_kv_cache *kv, int head_dim);
int herd_kv_rot_v(const herd_kv_cache *kv, int head_dim);
void herd_fwht(float *x, size_t n_total, int n);
/* Claim one free cell per batch token (in order); fails if the cache is full
 * or a (seq, pos) pair is already cached. */
herd_status herd_kv_claim(herd_kv_cache *kv, const herd_batch *b, int32_t *cells);
void herd_kv_release(herd_kv_cache *kv, const int32_t *cells, int n);

/* --------------------------------------------------------------- context */

/* Scratch for one batch of up to n_batch tokens, allocated once. */
typedef struct herd_scratch {
    float *x;       /* [n_batch][n_embd] residual stream */
    float *xb;      /* [n_batch][n_embd] normed input */
    float *q;       /* [n_batch][n_embd_q] (herd_n_embd_q) */
    float *k, *v;   /* [n_batch][n_embd_kv] */
    float *att;     /* [n_batch][n_embd_q] attention output */
    float *qkv;     /* [n_batch][n_embd_q + 2 n_embd_kv] fused projection */
    float *xf;      /* [n_batch][n_embd] MLP input (a second norm of x) */
    float *ao;      /* [n_batch][n_embd] attention block output (after wo) */
    float *fo;      /* [n_batch][n_embd] MLP output */
    float *ffa;     /* [n_batch][n_ff] gate, then gate*up */
    float *ffb;     /* [n_batch][n_ff] up */
    float *router;  /* [n_batch][n_expert] router logits, then probabilities */
    float *moe_x;   /* [n_batch][n_embd] rows routed to one expert */
    float *moe_y;   /* [n_batch][n_embd] that expert's output */
    float *moe_out; /* [n_batch][n_expert_used][n_embd] each slot's output */
    float *outx;    /* [n_batch][n_embd] rows whose logits are wanted */
    void *work;     /* matmul activation conversion */
    size_t work_bytes;
} herd_scratch;

struct herd_ctx {
    herd_model *model;
    herd_ctx_params params;
    herd_kv_cache kv;     /* layers that attend to everything */
    herd_kv_cache kv_swa; /* sliding-window layers */
    herd_scratch s;
    int32_t *cells;            /* [n_batch] cell of each batch token in kv */
    int32_t *cells_swa;        /* [n_batch] … in kv_swa */
    float *logits;             /* [n_batch][n_vocab] */
    int32_t *logit_row;        /* [n_batch] row in logits of each batch token, or -1 */
    int32_t *seq;              /* [n_batch] sequence of each batch token */
    int32_t *vis;              /* [n_ctx] used cells grouped by sequence (attention.c) */
    int32_t *seg;              /* [n_seq_max + 1] where each sequence's group starts */
    int32_t *moe_sel;          /* [n_batch][n_expert_used] chosen experts */
    float *moe_w;              /* [n_batch][n_expert_used] their weights */
    int32_t *moe_rows;         /* [n_batch] batch rows routed to one expert */
    int swa;                   /* sliding window in use (0: full attention) */
    const float *rope_factors; /* LongRoPE factors this context uses, or NULL */
    uint64_t expert_rows_read; /* weight rows of experts multiplied (for tests) */
    int n_threads;
    void *att_work;      /* [herd_attention_work_total] attention workspace */
    int att_ranges;      /* ranges a split decode uses (0: one per thread); tests set it */
    uint64_t att_splits; /* attention calls that split the cache (for tests) */
};

/* The cache of layer il and the cells of the batch's tokens in it. */
static inline herd_kv_cache *herd_ctx_kv(herd_ctx *c, int il)
{
    return herd_layer_windowed(&c->model->hp, c->swa, il) ? &c->kv_swa : &c->kv;
}
static inline const int32_t *herd_ctx_cells(const herd_ctx *c, int il)
{
    return herd_layer_windowed(&c->model->hp, c->swa, il) ? c->cells_swa : c->cells;
}

/* Run the layers over a batch whose tokens already have cells; writes logits. */
herd_status herd_forward(herd_ctx *ctx, const herd_batch *b);

/* The residual layout layer L of model m really uses: RES_SEQ, RES_PARALLEL,
 * or RES_NEOX / RES_STABLELM meaning their parallel forms (model.h). */
herd_residual_kind herd_residual(const herd_model *m, const herd_layer *L);

/* Mixture-of-experts MLP over the batch (moe.c). */
void herd_moe(herd_ctx *ctx, const herd_layer *L, const float *in, int T, float *out);
/* The work buffer decoding one token through the experts needs. */
size_t herd_moe_work_bytes(const herd_model *m);

/* Attention for one layer over the batch (attention.c), and the workspace
 * each of its threads needs (the context allocates n_threads of them). */
void herd_attention(herd_ctx *ctx, int layer, const herd_batch *b, const int32_t *seq);
size_t herd_attention_work_bytes(const herd_hparams *hp);
/* The vector path's F16 kernels (ggml_vec_dot_f16, ggml_vec_mad_f16) at a
 * SIMD level, "scalar" (the reference), "avx2" or "avx512", for tests; false
 * for a level this build lacks. Every level gives the same bits. */
typedef float (*herd_att_dot_fn)(const uint16_t *x, const uint16_t *y, int n);
typedef void (*herd_att_mad_fn)(uint16_t *acc, const uint16_t *v, float s, int n);
typedef void (*herd_att_mad32_fn)(float *acc, const float *v, float s, int n);
bool herd_attention_kernels(const char *level, herd_att_dot_fn *dot, herd_att_mad_fn *mad,
                            herd_att_mad32_fn *mad32);
/* All of it: n_threads workspaces, then the split decode's partials. */
#define HERD_ATT_MAX_RANGES 16
size_t herd_attention_work_total(const herd_hparams *hp, int n_threads);

/* Sizes shared by the allocator and herd_estimate_memory(). */
uint64_t herd_scratch_bytes(const herd_model *m, int n_batch);

#endif
