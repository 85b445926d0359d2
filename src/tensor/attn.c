/*
 * attn.c — attention of a group of queries over KV cache rows, in F32: the
 * arithmetic of ggml's tiled flash-attention path (batches of 64 tokens or
 * more), organized for speed.
 *
 * Per query the result is what an online softmax over the visible cells
 * gives: scores s = q·k·scale + mask (with a soft-cap c, s = c·tanh(q·k·
 * (scale / c)) + mask, ggml's order), weights exp(s − max), output
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
 * skipped without being read. On AVX2 (no 16-lane groups) the queries go
 * one by one, 8 lanes along the head.
 */
#include "tensor/attn_simd.h"
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

#define CHUNK 32 /* keys per chunk */

static inline float cache_val(const uint8_t *row, uint32_t type, int i)
{
    if (type == HERD_TYPE_F16) return herd_ld_f16(row + 2 * i);
    float f;
    memcpy(&f, row + 4 * i, 4);
    return f;
}

/* q·k scaled and, where the model asks for it, soft-capped (ggml's order:
 * the scale divided by the cap, tanh, times the cap). */
static inline float softcap(const herd_attn_args *a, float qk)
{
    if (a->softcap == 0.0f) return qk * a->scale;
    return a->softcap * tanhf(qk * (a->scale / a->softcap));
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
            const float mv = herd_attn_mask(a->q_pos[q], a->cell_pos[c], a->swa, a->slope);
            if (mv == -INFINITY) continue;
            const uint8_t *k = a->k + (size_t)c * a->row_bytes,
                          *v = a->v + (size_t)c * a->row_bytes;
            float s = 0.0f;
            for (int i = 0; i < D; i++) s += qv[i] * cache_val(k, a->type, i);
            s = softcap(a, s) + mv;
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

/* ------------------------------------------------------------ AVX2 */

#ifdef __x86_64__
#define T256 __attribute__((target("avx2,fma,f16c")))

/* 8 values of a cache row from element i, as F32. */
static inline T256 __m256 ld_row8(const uint8_t *row, uint32_t type, int i)
{
    if (type == HERD_TYPE_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * i)));
    return _mm256_loadu_ps((const float *)(const void *)(row + 4 * i));
}

static inline T256 float hsum8(__m256 v)
{
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* The AVX2 path (head_dim a multiple of 8, up to 512): one query at a time,
 * the keys in chunks of CHUNK with one rescale per chunk (online softmax),
 * the dot products and the weighted V sums 8 lanes wide. attn_scalar's
 * arithmetic in another order. */
static T256 void attn_avx2(const herd_attn_args *a)
{
    const int D = a->head_dim;
    for (int q = 0; q < a->nq; q++) {
        const float *qv = a->q[q];
        const int qp = a->q_pos[q];
        __m256 acc[64];
        for (int i = 0; i < D / 8; i++) acc[i] = _mm256_setzero_ps();
        float M = -INFINITY, S = 0.0f;
        for (int j0 = 0; j0 < a->n_cells; j0 += CHUNK) {
            const int nk = a->n_cells - j0 < CHUNK ? a->n_cells - j0 : CHUNK;
            float sc[CHUNK], cmax = -INFINITY;
            for (int j = 0; j < nk; j++) {
                const int c = a->cells[j0 + j];
                const float mv = herd_attn_mask(qp, a->cell_pos[c], a->swa, a->slope);
                sc[j] = -INFINITY;
                if (mv == -INFINITY) continue;
                const uint8_t *k = a->k + (size_t)c * a->row_bytes;
                __m256 d = _mm256_setzero_ps();
                for (int i = 0; i < D; i += 8)
                    d = _mm256_fmadd_ps(_mm256_loadu_ps(qv + i), ld_row8(k, a->type, i), d);
                sc[j] = softcap(a, hsum8(d)) + mv;
                if (sc[j] > cmax) cmax = sc[j];
            }
            if (cmax == -INFINITY) continue;
            if (cmax > M) {
                if (M != -INFINITY) {
                    const float ms = expf(M - cmax);
                    const __m256 m = _mm256_set1_ps(ms);
                    for (int i = 0; i < D / 8; i++) acc[i] = _mm256_mul_ps(acc[i], m);
                    S *= ms;
                }
                M = cmax;
            }
            for (int j = 0; j < nk; j++) {
                if (sc[j] == -INFINITY) continue;
                const float p = expf(sc[j] - M);
                const uint8_t *v = a->v + (size_t)a->cells[j0 + j] * a->row_bytes;
                const __m256 pv = _mm256_set1_ps(p);
                for (int i = 0; i < D / 8; i++)
                    acc[i] = _mm256_fmadd_ps(ld_row8(v, a->type, 8 * i), pv, acc[i]);
                S += p;
            }
        }
        const __m256 inv = _mm256_set1_ps(S > 0 ? 1.0f / S : 0.0f);
        for (int i = 0; i < D / 8; i++)
            _mm256_storeu_ps(a->out[q] + 8 * i, _mm256_mul_ps(acc[i], inv));
    }
}
#endif

/* ------------------------------------------------------------ AVX-512 */

#ifdef __x86_64__
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

/* Row i (D values, D a multiple of 16) of the cache as F32. */
static inline T512 __m512 ld_row16(const uint8_t *row, uint32_t type, int i)
{
    if (type == HERD_TYPE_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 2 * i)));
    return _mm512_loadu_ps(row + 4 * i);
}

