/*
 * kernels_avx2_mm.c — the AVX2 tiles of the panel products (kernels_mm.c,
 * layouts in kernels_mm.h): 8 weight rows per vector, up to 4 tokens per
 * pass (8 weight registers and 4 accumulators of the 16).
 *
 * Two versions of each tile. With AVX-VNNI (Alder Lake and later, Zen 4/5)
 * a group of 4 quants is one vpdpbusd, as on AVX-512 (issued through an asm
 * statement, so that this file needs no AVX-VNNI target and the same body
 * serves both). Without it, vpmaddubsw (unsigned × signed bytes into int16
 * pairs, saturating) then vpmaddwd by ones: two groups are added in int16
 * before widening, which stays exact while the unsigned side is at most 63
 * (2·2·63·127 = 32004 < 32767) — Q4_0 and the K-quants. Q8_0's q + 128 is
 * not (one pair can reach 64770), so Q8_0 has no plain-AVX2 tile and
 * keeps the 4 × 4 tiles of kernels_avx2.c.
 *
 * Panel offsets are multiples of 32 bytes from a 64-byte aligned buffer:
 * aligned loads, which compilers tuned for older cores do not split.
 */
#include "tensor/kernels_mm.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include "tensor/kernels_avx2.h"

static inline __m256i bcast32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

static inline __m256 bcastf(const uint8_t *p)
{
    float v;
    memcpy(&v, p, 4);
    return _mm256_set1_ps(v);
}

/* acc + Σ over ng groups of 4 (ng even) of w[g] (unsigned) · the 4 signed
 * quants at a + 4g, per 32-bit lane. */
static inline __attribute__((always_inline)) __m256i
dot_groups(bool vnni, __m256i acc, const __m256i *w, int ng, const uint8_t *a)
{
    if (vnni) {
#pragma GCC unroll 8
        for (int g = 0; g < ng; g++) acc = dpbusd_vnni(acc, w[g], bcast32(a + 4 * g));
        return acc;
    }
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int g = 0; g < ng; g += 2) {
        const __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(w[g], bcast32(a + 4 * g)),
                                           _mm256_maddubs_epi16(w[g + 1], bcast32(a + 4 * g + 4)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, ones));
    }
    return acc;
}

static inline void store_rows(float *y, __m256 v, int nr)
{
    if (nr == 8) {
        _mm256_storeu_ps(y, v);
        return;
    }
    const __m256i m =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(y, m, v);
}

/* 8 rows × NT tokens, Q4_0 or Q8_0. */
static inline __attribute__((always_inline)) void tile_q32(bool vnni, const uint8_t *wp, int64_t nb,
                                                           const uint8_t *a, size_t as,
                                                           const int NT, float *y, size_t ys,
                                                           int nr)
{
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *u = wp + b * MM_WU_Q32(8), *ab = a + b * MM_AU_Q32;
        __m256i w[8];
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) w[g] = _mm256_load_si256((const __m256i *)(u + 32 * g));
        const __m256 dw = _mm256_load_ps((const float *)(const void *)(u + 256));
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const uint8_t *at = ab + t * as;
            const __m256i p = dot_groups(vnni, bcast32(at + 32), w, 8, at);
            acc[t] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, bcastf(at + 36)), acc[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) store_rows(y + t * ys, acc[t], nr);
}

/* 8 rows × NT tokens, Q4_K or Q5_K. */
static inline __attribute__((always_inline)) void tile_k45(bool vnni, const uint8_t *wp, int64_t ns,
                                                           const uint8_t *a, size_t as,
                                                           const int NT, float *y, size_t ys,
                                                           int nr)
{
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *us = wp + s * MM_WU_K(8), *as0 = a + s * MM_AU_K;
        for (int j = 0; j < 8; j++) {
            const uint8_t *u = us + 256 * j;
            __m256i w[8];
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) w[g] = _mm256_load_si256((const __m256i *)(u + 32 * g));
            const __m256 dsc = _mm256_load_ps((const float *)(const void *)(us + 2048 + 32 * j));
            const __m256 dmm = _mm256_load_ps((const float *)(const void *)(us + 2304 + 32 * j));
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const uint8_t *at = as0 + t * as;
                const __m256i p = dot_groups(vnni, _mm256_setzero_si256(), w, 8, at + 32 * j);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                         _mm256_mul_ps(dsc, bcastf(at + MM_AK_D)), acc[t]);
                acc[t] = _mm256_fnmadd_ps(dmm, bcastf(at + MM_AK_BSD + 4 * j), acc[t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) store_rows(y + t * ys, acc[t], nr);
}

/* 8 rows × NT tokens with sub-blocks of 16: Q6_K and Q3_K (the sums start
 * from the token's correction), Q2_K (mins, as tile_k45's). */
