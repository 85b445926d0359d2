/*
 * attn_dec.c — decode attention: the query heads of one token that share a
 * KV head (a GQA group), over a run of cache cells, in blocks of 16 cells.
 *
 * At depth this is what a decode step spends its time on: every cell's K
 * and V row is read for every layer and KV head. ggml's vector path does,
 * per cell and per query head, an F16 dot product ending in a scalar
 * reduction, a scalar expf, and an F16 accumulator loaded, widened, updated
 * and rounded back to memory (src/model/attention.c's attend_vector does
 * the same, for bit-faithful numerics). Here a block of 16 cells is done at
 * once, with ggml's arithmetic kept where it decides the result:
 *
 *   scores: each K row is widened once and dotted with every head's query,
 *   16-lane partial sums that a shuffle tree turns into one vector of the
 *   block's 16 scores per head (no scalar reductions);
 *   softmax: ggml's cell-by-cell online softmax (the running maximum before
 *   each cell, a new maximum scaling what was summed) computed for the 16
 *   cells at once by a prefix maximum across lanes and a vectorized exp;
 *   V: each V row is widened once and added to every head's accumulator,
 *   which stays in registers over the block. For an F16 V the accumulator
 *   is rounded to F16 after every cell, as ggml_vec_mad_f16 rounds it: that
 *   rounding is what separates ggml's results from F32 attention (an F32
 *   accumulator moves the tiny models' logits ~1e-3 away from llama.cpp's
 *   and flips near-tied top tokens), so it is kept; it costs two
 *   conversions in registers, not a trip through memory.
 *
 * What still differs from ggml, and why that is allowed: exp is a
 * polynomial within about 1 ulp of expf; for a head size that is not a
 * multiple of 64, the F32 sums of a dot product go in another order (ggml's
 * own AVX2 and AVX-512 builds differ the same way); and
 * a quantized K is dotted with a widened Q instead of integer products
 * (the same rounded values, F32 sums). The parity tests against llama.cpp's
 * logits stay at the ggml-faithful path's figures (README, Numerics).
 * dec_ref is the scalar reference, the same operations in the same order:
 * tests/test_attn_dec.c holds the SIMD kernel to it bit for bit, and it to
 * attention computed in double.
 */
#include "tensor/attn_simd.h"
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

#define BLK 16 /* cells per block: one score per vector lane */

/* Scratch: the rounded queries, and a block's K and V rows widened to F32
 * (for cache types that are not F16 or F32), 64-byte aligned. */
size_t herd_attn_dec_scratch_size(int head_dim)
{
    return ((size_t)HERD_ATTN_DEC_HEADS + 2 * BLK) * (size_t)head_dim * sizeof(float) + 64;
}

