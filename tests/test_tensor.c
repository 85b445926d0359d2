/*
 * test_tensor.c — the tensor kernels: conversions, quantizers, dot products
 * and matmul.
 *
 * Each SIMD kernel is checked against its scalar reference on random data;
 * matmul against a double-precision loop over dequantized rows, for ragged
 * shapes and 1 and 2 threads; the reference quantizers against llama.cpp's
 * own output (the shared ladder-*.gguf files were quantized from ladder-f32
 * by llama_model_quantize, so requantizing the F32 tensors must give the
 * same bytes). The matmul checks run a second time in a child process with
 * HERD_NO_SIMD=1, so the scalar path is covered too.
 */
#include "helpers.h"
#include "tensor/kernels.h"
#include "tensor/kernels_mm.h"
#include "tensor/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static float rng_unit(void)
{
    return (float)((rng_next() >> 40) / 16777216.0);
} /* [0,1) */

/* Roughly normal values with occasional outliers, like activations. */
static float rng_value(void)
{
    float s = rng_unit() + rng_unit() + rng_unit() + rng_unit() - 2.0f;
    if (rng_next() % 97 == 0) s *= 8;
    return s;
}

static void fill(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = rng_value() * scale;
}

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static const uint32_t compute_types[] = {
    HERD_TYPE_F32,  HERD_TYPE_F16,  HERD_TYPE_BF16, HERD_TYPE_Q8_0, HERD_TYPE_Q4_0,
    HERD_TYPE_Q4_1, HERD_TYPE_Q5_0, HERD_TYPE_Q5_1, HERD_TYPE_Q2_K, HERD_TYPE_Q3_K,
    HERD_TYPE_Q4_K, HERD_TYPE_Q5_K, HERD_TYPE_Q6_K};
#define N_COMPUTE (sizeof compute_types / sizeof compute_types[0])

/* ------------------------------------------------------------ F16 / BF16 */

static void test_half(void)
{
    static const struct {
        uint32_t f;
        uint16_t h;
    } to_half[] = {
        {0x00000000, 0x0000}, {0x80000000, 0x8000}, {0x3f800000, 0x3c00}, /* ±0, 1 */
        {0x477fe000, 0x7bff},                                             /* 65504, max half */
        {0x477fefff, 0x7bff},                       /* just below the tie: stays finite */
        {0x477ff000, 0x7c00},                       /* 65520: tie, rounds to even = inf */
        {0x7f800000, 0x7c00}, {0xff800000, 0xfc00}, /* ±inf */
        {0x7fc00000, 0x7e00}, {0xffc00000, 0xfe00}, /* quiet NaN */
        {0x7f800001, 0x7e00},                       /* signalling NaN, payload below half */
        {0x7fa00000, 0x7f00},                       /* NaN payload kept (top bits) and quiet */
        {0x38800000, 0x0400},                       /* 2^-14, smallest normal */
        {0x387fc000, 0x03ff},                       /* largest subnormal */
        {0x387fe000, 0x0400},                       /* its tie with 2^-14: to even */
        {0x33800000, 0x0001},                       /* 2^-24, smallest subnormal */
        {0x33000000, 0x0000},                       /* 2^-25: tie, rounds to even = 0 */
        {0x33000001, 0x0001},                       /* just above the tie */
        {0x33c00000, 0x0002},                       /* 1.5·2^-24: tie, rounds to even = 2 */
        {0x3f801000, 0x3c00},                       /* 1 + 2^-11: tie to even (down) */
        {0x3f803000, 0x3c02},                       /* 1 + 3·2^-11: tie to even (up) */
        {0x3f801001, 0x3c01},                       /* above the tie */
        {0x387ff000, 0x0400},                       /* rounds up from subnormal to normal */
        {0x00000001, 0x0000},                       /* float subnormal */
    };
    for (size_t i = 0; i < sizeof to_half / sizeof to_half[0]; i++) {
        uint16_t h = herd_f32_to_f16(u2f(to_half[i].f));
        CHECKF(h == to_half[i].h, "f32 %08x -> f16 %04x, want %04x", to_half[i].f, h, to_half[i].h);
    }
    /* Half → float is exact: every finite half round-trips, and matches
     * the value computed in double. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = herd_f16_to_f32((uint16_t)h);
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 0x1f) {
            if (m ? !isnan(f) || !(f2u(f) & 0x400000) : !isinf(f)) bad++;
            continue;
        }
        double want = e ? ldexp(1024 + m, (int)e - 25) : ldexp(m, -24);
        if (h & 0x8000) want = -want;
        if (f != (float)want || herd_f32_to_f16(f) != h) bad++;
    }
    CHECKF(bad == 0, "%d halves convert wrongly", bad);

    static const struct {
        uint32_t f;
        uint16_t b;
    } to_bf[] = {
        {0x3f800000, 0x3f80}, {0x80000000, 0x8000}, {0x7f800000, 0x7f80},
        {0xff800000, 0xff80}, {0x3f808000, 0x3f80}, /* tie, even: down */
        {0x3f818000, 0x3f82},                       /* tie, odd: up */
        {0x3f808001, 0x3f81},                       /* above the tie */
        {0x7f7fffff, 0x7f80},                       /* FLT_MAX rounds to inf */
        {0x7f800001, 0x7fc0},                       /* NaN made quiet */
        {0xffa00000, 0xffe0},                       /* negative NaN with payload */
        {0x00018000, 0x0002},                       /* subnormal, not flushed: tie rounds to even */
        {0x00008000, 0x0000},                       /* subnormal tie, even: down */
    };
    for (size_t i = 0; i < sizeof to_bf / sizeof to_bf[0]; i++) {
        uint16_t b = herd_f32_to_bf16(u2f(to_bf[i].f));
        CHECKF(b == to_bf[i].b, "f32 %08x -> bf16 %04x, want %04x", to_bf[i].f, b, to_bf[i].b);
    }
    CHECK(f2u(herd_bf16_to_f32(0x3f81)) == 0x3f810000);
    CHECK(f2u(herd_bf16_to_f32(0x8001)) == 0x80010000);
}

