/*
 * test_kv_quant.c — KV caches of other types than F16 (-ctk/-ctv: q8_0,
 * q4_0, bf16, and K and V of different types) against llama.cpp's logits
 * with the same cache types (tests/ref/kv, made by make_refs.sh there from
 * llama.cpp's own libllama), at every position of a 100-token prompt on
 * ../shared/models/tiny/ladder-f32.gguf (head size 64, grouped KV heads):
 * fed as one batch and token by token, which for these types are the same
 * path in llama.cpp (its vector flash attention).
 *
 * Also: the cache types' names, the errors for an unknown type and for a
 * head size a quantized type cannot use, and the memory estimate per type.
 */
#include "helpers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LADDER  "models/tiny/ladder-f32.gguf"
#define N_IDS   100
#define N_VOCAB 1024

/* A cache pair, its reference, and the bounds herd must meet against it:
 * thresholds.json's for the ladder are mean KL 1e-4 and every logit within
 * 0.05; herd follows ggml's arithmetic (the Hadamard rotation llama.cpp
 * applies around a quantized cache, the conversions, the vector path), so
 * the bounds here are far tighter. Measured on the Zen 4 (AVX-512) path:
 * q8_0/q8_0 and q4_0/q4_0 3.9e-7, bf16 6.4e-4, q8_0/f16 9.9e-4, f16/q4_0
 * 3.8e-5 (the F16 rounding flips of tiny/README.md's Numerics). */
typedef struct {
    herd_kv_type k, v;
    const char *ref;
    double max_kl, max_diff;
} kv_case;

static const kv_case cases[] = {
    {HERD_KV_Q8_0, HERD_KV_Q8_0, "ladder-f32-q8_0-q8_0", 1e-9, 1e-4},
    {HERD_KV_Q4_0, HERD_KV_Q4_0, "ladder-f32-q4_0-q4_0", 1e-9, 1e-4},
    {HERD_KV_BF16, HERD_KV_BF16, "ladder-f32-bf16-bf16", 1e-7, 3e-3},
    {HERD_KV_Q8_0, HERD_KV_F16, "ladder-f32-q8_0-f16", 1e-7, 3e-3},
    {HERD_KV_F16, HERD_KV_Q4_0, "ladder-f32-f16-q4_0", 1e-7, 1e-3},
};

static int read_ids(int32_t *ids)
{
    char *txt = test_read_file("tests/ref/kv/ids.txt", NULL);
    CHECKF(txt != NULL, "tests/ref/kv/ids.txt is missing");
    int n = 0;
    for (char *s = txt, *end; txt && n < N_IDS; s = end) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        ids[n++] = (int32_t)v;
    }
    free(txt);
    return n;
}

static herd_ctx *new_ctx(herd_model *m, herd_kv_type k, herd_kv_type v, int n_batch)
{
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = 256;
    cp.n_batch = n_batch;
    cp.type_k = k;
    cp.type_v = v;
    herd_ctx *c = NULL;
    CHECKF(herd_ctx_new(m, &cp, &c) == HERD_OK, "%s", herd_errmsg());
    return c;
}

/* herd's logits of the prompt in batches of nb, every position. */
static bool run(herd_model *m, const kv_case *kc, const int32_t *ids, int n, int nb, float *out)
{
    herd_ctx *c = new_ctx(m, kc->k, kc->v, nb);
    if (!c) return false;
    int32_t pos[N_IDS];
    int8_t want[N_IDS];
    for (int i = 0; i < n; i++) pos[i] = i, want[i] = 1;
    bool ok = true;
    for (int s = 0; s < n && ok; s += nb) {
        const int k = n - s < nb ? n - s : nb;
        herd_batch b = {.n_tokens = k, .token = ids + s, .pos = pos + s, .logits = want};
        ok = herd_decode(c, &b) == HERD_OK;
        CHECKF(ok, "decode: %s", herd_errmsg());
        for (int j = 0; ok && j < k; j++)
            memcpy(out + (size_t)(s + j) * N_VOCAB, herd_get_logits(c, j), N_VOCAB * sizeof(float));
    }
    herd_ctx_free(c);
    return ok;
}

