/*
 * moe.c — the mixture-of-experts MLP (Mixtral, Qwen 3 MoE): a router picks, for each
 * token, the top-k of n_expert SwiGLU experts; their outputs are mixed with
 * the router's probabilities renormalised over the chosen ones.
 *
 * As llama.cpp does: softmax over all experts, top-k by probability, weights
 * divided by their sum, each expert's output scaled by its weight, then the k
 * outputs added in order of selection. Tokens are grouped by expert, so each
 * chosen expert's matrices are multiplied once per batch with all the rows
 * routed to it, and experts nobody chose are never read.
 *
 * A lone token (decoding) has each chosen expert's products of one row
 * each: small (Qwen3-30B-A3B: 24 of about 1 MB per layer), so there the
 * experts run side by side, the gate and up products of all of them in one
 * pool dispatch and their down products in another (herd_matvec_many), instead of
 * a dispatch, a wait for the slowest thread and a conversion of the same
 * activations per matrix. The outputs have the same bits either way.
 */
#include "model/model.h"

#include <math.h>
#include <string.h>

/* ggml_soft_max: max-subtracted expf in F32, sum in double, scaled by the
 * F32 reciprocal. */
static void softmax(float *p, int n)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = p[i] > mx ? p[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        p[i] = expf(p[i] - mx);
        sum += (double)p[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) p[i] *= inv;
}

/* The k largest probabilities, in descending order (ggml_top_k via argsort;
 * equal values keep the lower index first). */
static void top_k(const float *p, int n, int k, int32_t *sel, float *w)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            bool taken = false;
            for (int q = 0; q < j; q++) taken |= sel[q] == i;
            if (!taken && (best < 0 || p[i] > p[best])) best = i;
        }
        sel[j] = best;
        w[j] = p[best];
    }
    double sum = 0.0; /* ggml_sum_rows: double accumulation, F32 result */
    for (int j = 0; j < k; j++) sum += (double)w[j];
    for (int j = 0; j < k; j++) w[j] /= (float)sum;
}

/* Expert e's slice of a 3-D [n_in, n_out, n_expert] tensor as a matrix. */
static herd_weight expert(const herd_weight *w, int e)
{
    herd_weight x = *w;
    size_t bytes = herd_row_bytes(w->type, w->ne[0]) * (size_t)w->ne[1];
    x.data = (const uint8_t *)w->data + bytes * (size_t)e;
    x.ne[2] = 1;
    return x;
}

static void mm(herd_ctx *c, const herd_weight *w, const float *x, int T, float *y)
{
    herd_matmul(w->data, w->type, w->ne[0], w->ne[1], x, T, y, c->s.work, c->n_threads);
}