static inline __attribute__((always_inline)) void tile_k16(bool vnni, bool mins, const uint8_t *wp,
                                                           int64_t ns, const uint8_t *a, size_t as,
                                                           const int NT, float *y, size_t ys,
                                                           int nr)
{
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    const size_t unit = mins ? MM_WU_K2(8) : MM_WU_K(8);
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *us = wp + s * unit, *as0 = a + s * MM_AU_K;
        for (int j = 0; j < 16; j++) {
            const uint8_t *u = us + 128 * j;
            __m256i w[4];
#pragma GCC unroll 8
            for (int g = 0; g < 4; g++) w[g] = _mm256_load_si256((const __m256i *)(u + 32 * g));
            const __m256 dsc = _mm256_load_ps((const float *)(const void *)(us + 2048 + 32 * j));
            const __m256 dmm =
                mins ? _mm256_load_ps((const float *)(const void *)(us + 2560 + 32 * j))
                     : _mm256_setzero_ps();
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const uint8_t *at = as0 + t * as;
                const __m256i c0 = mins ? _mm256_setzero_si256() : bcast32(at + MM_AK_C16 + 4 * j);
                const __m256i p = dot_groups(vnni, c0, w, 4, at + 16 * j);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                         _mm256_mul_ps(dsc, bcastf(at + MM_AK_D)), acc[t]);
                if (mins) acc[t] = _mm256_fnmadd_ps(dmm, bcastf(at + MM_AK_BSD + 4 * j), acc[t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) store_rows(y + t * ys, acc[t], nr);
}

static inline __attribute__((always_inline)) void tile_k6(bool vnni, const uint8_t *wp, int64_t ns,
                                                          const uint8_t *a, size_t as, const int NT,
                                                          float *y, size_t ys, int nr)
{
    tile_k16(vnni, false, wp, ns, a, as, NT, y, ys, nr);
}

static inline __attribute__((always_inline)) void tile_k2(bool vnni, const uint8_t *wp, int64_t ns,
                                                          const uint8_t *a, size_t as, const int NT,
                                                          float *y, size_t ys, int nr)
{
    tile_k16(vnni, true, wp, ns, a, as, NT, y, ys, nr);
}

/* F16 panels (layout in kernels_mm.h): 16 rows (two vectors) × NT ≤ 6
 * tokens, 12 accumulators, 2 weight registers and a broadcast: per element
 * two loads and NT broadcasts feed 2·NT FMAs. */
static inline void add_rows(float *y, __m256 v, int nr, bool add)
{
    if (nr <= 0) return;
    if (add) {
        const __m256i m =
            _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        v = _mm256_add_ps(v, nr >= 8 ? _mm256_loadu_ps(y) : _mm256_maskload_ps(y, m));
    }
    store_rows(y, v, nr < 8 ? nr : 8);
}

static inline __attribute__((always_inline)) void tile_f16(const float *wp, int64_t nk,
                                                           const float *a, size_t as, const int NT,
                                                           float *y, size_t ys, int nr, bool add)
{
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int64_t k = 0; k < nk; k++) {
        const __m256 w0 = _mm256_load_ps(wp + 16 * k), w1 = _mm256_load_ps(wp + 16 * k + 8);
#pragma GCC unroll 6
        for (int t = 0; t < NT; t++) {
            const __m256 b = _mm256_broadcast_ss(a + t * as + k);
            acc[t][0] = _mm256_fmadd_ps(w0, b, acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(w1, b, acc[t][1]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) {
        add_rows(y + t * ys, acc[t][0], nr, add);
        add_rows(y + t * ys + 8, acc[t][1], nr - 8, add);
    }
}

#define F16_FN(T)                                                                                  \
    static void f16_##T(const float *wp, int64_t nk, const float *a, size_t as, float *y,          \
                        size_t ys, int nr, bool add)                                               \
    {                                                                                              \
        tile_f16(wp, nk, a, as, T, y, ys, nr, add);                                                \
    }
F16_FN(1)
F16_FN(2)
F16_FN(3)
F16_FN(4)
F16_FN(5)
F16_FN(6)
#define F16_TILES                                                                                  \
    .f16_rows = 16, .f16_tok = 6, .f16 = {NULL, f16_1, f16_2, f16_3, f16_4, f16_5, f16_6}

#define TILE_FN(NAME, BODY, V, T)                                                                  \
    static void NAME##_##T(const uint8_t *wp, int64_t nu, const uint8_t *a, size_t as, float *y,   \
                           size_t ys, int nr)                                                      \
    {                                                                                              \
        BODY(V, wp, nu, a, as, T, y, ys, nr);                                                      \
    }
#define TILE_SET(NAME, BODY, V)                                                                    \
    TILE_FN(NAME, BODY, V, 1) TILE_FN(NAME, BODY, V, 2) TILE_FN(NAME, BODY, V, 4)
TILE_SET(v_q32, tile_q32, true)
TILE_SET(v_k45, tile_k45, true)
TILE_SET(v_k6, tile_k6, true)
TILE_SET(v_k2, tile_k2, true)
TILE_SET(p_q32, tile_q32, false)
TILE_SET(p_k45, tile_k45, false)
TILE_SET(p_k6, tile_k6, false)
TILE_SET(p_k2, tile_k2, false)

#define TILES(NAME)                                                                                \
    {                                                                                              \
        NAME##_1, NAME##_2, NAME##_4, NULL, NULL                                                   \
    }
const herd_mm_isa herd_mm_isa_avx2vnni = {
    .name = "avx2+avx-vnni",
    .rows = 8,
    .tiles = {[HERD_MM_Q4_0] = TILES(v_q32),
              [HERD_MM_Q8_0] = TILES(v_q32),
              [HERD_MM_K4] = TILES(v_k45),
              [HERD_MM_K5] = TILES(v_k45),
              [HERD_MM_K6] = TILES(v_k6),
              [HERD_MM_K3] = TILES(v_k6),
              [HERD_MM_K2] = TILES(v_k2)},
    F16_TILES,
};
const herd_mm_isa herd_mm_isa_avx2 = {
    .name = "avx2",
    .rows = 8,
    .tiles = {[HERD_MM_Q4_0] = TILES(p_q32),
              [HERD_MM_K4] = TILES(p_k45),
              [HERD_MM_K5] = TILES(p_k45),
              [HERD_MM_K6] = TILES(p_k6),
              [HERD_MM_K3] = TILES(p_k6),
              [HERD_MM_K2] = TILES(p_k2)},
    F16_TILES,
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
