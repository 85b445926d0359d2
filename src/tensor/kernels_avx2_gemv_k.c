/*
 * kernels_avx2_gemv_k.c — decoding (one token) for Q4_K and Q6_K weights on
 * AVX2, with AVX-VNNI where the CPU has it: the K-quants of Q4_K_M files.
 *
 * As kernels_avx2_gemv.c: NS rows at once, far apart, each prefetched
 * PF_DIST bytes ahead, a super-block's activations (Q8_K, as stored) shared
 * by the NS rows. Per super-block and row the quants are unpacked in
 * element order (nibbles; Q6_K's 6 bits from ql and qh), multiplied with
 * the activations by vpmaddubsw (unsigned × signed → int16 pairs; u ≤ 63,
 * no saturation) and by the sub-block scales by vpmaddwd (vpdpwssd with
 * AVX-VNNI), the scales spread over the lanes by byte shuffles. So int32
 * lane l holds quants 4l..4l+3 of every 32, exactly as ggml's integer
 * sums; what the unsigned quants leave out comes back through Q8_K's per-16
 * sums (bsums):
 *   Q4_K  x = d·sc·u − dmin·m  →  acc −= dmin·y_d·(Σ m·bsum, 8 lanes)
 *   Q6_K  x = d·sc·(u − 32)    →  − 32·Σ sc·bsum, exact, in the integer sum
 *
 * These are also the AVX2 vec_dot of the two types (one row), so a token's
 * outputs have the same bits alone as in a small batch (which matmul tiles
 * with vec_dot).
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

#define QK HERD_QK_K
#ifndef PF_DIST
#define PF_DIST 2048 /* bytes ahead per stream */
#endif
#ifndef NS
#define NS 4 /* rows streamed at once */
#endif

enum { GK4, GK6 };

/* acc + Σ over int16 pairs of p·s, per int32 lane (VEX vpdpwssd through asm
 * where the CPU has AVX-VNNI, as kernels_avx2_mm.c). */
static inline __attribute__((always_inline)) __m256i dpwssd(bool vnni, __m256i acc, __m256i p,
                                                            __m256i s)
{
    if (!vnni) return _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
    __asm__("%{vex%} vpdpwssd %2, %1, %0" : "+x"(acc) : "x"(p), "x"(s));
    return acc;
}

/* Bytes (j, zero) 16 times: the int16 scale j of [sc 0..7 | m 0..7]. */
static inline __m256i pick16(int j)
{
    return _mm256_set1_epi16((short)(0x8000 | j));
}

/* The 8 scales and 8 mins of a Q4_K super-block as bytes [sc 0..7 | m 0..7]
 * (herd_scale_min_k4's unpacking, four words at once). p: the 12 scale bytes
 * and 4 more of the block (masked away). */
static inline __m128i q4_K_scales(const uint8_t *p)
{
    const __m128i v = loadu128(p);
    const __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* u0 u2 u1 u2 */
    const __m128i b = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* u0 u0 u1 u1 */
    const __m128i low =
        _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                      _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i high =
        _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(low, high);
}

/* One Q4_K super-block of a row against Q8_K activations y. */
static inline __attribute__((always_inline)) __m256 block_q4_K(bool vnni, const uint8_t *x,
                                                               const herd_block_q8_K *y, __m256 acc)
{
    const __m128i sm = q4_K_scales(x + 4);
    const __m256i sb = _mm256_set_m128i(sm, sm);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        const __m256i q = loadu256(x + 16 + 32 * g);
        const __m256i lo = _mm256_and_si256(q, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        sumi = dpwssd(vnni, sumi, _mm256_maddubs_epi16(lo, loadu256(y->qs + 64 * g)),
                      _mm256_shuffle_epi8(sb, pick16(2 * g)));
        sumi = dpwssd(vnni, sumi, _mm256_maddubs_epi16(hi, loadu256(y->qs + 64 * g + 32)),
                      _mm256_shuffle_epi8(sb, pick16(2 * g + 1)));
    }
    /* Min j covers groups of 16 2j and 2j + 1: int16 k of the low half is
     * m[k/2], of the high half m[4 + k/2]. */
    const __m256i im =
        _mm256_setr_epi8(8, -1, 8, -1, 9, -1, 9, -1, 10, -1, 10, -1, 11, -1, 11, -1, 12, -1, 12, -1,
                         13, -1, 13, -1, 14, -1, 14, -1, 15, -1, 15, -1);
    const __m256i mins = _mm256_madd_epi16(_mm256_shuffle_epi8(sb, im), loadu256(y->bsums));
    uint32_t dd;
    memcpy(&dd, x, 4);
    const __m128 f = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dd)), _mm_set1_ps(y->d));
    acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(f), _mm256_cvtepi32_ps(sumi), acc);
    return _mm256_fnmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(f)), _mm256_cvtepi32_ps(mins),
                            acc);
}

