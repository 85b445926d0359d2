/*
 * test_families_bad.c — files of today's families that contradict
 * themselves, built here from `herd synth` tiny files, are refused with the
 * name of what is wrong; and Llama 3.1's frequency factors are really used.
 *
 *   an architecture herd does not run: one line naming it and listing those
 *   it does (library and CLI);
 *   a tensor the loader would not use (an unknown one; rope_freqs in a qwen2
 *   file): refused, naming it;
 *   shapes against metadata: a head size whose heads do not fill attn_q's
 *   rows, a rope_freqs of the wrong length, key and value head sizes that
 *   differ, a sliding window larger than the context, a qwen3moe without
 *   experts, a RoPE scaling herd does not implement (YaRN).
 *
 *   Head size: the KV cache of Mistral Nemo's shape is sized by its own head
 *   size (128), not n_embd / n_head (64).
 *
 *   Factors: with rope_freqs all ones the logits equal, bit for bit, those of
 *   the same file without the tensor; with Llama 3.1's factors they differ.
 */
#include "helpers.h"

#include "gguf/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One edit of a GGUF file: keys set (u32 or string) or dropped, a tensor
 * dropped, one added (F32, 1-D, filled with a value), or one's first
 * dimension changed (1-D F32 only). */
typedef struct {
    const char *drop_key, *drop_key2, *u32_key, *str_key, *str;
    uint32_t u32;
    const char *drop_tensor, *add_tensor, *resize_tensor;
    int64_t n; /* elements of the added or resized tensor */
    float fill;
} edit;

static bool drops(const char *key, const gguf_kv *kv)
{
    return key && kv->key.len == strlen(key) && !memcmp(kv->key.ptr, key, kv->key.len);
}

static bool rewrite(const char *in, const char *out, const edit *e)
{
    gguf_file *f;
    if (herd_gguf_open(in, &f)) return false;
    gguf_writer *w = herd_gguf_writer_new();
    bool ok = w != NULL;
    for (int64_t i = 0; ok && i < herd_gguf_n_kv(f); i++) {
        const gguf_kv *kv = herd_gguf_kv_at(f, i);
        if (drops(e->drop_key, kv) || drops(e->drop_key2, kv)) continue;
        ok = herd_gguf_copy_kv(w, kv) == HERD_OK;
    }
    if (ok && e->u32_key) ok = herd_gguf_set_u32(w, e->u32_key, e->u32) == HERD_OK;
    if (ok && e->str_key) ok = herd_gguf_set_str(w, e->str_key, e->str) == HERD_OK;
    float *fill = malloc((size_t)(e->n > 0 ? e->n : 1) * sizeof(float));
    for (int64_t i = 0; i < e->n; i++) fill[i] = e->fill;
    for (int64_t i = 0; ok && i < herd_gguf_n_tensors(f); i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, i);
        if (e->drop_tensor && !strcmp(t->name_z, e->drop_tensor)) continue;
        if (e->resize_tensor && !strcmp(t->name_z, e->resize_tensor)) {
            int64_t ne[4] = {e->n, 1, 1, 1};
            ok = herd_gguf_add_tensor(w, t->name_z, t->type, 1, ne, fill, (size_t)e->n * 4) ==
                 HERD_OK;
            continue;
        }
        ok = herd_gguf_add_tensor(w, t->name_z, t->type, t->n_dims, t->ne, t->data, t->nbytes) ==
             HERD_OK;
    }
    if (ok && e->add_tensor) {
        int64_t ne[4] = {e->n, 1, 1, 1};
        ok = herd_gguf_add_tensor(w, e->add_tensor, 0 /* F32 */, 1, ne, fill, (size_t)e->n * 4) ==
             HERD_OK;
    }
    if (ok) ok = herd_gguf_write_file(w, out) == HERD_OK;
    free(fill);
    herd_gguf_writer_free(w);
    herd_gguf_close(f);
    CHECKF(ok, "rewrite %s: %s", in, herd_errmsg());
    return ok;
}

static bool synth(const char *arch, const char *shape, const char *out)
{
    herd_synth_params p = {.arch = arch, .shape = shape, .type = "f32", .out_path = out, .seed = 3};
    herd_status st = herd_synth(&p);
    CHECKF(st == HERD_OK, "synth %s %s: %s", arch, shape, herd_errmsg());
    return st == HERD_OK;
}

