/*
 * kernels_avx512.c — AVX-512 kernels (F, BW, VL, VNNI; BF16 for the BF16
 * products only, installed where the CPU has it).
 *
 * Compiled for those extensions by a target pragma and only called after
 * herd_kernels_install_simd() checked the CPU. The activation converters of
 * kernels_avx2.c are kept (their cost is small next to the dot products);
 * what changes here is the dot products:
 *
 *   Q4_0, Q8_0   VNNI vpdpbusd on two blocks per 512-bit register, in tiles
 *                of up to 4 weight rows × 4 tokens (matmul also uses them for
 *                a single token, 4 rows at a time). vpdpbusd multiplies
 *                unsigned by signed bytes, so one operand is made unsigned and
 *                the exact integer correction is taken out per 4 elements:
 *                  Q4_0: Σ(u−8)·y = Σu·y − 8·Σy     (u = nibble 0..15)
 *                  Q8_0: Σx·y = Σx·(y+128) − 128·Σx
 *                The correction depends on the token (Q4_0) or the row (Q8_0)
 *                only; it is the starting value of the sum. For matmul the
 *                activations are packed once (see pack_pair) so that inside
 *                a tile each (row, token) pair costs one vpdpbusd, one
 *                conversion, one multiply and one FMA per two blocks.
 *   Q6_K         maddubs of the 6-bit quants (as 0..63) with Q8_K, then
 *                vpdpwssd by the 16-element scales; −32 via Q8_K's bsums.
 *                The matmul tile unpacks a row once for 4 tokens.
 *   F16, F32     vec_dot in ggml's own order: 4 accumulators of 16 lanes,
 *                pairwise reduction, _mm512_reduce_add_ps, tail in double.
 *                Matmul tiles of 4 × 4 (F16 activations widened once).
 *   BF16         vdpbf16ps, as ggml with AVX512_BF16 (denormal inputs are
 *                flushed by the instruction, as in ggml).
 *
 * All tiles compute every output with its own accumulator, in an order that
 * does not depend on the tile shape, so matmul results do not depend on the
 * number of threads.
 */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <string.h>

/* Every function below is compiled for these extensions (GCC: target
 * pragma; clang: the same attribute applied to each function). */
#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c"))),      \
    apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c")
#endif

/* ld_f16, loadu256/128: compiled for the target above. */
#include "tensor/kernels_avx2.h"

static inline float bf16(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return herd_bf16_to_f32(h);
}

/* The F16 scales of blocks i and i+1 (`stride` bytes apart) as two floats;
 * the second 0 when only one block is left, so that it adds nothing. */
static inline __m128 ld2_f16(const uint8_t *p, size_t stride, bool two)
{
    uint16_t a, b = 0;
    memcpy(&a, p, 2);
    if (two) memcpy(&b, p + stride, 2);
    return _mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(a), b, 1));
}

/* Two consecutive 32-byte quant arrays (blocks i and i+1, `stride` bytes
 * apart) in one register; the second half zero when only one is left. */
static inline __m512i load2_q8(const int8_t *qs, size_t stride, bool two)
{
    const __m512i lo = _mm512_castsi256_si512(loadu256(qs));
    return two ? _mm512_inserti64x4(lo, loadu256(qs + stride), 1)
               : _mm512_inserti64x4(lo, _mm256_setzero_si256(), 1);
}

/* Two Q4_0 blocks A, B as 64 unsigned bytes 0..15, in the order
 * [A 0..15 | B 0..15 | A 16..31 | B 16..31]: the nibbles split with 256-bit
 * operations and one insert. The activations are permuted to match (once
 * per matmul when packed, once per step in vec_dot). */
