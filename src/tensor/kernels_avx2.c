/*
 * kernels_avx2.c — AVX2/FMA/F16C kernels.
 *
 * The whole file is compiled for AVX2 with a target pragma, so that the
 * library itself needs no -march flag; herd_kernels_install_simd() only calls
 * in here after __builtin_cpu_supports() said yes.
 *
 * Activation converters give exactly the scalar references' bits: they do
 * the same float operations (multiply, then round half to even) lane by lane.
 * FMA contraction cannot change them because they contain no a·b+c. Dot
 * products compute the same exact integer sums as the references and differ
 * only in the order of the F32 additions.
 */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <string.h>

/* Every function below is compiled for these extensions (GCC: target
 * pragma; clang: the same attribute applied to each function). */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include "tensor/kernels_avx2.h"

static inline float bf16(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return herd_bf16_to_f32(h);
}

/* Σ x·y over 32 int8 pairs, as 8 int32 lanes (x made non-negative, its sign
 * moved onto y, for maddubs' unsigned×signed). */
static inline __m256i dot_i8(__m256i x, __m256i y)
{
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* The 32 4-bit quants of a Q4_0 block as bytes 0..15, in element order. */
static inline __m256i q4_bytes(const uint8_t *qs)
{
    const __m128i v = loadu128(qs);
    const __m256i b = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

/* ------------------------------------------------------------ converters */

/* F32 → int8 lanes of one 32-element group, rounded half to even. */
static inline __m256i round_pack32(const float *x, __m256 mul)
{
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x), mul),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8), mul),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16), mul),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 24), mul),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    /* The packs work per 128-bit lane; the permute puts bytes in order. */
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    return _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float amax32(const float *x)
{
    const __m256 nz = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(nz, _mm256_loadu_ps(x));
    m = _mm256_max_ps(m, _mm256_andnot_ps(nz, _mm256_loadu_ps(x + 8)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(nz, _mm256_loadu_ps(x + 16)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(nz, _mm256_loadu_ps(x + 24)));
    __m128 r = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    r = _mm_max_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* ggml-cpu's x86 quantize_row_q8_0 (see herd_quantize_q8_0_act). */
static void quantize_q8_0_avx2(const float *x, void *vy, int64_t n)
{
    herd_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / HERD_QK8_0; i++, x += HERD_QK8_0) {
        const float amax = amax32(x);
        const uint16_t d = _cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT);
        memcpy(&y[i].d, &d, 2);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        _mm256_storeu_si256((__m256i *)y[i].qs, round_pack32(x, _mm256_set1_ps(id)));
    }
}

/* quantize_row_q8_K_ref. The scale comes from the first element of largest
 * magnitude (its sign matters), so the vector max is followed by a search. */
static void quantize_q8_K_avx2(const float *x, void *vy, int64_t n)
{
    herd_block_q8_K *y = vy;
    for (int64_t i = 0; i < n / HERD_QK_K; i++, x += HERD_QK_K) {
        float amax = 0;
        for (int j = 0; j < HERD_QK_K; j += 32) {
            const float a = amax32(x + j);
            if (a > amax) amax = a;
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int jm = 0;
        while (x[jm] != amax && x[jm] != -amax) jm++;
        const float iscale = -127.f / x[jm];
        const __m256 mul = _mm256_set1_ps(iscale);
        for (int j = 0; j < HERD_QK_K; j += 32) {
            const __m256i q = round_pack32(x + j, mul);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), q);
            /* Two group sums of 16: widen to int16 and add pairwise. */
            const __m256i w = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
            const __m256i s4 = _mm256_madd_epi16(w, _mm256_set1_epi16(1)); /* 8 × sum of 4 */
            const __m256i s8 = _mm256_hadd_epi32(s4, s4); /* per lane: s(0..7) s(8..15) … */
            const __m256i s16 = _mm256_hadd_epi32(s8, s8);
            y[i].bsums[j / 16] = (int16_t)_mm256_extract_epi32(s16, 0);
            y[i].bsums[j / 16 + 1] = (int16_t)_mm256_extract_epi32(s16, 4);
        }
        y[i].d = 1 / iscale;
    }
}

static void fp32_to_fp16_avx2(const float *x, void *vy, int64_t n)
{
    uint8_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + 2 * i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    if (i < n) herd_fp32_to_fp16_row(x + i, y + 2 * i, n - i);
}

/* GGML_FP32_TO_BF16 in integer lanes: quiet NaNs, round to nearest even. */
static void fp32_to_bf16_avx2(const float *x, void *vy, int64_t n)
{
    uint8_t *y = vy;
    int64_t i = 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i + 8 * h));
            const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
            const __m256i rnd =
                _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
            const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
            const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
            r[h] = _mm256_blendv_epi8(_mm256_srli_epi32(rnd, 16), q, nan);
        }
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xd8);
        _mm256_storeu_si256((__m256i *)(y + 2 * i), p);
    }
    if (i < n) herd_fp32_to_bf16_row(x + i, y + 2 * i, n - i);
}