/* One Q6_K super-block (ql 128, qh 64, scales 16, d) of a row. */
static inline __attribute__((always_inline)) __m256 block_q6_K(bool vnni, const uint8_t *x,
                                                               const herd_block_q8_K *y, __m256 acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x + 192));
    /* Chunk c of 32 quants takes scale 2c for its first 16, 2c + 1 for the
     * rest: the low (c < 4) or high half of sc16 in both halves, then
     * int16 (2c) % 8 in the low half and (2c + 1) % 8 in the high one. */
    const __m256i half[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                             _mm256_permute2x128_si256(sc16, sc16, 0x11)};
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int j = 0; j < 2; j++) {
        const uint8_t *ql = x + 64 * j, *qh = x + 128 + 32 * j;
        const __m256i l0 = loadu256(ql), l1 = loadu256(ql + 32), h = loadu256(qh);
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                               _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                               _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_and_si256(h, m30));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const int lo = (2 * k) % 8, hi = (2 * k + 1) % 8;
            const __m256i pat = _mm256_setr_epi8(
                (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1),
                (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1),
                (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1),
                (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1),
                (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1),
                (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1),
                (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1),
                (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1));
            const __m256i p = _mm256_maddubs_epi16(q[k], loadu256(y->qs + 128 * j + 32 * k));
            sumi = dpwssd(vnni, sumi, p, _mm256_shuffle_epi8(half[j], pat));
        }
    }
    const __m256i bs = _mm256_madd_epi16(sc16, loadu256(y->bsums));
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(bs, 5));
    uint16_t dh;
    memcpy(&dh, x + 208, 2);
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(dh) * y->d);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
}

/* Rows r, r + h, … (x is row r, the others step bytes apart), results at
 * s[0], s[ss], …. */
static inline __attribute__((always_inline)) void streams_k(int kind, bool vnni, const int ns,
                                                            int64_t nb, const uint8_t *x,
                                                            size_t step, const herd_block_q8_K *y,
                                                            float *s, size_t ss)
{
    const size_t bs = kind == GK4 ? sizeof(herd_block_q4_K) : sizeof(herd_block_q6_K);
    __m256 acc[NS];
#pragma GCC unroll 8
    for (int k = 0; k < ns; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
#pragma GCC unroll 8
        for (int k = 0; k < ns; k++) {
            const uint8_t *xb = x + k * step + i * bs;
            if (ns > 1)
                for (size_t o = 0; o < bs; o += 64)
                    _mm_prefetch((const char *)xb + o + PF_DIST, _MM_HINT_T0);
            acc[k] = kind == GK4 ? block_q4_K(vnni, xb, y + i, acc[k])
                                 : block_q6_K(vnni, xb, y + i, acc[k]);
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < ns; k++) s[k * ss] = hsum8(acc[k]);
}

static inline __attribute__((always_inline)) void gemv_k(int kind, bool vnni, int64_t n,
                                                         const void *vx, size_t xs, int64_t nr,
                                                         const void *y, float *s)
{
    const int64_t h = nr / NS, nb = n / QK;
    for (int64_t r = 0; r < h; r++)
        streams_k(kind, vnni, NS, nb, (const uint8_t *)vx + (size_t)r * xs, (size_t)h * xs, y,
                  s + r, (size_t)h);
    for (int64_t r = NS * h; r < nr; r++)
        streams_k(kind, vnni, 1, nb, (const uint8_t *)vx + (size_t)r * xs, 0, y, s + r, 0);
}

#define GEMV_K(NAME, KIND, VNNI)                                                                   \
    static void NAME(int64_t n, const void *x, size_t xs, int64_t nr, const void *y, float *s)     \
    {                                                                                              \
        gemv_k(KIND, VNNI, n, x, xs, nr, y, s);                                                    \
    }
GEMV_K(gemv_q4_K, GK4, false)
GEMV_K(gemv_q6_K, GK6, false)
GEMV_K(gemv_q4_K_vnni, GK4, true)
GEMV_K(gemv_q6_K_vnni, GK6, true)

/* vec_dot: one row, the same sums. */
static void vec_dot_q4_K_avx2(int64_t n, float *s, const void *x, const void *y)
{
    gemv_k(GK4, false, n, x, 0, 1, y, s);
}

static void vec_dot_q6_K_avx2(int64_t n, float *s, const void *x, const void *y)
{
    gemv_k(GK6, false, n, x, 0, 1, y, s);
}

herd_gemv_fn herd_avx2_gemv_k(uint32_t type, bool vnni)
{
    switch (type) {
    case HERD_TYPE_Q4_K:
        return vnni ? gemv_q4_K_vnni : gemv_q4_K;
    case HERD_TYPE_Q6_K:
        return vnni ? gemv_q6_K_vnni : gemv_q6_K;
    default:
        return NULL;
    }
}

void herd_kernels_install_avx2_gemv_k(herd_type_traits *traits)
{
    traits[HERD_TYPE_Q4_K].vec_dot = vec_dot_q4_K_avx2;
    traits[HERD_TYPE_Q6_K].vec_dot = vec_dot_q6_K_avx2;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
