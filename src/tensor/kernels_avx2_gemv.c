/*
 * kernels_avx2_gemv.c — decoding (one token) for Q4_0, Q8_0 and F16 weights
 * on AVX2, with AVX-VNNI where the CPU has it (chosen at run time).
 *
 * Decoding streams every weight once: a kernel is as fast as the memory
 * only if it keeps enough loads in flight and spends few instructions per
 * byte. As the AVX-512 kernels (kernels_avx512_gemv.c), these go through NS
 * rows at once, far apart (NS sequential streams per thread, each
 * prefetched PF_DIST bytes ahead), sharing every block's activation work
 * between the NS rows; the 4 × 4 tiles they replace for one token kept
 * their accumulators in memory and left the streaming to the hardware.
 *
 * Each row's sum is computed exactly as the AVX2 tiles and vec_dot compute
 * it (kernels_avx2.c): per block one int32 lane per 4 quants (the same
 * exact integers, whether from vpdpbusd or vpmaddubsw), then
 * acc += (d_w·d_y)·lanes with one FMA, a horizontal sum at the end. So a
 * token's outputs have the same bits alone (here) as in a small batch
 * (the tiles), as in ggml, whose logits do not depend on the batch.
 *
 *   Q4_0  nibbles u (0..15) against the Q8_0 activations: Σu·y − 8·Σy, the
 *         correction per block shared by the rows.
 *   Q8_0  VNNI: (x + 128) against y, −128·Σy shared; without: |x| against
 *         y with x's sign, as the tiles do.
 *   F16   activations widened to F32 once (after rounding to F16, the
 *         vec_dot_type); one accumulator of 8 per row, the tail
 *         zero-padded. The small-batch tiles of F16 are here too
 *         (gemm_f16), summing the same way; vec_dot_f16_avx2 keeps ggml's
 *         four accumulators for the other callers.
 */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include "tensor/kernels_avx2.h"

#ifndef PF_DIST
#define PF_DIST 2048 /* bytes ahead per stream, as on AVX-512 */
#endif
#ifndef NS
#define NS 4 /* rows streamed at once */
#endif
#ifndef NS_F16
#define NS_F16 4
#endif

/* acc + Σ u·s per 4 bytes (u unsigned, s signed; without VNNI the pairs
 * must fit int16, as they do for u ≤ 127 against |s| ≤ 128). */
static inline __attribute__((always_inline)) __m256i dot4(bool vnni, __m256i acc, __m256i u,
                                                          __m256i s)
{
    if (vnni) return dpbusd_vnni(acc, u, s);
    return _mm256_add_epi32(acc,
                            _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

/* ------------------------------------------------------------ Q4_0, Q8_0 */

enum { G4_0, G8_0 };

/* One block's activations, shared by the NS rows. */
typedef struct {
    __m256i y;    /* Q4_0, Q8_0 without VNNI: the quants; Q8_0 VNNI: as is */
    __m256i corr; /* per lane: −8·Σy (Q4_0), −128·Σy (Q8_0 VNNI), 0 */
    float d;
} act_q;

static inline __attribute__((always_inline)) act_q load_act(int kind, bool vnni,
                                                            const herd_block_q8_0 *b)
{
    act_q a = {.y = loadu256(b->qs), .d = ld_f16(&b->d)};
    const __m256i z = _mm256_setzero_si256();
    if (kind == G4_0)
        a.corr = _mm256_sub_epi32(z, dot4(vnni, z, _mm256_set1_epi8(8), a.y));
    else if (vnni)
        a.corr = _mm256_sub_epi32(z, dot4(true, z, _mm256_set1_epi8((char)0x80), a.y));
    else
        a.corr = z;
    return a;
}

/* One block of a row: acc + (d_w·d_y)·(its 8 int32 lanes). */
static inline __attribute__((always_inline)) __m256 block_q(int kind, bool vnni, const uint8_t *x,
                                                            const act_q *a, __m256 d, __m256 acc)
{
    __m256i p;
    if (kind == G4_0) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(x + 2));
        const __m256i u =
            _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0f));
        p = dot4(vnni, a->corr, u, a->y);
    } else {
        const __m256i q = loadu256(x + 2);
        if (vnni)
            p = dot4(true, a->corr, _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)), a->y);
        else
            p = dot4(false, a->corr, _mm256_sign_epi8(q, q), _mm256_sign_epi8(a->y, q));
    }
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}

/* The F16 at p, p + stride, p + 2·stride, p + 3·stride as floats: the
 * scales of four blocks, converted at once. */
static inline __m128 f16x4(const uint8_t *p, size_t stride)
{
    uint16_t h[4];
    for (int k = 0; k < 4; k++) memcpy(&h[k], p + k * stride, 2);
    __m128i v = _mm_cvtsi32_si128(h[0]);
    v = _mm_insert_epi16(v, h[1], 1);
    v = _mm_insert_epi16(v, h[2], 2);
    v = _mm_insert_epi16(v, h[3], 3);
    return _mm_cvtph_ps(v);
}

