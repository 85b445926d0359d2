/*
 * quant_plan.c — which type each tensor gets in a quantized file: llama.cpp's
 * llama_tensor_get_type (src/llama-quant.cpp), for the mixes herd can make.
 *
 * The rules are kept in llama.cpp's if/else order, because that order is
 * part of them: a fused attn_qkv, for instance, takes the attn_v branch and
 * never reaches the attn_qkv one, and the attn_v / ffn_down counters only
 * advance in the branches that count them. Checked against `oracle quantize`
 * on the tiny models (tests/test_quantize.c).
 */
#include "quant/quant.h"
#include "tensor/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* llama_ftype values (llama.h). */
enum {
    FT_F32 = 0,
    FT_F16 = 1,
    FT_Q4_0 = 2,
    FT_Q4_1 = 3,
    FT_Q8_0 = 7,
    FT_Q5_0 = 8,
    FT_Q5_1 = 9,
    FT_Q2_K = 10,
    FT_Q3_K_S = 11,
    FT_Q3_K_M = 12,
    FT_Q3_K_L = 13,
    FT_Q4_K_S = 14,
    FT_Q4_K_M = 15,
    FT_Q5_K_S = 16,
    FT_Q5_K_M = 17,
    FT_Q6_K = 18,
    FT_BF16 = 32,
};

static const herd_ftype_info ftypes[] = {
    {"f32", FT_F32, HERD_TYPE_F32},        {"f16", FT_F16, HERD_TYPE_F16},
    {"bf16", FT_BF16, HERD_TYPE_BF16},     {"q8_0", FT_Q8_0, HERD_TYPE_Q8_0},
    {"q4_0", FT_Q4_0, HERD_TYPE_Q4_0},     {"q4_1", FT_Q4_1, HERD_TYPE_Q4_1},
    {"q5_0", FT_Q5_0, HERD_TYPE_Q5_0},     {"q5_1", FT_Q5_1, HERD_TYPE_Q5_1},
    {"q2_k", FT_Q2_K, HERD_TYPE_Q2_K},     {"q3_k_s", FT_Q3_K_S, HERD_TYPE_Q3_K},
    {"q3_k_m", FT_Q3_K_M, HERD_TYPE_Q3_K}, {"q3_k_l", FT_Q3_K_L, HERD_TYPE_Q3_K},
    {"q4_k_s", FT_Q4_K_S, HERD_TYPE_Q4_K}, {"q4_k_m", FT_Q4_K_M, HERD_TYPE_Q4_K},
    {"q5_k_s", FT_Q5_K_S, HERD_TYPE_Q5_K}, {"q5_k_m", FT_Q5_K_M, HERD_TYPE_Q5_K},
    {"q6_k", FT_Q6_K, HERD_TYPE_Q6_K},     {NULL, 0, 0},
};

const herd_ftype_info *herd_ftype_all(void)
{
    return ftypes;
}

const herd_ftype_info *herd_ftype_find(const char *name)
{
    if (!name) return NULL;
    /* llama-quantize's short names for the medium mixes. */
    static const char *const alias[][2] = {
        {"q3_k", "q3_k_m"}, {"q4_k", "q4_k_m"}, {"q5_k", "q5_k_m"}};
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcasecmp(name, alias[i][0])) name = alias[i][1];
    for (const herd_ftype_info *f = ftypes; f->name; f++)
        if (!strcasecmp(f->name, name)) return f;
    return NULL;
}

const char *herd_ftype_name(uint32_t ftype)
{
    for (const herd_ftype_info *f = ftypes; f->name; f++)
        if (f->ftype == ftype) return f->name;
    return NULL;
}

/* ------------------------------------------------------------ order */

static int block_of(const char *name)
{
    int il = -1;
    if (sscanf(name, "blk.%d.", &il) != 1) il = -1;
    return il;
}

int herd_quant_name_cmp(const char *a, const char *b)
{
    const int la = block_of(a), lb = block_of(b);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a, b);
}

/* ------------------------------------------------------------ categories */

typedef enum {
    C_TOKEN_EMBD,
    C_ATTN_Q,
    C_ATTN_V, /* attn_v, attn_qkv, attn_kv_b: the ones counted in n_attention_wv */
    C_ATTN_K,
    C_ATTN_OUTPUT,
    C_FFN_UP,
    C_FFN_GATE,
    C_FFN_DOWN,
    C_OUTPUT,
    C_OTHER
} category;

