/*
 * test_gemma_phi3.c — Gemma 2, Gemma 3 (text) and Phi-3 against llama.cpp.
 *
 * The files are `herd synth --shape tiny` (and phi3's `tiny-separate`, with
 * attn_q/k/v instead of the fused attn_qkv), two seeds each, made here; their
 * Q8_0 and Q4_K_M files are made by herd_quantize. llama.cpp's logits and
 * greedy continuations on the same bytes are stored in tests/data/families
 * (made by make_refs.py there, through the oracle): the FNV-1a hash of every
 * file is stored with them and checked first, so a change to synth or to the
 * quantizer shows as that, not as a parity failure. For each case:
 *
 *   F32: every logit at every position of the 100-token prompt within
 *   thresholds.json's f32 bound (5e-3) and the 16-token greedy continuation
 *   identical; Q8_0 and Q4_K_M: the bounds of the ladder rows (largest logit
 *   difference, mean KL, top-1 agreement);
 *   Gemma: the prompt is longer than the 32-token window, and without the
 *   window (swa 0) herd's logits leave llama.cpp's, so the window is tested;
 *   Phi-3 at -c 512 passes its original context (256) and takes the long
 *   LongRoPE factors, at -c 256 the short ones.
 *
 * Then a generation on the Gemma 2 file: the window layers' cache stays at
 * W - 1 + n_batch cells and the resident memory is flat once the window has
 * filled (the full layers' cache is resident from the start). 1,000 tokens
 * here; 10,000 with HERD_SOAK=1 (`make soak-window`: minutes on this tiny
 * model, whose two full-attention layers read every cached token).
 */
#include "helpers.h"
#include "model/model.h"
#include "quant/quant.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REFS "tests/data/families/"

static double g_f32_max;
/* One thread: these models are too small to pay for waking a pool (whose
 * idle workers spin on a busy machine). */
static herd_model_params g_mp = {.n_threads = 1};
static json_t *g_thresholds;

static char *fnv_of(const char *path, char out[17])
{
    size_t len = 0;
    unsigned char *d = (unsigned char *)test_read_file(path, &len);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; d && i < len; i++) h = (h ^ d[i]) * 0x100000001b3ull;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    free(d);
    return out;
}

static herd_ctx *new_ctx(herd_model *m, int n_ctx, int swa)
{
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = 256;
    cp.swa = swa;
    herd_ctx *c = NULL;
    CHECKF(herd_ctx_new(m, &cp, &c) == HERD_OK, "%s", herd_errmsg());
    return c;
}

/* The prompt as one batch, every position's logits into out[n][V]. */
static bool run_prompt(herd_ctx *c, const int32_t *ids, int n, float *out, int V)
{
    int32_t pos[256];
    int8_t want[256];
    for (int i = 0; i < n; i++) pos[i] = i, want[i] = 1;
    herd_batch b = {.n_tokens = n, .token = ids, .pos = pos, .logits = want};
    herd_status st = herd_decode(c, &b);
    CHECKF(st == HERD_OK, "decode: %s", herd_errmsg());
    if (st) return false;
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * V, herd_get_logits(c, i), (size_t)V * sizeof(float));
    return true;
}

/* The files of one case, made once per (arch, shape, seed, type). */
static bool make_file(json_t *cs, char *path, size_t cap)
{
    const char *arch = json_string_value(json_object_get(cs, "arch")),
               *shape = json_string_value(json_object_get(cs, "shape")),
               *type = json_string_value(json_object_get(cs, "type"));
    const int seed = (int)json_integer_value(json_object_get(cs, "seed"));
    char f32[512], h[17];
    snprintf(f32, sizeof f32, "%s/%s-%s-%d-f32.gguf", test_tmpdir(), arch, shape, seed);
    FILE *f = fopen(f32, "rb");
    if (f) {
        fclose(f);
    } else {
        herd_synth_params sp = {
            .arch = arch, .shape = shape, .type = "f32", .out_path = f32, .seed = (uint64_t)seed};
        CHECKF(herd_synth(&sp) == HERD_OK, "synth %s %s: %s", arch, shape, herd_errmsg());
    }
    CHECKF(!strcmp(fnv_of(f32, h), json_string_value(json_object_get(cs, "synth_fnv"))),
           "%s: herd synth wrote other bytes than the references were made from; "
           "rerun tests/data/families/make_refs.py",
           f32);
    snprintf(path, cap, "%s", f32);
    if (!strcmp(type, "f32")) return true;
    snprintf(path, cap, "%s/%s-%s-%d-%s.gguf", test_tmpdir(), arch, shape, seed, type);
    herd_quantize_params qp = {.in_path = f32, .out_path = path, .type = type};
    CHECKF(herd_quantize(&qp, NULL) == HERD_OK, "quantize %s: %s", path, herd_errmsg());
    const bool same = !strcmp(fnv_of(path, h), json_string_value(json_object_get(cs, "file_fnv")));
    CHECKF(same, "%s: herd quantize differs from llama-quantize's file", path);
    return same;
}

