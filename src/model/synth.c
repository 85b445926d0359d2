/*
 * synth.c — random-weight models of real shapes (herd synth).
 *
 * Benchmarks need models of real sizes, and none can be downloaded here. A
 * synthetic model has the tensor names, shapes, types and metadata of the real
 * one, so llama.cpp and herd run it with exactly the work of the real model;
 * only the text it produces is gibberish. Weights are uniform with a small
 * standard deviation so activations stay in a sane range (norm weights 1,
 * biases 0); each row has its own seed, so rows can be generated in parallel
 * and the file is reproducible.
 *
 * Types: every mix herd quantize makes (q4_k_m, q8_0, …), with the per-tensor
 * choices of llama.cpp's quantizer (quant/quant_plan.c, shared with herd
 * quantize), so a synthetic q4_k_m file is what llama-quantize would make of
 * the real model. Tensors are visited and written in llama.cpp's order, and
 * streamed to the file one at a time (a 7B F16 model does not fit in memory
 * twice).
 */
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/quant.h"
#include "tensor/tensor.h"
#include "util/pool.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name, *arch;
    int n_embd, n_ff, n_head, n_head_kv, n_layer, n_ctx;
    int n_rot;    /* rotary dimensions; 0: the whole head */
    int head_dim; /* attention.key_length/value_length; 0: n_embd / n_head, no keys */
    float rope_base;
    int n_expert, n_expert_used;
    int n_ff_exp;      /* expert_feed_forward_length (qwen3moe); 0: none */
    bool tied;         /* no output.weight (also when the row says so) */
    bool rope_freqs;   /* rope_freqs.weight with Llama 3.1's factors */
    float rope_factor; /* their scaling factor: 8 (3.1) unless given (3.2: 32) */
    /* ../shared/vocab/ggml-vocab-<vocab>.gguf, or a path (with a '/'),
     * unless one is given */
    const char *vocab;
} synth_shape;

/* The vocabulary of the "tiny" shapes: GPT-2's first 512 tokens, as in
 * ../shared/models/tiny (README there), so that references stay small. */
#define TINY_VOCAB "../shared/models/tiny/gptneox-f32.gguf"
/* Llama 3.x's rope_theta; Qwen 2.5 / 3 and Mistral Nemo use 1e6. */
#define LLAMA3_BASE 500000.0f

/* Hyper-parameters of the published models (their config.json / GGUF
 * conversions). The vocabulary size is the vocabulary file's: Mistral Nemo's
 * Tekken vocabulary (131072) is not available here, Llama 3's (128256) stands
 * in. The "tiny" shapes are for parity tests: every row length a multiple of
 * 256 so that K-quants apply, two layers, a 512-token vocabulary. */
