/*
 * kernels_avx2.h — internal: the small helpers every AVX2 kernel file uses
 * (kernels_avx2*.c, and the AVX-512 ones, whose targets include AVX2), once.
 * Include it after the file's target pragma ("avx2,fma,f16c" or wider):
 * these bodies are compiled for the includer's target.
 */
#ifndef HERD_KERNELS_AVX2_H
#define HERD_KERNELS_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* The sum of the 8 lanes (the same order everywhere: the decode kernels and
 * the tiles must give the same bits). */
static inline float hsum8(__m256 v)
{
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline float ld_f16(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline __m256i loadu256(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

static inline __m128i loadu128(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* VEX vpdpbusd (AVX-VNNI) through asm, so that no file needs an AVX-VNNI
 * target: only called where the CPU has it. */
static inline __m256i dpbusd_vnni(__m256i acc, __m256i u, __m256i s)
{
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(s));
    return acc;
}

#endif
