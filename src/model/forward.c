/*
 * forward.c — the transformer block, driven by the architecture row.
 *
 * For a batch of T tokens (rows of the scratch matrices), each layer does
 *
 *   xb  = norm(x) * attn_norm (+ bias)          LayerNorm or RMSNorm
 *   q, k, v = projections of xb (or of a second norm, attn_norm_2), fused or
 *             separate, with biases, clamp_kqv and per-head q/k norms where the
 *             file has them; RoPE (normal or neox, partial, with frequency
 *             factors where the file has them) at each position
 *   K/V cache[cell] = k, v                      rounded to the cache type
 *   ao  = attention(q, cache) · wo (+ bias)     ALiBi / sliding window inside
 *   then attention and MLP meet the residual x as the row's layout says
 *   (model.h, herd_residual_kind); the MLP is SwiGLU, GELU or a mixture of
 *   SwiGLU experts
 *
 * and the logits are (norm(x) * output_norm) · output (+ bias) for the rows
 * that want them. Every matrix product goes through herd_matmul, so a prompt is
 * one matrix-matrix product per weight. The elementwise steps follow ggml's
 * order of operations, as llama.cpp's CPU backend computes them.
 */
#include "model/model.h"
#include "util/pool.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* ------------------------------------------------------------ elementwise */

/* ggml_rms_norm: sum of squares in double, scale in F32. */
static void rms_norm(float *y, const float *x, int n, float eps)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * scale;
}

/* ggml_norm: the mean from a double sum rounded to F32; the variance from
 * 16-wide F32 partial sums (reduced as AVX-512's reduce_add does) added in
 * double, as ggml_vec_cvar_f32 does. */
static void layer_norm(float *y, const float *x, int n, float eps)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)x[i];
    const float mean = (float)sum / (float)n;
    double var = 0.0;
    int i = 0;
    for (; i + 15 < n; i += 16) {
        float sq[16], a[8], b[4];
        for (int l = 0; l < 16; l++) {
            y[i + l] = x[i + l] - mean;
            sq[l] = y[i + l] * y[i + l];
        }
        for (int l = 0; l < 8; l++) a[l] = sq[l] + sq[l + 8];
        for (int l = 0; l < 4; l++) b[l] = a[l] + a[l + 4];
        var += (double)((b[0] + b[2]) + (b[1] + b[3]));
    }
    for (; i < n; i++) {
        y[i] = x[i] - mean;
        var += (double)(y[i] * y[i]);
    }
    const float scale = 1.0f / sqrtf((float)(var / n) + eps);
    for (i = 0; i < n; i++) y[i] *= scale;
}

/* Per-token work (norms, activations, RoPE) is split over the pool by
 * ranges of tokens when a batch is big enough to pay for waking the threads;
 * each token's arithmetic is the same whoever does it. */
typedef struct rows_job rows_job;
struct rows_job {
    void (*fn)(const rows_job *j, int t0, int t1);
    herd_ctx *c;
    const herd_batch *b; /* for RoPE's positions */
    float *y;
    const float *x;
    const herd_weight *w, *bias;
    int T, n;
    int il; /* the layer (RoPE) */
};

static void rows_worker(void *arg, int ith, int nth)
{
    const rows_job *j = arg;
    const int t0 = j->T * ith / nth, t1 = j->T * (ith + 1) / nth;
    if (t1 > t0) j->fn(j, t0, t1);
}

/* Run j->fn over rows 0..j->T-1; per_row: elements touched per row. */
static void for_rows(rows_job *j, size_t per_row)
{
    int n = (size_t)j->T * per_row >= 32768 ? j->c->n_threads : 1;
    if (n > j->T) n = j->T;
    herd_parallel(n, rows_worker, j);
}

