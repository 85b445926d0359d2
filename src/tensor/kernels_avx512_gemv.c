/*
 * kernels_avx512_gemv.c — decoding (one token) for Q4_0 and Q8_0 weights on
 * AVX-512 VNNI.
 *
 * Decoding streams every weight once, so a kernel is as fast as the memory
 * lets it be only if it has time to spare: the faster it eats a cache line,
 * the more loads the core keeps in flight. These kernels go through NS rows
 * at once, far apart (NS sequential streams per thread, each prefetched
 * PF_DIST bytes ahead), four blocks per step, with the activations laid
 * out once per product so that each step is a handful of instructions:
 *
 *   Q4_0  the four blocks' 64 bytes of nibbles in one register; the low
 *         nibbles (elements 0..15 of each block) and the high ones (16..31)
 *         meet activations stored in the same order, two vpdpbusd chained
 *         from the precomputed −8·Σy; one conversion and one FMA with the
 *         blocks' d_w·d_y spread over the lanes (4 lanes per block).
 *   Q8_0  two blocks per register; the weights made unsigned (x + 128,
 *         one xor) for vpdpbusd, Σ x·y = Σ (x + 128)·y − 128·Σ y, the
 *         correction packed with the activations and shared by the rows.
 *
 * The quantized activations are those of Q8_0's from_float, so the integer
 * sums are ggml's; only the order of the F32 additions differs.
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

#define UNIT 256 /* bytes of packed activations per 128 elements */
/* Software prefetch distance per stream: the hardware prefetchers alone
 * leave a core at 12 GB/s; asking for each stream's line this far ahead
 * brings it to 15–17 (bytes). */
#ifndef PF_DIST
#define PF_DIST 2048
#endif
#ifndef PF_HINT
#define PF_HINT _MM_HINT_T0
#endif
#ifndef NS
#define NS 4 /* rows streamed at once */
#endif

static inline __m128i ld128(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}
static inline __m256i ld256(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

static inline uint16_t ld_u16(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* Quantize 128 activations (nb ≤ 4 blocks of them; the rest zero). */
static void quantize4(const float *x, int nb, herd_block_q8_0 *b)
{
    memset(b, 0, 4 * sizeof *b);
    herd_type(HERD_TYPE_Q8_0)->from_float(x, b, 32 * nb);
}

/* ------------------------------------------------------------ Q4_0 */

/* Per 128 elements: low-nibble partners [A 0..15 | B 0..15 | C 0..15 |
 * D 0..15], high-nibble partners (elements 16..31), int32 −8·Σ of the 8
 * activations each lane meets, F32 d of each lane's block. */
static void pack_gemv_q4_0(const float *x, void *vy, int64_t n)
{
    uint8_t *o = vy;
    for (int64_t e = 0; e < n; e += 128, o += UNIT) {
        herd_block_q8_0 b[4];
        const int nb = (int)((n - e) / 32 < 4 ? (n - e) / 32 : 4);
        quantize4(x + e, nb, b);
        int32_t corr[16];
        float d[16];
        for (int k = 0; k < 4; k++) {
            memcpy(o + 16 * k, b[k].qs, 16);
            memcpy(o + 64 + 16 * k, b[k].qs + 16, 16);
            for (int l = 0; l < 4; l++) {
                int sum = 0;
                for (int i = 0; i < 4; i++) sum += b[k].qs[4 * l + i] + b[k].qs[16 + 4 * l + i];
                corr[4 * k + l] = -8 * sum;
                d[4 * k + l] = herd_ld_f16(&b[k].d);
            }
        }
        memcpy(o + 128, corr, 64);
        memcpy(o + 192, d, 64);
    }
}

/* Four blocks' nibbles v (block k in 128-bit lane k) and d (dh: four
 * lanes each) against one packed unit. */
static inline __attribute__((always_inline)) __m512 dot_q4_0(__m512i v, __m256i dh,
                                                             const uint8_t *y, __m512 acc)
{
    const __m512i m = _mm512_set1_epi8(0x0f);
    const __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
    __m512i p = _mm512_dpbusd_epi32(_mm512_loadu_si512(y + 128), lo, _mm512_loadu_si512(y));
    p = _mm512_dpbusd_epi32(p, hi, _mm512_loadu_si512(y + 64));
    const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(dh), _mm512_loadu_ps(y + 192));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
}

/* nb (1..3) blocks of a Q4_0 row, laid out as load_q4_0 does: the tail. */
static inline __attribute__((always_inline)) void load_q4_0_tail(const uint8_t *x, int nb,
                                                                 __m512i *v, __m256i *dh)
{
    *v = _mm512_castsi128_si512(ld128(x + 2));
    *dh = _mm256_maskz_set1_epi16(0x000f, (short)ld_u16(x));
    if (nb > 1) {
        *v = _mm512_inserti32x4(*v, ld128(x + 20), 1);
        *dh = _mm256_mask_set1_epi16(*dh, 0x00f0, (short)ld_u16(x + 18));
    }
    if (nb > 2) {
        *v = _mm512_inserti32x4(*v, ld128(x + 38), 2);
        *dh = _mm256_mask_set1_epi16(*dh, 0x0f00, (short)ld_u16(x + 36));
    }
}

/* Four blocks (72 bytes) of a Q4_0 row: nibbles of block k in 128-bit lane
 * k, d in words 4k..4k+3. The first 64 bytes hold the four d (words 0, 9,
 * 18, 27) and three blocks' nibbles (words 1–8, 10–17, 19–26): two word
 * permutes of one load gather them; the fourth block's nibbles (bytes
 * 56–71) are inserted from memory. */
static inline __attribute__((always_inline)) void load_q4_0(const uint8_t *x, __m512i *v,
                                                            __m256i *dh)
{
    const __m512i iq = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 26, 25, 24, 23, 22, 21, 20, 19, 17,
                                        16, 15, 14, 13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1);
    const __m512i id = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27, 27, 27,
                                        27, 18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
    const __m512i raw = _mm512_loadu_si512(x);
    *v = _mm512_inserti32x4(_mm512_permutexvar_epi16(iq, raw), ld128(x + 56), 3);
    *dh = _mm512_castsi512_si256(_mm512_permutexvar_epi16(id, raw));
}