static void check_case(json_t *cs)
{
    const char *name = json_string_value(json_object_get(cs, "name")),
               *type = json_string_value(json_object_get(cs, "type")),
               *arch = json_string_value(json_object_get(cs, "arch"));
    const int V = (int)json_integer_value(json_object_get(cs, "n_vocab")),
              n_ctx = (int)json_integer_value(json_object_get(cs, "n_ctx"));
    json_t *jids = json_object_get(cs, "ids"), *jg = json_object_get(cs, "greedy");
    const int n = (int)json_array_size(jids), n_greedy = (int)json_array_size(jg);
    const double scale = json_number_value(json_object_get(cs, "scale"));
    char path[512];
    snprintf(path, sizeof path, REFS "%s.i16", name);
    size_t len = 0;
    int16_t *q = (int16_t *)test_read_file(path, &len);
    CHECKF(q && len == (size_t)n * V * 2 && n <= 256, "%s: bad reference", path);
    if (!q || len != (size_t)n * V * 2 || n > 256) {
        free(q);
        return;
    }
    float *ref = malloc((size_t)n * V * sizeof *ref), *ours = malloc((size_t)n * V * sizeof *ours);
    for (size_t i = 0; i < (size_t)n * V; i++) ref[i] = (float)(q[i] * scale);
    free(q);
    int32_t ids[256];
    for (int i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(jids, i));

    herd_model *m = NULL;
    herd_ctx *c = NULL;
    if (make_file(cs, path, sizeof path)) {
        CHECKF(herd_model_load(path, &g_mp, &m) == HERD_OK, "%s: %s", name, herd_errmsg());
        if (m) CHECK(herd_n_vocab(m) == V);
    }
    if (m && herd_n_vocab(m) == V && (c = new_ctx(m, n_ctx, -1)) &&
        run_prompt(c, ids, n, ours, V)) {
        double d = 0, kl = 0;
        int agree = 0;
        for (int i = 0; i < n; i++) {
            const float *a = ours + (size_t)i * V, *b = ref + (size_t)i * V;
            for (int j = 0; j < V; j++) d = fmax(d, fabs((double)a[j] - b[j]));
            kl += test_kl_div(b, a, V) / n;
            agree += test_argmax(a, V) == test_argmax(b, V);
        }
        fprintf(stderr, "%-30s max|diff| %.2e  mean KL %.2e  top-1 %d/%d\n", name, d, kl, agree, n);
        if (!strcmp(type, "f32")) {
            CHECKF(d <= g_f32_max, "%s: max |logit diff| %.3e > %.3e", name, d, g_f32_max);
        } else {
            json_t *row = json_object_get(json_object_get(g_thresholds, "ladder"), type);
            const double dmax = json_number_value(json_object_get(row, "max_abs_logit_diff")),
                         klmax = json_number_value(json_object_get(row, "max_mean_kl")),
                         top1 = json_number_value(json_object_get(row, "min_top1"));
            CHECKF(row && d <= dmax, "%s: max |logit diff| %.3e > %.3e", name, d, dmax);
            CHECKF(kl <= klmax, "%s: mean KL %.3e > %.3e", name, kl, klmax);
            CHECKF((double)agree / n >= top1, "%s: top-1 %d/%d < %.2f", name, agree, n, top1);
        }
        /* The greedy continuation, one token per decode (the vector path):
         * identical for F32; for the quantized files, where activations are
         * rounded to 8 bits and near-ties can flip (as in test_parity), the
         * two may part only at a step whose top-2 gap is below twice the
         * largest difference on the prompt, and the check ends there. */
        const bool exact = !strcmp(type, "f32");
        const float *last = ours + (size_t)(n - 1) * V;
        int32_t tok = test_argmax(last, V);
        int same = 0;
        for (int i = 0; i < n_greedy; i++) {
            const int want = (int)json_integer_value(json_array_get(jg, i));
            if (tok != want && !exact && test_top2_gap(last, V) < 2 * d) break;
            CHECKF(tok == want, "%s: greedy token %d is %d, llama.cpp %d", name, i, tok, want);
            if (tok != want) break;
            if (++same == n_greedy) break;
            int32_t pos = n + i;
            herd_batch b = {.n_tokens = 1, .token = &tok, .pos = &pos};
            if (herd_decode(c, &b) != HERD_OK) break;
            last = herd_get_logits(c, 0);
            tok = test_argmax(last, V);
        }
        if (!exact)
            fprintf(stderr, "%-30s greedy: first %d of %d as llama.cpp\n", name, same, n_greedy);
        /* Gemma: the window is what makes these logits llama.cpp's. */
        if (!strcmp(type, "f32") && !strncmp(arch, "gemma", 5)) {
            herd_ctx *nowin = new_ctx(m, n_ctx, 0);
            if (nowin && run_prompt(nowin, ids, n, ours, V)) {
                double dw = 0;
                for (size_t i = 0; i < (size_t)n * V; i++)
                    dw = fmax(dw, fabs((double)ours[i] - ref[i]));
                CHECKF(dw > 10 * g_f32_max, "%s: without the window the logits still match (%.2e)",
                       name, dw);
            }
            herd_ctx_free(nowin);
        }
    }
    herd_ctx_free(c);
    herd_model_free(m);
    free(ref);
    free(ours);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * 4;
}

