/*
 * kernels_avx2_k.c — AVX2 dot products of Q2_K, Q3_K and Q5_K weights with
 * Q8_K activations (Q4_K's and Q6_K's are their decode kernels', in
 * kernels_avx2_gemv_k.c).
 *
 * All three are computed the same way, 32 elements at a time: the weights of
 * the chunk are rebuilt as unsigned bytes u (in element order) and dotted
 * with the activations by maddubs (unsigned × signed → pairs of int16, which
 * cannot overflow: u ≤ 31, |y| ≤ 128), then madd by the chunk's sub-block
 * scales gives int32 lanes. A super-block's integer sum is exact; it is
 * scaled by d·y.d once. What u leaves out is put back through Q8_K's per-16
 * sums (bsums):
 *   Q2_K, Q5_K        x = d·s·u − dmin·m      → − dmin·y.d·Σ m·bsum
 *   Q3_K              x = d·s·(u − 4), u 0..7 → − 4·Σ s·bsum, inside the
 *                                               integer sum
 * Only the order of the F32 additions differs from the references.
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

static inline int hsum_i32(__m256i v)
{
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 1));
    return _mm_cvtsi128_si32(r);
}

/* Σ u·y·scale over a 32-element chunk as 8 int32 lanes; sc0 applies to the
 * first 16 elements, sc1 to the last 16. */
static inline __m256i chunk_dot(__m256i u, const int8_t *y, int sc0, int sc1)
{
    const __m256i p = _mm256_maddubs_epi16(u, loadu256(y));
    const __m256i s = _mm256_set_m128i(_mm_set1_epi16((short)sc1), _mm_set1_epi16((short)sc0));
    return _mm256_madd_epi16(p, s);
}

/* Bits `shift` of every byte of v. */
static inline __m256i bits_at(__m256i v, int shift, int mask)
{
    return _mm256_and_si256(_mm256_srli_epi16(v, shift), _mm256_set1_epi8((char)mask));
}

/* The 8 scales and 8 mins of a Q4_K/Q5_K block, unpacked from 12 bytes:
 * out[0..7] scales, out[8..15] mins. */
static inline void k4_scales(const uint8_t *q, uint8_t out[16])
{
    uint32_t u[4];
    memcpy(u, q, 12);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    u[3] = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
    const uint32_t mins_lo = u[1] & m6;
    u[1] = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
    u[2] = mins_lo;
    u[0] &= m6;
    memcpy(out, u, 16);
}

/* Σ m_j·bsum over the 16 groups of 16, m per group given as int16. */
static inline int mins_dot(const int16_t *bsums, __m256i m16)
{
    return hsum_i32(_mm256_madd_epi16(loadu256(bsums), m16));
}

static void vec_dot_q5_K_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q5_K *x = vx;
    const herd_block_q8_K *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        uint8_t sm[16];
        k4_scales(x[i].scales, sm);
        const __m256i m16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(
            _mm_loadu_si128((const __m128i *)sm),
            _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)));
        summ += ld_f16(&x[i].dmin) * y[i].d * (float)mins_dot(y[i].bsums, m16);
        const __m256i qh = loadu256(x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            const __m256i q = loadu256(x[i].qs + 32 * g);
            const int8_t *q8 = y[i].qs + 64 * g;
            /* Fifth bits: bit 2g of qh for the low nibbles, 2g + 1 for the
             * high ones. */
            const __m256i u0 =
                _mm256_or_si256(bits_at(q, 0, 0x0f), _mm256_slli_epi16(bits_at(qh, 2 * g, 1), 4));
            const __m256i u1 = _mm256_or_si256(bits_at(q, 4, 0x0f),
                                               _mm256_slli_epi16(bits_at(qh, 2 * g + 1, 1), 4));
            sumi = _mm256_add_epi32(sumi, chunk_dot(u0, q8, sm[2 * g], sm[2 * g]));
            sumi = _mm256_add_epi32(sumi, chunk_dot(u1, q8 + 32, sm[2 * g + 1], sm[2 * g + 1]));
        }
        const __m256 d = _mm256_set1_ps(ld_f16(&x[i].d) * y[i].d);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum8(acc) - summ;
}

/* Q3_K: u = two bits | high bit << 2 is the value + 4. */
static void vec_dot_q3_K_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q3_K *x = vx;
    const herd_block_q8_K *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        int8_t sc[16];
        herd_q3_K_scales(x[i].scales, sc);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const __m256i bias = _mm256_madd_epi16(loadu256(y[i].bsums), sc16);
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(bias, 2));
        const __m256i hm = loadu256(x[i].hmask);
        for (int c = 0; c < 8; c++) { /* element 32c + l: qs[32(c/4) + l] bits 2(c%4) */
            const __m256i q = loadu256(x[i].qs + 32 * (c / 4));
            const __m256i u = _mm256_or_si256(bits_at(q, 2 * (c % 4), 3),
                                              _mm256_slli_epi16(bits_at(hm, c, 1), 2));
            sumi = _mm256_add_epi32(sumi, chunk_dot(u, y[i].qs + 32 * c, sc[2 * c], sc[2 * c + 1]));
        }
        const __m256 d = _mm256_set1_ps(ld_f16(&x[i].d) * y[i].d);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum8(acc);
}

static void vec_dot_q2_K_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q2_K *x = vx;
    const herd_block_q8_K *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m256i m16 =
            _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0f)));
        summ += ld_f16(&x[i].dmin) * y[i].d * (float)mins_dot(y[i].bsums, m16);
        const uint8_t *sc = x[i].scales;
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) {
            const __m256i q = loadu256(x[i].qs + 32 * (c / 4));
            sumi = _mm256_add_epi32(sumi, chunk_dot(bits_at(q, 2 * (c % 4), 3), y[i].qs + 32 * c,
                                                    sc[2 * c] & 0xf, sc[2 * c + 1] & 0xf));
        }
        const __m256 d = _mm256_set1_ps(ld_f16(&x[i].d) * y[i].d);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum8(acc) - summ;
}

void herd_kernels_install_avx2_k(herd_type_traits *traits)
{
    traits[HERD_TYPE_Q2_K].vec_dot = vec_dot_q2_K_avx2;
    traits[HERD_TYPE_Q3_K].vec_dot = vec_dot_q3_K_avx2;
    traits[HERD_TYPE_Q5_K].vec_dot = vec_dot_q5_K_avx2;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