/* ------------------------------------------------------------ round trips */

static void test_roundtrip(void)
{
    const int64_t n = 4096;
    float *x = malloc(n * sizeof *x), *z = malloc(n * sizeof *z);
    void *q = malloc(herd_row_bytes(HERD_TYPE_F32, n));
    static const uint32_t types[] = {HERD_TYPE_F32,  HERD_TYPE_F16,  HERD_TYPE_BF16, HERD_TYPE_Q8_0,
                                     HERD_TYPE_Q4_0, HERD_TYPE_Q6_K, HERD_TYPE_Q8_K, HERD_TYPE_Q4_1,
                                     HERD_TYPE_Q5_0, HERD_TYPE_Q5_1, HERD_TYPE_Q8_1, HERD_TYPE_Q2_K,
                                     HERD_TYPE_Q3_K, HERD_TYPE_Q4_K, HERD_TYPE_Q5_K};
    /* RMS error relative to RMS value: what each format is good for. */
    static const double max_rel_rms[] = {0,    3e-4, 3e-3,  0.012, 0.15, 0.03, 0.03, 0.12,
                                         0.08, 0.06, 0.012, 0.45,  0.25, 0.12, 0.06};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const herd_type_traits *t = herd_type(types[k]);
        fill(x, n, 0.5f);
        x[100] = 0; /* a block with zeros and a block of all zeros */
        memset(x + 1024, 0, 256 * sizeof *x);
        t->from_float_ref(x, q, n);
        t->to_float(q, z, n);
        double se = 0, sx = 0;
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            se += (double)(z[i] - x[i]) * (z[i] - x[i]);
            sx += (double)x[i] * x[i];
            /* Zero is exact in the symmetric formats; the ones with a min
             * (x = d·q + m) only give it back where a block is all zero. */
            const bool has_min = types[k] == HERD_TYPE_Q4_1 || types[k] == HERD_TYPE_Q5_1 ||
                                 types[k] == HERD_TYPE_Q2_K || types[k] == HERD_TYPE_Q4_K ||
                                 types[k] == HERD_TYPE_Q5_K;
            if (x[i] == 0 && z[i] != 0 && (!has_min || (i >= 1024 && i < 1280))) bad++;
        }
        double rel = sqrt(se / sx);
        CHECKF(rel <= max_rel_rms[k], "%s: relative RMS error %g > %g", t->name, rel,
               max_rel_rms[k]);
        CHECKF(bad == 0, "%s: %d zeros do not come back as zero", t->name, bad);
        /* Per-block worst case for the simple scale formats. */
        if (types[k] == HERD_TYPE_Q8_0 || types[k] == HERD_TYPE_Q4_0) {
            int over = 0;
            for (int64_t b = 0; b < n / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
                float lim = types[k] == HERD_TYPE_Q8_0 ? amax / 127 * 0.57f : amax / 8 * 1.01f;
                for (int j = 0; j < 32; j++)
                    if (fabsf(z[b * 32 + j] - x[b * 32 + j]) > lim + 1e-30f) over++;
            }
            CHECKF(over == 0, "%s: %d elements beyond the per-block error bound", t->name, over);
        }
    }
    free(x);
    free(z);
    free(q);
}

/* The fast activation converters must give exactly the reference bits. */
static void test_from_float_exact(void)
{
    const int64_t n = 8192;
    float *x = malloc(n * sizeof *x);
    size_t cap = herd_row_bytes(HERD_TYPE_F32, n);
    uint8_t *a = malloc(cap), *b = malloc(cap);
    int diff_q8 = 0;
    for (int rep = 0; rep < 20; rep++) {
        fill(x, n, rep % 2 ? 1e-3f : 3.0f);
        if (rep == 3) memset(x, 0, 512 * sizeof *x);
        if (rep == 4) x[7] = 1e-39f; /* a subnormal amax */
        if (rep == 5)                /* exact .5 ties after scaling: rounding mode matters */
            for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(rng_next() % 255) - 127) * 0.5f;
        static const uint32_t types[] = {HERD_TYPE_F16, HERD_TYPE_BF16, HERD_TYPE_Q8_0,
                                         HERD_TYPE_Q8_1, HERD_TYPE_Q8_K};
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            const herd_type_traits *t = herd_type(types[k]);
            size_t rb = herd_row_bytes(types[k], n);
            /* Q8_0's and Q8_1's from_float are ggml-cpu's x86 activation
             * quantizers, whose scalar twins are herd_quantize_q8_{0,1}_act;
             * the others have one. */
            herd_from_float_fn ref = types[k] == HERD_TYPE_Q8_0   ? herd_quantize_q8_0_act
                                     : types[k] == HERD_TYPE_Q8_1 ? herd_quantize_q8_1_act
                                                                  : t->from_float_ref;
            /* Odd lengths of whole blocks exercise the SIMD tails. */
            int64_t len = n - (rep % 3) * t->blck_size * (t->blck_size == 1 ? 5 : 1);
            rb = herd_row_bytes(types[k], len);
            memset(a, 0x55, cap);
            memset(b, 0x55, cap);
            t->from_float(x, a, len);
            ref(x, b, len);
            CHECKF(memcmp(a, b, rb) == 0, "%s: from_float differs from the reference (rep %d)",
                   t->name, rep);
        }
        /* The file quantizer and the activation one differ only by rare
         * rounding ties, by one step. */
        herd_quantize_q8_0_ref(x, a, n);
        herd_quantize_q8_0_act(x, b, n);
        const herd_block_q8_0 *qa = (const void *)a, *qb = (const void *)b;
        for (int64_t i = 0; i < n / 32; i++) {
            CHECK(qa[i].d == qb[i].d);
            for (int j = 0; j < 32; j++) {
                int d = qa[i].qs[j] - qb[i].qs[j];
                if (d) diff_q8++;
                if (d < -1 || d > 1) CHECKF(0, "q8_0 ref/act differ by %d", d);
            }
        }
    }
    CHECKF(diff_q8 < 2000, "q8_0 ref and act differ in %d elements", diff_q8);
    free(x);
    free(a);
    free(b);
}