/* Scratch of attn_avx512, in floats: K and V of a chunk as F32 rows, the
 * queries transposed (per group of 16: [D][16]), the weights of a chunk
 * ([CHUNK][16]), and each query's running maximum and sum. */
#define GROUP 16 /* queries per group: one per vector lane */
static size_t scratch_floats(int D, int nq)
{
    const size_t nqp = (size_t)(nq + GROUP - 1) / GROUP * GROUP;
    return 2 * (size_t)CHUNK * D + nqp * D + (size_t)CHUNK * GROUP + 2 * nqp;
}

/* herd_attn_mask of a key at kpos for 16 queries at positions qp (lanes
 * past the group's end have INT32_MIN and see nothing). */
static inline T512 __m512 mask16(const herd_attn_args *a, __m512i qp, int kpos)
{
    const __m512i kp = _mm512_set1_epi32(kpos);
    __mmask16 vis = _mm512_cmple_epi32_mask(kp, qp);
    if (a->swa > 0)
        vis &= _mm512_cmpgt_epi32_mask(kp, _mm512_sub_epi32(qp, _mm512_set1_epi32(a->swa)));
    __m512 m = _mm512_setzero_ps();
    if (a->slope != 0.0f) { /* slope·F16(−(pos − kpos)) */
        const __m512 d = _mm512_cvtepi32_ps(_mm512_sub_epi32(kp, qp));
        const __m512 h = _mm512_cvtph_ps(_mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT));
        m = _mm512_mul_ps(_mm512_set1_ps(a->slope), h);
    }
    return _mm512_mask_blend_ps(vis, _mm512_set1_ps(-INFINITY), m);
}

/* Scores of a group's 16 queries (QT: [D][16]) against the chunk's keys (KF:
 * rows of D, zero past nk up to a multiple of 8), 8 keys at a time: sc[j]
 * holds key j's score for each query. */
static inline T512 void scores16(const float *QT, const float *KF, int D, int nk, __m512 *sc)
{
    for (int j0 = 0; j0 < nk; j0 += 8) {
        __m512 acc[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) acc[k] = _mm512_setzero_ps();
        const float *kf = KF + (size_t)j0 * D;
        for (int i = 0; i < D; i++) {
            const __m512 qt = _mm512_load_ps(QT + (size_t)i * GROUP);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++)
                acc[k] = _mm512_fmadd_ps(qt, _mm512_set1_ps(kf[(size_t)k * D + i]), acc[k]);
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) sc[j0 + k] = acc[k];
    }
}

/* out[q0 + q][i + 16u …] += Σ_j P[j][q0 + q]·V[j][…] for NQ queries and W
 * vectors of 16 outputs, the accumulators in registers. */
static inline __attribute__((always_inline)) T512 void acc_block(float *const *out, const float *P,
                                                                 const float *VF, int D, int nk,
                                                                 int q0, int i, const int NQ,
                                                                 const int W)
{
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int q = 0; q < NQ; q++)
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) acc[q][u] = _mm512_loadu_ps(out[q0 + q] + i + 16 * u);
    for (int j = 0; j < nk; j++) {
        __m512 v[4];
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) v[u] = _mm512_loadu_ps(VF + (size_t)j * D + i + 16 * u);
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++) {
            const __m512 p = _mm512_set1_ps(P[j * GROUP + q0 + q]);
#pragma GCC unroll 4
            for (int u = 0; u < W; u++) acc[q][u] = _mm512_fmadd_ps(p, v[u], acc[q][u]);
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < NQ; q++)
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) _mm512_storeu_ps(out[q0 + q] + i + 16 * u, acc[q][u]);
}

