/*
 * kv.c — the KV cache: n_cells slots per layer, each holding one token's keys
 * and values (F16 by default, as llama.cpp), tagged with the token's sequence
 * and position. A token attends to the cells of its own sequence whose
 * position is not after its own; cells are claimed in ascending order, so for
 * one sequence cell order is position order, which is the order llama.cpp's
 * attention visits keys in.
 */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

static uint32_t kv_type(herd_kv_type t)
{
    return t == HERD_KV_F32 ? HERD_TYPE_F32 : HERD_TYPE_F16;
}

uint64_t herd_kv_bytes(const herd_hparams *hp, int n_layers, int n_cells, herd_kv_type tk)
{
    uint64_t row = herd_row_bytes(kv_type(tk), hp->n_embd_kv);
    return 2ull * (uint64_t)n_layers * (uint64_t)n_cells * row;
}

herd_status herd_kv_init(herd_kv_cache *kv, const herd_hparams *hp, int swa, bool windowed,
                         int n_cells, herd_kv_type tk)
{
    memset(kv, 0, sizeof *kv);
    kv->n_cells = n_cells;
    kv->type = kv_type(tk);
    kv->row_bytes = herd_row_bytes(kv->type, hp->n_embd_kv);
    kv->pos = herd_calloc((size_t)n_cells + 1, sizeof *kv->pos);
    kv->seq = herd_calloc((size_t)n_cells + 1, sizeof *kv->seq);
    kv->k = herd_calloc((size_t)hp->n_layer, sizeof *kv->k);
    kv->v = herd_calloc((size_t)hp->n_layer, sizeof *kv->v);
    if (!kv->pos || !kv->seq || !kv->k || !kv->v) return HERD_E_NOMEM;
    for (int i = 0; i < n_cells; i++) kv->pos[i] = -1;
    for (int il = 0; il < hp->n_layer; il++) {
        if (herd_layer_windowed(hp, swa, il) != windowed) continue;
        kv->k[il] = herd_alloc_aligned(kv->row_bytes * (size_t)n_cells);
        kv->v[il] = herd_alloc_aligned(kv->row_bytes * (size_t)n_cells);
        if (!kv->k[il] || !kv->v[il]) return HERD_E_NOMEM;
        /* Touched now, as llama.cpp clears its cache buffer: the memory a
         * context holds is resident from the start and does not grow while
         * the full-attention layers fill up. */
        memset(kv->k[il], 0, kv->row_bytes * (size_t)n_cells);
        memset(kv->v[il], 0, kv->row_bytes * (size_t)n_cells);
    }
    return HERD_OK;
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
