/*
 * kernels_avx512_gemv_k.c — decoding (one token) for Q4_K, Q5_K and Q6_K
 * weights on AVX-512 VNNI: the K-quants of Q4_K_M and Q5_K_M files.
 *
 * As for Q4_0 (kernels_avx512_gemv.c), decoding streams every weight once
 * and is as fast as the memory only if the kernel keeps enough loads in
 * flight: NS rows at once, far apart, each prefetched PF_DIST bytes ahead,
 * and per super-block (256 elements) as few instructions as the format
 * allows, with the activations laid out once per product to fit the weights
 * as they are stored:
 *
 *   Q4_K  a 64-byte load of qs holds elements 0..31 and 64..95 in its low
 *         nibbles, 32..63 and 96..127 in its high ones; the activations are
 *         stored in that order, so each nibble register meets its partner
 *         with one maddubs (u·y pairs) and one vpdpwssd (× the sub-block's
 *         scale, spread over the lanes by one byte shuffle of the unpacked
 *         6-bit scales). The mins come back through per-32 activation sums:
 *         x = d·sc·u − dmin·m  →  − dmin·y_d·Σ m·ysum. Q5_K adds each
 *         quant's fifth bit from qh (block_q45_K).
 *   Q6_K  the quants unpack to element order (ql nibbles | qh bits), so
 *         the activations are Q8_K's own; 16 scales per super-block, and the
 *         −32 offset comes back exactly through the per-16 sums (bsums).
 *
 * The quantized activations are Q8_K's from_float, so the integer sums are
 * ggml's; only the order of the F32 additions differs. A row's result does
 * not depend on which of the NS streams computes it.
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

#define QK   HERD_QK_K
#define UNIT 320 /* bytes of packed activations per super-block */
#ifndef PF_DIST
#define PF_DIST 2048 /* bytes ahead per stream, as for Q4_0 */
#endif
#ifndef NS
#define NS 4 /* rows streamed at once */
#endif

enum { GK4, GK5, GK6 };

/* One super-block of activations, in registers for all NS rows. */
typedef struct {
    __m512i y[4];
    __m128i ysum; /* Q4_K: Σ y per 32 (int16 × 8) */
    __m256i bsum; /* Q6_K: Σ y per 16 (int16 × 16) */
    __m128 yd;    /* y_d in every lane */
} act_k;

/* Per row: the F32 sums of d·Σ sc·q·y (16 lanes) and of −dmin·Σ m·ysum. */
typedef struct {
    __m512 a;
    __m128 m;
} acc_k;

static inline __m512i halves16(short a, short b)
{
    return _mm512_inserti64x4(_mm512_set1_epi16(a), _mm256_set1_epi16(b), 1);
}

/* A unit per super-block, quantized as Q8_K, F32 d at 288.
 *   Q4_K (q45): y as [0..31 | 64..95], [32..63 | 96..127], [128..159 |
 *               192..223], [160..191 | 224..255], int16 Σ y of each 32;
 *   Q6_K:       y 0..255 as they are, int16 bsums (Σ y of each 16). */
static void pack_k(const float *x, uint8_t *o, int64_t n, bool q45)
{
    for (int64_t e = 0; e < n; e += QK, o += UNIT) {
        herd_block_q8_K b;
        herd_type(HERD_TYPE_Q8_K)->from_float(x + e, &b, QK);
        memset(o, 0, UNIT);
        memcpy(o + 288, &b.d, 4);
        if (!q45) {
            memcpy(o, b.qs, 256);
            memcpy(o + 256, b.bsums, 32);
            continue;
        }
        for (int g = 0; g < 2; g++) {
            memcpy(o + 128 * g, b.qs + 128 * g, 32);
            memcpy(o + 128 * g + 32, b.qs + 128 * g + 64, 32);
            memcpy(o + 128 * g + 64, b.qs + 128 * g + 32, 32);
            memcpy(o + 128 * g + 96, b.qs + 128 * g + 96, 32);
        }
        int16_t ysum[8];
        for (int j = 0; j < 8; j++) ysum[j] = (int16_t)(b.bsums[2 * j] + b.bsums[2 * j + 1]);
        memcpy(o + 256, ysum, 16);
    }
}

static void pack_gemv_q45_K(const float *x, void *vy, int64_t n)
{
    pack_k(x, vy, n, true);
}

static void pack_gemv_q6_K(const float *x, void *vy, int64_t n)
{
    pack_k(x, vy, n, false);
}