static inline __m512i load2_q4(const herd_block_q4_0 *b, bool two)
{
    const __m128i a = loadu128(b[0].qs);
    const __m256i v = two ? _mm256_inserti128_si256(_mm256_castsi128_si256(a), loadu128(b[1].qs), 1)
                          : _mm256_zextsi128_si256(a);
    const __m256i m = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_and_si256(v, m), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* ------------------------------------------------------------ Q4_0, Q8_0 */

/* vec_dot on standard Q8_0 activations, two blocks per step. Lane layout of
 * the integer sums (and so of the scale vectors): Q8_0 [A×8 | B×8], Q4_0
 * [A×4 | B×4 | A×4 | B×4]. The sum starts from the correction: −8·Σy for
 * Q4_0, −128·Σx for Q8_0 (per 4 elements, like vpdpbusd's sums). */
static inline __attribute__((always_inline)) void vec_dot_q(bool q4, int64_t n, float *s,
                                                            const uint8_t *x, const uint8_t *y)
{
    __m512 acc = _mm512_setzero_ps();
    const int64_t nb = n / 32;
    const size_t xbs = q4 ? sizeof(herd_block_q4_0) : sizeof(herd_block_q8_0);
    const size_t ybs = sizeof(herd_block_q8_0);
    const __m512i k80 = _mm512_set1_epi8((char)0x80), k08 = _mm512_set1_epi8(8);
    const __m512i didx = q4 ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)
                            : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i yperm = _mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7);
    for (int64_t i = 0; i < nb; i += 2, x += 2 * xbs, y += 2 * ybs) {
        const bool two = i + 1 < nb;
        const __m512i v = load2_q8((const int8_t *)y + 2, ybs, two);
        const __m512 dy = _mm512_permutexvar_ps(didx, _mm512_castps128_ps512(ld2_f16(y, ybs, two)));
        const __m512 dx = _mm512_permutexvar_ps(didx, _mm512_castps128_ps512(ld2_f16(x, xbs, two)));
        const __m512i zero = _mm512_setzero_si512();
        __m512i p;
        if (q4) {
            const __m512i yq = _mm512_permutexvar_epi64(yperm, v);
            const __m512i corr = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, k08, yq));
            p = _mm512_dpbusd_epi32(corr, load2_q4((const herd_block_q4_0 *)(const void *)x, two),
                                    yq);
        } else {
            const __m512i xq = load2_q8((const int8_t *)x + 2, xbs, two);
            const __m512i corr = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, k80, xq));
            p = _mm512_dpbusd_epi32(corr, _mm512_xor_si512(v, k80), xq);
        }
        acc = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy), _mm512_cvtepi32_ps(p), acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

static void vec_dot_q8_0_avx512(int64_t n, float *s, const void *x, const void *y)
{
    vec_dot_q(false, n, s, x, y);
}

static void vec_dot_q4_0_avx512(int64_t n, float *s, const void *x, const void *y)
{
    vec_dot_q(true, n, s, x, y);
}

/* ------------------------------------------------------------ packed */

/* matmul's activation layout for the Q8_0 tiles: per pair of Q8_0 blocks
 * (64 elements), the quants + 128 as unsigned and the scales spread over the
 * lanes (float d[16]: 128 bytes) — what vec_dot_q recomputes at every step
 * is done once per matmul here. The quants are those of Q8_0's from_float,
 * so results are unchanged. (Q4_0's tiles are kernels_avx512_gemv.c's, on
 * its decode packing.) */
#define PACK_Q8_0 128

static void pack_q8_0(const float *x, void *vy, int64_t n)
{
    const herd_type_traits *q8 = herd_type(HERD_TYPE_Q8_0);
    uint8_t *o = vy;
    for (int64_t e = 0; e < n; e += 64, o += PACK_Q8_0) {
        herd_block_q8_0 b[2];
        memset(b, 0, sizeof b);
        q8->from_float(x + e, b, n - e >= 64 ? 64 : 32);
        const float d[2] = {herd_ld_f16(&b[0].d), herd_ld_f16(&b[1].d)};
        float dv[16];
        for (int j = 0; j < 64; j++) o[j] = (uint8_t)(b[j / 32].qs[j % 32] ^ 0x80);
        for (int g = 0; g < 16; g++) dv[g] = d[g / 8];
        memcpy(o + 64, dv, sizeof dv);
    }
}