static const synth_shape shapes[] = {
    {"tinyllama-1.1b", "llama", 2048, 5632, 32, 4, 22, 2048, .rope_base = 10000.0f,
     .vocab = "llama-spm"},
    {"llama2-7b", "llama", 4096, 11008, 32, 32, 32, 4096, .rope_base = 10000.0f,
     .vocab = "llama-spm"},
    {"mistral-7b", "llama", 4096, 14336, 32, 8, 32, 32768, .rope_base = 10000.0f,
     .vocab = "llama-spm"},
    {"mixtral-8x7b", "llama", 4096, 14336, 32, 8, 32, 32768, .rope_base = 1e6f, .n_expert = 8,
     .n_expert_used = 2, .vocab = "llama-spm"},
    {"phi-2", "phi2", 2560, 10240, 32, 32, 32, 2048, .n_rot = 32, .rope_base = 10000.0f,
     .vocab = "gpt-2"},
    {"falcon-7b", "falcon", 4544, 18176, 71, 1, 32, 2048, .rope_base = 10000.0f, .vocab = "falcon"},
    {"mpt-7b", "mpt", 4096, 16384, 32, 32, 32, 2048, .vocab = "mpt"},
    {"stablelm-3b", "stablelm", 2560, 6912, 32, 32, 32, 4096, .n_rot = 20, .rope_base = 10000.0f,
     .vocab = "gpt-neox"},
    {"llama3.1-8b", "llama", 4096, 14336, 32, 8, 32, 131072, .rope_base = LLAMA3_BASE,
     .rope_freqs = true, .vocab = "llama-bpe"},
    {"llama3.2-1b", "llama", 2048, 8192, 32, 8, 16, 131072, .rope_base = LLAMA3_BASE,
     .rope_freqs = true, .rope_factor = 32, .tied = true, .vocab = "llama-bpe"},
    {"mistral-nemo-12b", "llama", 5120, 14336, 32, 8, 40, 1024000, .head_dim = 128,
     .rope_base = 1e6f, .vocab = "llama-bpe"},
    {"qwen2.5-7b", "qwen2", 3584, 18944, 28, 4, 28, 32768, .rope_base = 1e6f, .vocab = "qwen2"},
    {"qwen3-8b", "qwen3", 4096, 12288, 32, 8, 36, 40960, .head_dim = 128, .rope_base = 1e6f,
     .vocab = "qwen2"},
    {"qwen3-30b-a3b", "qwen3moe", 2048, 6144, 32, 4, 48, 40960, .head_dim = 128, .rope_base = 1e6f,
     .n_expert = 128, .n_expert_used = 8, .n_ff_exp = 768, .vocab = "qwen2"},
    /* parity shapes */
    {"tiny", "llama", 256, 512, 4, 2, 2, 4096, .rope_base = LLAMA3_BASE, .vocab = TINY_VOCAB},
    {"tiny-llama3.1", "llama", 256, 512, 4, 2, 2, 4096, .rope_base = LLAMA3_BASE,
     .rope_freqs = true, .vocab = TINY_VOCAB},
    {"tiny-nemo", "llama", 256, 512, 4, 2, 2, 4096, .head_dim = 128, .rope_base = 1e6f,
     .vocab = TINY_VOCAB},
    {"tiny", "qwen2", 256, 512, 4, 2, 2, 4096, .rope_base = 1e6f, .tied = true,
     .vocab = TINY_VOCAB},
    {"tiny", "qwen3", 256, 512, 4, 2, 2, 4096, .head_dim = 128, .rope_base = 1e6f,
     .vocab = TINY_VOCAB},
    {"tiny", "qwen3moe", 256, 512, 4, 2, 2, 4096, .head_dim = 128, .rope_base = 1e6f,
     .n_expert = 16, .n_expert_used = 8, .n_ff_exp = 256, .vocab = TINY_VOCAB},
    /* Gemma and Phi-3. Gemma's own vocabularies (256000, 262144 tokens) are
     * not available here, so its real shapes take llama-spm's (the lm head is
     * smaller than the real one); Phi-4's (100352) is stood in by llama-bpe's. */
    {"gemma2-9b", "gemma2", 3584, 14336, 16, 8, 42, 8192, .head_dim = 256, .rope_base = 10000.0f,
     .vocab = "llama-spm"},
    {"gemma3-4b", "gemma3", 2560, 10240, 8, 4, 34, 131072, .head_dim = 256, .rope_base = 1e6f,
     .vocab = "llama-spm"},
    {"phi-3.5-mini", "phi3", 3072, 8192, 32, 32, 32, 131072, .rope_base = 10000.0f,
     .vocab = "phi-3"},
    {"phi-4", "phi3", 5120, 17920, 40, 10, 40, 16384, .rope_base = 250000.0f, .vocab = "llama-bpe"},
    {"tiny", "gemma2", 256, 512, 4, 2, 4, 16384, .head_dim = 64, .rope_base = 10000.0f,
     .vocab = TINY_VOCAB},
    {"tiny", "gemma3", 256, 512, 4, 2, 7, 16384, .head_dim = 64, .rope_base = 1e6f,
     .vocab = TINY_VOCAB},
    {"tiny", "phi3", 256, 512, 4, 2, 3, 4096, .n_rot = 32, .rope_base = 10000.0f,
     .vocab = TINY_VOCAB},
    {"tiny-separate", "phi3", 256, 512, 4, 2, 3, 4096, .n_rot = 32, .rope_base = 10000.0f,
     .vocab = TINY_VOCAB},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

/* What the newer families' converters write beyond the common keys
 * (conversion/gemma.py, phi.py), and layouts other than the row's. */
typedef struct {
    const char *shape, *arch;
    int swa;                           /* attention.sliding_window (-1: not written) */
    float attn_softcap, final_softcap; /* written when > 0 */
    float rope_linear;                 /* rope.scaling.type linear, factor (0: none) */
    int n_ctx_orig;            /* LongRoPE: original_context_length, attn_factor, factor tensors */
    bool separate_qkv;         /* attn_q/k/v although the row fuses them */
    const char *chat_template; /* ../shared/chat/templates/NAME.jinja, or NULL */
} synth_extra;

/* The tiny shapes' caps are small enough to bite on tiny random weights,
 * whose scores and logits are far below Gemma's 50 and 30. */
static const synth_extra extras[] = {
    {"tiny", "gemma2", 32, 0.1f, 1.0f, 0, 0, false, "gemma-2-it"},
    {"tiny", "gemma3", 32, 0, 0, 8.0f, 0, false, NULL},
    {"tiny", "phi3", 1024, 0, 0, 0, 256, false, "phi-3.5-mini-instruct"},
    {"tiny-separate", "phi3", 1024, 0, 0, 0, 256, true, "phi-3-mini-4k"},
    {"gemma2-9b", "gemma2", 4096, 50.0f, 30.0f, 0, 0, false, "gemma-2-it"},
    {"gemma3-4b", "gemma3", 1024, 0, 0, 8.0f, 0, false, NULL},
    {"phi-3.5-mini", "phi3", 262144, 0, 0, 0, 4096, false, "phi-3.5-mini-instruct"},
    {"phi-4", "phi3", 0, 0, 0, 0, 0, false, "phi-4"},
};

static const synth_extra *extra_of(const synth_shape *sh)
{
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++)
        if (!strcmp(extras[i].shape, sh->name) && !strcmp(extras[i].arch, sh->arch))
            return &extras[i];
    return NULL;
}