#define ACC_CASE(NQ, W)                                                                            \
    case (NQ - 1) * 4 + W - 1:                                                                     \
        acc_block(out, P, VF, D, nk, q0, i, NQ, W);                                                \
        break;

/* out[q] += Σ_j P[j][q]·V[j] for the nqg queries of a group, rows of D
 * floats, four queries by up to four vectors of 16 at a time. */
static T512 void accumulate16(float *const *out, int nqg, const float *P, const float *VF, int D,
                              int nk)
{
    for (int q0 = 0; q0 < nqg; q0 += 4) {
        const int nq4 = nqg - q0 < 4 ? nqg - q0 : 4;
        for (int i = 0; i < D; i += 64) {
            const int w = D - i < 64 ? (D - i) / 16 : 4;
            switch ((nq4 - 1) * 4 + w - 1) {
                ACC_CASE(1, 1)
                ACC_CASE(1, 2)
                ACC_CASE(1, 3)
                ACC_CASE(1, 4)
                ACC_CASE(2, 1)
                ACC_CASE(2, 2)
                ACC_CASE(2, 3) ACC_CASE(2, 4) ACC_CASE(3, 1) ACC_CASE(3, 2) ACC_CASE(3, 3)
                    ACC_CASE(3, 4) ACC_CASE(4, 1) ACC_CASE(4, 2) ACC_CASE(4, 3) ACC_CASE(4, 4)
            }
        }
    }
}

/* One chunk for one group of up to 16 queries: scores, the online softmax
 * (lane by lane: no reductions across queries), and the weighted V sum. */
static inline T512 void chunk16(const herd_attn_args *a, int g, const float *QT, const float *KF,
                                const float *VF, const int32_t *kpos, int nk, float *P, float *Mx,
                                float *Sx)
{
    const int D = a->head_dim, q0 = g * GROUP, nqg = a->nq - q0 < GROUP ? a->nq - q0 : GROUP;
    int32_t qpa[GROUP];
    for (int l = 0; l < GROUP; l++) qpa[l] = l < nqg ? a->q_pos[q0 + l] : INT32_MIN;
    const __m512i qp = _mm512_loadu_si512(qpa);
    __m512 sc[CHUNK];
    scores16(QT, KF, D, nk, sc); /* keys past nk score 0 and are not used */
    const __m512 scale = _mm512_set1_ps(a->scale), ninf = _mm512_set1_ps(-INFINITY);
    __m512 cmax = ninf;
    for (int j = 0; j < nk; j++) {
        if (a->softcap != 0.0f) { /* rare (Gemma 2): lane by lane */
            float l[GROUP];
            _mm512_storeu_ps(l, sc[j]);
            for (int i = 0; i < GROUP; i++) l[i] = softcap(a, l[i]);
            sc[j] = _mm512_add_ps(_mm512_loadu_ps(l), mask16(a, qp, kpos[j]));
        } else {
            sc[j] = _mm512_add_ps(_mm512_mul_ps(sc[j], scale), mask16(a, qp, kpos[j]));
        }
        cmax = _mm512_max_ps(cmax, sc[j]);
    }
    if (_mm512_cmp_ps_mask(cmax, ninf, _CMP_NEQ_OQ) == 0) return; /* nothing visible */
    const __m512 M0 = _mm512_load_ps(Mx), M = _mm512_max_ps(M0, cmax);
    /* Rescale what was summed so far where the maximum grew. */
    const __mmask16 grew =
        _mm512_cmp_ps_mask(M, M0, _CMP_GT_OQ) & _mm512_cmp_ps_mask(M0, ninf, _CMP_NEQ_OQ);
    const __m512 ms =
        _mm512_mask_blend_ps(grew, _mm512_set1_ps(1.0f), herd_exp16(_mm512_sub_ps(M0, M)));
    __m512 S = _mm512_mul_ps(_mm512_load_ps(Sx), ms);
    if (grew) {
        float msa[GROUP];
        _mm512_storeu_ps(msa, ms);
        for (int l = 0; l < nqg; l++)
            if (msa[l] != 1.0f)
                for (int i = 0; i < D; i += 16)
                    _mm512_storeu_ps(
                        a->out[q0 + l] + i,
                        _mm512_mul_ps(_mm512_loadu_ps(a->out[q0 + l] + i), _mm512_set1_ps(msa[l])));
    }
    /* Weights; masked keys weigh exactly 0. */
    for (int j = 0; j < nk; j++) {
        const __m512 p = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(sc[j], ninf, _CMP_NEQ_OQ),
                                             herd_exp16(_mm512_sub_ps(sc[j], M)));
        S = _mm512_add_ps(S, p);
        _mm512_store_ps(P + (size_t)j * GROUP, p);
    }
    _mm512_store_ps(Mx, M);
    _mm512_store_ps(Sx, S);
    accumulate16(a->out + q0, nqg, P, VF, D, nk);
}

