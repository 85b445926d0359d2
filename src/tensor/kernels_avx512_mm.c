/*
 * kernels_avx512_mm.c — prompt-sized matrix products on AVX-512 VNNI, for
 * CPUs without AMX (AMD Zen 4/5, Intel client and older server chips).
 *
 * The 4 × 4 tiles of kernels_avx512.c spend one conversion, one multiply
 * and one FMA on every 64 products of a (row, token) pair, and a horizontal
 * sum per output: the float work costs as much as the integer work. Here a
 * vector holds 16 weight ROWS instead, so the float work is shared by 16
 * outputs:
 *
 *   one 32-element block, 16 rows × 1 token: 8 vpdpbusd, each the 16 rows'
 *   4 quants (a register) times 4 of the token's quants broadcast from
 *   memory, then one conversion, one multiply and one FMA for 16 outputs.
 *
 * The weights are unpacked per panel of 16 rows into a per-thread buffer
 * (element k of row r at byte 64·(k/4) + 4·r + k%4 of its block, as
 * unsigned bytes, with F32 scales per row) and used for every token of a
 * group; 16 tokens at a time keep 8 weight registers and 16 accumulators in
 * the 32 registers. Outputs are whole rows of 16 lanes: stored directly, no
 * horizontal sums. Nothing is kept between products: the file's bytes stay
 * as they are (no second copy of the weights; the buffers are a panel per
 * thread).
 *
 * vpdpbusd multiplies unsigned by signed bytes. The weights are the
 * unsigned side (Q4_0 nibbles 0..15, Q8_0 q + 128, K-quants as stored,
 * 0..15 / 0..31 / 0..63) and the exact corrections start the int32 sums:
 *   Q4_0  Σ(u − 8)·y = Σu·y − 8·Σy          per token and block
 *   Q8_0  Σ(u − 128)·y = Σu·y − 128·Σy      per token and block
 *   Q6_K  Σ(q − 32)·y = Σq·y − 32·Σy         per token and 16 elements
 * so every block's (sub-block's) integer sum is ggml's exactly; only the F32
 * steps after it are in another order:
 *   Q4_0, Q8_0   acc += Σ·(d_w·d_y)
 *   Q4_K, Q5_K   acc += Σ_j·(d·sc_j·d_y) − (dmin·m_j)·(bsum_j·d_y)
 *   Q6_K         acc += Σ_j·(d·sc_j·d_y)
 * Each output is computed the same way whatever the thread count, the token
 * group or the tile it falls in.
 */
#include "tensor/kernels.h"
#include "util/pool.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))),                 \
    apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#endif

bool herd_mm512_enabled;

enum { KIND_Q4_0, KIND_Q8_0, KIND_K4, KIND_K5, KIND_K6 };

static int kind_of(uint32_t wtype)
{
    switch (wtype) {
    case HERD_TYPE_Q4_0:
        return KIND_Q4_0;
    case HERD_TYPE_Q8_0:
        return KIND_Q8_0;
    case HERD_TYPE_Q4_K:
        return KIND_K4;
    case HERD_TYPE_Q5_K:
        return KIND_K5;
    case HERD_TYPE_Q6_K:
        return KIND_K6;
    default:
        return -1;
    }
}

static bool is_k(int kind)
{
    return kind >= KIND_K4;
}

/* Weight panel, per block of 32 (Q4_0, Q8_0): 8 groups × 16 rows × 4 bytes,
 * then the 16 rows' F32 scales. Per super-block (K-quants): 64 groups × 16
 * rows × 4 bytes, then F32 per row and sub-block: d·sc_j (8 for Q4_K/Q5_K,
 * 16 for Q6_K) and, for Q4_K/Q5_K, dmin·m_j. */
#define WU_Q32 (512 + 64)
#define WU_K   (4096 + 1024)

/* Activations, per token and block of 32: the Q8_0 quants, the int32
 * correction (−8·Σq or −128·Σq), the F32 scale. Per token and super-block:
 * the Q8_K quants, d, d·(sum of each 32 quants) (8 floats), −32·(sum of
 * each 16) (16 int32). */