static inline __attribute__((always_inline)) act_k load_act(const uint8_t *u)
{
    act_k a;
    for (int k = 0; k < 4; k++) a.y[k] = _mm512_loadu_si512(u + 64 * k);
    a.ysum = _mm_loadu_si128((const __m128i *)(u + 256));
    a.bsum = _mm256_loadu_si256((const __m256i *)(u + 256));
    float d;
    memcpy(&d, u + 288, 4);
    a.yd = _mm_set1_ps(d);
    return a;
}

/* The 8 scales and 8 mins of a Q4_K super-block as bytes [sc 0..7 | m 0..7]
 * (herd_scale_min_k4's unpacking, four words at once). */
static inline __m128i q4_K_scales(const uint8_t *p)
{
    /* 16 bytes: the 12 of scales and the first 4 of qs (masked away). */
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    const __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* u0 u2 u1 u2 */
    const __m128i b = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* u0 u0 u1 u1 */
    const __m128i low =
        _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                      _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i high =
        _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(low, high);
}

/* One Q4_K or Q5_K super-block of a row against the activations. Q5_K is
 * Q4_K with a fifth bit per quant from qh: bit 2g of qh[l] for element
 * 64g + l, bit 2g + 1 for 64g + 32 + l, brought to bit 4 by a shift per
 * half register (the 16-bit shifts carry bits across bytes only below bit
 * 4 or above it). */
static inline __attribute__((always_inline)) acc_k block_q45_K(int kind, const uint8_t *x,
                                                               const act_k *y, acc_k acc)
{
    /* int16 lanes of the product registers: sub-blocks (0,2), (1,3), (4,6),
     * (5,7), 16 lanes each; a scale byte with a zero high byte. */
    const __m512i i0 = halves16((short)0x8000, (short)0x8002);
    const __m512i i1 = halves16((short)0x8001, (short)0x8003);
    const __m512i i2 = halves16((short)0x8004, (short)0x8006);
    const __m512i i3 = halves16((short)0x8005, (short)0x8007);
    const __m128i im = _mm_setr_epi16((short)0x8008, (short)0x8009, (short)0x800a, (short)0x800b,
                                      (short)0x800c, (short)0x800d, (short)0x800e, (short)0x800f);
    const __m512i m4 = _mm512_set1_epi8(0x0f);

    const __m128i sm = q4_K_scales(x + 4);
    const __m512i sb = _mm512_broadcast_i32x4(sm);
    const uint8_t *qs = x + (kind == GK5 ? 48 : 16);
    const __m512i v0 = _mm512_loadu_si512(qs), v1 = _mm512_loadu_si512(qs + 64);
    __m512i q0 = _mm512_and_si512(v0, m4), q1 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4);
    __m512i q2 = _mm512_and_si512(v1, m4), q3 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4);
    if (kind == GK5) {
        const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x + 16)));
        const __m512i m10 = _mm512_set1_epi8(0x10);
        /* q | (shifted & 0x10) */
        q0 = _mm512_ternarylogic_epi32(q0, _mm512_sllv_epi16(h, halves16(4, 2)), m10, 0xf8);
        q1 = _mm512_ternarylogic_epi32(q1, _mm512_sllv_epi16(h, halves16(3, 1)), m10, 0xf8);
        q2 = _mm512_ternarylogic_epi32(q2, _mm512_srlv_epi16(h, halves16(0, 2)), m10, 0xf8);
        q3 = _mm512_ternarylogic_epi32(q3, _mm512_srlv_epi16(h, halves16(1, 3)), m10, 0xf8);
    }
    __m512i p = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(q0, y->y[0]),
                                    _mm512_shuffle_epi8(sb, i0));
    p = _mm512_dpwssd_epi32(p, _mm512_maddubs_epi16(q1, y->y[1]), _mm512_shuffle_epi8(sb, i1));
    p = _mm512_dpwssd_epi32(p, _mm512_maddubs_epi16(q2, y->y[2]), _mm512_shuffle_epi8(sb, i2));
    p = _mm512_dpwssd_epi32(p, _mm512_maddubs_epi16(q3, y->y[3]), _mm512_shuffle_epi8(sb, i3));
    const __m128i mins = _mm_madd_epi16(_mm_shuffle_epi8(sm, im), y->ysum);
    uint32_t dd;
    memcpy(&dd, x, 4);
    const __m128 f = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dd)), y->yd); /* d, dmin */
    acc.a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_broadcastss_ps(f), acc.a);
    acc.m = _mm_fnmadd_ps(_mm_cvtepi32_ps(mins), _mm_permute_ps(f, 0x55), acc.m);
    return acc;
}