/* n tokens through the Gemma 2 file (window 32 on layers 0 and 2). */
static void check_window_memory(int n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/gemma2-tiny-1-f32.gguf", test_tmpdir());
    herd_model *m = NULL;
    if (herd_model_load(path, &g_mp, &m)) {
        CHECKF(0, "%s", herd_errmsg());
        return;
    }
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = 10240;
    cp.n_batch = 32;
    herd_ctx *c = NULL;
    CHECKF(herd_ctx_new(m, &cp, &c) == HERD_OK, "%s", herd_errmsg());
    CHECK(c && c->swa == 32 && c->kv_swa.n_cells == 32 - 1 + 32 && c->kv.n_cells == 10240);
    int32_t tok = 1;
    long rss_1k = 0;
    for (int p = 0; c && p < n; p++) {
        herd_batch b = {.n_tokens = 1, .token = &tok, .pos = &p};
        if (herd_decode(c, &b) != HERD_OK) {
            CHECKF(0, "token %d: %s", p, herd_errmsg());
            break;
        }
        tok = test_argmax(herd_get_logits(c, 0), herd_n_vocab(m));
        CHECK(c->kv_swa.n_used <= 32);
        if (p == n / 10) rss_1k = rss_kb();
    }
    long rss_10k = rss_kb();
    fprintf(stderr,
            "gemma2 window 32: %d + %d cells, resident %ld kB after %d tokens, %ld kB "
            "after %d\n",
            c ? c->kv_swa.n_cells : 0, c ? c->kv.n_cells : 0, rss_1k, n / 10, rss_10k, n);
    if (c) CHECK(c->kv.n_used == n);
#ifndef __SANITIZE_ADDRESS__
    CHECK(rss_10k - rss_1k < 1024);
#endif
    herd_ctx_free(c);
    herd_model_free(m);
}

int main(void)
{
    char path[512];
    if (!test_shared("models/tiny/thresholds.json", path, sizeof path)) return 77;
    g_thresholds = json_load_file(path, 0, NULL);
    CHECK(g_thresholds != NULL);
    g_f32_max = json_real_value(
        json_object_get(json_object_get(g_thresholds, "f32"), "max_abs_logit_diff"));
    json_t *refs = json_load_file(REFS "refs.json", 0, NULL);
    json_t *cases = json_object_get(refs, "cases");
    CHECK(json_array_size(cases) >= 20);
    for (size_t i = 0; i < json_array_size(cases); i++) check_case(json_array_get(cases, i));
#ifdef __SANITIZE_ADDRESS__
    check_window_memory(getenv("HERD_SOAK") ? 10000 : 300);
#else
    check_window_memory(getenv("HERD_SOAK") ? 10000 : 1000);
#endif
    json_decref(refs);
    json_decref(g_thresholds);
    return test_report();
}