/* ------------------------------------------------------------ float dots */

/* Four accumulators of eight, as ggml's GGML_F32_STEP loop, then the same
 * pairwise reduction; tails in double like the scalar code. */
static void vec_dot_f32_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const float *x = vx, *y = vy;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * j), _mm256_loadu_ps(y + i + 8 * j),
                                     acc[j]);
    acc[0] = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    double sum = hsum8(acc[0]);
    for (; i < n; i++) sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

static void vec_dot_f16_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const uint8_t *x = vx, *y = vy;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++) {
            const __m256 a = _mm256_cvtph_ps(loadu128(x + 2 * (i + 8 * j)));
            const __m256 b = _mm256_cvtph_ps(loadu128(y + 2 * (i + 8 * j)));
            acc[j] = _mm256_fmadd_ps(a, b, acc[j]);
        }
    acc[0] = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    double sum = hsum8(acc[0]);
    for (; i < n; i++) sum += (double)(ld_f16(x + 2 * i) * ld_f16(y + 2 * i));
    *s = (float)sum;
}

static inline __m256 bf16x8(const uint8_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
}

static void vec_dot_bf16_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const uint8_t *x = vx, *y = vy;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++)
            acc[j] =
                _mm256_fmadd_ps(bf16x8(x + 2 * (i + 8 * j)), bf16x8(y + 2 * (i + 8 * j)), acc[j]);
    acc[0] = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    double sum = hsum8(acc[0]);
    for (; i < n; i++) sum += (double)(bf16(x + 2 * i) * bf16(y + 2 * i));
    *s = (float)sum;
}

/* ------------------------------------------------------------ quant dots */

static void vec_dot_q8_0_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q8_0 *x = vx, *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / HERD_QK8_0; i++) {
        const __m256 d = _mm256_set1_ps(ld_f16(&x[i].d) * ld_f16(&y[i].d));
        const __m256i p = dot_i8(loadu256(x[i].qs), loadu256(y[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum8(acc);
}

static void vec_dot_q4_0_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q4_0 *x = vx;
    const herd_block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / HERD_QK4_0; i++) {
        const __m256 d = _mm256_set1_ps(ld_f16(&x[i].d) * ld_f16(&y[i].d));
        const __m256i q = _mm256_sub_epi8(q4_bytes(x[i].qs), _mm256_set1_epi8(8));
        const __m256i p = dot_i8(q, loadu256(y[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum8(acc);
}

/* Q4_1 / Q5_1 against Q8_1: unsigned quants times signed activations in
 * maddubs; the min comes in per block as m·s (ggml adds it after the
 * vector sum, and so does this). */
static inline __m256i dot_u8(__m256i u, __m256i y)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
}

/* 0xff in byte j where bit j of the 32-bit little-endian qh is set. */
static inline __m256i bits_to_bytes(const uint8_t *qh)
{
    uint32_t b;
    memcpy(&b, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)b), shuf);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
    return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

static void vec_dot_q4_1_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q4_1 *x = vx;
    const herd_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        summs += ld_f16(&x[i].m) * ld_f16(&y[i].s);
        const __m256 d = _mm256_set1_ps(ld_f16(&x[i].d) * ld_f16(&y[i].d));
        const __m256i p = dot_u8(q4_bytes(x[i].qs), loadu256(y[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum8(acc) + summs;
}

/* Q5_0: nibble | 0xf0 where the fifth bit is clear is nibble − 16 as a
 * signed byte, and nibble + 16 − 16 where it is set. */
static void vec_dot_q5_0_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q5_0 *x = vx;
    const herd_block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256 d = _mm256_set1_ps(ld_f16(&x[i].d) * ld_f16(&y[i].d));
        const __m256i hi =
            _mm256_andnot_si256(bits_to_bytes(x[i].qh), _mm256_set1_epi8((char)0xf0));
        const __m256i q = _mm256_or_si256(q4_bytes(x[i].qs), hi);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(q, loadu256(y[i].qs))), acc);
    }
    *s = hsum8(acc);
}

static void vec_dot_q5_1_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q5_1 *x = vx;
    const herd_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        summs += ld_f16(&x[i].m) * ld_f16(&y[i].s);
        const __m256 d = _mm256_set1_ps(ld_f16(&x[i].d) * ld_f16(&y[i].d));
        const __m256i hi = _mm256_and_si256(bits_to_bytes(x[i].qh), _mm256_set1_epi8(0x10));
        const __m256i q = _mm256_or_si256(q4_bytes(x[i].qs), hi);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8(q, loadu256(y[i].qs))), acc);
    }
    *s = hsum8(acc) + summs;
}