static inline __attribute__((always_inline)) __m512 unit_q4_0(const uint8_t *x, const uint8_t *y,
                                                              __m512 acc)
{
    __m512i v;
    __m256i dh;
    load_q4_0(x, &v, &dh);
    return dot_q4_0(v, dh, y, acc);
}

static inline __attribute__((always_inline)) __m512
unit_q4_0_tail(const uint8_t *x, const uint8_t *y, int nb, __m512 acc)
{
    __m512i v;
    __m256i dh;
    load_q4_0_tail(x, nb, &v, &dh);
    return dot_q4_0(v, dh, y, acc);
}

/* Rows x, x + step, …, x + (ns − 1)·step, results at s[0], s[ss], …. NS
 * streams at once: one sequential stream keeps too few cache misses in
 * flight for the memory's latency (a single core then reads 8 GB/s); four
 * read 12, and 15 or more with software prefetch. The loop over the
 * streams is unrolled so that the accumulators stay in registers (in an
 * array indexed at run time they went through memory, a store-to-load
 * forward on every step's critical path). */
static inline __attribute__((always_inline)) void streams_q4_0(const int ns, int64_t n,
                                                               const uint8_t *x, size_t step,
                                                               const uint8_t *y, float *s,
                                                               size_t ss)
{
    const int64_t nb = n / 32, n4 = nb / 4;
    const int tail = (int)(nb % 4);
    __m512 acc[NS];
#pragma GCC unroll 8
    for (int k = 0; k < ns; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n4; i++, y += UNIT)
#pragma GCC unroll 8
        for (int k = 0; k < ns; k++) {
            const uint8_t *xk = x + k * step + 72 * i;
            _mm_prefetch((const char *)xk + PF_DIST, PF_HINT);
            acc[k] = unit_q4_0(xk, y, acc[k]);
        }
#pragma GCC unroll 8
    for (int k = 0; k < ns; k++) {
        if (tail) acc[k] = unit_q4_0_tail(x + k * step + 72 * n4, y, tail, acc[k]);
        s[k * ss] = _mm512_reduce_add_ps(acc[k]);
    }
}

static void gemv_q4_0(int64_t n, const void *vx, size_t xs, int64_t nr, const void *vy, float *s)
{
    const int64_t h = nr / NS;
    for (int64_t r = 0; r < h; r++)
        streams_q4_0(NS, n, (const uint8_t *)vx + (size_t)r * xs, (size_t)h * xs, vy, s + r,
                     (size_t)h);
    for (int64_t r = NS * h; r < nr; r++)
        streams_q4_0(1, n, (const uint8_t *)vx + (size_t)r * xs, 0, vy, s + r, 0);
}

