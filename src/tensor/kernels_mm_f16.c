/*
 * kernels_mm_f16.c — prompt-sized products of F16 weights without AMX: the
 * activations packed once, the weights unpacked per panel and chunk, the
 * (token group, panel) items handed to the threads. The vector tiles are
 * per ISA (kernels_avx2_mm.c); the layout is in kernels_mm.h.
 *
 * Why panels here too. The 2 × 4 tiles of kernels_avx2_gemv.c take a
 * weight vector (8 elements of one row) and an activation vector (8 of one
 * token) per FMA pair: six loads and two conversions per eight FMAs, and
 * the core waits on its load ports. With F32 rows in the lanes, a tile of 16
 * rows × 6 tokens does 12 FMAs per element for two weight loads and six
 * broadcasts, no conversion: the FMAs set the pace.
 *
 * Chunks of MM_F16_KC elements: a chunk of a panel (16 KB) stays in L1
 * while every token of the group goes through it, and each output's sum is
 * blocked (KC products in a lane, then the chunks), closer to the exact sum
 * than one lane over the whole row. Nothing is kept between products.
 */
#include "tensor/kernels_mm.h"
#include "util/pool.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#ifndef MM_F16_KC
#define MM_F16_KC 256 /* elements per chunk */
#endif
/* Token groups of at most this many activation bytes, each panel chunk
 * unpacked once per group (as MM_GROUP_BYTES in kernels_mm.c). */
#ifndef MM_F16_GROUP_BYTES
#define MM_F16_GROUP_BYTES (1u << 20)
#endif

bool herd_mm_f16_supports(const herd_mm_isa *isa, int64_t n_in)
{
    return isa && isa->f16_rows > 0 && isa->f16[1] && n_in > 0;
}

/* Floats per activation row: whole cache lines, so every row starts on one. */
static size_t act_stride(int64_t n_in)
{
    return (size_t)(n_in + 15) / 16 * 16;
}

size_t herd_mm_f16_work_size(int64_t n_in, int64_t n_tok)
{
    return act_stride(n_in) * 4 * (size_t)n_tok + 64;
}