/* Loading `path` fails with an error that mentions every one of want[]. */
static void refused(const char *what, const char *path, const char *const *want)
{
    herd_model *m = NULL;
    herd_status st = herd_model_load(path, NULL, &m);
    CHECKF(st != HERD_OK, "%s: loaded", what);
    herd_model_free(m);
    if (st == HERD_OK) return;
    const char *msg = herd_errmsg();
    fprintf(stderr, "%-22s %s\n", what, msg);
    CHECKF(!strchr(msg, '\n'), "%s: more than one line", what);
    for (; *want; want++) CHECKF(strstr(msg, *want), "%s: '%s' lacks '%s'", what, msg, *want);
}

#define REFUSED(what, path, ...) refused(what, path, (const char *const[]){__VA_ARGS__, NULL})

/* Logits of ids 1..n at every position, one batch. */
static float *run(const char *path, int n)
{
    herd_model *m = NULL;
    if (herd_model_load(path, NULL, &m)) {
        CHECKF(false, "%s: %s", path, herd_errmsg());
        return NULL;
    }
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = 128;
    herd_ctx *c = NULL;
    CHECK(herd_ctx_new(m, &cp, &c) == HERD_OK);
    const int V = herd_n_vocab(m);
    float *out = malloc((size_t)n * V * sizeof(float));
    int32_t ids[64], pos[64];
    int8_t want[64];
    if (n > 64) n = 64;
    for (int i = 0; i < n; i++) ids[i] = 1 + i * 7 % 500, pos[i] = i, want[i] = 1;
    herd_batch b = {.n_tokens = n, .token = ids, .pos = pos, .logits = want};
    CHECK(c && herd_decode(c, &b) == HERD_OK);
    for (int i = 0; c && i < n; i++)
        memcpy(out + (size_t)i * V, herd_get_logits(c, i), (size_t)V * sizeof(float));
    herd_ctx_free(c);
    herd_model_free(m);
    return out;
}

static void check_factors(const char *dir)
{
    char real[512], ones[512], none[512];
    snprintf(real, sizeof real, "%s/l31.gguf", dir);
    snprintf(ones, sizeof ones, "%s/l31-ones.gguf", dir);
    snprintf(none, sizeof none, "%s/l31-none.gguf", dir);
    if (!synth("llama", "tiny-llama3.1", real)) return;
    const edit e1 = {.resize_tensor = "rope_freqs.weight", .n = 32, .fill = 1.0f};
    const edit e2 = {.drop_tensor = "rope_freqs.weight"};
    if (!rewrite(real, ones, &e1) || !rewrite(real, none, &e2)) return;
    const int n = 60, V = 512;
    float *a = run(real, n), *b = run(ones, n), *c = run(none, n);
    if (a && b && c) {
        double d_ones = 0, d_real = 0;
        for (size_t i = 0; i < (size_t)n * V; i++) {
            d_ones = fmax(d_ones, fabs((double)b[i] - c[i]));
            d_real = fmax(d_real, fabs((double)a[i] - c[i]));
        }
        fprintf(stderr, "factors: all ones vs none %.2e, Llama 3.1's vs none %.2e\n", d_ones,
                d_real);
        CHECK(d_ones == 0.0);
        CHECK(d_real > 1e-4);
    }
    free(a);
    free(b);
    free(c);
}

/* Gemma 2 and Phi-3: a missing post-norm, LongRoPE factors of the wrong
 * length or without their long half, a window pattern that is not a number. */
static void check_gemma_phi3(const char *dir)
{
    char gemma2[512], phi3[512], bad[512];
    snprintf(gemma2, sizeof gemma2, "%s/gemma2.gguf", dir);
    snprintf(phi3, sizeof phi3, "%s/phi3.gguf", dir);
    snprintf(bad, sizeof bad, "%s/bad-gp.gguf", dir);
    if (!synth("gemma2", "tiny", gemma2) || !synth("phi3", "tiny", phi3)) return;
    edit e = {.drop_tensor = "blk.1.post_ffw_norm.weight"};
    if (rewrite(gemma2, bad, &e)) REFUSED("gemma2 post-norm", bad, "blk.1.post_ffw_norm.weight");
    e = (edit){.str_key = "gemma2.attention.sliding_window_pattern", .str = "2"};
    if (rewrite(gemma2, bad, &e)) REFUSED("window pattern", bad, "sliding_window_pattern");
    e = (edit){.resize_tensor = "rope_factors_long.weight", .n = 15, .fill = 1.0f};
    if (rewrite(phi3, bad, &e)) REFUSED("LongRoPE length", bad, "rope_factors_long.weight", "[15,");
    e = (edit){.drop_tensor = "rope_factors_long.weight"};
    if (rewrite(phi3, bad, &e)) REFUSED("short factors alone", bad, "rope_factors_short.weight");
}