static category category_of(const char *name)
{
    if (!strcmp(name, "output.weight")) return C_OUTPUT;
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight"))
        return C_TOKEN_EMBD;
    if (strstr(name, "attn_qkv.weight") || strstr(name, "attn_kv_b.weight") ||
        strstr(name, "attn_v.weight"))
        return C_ATTN_V;
    if (strstr(name, "attn_k.weight")) return C_ATTN_K;
    if (strstr(name, "attn_q.weight")) return C_ATTN_Q;
    if (strstr(name, "attn_output.weight")) return C_ATTN_OUTPUT;
    if (strstr(name, "ffn_up")) return C_FFN_UP;
    if (strstr(name, "ffn_gate")) return C_FFN_GATE;
    if (strstr(name, "ffn_down")) return C_FFN_DOWN;
    return C_OTHER;
}

/* tensor_allows_quantization: 2-D (or 3-D expert) weights, not norms, not
 * the MoE router, not position or token-type embeddings. */
static bool allows_quantization(const char *name, int n_dims)
{
    const size_t len = strlen(name);
    if (n_dims < 2 || len < 6 || strcmp(name + len - 6, "weight") != 0) return false;
    return !strstr(name, "_norm.weight") && !strstr(name, "ffn_gate_inp.weight") &&
           strcmp(name, "position_embd.weight") != 0 && strcmp(name, "token_types.weight") != 0;
}

void herd_quant_plan_init(herd_quant_plan *p, const herd_ftype_info *ft, const char *arch,
                          int n_layer, int n_head, int n_head_kv, int n_expert,
                          const char *const *names, int n_names)
{
    memset(p, 0, sizeof *p);
    p->ftype = ft->ftype;
    p->default_type = ft->default_type;
    p->falcon = arch && !strcmp(arch, "falcon");
    if (n_head_kv <= 0) n_head_kv = n_head;
    p->n_gqa = n_head_kv > 0 ? n_head / n_head_kv : 1;
    /* llama.cpp's LLM_TYPE_70B: 80 layers of llama with grouped KV. */
    p->is_70b = arch && !strcmp(arch, "llama") && n_layer == 80 && n_head != n_head_kv;
    p->n_layer = n_layer;
    p->n_expert = n_expert;
    p->tied = true;
    for (int i = 0; i < n_names; i++) {
        const category c = category_of(names[i]);
        if (c == C_ATTN_V) p->n_attention_wv++;
        if (c == C_OUTPUT) p->tied = false;
    }
}

/* ------------------------------------------------------------ the rules */