static T512 void attn_avx512(const herd_attn_args *a, float *scratch)
{
    const int D = a->head_dim, nq = a->nq, ng = (nq + GROUP - 1) / GROUP;
    float *KF = scratch, *VF = KF + (size_t)CHUNK * D, *QT = VF + (size_t)CHUNK * D;
    float *P = QT + (size_t)ng * GROUP * D, *Mx = P + (size_t)CHUNK * GROUP, *Sx = Mx + ng * GROUP;
    int min_pos = a->q_pos[0], max_pos = a->q_pos[0];
    for (int q = 0; q < ng * GROUP; q++) {
        for (int i = 0; i < D; i++)
            QT[((size_t)(q / GROUP) * D + i) * GROUP + q % GROUP] = q < nq ? a->q[q][i] : 0.0f;
        Mx[q] = -INFINITY;
        Sx[q] = 0.0f;
        if (q >= nq) continue;
        memset(a->out[q], 0, (size_t)D * sizeof(float));
        if (a->q_pos[q] < min_pos) min_pos = a->q_pos[q];
        if (a->q_pos[q] > max_pos) max_pos = a->q_pos[q];
    }
    for (int j0 = 0; j0 < a->n_cells; j0 += CHUNK) {
        const int nk = a->n_cells - j0 < CHUNK ? a->n_cells - j0 : CHUNK;
        int32_t kpos[CHUNK];
        bool any = false; /* skip a chunk that no query sees */
        for (int j = 0; j < nk; j++) {
            kpos[j] = a->cell_pos[a->cells[j0 + j]];
            any |= kpos[j] <= max_pos && (a->swa <= 0 || kpos[j] > min_pos - a->swa);
        }
        if (!any) continue;
        /* K rows past nk up to a multiple of 8 are zero for scores16. */
        memset(KF + (size_t)nk * D, 0, (size_t)((nk + 7) / 8 * 8 - nk) * D * sizeof(float));
        for (int j = 0; j < nk; j++) { /* the chunk's K and V as F32 rows */
            const int c = a->cells[j0 + j];
            const uint8_t *k = a->k + (size_t)c * a->row_bytes,
                          *v = a->v + (size_t)c * a->row_bytes;
            for (int i = 0; i < D; i += 16) {
                _mm512_storeu_ps(KF + (size_t)j * D + i, ld_row16(k, a->type, i));
                _mm512_storeu_ps(VF + (size_t)j * D + i, ld_row16(v, a->type, i));
            }
        }
        for (int g = 0; g < ng; g++)
            chunk16(a, g, QT + (size_t)g * GROUP * D, KF, VF, kpos, nk, P, Mx + g * GROUP,
                    Sx + g * GROUP);
    }
    for (int q = 0; q < nq; q++) {
        const float inv = Sx[q] > 0 ? 1.0f / Sx[q] : 0.0f;
        for (int i = 0; i < D; i++) a->out[q][i] *= inv;
    }
}
#endif

size_t herd_attn_scratch_size(int head_dim, int nq)
{
#ifdef __x86_64__
    return scratch_floats(head_dim, nq) * sizeof(float) + 64;
#else
    (void)head_dim, (void)nq;
    return 0;
#endif
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
    if (a->head_dim % 8 == 0 && a->head_dim <= 512 && strcmp(lvl, "scalar") != 0 &&
        (a->type == HERD_TYPE_F16 || a->type == HERD_TYPE_F32)) {
        attn_avx2(a);
        return;
    }
#endif
    (void)scratch;
    attn_scalar(a);
}
