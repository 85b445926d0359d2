/*
 * synth.c — random-weight models of real shapes (herd synth).
 *
 * Benchmarks need models of real sizes, and none can be downloaded here. A
 * synthetic model has the tensor names, shapes, types and metadata of the real
 * one, so llama.cpp and herd run it with exactly the work of the real model;
 * only the text it produces is gibberish. Weights are uniform with a small
 * standard deviation so activations stay in a sane range; each row has its own
 * seed, so rows can be generated in parallel and the file is reproducible.
 */
#include "gguf/gguf.h"
#include "tensor/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int n_embd, n_ff, n_head, n_head_kv, n_layer, n_vocab, n_ctx;
    float rope_base;
} synth_shape;

static const synth_shape shapes[] = {
    {"tinyllama-1.1b", 2048, 5632, 32, 4, 22, 32000, 2048, 10000.0f},
    {"llama2-7b", 4096, 11008, 32, 32, 32, 32000, 4096, 10000.0f},
};

const char *const *herd_synth_shapes(void)
{
    static const char *names[] = {"tinyllama-1.1b", "llama2-7b", NULL};
    return names;
}

typedef struct {
    const char *name;
    uint32_t matrix, output, embd;
    uint32_t file_type; /* llama.cpp's llama_ftype */
} synth_type;

static const synth_type types[] = {
    {"f32", HERD_TYPE_F32, HERD_TYPE_F32, HERD_TYPE_F32, 0},
    {"f16", HERD_TYPE_F16, HERD_TYPE_F16, HERD_TYPE_F16, 1},
    {"q4_0", HERD_TYPE_Q4_0, HERD_TYPE_Q6_K, HERD_TYPE_Q4_0, 2},
    {"q8_0", HERD_TYPE_Q8_0, HERD_TYPE_Q8_0, HERD_TYPE_Q8_0, 7},
    {"bf16", HERD_TYPE_BF16, HERD_TYPE_BF16, HERD_TYPE_BF16, 32},
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fill a [rows][cols] tensor of `type` with uniform values of std `std` (or
 * the constant `one` when std == 0, for norms) and add it to the writer. */
static herd_status add_tensor(gguf_writer *w, const char *name, uint32_t type, int64_t cols,
                              int64_t rows, float std, uint64_t seed, int n_threads)
{
    const herd_type_traits *tt = herd_type(type);
    size_t rb = herd_row_bytes(type, cols);
    if (!tt || !tt->from_float_ref || rb == 0)
        return herd_seterr(HERD_E_UNSUPPORTED, "synth: cannot write %s as %s", name,
                           herd_type_name(type));
    uint8_t *data = malloc(rb * (size_t)rows);
    if (!data) return herd_seterr(HERD_E_NOMEM, "synth: out of memory for %s", name);
    const float a = std * 1.7320508f; /* uniform on [-a, a] has this std */
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 64)
    for (int64_t r = 0; r < rows; r++) {
        float *row = malloc((size_t)cols * sizeof(float));
        if (!row) continue; /* leaves zeros in a model of random weights */
        uint64_t s = seed ^ ((uint64_t)r * 0x2545f4914f6cdd1dull);
        for (int64_t i = 0; i < cols; i++)
            row[i] = std == 0 ? 1.0f
                              : a * ((float)(splitmix(&s) >> 40) * (2.0f / 16777216.0f) - 1.0f);
        tt->from_float_ref(row, data + rb * (size_t)r, cols);
        free(row);
    }
    int64_t ne[2] = {cols, rows};
    herd_status st = gguf_add_tensor(w, name, type, rows > 1 ? 2 : 1, ne, data, rb * (size_t)rows);
    free(data);
    return st;
}