/* Rows r, r + h, …, r + (ns − 1)·h from x (x is row r), the results at
 * s[0], s[h], …; four blocks per step, one prefetch per stream and 64 bytes
 * of it, the four d_w·d_y of a row in one multiply (the same products as
 * one at a time). */
static inline __attribute__((always_inline)) void streams_q(int kind, bool vnni, const int ns,
                                                            int64_t nb, const uint8_t *x,
                                                            size_t step, const herd_block_q8_0 *y,
                                                            float *s, size_t ss)
{
    const size_t bs = kind == G4_0 ? sizeof(herd_block_q4_0) : sizeof(herd_block_q8_0);
    __m256 acc[NS];
#pragma GCC unroll 8
    for (int k = 0; k < ns; k++) acc[k] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
#pragma GCC unroll 8
        for (int k = 0; k < ns; k++)
            for (size_t o = 0; o < 4 * bs; o += 64)
                _mm_prefetch((const char *)x + k * step + i * bs + o + PF_DIST, _MM_HINT_T0);
        const __m128 dy = f16x4((const uint8_t *)(y + i), sizeof *y);
        __m128 d4[NS];
#pragma GCC unroll 8
        for (int k = 0; k < ns; k++) d4[k] = _mm_mul_ps(f16x4(x + k * step + i * bs, bs), dy);
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) {
            const act_q a = load_act(kind, vnni, y + i + b);
#pragma GCC unroll 8
            for (int k = 0; k < ns; k++) {
                const __m256 d =
                    _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d4[k]), _mm256_set1_epi32(b));
                acc[k] = block_q(kind, vnni, x + k * step + (i + b) * bs, &a, d, acc[k]);
            }
        }
    }
    for (; i < nb; i++) {
        const act_q a = load_act(kind, vnni, y + i);
#pragma GCC unroll 8
        for (int k = 0; k < ns; k++) {
            const uint8_t *xb = x + k * step + i * bs;
            acc[k] = block_q(kind, vnni, xb, &a, _mm256_set1_ps(ld_f16(xb) * a.d), acc[k]);
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < ns; k++) s[k * ss] = hsum8(acc[k]);
}

static inline __attribute__((always_inline)) void gemv_q(int kind, bool vnni, int64_t n,
                                                         const void *vx, size_t xs, int64_t nr,
                                                         const void *y, float *s)
{
    const int64_t h = nr / NS, nb = n / 32;
    for (int64_t r = 0; r < h; r++)
        streams_q(kind, vnni, NS, nb, (const uint8_t *)vx + (size_t)r * xs, (size_t)h * xs, y,
                  s + r, (size_t)h);
    for (int64_t r = NS * h; r < nr; r++)
        streams_q(kind, vnni, 1, nb, (const uint8_t *)vx + (size_t)r * xs, 0, y, s + r, 0);
}

/* ------------------------------------------------------------ F16 */

/* F32 values of the F16 activations (vec_dot_type F16: rounded, then
 * widened once per product, which is exact). */
static void pack_f16(const float *x, void *vy, int64_t n)
{
    float *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                                                _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) y[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

/* The last n % 8 elements of an F16 row / F32 activations, zero-padded. */
static inline __m256 tail_x(const uint8_t *p, int64_t left)
{
    uint16_t h[8] = {0};
    memcpy(h, p, (size_t)left * 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

static inline __m256 tail_y(const float *p, int64_t left)
{
    float v[8] = {0};
    memcpy(v, p, (size_t)left * 4);
    return _mm256_loadu_ps(v);
}

/* NR rows (xs bytes apart) × NT tokens (ys bytes apart) of F16 weights: one
 * accumulator of 8 per output, one FMA per 8 elements in element order,
 * the tail zero-padded, a horizontal sum; output (row r, token t) at
 * s[t·ss + r·rs]. Decoding (NT = 1, NR streams, prefetched) and batches
 * (NR ≤ 2, NT ≤ 4: 8 accumulators, 2 weight and 4 activation registers) go
 * through this one loop, so a token's outputs have the same bits alone as
 * in a batch. */
static inline __attribute__((always_inline)) void
tile_f16(bool pf, int64_t n, const uint8_t *x, size_t xs, const int NR, const uint8_t *y, size_t ys,
         const int NT, float *s, size_t ss, size_t rs)
{
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if (pf && i % 32 == 0)
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++)
                _mm_prefetch((const char *)x + r * xs + 2 * i + PF_DIST, _MM_HINT_T0);
        __m256 xv[4];
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++)
            xv[r] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + r * xs + 2 * i)));
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256 yv = _mm256_loadu_ps((const float *)(const void *)(y + t * ys) + i);
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++) acc[r][t] = _mm256_fmadd_ps(xv[r], yv, acc[r][t]);
        }
    }
    if (i < n) {
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256 yv = tail_y((const float *)(const void *)(y + t * ys) + i, n - i);
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++)
                acc[r][t] = _mm256_fmadd_ps(tail_x(x + r * xs + 2 * i, n - i), yv, acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) s[t * ss + r * rs] = hsum8(acc[r][t]);
}