static float *align64(void *p)
{
    return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* Row of n values of a cache type, widened to F32. */
static void widen(uint32_t type, const uint8_t *row, float *out, int n)
{
    if (type == HERD_TYPE_F32)
        memcpy(out, row, (size_t)n * sizeof(float));
    else if (type == HERD_TYPE_F16)
        for (int i = 0; i < n; i++) out[i] = herd_ld_f16(row + 2 * i);
    else
        herd_type(type)->to_float(row, out, n);
}

/* Q as ggml's K dot product sees it: converted to K's vec_dot_type (F16 for
 * F16, Q8_0 for Q8_0 and Q4_0, BF16, F32) and widened back. tmp: room for a
 * converted row (head_dim floats are enough for every type). */
static void round_q(const herd_attn_dec_args *a, float *Q, void *tmp)
{
    const int D = a->head_dim;
    const uint32_t vdt = herd_type(a->type_k)->vec_dot_type;
    for (int h = 0; h < a->nh; h++) {
        float *qh = Q + (size_t)h * D;
        if (vdt == HERD_TYPE_F32) {
            memcpy(qh, a->q[h], (size_t)D * sizeof(float));
        } else if (vdt == HERD_TYPE_F16) { /* ggml_cpu_fp32_to_fp16: nearest even */
            for (int i = 0; i < D; i++) qh[i] = herd_f16_to_f32(herd_f32_to_f16(a->q[h][i]));
        } else {
            herd_type(vdt)->from_float(a->q[h], tmp, D);
            herd_type(vdt)->to_float(tmp, qh, D);
        }
    }
}

/* A score as ggml's flash attention makes it: q·k scaled, soft-capped
 * (cap·tanh(q·k·scale/cap)) where the model asks for it. */
static inline float scaled(const herd_attn_dec_args *a, float qk)
{
    if (a->softcap == 0.0f) return qk * a->scale;
    return a->softcap * tanhf(qk * (a->scale / a->softcap));
}

static void start(const herd_attn_dec_args *a, float *M, float *S, float *const *acc)
{
    for (int h = 0; h < a->nh; h++) {
        M[h] = -INFINITY, S[h] = 0.0f;
        memset(acc[h], 0, (size_t)a->head_dim * sizeof(float));
    }
}

/* ------------------------------------------------------------ reference */

/* herd_exp16 lane by lane, the same operations in the same order, so that
 * the reference and the SIMD kernel agree to the bit. */
static float exp_ref(float x)
{
    x = fmaxf(x, -88.0f);
    const float n = nearbyintf(x * 1.44269504088896341f);
    float r = fmaf(-n, 0.693359375f, x);
    r = fmaf(-n, -2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r + 1.0f);
    return scalbnf(p, (int)n);
}

/* q·k as the SIMD kernel sums it: 16 lanes of fused multiply-adds — for a
 * head size that is a multiple of 64, ggml_vec_dot_f16's four accumulators
 * (element i in accumulator i / 16 mod 4, added (0 + 2) + (1 + 3)), else
 * one — then halves, quarters and pairs added (sum16x16's tree, which is
 * also ggml's). */
static float dot_ref(const float *q, const float *k, int D)
{
    float acc[4][16] = {{0}}, l[16], b[8], c[4];
    const int na = D % 64 == 0 ? 4 : 1;
    for (int i = 0; i < D; i++) {
        float *a = &acc[i / 16 % na][i % 16];
        *a = fmaf(q[i], k[i], *a);
    }
    for (int j = 0; j < 16; j++)
        l[j] = na == 4 ? (acc[0][j] + acc[2][j]) + (acc[1][j] + acc[3][j]) : acc[0][j];
    for (int j = 0; j < 8; j++) b[j] = l[j] + l[j + 8];
    for (int j = 0; j < 4; j++) c[j] = b[j] + b[j + 4];
    return (c[0] + c[2]) + (c[1] + c[3]);
}

static float round16_ref(float x, bool on)
{
    return on ? herd_f16_to_f32(herd_f32_to_f16(x)) : x;
}

/* Cell by cell and head by head, ggml's vector loop: a new maximum scales
 * the accumulator by exp(old − s) and gives the cell weight 1, else the
 * weight is exp(s − max); acc = fma(v, weight, acc); an F16 V's accumulator
 * is rounded to F16 at each step. */
static void dec_ref(const herd_attn_dec_args *a, float *M, float *S, float *const *acc,
                    void *scratch)
{
    const int D = a->head_dim;
    const bool r16 = a->type_v == HERD_TYPE_F16;
    float *Q = align64(scratch), *kf = Q + (size_t)HERD_ATTN_DEC_HEADS * D, *vf = kf + D;
    round_q(a, Q, kf);
    start(a, M, S, acc);
    for (int j = 0; j < a->n_cells; j++) {
        const int c = a->cells[j];
        if (herd_attn_mask(a->pos, a->cell_pos[c], a->swa, 0.0f) == -INFINITY) continue;
        widen(a->type_k, a->k + (size_t)c * a->row_k, kf, D);
        widen(a->type_v, a->v + (size_t)c * a->row_v, vf, D);
        for (int h = 0; h < a->nh; h++) {
            const float s = scaled(a, dot_ref(Q + (size_t)h * D, kf, D)) +
                            herd_attn_mask(a->pos, a->cell_pos[c], a->swa, a->slope[h]);
            float ms = 1.0f, vs = 1.0f;
            if (s > M[h]) {
                ms = M[h] == -INFINITY ? 0.0f : exp_ref(M[h] - s);
                M[h] = s;
                for (int i = 0; i < D; i++) acc[h][i] = round16_ref(acc[h][i] * ms, r16);
            } else {
                vs = exp_ref(s - M[h]);
            }
            for (int i = 0; i < D; i++) acc[h][i] = round16_ref(fmaf(vf[i], vs, acc[h][i]), r16);
            S[h] = fmaf(S[h], ms, vs);
        }
    }
}

/* ------------------------------------------------------------ AVX-512 */

#ifdef __x86_64__
#define T512      HERD_T512
#define T512_INL  static inline __attribute__((always_inline)) T512
#define MAX_HEADS HERD_ATTN_DEC_HEADS

/* 16 values of a row from element i: F16 widened, or F32. */
T512_INL __m512 ld16(const uint8_t *row, bool f16, int i)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(row + 2 * i)));
    return _mm512_loadu_ps(row + 4 * i);
}

