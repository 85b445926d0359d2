/*
 * kv.c — the KV cache: n_cells slots per layer, each holding one token's keys
 * and values (F16 by default, as llama.cpp; F32, BF16, Q8_0 or Q4_0 as -ctk/-ctv
 * choose, K and V each their own), tagged with the token's sequence
 * and position. A token attends to the cells of its own sequence whose
 * position is not after its own; cells are claimed in ascending order, so for
 * one sequence cell order is position order, which is the order llama.cpp's
 * attention visits keys in.
 */
#include "model/model.h"
#include "tensor/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One row per cache type: its name as llama.cpp spells it and its ggml type. */
static const struct {
    herd_kv_type t;
    const char *name;
    uint32_t ggml;
} kv_types[] = {
    {HERD_KV_F32, "f32", HERD_TYPE_F32},    {HERD_KV_F16, "f16", HERD_TYPE_F16},
    {HERD_KV_BF16, "bf16", HERD_TYPE_BF16}, {HERD_KV_Q8_0, "q8_0", HERD_TYPE_Q8_0},
    {HERD_KV_Q4_0, "q4_0", HERD_TYPE_Q4_0},
};
#define N_KV_TYPES (sizeof kv_types / sizeof kv_types[0])

const char *herd_kv_type_name(herd_kv_type t)
{
    for (size_t i = 0; i < N_KV_TYPES; i++)
        if (kv_types[i].t == t) return kv_types[i].name;
    return NULL;
}

uint32_t herd_kv_ggml_type(herd_kv_type t)
{
    for (size_t i = 0; i < N_KV_TYPES; i++)
        if (kv_types[i].t == t) return kv_types[i].ggml;
    return HERD_TYPE_F16;
}

/* "f32, f16, …" for the types a head of head_dim can use (0: any head). */
static void accepted(int head_dim, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_KV_TYPES; i++) {
        if (head_dim > 0 && head_dim % herd_type(kv_types[i].ggml)->blck_size) continue;
        int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", kv_types[i].name);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
}

herd_status herd_kv_type_parse(const char *name, herd_kv_type *out)
{
    for (size_t i = 0; name && i < N_KV_TYPES; i++)
        if (!strcasecmp(name, kv_types[i].name)) {
            *out = kv_types[i].t;
            return HERD_OK;
        }
    char list[64];
    accepted(0, list, sizeof list);
    return herd_seterr(HERD_E_INVALID, "unknown cache type '%s' (accepted: %s)", name ? name : "",
                       list);
}

herd_status herd_kv_check_type(herd_kv_type t, int head_dim)
{
    const char *name = herd_kv_type_name(t);
    char list[64];
    if (!name) {
        accepted(0, list, sizeof list);
        return herd_seterr(HERD_E_INVALID, "unknown cache type %d (accepted: %s)", (int)t, list);
    }
    const int64_t blck = herd_type(herd_kv_ggml_type(t))->blck_size;
    if (head_dim > 0 && head_dim % blck == 0) return HERD_OK;
    accepted(head_dim, list, sizeof list);
    return herd_seterr(HERD_E_UNSUPPORTED,
                       "cache type %s needs a head size that is a multiple of %d; this model's is "
                       "%d (accepted: %s)",
                       name, (int)blck, head_dim, list);
}

uint64_t herd_kv_bytes(const herd_hparams *hp, int n_layers, int n_cells, herd_kv_type tk,
                       herd_kv_type tv)
{
    uint64_t row = herd_row_bytes(herd_kv_ggml_type(tk), hp->n_embd_kv) +
                   herd_row_bytes(herd_kv_ggml_type(tv), hp->n_embd_kv);
    return (uint64_t)n_layers * (uint64_t)n_cells * row;
}