static int shape_head_dim(const synth_shape *sh)
{
    return sh->head_dim ? sh->head_dim : sh->n_embd / sh->n_head;
}

/* Each name once ("tiny" is one per architecture). */
const char *const *herd_synth_shapes(void)
{
    static const char *names[N_SHAPES + 1];
    size_t n = 0;
    for (size_t i = 0; i < N_SHAPES; i++) {
        size_t k = 0;
        while (k < i && strcmp(shapes[k].name, shapes[i].name) != 0) k++;
        if (k == i) names[n++] = shapes[i].name;
    }
    names[n] = NULL;
    return names;
}

/* The shape of that name (and architecture, which a name shared by several
 * architectures needs). */
static herd_status find_shape(const char *name, const char *arch, const synth_shape **out)
{
    const synth_shape *found = NULL;
    int n_named = 0;
    char archs[128] = "";
    for (size_t i = 0; i < N_SHAPES; i++) {
        if (strcmp(shapes[i].name, name) != 0) continue;
        const size_t len = strlen(archs);
        snprintf(archs + len, sizeof archs - len, "%s%s", n_named++ ? ", " : "", shapes[i].arch);
        if (!arch || !strcmp(arch, shapes[i].arch)) found = found ? found : &shapes[i];
    }
    if (!n_named) return herd_seterr(HERD_E_INVALID, "synth: unknown shape '%s'", name);
    if (!found)
        return herd_seterr(HERD_E_INVALID, "synth: shape %s is for %s, not '%s'", name, archs,
                           arch);
    if (!arch && n_named > 1)
        return herd_seterr(HERD_E_INVALID, "synth: shape %s needs --arch (one of %s)", name, archs);
    *out = found;
    return HERD_OK;
}

/* ------------------------------------------------------------ tensors */

/* Matrices and biases are uniform with std 0.02; norm weights 1 ± 0.17, so
 * that a norm applied with the wrong row shows; rope factors are computed
 * (W_RAMP_*: LongRoPE's, 1 + k·i/n across the row, k = 0.5 short and 4
 * long, so that they differ from each other and from 1). */
enum { W_RANDOM, W_NORM, W_FACTORS, W_RAMP_SHORT, W_RAMP_LONG };

