/*
 * predict_mix.c — which weights a token reads, by type: the input of the
 * performance model (predict.h).
 *
 * A file's matrices are not all of one type. A Q4_K_M file keeps the output
 * matrix and some attn_v / ffn_down tensors in Q6_K, a Q4_0 file its output
 * in Q6_K; each type has its own kernel and its own speed. The mix of a loaded
 * model comes from its tensors; the mix of a shape and a file type (the
 * catalog's case, no file at hand) from the rules that make such a file:
 * herd quantize's plan (src/quant), which is llama-quantize's.
 */
#include "catalog/predict.h"
#include "model/model.h"
#include "quant/quant.h"
#include "tensor/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Add n_mat matrices of rows x cols weights of `type`, of which a token uses
 * the fraction `used` (experts), to the mix. */
static void add(herd_weight_mix *mx, uint32_t type, double rows, double cols, double n_mat,
                double used, bool output)
{
    const double params = rows * cols * n_mat * used;
    const double bytes = (double)herd_row_bytes(type, (int64_t)cols) * rows * n_mat * used;
    for (int i = 0; i < mx->n; i++)
        if (mx->g[i].type == type && mx->g[i].output == output) {
            mx->g[i].params += params, mx->g[i].bytes += bytes;
            return;
        }
    if (mx->n == HERD_MIX_MAX) { /* never with herd's types; fold into the last */
        mx->g[mx->n - 1].params += params, mx->g[mx->n - 1].bytes += bytes;
        return;
    }
    mx->g[mx->n++] =
        (herd_mix_group){.type = type, .params = params, .bytes = bytes, .output = output};
}

static void add_weight(herd_weight_mix *mx, const herd_weight *w, double used, bool output)
{
    if (!w->data) return;
    const double n_mat = w->ne[2] > 1 ? (double)w->ne[2] : 1;
    add(mx, w->type, (double)w->ne[1], (double)w->ne[0], n_mat, used, output);
    mx->products += w->ne[2] > 1 ? 0 : 1; /* experts: counted per expert used below */
}

herd_status herd_weight_mix_of_model(const herd_model *m, herd_weight_mix *mx)
{
    memset(mx, 0, sizeof *mx);
    if (!m || !m->layers || m->vocab_only)
        return herd_seterr(HERD_E_INVALID, "predict: the model has no weights");
    const herd_hparams *hp = &m->hp;
    const double used = hp->n_expert > 0 ? (double)hp->n_expert_used / hp->n_expert : 1;
    for (int il = 0; il < hp->n_layer; il++) {
        const herd_layer *L = &m->layers[il];
        const herd_weight *dense[] = {&L->wqkv,   &L->wq,   &L->wk,     &L->wv,    &L->wo,
                                      &L->w_gate, &L->w_up, &L->w_down, &L->router};
        for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++)
            add_weight(mx, dense[i], 1, false);
        const herd_weight *exps[] = {&L->gate_exps, &L->up_exps, &L->down_exps};
        for (size_t i = 0; i < 3; i++)
            if (exps[i]->data)
                add_weight(mx, exps[i], used, false), mx->products += hp->n_expert_used;
    }
    add_weight(mx, m->output.data ? &m->output : &m->tok_embd, 1, true);
    return HERD_OK;
}

/* ------------------------------------------------- from a file type */

typedef struct {
    char name[48];
    double rows, cols, n_mat; /* n_mat: experts (3-D) or 1 */
} mix_tensor;

static int by_llama_order(const void *a, const void *b)
{
    return herd_quant_name_cmp(((const mix_tensor *)a)->name, ((const mix_tensor *)b)->name);
}

/* The matrices of one block as llama.cpp's converters name them for an
 * architecture of this kind: fused QKV or not, a gate or not, experts. */