herd_status herd_kv_init(herd_kv_cache *kv, const herd_hparams *hp, int swa, bool windowed,
                         int n_cells, herd_kv_type tk, herd_kv_type tv)
{
    memset(kv, 0, sizeof *kv);
    kv->n_cells = n_cells;
    kv->type_k = herd_kv_ggml_type(tk);
    kv->type_v = herd_kv_ggml_type(tv);
    kv->row_k = herd_row_bytes(kv->type_k, hp->n_embd_kv);
    kv->row_v = herd_row_bytes(kv->type_v, hp->n_embd_kv);
    kv->pos = herd_calloc((size_t)n_cells + 1, sizeof *kv->pos);
    kv->seq = herd_calloc((size_t)n_cells + 1, sizeof *kv->seq);
    kv->k = herd_calloc((size_t)hp->n_layer, sizeof *kv->k);
    kv->v = herd_calloc((size_t)hp->n_layer, sizeof *kv->v);
    if (!kv->pos || !kv->seq || !kv->k || !kv->v) return HERD_E_NOMEM;
    for (int i = 0; i < n_cells; i++) kv->pos[i] = -1;
    for (int il = 0; il < hp->n_layer; il++) {
        if (herd_layer_windowed(hp, swa, il) != windowed) continue;
        kv->k[il] = herd_alloc_aligned(kv->row_k * (size_t)n_cells);
        kv->v[il] = herd_alloc_aligned(kv->row_v * (size_t)n_cells);
        if (!kv->k[il] || !kv->v[il]) return HERD_E_NOMEM;
        /* Touched now, as llama.cpp clears its cache buffer: the memory a
         * context holds is resident from the start and does not grow while
         * the full-attention layers fill up. */
        memset(kv->k[il], 0, kv->row_k * (size_t)n_cells);
        memset(kv->v[il], 0, kv->row_v * (size_t)n_cells);
    }
    return HERD_OK;
}

/* llama.cpp rotates what goes into a quantized cache by an orthonormal
 * Walsh-Hadamard matrix (llama-kv-cache.cpp, attn_rot_k / attn_rot_v), which
 * spreads outliers over the block before it is quantized: with a quantized K
 * and a head size that is a multiple of 64, Q and K in chunks of the largest
 * power of two that divides the head size; with a quantized V, V in chunks
 * of 64 and the attention output again (the matrix is its own inverse). */
int herd_kv_rot_k(const herd_kv_cache *kv, int head_dim)
{
    if (!herd_type(kv->type_k)->is_quantized || head_dim % 64) return 0;
    int n = 64;
    while (head_dim % (2 * n) == 0) n *= 2;
    return n;
}

int herd_kv_rot_v(const herd_kv_cache *kv, int head_dim)
{
    return herd_type(kv->type_v)->is_quantized && head_dim % 64 == 0 ? 64 : 0;
}

/* ggml_compute_forward_fwht's order: scale first, then the butterflies
 * (u + v, u − v) with spans 1, 2, 4, …; each step is exact elementwise
 * arithmetic, so SIMD or not gives the same bits. */
void herd_fwht(float *x, size_t n_total, int n)
{
    const float scale = 1.0f / sqrtf((float)n);
    for (size_t r = 0; r + (size_t)n <= n_total; r += (size_t)n) {
        float *row = x + r;
        for (int j = 0; j < n; j++) row[j] *= scale;
        for (int len = 1; len < n; len <<= 1)
            for (int i = 0; i < n; i += 2 * len)
                for (int j = 0; j < len; j++) {
                    const float u = row[i + j], v = row[i + len + j];
                    row[i + j] = u + v;
                    row[i + len + j] = u - v;
                }
    }
}

/* One row into a cache of `type`: F32 as is, the others by the conversion
 * ggml-cpu's set_rows uses (type_traits_cpu[type].from_float). */