typedef struct {
    struct {
        char name[96];
        uint32_t type, n_dims;
        int64_t ne[4];
    } t;
    int fill;
} synth_tensor;

typedef struct {
    synth_tensor *v;
    int n, cap;
    bool oom;
} tensor_list;

static void add(tensor_list *l, int fill, int64_t ne0, int64_t ne1, int64_t ne2, const char *fmt,
                int il)
{
    if (l->n == l->cap) {
        const int cap = l->cap ? 2 * l->cap : 64;
        synth_tensor *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    synth_tensor *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->t.name, sizeof s->t.name, fmt, il);
    s->t.n_dims = ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1;
    s->t.ne[0] = ne0;
    s->t.ne[1] = ne1;
    s->t.ne[2] = ne2;
    s->t.ne[3] = 1;
    s->t.type = HERD_TYPE_F32;
    s->fill = fill;
}

/* A matrix; "%d" in the name is the layer. */
#define MAT(in, out, nm) add(l, W_RANDOM, in, out, 1, nm, il)
#define NORM(n, nm)      add(l, W_NORM, n, 1, 1, nm, il)
#define BIAS(n, nm)      add(l, W_RANDOM, n, 1, 1, nm, il)

/* An architecture's tensors, as llama.cpp's converter writes them: the
 * row's columns (arch.c) say which are fused, biased, normed or tied. */
static void arch_tensors(const synth_shape *sh, const herd_arch *a, const synth_extra *x, int64_t V,
                         tensor_list *l)
{
    const int64_t E = sh->n_embd, D = shape_head_dim(sh), Q = D * sh->n_head,
                  KV = D * sh->n_head_kv;
    int64_t F = sh->n_ff;
    const bool norm_b = a->biases & BIAS_NORM, qkv_b = a->biases & BIAS_QKV,
               ffn_b = a->biases & BIAS_FFN;
    int il = 0;
    MAT(E, V, "token_embd.weight");
    NORM(E, "output_norm.weight");
    if (norm_b) BIAS(E, "output_norm.bias");
    if (!a->tied_output && !sh->tied) MAT(E, V, "output.weight");
    if (sh->rope_freqs)
        add(l, W_FACTORS, (sh->n_rot ? sh->n_rot : D) / 2, 1, 1, "rope_freqs.weight", 0);
    if (a->biases & BIAS_LOGITS) BIAS(V, "output.bias");
    if (x && x->n_ctx_orig) {
        const int64_t n_rot = sh->n_rot ? sh->n_rot : D;
        add(l, W_RAMP_LONG, n_rot / 2, 1, 1, "rope_factors_long.weight", 0);
        add(l, W_RAMP_SHORT, n_rot / 2, 1, 1, "rope_factors_short.weight", 0);
    }
    for (il = 0; il < sh->n_layer; il++) {
        NORM(E, "blk.%d.attn_norm.weight");
        if (norm_b) BIAS(E, "blk.%d.attn_norm.bias");
        if (a->qkv == QKV_FUSED && !(x && x->separate_qkv)) {
            MAT(E, Q + 2 * KV, "blk.%d.attn_qkv.weight");
            if (qkv_b) BIAS(Q + 2 * KV, "blk.%d.attn_qkv.bias");
        } else {
            MAT(E, Q, "blk.%d.attn_q.weight");
            if (qkv_b) BIAS(Q, "blk.%d.attn_q.bias");
            MAT(E, KV, "blk.%d.attn_k.weight");
            if (qkv_b) BIAS(KV, "blk.%d.attn_k.bias");
            MAT(E, KV, "blk.%d.attn_v.weight");
            if (qkv_b) BIAS(KV, "blk.%d.attn_v.bias");
        }
        if (a->qk_norm == QK_NORM_SHARED) { /* required; per-head ones are optional */
            NORM(D, "blk.%d.attn_q_norm.weight");
            NORM(D, "blk.%d.attn_k_norm.weight");
        }
        MAT(Q, E, "blk.%d.attn_output.weight");
        if (a->biases & BIAS_OUT_ATTN) BIAS(E, "blk.%d.attn_output.bias");
        if (a->post_norms) NORM(E, "blk.%d.post_attention_norm.weight");
        if (herd_arch_ffn_norm(a) != FFN_NORM_NEVER) {
            NORM(E, "blk.%d.ffn_norm.weight");
            if (norm_b) BIAS(E, "blk.%d.ffn_norm.bias");
        }
        if (a->post_norms) NORM(E, "blk.%d.post_ffw_norm.weight");
        if (sh->n_expert) {
            const int64_t X = sh->n_expert;
            if (sh->n_ff_exp) F = sh->n_ff_exp;
            MAT(E, X, "blk.%d.ffn_gate_inp.weight");
            add(l, W_RANDOM, E, F, X, "blk.%d.ffn_gate_exps.weight", il);
            add(l, W_RANDOM, F, E, X, "blk.%d.ffn_down_exps.weight", il);
            add(l, W_RANDOM, E, F, X, "blk.%d.ffn_up_exps.weight", il);
            continue;
        }
        const bool fused_up = a->ffn_fused;
        if (a->mlp != MLP_GELU && !fused_up) MAT(E, F, "blk.%d.ffn_gate.weight");
        MAT(E, fused_up ? 2 * F : F, "blk.%d.ffn_up.weight");
        if (ffn_b) BIAS(F, "blk.%d.ffn_up.bias");
        MAT(F, E, "blk.%d.ffn_down.weight");
        if (ffn_b) BIAS(E, "blk.%d.ffn_down.bias");
    }
}