/* r[c] = the sum of a[c]'s 16 lanes, for c < 16: halves, then quarters,
 * then pairs are added across vectors, leaving lane 4L + k with a[4k + L];
 * one permutation puts lane c at c. */
T512_INL __m512 sum16x16(const __m512 *a)
{
    __m512 b[8], c[4], d[2];
    for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++)
        d[i] = _mm512_add_ps(_mm512_unpacklo_ps(c[2 * i], c[2 * i + 1]),
                             _mm512_unpackhi_ps(c[2 * i], c[2 * i + 1]));
    const __m512 e =
        _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x44), _mm512_shuffle_ps(d[0], d[1], 0xEE));
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(idx, e);
}

/* One visible cell's 16-lane partial sums for every head, in
 * ggml_vec_dot_f16's order: elements i + 16p and i + 16(p + 2) of each 64
 * go to two accumulators, p = 0 then 1, summed (0 + 2) + (1 + 3). */
T512_INL void dots64(const float *Q, int D, const uint8_t *kr, bool f16, __m512 *s, const int NH)
{
    __m512 t[2][MAX_HEADS];
#pragma GCC unroll 8
    for (int p = 0; p < 2; p++) {
        __m512 x[MAX_HEADS], y[MAX_HEADS];
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) x[h] = y[h] = _mm512_setzero_ps();
        for (int i = 0; i < D; i += 64) {
            const __m512 ka = ld16(kr, f16, i + 16 * p), kb = ld16(kr, f16, i + 16 * (p + 2));
#pragma GCC unroll 8
            for (int h = 0; h < NH; h++) {
                const float *q = Q + (size_t)h * D + i;
                x[h] = _mm512_fmadd_ps(_mm512_load_ps(q + 16 * p), ka, x[h]);
                y[h] = _mm512_fmadd_ps(_mm512_load_ps(q + 16 * (p + 2)), kb, y[h]);
            }
        }
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) t[p][h] = _mm512_add_ps(x[h], y[h]);
    }
#pragma GCC unroll 8
    for (int h = 0; h < NH; h++) s[h] = _mm512_add_ps(t[0][h], t[1][h]);
}

/* The same with one accumulator (a head size that is not a multiple of 64). */
T512_INL void dots16(const float *Q, int D, const uint8_t *kr, bool f16, __m512 *s, const int NH)
{
#pragma GCC unroll 8
    for (int h = 0; h < NH; h++) s[h] = _mm512_setzero_ps();
    for (int i = 0; i < D; i += 16) {
        const __m512 k = ld16(kr, f16, i);
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++)
            s[h] = _mm512_fmadd_ps(_mm512_load_ps(Q + (size_t)h * D + i), k, s[h]);
    }
}

/* part[h][c]: the partial sums of head h's query times the K row of the
 * c-th visible cell of a block, for the nv visible cells; the rest zero. */
T512_INL void block_dots(const float *Q, int D, const uint8_t *const *kr, bool f16, int nv,
                         __m512 (*part)[BLK], const int NH)
{
    for (int c = 0; c < nv; c++) {
        __m512 s[MAX_HEADS];
        if (D % 64 == 0)
            dots64(Q, D, kr[c], f16, s, NH);
        else
            dots16(Q, D, kr[c], f16, s, NH);
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) part[h][c] = s[h];
    }
    for (int c = nv; c < BLK; c++)
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) part[h][c] = _mm512_setzero_ps();
}

/* Rounded to F16 and widened back: ggml's F16 accumulator. */
T512_INL __m512 round16(__m512 x, bool on)
{
    return on ? _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)) : x;
}

/* W consecutive vectors of 16 outputs from element i, for the nv visible
 * cells in order, every head: where a cell set a new maximum for some head
 * (bit c of nm) the accumulator is first scaled by MS (1 for the others:
 * exact), then acc = fma(v, VS, acc), each step rounded to F16 when r16 —
 * ggml_vec_scale_f16 and ggml_vec_mad_f16 (ggml_vec_scale_f32 and
 * ggml_vec_mad_f32 otherwise), in registers instead of memory. */
