/*
 * kernels_avx512_k.c — AVX-512 (BW, VNNI) kernels for Q2_K, Q3_K, Q4_K and
 * Q5_K against Q8_K activations, and for Q4_1, Q5_0, Q5_1.
 *
 * K-quants: one weight row × up to 4 tokens. Per super-block the row is
 * unpacked once into four registers of 64 unsigned quants in element order
 * (so that they line up with the Q8_K activations as stored: no packing)
 * and four registers of int16 scales, one per pair of products. Each token
 * then costs, per 64 elements, one load, one maddubs (u·y pairs → int16; u
 * ≤ 31 so no saturation) and one vpdpwssd (× scale, summed into int32). The
 * part u leaves out comes back through Q8_K's per-16 sums (bsums):
 *   Q2_K, Q4_K, Q5_K  x = d·s·u − dmin·m      → − dmin·y.d·Σ m·bsum
 *   Q3_K              x = d·s·(u − 4), u 0..7 → − 4·Σ s·bsum, exact, in the
 *                                               integer sum
 * The F32 accumulation is per token in a fixed order, so results do not
 * depend on how matmul tiles the rows and tokens.
 *
 * Q4_1, Q5_0, Q5_1: vec_dot only, two blocks per register with vpdpbusd
 * (unsigned weights × signed activations; Q5_0's −16 offset as −16·Σy).
 */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))),                 \
    apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#endif

/* ld_f16, loadu256/128: compiled for the target above. */
#include "tensor/kernels_avx2.h"

#define QK HERD_QK_K

enum { K2, K3, K4, K5 };

/* int16 lanes: a in the low 256 bits, b in the high. */
static inline __m512i halves16(short a, short b)
{
    return _mm512_inserti64x4(_mm512_set1_epi16(a), _mm256_set1_epi16(b), 1);
}

/* 32 bytes at p twice, the second copy shifted right by `hi` bits and the
 * first by `lo` (per 16-bit lane; masked afterwards), masked to `mask`. */
static inline __m512i bits2(const uint8_t *p, __m512i shifts, int mask)
{
    const __m512i v = _mm512_broadcast_i64x4(loadu256(p));
    return _mm512_and_si512(_mm512_srlv_epi16(v, shifts), _mm512_set1_epi8((char)mask));
}

/* Scale index of each int16 product lane of group g when scales are per 16
 * elements: lane k covers elements 2k, 2k+1 of the group, sub-block 4g + k/8. */
static inline __m512i idx16(int g)
{
    const __m512i lane =
        _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13,
                         12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    return _mm512_add_epi16(_mm512_set1_epi16((short)(4 * g)), _mm512_srli_epi16(lane, 3));
}

/* One row × NT tokens. The loops over t and g have constant bounds once
 * inlined into the specializations below. */