static herd_status write_metadata(gguf_writer *w, const synth_shape *sh, const synth_type *ty,
                                  const gguf_file *vocab)
{
    char name[128];
    snprintf(name, sizeof name, "synthetic %s %s", sh->name, ty->name);
    herd_status st;
    if ((st = gguf_set_str(w, "general.architecture", "llama")) ||
        (st = gguf_set_str(w, "general.name", name)) ||
        (st = gguf_set_str(w, "general.license", "apache-2.0")) ||
        (st = gguf_set_u32(w, "general.file_type", ty->file_type)) ||
        (st = gguf_set_u32(w, "general.alignment", 32)) ||
        (st = gguf_set_u32(w, "llama.context_length", (uint32_t)sh->n_ctx)) ||
        (st = gguf_set_u32(w, "llama.embedding_length", (uint32_t)sh->n_embd)) ||
        (st = gguf_set_u32(w, "llama.block_count", (uint32_t)sh->n_layer)) ||
        (st = gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)sh->n_ff)) ||
        (st = gguf_set_u32(w, "llama.attention.head_count", (uint32_t)sh->n_head)) ||
        (st = gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)sh->n_head_kv)) ||
        (st = gguf_set_u32(w, "llama.rope.dimension_count", (uint32_t)(sh->n_embd / sh->n_head))) ||
        (st = gguf_set_f32(w, "llama.rope.freq_base", sh->rope_base)) ||
        (st = gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f)))
        return st;
    for (int64_t i = 0; i < gguf_n_kv(vocab); i++) {
        const gguf_kv *kv = gguf_kv_at(vocab, i);
        if (kv->key.len > 10 && !memcmp(kv->key.ptr, "tokenizer.", 10) && (st = gguf_copy_kv(w, kv)))
            return st;
    }
    return HERD_OK;
}

static herd_status write_tensors(gguf_writer *w, const synth_shape *sh, const synth_type *ty,
                                 uint64_t seed, int nt)
{
    const int64_t E = sh->n_embd, F = sh->n_ff, KV = (int64_t)sh->n_embd / sh->n_head * sh->n_head_kv;
    const float std = 0.02f;
    herd_status st;
    uint64_t k = seed;
    if ((st = add_tensor(w, "token_embd.weight", ty->embd, E, sh->n_vocab, std, splitmix(&k), nt)) ||
        (st = add_tensor(w, "output_norm.weight", HERD_TYPE_F32, E, 1, 0, 0, nt)) ||
        (st = add_tensor(w, "output.weight", ty->output, E, sh->n_vocab, std, splitmix(&k), nt)))
        return st;
    for (int il = 0; il < sh->n_layer; il++) {
        struct {
            const char *suffix;
            int64_t cols, rows;
            bool norm;
        } ts[] = {{"attn_norm.weight", E, 1, true},   {"attn_q.weight", E, E, false},
                  {"attn_k.weight", E, KV, false},    {"attn_v.weight", E, KV, false},
                  {"attn_output.weight", E, E, false}, {"ffn_norm.weight", E, 1, true},
                  {"ffn_gate.weight", E, F, false},   {"ffn_up.weight", E, F, false},
                  {"ffn_down.weight", F, E, false}};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s", il, ts[i].suffix);
            if ((st = add_tensor(w, name, ts[i].norm ? HERD_TYPE_F32 : ty->matrix, ts[i].cols,
                                 ts[i].rows, ts[i].norm ? 0 : std, splitmix(&k), nt)))
                return st;
        }
    }
    return HERD_OK;
}

herd_status herd_synth(const herd_synth_params *p)
{
    herd_tensor_init();
    if (!p || !p->shape || !p->type || !p->vocab_path || !p->out_path)
        return herd_seterr(HERD_E_INVALID, "synth: shape, type, vocabulary and output are required");
    if (p->arch && strcmp(p->arch, "llama") != 0)
        return herd_seterr(HERD_E_UNSUPPORTED, "synth: architecture '%s' is not supported yet", p->arch);
    const synth_shape *sh = NULL;
    const synth_type *ty = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, p->shape)) sh = &shapes[i];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(types[i].name, p->type)) ty = &types[i];
    if (!sh) return herd_seterr(HERD_E_INVALID, "synth: unknown shape '%s'", p->shape);
    if (!ty) return herd_seterr(HERD_E_INVALID, "synth: unknown type '%s' (f32, f16, bf16, q8_0, q4_0)", p->type);
    gguf_file *vocab;
    herd_status st = gguf_open(p->vocab_path, &vocab);
    if (st) return st;
    const gguf_kv *toks = gguf_find_kv(vocab, "tokenizer.ggml.tokens");
    if (!toks || toks->type != GGUF_TYPE_ARRAY || toks->arr_n != (uint64_t)sh->n_vocab) {
        gguf_close(vocab);
        return herd_seterr(HERD_E_FORMAT, "synth: %s has no vocabulary of %d tokens", p->vocab_path,
                           sh->n_vocab);
    }
    gguf_writer *w = gguf_writer_new();
    if (!w) st = HERD_E_NOMEM;
    int nt = p->n_threads > 0 ? p->n_threads : 2;
    if (!st) st = write_metadata(w, sh, ty, vocab);
    if (!st) st = write_tensors(w, sh, ty, p->seed, nt);
    if (!st) st = gguf_write_file(w, p->out_path);
    gguf_writer_free(w);
    gguf_close(vocab);
    return st;
}