/* ggml_swiglu: silu(gate)·up, into gate. */
static void swiglu(float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* Experts decoded side by side per dispatch (their gate and up: twice as
 * many products). */
#define SIDE 8

static herd_matvec expert_product(const herd_weight *w, int e, const float *x, float *y)
{
    const herd_weight m = expert(w, e);
    return (herd_matvec){
        .w = m.data, .wtype = m.type, .n_in = m.ne[0], .n_rows = m.ne[1], .x = x, .y = y};
}

size_t herd_moe_work_bytes(const herd_model *m)
{
    size_t most = 0;
    for (int il = 0; m->hp.n_expert && il < m->hp.n_layer; il++) {
        const herd_layer *L = &m->layers[il];
        herd_matvec v[2 * SIDE];
        for (int j = 0; j < SIDE; j++) {
            v[2 * j] = expert_product(&L->gate_exps, 0, NULL, NULL);
            v[2 * j + 1] = expert_product(&L->up_exps, 0, NULL, NULL);
        }
        size_t b = herd_matvec_work_size(v, 2 * SIDE);
        if (b > most) most = b;
        for (int j = 0; j < SIDE; j++) v[j] = expert_product(&L->down_exps, 0, NULL, NULL);
        b = herd_matvec_work_size(v, SIDE);
        if (b > most) most = b;
    }
    return most;
}

/* One token's chosen experts (moe_sel, moe_w of token 0), SIDE at a time,
 * each one's output scaled by its weight into its slot of moe_out. */
static void experts_token(herd_ctx *c, const herd_layer *L, const float *in)
{
    const herd_hparams *hp = &c->model->hp;
    herd_scratch *s = &c->s;
    const int K = hp->n_expert_used, E = hp->n_embd, F = hp->n_ff_exp;
    herd_matvec v[2 * SIDE];
    for (int j0 = 0; j0 < K; j0 += SIDE) {
        const int n = K - j0 < SIDE ? K - j0 : SIDE;
        for (int j = 0; j < n; j++) {
            const int e = c->moe_sel[j0 + j];
            v[2 * j] = expert_product(&L->gate_exps, e, in, s->ffa + (size_t)j * F);
            v[2 * j + 1] = expert_product(&L->up_exps, e, in, s->ffb + (size_t)j * F);
        }
        herd_matvec_many(v, 2 * n, s->work, c->n_threads);
        swiglu(s->ffa, s->ffb, (size_t)n * F);
        for (int j = 0; j < n; j++)
            v[j] = expert_product(&L->down_exps, c->moe_sel[j0 + j], s->ffa + (size_t)j * F,
                                  s->moe_out + (size_t)(j0 + j) * E);
        herd_matvec_many(v, n, s->work, c->n_threads);
        for (int j = j0; j < j0 + n; j++) {
            const float w = c->moe_w[j];
            float *o = s->moe_out + (size_t)j * E;
            for (int i = 0; i < E; i++) o[i] *= w;
        }
        c->expert_rows_read += (uint64_t)n * (2u * (uint64_t)F + (uint64_t)E);
    }
}

void herd_moe(herd_ctx *c, const herd_layer *L, const float *in, int T, float *out)
{
    const herd_hparams *hp = &c->model->hp;
    herd_scratch *s = &c->s;
    const int X = hp->n_expert, K = hp->n_expert_used, E = hp->n_embd, F = hp->n_ff_exp;
    mm(c, &L->router, in, T, s->router);
    for (int t = 0; t < T; t++) {
        softmax(s->router + (size_t)t * X, X);
        top_k(s->router + (size_t)t * X, X, K, c->moe_sel + (size_t)t * K,
              c->moe_w + (size_t)t * K);
    }
    if (T == 1) experts_token(c, L, in);
    for (int e = 0; e < X && T > 1; e++) {
        int n = 0; /* rows (t, slot) routed to expert e */
        for (int t = 0; t < T; t++)
            for (int j = 0; j < K; j++)
                if (c->moe_sel[t * K + j] == e) {
                    c->moe_rows[n] = t * K + j;
                    memcpy(s->moe_x + (size_t)n++ * E, in + (size_t)t * E,
                           (size_t)E * sizeof(float));
                }
        if (n == 0) continue;
        herd_weight g = expert(&L->gate_exps, e), u = expert(&L->up_exps, e),
                    d = expert(&L->down_exps, e);
        mm(c, &g, s->moe_x, n, s->ffa);
        mm(c, &u, s->moe_x, n, s->ffb);
        swiglu(s->ffa, s->ffb, (size_t)n * F);
        mm(c, &d, s->ffa, n, s->moe_y);
        c->expert_rows_read += 2u * (uint64_t)F + (uint64_t)E;
        for (int r = 0; r < n; r++) {
            const int slot = c->moe_rows[r];
            const float w = c->moe_w[slot];
            float *dst = s->moe_out + (size_t)slot * E;
            for (int i = 0; i < E; i++) dst[i] = s->moe_y[(size_t)r * E + i] * w;
        }
    }
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * E;
        memcpy(o, s->moe_out + (size_t)t * K * E, (size_t)E * sizeof(float));
        for (int j = 1; j < K; j++)
            for (int i = 0; i < E; i++) o[i] += s->moe_out[((size_t)t * K + j) * E + i];
    }
}