/* Batches (matmul's tiles): NR ≤ 2 rows × NT ≤ 4 tokens, each row's blocks
 * loaded once for all tokens and every output summed exactly as
 * streams_q4_0 sums it, so that a token's outputs have the same bits alone
 * as in a batch (as in ggml, whose logits do not depend on the batch). */
static inline __attribute__((always_inline)) void tile_q4_0(int64_t n, const uint8_t *x, size_t xs,
                                                            const int NR, const uint8_t *y,
                                                            size_t ys, const int NT, float *s,
                                                            size_t ss)
{
    const int64_t nb = n / 32, n4 = nb / 4;
    const int tail = (int)(nb % 4);
    __m512 acc[2][4];
#pragma GCC unroll 2
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i <= n4; i++) {
        if (i == n4 && !tail) break;
#pragma GCC unroll 2
        for (int r = 0; r < NR; r++) {
            __m512i v;
            __m256i dh;
            if (i < n4)
                load_q4_0(x + r * xs + 72 * i, &v, &dh);
            else
                load_q4_0_tail(x + r * xs + 72 * i, tail, &v, &dh);
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++)
                acc[r][t] = dot_q4_0(v, dh, y + t * ys + (size_t)i * UNIT, acc[r][t]);
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) s[t * ss + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define TILE_FN(R, T)                                                                              \
    static void tile_q4_0_##R##_##T(int64_t n, const uint8_t *x, size_t xs, const uint8_t *y,      \
                                    size_t ys, float *s, size_t ss)                                \
    {                                                                                              \
        tile_q4_0(n, x, xs, R, y, ys, T, s, ss);                                                   \
    }
TILE_FN(1, 1)
TILE_FN(1, 2)
TILE_FN(1, 3)
TILE_FN(1, 4)
TILE_FN(2, 1)
TILE_FN(2, 2)
TILE_FN(2, 3)
TILE_FN(2, 4)

typedef void (*tile_fn)(int64_t, const uint8_t *, size_t, const uint8_t *, size_t, float *, size_t);
static const tile_fn tiles_q4_0[2][4] = {
    {tile_q4_0_1_1, tile_q4_0_1_2, tile_q4_0_1_3, tile_q4_0_1_4},
    {tile_q4_0_2_1, tile_q4_0_2_2, tile_q4_0_2_3, tile_q4_0_2_4}};

static void gemm_q4_0(int64_t n, const void *x, size_t xs, int nr, const void *y, size_t ys, int nt,
                      float *s, size_t ss)
{
    for (int r = 0; r < nr; r += 2)
        tiles_q4_0[nr - r >= 2][nt - 1](n, (const uint8_t *)x + (size_t)r * xs, xs, y, ys, s + r,
                                        ss);
}

/* ------------------------------------------------------------ Q8_0 */

/* Per 128 elements: the quants of blocks A, B, C, D as they are (signed),
 * int32 −128·Σ of the 4 activations each lane meets ([A, B], [C, D]), F32
 * d per lane ([d_A ×8 | d_B ×8], [d_C ×8 | d_D ×8]). The weights are made
 * unsigned (x + 128) for vpdpbusd and the sums start from the correction:
 * Σ (x + 128)·y − 128·Σ y = Σ x·y, the same exact integers per lane as any
 * other way round (the tiles of kernels_avx512.c take y + 128 and −128·Σ x),
 * but the correction is the activations', shared by every row. */
#define UNIT_Q8 384

static void pack_gemv_q8_0(const float *x, void *vy, int64_t n)
{
    uint8_t *o = vy;
    for (int64_t e = 0; e < n; e += 128, o += UNIT_Q8) {
        herd_block_q8_0 b[4];
        const int nb = (int)((n - e) / 32 < 4 ? (n - e) / 32 : 4);
        quantize4(x + e, nb, b);
        int32_t corr[32];
        float d[32];
        for (int k = 0; k < 4; k++) {
            memcpy(o + 32 * k, b[k].qs, 32);
            for (int l = 0; l < 8; l++) {
                int sum = 0;
                for (int i = 0; i < 4; i++) sum += b[k].qs[4 * l + i];
                corr[8 * k + l] = -128 * sum;
                d[8 * k + l] = herd_ld_f16(&b[k].d);
            }
        }
        memcpy(o + 128, corr, 128);
        memcpy(o + 256, d, 128);
    }
}