static int block_tensors(mix_tensor *t, int il, const herd_shape *s, const herd_arch *a)
{
    const double E = s->n_embd, hd = s->head_dim > 0 ? s->head_dim : E / s->n_head;
    const double Q = hd * s->n_head, KV = hd * s->n_head_kv;
    const bool fused = a && a->qkv == QKV_FUSED, gate = !a || a->mlp != MLP_GELU;
    int n = 0;
#define T(nm, r, c, k)                                                                             \
    (snprintf(t[n].name, sizeof t[n].name, "blk.%d.%s.weight", il, nm), t[n].rows = (r),           \
     t[n].cols = (c), t[n].n_mat = (k), n++)
    if (fused) {
        T("attn_qkv", Q + 2 * KV, E, 1);
    } else {
        T("attn_q", Q, E, 1);
        T("attn_k", KV, E, 1);
        T("attn_v", KV, E, 1);
    }
    T("attn_output", E, Q, 1);
    if (s->n_expert > 0) {
        T("ffn_gate_inp", s->n_expert, E, 1);
        T("ffn_gate_exps", s->n_ff, E, s->n_expert);
        T("ffn_up_exps", s->n_ff, E, s->n_expert);
        T("ffn_down_exps", E, s->n_ff, s->n_expert);
    } else if (a && a->ffn_fused) {
        T("ffn_up", 2.0 * s->n_ff, E, 1);
        T("ffn_down", E, s->n_ff, 1);
    } else {
        if (gate) T("ffn_gate", s->n_ff, E, 1);
        T("ffn_up", s->n_ff, E, 1);
        T("ffn_down", E, s->n_ff, 1);
    }
#undef T
    return n;
}

herd_status herd_weight_mix_of_ftype(const herd_shape *s, const char *arch, const char *ftype,
                                     herd_weight_mix *mx)
{
    memset(mx, 0, sizeof *mx);
    const herd_ftype_info *ft = herd_ftype_find(ftype);
    if (!ft) return herd_seterr(HERD_E_INVALID, "predict: herd cannot make a %s file", ftype);
    if (!s || s->n_layer <= 0 || s->n_embd <= 0 || s->n_head <= 0 || s->n_vocab <= 0)
        return herd_seterr(HERD_E_INVALID, "predict: no shape");
    const herd_arch *a = arch ? herd_arch_find(arch) : NULL;
    const int per_block = 9, n = 2 + s->n_layer * per_block;
    mix_tensor *t = calloc((size_t)n, sizeof *t);
    const char **names = calloc((size_t)n, sizeof *names);
    if (!t || !names) {
        free(t), free(names);
        return herd_seterr(HERD_E_NOMEM, "predict: out of memory");
    }
    const bool tied = a && a->tied_output;
    int k = 0;
    t[k++] = (mix_tensor){"token_embd.weight", s->n_vocab, s->n_embd, 1};
    if (!tied) t[k++] = (mix_tensor){"output.weight", s->n_vocab, s->n_embd, 1};
    for (int il = 0; il < s->n_layer; il++) k += block_tensors(t + k, il, s, a);
    qsort(t, (size_t)k, sizeof *t, by_llama_order);
    for (int i = 0; i < k; i++) names[i] = t[i].name;
    herd_quant_plan plan;
    herd_quant_plan_init(&plan, ft, arch, s->n_layer, s->n_head, s->n_head_kv, s->n_expert, names,
                         k);
    const double used = s->n_expert > 0 ? (double)s->n_expert_used / s->n_expert : 1;
    for (int i = 0; i < k; i++) {
        const bool experts = t[i].n_mat > 1, router = strstr(t[i].name, "ffn_gate_inp") != NULL;
        const uint32_t type = herd_quant_tensor_type(&plan, t[i].name, experts ? 3 : 2,
                                                     (int64_t)t[i].cols, HERD_TYPE_F32);
        const bool embd = !strcmp(t[i].name, "token_embd.weight");
        if (embd && !tied) continue; /* one row per token, not a product */
        add(mx, router ? HERD_TYPE_F32 : type, t[i].rows, t[i].cols, t[i].n_mat, experts ? used : 1,
            embd || !strcmp(t[i].name, "output.weight"));
        mx->products += experts ? s->n_expert_used : 1;
    }
    free(t), free(names);
    return HERD_OK;
}