/* x rounded to F16 and widened back: the values ggml's F16 dot sees. */
static void pack_row(const float *x, float *a, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_store_ps(a + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                                               _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) a[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

/* r[j] becomes element j of the rows r[0..7] (an 8 × 8 transpose; written
 * out, so that everything stays in registers). */
static inline __attribute__((always_inline)) void transpose8(__m256 r[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    /* s_j: element j of rows 0..3 | element j + 4 of them (and rows 4..7) */
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Elements k0 .. k0 + kc − 1 of rows 0 .. nr − 1 of w (F16 rows ws bytes
 * apart) into buf, element k of row r at (k − k0)·P + r; rows from nr to P
 * zero. */
static void unpack_chunk(const uint8_t *w, size_t ws, int nr, int P, int64_t k0, int64_t kc,
                         float *buf)
{
    for (int g = 0; g < P; g += 8) {
        int64_t k = 0;
        /* Missing rows read row 0 and are zeroed after the transpose. */
        const uint8_t *row[8];
        for (int i = 0; i < 8; i++) row[i] = w + (size_t)(g + i < nr ? g + i : 0) * ws + 2 * k0;
        const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - g),
                                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (; k + 8 <= kc; k += 8) {
            __m256 r[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row[i] + 2 * k)));
            transpose8(r);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                _mm256_store_ps(buf + (k + j) * P + g,
                                _mm256_and_ps(r[j], _mm256_castsi256_ps(keep)));
        }
        for (; k < kc; k++)
            for (int i = 0; i < 8; i++)
                buf[k * P + g + i] =
                    g + i < nr ? herd_ld_f16(w + (size_t)(g + i) * ws + 2 * (k0 + k)) : 0.0f;
    }
}

/* The next chunk's rows are asked for while the tokens go through this
 * one: the unpacking waited on the memory (13% of an F16 prompt with the
 * hardware prefetchers alone, 16 streams of 512 bytes). */
static void prefetch_chunk(const uint8_t *w, size_t ws, int nr, int64_t k0, int64_t n_in)
{
    if (k0 >= n_in) return;
    const int64_t k1 = k0 + MM_F16_KC < n_in ? k0 + MM_F16_KC : n_in;
    for (int r = 0; r < nr; r++)
        for (int64_t b = 2 * k0; b < 2 * k1; b += 64)
            _mm_prefetch((const char *)w + (size_t)r * ws + b, _MM_HINT_T0);
}

typedef struct {
    const herd_mm_isa *isa;
    const uint8_t *w;
    const float *x;
    float *y, *act, *bufs;
    int64_t n_in, n_rows, n_tok, n_panels, tg, n_groups;
    size_t w_stride, as, pb;
    atomic_int next;
} f16_job;

static void pack_job(void *arg, int ith, int nth)
{
    f16_job *j = arg;
    for (int64_t t = ith; t < j->n_tok; t += nth)
        pack_row(j->x + t * j->n_in, j->act + (size_t)t * j->as, j->n_in);
}

/* Items are (token group, panel), panels inner; each item goes through its
 * panel chunk by chunk, every token of the group through each chunk. */
static void compute_job(void *arg, int ith, int nth)
{
    (void)nth;
    f16_job *j = arg;
    const int P = j->isa->f16_rows, NT = j->isa->f16_tok;
    float *buf = j->bufs + j->pb * (size_t)ith;
    for (int64_t it; (it = atomic_fetch_add(&j->next, 1)) < j->n_groups * j->n_panels;) {
        const int64_t p = it % j->n_panels, g = it / j->n_panels, r0 = p * P;
        const int64_t t0 = g * j->tg, t1 = t0 + j->tg < j->n_tok ? t0 + j->tg : j->n_tok;
        const int nr = (int)(j->n_rows - r0 < P ? j->n_rows - r0 : P);
        const uint8_t *w = j->w + (size_t)r0 * j->w_stride;
        for (int64_t k0 = 0; k0 < j->n_in; k0 += MM_F16_KC) {
            const int64_t kc = j->n_in - k0 < MM_F16_KC ? j->n_in - k0 : MM_F16_KC;
            unpack_chunk(w, j->w_stride, nr, P, k0, kc, buf);
            prefetch_chunk(w, j->w_stride, nr, k0 + MM_F16_KC, j->n_in);
            for (int64_t t = t0; t < t1; t += NT) {
                const int nt = (int)(t1 - t < NT ? t1 - t : NT);
                j->isa->f16[nt](buf, kc, j->act + (size_t)t * j->as + k0, j->as,
                                j->y + (size_t)t * j->n_rows + r0, (size_t)j->n_rows, nr, k0 > 0);
            }
        }
    }
}

bool herd_mm_f16_matmul(const herd_mm_isa *isa, const void *w, int64_t n_in, int64_t n_rows,
                        const float *x, int64_t n_tok, float *y, void *work, int n_threads)
{
    f16_job j = {.isa = isa,
                 .w = w,
                 .x = x,
                 .y = y,
                 .n_in = n_in,
                 .n_rows = n_rows,
                 .n_tok = n_tok,
                 .w_stride = (size_t)n_in * 2,
                 .as = act_stride(n_in)};
    const int P = isa->f16_rows;
    j.n_panels = (n_rows + P - 1) / P;
    j.act = (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    /* Whole tiles per group, at least one. */
    const int64_t nt = isa->f16_tok;
    j.tg = (int64_t)(MM_F16_GROUP_BYTES / (j.as * 4)) / nt * nt;
    if (j.tg < nt) j.tg = nt;
    j.n_groups = (n_tok + j.tg - 1) / j.tg;
    j.pb = (size_t)MM_F16_KC * (size_t)P;
    if (!(j.bufs = herd_alloc_aligned(j.pb * 4 * (size_t)n_threads))) return false;
    atomic_init(&j.next, 0);
    herd_parallel(n_threads, pack_job, &j);
    herd_parallel(n_threads, compute_job, &j);
    free(j.bufs);
    return true;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
