/*
 * test_predict.c — the probe's file format and the performance model.
 *
 * The probe file is shown broken in every way herd_probe_parse claims to
 * catch (truncated, not JSON, another CPU, another herd, a field missing or
 * out of range). The model is checked against figures worked out by hand
 * here from a probe with round rates: bytes per token over the slower of
 * the type's streamed and in-cache kernel rates for decode, flops over throughput for the prompt,
 * only the used experts of a mixture, and a sliding window capping attention.
 */
#include "catalog/predict.h"
#include "helpers.h"
#include "tensor/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static herd_probe round_probe(void)
{
    herd_probe p;
    memset(&p, 0, sizeof p);
    herd_probe_identity(p.cpu, sizeof p.cpu, p.herd, sizeof p.herd);
    p.max_threads = 2;
    for (int t = 1; t <= 2; t++) p.read_gbs[t] = 10.0 * t, p.call_us[t] = p.sync_us[t] = 1e-9;
    p.attn_ns_decode = p.attn_ns_prompt = 1e-9; /* attention negligible unless asked */
    p.n_types = 2;
    p.types[0].type = HERD_TYPE_Q4_0;
    p.types[1].type = HERD_TYPE_F16;
    for (int t = 1; t <= 2; t++) {
        /* Q4_0 is bound by the bus (streams at 20, computes at 30 in
         * cache); F16 by its arithmetic (10 in cache, below the bus's 20). */
        p.types[0].gemv_gbs[t] = 20.0 * t, p.types[0].gemm_gflops[t] = 100.0 * t;
        p.types[0].gemv_cache_gbs[t] = 30.0 * t;
        p.types[1].gemv_gbs[t] = 10.0 * t, p.types[1].gemm_gflops[t] = 50.0 * t;
        p.types[1].gemv_cache_gbs[t] = 10.0 * t;
    }
    return p;
}

static bool parses(const char *text)
{
    herd_probe q;
    return herd_probe_parse(text, strlen(text), &q) == HERD_OK;
}

/* text with the first occurrence of from replaced by to (malloc'ed). */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at) return NULL;
    char *out = malloc(strlen(text) + strlen(to) + 1);
    if (!out) return NULL;
    size_t k = (size_t)(at - text);
    memcpy(out, text, k);
    strcpy(out + k, to);
    strcat(out, at + strlen(from));
    return out;
}

static void test_probe_file(void)
{
    herd_probe p = round_probe(), back;
    char *text = herd_probe_json(&p);
    CHECK(text != NULL);
    if (!text) return;
    CHECK(herd_probe_parse(text, strlen(text), &back) == HERD_OK);
    CHECK(back.max_threads == 2 && back.n_types == 2 && back.types[1].type == HERD_TYPE_F16);
    CHECK(back.types[0].gemv_gbs[2] == 40.0 && back.read_gbs[1] == 10.0);
    CHECK(back.types[0].gemv_cache_gbs[2] == 60.0);
    /* Truncated anywhere: refused. */
    for (size_t n = 0; n < strlen(text); n += 7)
        CHECKF(herd_probe_parse(text, n, &back) != HERD_OK, "cut at %zu", n);
    CHECK(!parses("") && !parses("[]") && !parses("{}") && !parses("null"));
    /* Another CPU, another herd: refused, saying which. */
    char cpu[160], *bad;
    snprintf(cpu, sizeof cpu, "\"cpu\": \"%s\"", p.cpu);
    bad = replace(text, cpu, "\"cpu\": \"Other CPU, 96 cores\"");
    CHECK(bad && herd_probe_parse(bad, strlen(bad), &back) == HERD_E_INVALID &&
          strstr(herd_errmsg(), "another CPU (Other CPU, 96 cores)"));
    free(bad);
    char herd[128];
    snprintf(herd, sizeof herd, "\"herd\": \"%s\"", p.herd);
    bad = replace(text, herd, "\"herd\": \"herd 0.1 scalar probe 1\"");
    CHECK(bad && herd_probe_parse(bad, strlen(bad), &back) == HERD_E_INVALID &&
          strstr(herd_errmsg(), "another herd"));
    free(bad);
    /* A figure out of range, a field missing, an unknown type, another schema. */
    static const char *const breaks[][2] = {
        {"\"schema\": 4", "\"schema\": 3"},
        {"\"gemv_cache_gbs\"", "\"gemv_cache_gbz\""},
        {"\"sync_us\"", "\"sync_uz\""},
        {"\"max_threads\": 2", "\"max_threads\": 3"},
        {"\"max_threads\": 2", "\"max_threads\": 0"},
        {"\"type\": \"F16\"", "\"type\": \"F17\""},
        {"\"read_gbs\"", "\"read_gbz\""},
        {"\"attn_ns_decode\"", "\"attn_ns_decodf\""},
        {"\"gemv_gbs\": [\n        20.0", "\"gemv_gbs\": [\n        -20.0"},
        {"\"types\"", "\"typez\""},
    };
    for (size_t i = 0; i < sizeof breaks / sizeof breaks[0]; i++) {
        bad = replace(text, breaks[i][0], breaks[i][1]);
        CHECKF(bad != NULL, "case %zu: '%s' not in the probe JSON", i, breaks[i][0]);
        if (bad) CHECKF(!parses(bad), "case %zu accepted", i);
        free(bad);
    }
    free(text);
}

