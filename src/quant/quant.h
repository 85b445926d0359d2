/*
 * quant.h — quantizing model files (herd quantize) and choosing each
 * tensor's type the way llama.cpp's quantizer does (shared with herd synth).
 *
 * A "file type" (llama.cpp's llama_ftype: q4_0, q4_k_m, …) is a default
 * tensor type plus a mix: llama_tensor_get_type bumps some tensors to more
 * bits (the output matrix to Q6_K, attn_v and ffn_down in some layers to
 * Q6_K for the *_M mixes, …), counting attn_v and ffn_down tensors as it
 * meets them. The counts make the result depend on the order the tensors are
 * visited in, which is llama.cpp's: tensors outside the blocks first, then
 * block by block, by name within each (herd_quant_name_cmp). A plan visited in
 * that order gives llama.cpp's choice for every tensor.
 */
#ifndef HERD_QUANT_H
#define HERD_QUANT_H

#include "util/util.h"

typedef struct herd_ftype_info {
    const char *name;      /* "q4_k_m", as llama-quantize spells it in lower case */
    uint32_t ftype;        /* llama_ftype, written as general.file_type */
    uint32_t default_type; /* herd_type of most matrices */
} herd_ftype_info;

/* By name, case-insensitive ("Q4_K_M", "q4_k_m"; "q4_k" means q4_k_m as in
 * llama-quantize). NULL if herd cannot make that mix. */
const herd_ftype_info *herd_ftype_find(const char *name);
/* All of them, ended by a row with a NULL name. */
const herd_ftype_info *herd_ftype_all(void);
/* The name of a general.file_type value ("q4_k_m"), or NULL. */
const char *herd_ftype_name(uint32_t ftype);

/* The state llama_tensor_get_type keeps while it walks a model. */
typedef struct herd_quant_plan {
    uint32_t ftype, default_type;
    bool falcon; /* some rules are per architecture */
    bool is_70b; /* llama with 80 layers and grouped KV: attn_v gets more bits */
    bool pure;   /* --pure: the default type everywhere (fallbacks still apply) */
    bool tied;   /* no output.weight: token_embd is the output matrix */
    int n_layer, n_gqa, n_expert;
    int n_attention_wv, i_attention_wv, i_ffn_down, i_ffn_gate, i_ffn_up;
    int n_fallback; /* tensors whose rows did not fit the type's block */
} herd_quant_plan;

/* names: every tensor of the model (any order). n_head_kv 0 means n_head. */
void herd_quant_plan_init(herd_quant_plan *p, const herd_ftype_info *ft, const char *arch,
                          int n_layer, int n_head, int n_head_kv, int n_expert,
                          const char *const *names, int n_names);

/* The type tensor `name` (n_dims dimensions, rows of ne0 elements, now of
 * type cur) gets. Call once per tensor, in herd_quant_name_cmp order. */
uint32_t herd_quant_tensor_type(herd_quant_plan *p, const char *name, int n_dims, int64_t ne0,
                                uint32_t cur);

/* llama.cpp's tensor order: by block number (tensors outside blocks first),
 * then by name. */
int herd_quant_name_cmp(const char *a, const char *b);

/* ------------------------------------------------------------ files */

/* Where quantizing is, for a caller that shows it (the library prints
 * nothing): tensor i of n, about to be written. */
typedef struct herd_quantize_progress {
    int i, n;
    const char *name;
    uint32_t type_in, type_out;
    uint64_t bytes_in, bytes_out;
} herd_quantize_progress;

typedef struct herd_quantize_params {
    const char *in_path, *out_path, *type; /* type: a herd_ftype_find name */
    int n_threads;                         /* ≤ 0: 2 */
    bool pure;
    /* Called before each tensor is written (NULL: not called). */
    void (*progress)(const herd_quantize_progress *p, void *user);
    void *progress_user;
} herd_quantize_params;

typedef struct herd_quantize_stats {
    uint64_t bytes_in, bytes_out, n_elements;
    int n_tensors, n_quantized, n_fallback;
} herd_quantize_stats;

/* Convert an F32/F16/BF16 GGUF file (tensors already in their target type
 * are copied as they are). stats may be NULL. The output is written beside
 * out_path and renamed into place when complete; an output that is the input
 * (also through a link) is refused before anything is written. */
herd_status herd_quantize(const herd_quantize_params *p, herd_quantize_stats *stats);

#endif
