/*
 * context.c — contexts: the KV cache and scratch a model decodes in, and
 * herd_decode(), which validates a batch, claims cache cells for it and runs
 * the forward pass.
 *
 * Everything is allocated here, once, from sizes that herd_estimate_memory()
 * computes with the same functions, so `herd info`'s estimate is what a
 * context really takes (DESIGN.md, decision 4).
 */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

herd_ctx_params herd_ctx_default_params(void)
{
    herd_ctx_params p = {.n_ctx = 0,
                         .n_batch = 512,
                         .n_seq_max = 1,
                         .n_threads = 0,
                         .type_k = HERD_KV_F16,
                         .type_v = HERD_KV_F16,
                         .swa = -1};
    return p;
}

/* The scratch buffers, in one table so that allocation and estimate agree. */
typedef struct {
    size_t off_x, off_xb, off_q, off_k, off_v, off_att, off_qkv, off_xf, off_ao, off_fo, off_ffa,
        off_ffb, off_router, off_moe_x, off_moe_y, off_moe_out, off_outx, total;
} scratch_layout;

static scratch_layout layout_of(const herd_model *m, int n_batch)
{
    const herd_hparams *hp = &m->hp;
    scratch_layout L = {0};
    size_t nb = (size_t)n_batch, off = 0;
#define PLACE(field, floats)                                                                       \
    L.field = off;                                                                                 \
    off += ((nb * (size_t)(floats) * sizeof(float)) + 63) & ~(size_t)63
    PLACE(off_x, hp->n_embd);
    PLACE(off_xb, hp->n_embd);
    PLACE(off_q, herd_n_embd_q(hp));
    PLACE(off_k, hp->n_embd_kv);
    PLACE(off_v, hp->n_embd_kv);
    PLACE(off_att, herd_n_embd_q(hp));
    PLACE(off_qkv, herd_n_embd_q(hp) + 2 * hp->n_embd_kv);
    PLACE(off_xf, hp->n_embd);
    PLACE(off_ao, hp->n_embd);
    PLACE(off_fo, hp->n_embd);
    /* A fused gate+up (Phi-3) lands in ffa whole: 2 n_ff per row. */
    const int ff = hp->n_ff > hp->n_ff_exp ? hp->n_ff : hp->n_ff_exp;
    const bool fused = m->layers && m->layers[0].w_up.ne[1] == 2 * (int64_t)hp->n_ff;
    /* A decoded token's experts run side by side (moe.c): their gate and up
     * outputs, n_expert_used rows, land in ffa and ffb. */
    const int ffk = hp->n_expert_used > n_batch ? (hp->n_expert_used + n_batch - 1) / n_batch : 1;
    PLACE(off_ffa, (fused ? 2 * ff : ff) * ffk);
    PLACE(off_ffb, ff * ffk);
    PLACE(off_router, hp->n_expert);
    PLACE(off_moe_x, hp->n_expert ? hp->n_embd : 0);
    PLACE(off_moe_y, hp->n_expert ? hp->n_embd : 0);
    PLACE(off_moe_out, hp->n_expert_used * hp->n_embd);
    PLACE(off_outx, hp->n_embd);
#undef PLACE
    L.total = off;
    return L;
}

static size_t work_bytes(const herd_model *m, int n_batch)
{
    /* The largest activation conversion any matmul of the model needs. */
    size_t most = herd_matmul_work_size(m->output.type, m->output.ne[0], n_batch);
    /* A layer is a struct of weights only; absent ones have no data. */
    const size_t per_layer = sizeof(herd_layer) / sizeof(herd_weight);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const herd_weight *lw = (const herd_weight *)&m->layers[il];
        for (size_t i = 0; i < per_layer; i++) {
            if (!lw[i].data) continue;
            size_t b = herd_matmul_work_size(lw[i].type, lw[i].ne[0], n_batch);
            if (b > most) most = b;
        }
    }
    const size_t moe = herd_moe_work_bytes(m); /* a decoded token's experts */
    if (moe > most) most = moe;
    return most;
}

uint64_t herd_scratch_bytes(const herd_model *m, int n_batch)
{
    uint64_t logits = (uint64_t)n_batch * (uint64_t)m->hp.n_vocab * sizeof(float);
    uint64_t moe = (uint64_t)n_batch * (uint64_t)m->hp.n_expert_used * 8 + (uint64_t)n_batch * 4;
    /* A model known only by its shape (no layers: the catalog's, see
     * herd_estimate_memory_ctx) has matrices of file_type whose rows are
     * n_embd or n_ff long; the work buffer converts the longest. */
    size_t work = 0;
    if (m->layers) {
        work = work_bytes(m, n_batch);
    } else {
        size_t a = herd_matmul_work_size(m->file_type, m->hp.n_embd, n_batch);
        size_t b = herd_matmul_work_size(m->file_type, m->hp.n_ff, n_batch);
        work = a > b ? a : b;
    }
    return layout_of(m, n_batch).total + work + logits + moe;
}