static bool use_more_bits(int i_layer, int n_layers)
{
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

static uint32_t mix_type(herd_quant_plan *p, const char *name, int64_t ne0, category cat)
{
    uint32_t t = p->default_type;
    const uint32_t ft = p->ftype;
    if (cat == C_OUTPUT || (p->tied && cat == C_TOKEN_EMBD)) {
        if (p->falcon || ne0 % herd_type(t)->blck_size != 0)
            t = HERD_TYPE_Q8_0;
        else if (t != HERD_TYPE_Q8_0)
            t = HERD_TYPE_Q6_K;
    } else if (cat == C_TOKEN_EMBD) {
        /* Only the IQ mixes change it. */
    } else if (cat == C_ATTN_V) {
        if (ft == FT_Q2_K)
            t = p->n_gqa >= 4 ? HERD_TYPE_Q4_K : HERD_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = p->i_attention_wv < 2 ? HERD_TYPE_Q5_K : HERD_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L)
            t = HERD_TYPE_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) &&
                 use_more_bits(p->i_attention_wv, p->n_attention_wv))
            t = HERD_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && p->i_attention_wv < 4)
            t = HERD_TYPE_Q5_K;
        /* 70B: eight heads share each attn_v row, so it is 8× smaller than
         * attn_q and more bits cost little. */
        if (p->is_70b && (t == HERD_TYPE_Q3_K || t == HERD_TYPE_Q4_K)) t = HERD_TYPE_Q5_K;
        if (p->n_expert == 8) t = HERD_TYPE_Q8_0;
        p->i_attention_wv++;
    } else if (cat == C_ATTN_K) {
        if (p->n_expert == 8) t = HERD_TYPE_Q8_0;
    } else if (cat == C_ATTN_Q) {
        /* Only the IQ mixes change it. */
    } else if (cat == C_FFN_DOWN) {
        /* Expert tensors are not in layer order: their layer is in the name. */
        int i_layer = p->i_ffn_down;
        const int n_layer = p->n_layer;
        if (p->n_expert > 1) i_layer = block_of(name);
        if (ft == FT_Q2_K) {
            t = HERD_TYPE_Q3_K;
        } else if (ft == FT_Q3_K_M) {
            t = i_layer < n_layer / 16                          ? HERD_TYPE_Q5_K
                : !p->falcon || use_more_bits(i_layer, n_layer) ? HERD_TYPE_Q4_K
                                                                : HERD_TYPE_Q3_K;
        } else if (ft == FT_Q3_K_L) {
            t = p->falcon ? HERD_TYPE_Q4_K : HERD_TYPE_Q5_K;
        } else if (ft == FT_Q4_K_M) {
            if (p->falcon)
                t = i_layer < n_layer / 16            ? HERD_TYPE_Q6_K
                    : use_more_bits(i_layer, n_layer) ? HERD_TYPE_Q5_K
                                                      : HERD_TYPE_Q4_K;
            else if (use_more_bits(i_layer, n_layer))
                t = HERD_TYPE_Q6_K;
        } else if (ft == FT_Q5_K_M && use_more_bits(i_layer, n_layer)) {
            t = HERD_TYPE_Q6_K;
        } else if (ft == FT_Q4_K_S && !p->falcon && i_layer < n_layer / 8) {
            t = HERD_TYPE_Q5_K;
        }
        p->i_ffn_down++;
    } else if (cat == C_ATTN_OUTPUT) {
        if (!p->falcon) {
            if (p->n_expert == 8) {
                if (ft == FT_Q2_K || ft == FT_Q3_K_S || ft == FT_Q3_K_M || ft == FT_Q4_K_S ||
                    ft == FT_Q4_K_M)
                    t = HERD_TYPE_Q5_K;
            } else {
                if (ft == FT_Q2_K)
                    t = HERD_TYPE_Q3_K;
                else if (ft == FT_Q3_K_M)
                    t = HERD_TYPE_Q4_K;
                else if (ft == FT_Q3_K_L)
                    t = HERD_TYPE_Q5_K;
            }
        } else if (ft == FT_Q3_K_L) {
            t = HERD_TYPE_Q4_K;
        }
    } else if (cat == C_FFN_GATE) {
        p->i_ffn_gate++;
    } else if (cat == C_FFN_UP) {
        p->i_ffn_up++;
    }
    return t;
}

/* tensor_type_fallback: a row that is not a whole number of blocks takes a
 * type with 32-element blocks, or F16. */
static uint32_t fallback(herd_quant_plan *p, int64_t ne0, uint32_t t)
{
    if (ne0 % herd_type(t)->blck_size == 0) return t;
    p->n_fallback++;
    switch (t) {
    case HERD_TYPE_Q2_K:
    case HERD_TYPE_Q3_K:
        t = HERD_TYPE_Q4_0;
        break;
    case HERD_TYPE_Q4_K:
        t = HERD_TYPE_Q5_0;
        break;
    case HERD_TYPE_Q5_K:
        t = HERD_TYPE_Q5_1;
        break;
    case HERD_TYPE_Q6_K:
        t = HERD_TYPE_Q8_0;
        break;
    default:
        break;
    }
    return ne0 % herd_type(t)->blck_size == 0 ? t : HERD_TYPE_F16;
}

uint32_t herd_quant_tensor_type(herd_quant_plan *p, const char *name, int n_dims, int64_t ne0,
                                uint32_t cur)
{
    if (!allows_quantization(name, n_dims)) return cur;
    uint32_t t = p->default_type;
    if (!herd_type(t)->is_quantized) return t; /* f16, bf16, f32: every matrix */
    if (!p->pure) t = mix_type(p, name, ne0, category_of(name));
    return fallback(p, ne0, t);
}