/* Blocks i, i + 1 (the second if two) of NR ≤ 2 weight rows against NT ≤ 4
 * tokens, added into acc. Per (row, token) pair and two blocks: one
 * vpdpbusd, one conversion, one multiply and one FMA; the weights' scales
 * come from two 16-bit broadcasts and one conversion. */
static inline __attribute__((always_inline)) void pair_p(const uint8_t *xb, size_t xs, const int NR,
                                                         const uint8_t *yp, size_t ys, const int NT,
                                                         int64_t i, bool two, __m512 acc[2][4])
{
    const size_t xbs = sizeof(herd_block_q8_0);
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
#pragma GCC unroll 2
    for (int r = 0; r < NR; r++) {
        const uint8_t *b = xb + r * xs + i * xbs;
        uint16_t ha, hb = 0;
        memcpy(&ha, b, 2);
        if (two) memcpy(&hb, b + xbs, 2);
        const __m512 dx = _mm512_cvtph_ps(
            _mm256_mask_set1_epi16(_mm256_set1_epi16((short)ha), 0xff00, (short)hb));
        const __m512i xq = load2_q8((const int8_t *)b + 2, xbs, two);
        /* The sums start from −128·Σx (per row): the activations are y + 128. */
        const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                              _mm512_dpbusd_epi32(_mm512_setzero_si512(), k80, xq));
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const uint8_t *y = yp + t * ys;
            const __m512i p = _mm512_dpbusd_epi32(corr, _mm512_loadu_si512(y), xq);
            const __m512 dy = _mm512_loadu_ps(y + 64);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dx, dy), acc[r][t]);
        }
    }
}

/* NR ≤ 2 weight rows × NT ≤ 4 tokens of Q8_0 over packed activations; the
 * loops over r and t have constant bounds once inlined into the
 * specializations below, so the accumulators stay in registers. The F32
 * terms are added in gemv_q8_0's order (kernels_avx512_gemv.c): of every
 * four blocks, the pair (A, B) into acc and (C, D) into acc1, the two
 * added before the reduction. A token's result then has the same bits in a
 * batch as alone; any other order moves the last bits, and a value that
 * lands on an F16 tie in the KV cache turns that into a visible change of
 * the logits (kjv-stablelm). Two accumulators per output: 2 rows at most. */
static inline __attribute__((always_inline)) void tile_p(int64_t n, const uint8_t *xb, size_t xs,
                                                         const int NR, const uint8_t *yb, size_t ys,
                                                         const int NT, float *s, size_t ss)
{
    __m512 acc[2][4], acc1[2][4];
#pragma GCC unroll 2
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = acc1[r][t] = _mm512_setzero_ps();
    const int64_t nb = n / 32;
    for (int64_t i = 0; i < nb; i += 4) {
        pair_p(xb, xs, NR, yb + (size_t)(i / 2) * PACK_Q8_0, ys, NT, i, i + 1 < nb, acc);
        if (i + 2 < nb)
            pair_p(xb, xs, NR, yb + (size_t)(i / 2 + 1) * PACK_Q8_0, ys, NT, i + 2, i + 3 < nb,
                   acc1);
    }
#pragma GCC unroll 2
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++)
            s[t * ss + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][t], acc1[r][t]));
}

/* Specializations for every (nr, nt), so that each has fixed loop bounds. */
#define TILE_FN(R, T)                                                                              \
    static void tile_##R##_##T(int64_t n, const uint8_t *x, size_t xs, const uint8_t *y,           \
                               size_t ys, float *s, size_t ss)                                     \
    {                                                                                              \
        tile_p(n, x, xs, R, y, ys, T, s, ss);                                                      \
    }
#define TILE_ROW(R) TILE_FN(R, 1) TILE_FN(R, 2) TILE_FN(R, 3) TILE_FN(R, 4)
TILE_ROW(1)
TILE_ROW(2)

typedef void (*tile_fn)(int64_t, const uint8_t *, size_t, const uint8_t *, size_t, float *, size_t);
static const tile_fn tiles[2][4] = {{tile_1_1, tile_1_2, tile_1_3, tile_1_4},
                                    {tile_2_1, tile_2_2, tile_2_3, tile_2_4}};