/* ------------------------------------------------------------ metadata */

/* A whole text file, NUL-terminated (a chat template). */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && n < (1 << 20) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
        if (fread(buf, 1, (size_t)n, f) == (size_t)n)
            buf[n] = 0;
        else
            free(buf), buf = NULL;
    }
    fclose(f);
    return buf;
}

/* The keys of extras (above). */
static herd_status write_extra(gguf_writer *w, const synth_shape *sh, const synth_extra *x)
{
    char key[128], path[256];
    herd_status st = HERD_OK;
#define KEY(k) (snprintf(key, sizeof key, "%s." k, sh->arch), key)
    if (x->swa >= 0) st = herd_gguf_set_u32(w, KEY("attention.sliding_window"), (uint32_t)x->swa);
    if (!st && x->attn_softcap > 0)
        st = herd_gguf_set_f32(w, KEY("attn_logit_softcapping"), x->attn_softcap);
    if (!st && x->final_softcap > 0)
        st = herd_gguf_set_f32(w, KEY("final_logit_softcapping"), x->final_softcap);
    if (!st && x->rope_linear > 0 &&
        !(st = herd_gguf_set_str(w, KEY("rope.scaling.type"), "linear")))
        st = herd_gguf_set_f32(w, KEY("rope.scaling.factor"), x->rope_linear);
    if (!st && x->n_ctx_orig) { /* conversion/phi.py: attn_factor of LongRoPE */
        const double scale = (double)sh->n_ctx / x->n_ctx_orig;
        const double f = scale > 1 ? sqrt(1 + log(scale) / log((double)x->n_ctx_orig)) : 1.0;
        if (!(st = herd_gguf_set_str(w, KEY("rope.scaling.type"), "longrope")) &&
            !(st = herd_gguf_set_u32(w, KEY("rope.scaling.original_context_length"),
                                     (uint32_t)x->n_ctx_orig)))
            st = herd_gguf_set_f32(w, KEY("rope.scaling.attn_factor"), (float)f);
    }
#undef KEY
    if (!st && x->chat_template) {
        snprintf(path, sizeof path, "../shared/chat/templates/%s.jinja", x->chat_template);
        char *t = read_text(path);
        if (!t) return herd_seterr(HERD_E_IO, "synth: cannot read %s", path);
        st = herd_gguf_set_str(w, "tokenizer.chat_template", t);
        free(t);
    }
    return st;
}