/* The window a context uses: the file's unless the caller says otherwise. */
static int effective_swa(const herd_model *m, const herd_ctx_params *p)
{
    return p->swa < 0 ? m->hp.swa_window : p->swa;
}

/* Layers of the window's cache (windowed = true) or of the full one. */
static int pool_layers(const herd_model *m, int swa, bool windowed)
{
    int n = 0;
    for (int il = 0; il < m->hp.n_layer; il++)
        n += herd_layer_windowed(&m->hp, swa, il) == windowed;
    return n;
}

/* Cells a cache needs. The full one: the context. The window's: only the
 * last W positions of a sequence are ever read, so W - 1 cells plus one
 * batch suffice per sequence and memory stays flat however long the
 * generation. A cache no layer uses has none. */
static int cache_cells(const herd_model *m, const herd_ctx_params *p, bool windowed)
{
    const int w = effective_swa(m, p);
    if (!pool_layers(m, w, windowed)) return 0;
    if (!windowed) return p->n_ctx;
    int64_t need = ((int64_t)w - 1 + p->n_batch) * p->n_seq_max;
    return need < p->n_ctx ? (int)need : p->n_ctx;
}

static int effective_n_ctx(const herd_model *m, int n_ctx)
{
    if (n_ctx > 0) return n_ctx;
    return m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096;
}

static herd_ctx_params resolve_params(const herd_model *m, const herd_ctx_params *params)
{
    herd_ctx_params p = params ? *params : herd_ctx_default_params();
    p.n_ctx = effective_n_ctx(m, p.n_ctx);
    if (p.n_batch <= 0) p.n_batch = 512;
    if (p.n_batch > p.n_ctx) p.n_batch = p.n_ctx;
    if (p.n_seq_max <= 0) p.n_seq_max = 1;
    return p;
}

/* The one formula for a context's memory, used by `herd info` and by the
 * recommender. The recommender has no file, only a model's shape from the
 * catalog: it passes a herd_model with hp, file_type and tensor_bytes set and
 * no file or layers, and gets the same arithmetic. */
herd_mem_estimate herd_estimate_memory_ctx(const herd_model *m, const herd_ctx_params *params)
{
    herd_ctx_params p = resolve_params(m, params);
    herd_mem_estimate e;
    /* Weights are mmapped; a decode touches every matrix, so all of the file
     * becomes resident (measured: tests/cli_info_mem.sh). */
    e.weights = m->file ? herd_gguf_file_size(m->file) : m->tensor_bytes;
    const int w = effective_swa(m, &p);
    e.kv_cache = herd_kv_bytes(&m->hp, pool_layers(m, w, false), cache_cells(m, &p, false),
                               p.type_k, p.type_v) +
                 herd_kv_bytes(&m->hp, pool_layers(m, w, true), cache_cells(m, &p, true), p.type_k,
                               p.type_v);
    e.scratch = herd_scratch_bytes(m, p.n_batch) + (uint64_t)p.n_ctx * 8;
    e.total = e.weights + e.kv_cache + e.scratch;
    return e;
}

herd_mem_estimate herd_estimate_memory(const herd_model *m, int n_ctx, int n_batch)
{
    herd_ctx_params p = herd_ctx_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    return herd_estimate_memory_ctx(m, &p);
}

