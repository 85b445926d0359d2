/*
 * kernels_ref.c — scalar reference kernels: conversions, quantizers and dot
 * products, written to give the same bits as ggml's reference code.
 *
 * Two kinds of "same" matter here. Quantizers that make model files
 * (quantize_row_*_ref in ggml-quants.c) must be reproduced operation for
 * operation, float rounding included, so that `herd quantize` writes what
 * llama-quantize writes. Activation quantizers and dot products must compute
 * what ggml-cpu computes at run time, so that logits match llama.cpp's; for
 * the dot products the integer parts are exact and only the order of the F32
 * additions may differ between this file and the SIMD files.
 *
 * One deliberate difference between the two: ggml's x86 build quantizes
 * activations to Q8_0 with its own AVX routine (id = 127/amax, round half to
 * even), not with quantize_row_q8_0_ref (id = 1/(amax/127), roundf). They
 * disagree on a few elements in a million. herd's matmul follows the x86
 * routine (herd_quantize_q8_0_act, installed as Q8_0's from_float), while
 * from_float_ref stays the file-making reference.
 */
#include "tensor/kernels.h"
#include "tensor/kernels_mm.h"

#include <cpuid.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

herd_gemm_kernel herd_gemm_kernels[HERD_TYPE_COUNT];
bool herd_amx_enabled;

/* ------------------------------------------------------------ F16 / BF16 */

float herd_f16_to_f32(uint16_t h)
{
    return herd_half_to_float(h);
}

/* Round to nearest even; overflow to ±inf; NaN stays NaN, quiet, with the top
 * of its payload — the results of F16C's vcvtps2ph (ggml's x86 conversion). */
uint16_t herd_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff);
    if (ax >= 0x477ff000) return sign | 0x7c00; /* ≥ 65520 rounds to infinity */
    if (ax >= 0x38800000) {                     /* normal half: ≥ 2^-14 */
        uint32_t r = ax - 0x38000000;           /* rebias 127 → 15 */
        r += 0xfff + ((r >> 13) & 1);
        return sign | (uint16_t)(r >> 13);
    }
    /* Subnormal half (units of 2^-24) or zero. */
    uint32_t e = ax >> 23;
    if (e < 102) return sign; /* below 2^-25: rounds to zero */
    uint32_t m = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t k = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (k & 1))) k++;
    return sign | (uint16_t)k;
}

float herd_bf16_to_f32(uint16_t h)
{
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* ggml's GGML_FP32_TO_BF16: NaNs are made quiet, everything else rounds to
 * nearest even (subnormals included, no flushing). */
uint16_t herd_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

static void f32_to_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * 4);
}
static void f32_from_f32(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * 4);
}

static void f16_to_f32_row(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = herd_ld_f16(p + 2 * i);
}

void herd_fp32_to_fp16_row(const float *x, void *y, int64_t n)
{
    uint8_t *p = y;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = herd_f32_to_f16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void bf16_to_f32_row(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = herd_bf16_to_f32(h);
    }
}

void herd_fp32_to_bf16_row(const float *x, void *y, int64_t n)
{
    uint8_t *p = y;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = herd_f32_to_bf16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

/* ------------------------------------------------------------ helpers */

/* ggml's nearest_int: round half to even through the float adder, exact for
 * |v| < 2^22 (all callers stay far below). */
static inline int nearest_int(float v)
{
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline void st_f16(void *p, float f)
{
    uint16_t h = herd_f32_to_f16(f);
    memcpy(p, &h, 2);
}

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------ Q8_0 */

void herd_quantize_q8_0_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / HERD_QK8_0; i++, x += HERD_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < HERD_QK8_0; j++) amax = MAX(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        st_f16(&y[i].d, d);
        for (int j = 0; j < HERD_QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void herd_quantize_q8_0_act(const float *x, void *vy, int64_t n)
{
    herd_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / HERD_QK8_0; i++, x += HERD_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < HERD_QK8_0; j++) amax = MAX(amax, fabsf(x[j]));
        st_f16(&y[i].d, amax / 127.f);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        for (int j = 0; j < HERD_QK8_0; j++) y[i].qs[j] = (int8_t)nearest_int(x[j] * id);
    }
}

static void dequantize_q8_0(const void *vx, float *y, int64_t n)
{
    const herd_block_q8_0 *x = vx;
    for (int64_t i = 0; i < n / HERD_QK8_0; i++) {
        const float d = herd_ld_f16(&x[i].d);
        for (int j = 0; j < HERD_QK8_0; j++) y[i * HERD_QK8_0 + j] = x[i].qs[j] * d;
    }
}

void herd_vec_dot_q8_0_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q8_0 *x = vx, *y = vy;
    float sumf = 0;
    for (int64_t i = 0; i < n / HERD_QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < HERD_QK8_0; j++) sumi += x[i].qs[j] * y[i].qs[j];
        sumf += sumi * (herd_ld_f16(&x[i].d) * herd_ld_f16(&y[i].d));
    }
    *s = sumf;
}

