/*
 * predict.c — tokens per second of a shape on this machine, from the probe.
 *
 * The products dominate both phases, so the model is theirs, timed by the
 * probe on the same kernels (predict.h gives the formulas), type by type for
 * the mix the file holds (predict_mix.c). What a token reads when decoding
 * is every weight matrix of the layers (for a mixture of experts, the
 * attention, the router and only the experts used) plus the output matrix;
 * the token embedding is one row, not a product. A prompt multiplies every
 * token by the same matrices, so its cost is flops at the batched kernels'
 * rate. Attention adds a cost per query and cached token, scaled by head
 * size, split over the threads.
 *
 * Weight types the probe did not time use the nearest timed one (by bits
 * per weight): Q3_K and Q2_K use Q4_K's rates.
 */
#include "catalog/predict.h"
#include "model/model.h"
#include "tensor/tensor.h"
#include "util/util.h"

#include <math.h>
#include <string.h>

void herd_shape_of_model(const herd_model *m, herd_shape *s)
{
    const herd_hparams *hp = &m->hp;
    *s = (herd_shape){.n_layer = hp->n_layer,
                      .n_embd = hp->n_embd,
                      .n_head = hp->n_head,
                      .n_head_kv = hp->n_head_kv,
                      .head_dim = hp->head_dim,
                      .n_ff = hp->n_ff,
                      .n_vocab = hp->n_vocab,
                      .n_expert = hp->n_expert,
                      .n_expert_used = hp->n_expert_used,
                      .swa = hp->swa_window};
}

uint32_t herd_model_matrix_type(const herd_model *m)
{
    return m->file_type;
}

double herd_shape_params(const herd_shape *s, bool active)
{
    const double E = s->n_embd, hd = s->head_dim > 0 ? s->head_dim : (double)s->n_embd / s->n_head;
    double attn = E * hd * (2.0 * s->n_head + 2.0 * s->n_head_kv);
    double ffn = 3.0 * E * s->n_ff;
    if (s->n_expert > 0) ffn *= active ? s->n_expert_used : s->n_expert, attn += E * s->n_expert;
    return s->n_layer * (attn + ffn) + (double)s->n_vocab * E;
}

/* The probed type nearest to `type` in bits per weight. */
static const herd_probe_type *rates_for(const herd_probe *p, uint32_t type)
{
    const herd_type_traits *want = herd_type(type);
    double bw = want && want->blck_size ? 8.0 * want->type_size / want->blck_size : 16;
    const herd_probe_type *best = NULL;
    double dist = 1e30;
    for (int i = 0; i < p->n_types; i++) {
        if (p->types[i].type == type) return &p->types[i];
        const herd_type_traits *tt = herd_type(p->types[i].type);
        double d = fabs(8.0 * tt->type_size / tt->blck_size - bw);
        if (d < dist) dist = d, best = &p->types[i];
    }
    return best;
}

/* Seconds of attention for n queries over `cells` cached tokens each. */
static double attn_s(const herd_probe *p, const herd_shape *s, double queries_x_cells, bool batch,
                     int t)
{
    double hd = s->head_dim > 0 ? s->head_dim : (double)s->n_embd / s->n_head;
    double ns = batch ? p->attn_ns_prompt : p->attn_ns_decode;
    return s->n_layer * (double)s->n_head * queries_x_cells * ns * 1e-9 * hd / 128.0 / t;
}

/* Cells a query at position pos sees: pos + 1, or the window. */
static double visible(const herd_shape *s, double pos)
{
    return s->swa > 0 && pos + 1 > s->swa ? s->swa : pos + 1;
}

/* GB/s at which one token's product of a type goes: the slower of the
 * kernel streaming its weights from memory (the bus, and how well the
 * kernel's loads keep it busy) and the kernel's own arithmetic (its rate
 * with the weights in cache). Not a plain read loop's bandwidth: on the
 * Zen 4 VM at one thread the Q4_0 kernel streams at 27 GB/s where Q4_K's
 * streams at 37 from the same bus, Q4_0 being slower in arithmetic (37 GB/s
 * in cache, Q4_K 46), and the scalar read loop reads at 19-26. */