/* ------------------------------------------------------------ vec_dot */

static void test_vec_dot(void)
{
    const int64_t nmax = 8192;
    float *x = malloc(nmax * sizeof *x), *yv = malloc(nmax * sizeof *yv);
    uint8_t *qx = malloc(nmax * 4), *qy = malloc(nmax * 4);
    for (size_t k = 0; k < N_COMPUTE; k++) {
        const herd_type_traits *t = herd_type(compute_types[k]);
        const herd_type_traits *vt = herd_type(t->vec_dot_type);
        const int64_t bs = t->blck_size > vt->blck_size ? t->blck_size : vt->blck_size;
        double worst = 0;
        for (int rep = 0; rep < 200; rep++) {
            /* Lengths: every small count of blocks, then random ones. */
            const int64_t maxblk = nmax / bs;
            int64_t nblk = rep < 40 ? 1 + rep % maxblk : 1 + (int64_t)(rng_next() % maxblk);
            const int64_t n = nblk * bs;
            fill(x, n, 0.3f);
            fill(yv, n, 2.0f);
            t->from_float_ref(x, qx, n);
            vt->from_float(yv, qy, n);
            float s_fast = 0, s_ref = 0;
            t->vec_dot(n, &s_fast, qx, qy);
            t->vec_dot_ref(n, &s_ref, qx, qy);
            /* Scale of the terms: relative to Σ|x·y| the error is the F32
             * summation order only. */
            float *dx = malloc(n * sizeof *dx), *dy = malloc(n * sizeof *dy);
            t->to_float(qx, dx, n);
            vt->to_float(qy, dy, n);
            double mag = 0;
            for (int64_t i = 0; i < n; i++) mag += fabs((double)dx[i] * dy[i]);
            free(dx);
            free(dy);
            double err = fabs((double)s_fast - s_ref) / (mag + 1e-30);
            if (err > worst) worst = err;
            if (err > 1e-5)
                CHECKF(0, "%s n=%lld: fast %.9g ref %.9g (rel %g)", t->name, (long long)n, s_fast,
                       s_ref, err);
        }
        printf("vec_dot %-5s (%s): worst relative difference to reference %.2g\n", t->name,
               herd_tensor_simd_level(), worst);
    }
    free(x);
    free(yv);
    free(qx);
    free(qy);
}

/* ------------------------------------------------------------ matmul */

static double naive_dot(const float *w, const float *a, int64_t n, double *mag)
{
    double s = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)w[i] * a[i];
        m += fabs((double)w[i] * a[i]);
    }
    *mag = m;
    return s;
}

static void test_matmul_case(uint32_t type, int64_t n_in, int64_t n_rows, int64_t n_tok,
                             int n_threads)
{
    const herd_type_traits *t = herd_type(type);
    const herd_type_traits *vt = herd_type(t->vec_dot_type);
    float *wf = malloc(n_rows * n_in * sizeof *wf), *x = malloc(n_tok * n_in * sizeof *x);
    float *y = malloc(n_tok * n_rows * sizeof *y);
    float *wd = malloc(n_in * sizeof *wd), *ad = malloc(n_tok * n_in * sizeof *ad);
    size_t wrb = herd_row_bytes(type, n_in), arb = herd_row_bytes(t->vec_dot_type, n_in);
    uint8_t *w = malloc(wrb * n_rows), *aq = malloc(arb * n_tok);
    size_t ws = herd_matmul_work_size(type, n_in, n_tok);
    void *work = ws ? herd_alloc_aligned(ws) : NULL;

    fill(wf, n_rows * n_in, 0.1f);
    fill(x, n_tok * n_in, 1.0f);
    for (int64_t r = 0; r < n_rows; r++) t->from_float_ref(wf + r * n_in, w + r * wrb, n_in);
    for (int64_t i = 0; i < n_tok * n_rows; i++) y[i] = NAN;
    herd_matmul(w, type, n_in, n_rows, x, n_tok, y, work, n_threads);

    /* The activations as matmul sees them: converted, then expanded. */
    for (int64_t k = 0; k < n_tok; k++) {
        vt->from_float(x + k * n_in, aq + k * arb, n_in);
        vt->to_float(aq + k * arb, ad + k * n_in, n_in);
    }
    int bad_exact = 0, bad_f32 = 0;
    for (int64_t r = 0; r < n_rows; r++) {
        herd_get_row(w, type, n_in, r, wd);
        for (int64_t k = 0; k < n_tok; k++) {
            double mag, mag32;
            const double want = naive_dot(wd, ad + k * n_in, n_in, &mag);
            const double want32 = naive_dot(wd, x + k * n_in, n_in, &mag32);
            const float got = y[k * n_rows + r];
            /* Against the converted activations: only summation order;
             * with Q8_1 also the F16 rounding of its s = d·Σq, which
             * carries each block's min m (|m| ≤ the block's largest
             * weight) into the dot product. */
            double tol_s = 0;
            if (t->vec_dot_type == HERD_TYPE_Q8_1) {
                const float *ak = ad + k * n_in;
                for (int64_t i0 = 0; i0 < n_in; i0 += 32) {
                    double wmax = 0, asum = 0;
                    for (int64_t i = i0; i < i0 + 32; i++) {
                        wmax = fmax(wmax, fabs(wd[i]));
                        asum += fabs(ak[i]);
                    }
                    tol_s += wmax * asum * 0x1p-11;
                }
            }
            if (!(fabs(got - want) <= 2e-6 * mag + tol_s + 1e-30)) {
                if (bad_exact++ < 3)
                    fprintf(stderr, "  %s row %lld tok %lld: got %.9g want %.9g\n", t->name,
                            (long long)r, (long long)k, got, want);
            }
            /* Against F32 activations: the activation rounding as well,
             * bounded element by element from the format's step. */
            double tol = 2e-6 * mag32;
            const float *xa = x + k * n_in;
            for (int64_t i0 = 0; i0 < n_in; i0 += vt->blck_size) {
                float amax = 0;
                for (int64_t i = i0; i < i0 + vt->blck_size; i++) amax = fmaxf(amax, fabsf(xa[i]));
                for (int64_t i = i0; i < i0 + vt->blck_size; i++) {
                    double e = 0;
                    if (vt->is_quantized)
                        e = 0.57 * amax / 127;
                    else if (t->vec_dot_type == HERD_TYPE_F16)
                        e = fabsf(xa[i]) * 0x1p-11;
                    else if (t->vec_dot_type == HERD_TYPE_BF16)
                        e = fabsf(xa[i]) * 0x1p-8;
                    tol += fabs(wd[i]) * e;
                }
            }
            if (!(fabs(got - want32) <= tol + 1e-30)) bad_f32++;
        }
    }
    /* The other thread count gives the same bits. */
    float *y2 = malloc(n_tok * n_rows * sizeof *y2);
    herd_matmul(w, type, n_in, n_rows, x, n_tok, y2, work, 3 - n_threads);
    CHECKF(memcmp(y, y2, n_tok * n_rows * sizeof *y) == 0,
           "matmul %s rows %lld tok %lld: 1 and 2 threads differ", t->name, (long long)n_rows,
           (long long)n_tok);
    free(y2);
    CHECKF(bad_exact == 0 && bad_f32 == 0,
           "matmul %s n_in %lld rows %lld tok %lld threads %d: %d/%d outputs off", t->name,
           (long long)n_in, (long long)n_rows, (long long)n_tok, n_threads, bad_exact, bad_f32);
    free(wf);
    free(x);
    free(y);
    free(wd);
    free(ad);
    free(w);
    free(aq);
    free(work);
}