herd_status herd_ctx_new(herd_model *m, const herd_ctx_params *params, herd_ctx **out)
{
    *out = NULL;
    if (!m) return herd_seterr(HERD_E_INVALID, "herd_ctx_new: no model");
    if (m->vocab_only)
        return herd_seterr(HERD_E_INVALID, "%s: loaded as a vocabulary only, no weights to run",
                           m->path);
    herd_ctx_params p = resolve_params(m, params);
    if (p.n_ctx < 1 || p.n_ctx > (1 << 24))
        return herd_seterr(HERD_E_INVALID, "context size %d is out of range", p.n_ctx);
    if (p.n_seq_max > 4096)
        return herd_seterr(HERD_E_INVALID, "%d sequences is more than 4096", p.n_seq_max);
    herd_status st = herd_kv_check_type(p.type_k, m->hp.head_dim);
    if (!st) st = herd_kv_check_type(p.type_v, m->hp.head_dim);
    if (st) return st;
    herd_ctx *c = herd_calloc(1, sizeof *c);
    if (!c) return HERD_E_NOMEM;
    c->model = m;
    c->params = p;
    c->n_threads = p.n_threads > 0 ? p.n_threads : m->n_threads;
    c->swa = effective_swa(m, &p);
    /* LongRoPE: the long factors once the context per sequence (padded to
     * 256 as llama.cpp pads it) passes the original context. */
    const int64_t n_ctx_seq =
        ((int64_t)(p.n_ctx + 255) / 256 * 256 / p.n_seq_max + 255) / 256 * 256;
    const herd_weight *ff = n_ctx_seq > m->hp.n_ctx_orig ? &m->rope_long : &m->rope_short;
    c->rope_factors = m->rope_freqs.data ? m->rope_freqs.data : ff->data; /* llama.cpp's order */
    st = herd_kv_init(&c->kv, &m->hp, c->swa, false, cache_cells(m, &p, false), p.type_k, p.type_v);
    if (!st)
        st = herd_kv_init(&c->kv_swa, &m->hp, c->swa, true, cache_cells(m, &p, true), p.type_k,
                          p.type_v);
    if (st) goto fail;
    scratch_layout L = layout_of(m, p.n_batch);
    char *base = herd_alloc_aligned(L.total);
    c->s.work_bytes = work_bytes(m, p.n_batch);
    c->s.work = herd_alloc_aligned(c->s.work_bytes);
    c->logits = herd_alloc_aligned((size_t)p.n_batch * (size_t)m->hp.n_vocab * sizeof(float));
    c->cells = herd_calloc((size_t)p.n_batch, sizeof *c->cells);
    c->cells_swa = herd_calloc((size_t)p.n_batch, sizeof *c->cells_swa);
    c->logit_row = herd_calloc((size_t)p.n_batch, sizeof *c->logit_row);
    c->seq = herd_calloc((size_t)p.n_batch, sizeof *c->seq);
    c->vis = herd_calloc(
        (size_t)(c->kv.n_cells > c->kv_swa.n_cells ? c->kv.n_cells : c->kv_swa.n_cells) + 1,
        sizeof *c->vis);
    c->seg = herd_calloc((size_t)p.n_seq_max + 1, sizeof *c->seg);
    size_t n_slots = (size_t)p.n_batch * (size_t)(m->hp.n_expert_used ? m->hp.n_expert_used : 1);
    c->moe_sel = herd_calloc(n_slots, sizeof *c->moe_sel);
    c->moe_w = herd_calloc(n_slots, sizeof *c->moe_w);
    c->moe_rows = herd_calloc(n_slots, sizeof *c->moe_rows);
    c->att_work = herd_alloc_aligned(herd_attention_work_total(&m->hp, c->n_threads));
    if (!c->att_work || !base || !c->s.work || !c->logits || !c->cells || !c->cells_swa ||
        !c->logit_row || !c->seq || !c->vis || !c->seg || !c->moe_sel || !c->moe_w ||
        !c->moe_rows) {
        free(base);
        st = HERD_E_NOMEM;
        goto fail;
    }
    c->s.x = (float *)(void *)(base + L.off_x);
    c->s.xb = (float *)(void *)(base + L.off_xb);
    c->s.q = (float *)(void *)(base + L.off_q);
    c->s.k = (float *)(void *)(base + L.off_k);
    c->s.v = (float *)(void *)(base + L.off_v);
    c->s.att = (float *)(void *)(base + L.off_att);
    c->s.qkv = (float *)(void *)(base + L.off_qkv);
    c->s.xf = (float *)(void *)(base + L.off_xf);
    c->s.ao = (float *)(void *)(base + L.off_ao);
    c->s.fo = (float *)(void *)(base + L.off_fo);
    c->s.router = (float *)(void *)(base + L.off_router);
    c->s.moe_x = (float *)(void *)(base + L.off_moe_x);
    c->s.moe_y = (float *)(void *)(base + L.off_moe_y);
    c->s.moe_out = (float *)(void *)(base + L.off_moe_out);
    c->s.ffa = (float *)(void *)(base + L.off_ffa);
    c->s.ffb = (float *)(void *)(base + L.off_ffb);
    c->s.outx = (float *)(void *)(base + L.off_outx);
    for (int i = 0; i < p.n_batch; i++) c->logit_row[i] = -1;
    *out = c;
    return HERD_OK;
fail:
    herd_ctx_free(c);
    return st;
}