static const herd_shape LLAMA2_7B = {.n_layer = 32,
                                     .n_embd = 4096,
                                     .n_head = 32,
                                     .n_head_kv = 32,
                                     .head_dim = 128,
                                     .n_ff = 11008,
                                     .n_vocab = 32000};

static bool near(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fabs(b);
}

static void test_model(void)
{
    herd_probe p = round_probe();
    herd_prediction pr;
    /* Llama 2 7B: 32 x (4 x 4096^2 + 3 x 4096 x 11008) + 32000 x 4096 weights
     * in the products = 6,607,077,376. */
    const double params = 6607077376.0;
    CHECK(near(herd_shape_params(&LLAMA2_7B, true), params, 1e-12));
    CHECK(herd_predict(&p, &LLAMA2_7B, HERD_TYPE_Q4_0, 4.5, 1, 512, 128, 0, &pr) == HERD_OK);
    CHECKF(near(pr.tg, 20e9 / (params * 4.5 / 8), 1e-3), "tg %g", pr.tg);
    /* The prompt: the layers' flops at the batched rate, the output matrix
     * once (the last token) at the one-token rate. */
    const double out = 32000.0 * 4096, flops = 2.0 * 512 * (params - out);
    CHECKF(near(pr.pp, 512 / (flops / 100e9 + out * 4.5 / 8 / 20e9), 1e-3), "pp %g", pr.pp);
    CHECK(pr.threads == 1);
    /* Two threads: the two-thread rates; more than the probe measured: its maximum. */
    herd_prediction p2, p8;
    herd_predict(&p, &LLAMA2_7B, HERD_TYPE_Q4_0, 4.5, 2, 512, 128, 0, &p2);
    herd_predict(&p, &LLAMA2_7B, HERD_TYPE_Q4_0, 4.5, 8, 512, 128, 0, &p8);
    CHECK(near(p2.tg, 2 * pr.tg, 1e-3) && p8.threads == 2 && p8.tg == p2.tg);
    /* A type the probe did not time uses the nearest by bits per weight:
     * Q4_K (4.5) -> Q4_0's rates, BF16 -> F16's. */
    herd_prediction pk, pb, pf;
    herd_predict(&p, &LLAMA2_7B, HERD_TYPE_Q4_K, 4.5, 1, 512, 128, 0, &pk);
    herd_predict(&p, &LLAMA2_7B, HERD_TYPE_BF16, 16, 1, 512, 128, 0, &pb);
    herd_predict(&p, &LLAMA2_7B, HERD_TYPE_F16, 16, 1, 512, 128, 0, &pf);
    CHECK(pk.tg == pr.tg && pb.tg == pf.tg && near(pf.tg, 10e9 / (params * 2), 1e-3));

    /* A mixture: decode reads attention, router, 2 of 8 experts, output. */
    herd_shape moe = LLAMA2_7B;
    moe.n_expert = 8, moe.n_expert_used = 2;
    const double attn = 4.0 * 4096 * 4096, ffn = 3.0 * 4096 * 11008, router = 4096.0 * 8;
    const double active = 32 * (attn + router + 2 * ffn) + 32000.0 * 4096;
    CHECK(near(herd_shape_params(&moe, true), active, 1e-12));
    CHECK(near(herd_shape_params(&moe, false), 32 * (attn + router + 8 * ffn) + 32000.0 * 4096,
               1e-12));
    herd_predict(&p, &moe, HERD_TYPE_Q4_0, 4.5, 1, 512, 128, 0, &pr);
    CHECKF(near(pr.gb_per_token, active * 4.5 / 8 / 1e9, 1e-9), "MoE GB/token %g", pr.gb_per_token);

    /* Attention: with a cost per cached token, deeper is slower; a sliding
     * window stops the slowdown at the window. */
    p.attn_ns_decode = 10;
    herd_shape swa = LLAMA2_7B;
    swa.swa = 4096;
    herd_prediction d1, d2, w1, w2;
    herd_predict(&p, &LLAMA2_7B, HERD_TYPE_Q4_0, 4.5, 1, 0, 0, 4096, &d1);
    herd_predict(&p, &LLAMA2_7B, HERD_TYPE_Q4_0, 4.5, 1, 0, 0, 32768, &d2);
    herd_predict(&p, &swa, HERD_TYPE_Q4_0, 4.5, 1, 0, 0, 4096, &w1);
    herd_predict(&p, &swa, HERD_TYPE_Q4_0, 4.5, 1, 0, 0, 32768, &w2);
    CHECK(d2.tg_depth < d1.tg_depth && w2.tg_depth == w1.tg_depth);
    /* 32 layers x 32 heads x 32769 cells x 10 ns on top of the weights. */
    const double t_tok = params * 4.5 / 8 / 20e9;
    CHECKF(near(d2.tg_depth, 1 / (t_tok + 32.0 * 32 * 32769 * 10e-9), 1e-3), "depth %g",
           d2.tg_depth);

    /* No probe rates or no shape: an error, not a figure. */
    herd_shape empty = {0};
    CHECK(herd_predict(&p, &empty, HERD_TYPE_Q4_0, 4.5, 1, 512, 128, 0, &pr) == HERD_E_INVALID);
    CHECK(herd_predict(NULL, &LLAMA2_7B, HERD_TYPE_Q4_0, 4.5, 1, 512, 128, 0, &pr) ==
          HERD_E_INVALID);
    CHECK(herd_predict(&p, &LLAMA2_7B, HERD_TYPE_Q4_0, 0, 1, 512, 128, 0, &pr) == HERD_E_INVALID);
}

