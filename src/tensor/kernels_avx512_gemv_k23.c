/*
 * kernels_avx512_gemv_k23.c — decoding (one token) for Q2_K and Q3_K weights
 * on AVX-512 VNNI: the low K-quants of Q2_K and Q3_K_* files (a Q2_K file
 * as llama.cpp makes it holds Q2_K, Q3_K, Q4_K and Q6_K tensors).
 *
 * As for Q4_K (kernels_avx512_gemv_k.c): NS rows streamed at once, each
 * prefetched PF_DIST bytes ahead, and per super-block (256 elements) as few
 * instructions as the format allows, with the activations laid out once per
 * product to fit the weights as they are stored. Both formats keep 2-bit
 * quants in 64 bytes of qs: byte l of half k holds elements 128k + 32j + l
 * at bits 2j, 2j+1. One 64-byte load holds both halves, so the shift by 2j
 * (and a mask) gives, in one register, elements 32j..32j+31 and 128+32j..
 * 128+32j+31; the activations are stored in that order. Each register meets
 * its partner with one maddubs (u·y pairs) and one vpdpwssd (× the
 * sub-block's scale: each 128-bit lane of the register is one sub-block of
 * 16, so the scale spreads over it with one shuffle):
 *
 *   Q2_K  x = d·(sc & 15)·u − dmin·(sc >> 4), u 0..3: the mins come back
 *         through the per-16 activation sums (bsums) as in ggml.
 *   Q3_K  x = d·s·(u − 4), u = q | hbit << 2 in 0..7, s the signed 6-bit
 *         scale: the −4 comes back exactly through −4·Σ s·bsum in the
 *         integer sum. The high bits (bit j of hmask[l] for half 0, bit
 *         4 + j for half 1) reach bit 2 of each byte with one rotate per
 *         register.
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
#define PF_DIST 2048 /* bytes ahead per stream, as for Q4_0 and Q4_K */
#endif
#ifndef NS
#define NS 4 /* rows streamed at once */
#endif

enum { GK2, GK3 };

/* One super-block of activations, in registers for all NS rows. */
typedef struct {
    __m512i y[4];
    __m256i bsum; /* Σ y per 16, element order (int16 × 16) */
    float d;
} act_k;

/* Per row: the F32 sums of d·Σ sc·u·y (16 lanes) and of −dmin·Σ m·bsum. */
typedef struct {
    __m512 a;
    __m256 m;
} acc_k;

/* A unit per super-block, quantized as Q8_K: register j (bytes 64j..64j+63)
 * holds y 32j..32j+31 then 128+32j..128+32j+31; int16 bsums at 256, F32 d
 * at 288. */
static void pack_gemv_q23_K(const float *x, void *vy, int64_t n)
{
    uint8_t *o = vy;
    for (int64_t e = 0; e < n; e += QK, o += UNIT) {
        herd_block_q8_K b;
        herd_type(HERD_TYPE_Q8_K)->from_float(x + e, &b, QK);
        memset(o, 0, UNIT);
        for (int j = 0; j < 4; j++) {
            memcpy(o + 64 * j, b.qs + 32 * j, 32);
            memcpy(o + 64 * j + 32, b.qs + 128 + 32 * j, 32);
        }
        memcpy(o + 256, b.bsums, 32);
        memcpy(o + 288, &b.d, 4);
    }
}

static inline __attribute__((always_inline)) act_k load_act(const uint8_t *u)
{
    act_k a;
    for (int k = 0; k < 4; k++) a.y[k] = _mm512_loadu_si512(u + 64 * k);
    a.bsum = _mm256_loadu_si256((const __m256i *)(u + 256));
    memcpy(&a.d, u + 288, 4);
    return a;
}

/* int16 lanes: a in the first 128 bits, b, c, d in the next ones. */
static inline __m512i quarters16(short a, short b, short c, short d)
{
    const int wa = (int)((uint16_t)a * 0x10001u), wb = (int)((uint16_t)b * 0x10001u);
    const int wc = (int)((uint16_t)c * 0x10001u), wd = (int)((uint16_t)d * 0x10001u);
    return _mm512_setr_epi32(wa, wa, wa, wa, wb, wb, wb, wb, wc, wc, wc, wc, wd, wd, wd, wd);
}

/* The 2-bit quants of register j (elements 32j.. and 128+32j..). */
static inline __m512i bits2(__m512i v, int j)
{
    return _mm512_and_si512(j ? _mm512_srli_epi16(v, 2 * j) : v, _mm512_set1_epi8(3));
}

/* One Q2_K super-block (scales 16, qs 64, d, dmin) of a row. */
static inline __attribute__((always_inline)) acc_k block_q2_K(const uint8_t *x, const act_k *y,
                                                              acc_k acc)
{
    const __m128i sc = _mm_loadu_si128((const __m128i *)x);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    /* The scales as bytes in every 128-bit lane; each int16 lane of
     * register j picks its sub-block's (2j, 2j+1, 8+2j, 9+2j) with a zero
     * high byte. */
    const __m512i sb = _mm512_broadcast_i32x4(_mm_and_si128(sc, m4));
    const __m512i v = _mm512_loadu_si512(x + 16);
    __m512i p = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const short s = (short)(0x8000 | 2 * j);
        const __m512i idx = quarters16(s, (short)(s + 1), (short)(s + 8), (short)(s + 9));
        p = _mm512_dpwssd_epi32(p, _mm512_maddubs_epi16(bits2(v, j), y->y[j]),
                                _mm512_shuffle_epi8(sb, idx));
    }
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc, 4), m4));
    const __m256i ms = _mm256_madd_epi16(mins, y->bsum);
    uint32_t dd;
    memcpy(&dd, x + 80, 4);
    const __m128 f = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dd)), _mm_set1_ps(y->d));
    acc.a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_broadcastss_ps(f), acc.a);
    acc.m =
        _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_broadcastss_ps(_mm_movehdup_ps(f)), acc.m);
    return acc;
}