void herd_ctx_free(herd_ctx *c)
{
    if (!c) return;
    herd_kv_free(&c->kv, c->model->hp.n_layer);
    herd_kv_free(&c->kv_swa, c->model->hp.n_layer);
    free(c->s.x); /* the base of all scratch buffers */
    free(c->s.work);
    free(c->logits);
    free(c->cells);
    free(c->cells_swa);
    free(c->logit_row);
    free(c->seq);
    free(c->vis);
    free(c->seg);
    free(c->moe_sel);
    free(c->moe_w);
    free(c->moe_rows);
    free(c->att_work);
    free(c);
}

int herd_ctx_n_ctx(const herd_ctx *c)
{
    return c->params.n_ctx;
}

static herd_status check_batch(const herd_ctx *c, const herd_batch *b)
{
    if (!b || b->n_tokens <= 0 || !b->token || !b->pos)
        return herd_seterr(HERD_E_INVALID, "herd_decode: empty or incomplete batch");
    if (b->n_tokens > c->params.n_batch)
        return herd_seterr(HERD_E_INVALID, "batch of %d tokens exceeds n_batch %d", b->n_tokens,
                           c->params.n_batch);
    for (int i = 0; i < b->n_tokens; i++) {
        if (b->token[i] < 0 || b->token[i] >= c->model->hp.n_vocab)
            return herd_seterr(HERD_E_RANGE, "token id %d is outside the vocabulary (0..%d)",
                               b->token[i], c->model->hp.n_vocab - 1);
        if (b->pos[i] < 0 || b->pos[i] >= c->params.n_ctx)
            return herd_seterr(HERD_E_RANGE, "position %d is outside the context (0..%d)",
                               b->pos[i], c->params.n_ctx - 1);
        if (b->seq_id && (b->seq_id[i] < 0 || b->seq_id[i] >= c->params.n_seq_max))
            return herd_seterr(HERD_E_RANGE, "sequence id %d is outside 0..%d", b->seq_id[i],
                               c->params.n_seq_max - 1);
    }
    return HERD_OK;
}

/* With a sliding window W, the next token of a sequence whose last position
 * is P reads positions from P - W + 2 on: older cells are freed. */
static void evict_outside_window(herd_ctx *c)
{
    herd_kv_cache *kv = &c->kv_swa;
    int32_t *last = c->seg; /* n_seq_max + 1 ints of scratch, free between decodes */
    for (int s = 0; s < c->params.n_seq_max; s++) last[s] = -1;
    for (int i = 0; i < kv->n_cells; i++)
        if (kv->pos[i] >= 0 && kv->pos[i] > last[kv->seq[i]]) last[kv->seq[i]] = kv->pos[i];
    for (int i = 0; i < kv->n_cells; i++)
        if (kv->pos[i] >= 0 && kv->pos[i] <= last[kv->seq[i]] - c->swa + 1) {
            kv->pos[i] = -1;
            kv->n_used--;
        }
}

herd_status herd_decode(herd_ctx *c, const herd_batch *b)
{
    if (!c) return herd_seterr(HERD_E_INVALID, "herd_decode: no context");
    herd_status st = check_batch(c, b);
    if (st) return st;
    int n_out = 0;
    for (int i = 0; i < b->n_tokens; i++) {
        bool want = b->logits ? b->logits[i] != 0 : i == b->n_tokens - 1;
        c->logit_row[i] = want ? n_out++ : -1;
    }
    for (int i = b->n_tokens; i < c->params.n_batch; i++) c->logit_row[i] = -1;
    if (c->kv.n_cells && (st = herd_kv_claim(&c->kv, b, c->cells))) return st;
    if (c->kv_swa.n_cells && (st = herd_kv_claim(&c->kv_swa, b, c->cells_swa))) {
        if (c->kv.n_cells) herd_kv_release(&c->kv, c->cells, b->n_tokens);
        return st;
    }
    for (int i = 0; i < b->n_tokens; i++) c->seq[i] = b->seq_id ? b->seq_id[i] : 0;
    st = herd_forward(c, b);
    if (st) {
        if (c->kv.n_cells) herd_kv_release(&c->kv, c->cells, b->n_tokens);
        if (c->kv_swa.n_cells) herd_kv_release(&c->kv_swa, c->cells_swa, b->n_tokens);
    } else if (c->kv_swa.n_cells) {
        evict_outside_window(c);
    }
    return st;
}

const float *herd_get_logits(const herd_ctx *c, int i)
{
    if (!c || i < 0 || i >= c->params.n_batch || c->logit_row[i] < 0) return NULL;
    return c->logits + (size_t)c->logit_row[i] * (size_t)c->model->hp.n_vocab;
}