static herd_status write_metadata(gguf_writer *w, const synth_shape *sh, const herd_arch *arch,
                                  const synth_extra *x, const herd_ftype_info *ft, int64_t n_vocab,
                                  const gguf_file *vocab)
{
    char name[128], key[128];
    const char *a = sh->arch;
    snprintf(name, sizeof name, "synthetic %s %s", sh->name, ft->name);
    herd_status st;
#define KEY(k) (snprintf(key, sizeof key, "%s." k, a), key)
    if ((st = herd_gguf_set_str(w, "general.architecture", a)) ||
        (st = herd_gguf_set_str(w, "general.name", name)) ||
        (st = herd_gguf_set_str(w, "general.license", "apache-2.0")) ||
        (st = herd_gguf_set_u32(w, "general.alignment", GGUF_DEFAULT_ALIGNMENT)) ||
        (st = herd_gguf_set_u32(w, KEY("context_length"), (uint32_t)sh->n_ctx)) ||
        (st = herd_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)sh->n_embd)) ||
        (st = herd_gguf_set_u32(w, KEY("block_count"), (uint32_t)sh->n_layer)) ||
        (st = herd_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)sh->n_ff)) ||
        (st = herd_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)sh->n_head)) ||
        (st = herd_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)sh->n_head_kv)) ||
        (st = herd_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)n_vocab)))
        return st;
    snprintf(key, sizeof key, arch->eps_key, a);
    st = herd_gguf_set_f32(w, key, 1e-5f);
    if (!st && sh->head_dim &&
        !(st = herd_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)sh->head_dim)))
        st = herd_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)sh->head_dim);
    if (!st && arch->rope != ROPE_NONE) {
        const int n_rot = sh->n_rot ? sh->n_rot : shape_head_dim(sh);
        if (!(st = herd_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)n_rot)))
            st = herd_gguf_set_f32(w, KEY("rope.freq_base"), sh->rope_base);
    }
    if (!st && arch->alibi) st = herd_gguf_set_f32(w, KEY("attention.max_alibi_bias"), 8.0f);
    if (!st && sh->n_expert &&
        !(st = herd_gguf_set_u32(w, KEY("expert_count"), (uint32_t)sh->n_expert)))
        st = herd_gguf_set_u32(w, KEY("expert_used_count"), (uint32_t)sh->n_expert_used);
    if (!st && sh->n_ff_exp)
        st = herd_gguf_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)sh->n_ff_exp);
    if (!st && x) st = write_extra(w, sh, x);
#undef KEY
    for (int64_t i = 0; i < herd_gguf_n_kv(vocab) && !st; i++) {
        const gguf_kv *kv = herd_gguf_kv_at(vocab, i);
        if (kv->key.len > 10 && !memcmp(kv->key.ptr, "tokenizer.", 10))
            st = herd_gguf_copy_kv(w, kv);
    }
    /* As llama-quantize leaves them: these two last. */
    if (!st && herd_type(ft->default_type)->is_quantized)
        st = herd_gguf_set_u32(w, "general.quantization_version", 2);
    if (!st) st = herd_gguf_set_u32(w, "general.file_type", ft->ftype);
    return st;
}

/* ------------------------------------------------------------ data */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct {
    const synth_tensor *s;
    const herd_type_traits *tt;
    uint8_t *out;
    uint64_t seed;
    int64_t cols, rows;
    size_t rb;
    atomic_int next; /* the next chunk of rows */
    atomic_bool oom;
} fill_job;

#define CHUNK      64   /* rows taken at a time */
#define QUICK_POOL 1024 /* distinct rows per tensor in a quick file */

static void fill_rows(void *arg, int ith, int nth)
{
    (void)ith, (void)nth;
    fill_job *j = arg;
    const float a = 0.02f * 1.7320508f; /* uniform on [-a, a] has std 0.02 */
    float *row = malloc((size_t)j->cols * sizeof(float));
    if (!row) {
        atomic_store(&j->oom, true);
        return;
    }
    for (int64_t c; (c = atomic_fetch_add(&j->next, 1)) * CHUNK < j->rows;) {
        for (int64_t r = c * CHUNK; r < (c + 1) * CHUNK && r < j->rows; r++) {
            uint64_t st = j->seed ^ ((uint64_t)r * 0x2545f4914f6cdd1dull);
            for (int64_t i = 0; i < j->cols; i++) {
                const float u = (float)(splitmix(&st) >> 40) * (2.0f / 16777216.0f) - 1.0f;
                row[i] = j->s->fill == W_NORM ? 1.0f + 5 * a * u : a * u;
            }
            j->tt->from_float_ref(row, j->out + j->rb * (size_t)r, j->cols);
        }
    }
    free(row);
}