/* One token's product goes at the slower of the kernel streaming from
 * memory and the kernel with its weights in cache. */
static void test_bound(void)
{
    herd_probe p = round_probe();
    /* Q4_0: bound by the bus (streams at 20, computes at 30 in cache). */
    CHECK(herd_predict_gemv_gbs(&p, HERD_TYPE_Q4_0, 1) == 20.0);
    CHECK(herd_predict_gemv_gbs(&p, HERD_TYPE_Q4_0, 2) == 40.0);
    /* F16: 10 either way. */
    CHECK(herd_predict_gemv_gbs(&p, HERD_TYPE_F16, 1) == 10.0);
    /* The plain read loop does not bound a kernel: kernels prefetch better
     * than it reads (the Zen 4 VM: Q4_K streams faster than the loop). */
    p.read_gbs[1] = 5;
    CHECK(herd_predict_gemv_gbs(&p, HERD_TYPE_Q4_0, 1) == 20.0);
    /* A kernel slower in cache than streamed (a noisy stream measurement, or
     * Q4_0 at one thread on Zen 4, bound by its arithmetic) goes at its
     * in-cache rate, and decode with it. */
    p.types[0].gemv_cache_gbs[1] = 15;
    CHECK(herd_predict_gemv_gbs(&p, HERD_TYPE_Q4_0, 1) == 15.0);
    herd_prediction pr;
    CHECK(herd_predict(&p, &LLAMA2_7B, HERD_TYPE_Q4_0, 4.5, 1, 0, 128, 0, &pr) == HERD_OK);
    CHECKF(near(pr.tg, 15e9 / (6607077376.0 * 4.5 / 8), 1e-3), "tg %g", pr.tg);
    /* A type streamed slower than in cache (latency-bound: Q8_0 on the VM)
     * goes at its streamed rate. */
    p.types[1].gemv_gbs[1] = 4, p.types[1].gemv_cache_gbs[1] = 40;
    CHECK(herd_predict_gemv_gbs(&p, HERD_TYPE_F16, 1) == 4.0);
    /* Threads outside the probe: no rate. */
    CHECK(herd_predict_gemv_gbs(&p, HERD_TYPE_Q4_0, 3) == 0 &&
          herd_predict_gemv_gbs(&p, HERD_TYPE_Q4_0, 0) == 0);
}

/* Bytes of a mix, and of the groups of one type. */
static double mix_bytes(const herd_weight_mix *mx, int type)
{
    double b = 0;
    for (int i = 0; i < mx->n; i++)
        if (type < 0 || mx->g[i].type == (uint32_t)type) b += mx->g[i].bytes;
    return b;
}