static void gemm_q8_0_avx512(int64_t n, const void *x, size_t xs, int nr, const void *y, size_t ys,
                             int nt, float *s, size_t ss)
{
    for (int r0 = 0; r0 < nr; r0 += 2) /* 2 rows at most: tile_p */
        tiles[nr - r0 >= 2][nt - 1](n, (const uint8_t *)x + r0 * xs, xs, y, ys, s + r0, ss);
}

/* ------------------------------------------------------------ Q6_K */

/* One Q6_K row × NT ≤ 4 tokens: the weights are unpacked once per
 * super-block (quants as 0..63, scales spread over the int16 products) and
 * dotted with every token. Σ sc·(q−32)·y = Σ sc·q·y − 32·Σ sc·bsum. */
static inline __attribute__((always_inline)) void tile_q6_K(int64_t n, const uint8_t *xb,
                                                            const uint8_t *yb, size_t ys,
                                                            const int NT, float *s, size_t ss)
{
    const herd_block_q6_K *x = (const herd_block_q6_K *)(const void *)xb;
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    /* Per 16-bit lane, the shift that brings this part's 2 high bits to bits
     * 4..5. Of a 64-byte group of ql, the first 32 bytes hold elements 0..31
     * (low nibbles, qh bits 0-1, << 4) and 64..95 (high nibbles, bits 4-5,
     * as is); the second 32..63 (bits 2-3, << 2) and 96..127 (bits 6-7, >> 2). */
    const __m512i shl_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr_hi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    __m512 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / HERD_QK_K; i++) {
        /* Scale of each int16 product (elements 2k, 2k+1) of a 64-element
         * group m: scales[4m + k/8]. */
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x[i].scales));
        const __m512i sc512 = _mm512_castsi256_si512(sc16);
        __m512i q[4], sv[4];
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            const __m512i base = _mm512_set1_epi16((short)(4 * m));
            const __m512i idx = _mm512_add_epi16(
                base, _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21,
                                                         20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
                                                         9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                        3));
            sv[m] = _mm512_permutexvar_epi16(idx, sc512);
        }
#pragma GCC unroll 2
        for (int j = 0; j < 2; j++) {
            const __m512i l = _mm512_loadu_si512(x[i].ql + 64 * j);
            const __m512i h = _mm512_broadcast_i64x4(loadu256(x[i].qh + 32 * j));
            q[2 * j] = _mm512_or_si512(_mm512_and_si512(l, m4),
                                       _mm512_and_si512(_mm512_sllv_epi16(h, shl_lo), m30));
            q[2 * j + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                           _mm512_and_si512(_mm512_srlv_epi16(h, shr_hi), m30));
        }
        const float dx = ld_f16(&x[i].d);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const herd_block_q8_K *y = (const herd_block_q8_K *)(const void *)(yb + t * ys) + i;
            /* Two chains of vpdpwssd, not one of four: its latency, not
             * its throughput, would bound a single row's decode. */
            __m512i s2[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 4
            for (int m = 0; m < 4; m++)
                s2[m & 1] = _mm512_dpwssd_epi32(
                    s2[m & 1], _mm512_maddubs_epi16(q[m], _mm512_loadu_si512(y->qs + 64 * m)),
                    sv[m]);
            __m512i sumi = _mm512_add_epi32(s2[0], s2[1]);
            const __m256i bs = _mm256_madd_epi16(sc16, loadu256(y->bsums));
            sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(bs, 5)));
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(dx * y->d), _mm512_cvtepi32_ps(sumi), acc[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) s[t * ss] = _mm512_reduce_add_ps(acc[t]);
}

#define TILE_Q6(T)                                                                                 \
    static void tile_q6_K_##T(int64_t n, const uint8_t *x, const uint8_t *y, size_t ys, float *s,  \
                              size_t ss)                                                           \
    {                                                                                              \
        tile_q6_K(n, x, y, ys, T, s, ss);                                                          \
    }