/* ggml-cpu's x86 quantize_row_q8_1 (see herd_quantize_q8_1_act): Q8_0's
 * rounding, plus s = F16(d·Σq) with d unrounded. */
static void quantize_q8_1_avx2(const float *x, void *vy, int64_t n)
{
    herd_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        const float amax = amax32(x);
        const float d = amax / 127.f;
        const uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        memcpy(&y[i].d, &dh, 2);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        const __m256i q = round_pack32(x, _mm256_set1_ps(id));
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
        const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
        const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
        __m128i r = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));
        r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 1));
        const uint16_t sh = _cvtss_sh(d * (float)_mm_cvtsi128_si32(r), _MM_FROUND_TO_NEAREST_INT);
        memcpy(&y[i].s, &sh, 2);
    }
}

/* ------------------------------------------------------------ gemm tiles */

/* Up to 4 rows × 4 tokens of Q8_0/Q4_0 weights against Q8_0 activations:
 * each weight block is unpacked once and used for every token. */
#define GEMM_Q8(NAME, WBLOCK, UNPACK)                                                              \
    static void NAME(int64_t n, const void *vx, size_t xs, int nr, const void *vy, size_t ys,      \
                     int nt, float *s, size_t ss)                                                  \
    {                                                                                              \
        __m256 acc[4][4];                                                                          \
        for (int r = 0; r < 4; r++)                                                                \
            for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();                           \
        const uint8_t *xb = vx, *yb = vy;                                                          \
        for (int64_t i = 0; i < n / 32; i++) {                                                     \
            __m256i yq[4];                                                                         \
            float dy[4];                                                                           \
            for (int t = 0; t < nt; t++) {                                                         \
                const herd_block_q8_0 *b = (const herd_block_q8_0 *)(yb + t * ys) + i;             \
                yq[t] = loadu256(b->qs);                                                           \
                dy[t] = ld_f16(&b->d);                                                             \
            }                                                                                      \
            for (int r = 0; r < nr; r++) {                                                         \
                const WBLOCK *w = (const WBLOCK *)(xb + r * xs) + i;                               \
                const __m256i q = UNPACK;                                                          \
                const __m256i ax = _mm256_sign_epi8(q, q);                                         \
                const float dx = ld_f16(&w->d);                                                    \
                for (int t = 0; t < nt; t++) {                                                     \
                    const __m256i p16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(yq[t], q));      \
                    const __m256i p = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));                \
                    acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dx * dy[t]), _mm256_cvtepi32_ps(p), \
                                                acc[r][t]);                                        \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int r = 0; r < nr; r++)                                                               \
            for (int t = 0; t < nt; t++) s[t * ss + r] = hsum8(acc[r][t]);                         \
    }

GEMM_Q8(gemm_q8_0_avx2, herd_block_q8_0, loadu256(w->qs))
GEMM_Q8(gemm_q4_0_avx2, herd_block_q4_0, _mm256_sub_epi8(q4_bytes(w->qs), _mm256_set1_epi8(8)))

void herd_kernels_install_avx2(herd_type_traits *traits)
{
    traits[HERD_TYPE_F32].vec_dot = vec_dot_f32_avx2;
    traits[HERD_TYPE_F16].vec_dot = vec_dot_f16_avx2;
    traits[HERD_TYPE_F16].from_float = fp32_to_fp16_avx2;
    traits[HERD_TYPE_BF16].vec_dot = vec_dot_bf16_avx2;
    traits[HERD_TYPE_BF16].from_float = fp32_to_bf16_avx2;
    traits[HERD_TYPE_Q8_0].vec_dot = vec_dot_q8_0_avx2;
    traits[HERD_TYPE_Q8_0].from_float = quantize_q8_0_avx2;
    traits[HERD_TYPE_Q4_0].vec_dot = vec_dot_q4_0_avx2;
    traits[HERD_TYPE_Q8_K].from_float = quantize_q8_K_avx2;
    traits[HERD_TYPE_Q4_1].vec_dot = vec_dot_q4_1_avx2;
    traits[HERD_TYPE_Q5_0].vec_dot = vec_dot_q5_0_avx2;
    traits[HERD_TYPE_Q5_1].vec_dot = vec_dot_q5_1_avx2;
    traits[HERD_TYPE_Q8_1].from_float = quantize_q8_1_avx2;
    herd_kernels_install_avx2_k(traits);
    herd_gemm_kernels[HERD_TYPE_Q8_0] = (herd_gemm_kernel){.gemm = gemm_q8_0_avx2};
    herd_gemm_kernels[HERD_TYPE_Q4_0] = (herd_gemm_kernel){.gemm = gemm_q4_0_avx2};
    herd_kernels_install_avx2_gemv(traits, false);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
