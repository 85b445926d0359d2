/*
 * loader.c — herd_model_load: open the GGUF file, read the hyper-parameters
 * the architecture row names, and bind every weight by name, checking its type
 * and shape against the hyper-parameters so that the forward pass never has to.
 */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

herd_model_params herd_model_default_params(void)
{
    herd_model_params p = {.n_threads = 0};
    return p;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Read "<arch>.<suffix>" as a positive integer. */
static herd_status get_int(const herd_model *m, const char *fmt, int *out, bool required, int dflt)
{
    char key[128];
    snprintf(key, sizeof key, fmt, m->arch_name);
    uint32_t v;
    if (!herd_gguf_get_u32(m->file, key, &v)) {
        if (herd_gguf_find_kv(m->file, key))
            return herd_seterr(HERD_E_FORMAT, "%s: key %s has the wrong type", m->path, key);
        if (required) return herd_seterr(HERD_E_FORMAT, "%s: missing key %s", m->path, key);
        *out = dflt;
        return HERD_OK;
    }
    if (v == 0 || v > (1u << 24))
        return herd_seterr(HERD_E_FORMAT, "%s: %s = %u is out of range", m->path, key, v);
    *out = (int)v;
    return HERD_OK;
}

static float get_float(const herd_model *m, const char *fmt, float dflt)
{
    char key[128];
    float v;
    snprintf(key, sizeof key, fmt, m->arch_name);
    return herd_gguf_get_f32(m->file, key, &v) ? v : dflt;
}

/* What Gemma 2/3 and Phi-3 add, read as llama.cpp's loader reads it
 * (src/models/gemma2.cpp, gemma3.cpp, phi3.cpp and llama-model.cpp): the
 * window and its layer pattern, the soft-caps, the Q scale, the RoPE of the
 * window's layers, rope scaling and LongRoPE's context and attention factor. */
static herd_status read_family_hparams(herd_model *m)
{
    herd_hparams *hp = &m->hp;
    const herd_arch *a = m->arch;
    char key[128];
    if (!hp->swa_window) hp->swa_window = a->swa_default;
    if (hp->swa_window > 0 && a->swa_pattern > 0) {
        uint32_t n = (uint32_t)a->swa_pattern;
        snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", m->arch_name);
        if (herd_gguf_find_kv(m->file, key) && !herd_gguf_get_u32(m->file, key, &n))
            return herd_seterr(HERD_E_UNSUPPORTED,
                               "%s: %s is not a number (a per-layer list is not supported)",
                               m->path, key);
        for (int il = 0; il < hp->n_layer; il++)
            hp->swa_dense[il] = n != 0 && il % (int)n == (int)n - 1;
    }
    hp->attn_softcap =
        a->attn_softcap > 0 ? get_float(m, "%s.attn_logit_softcapping", a->attn_softcap) : 0.0f;
    hp->final_softcap = get_float(m, "%s.final_logit_softcapping", a->final_softcap);
    if (hp->attn_softcap < 0 || hp->final_softcap < 0)
        return herd_seterr(HERD_E_FORMAT, "%s: a negative soft-cap", m->path);
    hp->q_scale = 1.0f / sqrtf((float)(hp->n_layer == a->q_scale_embd_at ? hp->n_embd / hp->n_head
                                                                         : hp->head_dim));
    hp->rope_base_swa = a->rope_swa == RSWA_OWN ? 10000.0f : hp->rope_freq_base;
    hp->rope_base_swa = get_float(m, "%s.rope.freq_base_swa", hp->rope_base_swa);
    hp->rope_scale_swa = a->rope_swa == RSWA_OWN ? 1.0f : hp->rope_freq_scale;
    hp->rope_attn_factor = get_float(m, "%s.rope.scaling.attn_factor", 1.0f);
    herd_status st;
    if ((st = get_int(m, "%s.rope.scaling.original_context_length", &hp->n_ctx_orig, false,
                      hp->n_ctx_train)))
        return st;
    return HERD_OK;
}

/* The head size: attention.key_length when the file gives one (Mistral Nemo,
 * Qwen 3: head_dim * n_head need not be n_embd), else n_embd / n_head. K and
 * V heads of different sizes (value_length != key_length) are not supported. */
static herd_status read_head_size(herd_model *m)
{
    herd_hparams *hp = &m->hp;
    herd_status st;
    int k = 0, v = 0;
    if ((st = get_int(m, "%s.attention.key_length", &k, false, 0)) ||
        (st = get_int(m, "%s.attention.value_length", &v, false, k)))
        return st;
    if (hp->n_head % hp->n_head_kv)
        return herd_seterr(HERD_E_FORMAT, "%s: %d heads are not a multiple of %d KV heads", m->path,
                           hp->n_head, hp->n_head_kv);
    if (!k && hp->n_embd % hp->n_head)
        return herd_seterr(HERD_E_FORMAT, "%s: embedding %d is not a multiple of %d heads", m->path,
                           hp->n_embd, hp->n_head);
    if (v != k)
        return herd_seterr(HERD_E_UNSUPPORTED, "%s: key head size %d and value head size %d differ",
                           m->path, k, v);
    hp->head_dim = k ? k : hp->n_embd / hp->n_head;
    if (hp->head_dim > 512) /* attention keeps a head on the stack */
        return herd_seterr(HERD_E_UNSUPPORTED, "%s: head size %d is larger than 512", m->path,
                           hp->head_dim);
    return HERD_OK;
}

/* Linear RoPE scaling (rope.scaling.factor, else the older rope.scale_linear),
 * as llama.cpp reads it. YaRN is not implemented: such a file is refused
 * rather than run with the wrong angles. */
static herd_status read_rope_scaling(herd_model *m)
{
    herd_hparams *hp = &m->hp;
    char key[128], type[32] = "";
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
    /* longrope (Phi-3): its factors are tensors, rope_factors_long/short. */
    if (herd_gguf_get_strz(m->file, key, type, sizeof type) && strcmp(type, "none") != 0 &&
        strcmp(type, "linear") != 0 && strcmp(type, "longrope") != 0)
        return herd_seterr(HERD_E_UNSUPPORTED,
                           "%s: %s = '%s' is not supported (linear and longrope are)", m->path, key,
                           type);
    float factor = get_float(m, "%s.rope.scaling.factor", 0.0f);
    if (factor == 0.0f) factor = get_float(m, "%s.rope.scale_linear", 0.0f);
    if (!(factor >= 0.0f) || factor > 1e6f)
        return herd_seterr(HERD_E_FORMAT, "%s: rope scaling factor %g is out of range", m->path,
                           factor);
    hp->rope_freq_scale = factor > 0 ? 1.0f / factor : 1.0f;
    return HERD_OK;
}

static herd_status read_hparams(herd_model *m)
{
    herd_hparams *hp = &m->hp;
    herd_status st;
    if ((st = get_int(m, "%s.context_length", &hp->n_ctx_train, false, 2048)) ||
        (st = get_int(m, "%s.embedding_length", &hp->n_embd, true, 0)) ||
        (st = get_int(m, "%s.block_count", &hp->n_layer, true, 0)) ||
        (st = get_int(m, "%s.feed_forward_length", &hp->n_ff, true, 0)) ||
        (st = get_int(m, "%s.attention.head_count", &hp->n_head, true, 0)) ||
        (st = get_int(m, "%s.attention.head_count_kv", &hp->n_head_kv, false, hp->n_head)))
        return st;
    if (hp->n_layer > HERD_MAX_LAYERS)
        return herd_seterr(HERD_E_FORMAT, "%s: %d layers is more than herd supports (%d)", m->path,
                           hp->n_layer, HERD_MAX_LAYERS);
    if ((st = read_head_size(m))) return st;
    hp->n_embd_kv = hp->head_dim * hp->n_head_kv;
    if ((st = get_int(m, "%s.rope.dimension_count", &hp->n_rot, false, hp->head_dim))) return st;
    if (m->arch->rope == ROPE_NONE) hp->n_rot = 0;
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return herd_seterr(HERD_E_FORMAT, "%s: rope dimension %d does not fit head size %d",
                           m->path, hp->n_rot, hp->head_dim);
    if ((st = get_int(m, "%s.expert_count", &hp->n_expert, false, 0)) ||
        (st = get_int(m, "%s.expert_used_count", &hp->n_expert_used, false, 0)) ||
        (st = get_int(m, "%s.attention.sliding_window", &hp->swa_window, false, 0)))
        return st;
    if (hp->n_expert > 0 &&
        (hp->n_expert_used < 1 || hp->n_expert_used > hp->n_expert || hp->n_expert > 256))
        return herd_seterr(HERD_E_FORMAT, "%s: %d experts with %d used is not a valid mixture",
                           m->path, hp->n_expert, hp->n_expert_used);
    if (hp->n_expert == 0) hp->n_expert_used = 0;
    if (hp->n_expert == 0 && m->arch->experts == EXPERTS_REQUIRED)
        return herd_seterr(HERD_E_FORMAT, "%s: %s.expert_count is missing: %s needs experts",
                           m->path, m->arch_name, m->arch_name);
    /* an expert's FFN length: llama (Mixtral) uses n_ff; qwen3moe its own key,
     * else n_ff / n_expert_used, as llama.cpp reads them */
    hp->n_ff_exp = hp->n_ff;
    if (hp->n_expert && m->arch->experts == EXPERTS_REQUIRED &&
        (st = get_int(m, "%s.expert_feed_forward_length", &hp->n_ff_exp, false,
                      hp->n_ff / hp->n_expert_used)))
        return st;
    if (hp->n_ff_exp < 1)
        return herd_seterr(HERD_E_FORMAT, "%s: expert FFN length %d is out of range", m->path,
                           hp->n_ff_exp);
    /* Phi-3.5-mini and Phi-3-mini-128k say 262144 for a context of 131072:
     * a window that can never bind is no window. */
    if (hp->swa_window > hp->n_ctx_train && m->arch->swa_beyond_context) hp->swa_window = 0;
    if (hp->swa_window > hp->n_ctx_train)
        return herd_seterr(HERD_E_FORMAT,
                           "%s: %s.attention.sliding_window %d is larger than the context %d",
                           m->path, m->arch_name, hp->swa_window, hp->n_ctx_train);
    hp->max_alibi_bias = get_float(m, "%s.attention.max_alibi_bias", 0.0f);
    hp->clamp_kqv = get_float(m, "%s.attention.clamp_kqv", 0.0f);
    char key[128];
    snprintf(key, sizeof key, "%s.use_parallel_residual", m->arch_name);
    bool par = false;
    hp->parallel_residual = herd_gguf_get_bool(m->file, key, &par) && par;
    hp->norm_eps = get_float(m, m->arch->eps_key, 1e-5f);
    hp->rope_freq_base = get_float(m, "%s.rope.freq_base", 10000.0f);
    if ((st = read_rope_scaling(m))) return st;
    return read_family_hparams(m);
}

enum { OPTIONAL = 0, REQUIRED = 1, F32_ONLY = 2 };

/* Bind a weight by name and check its shape ne0 × ne1 × ne2 (0 = that dim
 * is 1): a model whose tensors do not fit its hyper-parameters is refused at
 * load, so the forward pass never reads out of bounds. */
static herd_status bind(herd_model *m, herd_weight *w, const char *name, int64_t ne0, int64_t ne1,
                        int64_t ne2, int flags)
{
    const gguf_tensor *t = herd_gguf_find_tensor(m->file, name);
    memset(w, 0, sizeof *w);
    if (!t) {
        if (!(flags & REQUIRED)) return HERD_OK;
        return herd_seterr(HERD_E_FORMAT, "%s: missing tensor %s", m->path, name);
    }
    int64_t want[4] = {ne0, ne1 ? ne1 : 1, ne2 ? ne2 : 1, 1};
    if (t->ne[0] != want[0] || t->ne[1] != want[1] || t->ne[2] != want[2] || t->ne[3] != 1)
        return herd_seterr(
            HERD_E_FORMAT,
            "%s: tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld]",
            m->path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
            (long long)t->ne[3], (long long)want[0], (long long)want[1], (long long)want[2]);
    if (!herd_type_can_compute(t->type))
        return herd_seterr(HERD_E_UNSUPPORTED,
                           "%s: tensor %s has type %s, which herd cannot compute with yet", m->path,
                           name, herd_type_name(t->type));
    if ((flags & F32_ONLY) && t->type != HERD_TYPE_F32)
        return herd_seterr(HERD_E_UNSUPPORTED, "%s: tensor %s must be F32, not %s", m->path, name,
                           herd_type_name(t->type));
    if (m->used) m->used[t - herd_gguf_tensor_at(m->file, 0)] = 1;
    w->data = t->data;
    w->type = t->type;
    memcpy(w->ne, t->ne, sizeof w->ne);
    return HERD_OK;
}

/* The tensors of one layer. Everything an architecture may carry is bound if
 * present; then the combinations the block needs are checked. */
static herd_status bind_layer(herd_model *m, int il)
{
    const herd_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, Q = herd_n_embd_q(hp), KV = hp->n_embd_kv, F = hp->n_ff,
                  X = hp->n_expert, D = hp->head_dim, FX = hp->n_ff_exp;
    herd_layer *L = &m->layers[il];
    char nm[96];
    herd_status st;
#define BIND(field, suffix, ne0, ne1, ne2, flags)                                                  \
    do {                                                                                           \
        snprintf(nm, sizeof nm, "blk.%d.%s", il, suffix);                                          \
        if ((st = bind(m, &L->field, nm, ne0, ne1, ne2, flags))) return st;                        \
    } while (0)
    BIND(attn_norm, "attn_norm.weight", E, 0, 0, REQUIRED | F32_ONLY);
    BIND(attn_norm_b, "attn_norm.bias", E, 0, 0, F32_ONLY);
    BIND(attn_norm_2, "attn_norm_2.weight", E, 0, 0, F32_ONLY);
    BIND(attn_norm_2_b, "attn_norm_2.bias", E, 0, 0, F32_ONLY);
    BIND(wqkv, "attn_qkv.weight", E, Q + 2 * KV, 0, OPTIONAL);
    BIND(bqkv, "attn_qkv.bias", Q + 2 * KV, 0, 0, F32_ONLY);
    const int sep = L->wqkv.data ? OPTIONAL : REQUIRED;
    BIND(wq, "attn_q.weight", E, Q, 0, sep);
    BIND(bq, "attn_q.bias", Q, 0, 0, F32_ONLY);
    BIND(wk, "attn_k.weight", E, KV, 0, sep);
    BIND(bk, "attn_k.bias", KV, 0, 0, F32_ONLY);
    BIND(wv, "attn_v.weight", E, KV, 0, sep);
    BIND(bv, "attn_v.bias", KV, 0, 0, F32_ONLY);
    /* q/k norms: one row per head (optional), or one row shared (required) */
    const herd_qk_norm_kind qkn = m->arch->qk_norm;
    if (qkn != QK_NORM_NONE) {
        const int shared = qkn == QK_NORM_SHARED;
        BIND(q_norm, "attn_q_norm.weight", D, shared ? 1 : hp->n_head, 0,
             (shared ? REQUIRED : OPTIONAL) | F32_ONLY);
        BIND(k_norm, "attn_k_norm.weight", D, shared ? 1 : hp->n_head_kv, 0,
             (shared ? REQUIRED : OPTIONAL) | F32_ONLY);
    }
    BIND(wo, "attn_output.weight", Q, E, 0, REQUIRED);
    BIND(bo, "attn_output.bias", E, 0, 0, F32_ONLY);
    const herd_ffn_norm_rule fn = herd_arch_ffn_norm(m->arch);
    if (fn != FFN_NORM_NEVER) {
        BIND(ffn_norm, "ffn_norm.weight", E, 0, 0,
             (fn == FFN_NORM_ALWAYS ? REQUIRED : OPTIONAL) | F32_ONLY);
        BIND(ffn_norm_b, "ffn_norm.bias", E, 0, 0, F32_ONLY);
    }
    const int post = m->arch->post_norms ? REQUIRED | F32_ONLY : F32_ONLY;
    BIND(post_attn_norm, "post_attention_norm.weight", E, 0, 0, post);
    BIND(post_ffn_norm, "post_ffw_norm.weight", E, 0, 0, post);
    if (X > 0) {
        BIND(router, "ffn_gate_inp.weight", E, X, 0, REQUIRED);
        BIND(gate_exps, "ffn_gate_exps.weight", E, FX, X, REQUIRED);
        BIND(up_exps, "ffn_up_exps.weight", E, FX, X, REQUIRED);
        BIND(down_exps, "ffn_down_exps.weight", FX, E, X, REQUIRED);
    } else {
        /* SwiGLU's gate may be fused into ffn_up (2 n_ff rows, gate first: Phi-3). */
        const herd_mlp_kind mk = m->arch->mlp;
        snprintf(nm, sizeof nm, "blk.%d.ffn_up.weight", il);
        const gguf_tensor *up = herd_gguf_find_tensor(m->file, nm);
        const bool fused = mk == MLP_SWIGLU && up && up->ne[1] == 2 * F;
        BIND(w_gate, "ffn_gate.weight", E, F, 0, mk != MLP_GELU && !fused ? REQUIRED : OPTIONAL);
        if (fused && L->w_gate.data)
            return herd_seterr(HERD_E_FORMAT, "%s: blk.%d has ffn_gate and a fused ffn_up", m->path,
                               il);
        BIND(b_gate, "ffn_gate.bias", F, 0, 0, F32_ONLY);
        BIND(w_up, "ffn_up.weight", E, fused ? 2 * F : F, 0, REQUIRED);
        BIND(b_up, "ffn_up.bias", F, 0, 0, F32_ONLY);
        BIND(w_down, "ffn_down.weight", F, E, 0, REQUIRED);
        BIND(b_down, "ffn_down.bias", E, 0, 0, F32_ONLY);
    }
#undef BIND
    return HERD_OK;
}

static herd_status bind_weights(herd_model *m)
{
    const herd_hparams *hp = &m->hp;
    herd_status st;
    const gguf_tensor *te = herd_gguf_find_tensor(m->file, "token_embd.weight");
    if (!te) return herd_seterr(HERD_E_FORMAT, "%s: missing tensor token_embd.weight", m->path);
    if (te->ne[1] < 1 || te->ne[1] > (1 << 24))
        return herd_seterr(HERD_E_FORMAT, "%s: token_embd.weight has %lld rows", m->path,
                           (long long)te->ne[1]);
    m->hp.n_vocab = (int)te->ne[1];
    const int64_t E = hp->n_embd, V = hp->n_vocab;
    if ((st = bind(m, &m->tok_embd, "token_embd.weight", E, V, 0, REQUIRED)) ||
        (st = bind(m, &m->output_norm, "output_norm.weight", E, 0, 0, REQUIRED | F32_ONLY)) ||
        (st = bind(m, &m->output_norm_b, "output_norm.bias", E, 0, 0, F32_ONLY)) ||
        (st = bind(m, &m->output, "output.weight", E, V, 0, OPTIONAL)) ||
        (st = bind(m, &m->output_b, "output.bias", V, 0, 0, F32_ONLY)))
        return st;
    /* LongRoPE's factors: both or neither, n_rot / 2 each. */
    if ((st = bind(m, &m->rope_long, "rope_factors_long.weight", hp->n_rot / 2, 0, 0, F32_ONLY)) ||
        (st = bind(m, &m->rope_short, "rope_factors_short.weight", hp->n_rot / 2, 0, 0,
                   F32_ONLY | (m->rope_long.data ? REQUIRED : 0))))
        return st;
    if (m->rope_short.data && !m->rope_long.data)
        return herd_seterr(HERD_E_FORMAT,
                           "%s: rope_factors_short.weight without rope_factors_long.weight",
                           m->path);
    m->tied_output = m->output.data == NULL;
    if (m->tied_output) m->output = m->tok_embd;
    /* Llama 3.1's frequency factors, one per rotated pair */
    if (m->arch->rope_freqs && hp->n_rot > 0 &&
        (st = bind(m, &m->rope_freqs, "rope_freqs.weight", hp->n_rot / 2, 0, 0, F32_ONLY)))
        return st;
    m->layers = herd_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return HERD_E_NOMEM;
    for (int il = 0; il < hp->n_layer; il++)
        if ((st = bind_layer(m, il))) return st;
    return HERD_OK;
}

/* Every tensor must have been bound: one the block does not use (a Llama 3.1
 * file's rope_freqs read by an older herd, an ffn_norm in a parallel layout,
 * a tensor of a layer past block_count) would otherwise be silently ignored,
 * and the logits quietly wrong. llama.cpp refuses such files too. */
static herd_status check_all_used(const herd_model *m)
{
    for (int64_t i = 0; i < herd_gguf_n_tensors(m->file); i++)
        if (!m->used[i])
            return herd_seterr(HERD_E_FORMAT, "%s: tensor %s is not used by a %s model", m->path,
                               herd_gguf_tensor_at(m->file, i)->name_z, m->arch_name);
    return HERD_OK;
}

/* Parameter count and the most common type among matrices (file type). */
static void summarize(herd_model *m)
{
    uint64_t bytes_by_type[HERD_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < herd_gguf_n_tensors(m->file); i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(m->file, i);
        m->n_params += t->n_elements;
        m->tensor_bytes += t->nbytes;
        if (t->n_dims >= 2 && t->type < HERD_TYPE_COUNT) bytes_by_type[t->type] += t->n_elements;
    }
    uint32_t best = HERD_TYPE_F32;
    for (uint32_t t = 0; t < HERD_TYPE_COUNT; t++)
        if (bytes_by_type[t] > bytes_by_type[best]) best = t;
    m->file_type = best;
}

/* herd_model_params.vocab_only: the vocabulary and what the file says of
 * itself; no hyper-parameter or tensor is required (llama.cpp's vocabulary
 * files hold none), and the architecture need not be one herd can run. */
static herd_status load_vocab_only(herd_model *m)
{
    m->vocab_only = true;
    herd_gguf_get_strz(m->file, "general.architecture", m->arch_name, sizeof m->arch_name);
    herd_gguf_get_strz(m->file, "general.name", m->name, sizeof m->name);
    m->arch = herd_arch_find(m->arch_name);
    char key[128];
    uint32_t v;
    snprintf(key, sizeof key, "%s.context_length", m->arch_name);
    if (herd_gguf_get_u32(m->file, key, &v) && v <= (1u << 24)) m->hp.n_ctx_train = (int)v;
    herd_status st = herd_vocab_load(m->file, &m->vocab);
    if (st) return st;
    m->hp.n_vocab = herd_vocab_n_tokens(m->vocab);
    summarize(m);
    m->n_threads = 1;
    return HERD_OK;
}

herd_status herd_model_load(const char *path, const herd_model_params *params, herd_model **out)
{
    *out = NULL;
    herd_tensor_init();
    herd_model *m = herd_calloc(1, sizeof *m);
    if (!m) return HERD_E_NOMEM;
    snprintf(m->path, sizeof m->path, "%s", path);
    const bool vocab_only = params && params->vocab_only;
    /* A vocabulary is a few megabytes of a file that may hold gigabytes of
     * weights: map it rather than read it all. */
    herd_status st = herd_gguf_open_ex(
        path, vocab_only || (params && params->mmap) ? GGUF_MAP : GGUF_READ, &m->file);
    if (st) goto fail;
    if (vocab_only) {
        if ((st = load_vocab_only(m))) goto fail;
        *out = m;
        return HERD_OK;
    }
    if (!herd_gguf_get_strz(m->file, "general.architecture", m->arch_name, sizeof m->arch_name)) {
        st = herd_seterr(HERD_E_FORMAT, "%s: missing general.architecture", path);
        goto fail;
    }
    herd_gguf_get_strz(m->file, "general.name", m->name, sizeof m->name);
    m->arch = herd_arch_find(m->arch_name);
    if (!m->arch) {
        char list[256];
        herd_arch_list(list, sizeof list);
        st = herd_seterr(HERD_E_UNSUPPORTED,
                         "%s: architecture '%s' is not supported (herd runs: %s)", path,
                         m->arch_name, list);
        goto fail;
    }
    m->used = herd_calloc((size_t)herd_gguf_n_tensors(m->file) + 1, 1);
    if (!m->used) {
        st = HERD_E_NOMEM;
        goto fail;
    }
    if ((st = read_hparams(m)) || (st = bind_weights(m)) || (st = check_all_used(m))) goto fail;
    free(m->used);
    m->used = NULL;
    if ((st = herd_vocab_load(m->file, &m->vocab))) goto fail;
    if (herd_vocab_n_tokens(m->vocab) != m->hp.n_vocab) {
        st = herd_seterr(HERD_E_FORMAT, "%s: vocabulary has %d tokens but token_embd has %d rows",
                         path, herd_vocab_n_tokens(m->vocab), m->hp.n_vocab);
        goto fail;
    }
    summarize(m);
    m->n_threads = params && params->n_threads > 0 ? params->n_threads : default_threads();
    *out = m;
    return HERD_OK;
fail:
    herd_model_free(m);
    return st;
}

void herd_model_free(herd_model *m)
{
    if (!m) return;
    herd_vocab_free(m->vocab);
    free(m->layers);
    free(m->used);
    herd_gguf_close(m->file);
    free(m);
}

/* "GQA 32/8, SWA 4096, MoE 8 experts (2 used), RoPE normal" and the like. */
static void describe_features(const herd_model *m, char *buf, size_t cap)
{
    const herd_hparams *hp = &m->hp;
    const herd_layer *L0 = &m->layers[0];
    size_t n = 0;
#define ADD(...) n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__)
    buf[0] = 0;
    if (hp->n_head_kv == hp->n_head)
        ADD("MHA");
    else if (hp->n_head_kv == 1)
        ADD("MQA");
    else
        ADD("GQA %d/%d", hp->n_head, hp->n_head_kv);
    ADD(", head size %d%s", hp->head_dim, herd_n_embd_q(hp) != hp->n_embd ? " (own)" : "");
    if (hp->swa_window) {
        int n_win = 0;
        for (int il = 0; il < hp->n_layer; il++) n_win += !hp->swa_dense[il];
        ADD(", SWA %d", hp->swa_window);
        if (n_win < hp->n_layer) ADD(" on %d of %d layers", n_win, hp->n_layer);
    }
    if (hp->n_expert) ADD(", MoE %d experts (%d used)", hp->n_expert, hp->n_expert_used);
    if (m->arch->alibi) ADD(", ALiBi (max bias %g)", hp->max_alibi_bias);
    if (m->arch->rope != ROPE_NONE)
        ADD(", RoPE %s%s", m->arch->rope == ROPE_NEOX ? "neox" : "normal",
            hp->n_rot < hp->head_dim ? " partial" : "");
    if (hp->n_rot && hp->n_rot < hp->head_dim) ADD(" %d/%d", hp->n_rot, hp->head_dim);
    if (m->rope_freqs.data) ADD(" with frequency factors (Llama 3.1 scaling)");
    if (hp->rope_freq_scale != 1.0f) ADD(" linear scaling x%g", 1.0f / hp->rope_freq_scale);
    if (hp->rope_freq_scale != 1.0f && hp->rope_scale_swa != hp->rope_freq_scale)
        ADD(" on global layers");
    if (m->arch->swa_pattern && hp->swa_window && hp->rope_base_swa != hp->rope_freq_base)
        ADD(" (window layers: base %g)", hp->rope_base_swa);
    if (m->rope_long.data)
        ADD(", LongRoPE (original context %d, attention factor %.4g)", hp->n_ctx_orig,
            hp->rope_attn_factor);
    if (hp->attn_softcap > 0) ADD(", attention soft-cap %g", hp->attn_softcap);
    if (hp->final_softcap > 0) ADD(", logit soft-cap %g", hp->final_softcap);
    if (m->arch->embd_scale) ADD(", embeddings x sqrt(n_embd)");
    if (L0->post_attn_norm.data) ADD(", post-attention/MLP norms");
    if (hp->clamp_kqv > 0) ADD(", clamp_kqv %g", hp->clamp_kqv);
    if (L0->wqkv.data) ADD(", fused QKV");
    if (L0->bq.data || L0->bqkv.data) ADD(", q/k/v biases");
    if (L0->q_norm.data) ADD(", q/k norm");
    if (herd_residual(m, L0) != RES_SEQ) ADD(", parallel attention+MLP");
    ADD(", %s, %s", m->arch->norm == NORM_RMS ? "RMSNorm" : "LayerNorm",
        hp->n_expert                ? "SwiGLU experts"
        : m->arch->mlp == MLP_GELU  ? "GELU"
        : m->arch->mlp == MLP_GEGLU ? "GeGLU"
        : L0->w_gate.data           ? "SwiGLU"
                                    : "SwiGLU (fused gate+up)");
#undef ADD
}

void herd_model_get_info(const herd_model *m, herd_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->arch = m->arch_name;
    info->vocab_only = m->vocab_only;
    info->family = !m->arch                                ? "(not supported by herd)"
                   : m->hp.n_expert && m->arch->family_moe ? m->arch->family_moe
                                                           : m->arch->family;
    if (m->layers)
        describe_features(m, info->features, sizeof info->features);
    else
        snprintf(info->features, sizeof info->features, "vocabulary only");
    info->n_expert = m->hp.n_expert;
    info->n_expert_used = m->hp.n_expert_used;
    info->swa_window = m->hp.swa_window;
    info->name = m->name;
    info->file_type = herd_type_name(m->file_type);
    info->tokenizer = herd_vocab_model_name(m->vocab);
    info->file_size = herd_gguf_file_size(m->file);
    info->n_params = m->n_params;
    info->tensor_bytes = m->tensor_bytes;
    info->n_threads = m->n_threads;
    info->gguf_version = herd_gguf_version(m->file);
    info->n_ctx_train = m->hp.n_ctx_train;
    info->n_layer = m->hp.n_layer;
    info->n_head = m->hp.n_head;
    info->n_head_kv = m->hp.n_head_kv;
    info->n_embd = m->hp.n_embd;
    info->n_ff = m->hp.n_ff;
    info->n_vocab = m->hp.n_vocab;
    info->n_rot = m->hp.n_rot;
    info->rope_freq_base = m->hp.rope_freq_base;
    info->norm_eps = m->hp.norm_eps;
    info->has_chat_template = herd_gguf_find_kv(m->file, "tokenizer.chat_template") != NULL;
    info->tied_output = m->tied_output;
}

int herd_n_vocab(const herd_model *m)
{
    return m->hp.n_vocab;
}
int herd_n_ctx_train(const herd_model *m)
{
    return m->hp.n_ctx_train;
}

/* ------------------------------------------------ tokenizer, forwarded */

int32_t herd_token_bos(const herd_model *m)
{
    return herd_vocab_bos(m->vocab);
}
int32_t herd_token_eos(const herd_model *m)
{
    return herd_vocab_eos(m->vocab);
}
bool herd_add_bos(const herd_model *m)
{
    return herd_vocab_add_bos(m->vocab);
}
bool herd_token_is_eog(const herd_model *m, int32_t id)
{
    return herd_vocab_is_eog(m->vocab, id);
}

herd_status herd_tokenize(const herd_model *m, const char *text, size_t len, bool add_bos,
                          bool parse_special, int32_t *ids, int cap, int *n_ids)
{
    return herd_vocab_tokenize(m->vocab, text, len, add_bos, parse_special, ids, cap, n_ids);
}

int herd_token_to_piece(const herd_model *m, int32_t id, bool special, char *buf, int cap)
{
    return herd_vocab_token_to_piece(m->vocab, id, special, buf, cap);
}

herd_status herd_detokenize(const herd_model *m, const int32_t *ids, int n, bool special,
                            bool remove_leading_space, char *buf, size_t cap, size_t *len)
{
    return herd_vocab_detokenize(m->vocab, ids, n, special, remove_leading_space, buf, cap, len);
}
