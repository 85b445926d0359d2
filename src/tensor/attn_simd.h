/*
 * attn_simd.h — vector helpers shared by the attention kernels (attn.c,
 * attn_dec.c).
 */
#ifndef HERD_ATTN_SIMD_H
#define HERD_ATTN_SIMD_H

#ifdef __x86_64__
#include <immintrin.h>

#define HERD_T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

/* expf for 16 lanes: 2^(x·log2 e) split into integer and fraction, the
 * fraction's power by a degree-6 polynomial (error about 1 ulp); −inf and
 * large negative x give 0. */
static inline HERD_T512 __m512 herd_exp16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-88.0f));
    const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = x − n·ln 2 in two steps (Cody–Waite) */
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}
#endif

#endif