/* Llama 3.1's RoPE frequency factors, as its converter computes them from
 * rope_scaling (factor 8, 32 for Llama 3.2; low/high frequency factors 1 and
 * 4, original context 8192): long wavelengths are stretched by the factor,
 * short ones kept, the band between interpolated. */
static void llama3_factors(float *f, int n, float base, int n_rot, double factor)
{
    const double pi = 3.14159265358979323846, lo = 1, hi = 4, orig = 8192;
    for (int i = 0; i < n; i++) {
        const double freq = 1.0 / pow(base, 2.0 * i / n_rot), wavelen = 2 * pi / freq;
        if (wavelen < orig / hi) {
            f[i] = 1.0f;
        } else if (wavelen > orig / lo) {
            f[i] = (float)factor;
        } else {
            const double smooth = (orig / wavelen - lo) / (hi - lo);
            f[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
}

/* Fill one tensor's rows (uniform with std 0.02, or constant) and convert
 * them to its type, on n_threads threads; each row has its own seed. */
static herd_status make_tensor(const synth_shape *sh, const synth_tensor *s, uint8_t *out,
                               uint64_t seed, int n_threads, bool quick)
{
    if (s->fill == W_RAMP_SHORT || s->fill == W_RAMP_LONG) { /* one F32 row */
        float *f = (float *)(void *)out;
        for (int64_t i = 0; i < s->t.ne[0]; i++)
            f[i] = 1.0f + (s->fill == W_RAMP_LONG ? 4.0f : 0.5f) * (float)i / (float)s->t.ne[0];
        return HERD_OK;
    }
    if (s->fill == W_FACTORS) { /* one F32 row */
        llama3_factors((float *)(void *)out, (int)s->t.ne[0], sh->rope_base,
                       sh->n_rot ? sh->n_rot : shape_head_dim(sh),
                       sh->rope_factor > 0 ? sh->rope_factor : 8.0);
        return HERD_OK;
    }
    fill_job j = {.s = s,
                  .tt = herd_type(s->t.type),
                  .out = out,
                  .seed = seed,
                  .cols = s->t.ne[0],
                  .rows = s->t.ne[1] * s->t.ne[2],
                  .rb = herd_row_bytes(s->t.type, s->t.ne[0])};
    if (!j.tt || !j.tt->from_float_ref || j.rb == 0)
        return herd_seterr(HERD_E_UNSUPPORTED, "synth: cannot write %s as %s", s->t.name,
                           herd_type_name(s->t.type));
    const int64_t rows = j.rows;
    if (quick && rows > QUICK_POOL) j.rows = QUICK_POOL;
    atomic_init(&j.next, 0);
    atomic_init(&j.oom, false);
    herd_parallel(n_threads, fill_rows, &j);
    if (atomic_load(&j.oom)) return herd_seterr(HERD_E_NOMEM, "synth: out of memory");
    /* Quick: the rows past the pool repeat its rows in a random order. */
    for (int64_t r = j.rows; r < rows; r++) {
        uint64_t st = seed ^ ((uint64_t)r * 0x2545f4914f6cdd1dull);
        memcpy(out + j.rb * (size_t)r, out + j.rb * (splitmix(&st) % QUICK_POOL), j.rb);
    }
    return HERD_OK;
}

static int cmp_tensor(const void *a, const void *b)
{
    return herd_quant_name_cmp(((const synth_tensor *)a)->t.name,
                               ((const synth_tensor *)b)->t.name);
}

herd_status herd_synth(const herd_synth_params *p)
{
    herd_tensor_init();
    if (!p || !p->shape || !p->type || !p->out_path)
        return herd_seterr(HERD_E_INVALID, "synth: shape, type and output are required");
    /* A name may be several architectures' ("tiny"): --arch picks one. */
    const synth_shape *sh = NULL;
    herd_status st = find_shape(p->shape, p->arch, &sh);
    if (st) return st;
    const herd_arch *arch = herd_arch_find(sh->arch);
    if (!arch) return herd_seterr(HERD_E_INVALID, "synth: no architecture '%s'", sh->arch);
    const herd_ftype_info *ft = herd_ftype_find(p->type);
    if (!ft) return herd_seterr(HERD_E_INVALID, "synth: unknown type '%s'", p->type);
    char vpath[512];
    if (p->vocab_path)
        snprintf(vpath, sizeof vpath, "%s", p->vocab_path);
    else if (strchr(sh->vocab, '/'))
        snprintf(vpath, sizeof vpath, "%s", sh->vocab);
    else
        snprintf(vpath, sizeof vpath, "../shared/vocab/ggml-vocab-%s.gguf", sh->vocab);
    gguf_file *vocab;
    st = herd_gguf_open(vpath, &vocab);
    if (st) return st;
    const gguf_kv *toks = herd_gguf_find_kv(vocab, "tokenizer.ggml.tokens");
    if (!toks || toks->type != GGUF_TYPE_ARRAY || toks->arr_n == 0 || toks->arr_n > INT32_MAX) {
        herd_gguf_close(vocab);
        return herd_seterr(HERD_E_FORMAT, "synth: %s has no vocabulary", vpath);
    }
    const int64_t n_vocab = (int64_t)toks->arr_n;

    tensor_list l = {0};
    const synth_extra *x = extra_of(sh);
    arch_tensors(sh, arch, x, n_vocab, &l);
    gguf_writer *w = herd_gguf_writer_new();
    const char **names = l.oom ? NULL : malloc((size_t)l.n * sizeof *names);
    if (!w || !names) st = herd_seterr(HERD_E_NOMEM, "synth: out of memory");
    size_t max_bytes = 1;
    if (!st) {
        /* llama.cpp's order, in which its quantizer counts attn_v/ffn_down. */
        qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_tensor);
        for (int i = 0; i < l.n; i++) names[i] = l.v[i].t.name;
        herd_quant_plan plan;
        herd_quant_plan_init(&plan, ft, sh->arch, sh->n_layer, sh->n_head, sh->n_head_kv,
                             sh->n_expert, names, l.n);
        st = write_metadata(w, sh, arch, x, ft, n_vocab, vocab);
        for (int i = 0; i < l.n && !st; i++) {
            synth_tensor *s = &l.v[i];
            s->t.type = herd_quant_tensor_type(&plan, s->t.name, (int)s->t.n_dims, s->t.ne[0],
                                               HERD_TYPE_F32);
            const size_t b =
                herd_row_bytes(s->t.type, s->t.ne[0]) * (size_t)(s->t.ne[1] * s->t.ne[2]);
            if (b > max_bytes) max_bytes = b;
            st = herd_gguf_add_tensor_info(w, s->t.name, s->t.type, s->t.n_dims, s->t.ne);
        }
    }
    herd_gguf_out *out = NULL;
    uint8_t *buf = NULL;
    /* Writing the model over its own vocabulary file is surely a mistake. */
    if (!st) st = herd_gguf_out_begin(&out, w, p->out_path, vpath);
    if (!st && !(buf = malloc(max_bytes))) st = herd_seterr(HERD_E_NOMEM, "synth: out of memory");
    const int nt = p->n_threads > 0 ? p->n_threads : 2;
    uint64_t k = p->seed;
    for (int i = 0; i < l.n && !st; i++) {
        const synth_tensor *s = &l.v[i];
        const size_t b = herd_row_bytes(s->t.type, s->t.ne[0]) * (size_t)(s->t.ne[1] * s->t.ne[2]);
        if (p->progress) p->progress(i, l.n, s->t.name, p->user);
        if (!(st = make_tensor(sh, s, buf, splitmix(&k), nt, p->quick)))
            st = herd_gguf_out_write(out, buf, b);
    }
    st = herd_gguf_out_end(out, st);
    free(buf);
    free(names);
    free(l.v);
    herd_gguf_writer_free(w);
    herd_gguf_close(vocab);
    return st;
}