static void norm_range(const rows_job *j, int t0, int t1)
{
    const herd_model *m = j->c->model;
    const int n = j->n;
    const float *wd = j->w->data, *bd = j->bias ? j->bias->data : NULL;
    for (int t = t0; t < t1; t++) {
        float *yt = j->y + (size_t)t * n;
        if (m->arch->norm == NORM_RMS)
            rms_norm(yt, j->x + (size_t)t * n, n, m->hp.norm_eps);
        else
            layer_norm(yt, j->x + (size_t)t * n, n, m->hp.norm_eps);
        for (int i = 0; i < n; i++) yt[i] *= wd[i];
        if (bd)
            for (int i = 0; i < n; i++) yt[i] += bd[i];
    }
}

/* y = norm(x) * w (+ b), row by row. */
static void norm_rows(herd_ctx *c, float *y, const float *x, const herd_weight *w,
                      const herd_weight *bias, int T, int n)
{
    rows_job j = {.fn = norm_range, .c = c, .y = y, .x = x, .w = w, .bias = bias, .T = T, .n = n};
    for_rows(&j, (size_t)n);
}

static void add_bias(float *y, const herd_weight *b, int T, int n)
{
    if (!b->data) return;
    const float *bd = b->data;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += bd[i];
}

/* ggml's GELU: tanh approximation looked up in an F16 table by the input
 * rounded to F16, saturating outside [-10, 10]. */
static uint16_t gelu_table[1 << 16];

static void gelu_table_init(void)
{
    for (uint32_t i = 0; i < (1u << 16); i++) {
        const float x = herd_f16_to_f32((uint16_t)i);
        const float g =
            0.5f * x *
            (1.0f + tanhf(0.79788456080286535587989211986876f * x * (1.0f + 0.044715f * x * x)));
        gelu_table[i] = herd_f32_to_f16(g);
    }
}

static void gelu(float *y, const float *x, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, gelu_table_init);
    for (size_t i = 0; i < n; i++) {
        if (x[i] <= -10.0f)
            y[i] = 0.0f;
        else if (x[i] >= 10.0f)
            y[i] = x[i];
        else
            y[i] = herd_f16_to_f32(gelu_table[herd_f32_to_f16(x[i])]);
    }
}

/* ggml_swiglu: silu(gate) * up, in F32. */
static void swiglu(float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* The MLP's activation on rows [t0, t1): y = swiglu(y, x) or gelu(x). */
static void act_range(const rows_job *j, int t0, int t1)
{
    const size_t o = (size_t)t0 * j->n, n = (size_t)(t1 - t0) * j->n;
    switch (j->c->model->arch->mlp) {
    case MLP_SWIGLU:
        swiglu(j->y + o, j->x + o, n);
        break;
    case MLP_GELU:
        gelu(j->y + o, j->x + o, n);
        break;
    case MLP_GEGLU: /* ggml_vec_geglu_f32: the GELU table's value times up */
        gelu(j->y + o, j->y + o, n);
        for (size_t i = 0; i < n; i++) j->y[o + i] *= j->x[o + i];
        break;
    }
}

/* ggml_scale, ggml_tanh, ggml_scale: c·tanh(x·(1/c)) (Gemma's logit cap). */
static void softcap(float *x, size_t n, float c)
{
    const float inv = 1.0f / c;
    for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i] * inv) * c;
}

/* The RoPE of one layer: base and scale (a window's layers may have their
 * own), LongRoPE's frequency factors and attention factor. */
typedef struct {
    float base, scale, mscale;
    const float *ff; /* [n_rot / 2] divisors of each pair's angle, or NULL */
} rope_cfg;

static rope_cfg rope_of(const herd_ctx *c, int il)
{
    const herd_hparams *hp = &c->model->hp;
    const bool local = c->model->arch->swa_pattern > 0 && hp->swa_window > 0 && !hp->swa_dense[il];
    return (rope_cfg){.base = local ? hp->rope_base_swa : hp->rope_freq_base,
                      .scale = local ? hp->rope_scale_swa : hp->rope_freq_scale,
                      .mscale = hp->rope_attn_factor,
                      .ff = c->rope_factors};
}