/* The panel products for prompts without AMX (kernels_mm.c), each ISA's
 * tiles this CPU can run, whichever herd_tensor_init picked: ragged panels
 * (rows not a multiple of 8 or 16), every token tile size, more than one
 * token group (n_in 4096 Q4_0: 160 KB of activations per 32 tokens...). */
static void test_mm_isas(void)
{
    const herd_mm_isa *saved = herd_mm_selected();
    if (!saved) return; /* scalar: herd_matmul never takes this path */
    const herd_mm_isa *isas[3] = {&herd_mm_isa_avx2, NULL, NULL};
    if (__builtin_cpu_supports("avxvnni")) isas[1] = &herd_mm_isa_avx2vnni;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        isas[2] = &herd_mm_isa_avx512;
    static const uint32_t types[] = {HERD_TYPE_Q4_0, HERD_TYPE_Q8_0, HERD_TYPE_Q4_K, HERD_TYPE_Q5_K,
                                     HERD_TYPE_Q6_K, HERD_TYPE_Q2_K, HERD_TYPE_Q3_K};
    for (int i = 0; i < 3; i++) {
        if (!isas[i]) continue;
        herd_mm_select(isas[i]);
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            const bool has = herd_mm_supports(types[k], 512);
            CHECKF(has == (types[k] != HERD_TYPE_Q8_0 || isas[i] != &herd_mm_isa_avx2),
                   "%s: %s supported: %d", isas[i]->name, herd_type_name(types[k]), has);
            test_matmul_case(types[k], 512, 7, 16, 1);
            test_matmul_case(types[k], 512, 40, 31, 2);
            test_matmul_case(types[k], 1024, 172, 33, 2);
        }
        test_matmul_case(HERD_TYPE_Q4_0, 4096, 24, 300, 2);
        /* F16 panels (AVX2 only): rows not a multiple of 16, token counts
         * not a multiple of the 6-token tile, rows of a lone element tail
         * (37), of chunks of 256 with a ragged last one (600, 1000), and of
         * more than one token group (2048 × 140 tokens: 1 MB a group). */
        const bool f16 = herd_mm_supports(HERD_TYPE_F16, 512);
        CHECKF(f16 == (isas[i] != &herd_mm_isa_avx512), "%s: F16 supported: %d", isas[i]->name,
               f16);
        if (f16) {
            test_matmul_case(HERD_TYPE_F16, 37, 7, 16, 1);
            test_matmul_case(HERD_TYPE_F16, 600, 40, 31, 2);
            test_matmul_case(HERD_TYPE_F16, 1000, 172, 33, 2);
            test_matmul_case(HERD_TYPE_F16, 2048, 17, 140, 2);
        }
    }
    herd_mm_select(saved);
}

/* A token's outputs have the same bits in a batch as alone, as in ggml,
 * whose logits do not depend on the batch size: a last-bit difference in a
 * value that lands on an F16 tie in the KV cache grew into a 0.05 logit gap
 * on kjv-stablelm (the AVX-512 Q8_0 tile summed its block pairs in another
 * order than the decode kernel). Row counts give the decode kernel's streams
 * and left-over rows; lengths give odd pair counts and a lone last block. */
