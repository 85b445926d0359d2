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
    for (int e = 0; e < X; e++) {
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
        for (size_t i = 0; i < (size_t)n * F; i++)
            s->ffa[i] = s->ffa[i] / (1.0f + expf(-s->ffa[i])) * s->ffb[i];
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