static inline __attribute__((always_inline)) void tile_k(int kind, int64_t n, const uint8_t *xb,
                                                         const uint8_t *yb, size_t ys, const int NT,
                                                         float *s, size_t ss)
{
    const size_t bsz = kind == K2   ? sizeof(herd_block_q2_K)
                       : kind == K3 ? sizeof(herd_block_q3_K)
                       : kind == K4 ? sizeof(herd_block_q4_K)
                                    : sizeof(herd_block_q5_K);
    __m512 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const uint8_t *b = xb + (size_t)i * bsz;
        __m512i q[4], sv[4];
        __m256i c16; /* multiplier of each bsum */
        float dx, dmx = 0;
        if (kind == K4 || kind == K5) {
            const herd_block_q4_K *x = (const void *)b; /* Q5_K starts alike */
            dx = ld_f16(&x->d);
            dmx = ld_f16(&x->dmin);
            /* 8 scales and 8 mins of 6 bits (see herd_scale_min_k4). */
            uint32_t u[4];
            memcpy(u, x->scales, 12);
            const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
            u[3] = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
            const uint32_t mins_lo = u[1] & m6;
            u[1] = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
            u[2] = mins_lo;
            u[0] &= m6;
            const __m512i sm = _mm512_castsi256_si512(
                _mm256_cvtepu8_epi16(_mm_setr_epi32((int)u[0], (int)u[1], (int)u[2], (int)u[3])));
            c16 = _mm512_castsi512_si256(_mm512_permutexvar_epi16(
                _mm512_castsi256_si512(
                    _mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)),
                sm));
            const uint8_t *qs = kind == K4 ? x->qs : ((const herd_block_q5_K *)(const void *)b)->qs;
            const __m512i sh = halves16(0, 4);
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                sv[g] = _mm512_permutexvar_epi16(halves16((short)(2 * g), (short)(2 * g + 1)), sm);
                q[g] = bits2(qs + 32 * g, sh, 0x0f);
                if (kind == K5) {
                    const uint8_t *qh = ((const herd_block_q5_K *)(const void *)b)->qh;
                    const __m512i h = bits2(qh, halves16((short)(2 * g), (short)(2 * g + 1)), 1);
                    q[g] = _mm512_or_si512(q[g], _mm512_slli_epi16(h, 4));
                }
            }
        } else if (kind == K3) {
            const herd_block_q3_K *x = (const void *)b;
            dx = ld_f16(&x->d);
            int8_t sc[16];
            herd_q3_K_scales(x->scales, sc);
            c16 = _mm256_cvtepi8_epi16(loadu128(sc));
            const __m512i sc512 = _mm512_castsi256_si512(c16);
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                sv[g] = _mm512_permutexvar_epi16(idx16(g), sc512);
                const short s0 = (short)(4 * (g % 2));
                const __m512i lo = bits2(x->qs + 32 * (g / 2), halves16(s0, (short)(s0 + 2)), 3);
                const __m512i h = bits2(x->hmask, halves16((short)(2 * g), (short)(2 * g + 1)), 1);
                q[g] = _mm512_or_si512(lo, _mm512_slli_epi16(h, 2));
            }
        } else {
            const herd_block_q2_K *x = (const void *)b;
            dx = ld_f16(&x->d);
            dmx = ld_f16(&x->dmin);
            const __m128i sc8 = loadu128(x->scales);
            const __m512i sc512 = _mm512_castsi256_si512(
                _mm256_cvtepu8_epi16(_mm_and_si128(sc8, _mm_set1_epi8(0x0f))));
            c16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0f)));
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                sv[g] = _mm512_permutexvar_epi16(idx16(g), sc512);
                const short s0 = (short)(4 * (g % 2));
                q[g] = bits2(x->qs + 32 * (g / 2), halves16(s0, (short)(s0 + 2)), 3);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const herd_block_q8_K *y = (const herd_block_q8_K *)(const void *)(yb + t * ys) + i;
            /* Two chains of vpdpwssd, not one of four: its latency, not
             * its throughput, would bound a single row's decode. */
            __m512i s2[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++)
                s2[g & 1] = _mm512_dpwssd_epi32(
                    s2[g & 1], _mm512_maddubs_epi16(q[g], _mm512_loadu_si512(y->qs + 64 * g)),
                    sv[g]);
            __m512i sumi = _mm512_add_epi32(s2[0], s2[1]);
            const __m256i bs = _mm256_madd_epi16(c16, loadu256(y->bsums));
            if (kind == K3) {
                sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(bs, 2)));
                acc[t] =
                    _mm512_fmadd_ps(_mm512_set1_ps(dx * y->d), _mm512_cvtepi32_ps(sumi), acc[t]);
            } else {
                acc[t] =
                    _mm512_fmadd_ps(_mm512_set1_ps(dx * y->d), _mm512_cvtepi32_ps(sumi), acc[t]);
                acc[t] = _mm512_fnmadd_ps(_mm512_set1_ps(dmx * y->d),
                                          _mm512_zextps256_ps512(_mm256_cvtepi32_ps(bs)), acc[t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) s[t * ss] = _mm512_reduce_add_ps(acc[t]);
}

typedef void (*ktile_fn)(int64_t, const uint8_t *, const uint8_t *, size_t, float *, size_t);
#define KTILE(K, T)                                                                                \
    static void ktile_##K##_##T(int64_t n, const uint8_t *x, const uint8_t *y, size_t ys,          \
                                float *s, size_t ss)                                               \
    {                                                                                              \
        tile_k(K, n, x, y, ys, T, s, ss);                                                          \
    }
#define KTILES(K) KTILE(K, 1) KTILE(K, 2) KTILE(K, 3) KTILE(K, 4)
KTILES(K2)
KTILES(K3)
KTILES(K4)
KTILES(K5)
static const ktile_fn ktiles[4][4] = {
    {ktile_K2_1, ktile_K2_2, ktile_K2_3, ktile_K2_4},
    {ktile_K3_1, ktile_K3_2, ktile_K3_3, ktile_K3_4},
    {ktile_K4_1, ktile_K4_2, ktile_K4_3, ktile_K4_4},
    {ktile_K5_1, ktile_K5_2, ktile_K5_3, ktile_K5_4},
};

#define KGEMM(NAME, K)                                                                             \
    static void gemm_##NAME(int64_t n, const void *x, size_t xs, int nr, const void *y, size_t ys, \
                            int nt, float *s, size_t ss)                                           \
    {                                                                                              \
        for (int r = 0; r < nr; r++)                                                               \
            ktiles[K][nt - 1](n, (const uint8_t *)x + r * xs, y, ys, s + r, ss);                   \
    }                                                                                              \
    static void vec_dot_##NAME(int64_t n, float *s, const void *x, const void *y)                  \
    {                                                                                              \
        ktiles[K][0](n, x, y, 0, s, 0);                                                            \
    }
KGEMM(q2_K, K2)
KGEMM(q3_K, K3)
KGEMM(q4_K, K4)
KGEMM(q5_K, K5)

/* ------------------------------------------------------------ Q4_1, Q5_0, Q5_1 */

/* The F16 fields at p and p + stride (blocks i, i+1) spread over the 16
 * int32 lanes of a two-block dpbusd result: [A×8 | B×8]. */