static void test_matmul_batch_invariant(uint32_t type, int64_t n_in, int64_t n_rows)
{
    enum { T = 6 };
    const herd_type_traits *t = herd_type(type);
    const size_t wrb = herd_row_bytes(type, n_in);
    float *wf = malloc(n_rows * n_in * sizeof *wf), *x = malloc(T * n_in * sizeof *x);
    float *yb = malloc(T * n_rows * sizeof *yb), *y1 = malloc(n_rows * sizeof *y1);
    uint8_t *w = malloc(wrb * n_rows);
    const size_t ws = herd_matmul_work_size(type, n_in, T);
    void *work = herd_alloc_aligned(ws);
    fill(wf, n_rows * n_in, 0.1f);
    fill(x, T * n_in, 1.0f);
    for (int64_t r = 0; r < n_rows; r++) t->from_float_ref(wf + r * n_in, w + r * wrb, n_in);
    herd_matmul(w, type, n_in, n_rows, x, T, yb, work, 1);
    int bad = 0;
    for (int k = 0; k < T; k++) {
        herd_matmul(w, type, n_in, n_rows, x + k * n_in, 1, y1, work, 1);
        for (int64_t r = 0; r < n_rows; r++) bad += f2u(y1[r]) != f2u(yb[k * n_rows + r]);
    }
    CHECKF(bad == 0, "matmul %s n_in %lld rows %lld: %d of %d outputs differ alone and in a batch",
           t->name, (long long)n_in, (long long)n_rows, bad, (int)(T * n_rows));
    free(wf);
    free(x);
    free(yb);
    free(y1);
    free(w);
    free(work);
}

/* herd_matvec: several one-token products in one dispatch give each output
 * the bits herd_matmul gives it alone. Items as a decoded token's experts
 * have them: gate and up sharing x (one of them another type with the same
 * packing, one with another packing), down products each with their own x,
 * row counts with streams and rows left over, and more items than one
 * dispatch takes (the chunks). */
static void test_matvec(int n_threads)
{
    enum { N = 40, NIN = 512 };
    static const uint32_t types[] = {HERD_TYPE_Q2_K, HERD_TYPE_Q3_K, HERD_TYPE_Q4_K,
                                     HERD_TYPE_Q6_K, HERD_TYPE_Q8_0, HERD_TYPE_F32};
    herd_matvec v[N];
    uint8_t *w[N];
    float *y1[N], *x = malloc(4 * NIN * sizeof *x);
    fill(x, 4 * NIN, 1.0f);
    size_t work1 = 0;
    for (int i = 0; i < N; i++) {
        const uint32_t type = types[(i * 7) % 6];
        const int64_t rows = 1 + (i * 37) % 90, wrb = (int64_t)herd_row_bytes(type, NIN);
        float *wf = malloc(rows * NIN * sizeof *wf);
        fill(wf, rows * NIN, 0.1f);
        w[i] = malloc(wrb * rows);
        for (int64_t r = 0; r < rows; r++)
            herd_type(type)->from_float_ref(wf + r * NIN, w[i] + r * wrb, NIN);
        free(wf);
        y1[i] = malloc(rows * sizeof(float));
        v[i] = (herd_matvec){.w = w[i],
                             .wtype = type,
                             .n_in = NIN,
                             .n_rows = rows,
                             .x = x + (i % 4) * NIN,
                             .y = malloc(rows * sizeof(float))};
        const size_t ws = herd_matmul_work_size(type, NIN, 1);
        if (ws > work1) work1 = ws;
    }
    void *work = herd_alloc_aligned(herd_matvec_work_size(v, N)), *w1 = herd_alloc_aligned(work1);
    herd_matvec_many(v, N, work, n_threads);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        herd_matmul(w[i], v[i].wtype, NIN, v[i].n_rows, v[i].x, 1, y1[i], w1, n_threads);
        bad += memcmp(y1[i], v[i].y, v[i].n_rows * sizeof(float)) != 0;
    }
    CHECKF(bad == 0, "matvec, %d threads: %d of %d products differ from herd_matmul", n_threads,
           bad, N);
    for (int i = 0; i < N; i++) {
        free(w[i]);
        free(y1[i]);
        free(v[i].y);
    }
    free(x);
    free(work);
    free(w1);
}

static void test_matmul(void)
{
    static const int64_t rows[] = {1, 7, 64, 172};
    static const int64_t toks[] = {1, 3, 17, 64};
    for (size_t k = 0; k < N_COMPUTE; k++) {
        const int64_t bs = herd_type(compute_types[k])->blck_size;
        for (size_t i = 0; i < 4; i++)
            for (size_t j = 0; j < 4; j++)
                for (int th = 1; th <= 2; th++) {
                    test_matmul_case(compute_types[k], 512, rows[i], toks[j], th);
                    /* Short rows: three Q8_0 blocks (a pair and a half); for
                     * the float types a length that is no vector multiple. */
                    if (bs == 32 && i == 1)
                        test_matmul_case(compute_types[k], 96, rows[i], toks[j], th);
                    if (bs == 1 && i == 1)
                        test_matmul_case(compute_types[k], 37, rows[i], toks[j], th);
                }
    }
    static const int64_t lens[] = {64, 96, 192, 512, 2048};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        test_matmul_batch_invariant(HERD_TYPE_Q8_0, lens[i], 7);
        test_matmul_batch_invariant(HERD_TYPE_Q8_0, lens[i], 19);
        /* F16 and Q4_0: the decode kernels sum as the tiles (F16 lengths
         * with a masked or zero-padded tail too). */
        test_matmul_batch_invariant(HERD_TYPE_F16, lens[i], 7);
        test_matmul_batch_invariant(HERD_TYPE_F16, lens[i] + 5, 19);
        test_matmul_batch_invariant(HERD_TYPE_Q4_0, lens[i], 7);
        test_matmul_batch_invariant(HERD_TYPE_Q4_0, lens[i], 19);
    }
    /* A shape that takes the threaded paths with real sizes. */
    test_matmul_case(HERD_TYPE_Q4_0, 2048, 256, 9, 2);
    test_matmul_case(HERD_TYPE_Q8_0, 2048, 130, 1, 2);
    test_matmul_case(HERD_TYPE_Q6_K, 1024, 33, 5, 2);
    /* Decode with the streaming kernels: rows in streams and left over. */
    test_matmul_case(HERD_TYPE_Q4_K, 4096, 303, 1, 2);
    test_matmul_case(HERD_TYPE_Q5_K, 1024, 70, 1, 2);
    test_matmul_case(HERD_TYPE_Q6_K, 2048, 131, 1, 2);
    test_matmul_case(HERD_TYPE_F16, 2050, 131, 1, 2);
    test_matmul_case(HERD_TYPE_F16, 1000, 9, 6, 2);
    /* Q2_K and Q3_K (kernels_avx512_gemv_k23.c): a lone super-block with
     * one group of streams and rows left over, then longer rows whose
     * ranges split between the threads. */
    test_matmul_case(HERD_TYPE_Q2_K, 256, 7, 1, 1);
    test_matmul_case(HERD_TYPE_Q3_K, 256, 7, 1, 1);
    test_matmul_case(HERD_TYPE_Q2_K, 4096, 303, 1, 2);
    test_matmul_case(HERD_TYPE_Q3_K, 2048, 131, 1, 2);
    test_matmul_case(HERD_TYPE_Q3_K, 768, 70, 1, 2);
    test_matvec(1);
    test_matvec(2);
    /* Batches for AMX (where there is one): partial token tiles and weight
     * panels, more than one of each. */
    test_matmul_case(HERD_TYPE_Q4_K, 2048, 48, 40, 2);
    test_matmul_case(HERD_TYPE_Q6_K, 512, 33, 20, 2);
    test_matmul_case(HERD_TYPE_Q8_0, 1024, 40, 33, 2);
    test_matmul_case(HERD_TYPE_F16, 1024, 20, 33, 2);
    test_matmul_case(HERD_TYPE_BF16, 512, 17, 16, 1);
}