static void store_row(uint32_t type, const float *x, uint8_t *dst, int n)
{
    switch (type) {
    case HERD_TYPE_F32:
        memcpy(dst, x, (size_t)n * sizeof(float));
        break;
    case HERD_TYPE_F16:
        herd_fp32_to_fp16_row(x, dst, n);
        break;
    case HERD_TYPE_BF16:
        herd_fp32_to_bf16_row(x, dst, n);
        break;
    case HERD_TYPE_Q8_0:
        herd_quantize_q8_0_act(x, dst, n);
        break;
    case HERD_TYPE_Q4_0:
        herd_quantize_q4_0_ref(x, dst, n);
        break;
    default:
        break; /* herd_kv_init only makes the types above */
    }
}

void herd_kv_store(const herd_kv_cache *kv, int il, const int32_t *cells, float *k, float *v, int T,
                   int n_embd_kv, int head_dim)
{
    const int rk = herd_kv_rot_k(kv, head_dim), rv = herd_kv_rot_v(kv, head_dim);
    if (rk) herd_fwht(k, (size_t)T * n_embd_kv, rk);
    if (rv) herd_fwht(v, (size_t)T * n_embd_kv, rv);
    for (int t = 0; t < T; t++) {
        store_row(kv->type_k, k + (size_t)t * n_embd_kv, kv->k[il] + (size_t)cells[t] * kv->row_k,
                  n_embd_kv);
        store_row(kv->type_v, v + (size_t)t * n_embd_kv, kv->v[il] + (size_t)cells[t] * kv->row_v,
                  n_embd_kv);
    }
}

void herd_kv_free(herd_kv_cache *kv, int n_layer)
{
    for (int il = 0; kv->k && il < n_layer; il++) free(kv->k[il]);
    for (int il = 0; kv->v && il < n_layer; il++) free(kv->v[il]);
    free(kv->k);
    free(kv->v);
    free(kv->pos);
    free(kv->seq);
    memset(kv, 0, sizeof *kv);
}

herd_status herd_kv_claim(herd_kv_cache *kv, const herd_batch *b, int32_t *cells)
{
    if (kv->n_used + b->n_tokens > kv->n_cells)
        return herd_seterr(HERD_E_FULL, "context full: %d cells used of %d, batch needs %d more",
                           kv->n_used, kv->n_cells, b->n_tokens);
    /* A (sequence, position) pair may be cached once: re-decoding a position
     * without removing it first is a caller bug that would corrupt attention. */
    for (int c = 0; c < kv->n_cells; c++) {
        if (kv->pos[c] < 0) continue;
        for (int i = 0; i < b->n_tokens; i++) {
            int32_t s = b->seq_id ? b->seq_id[i] : 0;
            if (kv->pos[c] == b->pos[i] && kv->seq[c] == s)
                return herd_seterr(HERD_E_INVALID,
                                   "position %d of sequence %d is already in the cache", b->pos[i],
                                   s);
        }
    }
    int c = 0;
    for (int i = 0; i < b->n_tokens; i++) {
        while (kv->pos[c] >= 0) c++;
        cells[i] = c;
        kv->pos[c] = b->pos[i];
        kv->seq[c] = b->seq_id ? b->seq_id[i] : 0;
        kv->n_used++;
    }
    return HERD_OK;
}

void herd_kv_release(herd_kv_cache *kv, const int32_t *cells, int n)
{
    for (int i = 0; i < n; i++) {
        if (kv->pos[cells[i]] >= 0) kv->n_used--;
        kv->pos[cells[i]] = -1;
    }
}

herd_status herd_kv_remove(herd_ctx *ctx, int seq_id, int p0, int p1)
{
    if (!ctx) return herd_seterr(HERD_E_INVALID, "herd_kv_remove: no context");
    for (int w = 0; w < 2; w++) {
        herd_kv_cache *kv = w ? &ctx->kv_swa : &ctx->kv;
        for (int c = 0; c < kv->n_cells; c++) {
            if (kv->pos[c] < 0) continue;
            if (seq_id >= 0 && kv->seq[c] != seq_id) continue;
            if (kv->pos[c] < p0 || (p1 >= 0 && kv->pos[c] >= p1)) continue;
            kv->pos[c] = -1;
            kv->n_used--;
        }
    }
    return HERD_OK;
}