static void test_mix(void)
{
    herd_weight_mix mx;
    /* Llama 2 7B as Q4_K_M: llama-quantize keeps the output and some attn_v
     * and ffn_down tensors in Q6_K. With the token embedding (Q4_K, not read
     * by a product) the file is TheBloke's llama-2-7b.Q4_K_M.gguf: 4.08 GB. */
    CHECK(herd_weight_mix_of_ftype(&LLAMA2_7B, "llama", "Q4_K_M", &mx) == HERD_OK);
    const double embd = 32000.0 * 4096 / 256 * 144;
    CHECKF(near(mix_bytes(&mx, -1) + embd, 4.08e9, 0.01), "Q4_K_M bytes %g",
           mix_bytes(&mx, -1) + embd);
    CHECK(mix_bytes(&mx, HERD_TYPE_Q6_K) > 0.15 * mix_bytes(&mx, -1));
    CHECK(mix_bytes(&mx, HERD_TYPE_Q4_K) + mix_bytes(&mx, HERD_TYPE_Q6_K) == mix_bytes(&mx, -1));
    CHECK(mx.products == 32 * 7 + 1);
    /* Q4_0: the layers Q4_0, the output Q6_K (3.83 GB with the embedding). */
    CHECK(herd_weight_mix_of_ftype(&LLAMA2_7B, "llama", "q4_0", &mx) == HERD_OK);
    CHECK(near(mix_bytes(&mx, HERD_TYPE_Q6_K), 32000.0 * 4096 / 256 * 210, 1e-12));
    CHECKF(near(mix_bytes(&mx, -1) + 32000.0 * 4096 / 32 * 18, 3.83e9, 0.01), "Q4_0 bytes %g",
           mix_bytes(&mx, -1));
    /* F16: every matrix two bytes a weight. */
    CHECK(herd_weight_mix_of_ftype(&LLAMA2_7B, NULL, "F16", &mx) == HERD_OK);
    CHECK(mx.n == 2 && near(mix_bytes(&mx, HERD_TYPE_F16), 2 * 6607077376.0, 1e-12));
    /* A mixture reads the experts it uses: Mixtral's 2 of 8. */
    herd_shape moe = LLAMA2_7B;
    moe.n_head_kv = 8, moe.n_ff = 14336, moe.n_expert = 8, moe.n_expert_used = 2;
    CHECK(herd_weight_mix_of_ftype(&moe, "llama", "f16", &mx) == HERD_OK);
    double params = 0;
    for (int i = 0; i < mx.n; i++) params += mx.g[i].params;
    CHECK(near(params, herd_shape_params(&moe, true), 1e-12));
    CHECK(mx.products == 32 * (4 + 1 + 3 * 2) + 1);
    CHECK(herd_weight_mix_of_ftype(&LLAMA2_7B, "llama", "q9_9", &mx) == HERD_E_INVALID);

    /* The prediction from a mix: each type's bytes at its own rate, and the
     * fixed cost of the products and the layers' attention dispatch. */
    herd_probe p = round_probe();
    p.call_us[1] = 2, p.sync_us[1] = 3;
    herd_weight_mix two = {.n = 2, .products = 10};
    two.g[0] = (herd_mix_group){.type = HERD_TYPE_Q4_0, .params = 8e9, .bytes = 4.5e9};
    two.g[1] = (herd_mix_group){.type = HERD_TYPE_F16, .params = 1e8, .bytes = 2e8, .output = true};
    herd_prediction pr;
    CHECK(herd_predict_mix(&p, &LLAMA2_7B, &two, 1, 512, 1, 0, &pr) == HERD_OK);
    const double t_tok = 4.5e9 / 20e9 + 2e8 / 10e9 + 10 * 2e-6 + 32 * 3e-6;
    CHECKF(near(pr.tg, 1 / t_tok, 1e-6), "tg %g", pr.tg);
    const double t_pp = 2 * 512 * 8e9 / 100e9 + 2e8 / 10e9 + 10 * 2e-6 + 32 * 3e-6;
    CHECKF(near(pr.pp, 512 / t_pp, 1e-6), "pp %g", pr.pp);
    herd_weight_mix none = {0};
    CHECK(herd_predict_mix(&p, &LLAMA2_7B, &none, 1, 512, 1, 0, &pr) == HERD_E_INVALID);
}

int main(void)
{
    herd_tensor_init();
    test_probe_file();
    test_model();
    test_bound();
    test_mix();
    return test_report();
}