/* ------------------------------------------------------------ GGUF files */

/* Just enough GGUF to find tensors: this test should not depend on the
 * loader under test elsewhere. */
typedef struct {
    uint8_t *data;
    size_t len, pos;
    bool bad;
} rd;

static uint64_t rd_u(rd *r, int size)
{
    uint64_t v = 0;
    if (r->pos + size > r->len) {
        r->bad = true;
        return 0;
    }
    memcpy(&v, r->data + r->pos, size);
    r->pos += size;
    return v;
}

static void rd_skip_value(rd *r, uint32_t type)
{
    static const int sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
        r->pos += rd_u(r, 8);
    } else if (type == 9) {
        uint32_t et = (uint32_t)rd_u(r, 4);
        uint64_t cnt = rd_u(r, 8);
        for (uint64_t i = 0; i < cnt && !r->bad; i++) rd_skip_value(r, et);
    } else if (type < 13) {
        r->pos += sizes[type];
    } else {
        r->bad = true;
    }
}

typedef struct {
    char name[96];
    uint32_t type;
    int64_t ne0, nrows;
    const uint8_t *data;
} gtensor;

/* Returns the tensors of a GGUF file (NULL on any problem). */
static gtensor *gguf_tensors(uint8_t *buf, size_t len, int *count)
{
    rd r = {buf, len, 0, false};
    if (rd_u(&r, 4) != 0x46554747u) return NULL;
    rd_u(&r, 4);
    uint64_t nt = rd_u(&r, 8), nkv = rd_u(&r, 8);
    uint64_t align = 32;
    for (uint64_t i = 0; i < nkv && !r.bad; i++) {
        uint64_t kl = rd_u(&r, 8);
        bool is_align =
            kl == 17 && r.pos + kl <= len && !memcmp(buf + r.pos, "general.alignment", 17);
        r.pos += kl;
        uint32_t type = (uint32_t)rd_u(&r, 4);
        if (is_align && type == 4)
            align = rd_u(&r, 4);
        else
            rd_skip_value(&r, type);
    }
    gtensor *ts = calloc(nt ? nt : 1, sizeof *ts);
    for (uint64_t i = 0; i < nt && !r.bad; i++) {
        uint64_t nl = rd_u(&r, 8);
        if (nl >= sizeof ts[i].name || r.pos + nl > len) {
            r.bad = true;
            break;
        }
        memcpy(ts[i].name, buf + r.pos, nl);
        r.pos += nl;
        uint32_t nd = (uint32_t)rd_u(&r, 4);
        ts[i].nrows = 1;
        for (uint32_t d = 0; d < nd; d++) {
            int64_t ne = (int64_t)rd_u(&r, 8);
            if (d == 0)
                ts[i].ne0 = ne;
            else
                ts[i].nrows *= ne;
        }
        ts[i].type = (uint32_t)rd_u(&r, 4);
        ts[i].data = (const uint8_t *)(uintptr_t)rd_u(&r, 8); /* offset for now */
    }
    size_t base = (r.pos + align - 1) / align * align;
    for (uint64_t i = 0; i < nt && !r.bad; i++) {
        size_t off = (size_t)(uintptr_t)ts[i].data;
        size_t bytes = herd_row_bytes(ts[i].type, ts[i].ne0) * (size_t)ts[i].nrows;
        if (base + off + bytes > len) r.bad = true;
        ts[i].data = buf + base + off;
    }
    if (r.bad) {
        free(ts);
        return NULL;
    }
    *count = (int)nt;
    return ts;
}

/* Requantize each F32 tensor of ladder-f32 with the reference quantizer of
 * the type llama.cpp chose for it in ladder-<q>, and compare bytes. */