#define AU_Q32 40
#define AU_K   384
#define AK_D   256
#define AK_BSD 260
#define AK_C16 292

static int64_t units(int kind, int64_t n_in)
{
    return is_k(kind) ? n_in / HERD_QK_K : n_in / 32;
}

bool herd_mm512_supports(uint32_t wtype, int64_t n_in)
{
    const int kind = kind_of(wtype);
    return herd_mm512_enabled && kind >= 0 && n_in > 0 && n_in % (is_k(kind) ? HERD_QK_K : 32) == 0;
}

size_t herd_mm512_work_size(uint32_t wtype, int64_t n_in, int64_t n_tok)
{
    if (!herd_mm512_supports(wtype, n_in)) return 0;
    const int kind = kind_of(wtype);
    return (size_t)units(kind, n_in) * (is_k(kind) ? AU_K : AU_Q32) * (size_t)n_tok + 64;
}

/* ------------------------------------------------------------ activations */

static void pack_token(int kind, const float *x, int64_t n_in, uint8_t *a)
{
    if (!is_k(kind)) {
        const herd_type_traits *q8 = herd_type(HERD_TYPE_Q8_0);
        const int shift = kind == KIND_Q4_0 ? 3 : 7;
        for (int64_t b = 0; b < n_in / 32; b++, a += AU_Q32) {
            herd_block_q8_0 blk;
            q8->from_float(x + 32 * b, &blk, 32);
            int32_t s = 0;
            for (int i = 0; i < 32; i++) s += blk.qs[i];
            const int32_t corr = -s * (1 << shift);
            const float d = herd_ld_f16(&blk.d);
            memcpy(a, blk.qs, 32);
            memcpy(a + 32, &corr, 4);
            memcpy(a + 36, &d, 4);
        }
        return;
    }
    const herd_type_traits *q8 = herd_type(HERD_TYPE_Q8_K);
    for (int64_t s = 0; s < n_in / HERD_QK_K; s++, a += AU_K) {
        herd_block_q8_K blk;
        q8->from_float(x + HERD_QK_K * s, &blk, HERD_QK_K);
        memcpy(a, blk.qs, 256);
        memcpy(a + AK_D, &blk.d, 4);
        for (int j = 0; j < 8; j++) {
            const float v = (float)(blk.bsums[2 * j] + blk.bsums[2 * j + 1]) * blk.d;
            memcpy(a + AK_BSD + 4 * j, &v, 4);
        }
        for (int j = 0; j < 16; j++) {
            const int32_t c = -32 * blk.bsums[j];
            memcpy(a + AK_C16 + 4 * j, &c, 4);
        }
    }
}

/* ------------------------------------------------------------ weight panels */

/* 32 unsigned quants of one row (a block, or a sub-block) into the panel:
 * group g of 4 at byte 64·g + 4·r. */
static inline void put32(uint8_t *u, int r, const uint8_t *q)
{
    for (int g = 0; g < 8; g++) memcpy(u + 64 * g + 4 * r, q + 4 * g, 4);
}

static inline void put_f32(uint8_t *p, float v)
{
    memcpy(p, &v, 4);
}

/* The low and high nibbles of 32 bytes: two runs of 32 quants. */
static inline void nibbles32(const uint8_t *qs, uint8_t *lo, uint8_t *hi)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)qs), m = _mm256_set1_epi8(0x0f);
    _mm256_storeu_si256((__m256i *)lo, _mm256_and_si256(v, m));
    _mm256_storeu_si256((__m256i *)hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), m));
}

static void prep_q32_row(int kind, const uint8_t *row, int64_t nb, int r, uint8_t *buf)
{
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *u = buf + b * WU_Q32, q[32];
        float d;
        if (kind == KIND_Q8_0) {
            const herd_block_q8_0 *blk = (const herd_block_q8_0 *)(const void *)row + b;
            const __m256i v = _mm256_loadu_si256((const __m256i *)blk->qs);
            _mm256_storeu_si256((__m256i *)q, _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)));
            d = herd_ld_f16(&blk->d);
        } else {
            const herd_block_q4_0 *blk = (const herd_block_q4_0 *)(const void *)row + b;
            const __m128i v = _mm_loadu_si128((const __m128i *)blk->qs), m = _mm_set1_epi8(0x0f);
            _mm_storeu_si128((__m128i *)q, _mm_and_si128(v, m));
            _mm_storeu_si128((__m128i *)(q + 16), _mm_and_si128(_mm_srli_epi16(v, 4), m));
            d = herd_ld_f16(&blk->d);
        }
        put32(u, r, q);
        put_f32(u + 512 + 4 * r, d);
    }
}