/* One Q6_K super-block (ql 128, qh 64, scales 16, d) of a row. */
static inline __attribute__((always_inline)) acc_k block_q6_K(const uint8_t *x, const act_k *y,
                                                              acc_k acc)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    /* See tile_q6_K (kernels_avx512.c) for the bit layout. */
    const __m512i shl_lo = halves16(4, 2), shr_hi = halves16(0, 2);
    const __m512i lane = _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22,
                                                            21, 20, 19, 18, 17, 16, 15, 14, 13, 12,
                                                            11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           3);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + 192)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    __m512i p = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int j = 0; j < 2; j++) {
        const __m512i l = _mm512_loadu_si512(x + 64 * j);
        const __m512i h =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x + 128 + 32 * j)));
        const __m512i qa = _mm512_or_si512(_mm512_and_si512(l, m4),
                                           _mm512_and_si512(_mm512_sllv_epi16(h, shl_lo), m30));
        const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                           _mm512_and_si512(_mm512_srlv_epi16(h, shr_hi), m30));
        const __m512i sa =
            _mm512_permutexvar_epi16(_mm512_add_epi16(lane, _mm512_set1_epi16((short)(8 * j))), sc);
        const __m512i sb = _mm512_permutexvar_epi16(
            _mm512_add_epi16(lane, _mm512_set1_epi16((short)(8 * j + 4))), sc);
        p = _mm512_dpwssd_epi32(p, _mm512_maddubs_epi16(qa, y->y[2 * j]), sa);
        p = _mm512_dpwssd_epi32(p, _mm512_maddubs_epi16(qb, y->y[2 * j + 1]), sb);
    }
    const __m256i bs = _mm256_madd_epi16(sc16, y->bsum);
    p = _mm512_sub_epi32(p, _mm512_zextsi256_si512(_mm256_slli_epi32(bs, 5)));
    const float d = _mm_cvtss_f32(y->yd) * herd_ld_f16(x + 208);
    acc.a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_set1_ps(d), acc.a);
    return acc;
}

static inline __attribute__((always_inline)) acc_k block_k(int kind, const uint8_t *x,
                                                           const act_k *y, acc_k acc)
{
    return kind == GK6 ? block_q6_K(x, y, acc) : block_q45_K(kind, x, y, acc);
}

static inline float finish(acc_k acc)
{
    const __m128 m = _mm_add_ps(acc.m, _mm_movehl_ps(acc.m, acc.m));
    return _mm512_reduce_add_ps(acc.a) + _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)));
}

static inline size_t block_bytes(int kind)
{
    return kind == GK4   ? sizeof(herd_block_q4_K)
           : kind == GK5 ? sizeof(herd_block_q5_K)
                         : sizeof(herd_block_q6_K);
}

static inline int pf_lines(int kind)
{
    return kind == GK6 ? 4 : 3; /* 144, 176, 210 bytes */
}

#define ACC_ZERO                                                                                   \
    {                                                                                              \
        _mm512_setzero_ps(), _mm_setzero_ps()                                                      \
    }
#include "tensor/kernels_gemv_k.h"

static void gemv_q4_K(int64_t n, const void *x, size_t xs, int64_t nr, const void *y, float *s)
{
    gemv_k(GK4, n, x, xs, nr, y, s);
}

static void gemv_q5_K(int64_t n, const void *x, size_t xs, int64_t nr, const void *y, float *s)
{
    gemv_k(GK5, n, x, xs, nr, y, s);
}

static void gemv_q6_K(int64_t n, const void *x, size_t xs, int64_t nr, const void *y, float *s)
{
    gemv_k(GK6, n, x, xs, nr, y, s);
}

void herd_kernels_install_avx512_gemv_k(herd_type_traits *traits)
{
    (void)traits;
    herd_gemm_kernel *k = &herd_gemm_kernels[HERD_TYPE_Q4_K];
    k->gemv = gemv_q4_K;
    k->gemv_pack = pack_gemv_q45_K;
    k->gemv_pack_block = QK;
    k->gemv_pack_block_bytes = UNIT;
    k = &herd_gemm_kernels[HERD_TYPE_Q5_K];
    k->gemv = gemv_q5_K;
    k->gemv_pack = pack_gemv_q45_K;
    k->gemv_pack_block = QK;
    k->gemv_pack_block_bytes = UNIT;
    k = &herd_gemm_kernels[HERD_TYPE_Q6_K];
    k->gemv = gemv_q6_K;
    k->gemv_pack = pack_gemv_q6_K;
    k->gemv_pack_block = QK;
    k->gemv_pack_block_bytes = UNIT;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