static void compare(const kv_case *kc, int nb, const float *ref, const float *got, int n)
{
    double kl = 0, diff = 0;
    int top1 = 0;
    for (int t = 0; t < n; t++) {
        const float *r = ref + (size_t)t * N_VOCAB, *g = got + (size_t)t * N_VOCAB;
        kl += test_kl_div(r, g, N_VOCAB);
        top1 += test_argmax(r, N_VOCAB) == test_argmax(g, N_VOCAB);
        for (int i = 0; i < N_VOCAB; i++) diff = fmax(diff, fabs((double)r[i] - g[i]));
    }
    kl /= n;
    printf("%-22s batch %3d: mean KL %.3g, max |diff| %.3g, top-1 %d/%d\n", kc->ref, nb, kl, diff,
           top1, n);
    CHECKF(kl <= kc->max_kl, "%s batch %d: mean KL %g > %g", kc->ref, nb, kl, kc->max_kl);
    CHECKF(diff <= kc->max_diff, "%s batch %d: max diff %g > %g", kc->ref, nb, diff, kc->max_diff);
    CHECKF(top1 >= (int)(0.9 * n), "%s batch %d: top-1 %d of %d", kc->ref, nb, top1, n);
}

static void test_parity(void)
{
    char path[512];
    if (!test_shared(LADDER, path, sizeof path)) return;
    int32_t ids[N_IDS];
    const int n = read_ids(ids);
    CHECK(n == N_IDS);
    herd_model *m = NULL;
    CHECKF(herd_model_load(path, NULL, &m) == HERD_OK, "%s", herd_errmsg());
    if (!m || n != N_IDS) return;
    float *got = malloc((size_t)n * N_VOCAB * sizeof(float));
    float *f16 = malloc((size_t)n * N_VOCAB * sizeof(float));
    const kv_case plain = {HERD_KV_F16, HERD_KV_F16, "f16", 0, 0};
    CHECK(run(m, &plain, ids, n, n, f16));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const kv_case *kc = &cases[i];
        char rel[256];
        snprintf(rel, sizeof rel, "tests/ref/kv/%s.logits.f32", kc->ref);
        size_t len = 0;
        float *ref = (float *)test_read_file(rel, &len);
        CHECKF(ref && len == (size_t)n * N_VOCAB * sizeof(float), "%s: missing or short", rel);
        if (!ref || len != (size_t)n * N_VOCAB * sizeof(float)) {
            free(ref);
            continue;
        }
        /* The reference must tell the types apart: llama.cpp's logits with
         * this cache differ from herd's F16-cache logits by far more than
         * the bound (else the test could not see a cache written as F16). */
        double apart = 0;
        for (size_t j = 0; j < (size_t)n * N_VOCAB; j++)
            apart = fmax(apart, fabs((double)ref[j] - f16[j]));
        printf("%-22s differs from an F16 cache by up to %.3g\n", kc->ref, apart);
        CHECKF(apart > 4 * kc->max_diff, "%s: the bound %g cannot tell it from an F16 cache",
               kc->ref, kc->max_diff);
        if (run(m, kc, ids, n, n, got)) compare(kc, n, ref, got, n);
        if (run(m, kc, ids, n, 1, got)) compare(kc, 1, ref, got, n);
        free(ref);
    }
    free(got);
    free(f16);
    herd_model_free(m);
}