/* ------------------------------------------------------------ Q4_0 */

void herd_quantize_q4_0_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q4_0 *y = vy;
    for (int64_t i = 0; i < n / HERD_QK4_0; i++, x += HERD_QK4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < HERD_QK4_0; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        st_f16(&y[i].d, d);
        for (int j = 0; j < HERD_QK4_0 / 2; j++) {
            const uint8_t q0 = (uint8_t)MIN(15, (int8_t)(x[j] * id + 8.5f));
            const uint8_t q1 = (uint8_t)MIN(15, (int8_t)(x[j + 16] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void dequantize_q4_0(const void *vx, float *y, int64_t n)
{
    const herd_block_q4_0 *x = vx;
    for (int64_t i = 0; i < n / HERD_QK4_0; i++, y += HERD_QK4_0) {
        const float d = herd_ld_f16(&x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = ((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void herd_vec_dot_q4_0_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q4_0 *x = vx;
    const herd_block_q8_0 *y = vy;
    float sumf = 0;
    for (int64_t i = 0; i < n / HERD_QK4_0; i++) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < 16; j++) {
            sumi0 += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            sumi1 += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        /* ggml's order: (sumi·dx)·dy, not sumi·(dx·dy) as for Q8_0. */
        sumf += (sumi0 + sumi1) * herd_ld_f16(&x[i].d) * herd_ld_f16(&y[i].d);
    }
    *s = sumf;
}

/* ------------------------------------------------------------ Q8_K */

void herd_quantize_q8_K_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q8_K *y = vy;
    for (int64_t i = 0; i < n / HERD_QK_K; i++, x += HERD_QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < HERD_QK_K; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        if (!amax) {
            /* ggml leaves bsums unwritten here; zero is what they sum to. */
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < HERD_QK_K; j++)
            y[i].qs[j] = (int8_t)MIN(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < HERD_QK_K / 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += y[i].qs[j * 16 + k];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

static void dequantize_q8_K(const void *vx, float *y, int64_t n)
{
    const herd_block_q8_K *x = vx;
    for (int64_t i = 0; i < n / HERD_QK_K; i++)
        for (int j = 0; j < HERD_QK_K; j++) y[i * HERD_QK_K + j] = x[i].d * x[i].qs[j];
}

/* ------------------------------------------------------------ Q6_K */

/* ggml's make_qx_quants with rmse_type 1 and no importance weights (w = x²):
 * the scale that minimizes the weighted error over 19 candidate iscales.
 * Every expression keeps ggml's association order; the results are bits. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < 1e-15f) { /* GROUP_MAX_EPS: all zero */
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = MAX(-nmax, MIN(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

void herd_quantize_q6_K_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q6_K *y = vy;
    int8_t L[HERD_QK_K];
    float scales[HERD_QK_K / 16];
    for (int64_t i = 0; i < n / HERD_QK_K; i++, x += HERD_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < HERD_QK_K / 16; ib++) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < 1e-15f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        st_f16(&y[i].d, 1 / iscale);
        for (int ib = 0; ib < HERD_QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)MIN(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < HERD_QK_K / 16; j++) {
            const float d = herd_ld_f16(&y[i].d) * y[i].scales[j];
            if (!d) continue; /* keeps make_qx_quants' levels, as ggml does */
            for (int k = 0; k < 16; k++) {
                int l = nearest_int(x[16 * j + k] / d);
                L[16 * j + k] = (int8_t)(MAX(-32, MIN(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < HERD_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l + 0] & 0xf, q2 = L[j + l + 32] & 0xf;
                const uint8_t q3 = L[j + l + 64] & 0xf, q4 = L[j + l + 96] & 0xf;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

static void dequantize_q6_K(const void *vx, float *y, int64_t n)
{
    const herd_block_q6_K *x = vx;
    for (int64_t i = 0; i < n / HERD_QK_K; i++) {
        const float d = herd_ld_f16(&x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int k = 0; k < HERD_QK_K; k += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

/* ggml_vec_dot_q6_K_q8_K_generic: exact integer sums per super-block, scaled
 * into eight F32 lanes that are added at the end. */
void herd_vec_dot_q6_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q6_K *x = vx;
    const herd_block_q8_K *y = vy;
    int8_t aux8[HERD_QK_K];
    float sums[8] = {0};
    for (int64_t i = 0; i < n / HERD_QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        int8_t *a = aux8;
        for (int j = 0; j < HERD_QK_K; j += 128, a += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                a[l + 0] = (int8_t)(((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32);
                a[l + 32] = (int8_t)(((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32);
                a[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
                a[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
            }
        }
        int32_t aux32[8] = {0};
        const int8_t *q8 = y[i].qs;
        a = aux8;
        for (int j = 0; j < HERD_QK_K / 16; j++) {
            const int scale = x[i].scales[j];
            for (int h = 0; h < 2; h++, q8 += 8, a += 8)
                for (int l = 0; l < 8; l++) aux32[l] += scale * (q8[l] * a[l]);
        }
        const float d = herd_ld_f16(&x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
    }
    float sumf = 0;
    for (int l = 0; l < 8; l++) sumf += sums[l];
    *s = sumf;
}

/* ------------------------------------------------------------ float dots */

/* The scalar ggml_vec_dot_{f32,f16,bf16}: products in F32 (exact for F16 and
 * BF16 inputs), summed in double (ggml_float). */
void herd_vec_dot_f32_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const float *x = vx, *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

void herd_vec_dot_f16_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const uint8_t *x = vx, *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(herd_ld_f16(x + 2 * i) * herd_ld_f16(y + 2 * i));
    *s = (float)sum;
}

void herd_vec_dot_bf16_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const uint8_t *x = vx, *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t a, b;
        memcpy(&a, x + 2 * i, 2);
        memcpy(&b, y + 2 * i, 2);
        sum += (double)(herd_bf16_to_f32(a) * herd_bf16_to_f32(b));
    }
    *s = (float)sum;
}

/* ------------------------------------------------------------ install */

static void set(herd_type_traits *t, herd_to_float_fn to, herd_from_float_fn from,
                herd_from_float_fn from_ref, uint32_t vdt, herd_vec_dot_fn dot)
{
    t->to_float = to;
    t->from_float = from;
    t->from_float_ref = from_ref;
    t->vec_dot_type = vdt;
    t->vec_dot = dot;
    t->vec_dot_ref = dot;
}

void herd_kernels_install_ref(herd_type_traits *traits)
{
    set(&traits[HERD_TYPE_F32], f32_to_f32, f32_from_f32, f32_from_f32, HERD_TYPE_F32,
        herd_vec_dot_f32_ref);
    set(&traits[HERD_TYPE_F16], f16_to_f32_row, herd_fp32_to_fp16_row, herd_fp32_to_fp16_row,
        HERD_TYPE_F16, herd_vec_dot_f16_ref);
    set(&traits[HERD_TYPE_BF16], bf16_to_f32_row, herd_fp32_to_bf16_row, herd_fp32_to_bf16_row,
        HERD_TYPE_BF16, herd_vec_dot_bf16_ref);
    set(&traits[HERD_TYPE_Q8_0], dequantize_q8_0, herd_quantize_q8_0_act, herd_quantize_q8_0_ref,
        HERD_TYPE_Q8_0, herd_vec_dot_q8_0_ref);
    set(&traits[HERD_TYPE_Q4_0], dequantize_q4_0, herd_quantize_q4_0_ref, herd_quantize_q4_0_ref,
        HERD_TYPE_Q8_0, herd_vec_dot_q4_0_ref);
    set(&traits[HERD_TYPE_Q6_K], dequantize_q6_K, herd_quantize_q6_K_ref, herd_quantize_q6_K_ref,
        HERD_TYPE_Q8_K, herd_vec_dot_q6_K_ref);
    /* Q8_K is only ever an activation type: no weight dot product. */
    set(&traits[HERD_TYPE_Q8_K], dequantize_q8_K, herd_quantize_q8_K_ref, herd_quantize_q8_K_ref,
        HERD_TYPE_Q8_K, NULL);
    herd_kernels_install_legacy_ref(traits);
    herd_kernels_install_kquants_ref(traits);
}

/* F16C (CPUID leaf 1, ECX bit 29): gcc's __builtin_cpu_supports knows it,
 * clang 14's (the fuzz build's compiler) does not. */
static bool cpu_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* AVX-VNNI (VEX-encoded vpdpbusd): CPUID leaf 7, subleaf 1, EAX bit 4. Read
 * directly, as clang 14 does not know the name "avxvnni". */
static bool cpu_avxvnni(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4));
}

/* The kernel levels, lowest first, by the names HERD_SIMD takes. */
static const char *const level_names[HERD_SIMD_N] = {"scalar", "avx2", "avx512", "amx"};
static const char *const level_shown[HERD_SIMD_N] = {"SIMD", "AVX2", "AVX-512 (VNNI)", "AMX"};

int herd_simd_choose(const char *want, int have, char *note, size_t note_cap)
{
    if (note_cap) note[0] = '\0';
    if (!want || !*want) return have;
    for (int l = 0; l < HERD_SIMD_N; l++) {
        if (strcmp(want, level_names[l]) != 0) continue;
        if (l <= have) return l;
        snprintf(note, note_cap, "HERD_SIMD=%s: this CPU has no %s; using %s", want, level_shown[l],
                 level_names[have]);
        return have;
    }
    snprintf(note, note_cap,
             "HERD_SIMD=%.40s: unknown (accepted: scalar, avx2, avx512, amx); using %s", want,
             level_names[have]);
    return have;
}

static char simd_note[160];

const char *herd_tensor_simd_note(void)
{
    herd_tensor_init();
    return simd_note[0] ? simd_note : NULL;
}

/* HERD_SIMD=avx2 (or avx512, scalar) caps the level below what the CPU has,
 * so that tests can reach the AVX2 (AVX-512 without AMX) kernels on a
 * machine with more; a level the CPU lacks or an unknown name leaves the
 * best level the CPU has, with a note for the CLI to show. AMX is asked for
 * (a system call) only when the choice may take it. */
const char *herd_kernels_install_simd(herd_type_traits *traits)
{
    __builtin_cpu_init();
    const char *want = getenv("HERD_SIMD");
    const bool has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
                        cpu_f16c();
    const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_f16c();
    const bool may_amx =
        !want || !*want || herd_simd_choose(want, HERD_SIMD_AMX, NULL, 0) == HERD_SIMD_AMX;
    const int have = has512 ? (may_amx && herd_amx_init() ? HERD_SIMD_AMX : HERD_SIMD_AVX512)
                     : has2 ? HERD_SIMD_AVX2
                            : HERD_SIMD_SCALAR;
    const int level = herd_simd_choose(want, have, simd_note, sizeof simd_note);
    if (level >= HERD_SIMD_AVX512) {
        /* The AVX-512 file fills only what it does better; AVX2 the rest. */
        herd_kernels_install_avx2(traits);
        herd_kernels_install_avx512(traits);
        herd_mm_select(&herd_mm_isa_avx512);
        herd_amx_enabled = level == HERD_SIMD_AMX;
    } else if (level == HERD_SIMD_AVX2) {
        herd_kernels_install_avx2(traits);
        if (cpu_avxvnni()) herd_kernels_install_avx2_gemv(traits, true);
        herd_mm_select(cpu_avxvnni() ? &herd_mm_isa_avx2vnni : &herd_mm_isa_avx2);
    }
    return level_names[level];
}