int main(void)
{
    char p[512];
    if (!test_shared("models/tiny/gptneox-f32.gguf", p, sizeof p)) return 77;
    const char *dir = test_tmpdir();
    char llama[512], nemo[512], l31[512], qwen2[512], moe[512], bad[512];
    snprintf(llama, sizeof llama, "%s/llama.gguf", dir);
    snprintf(nemo, sizeof nemo, "%s/nemo.gguf", dir);
    snprintf(l31, sizeof l31, "%s/llama31.gguf", dir);
    snprintf(qwen2, sizeof qwen2, "%s/qwen2.gguf", dir);
    snprintf(moe, sizeof moe, "%s/moe.gguf", dir);
    snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
    if (!synth("llama", "tiny", llama) || !synth("llama", "tiny-nemo", nemo) ||
        !synth("llama", "tiny-llama3.1", l31) || !synth("qwen2", "tiny", qwen2) ||
        !synth("qwen3moe", "tiny", moe))
        return test_report();

    edit e = {.str_key = "general.architecture", .str = "gemma9"};
    if (rewrite(llama, bad, &e)) {
        REFUSED("unknown architecture", bad, "'gemma9'", "herd runs:", "llama", "qwen2", "qwen3",
                "qwen3moe");
        /* the CLI: one line on stderr, a non-zero exit */
        char cmd[1200], *out = NULL, *err = NULL;
        snprintf(cmd, sizeof cmd, "%s info %s", test_herd_bin(), bad);
        int rc = test_run(cmd, &out, &err);
        CHECKF(rc != 0 && err && strstr(err, "gemma9") && strchr(err, '\n') == strrchr(err, '\n'),
               "herd info on gemma9: exit %d, stderr '%s'", rc, err ? err : "");
        free(out);
        free(err);
    }
    e = (edit){.add_tensor = "blk.0.ffn_extra.weight", .n = 256};
    if (rewrite(llama, bad, &e)) REFUSED("unused tensor", bad, "blk.0.ffn_extra.weight");
    e = (edit){.add_tensor = "rope_freqs.weight", .n = 32, .fill = 1.0f};
    if (rewrite(qwen2, bad, &e)) REFUSED("rope_freqs in qwen2", bad, "rope_freqs.weight");
    e = (edit){.resize_tensor = "rope_freqs.weight", .n = 31, .fill = 1.0f};
    if (rewrite(l31, bad, &e)) REFUSED("factors' length", bad, "rope_freqs.weight", "[31,");
    /* Nemo's head size 128: 64 would make 4 heads fill 256 of attn_q's 512 rows */
    e = (edit){.drop_key = "llama.attention.value_length",
               .drop_key2 = "llama.rope.dimension_count",
               .u32_key = "llama.attention.key_length",
               .u32 = 64};
    if (rewrite(nemo, bad, &e)) REFUSED("head size x heads", bad, "blk.0.attn_q.weight");
    e = (edit){.u32_key = "llama.attention.value_length", .u32 = 64};
    if (rewrite(nemo, bad, &e)) REFUSED("key/value head sizes", bad, "128", "64");
    e = (edit){.u32_key = "llama.attention.sliding_window", .u32 = 100000};
    if (rewrite(llama, bad, &e))
        REFUSED("window > context", bad, "llama.attention.sliding_window", "100000");
    e = (edit){.drop_key = "qwen3moe.expert_count"};
    if (rewrite(moe, bad, &e)) REFUSED("qwen3moe, no experts", bad, "qwen3moe.expert_count");
    e = (edit){.str_key = "llama.rope.scaling.type", .str = "yarn"};
    if (rewrite(llama, bad, &e)) REFUSED("YaRN", bad, "llama.rope.scaling.type", "yarn");
    check_factors(dir);
    herd_model *m = NULL;
    CHECK(herd_model_load(nemo, NULL, &m) == HERD_OK);
    if (m) { /* 2 layers x 256 cells x (K + V) x 2 KV heads x 128 x F16 */
        herd_mem_estimate est = herd_estimate_memory(m, 256, 64);
        CHECKF(est.kv_cache == 2ull * 256 * 2 * 2 * 128 * 2, "nemo KV cache %llu bytes",
               (unsigned long long)est.kv_cache);
    }
    herd_model_free(m);
    check_gemma_phi3(dir);
    return test_report();
}