/* Q4_K / Q5_K: sub-block j of 32 is 512 bytes at 512·j. */
static void prep_k45_row(int kind, const uint8_t *row, int64_t ns, int r, uint8_t *buf)
{
    const size_t bs = kind == KIND_K4 ? sizeof(herd_block_q4_K) : sizeof(herd_block_q5_K);
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *blk = row + s * bs, *scales = blk + 4;
        const uint8_t *qs = kind == KIND_K4 ? blk + 16 : blk + 48, *qh = blk + 16;
        uint8_t *u = buf + s * WU_K;
        const float d = herd_ld_f16(blk), dmin = herd_ld_f16(blk + 2);
        for (int g = 0; g < 4; g++) {
            uint8_t q[2][32];
            nibbles32(qs + 32 * g, q[0], q[1]);
            if (kind == KIND_K5) {
                /* Bit 2g (2g + 1) of qh[l] is the fifth bit of element l of
                 * sub-block 2g (2g + 1). */
                const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
                for (int k = 0; k < 2; k++) {
                    const __m256i bit = _mm256_set1_epi8((char)(1 << (2 * g + k)));
                    const __m256i on = _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
                    const __m256i v = _mm256_loadu_si256((const __m256i *)q[k]);
                    _mm256_storeu_si256(
                        (__m256i *)q[k],
                        _mm256_or_si256(v, _mm256_and_si256(on, _mm256_set1_epi8(16))));
                }
            }
            for (int k = 0; k < 2; k++) {
                const int j = 2 * g + k;
                uint8_t sc, m;
                herd_scale_min_k4(j, scales, &sc, &m);
                put32(u + 512 * j, r, q[k]);
                put_f32(u + 4096 + 64 * j + 4 * r, d * sc);
                put_f32(u + 4096 + 512 + 64 * j + 4 * r, dmin * m);
            }
        }
    }
}

/* Q6_K: quants 0..63; sub-block j of 16 is 256 bytes at 256·j. */
static void prep_k6_row(const uint8_t *row, int64_t ns, int r, uint8_t *buf)
{
    for (int64_t s = 0; s < ns; s++) {
        const herd_block_q6_K *x = (const herd_block_q6_K *)(const void *)row + s;
        uint8_t *u = buf + s * WU_K;
        const float d = herd_ld_f16(&x->d);
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x->ql + 64 * half, *qh = x->qh + 32 * half;
            const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(0x30);
            uint8_t q[4][32];
            _mm256_storeu_si256((__m256i *)q[0],
                                _mm256_or_si256(_mm256_and_si256(l0, m4),
                                                _mm256_and_si256(_mm256_slli_epi16(h, 4), m3)));
            _mm256_storeu_si256((__m256i *)q[1],
                                _mm256_or_si256(_mm256_and_si256(l1, m4),
                                                _mm256_and_si256(_mm256_slli_epi16(h, 2), m3)));
            _mm256_storeu_si256((__m256i *)q[2],
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                                _mm256_and_si256(h, m3)));
            _mm256_storeu_si256((__m256i *)q[3],
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                                _mm256_and_si256(_mm256_srli_epi16(h, 2), m3)));
            /* q[k] holds elements 128·half + 32·k + (0..31). */
            for (int k = 0; k < 4; k++) put32(u + 512 * (4 * half + k), r, q[k]);
        }
        for (int j = 0; j < 16; j++) put_f32(u + 4096 + 64 * j + 4 * r, d * x->scales[j]);
    }
}