static void test_against_llamacpp(const char *qfile)
{
    char p32[512], pq[512];
    if (!test_shared("models/tiny/ladder-f32.gguf", p32, sizeof p32)) return;
    if (!test_shared(qfile, pq, sizeof pq)) return;
    size_t l32, lq;
    uint8_t *b32 = (uint8_t *)test_read_file(p32, &l32), *bq = (uint8_t *)test_read_file(pq, &lq);
    int n32 = 0, nq = 0, compared = 0;
    gtensor *t32 = b32 ? gguf_tensors(b32, l32, &n32) : NULL;
    gtensor *tq = bq ? gguf_tensors(bq, lq, &nq) : NULL;
    CHECKF(t32 && tq, "cannot parse %s", qfile);
    for (int i = 0; t32 && tq && i < nq; i++) {
        const gtensor *q = &tq[i];
        const herd_type_traits *t = herd_type(q->type);
        if (!t || !t->from_float_ref || q->type == HERD_TYPE_F32) continue;
        const gtensor *f = NULL;
        for (int j = 0; j < n32; j++)
            if (!strcmp(t32[j].name, q->name)) f = &t32[j];
        if (!f || f->type != HERD_TYPE_F32 || f->ne0 != q->ne0 || f->nrows != q->nrows) continue;
        size_t rb = herd_row_bytes(q->type, q->ne0);
        uint8_t *mine = malloc(rb * (size_t)q->nrows);
        for (int64_t r = 0; r < q->nrows; r++)
            t->from_float_ref((const float *)(const void *)(f->data + (size_t)r * q->ne0 * 4),
                              mine + r * rb, q->ne0);
        size_t diff = 0;
        for (size_t k = 0; k < rb * (size_t)q->nrows; k++) diff += mine[k] != q->data[k];
        CHECKF(diff == 0, "%s %s (%s): %zu bytes differ from llama.cpp's", qfile, q->name, t->name,
               diff);
        compared++;
        free(mine);
    }
    printf("%s: %d tensors requantized bit-exactly\n", qfile, compared);
    CHECK(compared > 0);
    free(t32);
    free(tq);
    free(b32);
    free(bq);
}

/* ------------------------------------------------------------ AVX2 decode */

/* The AVX2 decode kernels (kernels_avx2_gemv*.c), with and without AVX-VNNI
 * where the CPU has it, in the HERD_SIMD=avx2 child: every row against the
 * scalar reference (only the F32 summation order may differ) and, bit for
 * bit, against the AVX2 vec_dot, which sums as the small-batch tiles do
 * (F16: its tiles are the gemv's own, vec_dot keeps ggml's order; matmul's
 * batch check below covers it).
 * Row counts give the NS streams (4; F16 3) and rows left over; lengths
 * give the 4-block steps and 1..3 blocks after them, F16 tails of 1..31. */
static void gemv_case(herd_gemv_fn gemv, uint32_t type, int64_t n, int64_t nr, const char *flavor)
{
    const herd_type_traits *t = herd_type(type), *vt = herd_type(t->vec_dot_type);
    const herd_gemm_kernel *k = &herd_gemm_kernels[type];
    const size_t wrb = herd_row_bytes(type, n);
    const size_t pb =
        (size_t)((n + k->gemv_pack_block - 1) / k->gemv_pack_block) * k->gemv_pack_block_bytes;
    float *wf = malloc(n * nr * sizeof *wf), *x = malloc(n * sizeof *x), *s = malloc(nr * 4);
    float *dx = malloc(n * sizeof *dx), *dy = malloc(n * sizeof *dy);
    uint8_t *w = malloc(wrb * nr), *yq = malloc(herd_row_bytes(t->vec_dot_type, n) + 64);
    uint8_t *yp = malloc(pb + 64);
    fill(wf, n * nr, 0.1f);
    fill(x, n, 1.0f);
    for (int64_t r = 0; r < nr; r++) t->from_float_ref(wf + r * n, w + r * wrb, n);
    vt->from_float(x, yq, n);
    vt->to_float(yq, dy, n);
    k->gemv_pack(x, yp, n);
    for (int64_t r = 0; r < nr; r++) s[r] = NAN;
    gemv(n, w, wrb, nr, yp, s);
    int bad = 0, bits = 0;
    for (int64_t r = 0; r < nr; r++) {
        float ref = 0, v = 0;
        t->vec_dot_ref(n, &ref, w + r * wrb, yq);
        t->vec_dot(n, &v, w + r * wrb, yq);
        t->to_float(w + r * wrb, dx, n);
        double mag = 0;
        for (int64_t i = 0; i < n; i++) mag += fabs((double)dx[i] * dy[i]);
        if (!(fabs((double)s[r] - ref) <= 1e-5 * mag + 1e-30) && bad++ < 3)
            fprintf(stderr, "  %s %s n %lld row %lld: gemv %.9g ref %.9g\n", t->name, flavor,
                    (long long)n, (long long)r, s[r], ref);
        bits += type != HERD_TYPE_F16 && f2u(v) != f2u(s[r]);
    }
    CHECKF(bad == 0, "gemv %s (%s) n %lld rows %lld: %d rows off the reference", t->name, flavor,
           (long long)n, (long long)nr, bad);
    CHECKF(bits == 0, "gemv %s (%s) n %lld rows %lld: %d rows differ from vec_dot", t->name, flavor,
           (long long)n, (long long)nr, bits);
    free(wf);
    free(x);
    free(s);
    free(dx);
    free(dy);
    free(w);
    free(yq);
    free(yp);
}

static void test_avx2_gemv(void)
{
    if (strcmp(herd_tensor_simd_level(), "avx2") != 0) return;
    static const uint32_t types[] = {HERD_TYPE_Q4_0, HERD_TYPE_Q8_0, HERD_TYPE_Q4_K, HERD_TYPE_Q6_K,
                                     HERD_TYPE_F16};
    static const int64_t rows[] = {1, 3, 4, 5, 11, 67};
    const bool cpu_vnni = __builtin_cpu_supports("avxvnni");
    for (int v = 0; v <= (int)cpu_vnni; v++) {
        const char *flavor = v ? "avx-vnni" : "avx2";
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            const uint32_t type = types[i];
            herd_gemm_kernel *k = &herd_gemm_kernels[type];
            const herd_gemv_fn installed = k->gemv;
            CHECKF(installed == herd_avx2_gemv(type, cpu_vnni), "gemv %s: not the AVX2 kernel",
                   herd_type_name(type));
            k->gemv = herd_avx2_gemv(type, v);
            const int64_t bs = herd_type(type)->blck_size;
            const int64_t lens_q[] = {32, 64, 96, 128, 160, 2144, 4096};
            const int64_t lens_k[] = {256, 512, 768, 2048};
            const int64_t lens_f[] = {8, 37, 96, 1000, 2050};
            const int64_t *lens = bs == 32 ? lens_q : bs == 256 ? lens_k : lens_f;
            const size_t nl = bs == 32 ? 7 : bs == 256 ? 4 : 5;
            for (size_t l = 0; l < nl; l++)
                for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
                    gemv_case(k->gemv, type, lens[l], rows[r], flavor);
            /* Through matmul: a token alone and in a batch of 6 (tiles). */
            test_matmul_batch_invariant(type, bs == 256 ? 512 : 96, 7);
            test_matmul_batch_invariant(type, bs == 256 ? 1024 : 2050 - 2050 % bs, 19);
            k->gemv = installed;
        }
        printf("gemv (%s): Q4_0 Q8_0 Q4_K Q6_K F16 against the references\n", flavor);
    }
}

