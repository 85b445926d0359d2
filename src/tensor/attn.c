/*
 * attn.c — attention of a group of queries over KV cache rows, in F32: the
 * arithmetic of ggml's tiled flash-attention path (batches of 64 tokens or
 * more), organized for speed.
 *
 * Per query the result is what an online softmax over the visible cells
 * gives: scores s = q·k·scale + mask, weights exp(s − max), output
 * Σ exp(s − max)·v / Σ exp(s − max), all in F32 with K and V read from the
 * cache as stored (F16 rounded values, widened exactly). Only the order of
 * the F32 sums differs from a query-by-query loop.
 *
 * The work is arranged so that each K and V row is converted to F32 once
 * for a whole group of queries (every query head that shares a KV head, and
 * many tokens), and the products are dense: a chunk of CHUNK keys is
 * widened and transposed, the scores of all queries against it are an
 * (nq × D)·(D × CHUNK) product, then the chunk's V rows are summed into the
 * queries' accumulators with their weights. The running maximum of each
 * query is updated once per chunk, not per key. Chunks whose keys no query
 * can see (all in the future, or all outside the sliding window) are
 * skipped without being read.
 */
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

#define CHUNK 32 /* keys per chunk */

/* Mask of query i for a key at kpos: 0 / −slope·|i−j| (F16-rounded as
 * llama.cpp's F16 mask stores it), or −inf where it cannot see the key. */
static inline float mask_value(const herd_attn_args *a, int pos, int kpos)
{
    if (kpos > pos || (a->swa > 0 && kpos <= pos - a->swa)) return -INFINITY;
    if (a->slope == 0.0f) return 0.0f;
    return a->slope * herd_f16_to_f32(herd_f32_to_f16(-(float)(pos - kpos)));
}

static inline float cache_val(const uint8_t *row, uint32_t type, int i)
{
    if (type == HERD_TYPE_F16) return herd_ld_f16(row + 2 * i);
    float f;
    memcpy(&f, row + 4 * i, 4);
    return f;
}

/* ------------------------------------------------------------ scalar */

static void attn_scalar(const herd_attn_args *a)
{
    const int D = a->head_dim;
    for (int q = 0; q < a->nq; q++) {
        const float *qv = a->q[q];
        float *out = a->out[q], M = -INFINITY, S = 0.0f;
        for (int i = 0; i < D; i++) out[i] = 0.0f;
        for (int j = 0; j < a->n_cells; j++) {
            const int c = a->cells[j];
            const float mv = mask_value(a, a->q_pos[q], a->cell_pos[c]);
            if (mv == -INFINITY) continue;
            const uint8_t *k = a->k + (size_t)c * a->row_bytes,
                          *v = a->v + (size_t)c * a->row_bytes;
            float s = 0.0f;
            for (int i = 0; i < D; i++) s += qv[i] * cache_val(k, a->type, i);
            s = s * a->scale + mv;
            float ms = 1.0f, vs = 1.0f;
            if (s > M) {
                ms = expf(M - s);
                M = s;
                for (int i = 0; i < D; i++) out[i] *= ms;
            } else {
                vs = expf(s - M);
            }
            for (int i = 0; i < D; i++) out[i] += cache_val(v, a->type, i) * vs;
            S = S * ms + vs;
        }
        const float inv = S > 0 ? 1.0f / S : 0.0f;
        for (int i = 0; i < D; i++) out[i] *= inv;
    }
}

/* ------------------------------------------------------------ AVX-512 */

#ifdef __x86_64__
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

/* expf for 16 lanes: 2^(x·log2 e) split into integer and fraction, the
 * fraction's power by a degree-6 polynomial (error about 1 ulp); −inf and
 * large negative x give 0. */
static inline T512 __m512 exp16(__m512 x)
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

/* Row i (D values, D a multiple of 16) of the cache as F32. */
static inline T512 __m512 ld_row16(const uint8_t *row, uint32_t type, int i)
{
    if (type == HERD_TYPE_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 2 * i)));
    return _mm512_loadu_ps(row + 4 * i);
}