/* Rows r0 .. r0 + nr − 1 (nr ≤ 16) as a panel; missing rows are zero. */
static void prep_panel(int kind, const uint8_t *w, size_t w_stride, int64_t nu, int nr,
                       uint8_t *buf)
{
    memset(buf, 0, (size_t)nu * (is_k(kind) ? WU_K : WU_Q32));
    for (int r = 0; r < nr; r++) {
        const uint8_t *row = w + (size_t)r * w_stride;
        if (kind == KIND_K6)
            prep_k6_row(row, nu, r, buf);
        else if (is_k(kind))
            prep_k45_row(kind, row, nu, r, buf);
        else
            prep_q32_row(kind, row, nu, r, buf);
    }
}

/* ------------------------------------------------------------ tiles */

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

static inline void store_rows(float *y, __m512 v, __mmask16 m)
{
    if (m == 0xffff)
        _mm512_storeu_ps(y, v);
    else
        _mm512_mask_storeu_ps(y, m, v);
}

/* 16 rows × NT tokens, Q4_0 or Q8_0: y[t·ys + r] for the rows in m. */
static inline __attribute__((always_inline)) void tile_q32(const uint8_t *wp, int64_t nb,
                                                           const uint8_t *a, size_t as,
                                                           const int NT, float *y, size_t ys,
                                                           __mmask16 m)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *u = wp + b * WU_Q32, *ab = a + b * AU_Q32;
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
    for (int t = 0; t < NT; t++) store_rows(y + t * ys, acc[t], m);
}

/* 16 rows × NT tokens, Q4_K or Q5_K. */
static inline __attribute__((always_inline)) void tile_k45(const uint8_t *wp, int64_t ns,
                                                           const uint8_t *a, size_t as,
                                                           const int NT, float *y, size_t ys,
                                                           __mmask16 m)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *us = wp + s * WU_K, *as0 = a + s * AU_K;
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
                                         _mm512_mul_ps(dsc, bcastf(at + AK_D)), acc[t]);
                acc[t] = _mm512_fnmadd_ps(dmm, bcastf(at + AK_BSD + 4 * j), acc[t]);
            }
        }
    }
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) store_rows(y + t * ys, acc[t], m);
}

/* 16 rows × NT tokens, Q6_K: sub-blocks of 16 (4 groups of 4). */
static inline __attribute__((always_inline)) void tile_k6(const uint8_t *wp, int64_t ns,
                                                          const uint8_t *a, size_t as, const int NT,
                                                          float *y, size_t ys, __mmask16 m)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *us = wp + s * WU_K, *as0 = a + s * AU_K;
        for (int j = 0; j < 16; j++) {
            const uint8_t *u = us + 256 * j;
            __m512i w[4];
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) w[g] = _mm512_loadu_si512(u + 64 * g);
            const __m512 dsc = _mm512_loadu_ps(us + 4096 + 64 * j);
#pragma GCC unroll 16
            for (int t = 0; t < NT; t++) {
                const uint8_t *at = as0 + t * as;
                __m512i p = bcast32(at + AK_C16 + 4 * j);
#pragma GCC unroll 4
                for (int g = 0; g < 4; g++)
                    p = _mm512_dpbusd_epi32(p, w[g], bcast32(at + 16 * j + 4 * g));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                                         _mm512_mul_ps(dsc, bcastf(at + AK_D)), acc[t]);
            }
        }
    }
#pragma GCC unroll 16
    for (int t = 0; t < NT; t++) store_rows(y + t * ys, acc[t], m);
}

typedef void (*tile_fn)(const uint8_t *, int64_t, const uint8_t *, size_t, float *, size_t,
                        __mmask16);
#define TILE_FN(NAME, BODY, T)                                                                     \
    static void NAME##_##T(const uint8_t *wp, int64_t nu, const uint8_t *a, size_t as, float *y,   \
                           size_t ys, __mmask16 m)                                                 \
    {                                                                                              \
        BODY(wp, nu, a, as, T, y, ys, m);                                                          \
    }
#define TILE_SET(NAME, BODY)                                                                       \
    TILE_FN(NAME, BODY, 1)                                                                         \
    TILE_FN(NAME, BODY, 2) TILE_FN(NAME, BODY, 4) TILE_FN(NAME, BODY, 8) TILE_FN(NAME, BODY, 16)