/* The 16 6-bit scales of a Q3_K block as signed bytes −32..31, in order
 * (herd_q3_K_scales, four words at once). p: the 12 bytes of scales. */
static inline __m128i q3_K_scales(const uint8_t *p)
{
    /* 16 bytes ending with the block's last (d): the scales' 12 then d. */
    const __m128i v = _mm_srli_si128(_mm_loadu_si128((const __m128i *)(p - 2)), 2);
    const __m128i lo = _mm_and_si128(
        _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 1, 0)), _mm_setr_epi32(0, 0, 4, 4)),
        _mm_set1_epi8(0x0f));
    const __m128i hi = _mm_and_si128(
        _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 2, 2, 2)), _mm_setr_epi32(0, 2, 4, 6)),
        _mm_set1_epi8(3));
    return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi32(hi, 4)), _mm_set1_epi8(32));
}

/* One Q3_K super-block (hmask 32, qs 64, scales 12, d) of a row. */
static inline __attribute__((always_inline)) acc_k block_q3_K(const uint8_t *x, const act_k *y,
                                                              acc_k acc)
{
    const __m256i sc16 = _mm256_cvtepi8_epi16(q3_K_scales(x + 96));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    const __m512i v = _mm512_loadu_si512(x + 32);
    const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x));
    const __m512i b2 = _mm512_set1_epi8(4);
    __m512i p = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        /* Bit j (half 0) or 4 + j (half 1) of each byte to bit 2: no bit
         * that lands on a byte's bit 2 crosses from another byte. */
        const int r0 = (2 - j) & 31, r1 = (30 - j) & 31;
        const __m512i hb = _mm512_rolv_epi32(
            h, _mm512_inserti64x4(_mm512_set1_epi32(r0), _mm256_set1_epi32(r1), 1));
        const __m512i u = _mm512_ternarylogic_epi32(bits2(v, j), hb, b2, 0xf8); /* q | (hb & 4) */
        const short s = (short)(2 * j);
        const __m512i idx = quarters16(s, (short)(s + 1), (short)(s + 8), (short)(s + 9));
        p = _mm512_dpwssd_epi32(p, _mm512_maddubs_epi16(u, y->y[j]),
                                _mm512_permutexvar_epi16(idx, sc));
    }
    const __m256i bs = _mm256_madd_epi16(sc16, y->bsum);
    p = _mm512_sub_epi32(p, _mm512_zextsi256_si512(_mm256_slli_epi32(bs, 2)));
    const float d = y->d * herd_ld_f16(x + 108);
    acc.a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_set1_ps(d), acc.a);
    return acc;
}

static inline __attribute__((always_inline)) acc_k block_k(int kind, const uint8_t *x,
                                                           const act_k *y, acc_k acc)
{
    return kind == GK2 ? block_q2_K(x, y, acc) : block_q3_K(x, y, acc);
}

static inline float finish(acc_k acc)
{
    const __m128 m = _mm_add_ps(_mm256_castps256_ps128(acc.m), _mm256_extractf128_ps(acc.m, 1));
    const __m128 m2 = _mm_add_ps(m, _mm_movehl_ps(m, m));
    return _mm512_reduce_add_ps(acc.a) + _mm_cvtss_f32(_mm_add_ss(m2, _mm_movehdup_ps(m2)));
}

static inline size_t block_bytes(int kind)
{
    return kind == GK2 ? sizeof(herd_block_q2_K) : sizeof(herd_block_q3_K);
}

static inline int pf_lines(int kind)
{
    (void)kind;
    return 2; /* a block is at most 110 bytes */
}

#define ACC_ZERO                                                                                   \
    {                                                                                              \
        _mm512_setzero_ps(), _mm256_setzero_ps()                                                   \
    }
#include "tensor/kernels_gemv_k.h"

static void gemv_q2_K(int64_t n, const void *x, size_t xs, int64_t nr, const void *y, float *s)
{
    gemv_k(GK2, n, x, xs, nr, y, s);
}

static void gemv_q3_K(int64_t n, const void *x, size_t xs, int64_t nr, const void *y, float *s)
{
    gemv_k(GK3, n, x, xs, nr, y, s);
}

void herd_kernels_install_avx512_gemv_k23(herd_type_traits *traits)
{
    (void)traits;
    herd_gemm_kernel *k = &herd_gemm_kernels[HERD_TYPE_Q2_K];
    k->gemv = gemv_q2_K;
    k->gemv_pack = pack_gemv_q23_K;
    k->gemv_pack_block = QK;
    k->gemv_pack_block_bytes = UNIT;
    k = &herd_gemm_kernels[HERD_TYPE_Q3_K];
    k->gemv = gemv_q3_K;
    k->gemv_pack = pack_gemv_q23_K;
    k->gemv_pack_block = QK;
    k->gemv_pack_block_bytes = UNIT;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