TILE_Q6(1)
TILE_Q6(2)
TILE_Q6(3)
TILE_Q6(4)

static void gemm_q6_K_avx512(int64_t n, const void *x, size_t xs, int nr, const void *y, size_t ys,
                             int nt, float *s, size_t ss)
{
    static void (*const fn[4])(int64_t, const uint8_t *, const uint8_t *, size_t, float *,
                               size_t) = {tile_q6_K_1, tile_q6_K_2, tile_q6_K_3, tile_q6_K_4};
    for (int r = 0; r < nr; r++) fn[nt - 1](n, (const uint8_t *)x + r * xs, y, ys, s + r, ss);
}

static void vec_dot_q6_K_avx512(int64_t n, float *s, const void *x, const void *y)
{
    tile_q6_K_1(n, x, y, 0, s, 0);
}

/* ------------------------------------------------------------ float dots */

static void vec_dot_f32_avx512(int64_t n, float *s, const void *vx, const void *vy)
{
    const float *x = vx, *y = vy;
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 4; j++)
            a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16 * j), _mm512_loadu_ps(y + i + 16 * j),
                                   a[j]);
    a[0] = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
    double sum = _mm512_reduce_add_ps(a[0]);
    for (; i < n; i++) sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

static void vec_dot_f16_avx512(int64_t n, float *s, const void *vx, const void *vy)
{
    const uint8_t *x = vx, *y = vy;
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 4; j++)
            a[j] = _mm512_fmadd_ps(_mm512_cvtph_ps(loadu256(x + 2 * (i + 16 * j))),
                                   _mm512_cvtph_ps(loadu256(y + 2 * (i + 16 * j))), a[j]);
    a[0] = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
    double sum = _mm512_reduce_add_ps(a[0]);
    for (; i < n; i++) sum += (double)(ld_f16(x + 2 * i) * ld_f16(y + 2 * i));
    *s = (float)sum;
}

static void vec_dot_bf16_avx512(int64_t n, float *s, const void *vx, const void *vy)
{
    const uint8_t *x = vx, *y = vy;
    __m512 c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        c1 = _mm512_dpbf16_ps(c1, (__m512bh)_mm512_loadu_si512(x + 2 * i),
                              (__m512bh)_mm512_loadu_si512(y + 2 * i));
        c2 = _mm512_dpbf16_ps(c2, (__m512bh)_mm512_loadu_si512(x + 2 * i + 64),
                              (__m512bh)_mm512_loadu_si512(y + 2 * i + 64));
    }
    double sum = (double)_mm512_reduce_add_ps(c1) + (double)_mm512_reduce_add_ps(c2);
    for (; i < n; i++) sum += (double)(bf16(x + 2 * i) * bf16(y + 2 * i));
    *s = (float)sum;
}

/* ------------------------------------------------------------ float tiles */

/* 16 elements (32 for BF16) of an F32 / F16 / BF16 row, the tail masked.
 * KF16 is F16 weights against activations packed as F32: the activations
 * are rounded to F16 as vec_dot_type says, then widened once per matmul
 * instead of once per tile (the widening is exact). */
enum { KF32, KF16, KBF16 };

static inline __m512 ld16(bool f16, const uint8_t *p, __mmask16 m)
{
    if (!f16) return _mm512_maskz_loadu_ps(m, p);
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static void pack_f16(const float *x, void *vy, int64_t n)
{
    float *y = vy;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m256i h =
            _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(h));
    }
}

/* NR ≤ 4 rows × NT ≤ 4 tokens of F32, F16 or BF16: each weight vector is
 * loaded (and converted) once for all tokens. F32 accumulation by FMA (BF16:
 * vdpbf16ps), in a different order than vec_dot. */