TILE_SET(t_q32, tile_q32)
TILE_SET(t_k45, tile_k45)
TILE_SET(t_k6, tile_k6)

/* Tiles of 16, 8, 4, 2 and 1 tokens, per kind. */
static const tile_fn tiles[3][5] = {
    {t_q32_16, t_q32_8, t_q32_4, t_q32_2, t_q32_1},
    {t_k45_16, t_k45_8, t_k45_4, t_k45_2, t_k45_1},
    {t_k6_16, t_k6_8, t_k6_4, t_k6_2, t_k6_1},
};

/* ------------------------------------------------------------ the product */

/* Token groups of at most this many activation bytes: a group stays in L2
 * while the panels go by; each panel is unpacked once per group. */
#ifndef MM512_GROUP_BYTES
#define MM512_GROUP_BYTES (1u << 20)
#endif

typedef struct {
    int kind;
    const uint8_t *w;
    const float *x;
    float *y;
    uint8_t *act, *bufs;
    int64_t n_in, n_rows, n_tok, nu, n_panels, tg, n_groups;
    size_t w_stride, as, pb;
    atomic_int next;
} mm_job;

static void pack_job(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    for (int64_t t = ith; t < j->n_tok; t += nth)
        pack_token(j->kind, j->x + t * j->n_in, j->n_in, j->act + (size_t)t * j->as);
}

static void compute_job(void *arg, int ith, int nth)
{
    (void)nth;
    mm_job *j = arg;
    uint8_t *buf = j->bufs + j->pb * (size_t)ith;
    const tile_fn *tf = tiles[j->kind == KIND_K6 ? 2 : is_k(j->kind) ? 1 : 0];
    for (int64_t it; (it = atomic_fetch_add(&j->next, 1)) < j->n_groups * j->n_panels;) {
        const int64_t p = it % j->n_panels, g = it / j->n_panels;
        const int64_t r0 = p * 16, t_end = (g + 1) * j->tg < j->n_tok ? (g + 1) * j->tg : j->n_tok;
        const int nr = (int)(j->n_rows - r0 < 16 ? j->n_rows - r0 : 16);
        const __mmask16 m = (__mmask16)((1u << nr) - 1);
        prep_panel(j->kind, j->w + (size_t)r0 * j->w_stride, j->w_stride, j->nu, nr, buf);
        for (int64_t t = g * j->tg; t < t_end;) {
            const int64_t left = t_end - t;
            const int k = left >= 16 ? 0 : left >= 8 ? 1 : left >= 4 ? 2 : left >= 2 ? 3 : 4;
            tf[k](buf, j->nu, j->act + (size_t)t * j->as, j->as, j->y + (size_t)t * j->n_rows + r0,
                  (size_t)j->n_rows, m);
            t += 16 >> k;
        }
    }
}

bool herd_mm512_matmul(const void *w, uint32_t wtype, int64_t n_in, int64_t n_rows, const float *x,
                       int64_t n_tok, float *y, void *work, int n_threads)
{
    const int kind = kind_of(wtype);
    mm_job j = {.kind = kind,
                .w = w,
                .x = x,
                .y = y,
                .n_in = n_in,
                .n_rows = n_rows,
                .n_tok = n_tok,
                .nu = units(kind, n_in),
                .n_panels = (n_rows + 15) / 16,
                .w_stride = herd_row_bytes(wtype, n_in)};
    j.as = (size_t)j.nu * (is_k(kind) ? AU_K : AU_Q32);
    j.act = (uint8_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    j.tg = (int64_t)(MM512_GROUP_BYTES / j.as);
    if (j.tg < 16) j.tg = 16;
    j.n_groups = (n_tok + j.tg - 1) / j.tg;
    j.pb = ((size_t)j.nu * (is_k(kind) ? WU_K : WU_Q32) + 63) / 64 * 64;
    if (!(j.bufs = herd_alloc_aligned(j.pb * (size_t)n_threads))) return false;
    atomic_init(&j.next, 0);
    herd_parallel(n_threads, pack_job, &j);
    herd_parallel(n_threads, compute_job, &j);
    free(j.bufs);
    return true;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