static void gemv_f16(int64_t n, const void *vx, size_t xs, int64_t nr, const void *y, float *s)
{
    const int64_t h = nr / NS_F16;
    for (int64_t r = 0; r < h; r++)
        tile_f16(true, n, (const uint8_t *)vx + (size_t)r * xs, (size_t)h * xs, NS_F16, y, 0, 1,
                 s + r, 0, (size_t)h);
    for (int64_t r = NS_F16 * h; r < nr; r++)
        tile_f16(false, n, (const uint8_t *)vx + (size_t)r * xs, 0, 1, y, 0, 1, s + r, 0, 0);
}

#define F16_TILE(R, T)                                                                             \
    static void f16_##R##_##T(int64_t n, const uint8_t *x, size_t xs, const uint8_t *y, size_t ys, \
                              float *s, size_t ss)                                                 \
    {                                                                                              \
        tile_f16(false, n, x, xs, R, y, ys, T, s, ss, 1);                                          \
    }
F16_TILE(1, 1)
F16_TILE(1, 2)
F16_TILE(1, 3)
F16_TILE(1, 4)
F16_TILE(2, 1)
F16_TILE(2, 2)
F16_TILE(2, 3)
F16_TILE(2, 4)

typedef void (*f16_tile_fn)(int64_t n, const uint8_t *x, size_t xs, const uint8_t *y, size_t ys,
                            float *s, size_t ss);
static const f16_tile_fn f16_tiles[2][4] = {{f16_1_1, f16_1_2, f16_1_3, f16_1_4},
                                            {f16_2_1, f16_2_2, f16_2_3, f16_2_4}};

/* Up to 4 rows × 4 tokens (matmul's tiles) as pairs of rows. */
static void gemm_f16(int64_t n, const void *vx, size_t xs, int nr, const void *vy, size_t ys,
                     int nt, float *s, size_t ss)
{
    for (int r = 0; r < nr; r += 2)
        f16_tiles[nr - r >= 2][nt - 1](n, (const uint8_t *)vx + (size_t)r * xs, xs, vy, ys, s + r,
                                       ss);
}

/* ------------------------------------------------------------ install */

#define GEMV_Q(NAME, KIND, VNNI)                                                                   \
    static void NAME(int64_t n, const void *x, size_t xs, int64_t nr, const void *y, float *s)     \
    {                                                                                              \
        gemv_q(KIND, VNNI, n, x, xs, nr, y, s);                                                    \
    }
GEMV_Q(gemv_q4_0, G4_0, false)
GEMV_Q(gemv_q8_0, G8_0, false)
GEMV_Q(gemv_q4_0_vnni, G4_0, true)
GEMV_Q(gemv_q8_0_vnni, G8_0, true)

herd_gemv_fn herd_avx2_gemv(uint32_t type, bool vnni)
{
    switch (type) {
    case HERD_TYPE_Q4_0:
        return vnni ? gemv_q4_0_vnni : gemv_q4_0;
    case HERD_TYPE_Q8_0:
        return vnni ? gemv_q8_0_vnni : gemv_q8_0;
    case HERD_TYPE_F16:
        return gemv_f16;
    default:
        return herd_avx2_gemv_k(type, vnni);
    }
}

void herd_kernels_install_avx2_gemv(herd_type_traits *traits, bool vnni)
{
    herd_kernels_install_avx2_gemv_k(traits);
    static const uint32_t types[] = {HERD_TYPE_Q4_0, HERD_TYPE_Q8_0, HERD_TYPE_Q4_K, HERD_TYPE_Q6_K,
                                     HERD_TYPE_F16};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        herd_gemm_kernel *k = &herd_gemm_kernels[types[i]];
        const herd_type_traits *vt = &traits[traits[types[i]].vec_dot_type];
        k->gemv = herd_avx2_gemv(types[i], vnni);
        if (types[i] == HERD_TYPE_F16) {
            k->gemm = gemm_f16;
            k->pack = k->gemv_pack = pack_f16;
            k->pack_block = 1;
            k->pack_block_bytes = 4;
            k->gemv_pack = pack_f16;
            k->gemv_pack_block = 1;
            k->gemv_pack_block_bytes = 4;
        } else { /* the vec_dot_type's rows, as they are */
            k->gemv_pack = vt->from_float;
            k->gemv_pack_block = vt->blck_size;
            k->gemv_pack_block_bytes = vt->type_size;
        }
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
