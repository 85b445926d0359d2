/*
 * kernels_avx512_mm.c — the AVX-512 VNNI tiles of the panel products
 * (kernels_mm.c, layouts in kernels_mm.h): 16 weight rows per vector, up to
 * 16 tokens per pass (8 weight registers and 16 accumulators of the 32).
 * Per block and token: the int32 sum starts from the token's correction,
 * 8 vpdpbusd (weights in registers, the token's quants broadcast), then
 * one conversion, one multiply (d_w·d_y) and one FMA for 16 outputs.
 */
#include "tensor/kernels_mm.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))),                 \
    apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#endif

static inline __m512i bcast32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

static inline __m512 bcastf(const uint8_t *p)
{
    float v;
    memcpy(&v, p, 4);
    return _mm512_set1_ps(v);
}

static inline void store_rows(float *y, __m512 v, int nr)
{
    if (nr == 16)
        _mm512_storeu_ps(y, v);
    else
        _mm512_mask_storeu_ps(y, (__mmask16)((1u << nr) - 1), v);
}

/* 16 rows × NT tokens, Q4_0 or Q8_0: y[t·ys + r] for r < nr. */
static inline __attribute__((always_inline)) void tile_q32(const uint8_t *wp, int64_t nb,
                                                           const uint8_t *a, size_t as,
                                                           const int NT, float *y, size_t ys,
                                                           int nr)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *u = wp + b * MM_WU_Q32(16), *ab = a + b * MM_AU_Q32;
        __m512i w[8];
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) w[g] = _mm512_loadu_si512(u + 64 * g);
        const __m512 dw = _mm512_loadu_ps(u + 512);
#pragma GCC unroll 16
        for (int t = 0; t < NT; t++) {
            const uint8_t *at = ab + t * as;
            __m512i p = bcast32(at + 32);
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) p = _mm512_dpbusd_epi32(p, w[g], bcast32(at + 4 * g));
            acc[t] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, bcastf(at + 36)), acc[t]);
        }
    }
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) store_rows(y + t * ys, acc[t], nr);
}

/* 16 rows × NT tokens, Q4_K or Q5_K. */
static inline __attribute__((always_inline)) void tile_k45(const uint8_t *wp, int64_t ns,
                                                           const uint8_t *a, size_t as,
                                                           const int NT, float *y, size_t ys,
                                                           int nr)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *us = wp + s * MM_WU_K(16), *as0 = a + s * MM_AU_K;
        for (int j = 0; j < 8; j++) {
            const uint8_t *u = us + 512 * j;
            __m512i w[8];
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) w[g] = _mm512_loadu_si512(u + 64 * g);
            const __m512 dsc = _mm512_loadu_ps(us + 4096 + 64 * j);
            const __m512 dmm = _mm512_loadu_ps(us + 4096 + 512 + 64 * j);
#pragma GCC unroll 16
            for (int t = 0; t < NT; t++) {
                const uint8_t *at = as0 + t * as;
                __m512i p = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int g = 0; g < 8; g++)
                    p = _mm512_dpbusd_epi32(p, w[g], bcast32(at + 32 * j + 4 * g));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                                         _mm512_mul_ps(dsc, bcastf(at + MM_AK_D)), acc[t]);
                acc[t] = _mm512_fnmadd_ps(dmm, bcastf(at + MM_AK_BSD + 4 * j), acc[t]);
            }
        }
    }
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) store_rows(y + t * ys, acc[t], nr);
}

/* 16 rows × NT tokens with sub-blocks of 16 (4 groups of 4): Q6_K and Q3_K
 * (the sums start from the token's correction), Q2_K (mins: none, and
 * dmin·m_j·d·Σy subtracted per sub-block as Q4_K's). */
static inline __attribute__((always_inline)) void tile_k16(bool mins, const uint8_t *wp, int64_t ns,
                                                           const uint8_t *a, size_t as,
                                                           const int NT, float *y, size_t ys,
                                                           int nr)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    const size_t unit = mins ? MM_WU_K2(16) : MM_WU_K(16);
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *us = wp + s * unit, *as0 = a + s * MM_AU_K;
        for (int j = 0; j < 16; j++) {
            const uint8_t *u = us + 256 * j;
            __m512i w[4];
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) w[g] = _mm512_loadu_si512(u + 64 * g);
            const __m512 dsc = _mm512_loadu_ps(us + 4096 + 64 * j);
            const __m512 dmm = mins ? _mm512_loadu_ps(us + 5120 + 64 * j) : _mm512_setzero_ps();
#pragma GCC unroll 16
            for (int t = 0; t < NT; t++) {
                const uint8_t *at = as0 + t * as;
                __m512i p = mins ? _mm512_setzero_si512() : bcast32(at + MM_AK_C16 + 4 * j);
#pragma GCC unroll 4
                for (int g = 0; g < 4; g++)
                    p = _mm512_dpbusd_epi32(p, w[g], bcast32(at + 16 * j + 4 * g));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                                         _mm512_mul_ps(dsc, bcastf(at + MM_AK_D)), acc[t]);
                if (mins) acc[t] = _mm512_fnmadd_ps(dmm, bcastf(at + MM_AK_BSD + 4 * j), acc[t]);
            }
        }
    }
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) store_rows(y + t * ys, acc[t], nr);
}

static inline __attribute__((always_inline)) void tile_k6(const uint8_t *wp, int64_t ns,
                                                          const uint8_t *a, size_t as, const int NT,
                                                          float *y, size_t ys, int nr)
{
    tile_k16(false, wp, ns, a, as, NT, y, ys, nr);
}

static inline __attribute__((always_inline)) void tile_k2(const uint8_t *wp, int64_t ns,
                                                          const uint8_t *a, size_t as, const int NT,
                                                          float *y, size_t ys, int nr)
{
    tile_k16(true, wp, ns, a, as, NT, y, ys, nr);
}

#define TILE_FN(NAME, BODY, T)                                                                     \
    static void NAME##_##T(const uint8_t *wp, int64_t nu, const uint8_t *a, size_t as, float *y,   \
                           size_t ys, int nr)                                                      \
    {                                                                                              \
        BODY(wp, nu, a, as, T, y, ys, nr);                                                         \
    }
#define TILE_SET(NAME, BODY)                                                                       \
    TILE_FN(NAME, BODY, 1)                                                                         \
    TILE_FN(NAME, BODY, 2) TILE_FN(NAME, BODY, 4) TILE_FN(NAME, BODY, 8) TILE_FN(NAME, BODY, 16)
TILE_SET(t_q32, tile_q32)
TILE_SET(t_k45, tile_k45)
TILE_SET(t_k6, tile_k6)
TILE_SET(t_k2, tile_k2)

#define TILES(NAME)                                                                                \
    {                                                                                              \
        NAME##_1, NAME##_2, NAME##_4, NAME##_8, NAME##_16                                          \
    }
const herd_mm_isa herd_mm_isa_avx512 = {
    .name = "avx512",
    .rows = 16,
    .tiles = {[HERD_MM_Q4_0] = TILES(t_q32),
              [HERD_MM_Q8_0] = TILES(t_q32),
              [HERD_MM_K4] = TILES(t_k45),
              [HERD_MM_K5] = TILES(t_k45),
              [HERD_MM_K6] = TILES(t_k6),
              [HERD_MM_K3] = TILES(t_k6),
              [HERD_MM_K2] = TILES(t_k2)},
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