static T512 void attn_avx512(const herd_attn_args *a, float *scratch)
{
    const int D = a->head_dim, nq = a->nq;
    /* scratch: KT[D][CHUNK], V[CHUNK][D], s[nq][CHUNK], M[nq], S[nq] */
    float *KT = scratch, *V = KT + (size_t)D * CHUNK, *sc = V + (size_t)CHUNK * D;
    float *Mx = sc + (size_t)nq * CHUNK, *Sx = Mx + nq;
    int min_pos = a->q_pos[0], max_pos = a->q_pos[0];
    for (int q = 0; q < nq; q++) {
        for (int i = 0; i < D; i++) a->out[q][i] = 0.0f;
        Mx[q] = -INFINITY;
        Sx[q] = 0.0f;
        if (a->q_pos[q] < min_pos) min_pos = a->q_pos[q];
        if (a->q_pos[q] > max_pos) max_pos = a->q_pos[q];
    }
    for (int j0 = 0; j0 < a->n_cells; j0 += CHUNK) {
        const int nk = a->n_cells - j0 < CHUNK ? a->n_cells - j0 : CHUNK;
        /* Skip a chunk that no query sees. */
        bool any = false;
        for (int j = 0; j < nk && !any; j++) {
            const int kp = a->cell_pos[a->cells[j0 + j]];
            any = kp <= max_pos && (a->swa <= 0 || kp > min_pos - a->swa);
        }
        if (!any) continue;
        /* Widen the chunk: K transposed (scores as a product), V as rows. */
        for (int j = 0; j < CHUNK; j++) {
            if (j >= nk) {
                for (int i = 0; i < D; i++) KT[(size_t)i * CHUNK + j] = 0.0f;
                memset(V + (size_t)j * D, 0, (size_t)D * sizeof(float));
                continue;
            }
            const int c = a->cells[j0 + j];
            const uint8_t *k = a->k + (size_t)c * a->row_bytes,
                          *v = a->v + (size_t)c * a->row_bytes;
            for (int i = 0; i < D; i += 16) {
                float t[16];
                _mm512_storeu_ps(t, ld_row16(k, a->type, i));
                for (int l = 0; l < 16; l++) KT[(size_t)(i + l) * CHUNK + j] = t[l];
                _mm512_storeu_ps(V + (size_t)j * D + i, ld_row16(v, a->type, i));
            }
        }
        for (int q = 0; q < nq; q++) {
            /* Scores of query q against the chunk's 32 keys. */
            const float *qv = a->q[q];
            __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
            for (int i = 0; i < D; i++) {
                const __m512 b = _mm512_set1_ps(qv[i]);
                s0 = _mm512_fmadd_ps(b, _mm512_loadu_ps(KT + (size_t)i * CHUNK), s0);
                s1 = _mm512_fmadd_ps(b, _mm512_loadu_ps(KT + (size_t)i * CHUNK + 16), s1);
            }
            float mv[CHUNK];
            for (int j = 0; j < CHUNK; j++)
                mv[j] =
                    j < nk ? mask_value(a, a->q_pos[q], a->cell_pos[a->cells[j0 + j]]) : -INFINITY;
            const __m512 scale = _mm512_set1_ps(a->scale);
            s0 = _mm512_add_ps(_mm512_mul_ps(s0, scale), _mm512_loadu_ps(mv));
            s1 = _mm512_add_ps(_mm512_mul_ps(s1, scale), _mm512_loadu_ps(mv + 16));
            const float cmax = _mm512_reduce_max_ps(_mm512_max_ps(s0, s1));
            if (cmax == -INFINITY) continue; /* nothing visible in this chunk */
            /* New running maximum: rescale what was summed so far. */
            const float M = cmax > Mx[q] ? cmax : Mx[q];
            if (M > Mx[q] && Mx[q] != -INFINITY) {
                const float ms = expf(Mx[q] - M);
                Sx[q] *= ms;
                for (int i = 0; i < D; i += 16)
                    _mm512_storeu_ps(a->out[q] + i, _mm512_mul_ps(_mm512_loadu_ps(a->out[q] + i),
                                                                  _mm512_set1_ps(ms)));
            }
            Mx[q] = M;
            const __m512 mm = _mm512_set1_ps(M);
            /* Masked keys weigh exactly 0. */
            const __m512 ninf = _mm512_set1_ps(-INFINITY);
            const __m512 p0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(s0, ninf, _CMP_NEQ_OQ),
                                                  exp16(_mm512_sub_ps(s0, mm)));
            const __m512 p1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(s1, ninf, _CMP_NEQ_OQ),
                                                  exp16(_mm512_sub_ps(s1, mm)));
            Sx[q] += _mm512_reduce_add_ps(_mm512_add_ps(p0, p1));
            float p[CHUNK];
            _mm512_storeu_ps(p, p0);
            _mm512_storeu_ps(p + 16, p1);
            /* out += Σ p_j·v_j over the chunk, 64 outputs at a time. */
            for (int i = 0; i < D; i += 64) {
                const int w = D - i < 64 ? (D - i) / 16 : 4;
                __m512 acc[4];
                for (int u = 0; u < w; u++) acc[u] = _mm512_loadu_ps(a->out[q] + i + 16 * u);
                for (int j = 0; j < nk; j++) {
                    if (p[j] == 0.0f) continue;
                    const __m512 pj = _mm512_set1_ps(p[j]);
                    for (int u = 0; u < w; u++)
                        acc[u] = _mm512_fmadd_ps(
                            pj, _mm512_loadu_ps(V + (size_t)j * D + i + 16 * u), acc[u]);
                }
                for (int u = 0; u < w; u++) _mm512_storeu_ps(a->out[q] + i + 16 * u, acc[u]);
            }
        }
    }
    for (int q = 0; q < nq; q++) {
        const float inv = Sx[q] > 0 ? 1.0f / Sx[q] : 0.0f;
        for (int i = 0; i < D; i++) a->out[q][i] *= inv;
    }
}
#endif

size_t herd_attn_scratch_size(int head_dim, int nq)
{
    return (2 * (size_t)head_dim * CHUNK + (size_t)nq * (CHUNK + 2)) * sizeof(float) + 64;
}

void herd_attn(const herd_attn_args *a, void *scratch)
{
    if (a->nq <= 0) return;
#ifdef __x86_64__
    const char *lvl = herd_tensor_simd_level();
    if (a->head_dim % 16 == 0 && (!strcmp(lvl, "avx512") || !strcmp(lvl, "amx")) &&
        (a->type == HERD_TYPE_F16 || a->type == HERD_TYPE_F32)) {
        attn_avx512(a, (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63));
        return;
    }
#endif
    (void)scratch;
    attn_scalar(a);
}