T512_INL void values_w(float *const *acc, const float (*MS)[BLK], const float (*VS)[BLK], int i,
                       const uint8_t *const *vr, bool f16, bool r16, int nv, uint32_t nm,
                       const int NH, const int W)
{
    __m512 r[MAX_HEADS][2];
#pragma GCC unroll 8
    for (int h = 0; h < NH; h++)
#pragma GCC unroll 8
        for (int u = 0; u < W; u++) r[h][u] = _mm512_loadu_ps(acc[h] + i + 16 * u);
    for (int c = 0; c < nv; c++) {
        __m512 v[2];
#pragma GCC unroll 8
        for (int u = 0; u < W; u++) v[u] = ld16(vr[c], f16, i + 16 * u);
        if (nm >> c & 1)
#pragma GCC unroll 8
            for (int h = 0; h < NH; h++)
#pragma GCC unroll 8
                for (int u = 0; u < W; u++)
                    r[h][u] = round16(_mm512_mul_ps(r[h][u], _mm512_set1_ps(MS[h][c])), r16);
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++)
#pragma GCC unroll 8
            for (int u = 0; u < W; u++)
                r[h][u] = round16(_mm512_fmadd_ps(v[u], _mm512_set1_ps(VS[h][c]), r[h][u]), r16);
    }
#pragma GCC unroll 8
    for (int h = 0; h < NH; h++)
#pragma GCC unroll 8
        for (int u = 0; u < W; u++) _mm512_storeu_ps(acc[h] + i + 16 * u, r[h][u]);
}

/* The whole head: two vectors at a time (twice the chains of adds in
 * flight), one for an odd last 16. */
T512_INL void block_values(float *const *acc, const float (*MS)[BLK], const float (*VS)[BLK], int D,
                           const uint8_t *const *vr, bool f16, bool r16, int nv, uint32_t nm,
                           const int NH)
{
    int i = 0;
    for (; i + 32 <= D; i += 32) values_w(acc, MS, VS, i, vr, f16, r16, nv, nm, NH, 2);
    if (i < D) values_w(acc, MS, VS, i, vr, f16, r16, nv, nm, NH, 1);
}

/* The block's visible cells (lanes of vis, cell order) as row pointers;
 * rows of a type other than F16 and F32 are widened into wide[]. */
static T512 bool block_rows(const uint8_t *base, size_t row, uint32_t type, const int32_t *cells,
                            __mmask16 vis, int D, float *wide, const uint8_t **out)
{
    const bool direct = type == HERD_TYPE_F16 || type == HERD_TYPE_F32;
    int n = 0;
    for (int c = 0; c < BLK; c++) {
        if (!(vis >> c & 1)) continue;
        const uint8_t *r = base + (size_t)cells[c] * row;
        if (!direct) {
            widen(type, r, wide + (size_t)n * D, D);
            r = (const uint8_t *)(wide + (size_t)n * D);
        }
        out[n++] = r;
    }
    return type == HERD_TYPE_F16;
}

/* Ask for the next block's K and V rows while this one is computed: a
 * KV head's part of a cell is a few cache lines, cells a whole row of every
 * KV head apart, a stride the hardware prefetcher does not run ahead on. */
static T512 void prefetch_block(const herd_attn_dec_args *a, const int32_t *cells, int n)
{
    const size_t kb = herd_row_bytes(a->type_k, a->head_dim),
                 vb = herd_row_bytes(a->type_v, a->head_dim);
    for (int c = 0; c < BLK && c < n; c++) {
        const char *k = (const char *)a->k + (size_t)cells[c] * a->row_k,
                   *v = (const char *)a->v + (size_t)cells[c] * a->row_v;
        for (size_t o = 0; o < kb; o += 64) _mm_prefetch(k + o, _MM_HINT_T0);
        for (size_t o = 0; o < vb; o += 64) _mm_prefetch(v + o, _MM_HINT_T0);
    }
}