static inline __attribute__((always_inline)) void tile_f(int kind, int64_t n, const uint8_t *xb,
                                                         size_t xs, const int NR, const uint8_t *yb,
                                                         size_t ys, const int NT, float *s,
                                                         size_t ss)
{
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    const size_t es = kind == KF32 ? 4 : 2, ys_es = kind == KBF16 ? 2 : 4;
    const int64_t step = kind == KBF16 ? 32 : 16;
    for (int64_t i = 0; i < n; i += step) {
        const int64_t left = n - i;
        if (kind == KBF16) {
            const __mmask32 m = left >= 32 ? 0xffffffffu : (__mmask32)((1u << left) - 1);
            __m512i yv[4];
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) yv[t] = _mm512_maskz_loadu_epi16(m, yb + t * ys + i * es);
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++) {
                const __m512i xv = _mm512_maskz_loadu_epi16(m, xb + r * xs + i * es);
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++)
                    acc[r][t] = _mm512_dpbf16_ps(acc[r][t], (__m512bh)xv, (__m512bh)yv[t]);
            }
        } else {
            const __mmask16 m = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
            __m512 yv[4];
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) yv[t] = ld16(false, yb + t * ys + i * ys_es, m);
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++) {
                const __m512 xv = ld16(kind == KF16, xb + r * xs + i * es, m);
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) acc[r][t] = _mm512_fmadd_ps(xv, yv[t], acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) s[t * ss + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define FTILE_FN(K, R, T)                                                                          \
    static void ftile_##K##_##R##_##T(int64_t n, const uint8_t *x, size_t xs, const uint8_t *y,    \
                                      size_t ys, float *s, size_t ss)                              \
    {                                                                                              \
        tile_f(K, n, x, xs, R, y, ys, T, s, ss);                                                   \
    }
#define FTILE_ROW(K, R) FTILE_FN(K, R, 1) FTILE_FN(K, R, 2) FTILE_FN(K, R, 3) FTILE_FN(K, R, 4)
#define FTILE_ALL(K)    FTILE_ROW(K, 1) FTILE_ROW(K, 2) FTILE_ROW(K, 3) FTILE_ROW(K, 4)
FTILE_ALL(0)
FTILE_ALL(1)
FTILE_ALL(2)

#define FROW(K, R)                                                                                 \
    {                                                                                              \
        ftile_##K##_##R##_1, ftile_##K##_##R##_2, ftile_##K##_##R##_3, ftile_##K##_##R##_4         \
    }
static const tile_fn ftiles[3][4][4] = {
    {FROW(0, 1), FROW(0, 2), FROW(0, 3), FROW(0, 4)},
    {FROW(1, 1), FROW(1, 2), FROW(1, 3), FROW(1, 4)},
    {FROW(2, 1), FROW(2, 2), FROW(2, 3), FROW(2, 4)},
};

#define GEMM_F(NAME, K)                                                                            \
    static void NAME(int64_t n, const void *x, size_t xs, int nr, const void *y, size_t ys,        \
                     int nt, float *s, size_t ss)                                                  \
    {                                                                                              \
        ftiles[K][nr - 1][nt - 1](n, x, xs, y, ys, s, ss);                                         \
    }
GEMM_F(gemm_f32_avx512, KF32)
GEMM_F(gemm_f16_avx512, KF16)
GEMM_F(gemm_bf16_avx512, KBF16)

/* Decoding F16: NS rows at once, far apart, each prefetched PF_F16 bytes
 * ahead, a cache line (32 elements) of each per step, as the quantized
 * gemv kernels do (kernels_avx512_gemv.c): the 4-row tile above leaves
 * the streaming to the hardware prefetchers, which keep too few lines in
 * flight. Activations as pack_f16 makes them. One accumulator per row, 16
 * elements at a time in element order, the tail masked: tile_f's order, so
 * that a token's outputs have the same bits alone as in a batch (the NS
 * rows are independent chains of FMAs, enough to hide their latency). */
#ifndef PF_F16
#define PF_F16 1024
#endif
#define NS_F16 4