double herd_predict_gemv_gbs(const herd_probe *p, uint32_t type, int t)
{
    const herd_probe_type *r = rates_for(p, type);
    if (!r || t < 1 || t > p->max_threads) return 0;
    return r->gemv_cache_gbs[t] < r->gemv_gbs[t] ? r->gemv_cache_gbs[t] : r->gemv_gbs[t];
}

/* Seconds of the products of one token (decode: the one-token rates) or of
 * n tokens (prompt: the 512-token rates; the output matrix for the last
 * token only, at the one-token rate). */
static double products_s(const herd_probe *p, const herd_weight_mix *mx, int t, int n_tok)
{
    double s = 0;
    for (int i = 0; i < mx->n; i++) {
        const herd_mix_group *g = &mx->g[i];
        const herd_probe_type *r = rates_for(p, g->type);
        if (n_tok <= 1 || g->output)
            s += g->bytes / (herd_predict_gemv_gbs(p, g->type, t) * 1e9);
        else
            s += 2.0 * n_tok * g->params / (r->gemm_gflops[t] * 1e9);
    }
    return s;
}

herd_status herd_predict_mix(const herd_probe *p, const herd_shape *s, const herd_weight_mix *mx,
                             int threads, int n_prompt, int n_gen, int depth, herd_prediction *out)
{
    memset(out, 0, sizeof *out);
    if (!p || p->n_types < 1 || !mx || mx->n < 1 || s->n_layer <= 0 || s->n_embd <= 0 ||
        s->n_head <= 0)
        return herd_seterr(HERD_E_INVALID, "predict: no probe rates or no shape");
    const int t = threads < 1 ? 1 : threads > p->max_threads ? p->max_threads : threads;
    out->threads = t;
    for (int i = 0; i < mx->n; i++) out->gb_per_token += mx->g[i].bytes / 1e9;
    /* The fixed cost of a token: each product's call (its input quantized,
     * the pool woken and joined), and one more dispatch per layer for
     * attention; the rest of a layer (norms, RoPE) is a few vectors. */
    const double fixed = mx->products * p->call_us[t] * 1e-6 + s->n_layer * p->sync_us[t] * 1e-6;
    const double t_tok = products_s(p, mx, t, 1) + fixed;
    if (n_gen > 0) {
        /* Token j of n_gen attends to j + 1 cells (from an empty cache). */
        double cells = 0;
        for (int j = 0; j < n_gen; j++) cells += visible(s, j);
        out->tg = n_gen / (n_gen * t_tok + attn_s(p, s, cells, false, t));
    }
    out->tg_depth = 1.0 / (t_tok + attn_s(p, s, visible(s, depth), false, t));
    if (n_prompt > 0) {
        double cells = 0;
        for (int j = 0; j < n_prompt; j++) cells += visible(s, j);
        out->pp =
            n_prompt / (products_s(p, mx, t, n_prompt) + attn_s(p, s, cells, true, t) + fixed);
    }
    return HERD_OK;
}

herd_status herd_predict(const herd_probe *p, const herd_shape *s, uint32_t type, double bpw,
                         int threads, int n_prompt, int n_gen, int depth, herd_prediction *out)
{
    memset(out, 0, sizeof *out);
    if (!p || !rates_for(p, type) || s->n_layer <= 0 || s->n_embd <= 0 || s->n_head <= 0 ||
        !(bpw > 0))
        return herd_seterr(HERD_E_INVALID, "predict: no probe rates or no shape");
    /* Every matrix of one type at bpw: the layers' and the output's. */
    const double out_params = (double)s->n_vocab * s->n_embd;
    const double lay = herd_shape_params(s, true) - out_params;
    herd_weight_mix mx = {
        .n = 2, .products = s->n_layer * (s->n_expert > 0 ? 4 + 3 * s->n_expert_used + 1 : 7) + 1};
    mx.g[0] = (herd_mix_group){.type = type, .params = lay, .bytes = lay * bpw / 8};
    mx.g[1] = (herd_mix_group){
        .type = type, .params = out_params, .bytes = out_params * bpw / 8, .output = true};
    return herd_predict_mix(p, s, &mx, threads, n_prompt, n_gen, depth, out);
}