/* Which of a block's nb cells the token sees, and their positions. */
static T512 __mmask16 block_visible(const herd_attn_dec_args *a, const int32_t *cells, int nb,
                                    __m512i *kpos)
{
    int32_t kp[BLK];
    for (int c = 0; c < BLK; c++) kp[c] = c < nb ? a->cell_pos[cells[c]] : INT32_MAX;
    *kpos = _mm512_loadu_si512(kp);
    const __m512i qp = _mm512_set1_epi32(a->pos);
    __mmask16 vis = _mm512_cmple_epi32_mask(*kpos, qp);
    if (a->swa > 0) vis &= _mm512_cmpgt_epi32_mask(*kpos, _mm512_set1_epi32(a->pos - a->swa));
    return vis;
}

/* x shifted up k lanes, lane j < k taking lane 16 − k + j of lo. A macro:
 * valignd's count must be a constant where it is written (clang checks it
 * before inlining, gcc after). */
#define shift_up(x, lo, k)                                                                         \
    _mm512_castsi512_ps(                                                                           \
        _mm512_alignr_epi32(_mm512_castps_si512(x), _mm512_castps_si512(lo), 16 - (k)))

/* The softmax step of head h for a block, as ggml's loop takes it cell by
 * cell: scores s (lanes: the block's cells) scaled, capped and masked, then
 * packed to the nv visible cells in order; the running maximum before each
 * cell (a prefix maximum across lanes); where a cell sets a new maximum,
 * MS = exp(old − s) scales what was summed and its own weight VS is 1,
 * else MS = 1 and VS = exp(s − max). S is summed cell by cell. Returns the
 * cells that set a new maximum. */
static T512 uint32_t block_softmax(const herd_attn_dec_args *a, int h, __m512 s, __mmask16 vis,
                                   __m512i kpos, int nv, float *M, float *S, float *MS, float *VS)
{
    if (a->softcap != 0.0f) { /* rare (Gemma 2): lane by lane */
        float l[BLK];
        _mm512_storeu_ps(l, s);
        for (int c = 0; c < BLK; c++) l[c] = scaled(a, l[c]);
        s = _mm512_loadu_ps(l);
    } else {
        s = _mm512_mul_ps(s, _mm512_set1_ps(a->scale));
    }
    if (a->slope[h] != 0.0f) { /* ALiBi: slope·F16(−(pos − kpos)) */
        const __m512 d = _mm512_cvtepi32_ps(_mm512_sub_epi32(kpos, _mm512_set1_epi32(a->pos)));
        const __m512 hd = _mm512_cvtph_ps(_mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT));
        s = _mm512_add_ps(s, _mm512_mul_ps(_mm512_set1_ps(a->slope[h]), hd));
    }
    const __m512 ninf = _mm512_set1_ps(-INFINITY), m0 = _mm512_set1_ps(M[h]);
    s = _mm512_mask_compress_ps(ninf, vis, s); /* visible cells in lanes 0 … nv − 1 */
    __m512 x = s;
    x = _mm512_max_ps(x, shift_up(x, ninf, 1));
    x = _mm512_max_ps(x, shift_up(x, ninf, 2));
    x = _mm512_max_ps(x, shift_up(x, ninf, 4));
    x = _mm512_max_ps(x, shift_up(x, ninf, 8));
    const __m512 upto = _mm512_max_ps(x, m0);  /* the maximum after each cell */
    const __m512 prev = shift_up(upto, m0, 1); /* … and before it */
    const __mmask16 live = (__mmask16)((1u << nv) - 1);
    const __mmask16 grew = _mm512_mask_cmp_ps_mask(live, s, prev, _CMP_GT_OQ);
    /* exp(prev − s) where the maximum grew (0 from −inf, as expf gives),
     * exp(s − prev) elsewhere */
    const __m512 e = herd_exp16(_mm512_mask_sub_ps(_mm512_sub_ps(s, prev), grew, prev, s));
    const __mmask16 from_ninf = _mm512_cmp_ps_mask(prev, ninf, _CMP_EQ_OQ);
    const __m512 one = _mm512_set1_ps(1.0f);
    _mm512_storeu_ps(MS, _mm512_mask_blend_ps(grew, one, _mm512_maskz_mov_ps(~from_ninf, e)));
    _mm512_storeu_ps(VS, _mm512_mask_blend_ps(grew, e, one));
    float sum = S[h];
    for (int c = 0; c < nv; c++) sum = fmaf(sum, MS[c], VS[c]);
    S[h] = sum;
    M[h] = _mm512_mask_reduce_max_ps(live, upto);
    return grew;
}