/* Blocks k, k+1 of a Q8_0 row (the second only if two) against 64 packed
 * activations (yq), their corrections (yc) and lane scales (yd). */
static inline __attribute__((always_inline)) __m512 pair_q8_0(const uint8_t *x, const uint8_t *y,
                                                              bool two, __m512 acc)
{
    __m512i v = _mm512_castsi256_si512(ld256(x + 2));
    __m256i dh = _mm256_maskz_set1_epi16(0x00ff, (short)ld_u16(x));
    if (two) {
        v = _mm512_inserti64x4(v, ld256(x + 36), 1);
        dh = _mm256_mask_set1_epi16(dh, 0xff00, (short)ld_u16(x + 34));
    } else { /* the missing block's activations are zero */
        v = _mm512_inserti64x4(v, _mm256_setzero_si256(), 1);
    }
    const __m512i u = _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
    const __m512i p = _mm512_dpbusd_epi32(_mm512_loadu_si512(y + 128), u, _mm512_loadu_si512(y));
    const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(dh), _mm512_loadu_ps(y + 256));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
}

/* As streams_q4_0, for Q8_0: pairs (A, B) into a0, (C, D) into a1, added
 * before the reduction, the order of the tiles. */
static inline __attribute__((always_inline)) void streams_q8_0(const int ns, int64_t n,
                                                               const uint8_t *x, size_t step,
                                                               const uint8_t *y, float *s,
                                                               size_t ss)
{
    const int64_t nb = n / 32, n4 = nb / 4;
    const int tail = (int)(nb % 4);
    __m512 a0[NS], a1[NS];
#pragma GCC unroll 8
    for (int k = 0; k < ns; k++) a0[k] = a1[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n4; i++, y += UNIT_Q8) {
#pragma GCC unroll 8
        for (int k = 0; k < ns; k++) {
            const uint8_t *xk = x + k * step + 136 * i;
            _mm_prefetch((const char *)xk + PF_DIST, PF_HINT);
            _mm_prefetch((const char *)xk + PF_DIST + 64, PF_HINT);
            a0[k] = pair_q8_0(xk, y, true, a0[k]);
            a1[k] = pair_q8_0(xk + 68, y + 64, true, a1[k]);
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < ns; k++) {
        const uint8_t *xk = x + k * step + 136 * n4;
        if (tail) a0[k] = pair_q8_0(xk, y, tail > 1, a0[k]);
        if (tail > 2) a1[k] = pair_q8_0(xk + 68, y + 64, false, a1[k]);
        s[k * ss] = _mm512_reduce_add_ps(_mm512_add_ps(a0[k], a1[k]));
    }
}

static void gemv_q8_0(int64_t n, const void *vx, size_t xs, int64_t nr, const void *vy, float *s)
{
    const int64_t h = nr / NS; /* NS streams, as for Q4_0 */
    for (int64_t r = 0; r < h; r++)
        streams_q8_0(NS, n, (const uint8_t *)vx + (size_t)r * xs, (size_t)h * xs, vy, s + r,
                     (size_t)h);
    for (int64_t r = NS * h; r < nr; r++)
        streams_q8_0(1, n, (const uint8_t *)vx + (size_t)r * xs, 0, vy, s + r, 0);
}

void herd_kernels_install_avx512_gemv(herd_type_traits *traits)
{
    (void)traits;
    herd_gemm_kernel *k = &herd_gemm_kernels[HERD_TYPE_Q4_0];
    /* Q4_0's batch tiles on the decode kernel's packing, summing as it does. */
    *k = (herd_gemm_kernel){.gemm = gemm_q4_0,
                            .pack = pack_gemv_q4_0,
                            .pack_block = 128,
                            .pack_block_bytes = UNIT,
                            .gemv = gemv_q4_0,
                            .gemv_pack = pack_gemv_q4_0,
                            .gemv_pack_block = 128,
                            .gemv_pack_block_bytes = UNIT};
    k = &herd_gemm_kernels[HERD_TYPE_Q8_0];
    k->gemv = gemv_q8_0;
    k->gemv_pack = pack_gemv_q8_0;
    k->gemv_pack_block = 128;
    k->gemv_pack_block_bytes = UNIT_Q8;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