/* RoPE over the first n_rot dims of every head. Normal mode rotates
 * consecutive pairs (x0,x1),(x2,x3)…; neox mode pairs dim i with i + n_rot/2.
 * theta starts at the position and is multiplied by theta_scale per pair, as
 * ggml's rope cache builds it: pair i turns by cos/sin(theta / ff[i] · scale),
 * both times mscale; the frequency factors ff (Llama 3.1's rope_freqs,
 * Phi-3's LongRoPE long or short) divide pair i's angle before the linear
 * scale multiplies it. */
static void rope(const herd_hparams *hp, const rope_cfg *rc, herd_rope_kind mode, float *x,
                 int n_heads, int pos)
{
    if (mode == ROPE_NONE) return;
    float cs[256], sn[256];
    const int half = hp->n_rot / 2;
    const float theta_scale = powf(rc->base, -2.0f / (float)hp->n_rot);
    float theta = (float)pos;
    for (int i = 0; i < half; i++) {
        const float th = rc->ff ? theta / rc->ff[i] : theta;
        cs[i] = cosf(th * rc->scale) * rc->mscale;
        sn[i] = sinf(th * rc->scale) * rc->mscale;
        theta *= theta_scale;
    }
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * hp->head_dim;
        for (int i = 0; i < half; i++) {
            const int i0 = mode == ROPE_NEOX ? i : 2 * i,
                      i1 = mode == ROPE_NEOX ? i + half : 2 * i + 1;
            const float x0 = xh[i0], x1 = xh[i1];
            xh[i0] = x0 * cs[i] - x1 * sn[i];
            xh[i1] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

/* ---------------------------------------------------------------- blocks */

static void matmul(herd_ctx *c, const herd_weight *w, const float *x, int T, float *y)
{
    herd_matmul(w->data, w->type, w->ne[0], w->ne[1], x, T, y, c->s.work, c->n_threads);
}

/* y = x · w + b */
static void linear(herd_ctx *c, const herd_weight *w, const herd_weight *b, const float *x, int T,
                   float *y)
{
    matmul(c, w, x, T, y);
    add_bias(y, b, T, (int)w->ne[1]);
}

static void clamp(float *x, size_t n, float lim)
{
    if (lim <= 0) return;
    for (size_t i = 0; i < n; i++) x[i] = x[i] < -lim ? -lim : x[i] > lim ? lim : x[i];
}

/* Per-head norm of q or k in the model's norm kind: weight row h for head h
 * (StableLM-2 12B) or one row for all heads (Qwen 3, Gemma 3). */
static void head_norm(const herd_model *m, float *x, const herd_weight *w, int T, int n_heads)
{
    if (!w->data) return;
    const int D = m->hp.head_dim;
    const bool shared = w->ne[1] == 1;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + ((size_t)t * n_heads + h) * D;
            const float *wh = (const float *)w->data + (shared ? 0 : (size_t)h * D);
            if (m->arch->norm == NORM_RMS)
                rms_norm(xh, xh, D, m->hp.norm_eps);
            else
                layer_norm(xh, xh, D, m->hp.norm_eps);
            for (int i = 0; i < D; i++) xh[i] *= wh[i];
        }
}

/* RoPE (and the q prescale some models want) on tokens [t0, t1). */
static void rope_range(const rows_job *j, int t0, int t1)
{
    const herd_model *m = j->c->model;
    const herd_hparams *hp = &m->hp;
    const herd_scratch *s = &j->c->s;
    const int Q = herd_n_embd_q(hp), KV = hp->n_embd_kv;
    const rope_cfg rc = rope_of(j->c, j->il);
    for (int t = t0; t < t1; t++) {
        rope(hp, &rc, m->arch->rope, s->q + (size_t)t * Q, hp->n_head, j->b->pos[t]);
        rope(hp, &rc, m->arch->rope, s->k + (size_t)t * KV, hp->n_head_kv, j->b->pos[t]);
    }
    if (m->arch->q_prescale) {
        const float scale = hp->q_scale;
        for (size_t i = (size_t)t0 * Q; i < (size_t)t1 * Q; i++) s->q[i] *= scale;
    }
}

/* q, k, v of the batch from the attention input, positioned and ready for
 * the cache. */
static void project_qkv(herd_ctx *c, int il, const herd_batch *b, const float *in)
{
    const herd_layer *L = &c->model->layers[il];
    const herd_model *m = c->model;
    const herd_hparams *hp = &m->hp;
    herd_scratch *s = &c->s;
    const int T = b->n_tokens, Q = herd_n_embd_q(hp), KV = hp->n_embd_kv;
    if (L->wqkv.data) {
        linear(c, &L->wqkv, &L->bqkv, in, T, s->qkv);
        clamp(s->qkv, (size_t)T * (Q + 2 * KV), hp->clamp_kqv);
        for (int t = 0; t < T; t++) {
            const float *row = s->qkv + (size_t)t * (Q + 2 * KV);
            memcpy(s->q + (size_t)t * Q, row, (size_t)Q * sizeof(float));
            memcpy(s->k + (size_t)t * KV, row + Q, (size_t)KV * sizeof(float));
            memcpy(s->v + (size_t)t * KV, row + Q + KV, (size_t)KV * sizeof(float));
        }
        /* a fused matrix may come with separate biases (llama.cpp accepts it) */
        add_bias(s->q, &L->bq, T, Q);
        add_bias(s->k, &L->bk, T, KV);
        add_bias(s->v, &L->bv, T, KV);
    } else {
        linear(c, &L->wq, &L->bq, in, T, s->q);
        linear(c, &L->wk, &L->bk, in, T, s->k);
        linear(c, &L->wv, &L->bv, in, T, s->v);
        clamp(s->q, (size_t)T * Q, hp->clamp_kqv);
        clamp(s->k, (size_t)T * KV, hp->clamp_kqv);
        clamp(s->v, (size_t)T * KV, hp->clamp_kqv);
    }
    head_norm(m, s->q, &L->q_norm, T, hp->n_head);
    head_norm(m, s->k, &L->k_norm, T, hp->n_head_kv);
    rows_job j = {.fn = rope_range, .c = c, .b = b, .T = T, .n = Q + KV, .il = il};
    for_rows(&j, (size_t)j.n);
}

/* A dense MLP: SwiGLU (gate, up) or GELU (up), then down; biases if present. */
static void mlp_dense(herd_ctx *c, const herd_layer *L, const float *in, int T, float *out)
{
    herd_scratch *s = &c->s;
    const int F = c->model->hp.n_ff;
    if (L->w_up.ne[1] == 2 * (int64_t)F) {
        /* Phi-3: one product gives [gate | up] rows of 2 F (ffa is sized
         * for it); up goes to ffb, the gates close ranks in ffa. */
        linear(c, &L->w_up, &L->b_up, in, T, s->ffa);
        for (int t = 0; t < T; t++) {
            memcpy(s->ffb + (size_t)t * F, s->ffa + (size_t)t * 2 * F + F,
                   (size_t)F * sizeof(float));
            memmove(s->ffa + (size_t)t * F, s->ffa + (size_t)t * 2 * F, (size_t)F * sizeof(float));
        }
    } else {
        linear(c, &L->w_up, &L->b_up, in, T, s->ffb);
        if (c->model->arch->mlp != MLP_GELU) linear(c, &L->w_gate, &L->b_gate, in, T, s->ffa);
    }
    rows_job j = {.fn = act_range, .c = c, .y = s->ffa, .x = s->ffb, .T = T, .n = F};
    for_rows(&j, (size_t)j.n);
    linear(c, &L->w_down, &L->b_down, s->ffa, T, out);
}

static void mlp(herd_ctx *c, const herd_layer *L, const float *in, int T, float *out)
{
    if (c->model->hp.n_expert)
        herd_moe(c, L, in, T, out);
    else
        mlp_dense(c, L, in, T, out);
}

static void layer_forward(herd_ctx *c, const herd_batch *b, int il)
{
    const herd_model *m = c->model;
    const herd_layer *L = &m->layers[il];
    herd_scratch *s = &c->s;
    const int T = b->n_tokens, E = m->hp.n_embd;
    const size_t n = (size_t)T * E;

    norm_rows(c, s->xb, s->x, &L->attn_norm, &L->attn_norm_b, T, E);
    const float *att_in = s->xb;
    if (L->attn_norm_2.data) { /* falcon 40B: attention reads its own norm */
        norm_rows(c, s->xf, s->x, &L->attn_norm_2, &L->attn_norm_2_b, T, E);
        att_in = s->xf;
    }
    project_qkv(c, il, b, att_in);
    herd_kv_store(herd_ctx_kv(c, il), il, herd_ctx_cells(c, il), s->k, s->v, T, m->hp.n_embd_kv,
                  m->hp.head_dim);
    herd_attention(c, il, b, c->seq);
    linear(c, &L->wo, &L->bo, s->att, T, s->ao);
    if (L->post_attn_norm.data) norm_rows(c, s->ao, s->ao, &L->post_attn_norm, NULL, T, E);

    switch (herd_residual(m, L)) {
    case RES_SEQ: /* x += ao; x += mlp(norm(x)) */
        for (size_t i = 0; i < n; i++) s->x[i] = s->ao[i] + s->x[i];
        norm_rows(c, s->xf, s->x, &L->ffn_norm, &L->ffn_norm_b, T, E);
        mlp(c, L, s->xf, T, s->fo);
        if (L->post_ffn_norm.data) norm_rows(c, s->fo, s->fo, &L->post_ffn_norm, NULL, T, E);
        for (size_t i = 0; i < n; i++) s->x[i] = s->fo[i] + s->x[i];
        break;
    case RES_PARALLEL: /* x = (mlp(xb) + ao) + x */
        mlp(c, L, s->xb, T, s->fo);
        for (size_t i = 0; i < n; i++) s->x[i] = (s->fo[i] + s->ao[i]) + s->x[i];
        break;
    case RES_NEOX: /* x = (mlp(norm_ffn(x)) + x) + ao */
        norm_rows(c, s->xf, s->x, &L->ffn_norm, &L->ffn_norm_b, T, E);
        mlp(c, L, s->xf, T, s->fo);
        for (size_t i = 0; i < n; i++) s->x[i] = (s->fo[i] + s->x[i]) + s->ao[i];
        break;
    case RES_STABLELM: /* x = mlp(xb) + (ao + x) */
        mlp(c, L, s->xb, T, s->fo);
        for (size_t i = 0; i < n; i++) s->x[i] = s->fo[i] + (s->ao[i] + s->x[i]);
        break;
    }
}

herd_status herd_forward(herd_ctx *c, const herd_batch *b)
{
    const herd_model *m = c->model;
    const int E = m->hp.n_embd, T = b->n_tokens;
    for (int t = 0; t < T; t++)
        herd_get_row(m->tok_embd.data, m->tok_embd.type, E, b->token[t], c->s.x + (size_t)t * E);
    if (m->arch->embd_scale) { /* Gemma: ggml_scale by √n_embd */
        const float sc = sqrtf((float)E);
        for (size_t i = 0; i < (size_t)T * E; i++) c->s.x[i] *= sc;
    }
    for (int il = 0; il < m->hp.n_layer; il++) layer_forward(c, b, il);

    int n_out = 0;
    for (int t = 0; t < T; t++)
        if (c->logit_row[t] >= 0)
            memcpy(c->s.xb + (size_t)n_out++ * E, c->s.x + (size_t)t * E,
                   (size_t)E * sizeof(float));
    if (n_out == 0) return HERD_OK;
    norm_rows(c, c->s.outx, c->s.xb, &m->output_norm, &m->output_norm_b, n_out, E);
    linear(c, &m->output, &m->output_b, c->s.outx, n_out, c->logits);
    if (m->hp.final_softcap > 0)
        softcap(c->logits, (size_t)n_out * m->hp.n_vocab, m->hp.final_softcap);
    return HERD_OK;
}
