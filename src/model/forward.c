/*
 * forward.c — the transformer block, driven by the architecture row.
 *
 * For a batch of T tokens (rows of the scratch matrices):
 *
 *   x = tok_embd[token]
 *   for each layer:
 *       xb = norm(x) * attn_norm
 *       q, k, v = xb·wq, xb·wk, xb·wv;  rope(q, k) at each token's position
 *       K/V cache[cell] = k, v            (rounded to the cache type)
 *       x += attention(q, cache) · wo
 *       xb = norm(x) * ffn_norm
 *       x += (silu(xb·w_gate) * (xb·w_up)) · w_down
 *   logits = (norm(x) * output_norm) · output   for the rows that want them
 *
 * Every matrix product goes through herd_matmul, so the whole prompt is one
 * matrix-matrix product per weight. The elementwise steps follow ggml's order
 * of operations (../shared/models/tiny/README.md, Numerics).
 */
#include "model/model.h"

#include <math.h>
#include <string.h>

/* ggml_rms_norm then ggml_mul: sum of squares in double, scale in F32. */
static void rms_norm(float *out, const float *x, const float *w, int n, float eps)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

static void norm_rows(const herd_model *m, float *out, const float *x, const herd_weight *w, int T)
{
    const int E = m->hp.n_embd;
    for (int t = 0; t < T; t++)
        rms_norm(out + (size_t)t * E, x + (size_t)t * E, (const float *)w->data, E, m->hp.norm_eps);
}

/* RoPE, llama.cpp's "normal" mode: rotate consecutive pairs of the first n_rot
 * dims of every head; theta starts at the position and is multiplied by
 * theta_scale per pair, as ggml's rope cache builds it. */
static void rope(const herd_hparams *hp, float *x, int n_heads, int pos)
{
    float cs[512], sn[512];
    const float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->n_rot);
    float theta = (float)pos;
    for (int i0 = 0; i0 < hp->n_rot; i0 += 2) {
        const float th = theta * hp->rope_freq_scale;
        cs[i0 / 2] = cosf(th);
        sn[i0 / 2] = sinf(th);
        theta *= theta_scale;
    }
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * hp->head_dim;
        for (int i0 = 0; i0 < hp->n_rot; i0 += 2) {
            const float x0 = xh[i0], x1 = xh[i0 + 1], c = cs[i0 / 2], s = sn[i0 / 2];
            xh[i0] = x0 * c - x1 * s;
            xh[i0 + 1] = x0 * s + x1 * c;
        }
    }
}

static void matmul(herd_ctx *c, const herd_weight *w, const float *x, int T, float *y)
{
    herd_matmul(w->data, w->type, w->ne[0], w->ne[1], x, T, y, c->s.work, c->n_threads);
}

/* Write the batch's K and V rows into their cache cells. */
static void store_kv(herd_ctx *c, int il, int T)
{
    const herd_kv_cache *kv = &c->kv;
    const int n = c->model->hp.n_embd_kv;
    for (int t = 0; t < T; t++) {
        uint8_t *kd = kv->k[il] + (size_t)c->cells[t] * kv->row_bytes;
        uint8_t *vd = kv->v[il] + (size_t)c->cells[t] * kv->row_bytes;
        const float *ks = c->s.k + (size_t)t * n, *vs = c->s.v + (size_t)t * n;
        if (kv->type == HERD_TYPE_F32) {
            memcpy(kd, ks, (size_t)n * sizeof(float));
            memcpy(vd, vs, (size_t)n * sizeof(float));
            continue;
        }
        for (int i = 0; i < n; i++) {
            uint16_t hk = herd_f32_to_f16(ks[i]), hv = herd_f32_to_f16(vs[i]);
            memcpy(kd + 2 * i, &hk, 2);
            memcpy(vd + 2 * i, &hv, 2);
        }
    }
}

static void add_rows(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* ggml_swiglu: silu(gate) * up, in F32. */
static void swiglu(float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void layer_forward(herd_ctx *c, const herd_batch *b, int il)
{
    const herd_model *m = c->model;
    const herd_hparams *hp = &m->hp;
    const herd_layer *L = &m->layers[il];
    herd_scratch *s = &c->s;
    const int T = b->n_tokens;

    norm_rows(m, s->xb, s->x, &L->attn_norm, T);
    matmul(c, &L->wq, s->xb, T, s->q);
    matmul(c, &L->wk, s->xb, T, s->k);
    matmul(c, &L->wv, s->xb, T, s->v);
    for (int t = 0; t < T; t++) {
        rope(hp, s->q + (size_t)t * hp->n_embd, hp->n_head, b->pos[t]);
        rope(hp, s->k + (size_t)t * hp->n_embd_kv, hp->n_head_kv, b->pos[t]);
    }
    store_kv(c, il, T);
    herd_attention(c, il, b, c->seq);
    matmul(c, &L->wo, s->att, T, s->xb);
    add_rows(s->x, s->xb, (size_t)T * hp->n_embd);

    norm_rows(m, s->xb, s->x, &L->ffn_norm, T);
    matmul(c, &L->w_gate, s->xb, T, s->ffa);
    matmul(c, &L->w_up, s->xb, T, s->ffb);
    swiglu(s->ffa, s->ffb, (size_t)T * hp->n_ff);
    matmul(c, &L->w_down, s->ffa, T, s->xb);
    add_rows(s->x, s->xb, (size_t)T * hp->n_embd);
}

herd_status herd_forward(herd_ctx *c, const herd_batch *b)
{
    const herd_model *m = c->model;
    const int E = m->hp.n_embd, T = b->n_tokens;
    for (int t = 0; t < T; t++)
        herd_get_row(m->tok_embd.data, m->tok_embd.type, E, b->token[t], c->s.x + (size_t)t * E);
    for (int il = 0; il < m->hp.n_layer; il++) layer_forward(c, b, il);

    int n_out = 0;
    for (int t = 0; t < T; t++)
        if (c->logit_row[t] >= 0)
            memcpy(c->s.xb + (size_t)n_out++ * E, c->s.x + (size_t)t * E, (size_t)E * sizeof(float));
    if (n_out == 0) return HERD_OK;
    norm_rows(m, c->s.outx, c->s.xb, &m->output_norm, n_out);
    matmul(c, &m->output, c->s.outx, n_out, c->logits);
    return HERD_OK;
}