static inline __m512 spread2(const uint8_t *p, size_t stride)
{
    uint16_t a, b;
    memcpy(&a, p, 2);
    memcpy(&b, p + stride, 2);
    return _mm512_cvtph_ps(_mm256_mask_set1_epi16(_mm256_set1_epi16((short)a), 0xff00, (short)b));
}

/* Two 32-element blocks of 4-bit (+ fifth bit) weights as unsigned bytes in
 * element order: [A 0..31 | B 0..31]. */
static inline __m512i unpack2(const uint8_t *qs, size_t stride, const uint8_t *qh)
{
    const __m512i v =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_castsi128_si256(loadu128(qs))),
                           _mm256_castsi128_si256(loadu128(qs + stride)), 1);
    /* [A lo | A hi | B lo | B hi] from [A | – | B | –] 128-bit lanes. */
    const __m512i w = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 4, 5, 4, 5), v);
    const __m512i sh = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
    __m512i u = _mm512_and_si512(_mm512_srlv_epi64(w, sh), _mm512_set1_epi8(0x0f));
    if (qh) {
        uint32_t a, b;
        memcpy(&a, qh, 4);
        memcpy(&b, qh + stride, 4);
        const __mmask64 m = (__mmask64)a | (__mmask64)b << 32;
        u = _mm512_mask_add_epi8(u, m, u, _mm512_set1_epi8(16));
    }
    return u;
}

/* kind: 0 Q4_1, 1 Q5_0, 2 Q5_1. An odd last block is done by the reference
 * loop's formula on its own. */
static inline __attribute__((always_inline)) void vec_dot_l(int kind, int64_t n, float *s,
                                                            const uint8_t *x, const uint8_t *y)
{
    const size_t xbs = kind == 0 ? 20 : kind == 1 ? 22 : 24;
    const size_t ybs = kind == 1 ? sizeof(herd_block_q8_0) : sizeof(herd_block_q8_1);
    const size_t qs_off = kind == 0 ? 4 : kind == 1 ? 6 : 8;
    const size_t qh_off = kind == 1 ? 2 : 4;
    const int64_t nb = n / 32;
    __m512 acc = _mm512_setzero_ps();
    float summs = 0;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2, x += 2 * xbs, y += 2 * ybs) {
        const __m512i u = unpack2(x + qs_off, xbs, kind == 0 ? NULL : x + qh_off);
        const __m512i yq = _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(y + ybs - 32)),
                                              loadu256(y + 2 * ybs - 32), 1);
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, yq);
        if (kind == 1) /* Σ(u − 16)·y */
            p = _mm512_sub_epi32(
                p, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(16), yq));
        else
            summs += ld_f16(x + 2) * ld_f16(y + 2) + ld_f16(x + xbs + 2) * ld_f16(y + ybs + 2);
        acc = _mm512_fmadd_ps(_mm512_mul_ps(spread2(x, xbs), spread2(y, ybs)),
                              _mm512_cvtepi32_ps(p), acc);
    }
    float sumf = _mm512_reduce_add_ps(acc) + summs;
    if (i < nb) {
        float t;
        if (kind == 0)
            herd_vec_dot_q4_1_ref(32, &t, x, y);
        else if (kind == 1)
            herd_vec_dot_q5_0_ref(32, &t, x, y);
        else
            herd_vec_dot_q5_1_ref(32, &t, x, y);
        sumf += t;
    }
    *s = sumf;
}

static void vec_dot_q4_1_avx512(int64_t n, float *s, const void *x, const void *y)
{
    vec_dot_l(0, n, s, x, y);
}
static void vec_dot_q5_0_avx512(int64_t n, float *s, const void *x, const void *y)
{
    vec_dot_l(1, n, s, x, y);
}
static void vec_dot_q5_1_avx512(int64_t n, float *s, const void *x, const void *y)
{
    vec_dot_l(2, n, s, x, y);
}

void herd_kernels_install_avx512_k(herd_type_traits *traits)
{
    traits[HERD_TYPE_Q2_K].vec_dot = vec_dot_q2_K;
    traits[HERD_TYPE_Q3_K].vec_dot = vec_dot_q3_K;
    traits[HERD_TYPE_Q4_K].vec_dot = vec_dot_q4_K;
    traits[HERD_TYPE_Q5_K].vec_dot = vec_dot_q5_K;
    traits[HERD_TYPE_Q4_1].vec_dot = vec_dot_q4_1_avx512;
    traits[HERD_TYPE_Q5_0].vec_dot = vec_dot_q5_0_avx512;
    traits[HERD_TYPE_Q5_1].vec_dot = vec_dot_q5_1_avx512;
    herd_gemm_kernels[HERD_TYPE_Q2_K] = (herd_gemm_kernel){.gemm = gemm_q2_K};
    herd_gemm_kernels[HERD_TYPE_Q3_K] = (herd_gemm_kernel){.gemm = gemm_q3_K};
    herd_gemm_kernels[HERD_TYPE_Q4_K] = (herd_gemm_kernel){.gemm = gemm_q4_K};
    herd_gemm_kernels[HERD_TYPE_Q5_K] = (herd_gemm_kernel){.gemm = gemm_q5_K};
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