#define DEC_NH_CASES(CALL)                                                                         \
    switch (nh) {                                                                                  \
    case 1:                                                                                        \
        CALL(1);                                                                                   \
        break;                                                                                     \
    case 2:                                                                                        \
        CALL(2);                                                                                   \
        break;                                                                                     \
    case 3:                                                                                        \
        CALL(3);                                                                                   \
        break;                                                                                     \
    case 4:                                                                                        \
        CALL(4);                                                                                   \
        break;                                                                                     \
    case 5:                                                                                        \
        CALL(5);                                                                                   \
        break;                                                                                     \
    case 6:                                                                                        \
        CALL(6);                                                                                   \
        break;                                                                                     \
    case 7:                                                                                        \
        CALL(7);                                                                                   \
        break;                                                                                     \
    default:                                                                                       \
        CALL(8);                                                                                   \
        break;                                                                                     \
    }

static T512 void dots(const float *Q, int D, const uint8_t *const *kr, bool f16, int nv,
                      __m512 (*part)[BLK], int nh)
{
#define DOTS(N)                                                                                    \
    (f16 ? block_dots(Q, D, kr, true, nv, part, N) : block_dots(Q, D, kr, false, nv, part, N))
    DEC_NH_CASES(DOTS)
#undef DOTS
}

static T512 void values(float *const *acc, const float (*MS)[BLK], const float (*VS)[BLK], int D,
                        const uint8_t *const *vr, bool f16, int nv, uint32_t nm, int nh)
{
    /* an F16 V has an F16 accumulator (ggml's), any other an F32 one */
#define VALS(N)                                                                                    \
    (f16 ? block_values(acc, MS, VS, D, vr, true, true, nv, nm, N)                                 \
         : block_values(acc, MS, VS, D, vr, false, false, nv, nm, N))
    DEC_NH_CASES(VALS)
#undef VALS
}

/* Head sizes a multiple of 16 (every model herd runs at depth); others go
 * to the reference. */
static T512 void dec_avx512(const herd_attn_dec_args *a, float *M, float *S, float *const *acc,
                            void *scratch)
{
    const int D = a->head_dim, nh = a->nh;
    if (D % 16 != 0 || nh > MAX_HEADS) {
        dec_ref(a, M, S, acc, scratch);
        return;
    }
    float *Q = align64(scratch), *KW = Q + (size_t)MAX_HEADS * D, *VW = KW + (size_t)BLK * D;
    round_q(a, Q, KW);
    start(a, M, S, acc);
    __m512 part[MAX_HEADS][BLK];
    float MS[MAX_HEADS][BLK], VS[MAX_HEADS][BLK];
    const uint8_t *kr[BLK], *vr[BLK];
    for (int j0 = 0; j0 < a->n_cells; j0 += BLK) {
        const int nb = a->n_cells - j0 < BLK ? a->n_cells - j0 : BLK;
        const int32_t *cells = a->cells + j0;
        __m512i kpos;
        const __mmask16 vis = block_visible(a, cells, nb, &kpos);
        if (!vis) continue; /* skipped without reading its rows */
        const int nv = __builtin_popcount(vis);
        if (j0 + BLK < a->n_cells) prefetch_block(a, cells + BLK, a->n_cells - j0 - BLK);
        const bool kf16 = block_rows(a->k, a->row_k, a->type_k, cells, vis, D, KW, kr);
        const bool vf16 = block_rows(a->v, a->row_v, a->type_v, cells, vis, D, VW, vr);
        dots(Q, D, kr, kf16, nv, part, nh);
        /* part's cells are the visible ones packed; put them back in their
         * lanes so that the scores line up with kpos and vis */
        uint32_t nm = 0; /* cells where some head's maximum grew */
        for (int h = 0; h < nh; h++) {
            __m512 s = _mm512_maskz_expand_ps(vis, sum16x16(part[h]));
            nm |= block_softmax(a, h, s, vis, kpos, nv, M, S, MS[h], VS[h]);
        }
        values(acc, (const float(*)[BLK])MS, (const float(*)[BLK])VS, D, vr, vf16, nv, nm, nh);
    }
}
#endif

bool herd_attn_dec_kernel(const char *level, herd_attn_dec_fn *fn)
{
    if (!strcmp(level, "scalar")) {
        *fn = dec_ref;
        return true;
    }
#ifdef __x86_64__
    if (!strcmp(level, "avx512")) {
        *fn = dec_avx512;
        return true;
    }
#endif
    return false;
}