static inline __attribute__((always_inline)) void f16_streams(const int ns, int64_t n,
                                                              const uint8_t *x, size_t step,
                                                              const float *y, float *s, size_t ss)
{
    __m512 acc[NS_F16];
#pragma GCC unroll 4
    for (int k = 0; k < ns; k++) acc[k] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 y0 = _mm512_loadu_ps(y + i), y1 = _mm512_loadu_ps(y + i + 16);
#pragma GCC unroll 4
        for (int k = 0; k < ns; k++) {
            const uint8_t *xk = x + k * step + 2 * i;
            _mm_prefetch((const char *)xk + PF_F16, _MM_HINT_T0);
            acc[k] = _mm512_fmadd_ps(_mm512_cvtph_ps(loadu256(xk)), y0, acc[k]);
            acc[k] = _mm512_fmadd_ps(_mm512_cvtph_ps(loadu256(xk + 32)), y1, acc[k]);
        }
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 yv = _mm512_maskz_loadu_ps(m, y + i);
#pragma GCC unroll 4
        for (int k = 0; k < ns; k++)
            acc[k] = _mm512_fmadd_ps(ld16(true, x + k * step + 2 * i, m), yv, acc[k]);
    }
#pragma GCC unroll 4
    for (int k = 0; k < ns; k++) s[k * ss] = _mm512_reduce_add_ps(acc[k]);
}

static void gemv_f16(int64_t n, const void *vx, size_t xs, int64_t nr, const void *y, float *s)
{
    const int64_t h = nr / NS_F16;
    for (int64_t r = 0; r < h; r++)
        f16_streams(NS_F16, n, (const uint8_t *)vx + (size_t)r * xs, (size_t)h * xs, y, s + r,
                    (size_t)h);
    for (int64_t r = NS_F16 * h; r < nr; r++)
        f16_streams(1, n, (const uint8_t *)vx + (size_t)r * xs, 0, y, s + r, 0);
}

void herd_kernels_install_avx512(herd_type_traits *traits)
{
    traits[HERD_TYPE_F32].vec_dot = vec_dot_f32_avx512;
    traits[HERD_TYPE_F16].vec_dot = vec_dot_f16_avx512;
    /* Only the BF16 products need AVX512_BF16 (Ice Lake and Cascade Lake
     * lack it); without it they stay AVX2's and the rest is AVX-512. */
    const bool bf16 = __builtin_cpu_supports("avx512bf16");
    if (bf16) traits[HERD_TYPE_BF16].vec_dot = vec_dot_bf16_avx512;
    traits[HERD_TYPE_Q8_0].vec_dot = vec_dot_q8_0_avx512;
    traits[HERD_TYPE_Q4_0].vec_dot = vec_dot_q4_0_avx512;
    traits[HERD_TYPE_Q6_K].vec_dot = vec_dot_q6_K_avx512;
    herd_gemm_kernels[HERD_TYPE_Q6_K] = (herd_gemm_kernel){.gemm = gemm_q6_K_avx512};
    herd_kernels_install_avx512_k(traits);
    herd_gemm_kernels[HERD_TYPE_F32] = (herd_gemm_kernel){.gemm = gemm_f32_avx512};
    herd_gemm_kernels[HERD_TYPE_F16] = (herd_gemm_kernel){.gemm = gemm_f16_avx512,
                                                          .pack = pack_f16,
                                                          .pack_block = 16,
                                                          .pack_block_bytes = 64,
                                                          .gemv = gemv_f16,
                                                          .gemv_pack = pack_f16,
                                                          .gemv_pack_block = 16,
                                                          .gemv_pack_block_bytes = 64};
    if (bf16) herd_gemm_kernels[HERD_TYPE_BF16] = (herd_gemm_kernel){.gemm = gemm_bf16_avx512};
    herd_gemm_kernels[HERD_TYPE_Q8_0] = (herd_gemm_kernel){.gemm = gemm_q8_0_avx512,
                                                           .pack = pack_q8_0,
                                                           .pack_block = 64,
                                                           .pack_block_bytes = PACK_Q8_0};
    /* Q4_0's tiles are kernels_avx512_gemv.c's, which sum as its decode. */
    herd_kernels_install_avx512_gemv(traits);
    herd_kernels_install_avx512_gemv_k(traits);
    herd_kernels_install_avx512_gemv_k23(traits);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