static void test_names(void)
{
    static const char *names[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
    for (size_t i = 0; i < 5; i++) {
        herd_kv_type t;
        CHECK(herd_kv_type_parse(names[i], &t) == HERD_OK);
        CHECK(herd_kv_type_name(t) && !strcmp(herd_kv_type_name(t), names[i]));
    }
    herd_kv_type t = HERD_KV_F16;
    CHECK(herd_kv_type_parse("Q8_0", &t) == HERD_OK && t == HERD_KV_Q8_0);
    CHECK(herd_kv_type_parse("q5_1", &t) == HERD_E_INVALID);
    CHECKF(strstr(herd_errmsg(), "'q5_1'") && strstr(herd_errmsg(), "f32, f16, bf16, q8_0, q4_0"),
           "%s", herd_errmsg());
    CHECK(herd_kv_type_parse("", &t) == HERD_E_INVALID);
    CHECK(herd_kv_type_parse(NULL, &t) == HERD_E_INVALID);
    CHECK(herd_kv_type_name((herd_kv_type)99) == NULL);
}

/* llama-f32.gguf has heads of 16: a quantized cache cannot hold them. */
static void test_head_size(void)
{
    char path[512];
    if (!test_shared("models/tiny/llama-f32.gguf", path, sizeof path)) return;
    herd_model *m = NULL;
    CHECKF(herd_model_load(path, NULL, &m) == HERD_OK, "%s", herd_errmsg());
    if (!m) return;
    const herd_kv_type bad[] = {HERD_KV_Q8_0, HERD_KV_Q4_0};
    for (int i = 0; i < 2; i++)
        for (int side = 0; side < 2; side++) {
            herd_ctx_params cp = herd_ctx_default_params();
            cp.n_ctx = 64;
            if (side)
                cp.type_v = bad[i];
            else
                cp.type_k = bad[i];
            herd_ctx *c = NULL;
            CHECK(herd_ctx_new(m, &cp, &c) == HERD_E_UNSUPPORTED && c == NULL);
            CHECKF(strstr(herd_errmsg(), herd_kv_type_name(bad[i])) &&
                       strstr(herd_errmsg(), "multiple of 32") &&
                       strstr(herd_errmsg(), "is 16 (accepted: f32, f16, bf16)"),
                   "%s", herd_errmsg());
        }
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = 64;
    cp.type_k = (herd_kv_type)42;
    herd_ctx *c = NULL;
    CHECK(herd_ctx_new(m, &cp, &c) != HERD_OK && c == NULL);
    CHECKF(strstr(herd_errmsg(), "unknown cache type 42"), "%s", herd_errmsg());
    /* BF16 works at any head size; a decode runs. */
    cp.type_k = cp.type_v = HERD_KV_BF16;
    CHECKF(herd_ctx_new(m, &cp, &c) == HERD_OK, "%s", herd_errmsg());
    if (c) {
        int32_t tok[2] = {1, 2}, pos[2] = {0, 1};
        herd_batch b = {.n_tokens = 2, .token = tok, .pos = pos};
        CHECK(herd_decode(c, &b) == HERD_OK && herd_get_logits(c, 1) != NULL);
        herd_ctx_free(c);
    }
    herd_model_free(m);
}

/* The estimate counts each side's row bytes: ladder's KV rows are 128
 * values (2 KV heads of 64): F16 256 bytes, Q8_0 4 blocks of 34 = 136,
 * Q4_0 4 × 18 = 72, F32 512; 2 layers. */
static void test_estimate(void)
{
    char path[512];
    if (!test_shared(LADDER, path, sizeof path)) return;
    herd_model *m = NULL;
    CHECKF(herd_model_load(path, NULL, &m) == HERD_OK, "%s", herd_errmsg());
    if (!m) return;
    const struct {
        herd_kv_type k, v;
        uint64_t row;
    } rows[] = {{HERD_KV_F16, HERD_KV_F16, 256 + 256},  {HERD_KV_Q8_0, HERD_KV_Q8_0, 136 + 136},
                {HERD_KV_Q4_0, HERD_KV_Q4_0, 72 + 72},  {HERD_KV_BF16, HERD_KV_BF16, 256 + 256},
                {HERD_KV_Q8_0, HERD_KV_F16, 136 + 256}, {HERD_KV_F32, HERD_KV_Q4_0, 512 + 72}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        herd_ctx_params cp = herd_ctx_default_params();
        cp.n_ctx = 1024;
        cp.type_k = rows[i].k;
        cp.type_v = rows[i].v;
        herd_mem_estimate e = herd_estimate_memory_ctx(m, &cp);
        CHECKF(e.kv_cache == 2 * 1024 * rows[i].row, "case %zu: %llu", i,
               (unsigned long long)e.kv_cache);
    }
    herd_model_free(m);
}

int main(void)
{
    test_names();
    test_head_size();
    test_estimate();
    test_parity();
    return test_report();
}