/* Run this program again with a different kernel level; its checks count
 * through its exit status. */
static void run_child(const char *argv0, const char *env, const char *level)
{
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s '%s' --kernels-only", env, argv0);
    fflush(stdout);
    int st = test_run(cmd, &out, NULL);
    char want[64];
    snprintf(want, sizeof want, "kernel level: %s", level);
    CHECKF(st == 0 && out && strstr(out, want), "%s run failed (%d): %s", env, st, out ? out : "");
    free(out);
}

/* HERD_SIMD on a CPU without what it names (a CPU without AVX-512 or AMX
 * played through herd_simd_choose's have), an unknown name, a level below
 * the CPU's. */
static void test_simd_choose(void)
{
    char note[160];
    int l = herd_simd_choose("avx512", HERD_SIMD_AVX2, note, sizeof note);
    CHECKF(l == HERD_SIMD_AVX2 && strstr(note, "HERD_SIMD=avx512") && strstr(note, "no AVX-512") &&
               strstr(note, "using avx2") && !strchr(note, '\n'),
           "avx512 on an AVX2 CPU: %d '%s'", l, note);
    l = herd_simd_choose("amx", HERD_SIMD_AVX512, note, sizeof note);
    CHECKF(l == HERD_SIMD_AVX512 && strstr(note, "no AMX") && strstr(note, "using avx512"),
           "amx without AMX: %d '%s'", l, note);
    l = herd_simd_choose("avx2", HERD_SIMD_SCALAR, note, sizeof note);
    CHECKF(l == HERD_SIMD_SCALAR && strstr(note, "using scalar"), "avx2 on no SIMD: %d '%s'", l,
           note);
    l = herd_simd_choose("AVX-9", HERD_SIMD_AVX512, note, sizeof note);
    CHECKF(l == HERD_SIMD_AVX512 && strstr(note, "HERD_SIMD=AVX-9: unknown") &&
               strstr(note, "scalar, avx2, avx512, amx"),
           "unknown name: %d '%s'", l, note);
    static const char *const ok[] = {"scalar", "avx2", "avx512", "amx"};
    for (int w = 0; w < HERD_SIMD_N; w++) {
        l = herd_simd_choose(ok[w], HERD_SIMD_AMX, note, sizeof note);
        CHECKF(l == w && !note[0], "%s on an AMX CPU: %d '%s'", ok[w], l, note);
    }
    l = herd_simd_choose("", HERD_SIMD_AVX2, note, sizeof note);
    CHECKF(l == HERD_SIMD_AVX2 && !note[0], "empty HERD_SIMD: %d '%s'", l, note);
    CHECKF(herd_simd_choose(NULL, HERD_SIMD_AVX512, NULL, 0) == HERD_SIMD_AVX512, "no HERD_SIMD");
    /* The process's own: a note only where HERD_SIMD asked for something else. */
    const char *want = getenv("HERD_SIMD"), *got = herd_tensor_simd_level();
    CHECKF(!herd_tensor_simd_note() || (want && strcmp(want, got) != 0), "note '%s' for %s",
           herd_tensor_simd_note(), got);
}

int main(int argc, char **argv)
{
    test_simd_choose();
    herd_tensor_init();
    printf("kernel level: %s\n", herd_tensor_simd_level());
    if (argc > 1 && !strcmp(argv[1], "--kernels-only")) {
        test_from_float_exact();
        test_vec_dot();
        test_matmul();
        test_mm_isas();
        test_avx2_gemv();
        return test_report();
    }
    test_half();
    test_roundtrip();
    test_from_float_exact();
    test_vec_dot();
    test_matmul();
    test_mm_isas();
    test_avx2_gemv();
    test_against_llamacpp("models/tiny/ladder-q8_0.gguf");
    test_against_llamacpp("models/tiny/ladder-q4_0.gguf");
    test_against_llamacpp("models/tiny/ladder-q6_k.gguf");
    test_against_llamacpp("models/tiny/ladder-q4_1.gguf");
    test_against_llamacpp("models/tiny/ladder-q5_0.gguf");
    test_against_llamacpp("models/tiny/ladder-q5_1.gguf");
    test_against_llamacpp("models/tiny/ladder-q2_k.gguf");
    test_against_llamacpp("models/tiny/ladder-q3_k_m.gguf");
    test_against_llamacpp("models/tiny/ladder-q4_k_m.gguf");
    test_against_llamacpp("models/tiny/ladder-q5_k_m.gguf");
    test_against_llamacpp("models/tiny/ladder-f16.gguf");
    test_against_llamacpp("models/tiny/ladder-bf16.gguf");

    /* The other kernel levels this CPU can run, in child processes. */
    const char *level = herd_tensor_simd_level();
    if (!strcmp(level, "amx")) run_child(argv[0], "HERD_SIMD=avx512", "avx512");
    if (!strcmp(level, "amx") || !strcmp(level, "avx512"))
        run_child(argv[0], "HERD_SIMD=avx2", "avx2");
    if (strcmp(level, "scalar") != 0) run_child(argv[0], "HERD_NO_SIMD=1", "scalar");
    return test_report();
}
