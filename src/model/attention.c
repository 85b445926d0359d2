/*
 * attention.c — scaled dot-product attention over the KV cache, computed the
 * way ggml's CPU flash attention computes it, so that logits match llama.cpp's
 * (ggml's CPU backend):
 *
 *   batches of fewer than 64 tokens (every decode step, short prompts) take
 *   ggml's vector path: Q rounded to F16, Q·K with ggml_vec_dot_f16, an online
 *   softmax whose V accumulator is an F16 vector — on AVX-512 through the
 *   blocked kernel herd_attn_dec (src/tensor/attn_dec.c: 16 cells at a time,
 *   each K and V row read once for the whole GQA group, the same arithmetic
 *   but for exp's last bit) when the head size is a multiple of 64,
 *   elsewhere cell by cell below;
 *   larger batches, and an F32 cache, take its tiled path: F32 Q, F32 scores,
 *   F32 accumulator (herd_attn, src/tensor/attn.c);
 *   a single token over 512 cells or more splits the cells into ranges, one
 *   partial softmax each, merged in order (ggml's split-KV decode), so that
 *   every thread streams its own part of a long cache.
 *
 * K and V come from the cache (F16 by default). Query head h reads KV head
 * h / (n_head / n_head_kv) (grouped-query attention). Each token sees the
 * cells of its own sequence whose position is not after its own, visited in
 * cell order, which for one sequence is position order.
 */
#include "model/model.h"
#include "util/pool.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

#define TILED_MIN_TOKENS 64

/* -------------------------------------------------------- scalar kernels */

/* ggml_vec_dot_f16 as built for AVX-512: blocks of 64 go through four
 * 16-lane F32 accumulators reduced in a fixed tree; the rest is summed in
 * double. Emulated lane by lane so that the result is bit-identical. */
static float dot_f16_ggml(const uint16_t *x, const uint16_t *y, int n)
{
    int np = n & ~63;
    double sumf = 0.0;
    if (np) {
        float acc[4][16] = {{0}};
        for (int i = 0; i < np; i += 64)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 16; l++) {
                    int e = i + j * 16 + l;
                    acc[j][l] += herd_f16_to_f32(x[e]) * herd_f16_to_f32(y[e]);
                }
        float r[16], a[8], b[4];
        for (int l = 0; l < 16; l++) r[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
        for (int l = 0; l < 8; l++) a[l] = r[l] + r[l + 8];
        for (int l = 0; l < 4; l++) b[l] = a[l] + a[l + 4];
        sumf = (double)((b[0] + b[2]) + (b[1] + b[3]));
    }
    for (int i = np; i < n; i++) sumf += (double)(herd_f16_to_f32(x[i]) * herd_f16_to_f32(y[i]));
    return (float)sumf;
}

#ifdef __x86_64__
/* The same computation with AVX2/F16C: each 16-lane accumulator is a pair of
 * 8-lane registers; the adds happen in the same order. */
__attribute__((target("avx2,fma,f16c"))) static float dot_f16_ggml_avx2(const uint16_t *x,
                                                                        const uint16_t *y, int n)
{
    int np = n & ~63;
    double sumf = 0.0;
    if (np) {
        __m256 lo[4], hi[4];
        for (int j = 0; j < 4; j++) lo[j] = hi[j] = _mm256_setzero_ps();
        for (int i = 0; i < np; i += 64)
            for (int j = 0; j < 4; j++) {
                const uint16_t *xp = x + i + j * 16, *yp = y + i + j * 16;
                __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xp));
                __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xp + 8)));
                __m256 y0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)yp));
                __m256 y1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(yp + 8)));
                lo[j] = _mm256_fmadd_ps(x0, y0, lo[j]);
                hi[j] = _mm256_fmadd_ps(x1, y1, hi[j]);
            }
        __m256 rlo = _mm256_add_ps(_mm256_add_ps(lo[0], lo[2]), _mm256_add_ps(lo[1], lo[3]));
        __m256 rhi = _mm256_add_ps(_mm256_add_ps(hi[0], hi[2]), _mm256_add_ps(hi[1], hi[3]));
        float a[8];
        _mm256_storeu_ps(a, _mm256_add_ps(rlo, rhi));
        float b[4];
        for (int l = 0; l < 4; l++) b[l] = a[l] + a[l + 4];
        sumf = (double)((b[0] + b[2]) + (b[1] + b[3]));
    }
    for (int i = np; i < n; i++) sumf += (double)(herd_f16_to_f32(x[i]) * herd_f16_to_f32(y[i]));
    return (float)sumf;
}

/* The same with AVX-512 (what ggml's zen4 build runs): the four 16-lane
 * accumulators are registers, the reduction the same tree. */
__attribute__((target("avx512f,avx2,fma,f16c"))) static float
dot_f16_ggml_avx512(const uint16_t *x, const uint16_t *y, int n)
{
    int np = n & ~63;
    double sumf = 0.0;
    if (np) {
        __m512 acc[4];
        for (int j = 0; j < 4; j++) acc[j] = _mm512_setzero_ps();
        for (int i = 0; i < np; i += 64)
            for (int j = 0; j < 4; j++) {
                __m512 xv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + j * 16)));
                __m512 yv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i + j * 16)));
                acc[j] = _mm512_fmadd_ps(xv, yv, acc[j]);
            }
        __m512 r = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
        __m256 a = _mm256_add_ps(_mm512_castps512_ps256(r),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(r), 1)));
        float b8[8], b[4];
        _mm256_storeu_ps(b8, a);
        for (int l = 0; l < 4; l++) b[l] = b8[l] + b8[l + 4];
        sumf = (double)((b[0] + b[2]) + (b[1] + b[3]));
    }
    for (int i = np; i < n; i++) sumf += (double)(herd_f16_to_f32(x[i]) * herd_f16_to_f32(y[i]));
    return (float)sumf;
}

__attribute__((target("avx512f,avx2,fma,f16c"))) static void
mad_f16_avx512(uint16_t *acc, const uint16_t *v, float s, int n)
{
    int i = 0;
    __m512 vs = _mm512_set1_ps(s);
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(acc + i)));
        __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i)));
        a = _mm512_fmadd_ps(x, vs, a);
        _mm256_storeu_si256((__m256i *)(acc + i), _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++)
        acc[i] = herd_f32_to_f16(fmaf(herd_f16_to_f32(v[i]), s, herd_f16_to_f32(acc[i])));
}

/* acc = fma(v, s, acc) over n F32 elements (ggml_vec_mad_f32, fused as
 * its AVX builds are): the V of a quantized or BF16 cache, widened. */
__attribute__((target("avx512f"))) static void mad_f32_avx512(float *acc, const float *v, float s,
                                                              int n)
{
    int i = 0;
    __m512 vs = _mm512_set1_ps(s);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(acc + i,
                         _mm512_fmadd_ps(_mm512_loadu_ps(v + i), vs, _mm512_loadu_ps(acc + i)));
    for (; i < n; i++) acc[i] = fmaf(v[i], s, acc[i]);
}

__attribute__((target("avx2,fma"))) static void mad_f32_avx2(float *acc, const float *v, float s,
                                                             int n)
{
    int i = 0;
    __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(acc + i,
                         _mm256_fmadd_ps(_mm256_loadu_ps(v + i), vs, _mm256_loadu_ps(acc + i)));
    for (; i < n; i++) acc[i] = fmaf(v[i], s, acc[i]);
}

/* acc = F16(fma(v, s, acc)) over n elements (ggml_vec_mad_f16). */
__attribute__((target("avx2,fma,f16c"))) static void mad_f16_avx2(uint16_t *acc, const uint16_t *v,
                                                                  float s, int n)
{
    int i = 0;
    __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(acc + i)));
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        a = _mm256_fmadd_ps(x, vs, a);
        _mm_storeu_si128((__m128i *)(acc + i), _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++)
        acc[i] = herd_f32_to_f16(fmaf(herd_f16_to_f32(v[i]), s, herd_f16_to_f32(acc[i])));
}
#endif

static void mad_f16_ref(uint16_t *acc, const uint16_t *v, float s, int n)
{
    for (int i = 0; i < n; i++)
        acc[i] = herd_f32_to_f16(fmaf(herd_f16_to_f32(v[i]), s, herd_f16_to_f32(acc[i])));
}

static void mad_f32_ref(float *acc, const float *v, float s, int n)
{
    for (int i = 0; i < n; i++) acc[i] = fmaf(v[i], s, acc[i]);
}

static void (*mad_f32)(float *, const float *, float, int) = mad_f32_ref;
static float (*dot_f16)(const uint16_t *, const uint16_t *, int) = dot_f16_ggml;
static void (*mad_f16)(uint16_t *, const uint16_t *, float, int) = mad_f16_ref;

bool herd_attention_kernels(const char *level, herd_att_dot_fn *dot, herd_att_mad_fn *mad,
                            herd_att_mad32_fn *mad32)
{
    *dot = dot_f16_ggml, *mad = mad_f16_ref, *mad32 = mad_f32_ref;
    if (!strcmp(level, "scalar")) return true;
#ifdef __x86_64__
    if (!strcmp(level, "avx2")) {
        *dot = dot_f16_ggml_avx2, *mad = mad_f16_avx2, *mad32 = mad_f32_avx2;
        return true;
    }
    if (!strcmp(level, "avx512")) {
        *dot = dot_f16_ggml_avx512, *mad = mad_f16_avx512, *mad32 = mad_f32_avx512;
        return true;
    }
#endif
    return false;
}

/* The blocked decode kernel (src/tensor/attn_dec.c) where the CPU has one,
 * else NULL: ggml's cell-by-cell arithmetic below. HERD_ATTN_GGML=1 in the
 * environment keeps ggml's arithmetic (bit-faithful F16 accumulator) for
 * comparisons. */
static herd_attn_dec_fn dec_fast;

static void pick_kernels(void)
{
#ifdef __x86_64__
    /* Every SIMD level herd picks has F16C and FMA (kernels_ref.c checks). */
    const char *lvl = herd_tensor_simd_level();
    if (strcmp(lvl, "scalar") != 0) {
        dot_f16 = dot_f16_ggml_avx2;
        mad_f16 = mad_f16_avx2;
        mad_f32 = mad_f32_avx2;
    }
    if (!strcmp(lvl, "avx512") || !strcmp(lvl, "amx")) {
        dot_f16 = dot_f16_ggml_avx512;
        mad_f16 = mad_f16_avx512;
        mad_f32 = mad_f32_avx512;
        const char *g = getenv("HERD_ATTN_GGML");
        if (!(g && *g && strcmp(g, "0") != 0)) herd_attn_dec_kernel("avx512", &dec_fast);
    }
#endif
}

/* ------------------------------------------------------- the two paths */

typedef struct {
    const herd_kv_cache *kv;
    int il, head_dim;
    size_t k_off, v_off; /* bytes from a cell's row to the KV head's keys (values) */
    float scale;
    const int32_t *cells; /* cells of the sequence, in cell order */
    int n_cells;
    int swa;       /* sliding window (0: none) */
    float softcap; /* scores soft-capped to ±softcap by tanh, as ggml (0: none) */
} att_view;

/* A score as ggml's flash attention makes it: q·k scaled, soft-capped
 * (cap·tanh(q·k·scale/cap)) where the model asks for it, plus the mask. */
static inline float score(const att_view *a, float qk, float mv)
{
    if (a->softcap == 0.0f) return qk * a->scale + mv;
    float s = qk * (a->scale / a->softcap);
    s = a->softcap * tanhf(s);
    return s + mv;
}

/* ggml's vector path (ggml_compute_forward_flash_attn_ext_f16_one_chunk)
 * for nh ≤ VEC_HEADS query heads that read the same KV head. Q is converted
 * to the K type's vec_dot_type (F16 for F16, Q8_0 for Q8_0 and Q4_0, BF16,
 * F32) and dotted with that type's vec_dot; an F16 V is summed into an F16
 * accumulator (ggml_vec_mad_f16), any other V is widened to F32 and summed
 * into an F32 one (ggml_vec_mad_f32, fused multiply-adds). The accumulator
 * is rescaled only when a key sets a new maximum. Each head's arithmetic is
 * that of ggml's loop for it alone, but the cells are visited once for all
 * of them, so each K and V row is read once per KV head rather than once per
 * query head (4× less cache traffic for Llama-2-70B's or Mistral's groups of
 * 4, what decides decoding at long contexts). */
#define VEC_HEADS      8 /* = HERD_ATTN_DEC_HEADS */
#define VEC_MAX_D      512
#define PART_STRIDE(D) ((size_t)(D) + 2) /* floats of one head's partial */
typedef struct {
    uint8_t q[VEC_HEADS][VEC_MAX_D * sizeof(float)] __attribute__((aligned(64)));
    uint16_t acc16[VEC_HEADS][VEC_MAX_D];
    float acc32[VEC_HEADS][VEC_MAX_D] __attribute__((aligned(64)));
    float v32[VEC_MAX_D] __attribute__((aligned(64)));
} vec_scratch;

static void attend_vector(const att_view *a, const float *const *q, const float *slope, int nh,
                          int pos, float *const *out, float *part, vec_scratch *w)
{
    const int D = a->head_dim;
    const herd_kv_cache *kv = a->kv;
    const herd_type_traits *kt = herd_type(kv->type_k), *vt = herd_type(kv->type_v);
    const bool k16 = kv->type_k == HERD_TYPE_F16, v16 = kv->type_v == HERD_TYPE_F16;
    const herd_from_float_fn q_conv = herd_type(kt->vec_dot_type)->from_float;
    float M[VEC_HEADS], S[VEC_HEADS];
    for (int h = 0; h < nh; h++) {
        if (k16) /* ggml_cpu_fp32_to_fp16: round to nearest even */
            for (int i = 0; i < D; i++) ((uint16_t *)(void *)w->q[h])[i] = herd_f32_to_f16(q[h][i]);
        else
            q_conv(q[h], w->q[h], D);
        memset(w->acc16[h], 0, (size_t)D * sizeof(uint16_t));
        memset(w->acc32[h], 0, (size_t)D * sizeof(float));
        M[h] = -INFINITY, S[h] = 0.0f;
    }
    for (int j = 0; j < a->n_cells; j++) {
        const int c = a->cells[j], kpos = kv->pos[c];
        if (herd_attn_mask(pos, kpos, a->swa, 0.0f) == -INFINITY) continue;
        const uint8_t *k = kv->k[a->il] + (size_t)c * kv->row_k + a->k_off;
        const uint8_t *v = kv->v[a->il] + (size_t)c * kv->row_v + a->v_off;
        const float *vf = (const float *)(const void *)v;
        if (!v16 && kv->type_v != HERD_TYPE_F32) {
            vt->to_float(v, w->v32, D);
            vf = w->v32;
        }
        for (int h = 0; h < nh; h++) {
            float qk;
            if (k16)
                qk = dot_f16((const uint16_t *)(const void *)w->q[h],
                             (const uint16_t *)(const void *)k, D);
            else
                kt->vec_dot(D, &qk, k, w->q[h]);
            const float s = score(a, qk, herd_attn_mask(pos, kpos, a->swa, slope[h]));
            float ms = 1.0f, vs = 1.0f;
            if (s > M[h]) {
                ms = expf(M[h] - s);
                M[h] = s;
                if (v16)
                    for (int i = 0; i < D; i++)
                        w->acc16[h][i] = herd_f32_to_f16(herd_f16_to_f32(w->acc16[h][i]) * ms);
                else
                    for (int i = 0; i < D; i++) w->acc32[h][i] *= ms;
            } else {
                vs = expf(s - M[h]);
            }
            if (v16)
                mad_f16(w->acc16[h], (const uint16_t *)(const void *)v, vs, D);
            else
                mad_f32(w->acc32[h], vf, vs, D);
            S[h] = S[h] * ms + vs;
        }
    }
    for (int h = 0; h < nh; h++) {
        if (part) { /* a range's partial: [M, S, unnormalised F32 accumulator] */
            float *p = part + (size_t)h * PART_STRIDE(D);
            p[0] = M[h], p[1] = S[h];
            for (int i = 0; i < D; i++)
                p[2 + i] = v16 ? herd_f16_to_f32(w->acc16[h][i]) : w->acc32[h][i];
            continue;
        }
        const float inv = S[h] > 0 ? 1.0f / S[h] : 0.0f;
        for (int i = 0; i < D; i++)
            out[h][i] = (v16 ? herd_f16_to_f32(w->acc16[h][i]) : w->acc32[h][i]) * inv;
    }
}

/* The same result through the blocked kernel (attn_dec.c): 16 cells at a
 * time, the accumulators in registers (an F16 V's still rounded to F16
 * after every cell, as ggml's); a range's accumulator is written straight
 * into its partial. */
static void attend_blocked(const att_view *a, const float *const *q, const float *slope, int nh,
                           int pos, float *const *out, float *part, void *scratch)
{
    const herd_kv_cache *kv = a->kv;
    const herd_attn_dec_args d = {.q = q,
                                  .nh = nh,
                                  .head_dim = a->head_dim,
                                  .k = kv->k[a->il] + a->k_off,
                                  .v = kv->v[a->il] + a->v_off,
                                  .row_k = kv->row_k,
                                  .row_v = kv->row_v,
                                  .type_k = kv->type_k,
                                  .type_v = kv->type_v,
                                  .cells = a->cells,
                                  .cell_pos = kv->pos,
                                  .n_cells = a->n_cells,
                                  .pos = pos,
                                  .swa = a->swa,
                                  .scale = a->scale,
                                  .softcap = a->softcap,
                                  .slope = slope};
    const int D = a->head_dim;
    float M[VEC_HEADS], S[VEC_HEADS], *acc[VEC_HEADS];
    for (int h = 0; h < nh; h++) acc[h] = part ? part + (size_t)h * PART_STRIDE(D) + 2 : out[h];
    dec_fast(&d, M, S, acc, scratch);
    for (int h = 0; h < nh; h++) {
        if (part) {
            part[(size_t)h * PART_STRIDE(D)] = M[h];
            part[(size_t)h * PART_STRIDE(D) + 1] = S[h];
            continue;
        }
        const float inv = S[h] > 0 ? 1.0f / S[h] : 0.0f;
        for (int i = 0; i < D; i++) out[h][i] *= inv;
    }
}

/* Merge a query head's partials of n ranges in range order, as ggml's
 * ggml_flash_attn_ext_reduce_partials does: ranges that saw no cell (S = 0)
 * are skipped, the others rescaled to the running maximum; then V / S. */
static void merge_partials(const float *part, size_t stride, int n, int D, float *out)
{
    float M = -INFINITY, S = 0.0f;
    for (int i = 0; i < D; i++) out[i] = 0.0f;
    for (int r = 0; r < n; r++) {
        const float *p = part + (size_t)r * stride;
        if (p[1] == 0.0f) continue;
        const float Mn = fmaxf(M, p[0]), so = expf(M - Mn), sn = expf(p[0] - Mn);
        for (int i = 0; i < D; i++) out[i] = out[i] * so + p[2 + i] * sn;
        S = S * so + p[1] * sn;
        M = Mn;
    }
    if (S != 0.0f)
        for (int i = 0; i < D; i++) out[i] *= 1.0f / S;
}

/* ALiBi: head h's slope, as ggml_soft_max_ext / flash attention compute it. */
static float alibi_slope(const herd_hparams *hp, const herd_arch *arch, int h)
{
    if (!arch->alibi || hp->max_alibi_bias <= 0) return 0.0f;
    const int n_head_log2 = 1 << (int)floorf(log2f((float)hp->n_head));
    const float m0 = powf(2.0f, -hp->max_alibi_bias / n_head_log2);
    const float m1 = powf(2.0f, -(hp->max_alibi_bias / 2.0f) / n_head_log2);
    return h < n_head_log2 ? powf(m0, (float)(h + 1))
                           : powf(m1, (float)(2 * (h - n_head_log2) + 1));
}

/* ------------------------------------------------ per-thread workspace */

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

#define ATT_TILE 16 /* tokens per unit of the tiled path */

/* Bytes one worker needs: the vector path's Q, accumulators and widened V,
 * or the tiled path's herd_attn scratch and query pointers for every query
 * head of a group times ATT_TILE tokens. */
size_t herd_attention_work_bytes(const herd_hparams *hp)
{
    const size_t nq_max = (size_t)(hp->n_head / hp->n_head_kv) * ATT_TILE;
    const size_t tiled = round64(herd_attn_scratch_size(hp->head_dim, (int)nq_max)) +
                         nq_max * (2 * sizeof(void *) + sizeof(int32_t));
    size_t vec = sizeof(vec_scratch);
    if (herd_attn_dec_scratch_size(hp->head_dim) > vec)
        vec = herd_attn_dec_scratch_size(hp->head_dim);
    return round64(tiled > vec ? tiled : vec);
}

/* Decoding one token splits the sequence's cells into ranges (flash-decoding,
 * as ggml splits a single query over its threads from 512 cells on): each
 * range's partial softmax goes to a shared buffer after the workers' own
 * workspaces, [range][query head][M, S, V accumulator], merged in range
 * order. */
#define SPLIT_MIN_CELLS 512
static size_t part_bytes(const herd_hparams *hp)
{
    return round64((size_t)HERD_ATT_MAX_RANGES * (size_t)hp->n_head * PART_STRIDE(hp->head_dim) *
                   sizeof(float));
}

size_t herd_attention_work_total(const herd_hparams *hp, int n_threads)
{
    return (size_t)n_threads * herd_attention_work_bytes(hp) + part_bytes(hp);
}

static uint8_t *work_of(const herd_ctx *ctx, int ith)
{
    return (uint8_t *)ctx->att_work + (size_t)ith * herd_attention_work_bytes(&ctx->model->hp);
}

static float *partials_of(const herd_ctx *ctx)
{
    return (float *)(void *)work_of(ctx, ctx->n_threads);
}

/* Group the used cells by sequence, keeping cell order within each:
 * sequence s owns vis[seg[s] .. seg[s+1]). */
static void group_cells(const herd_kv_cache *kv, int n_seq, int32_t *seg, int32_t *vis)
{
    memset(seg, 0, (size_t)(n_seq + 1) * sizeof *seg);
    for (int c = 0; c < kv->n_cells; c++)
        if (kv->pos[c] >= 0) seg[kv->seq[c] + 1]++;
    for (int s = 0; s < n_seq; s++) seg[s + 1] += seg[s];
    for (int c = 0; c < kv->n_cells; c++)
        if (kv->pos[c] >= 0) vis[seg[kv->seq[c]]++] = c;
    for (int s = n_seq; s > 0; s--) seg[s] = seg[s - 1];
    seg[0] = 0;
}

typedef struct {
    herd_ctx *ctx;
    int il;
    const herd_kv_cache *kv; /* the layer's cache */
    int swa;                 /* the layer's window (0: none) */
    const herd_batch *b;
    const int32_t *seq;
    bool vector; /* ggml's vector path (attention_worker), else herd_attn */
    int ranges;  /* vector path, one token: ranges of cells (1: unsplit) */
    float scale;
    atomic_int next; /* the next (token, head) pair to take */
} att_job;

/* Work items are (token, KV head, up to VEC_HEADS of its query heads, range
 * of the sequence's cells); a split range writes a partial. */
static void attention_worker(void *arg, int ith, int nth)
{
    (void)nth;
    att_job *j = arg;
    const herd_ctx *ctx = j->ctx;
    const herd_hparams *hp = &ctx->model->hp;
    const int D = hp->head_dim, group = hp->n_head / hp->n_head_kv, Q = herd_n_embd_q(hp);
    const int per_kv = (group + VEC_HEADS - 1) / VEC_HEADS, n_items = hp->n_head_kv * per_kv;
    const int R = j->ranges;
    vec_scratch *w = (vec_scratch *)(void *)work_of(ctx, ith);
    for (int it; (it = herd_parallel_next(&j->next)) < j->b->n_tokens * n_items * R;) {
        const int r = it % R, ig = it / R % n_items, t = it / R / n_items, g = ig / per_kv;
        const int h0 = g * group + ig % per_kv * VEC_HEADS;
        const int nh = g * group + group - h0 < VEC_HEADS ? g * group + group - h0 : VEC_HEADS;
        const int sq = j->seq[t], n = ctx->seg[sq + 1] - ctx->seg[sq];
        /* ggml's chunks: ceil(n / R) cells each, the last ones short or empty */
        const int chunk = (n + R - 1) / R, c0 = r * chunk < n ? r * chunk : n,
                  c1 = c0 + chunk < n ? c0 + chunk : n;
        att_view a = {.kv = j->kv,
                      .il = j->il,
                      .k_off = herd_row_bytes(j->kv->type_k, (int64_t)g * D),
                      .v_off = herd_row_bytes(j->kv->type_v, (int64_t)g * D),
                      .head_dim = D,
                      .scale = j->scale,
                      .cells = ctx->vis + ctx->seg[sq] + c0,
                      .n_cells = c1 - c0,
                      .swa = j->swa,
                      .softcap = hp->attn_softcap};
        const float *q[VEC_HEADS];
        float *out[VEC_HEADS], slope[VEC_HEADS];
        for (int h = 0; h < nh; h++) {
            q[h] = ctx->s.q + (size_t)t * Q + (size_t)(h0 + h) * D;
            out[h] = ctx->s.att + (size_t)t * Q + (size_t)(h0 + h) * D;
            slope[h] = alibi_slope(hp, ctx->model->arch, h0 + h);
        }
        float *part =
            R > 1 ? partials_of(ctx) + ((size_t)r * hp->n_head + h0) * PART_STRIDE(D) : NULL;
        /* the blocked kernel sums a dot product in ggml's order only for
         * head sizes that are multiples of 64 (ggml adds the rest in
         * double): others (phi-2's 80) keep the cell-by-cell path, whose
         * bits are ggml's */
        if (dec_fast && D % 64 == 0)
            attend_blocked(&a, q, slope, nh, j->b->pos[t], out, part, w);
        else
            attend_vector(&a, q, slope, nh, j->b->pos[t], out, part, w);
    }
}

/* The tiled path through herd_attn: one call per (KV head, run of up to 16
 * tokens of one sequence), with every query head of the KV head's group
 * (one head at a time with ALiBi, whose slope is per head). */
static void attention_worker_tiled(void *arg, int ith, int nth)
{
    (void)nth;
    att_job *j = arg;
    const herd_ctx *ctx = j->ctx;
    const herd_hparams *hp = &ctx->model->hp;
    const int H = hp->n_head, D = hp->head_dim, group = hp->n_head / hp->n_head_kv,
              Q = herd_n_embd_q(hp);
    const bool alibi = alibi_slope(hp, ctx->model->arch, 0) != 0.0f;
    const int per = alibi ? 1 : group, n_units = H / per, T = j->b->n_tokens;
    const int n_tiles = (T + ATT_TILE - 1) / ATT_TILE, nq_max = per * ATT_TILE;
    uint8_t *base = work_of(ctx, ith);
    void *scratch = base;
    const float **q = (const float **)(void *)(base + round64(herd_attn_scratch_size(D, nq_max)));
    float **out = (float **)(q + nq_max);
    int32_t *qpos = (int32_t *)(void *)(out + nq_max);
    const herd_kv_cache *kv = j->kv;
    const size_t esz = kv->type_k == HERD_TYPE_F16 ? 2 : 4;
    for (int it; (it = herd_parallel_next(&j->next)) < n_tiles * n_units;) {
        const int u = it % n_units, t0 = (it / n_units) * ATT_TILE;
        const int h0 = u * per, g = h0 / group;
        for (int t = t0; t < T && t < t0 + ATT_TILE;) {
            /* a run of tokens of one sequence */
            const int sq = j->seq[t];
            int t1 = t;
            while (t1 < T && t1 < t0 + ATT_TILE && j->seq[t1] == sq) t1++;
            int nq = 0;
            for (int h = h0; h < h0 + per; h++)
                for (int tt = t; tt < t1; tt++, nq++) {
                    q[nq] = ctx->s.q + (size_t)tt * Q + (size_t)h * D;
                    out[nq] = ctx->s.att + (size_t)tt * Q + (size_t)h * D;
                    qpos[nq] = j->b->pos[tt];
                }
            herd_attn_args a = {.q = q,
                                .out = out,
                                .q_pos = qpos,
                                .nq = nq,
                                .head_dim = D,
                                .k = kv->k[j->il] + esz * (size_t)g * D,
                                .v = kv->v[j->il] + esz * (size_t)g * D,
                                .row_bytes = kv->row_k,
                                .type = kv->type_k,
                                .cells = ctx->vis + ctx->seg[sq],
                                .cell_pos = kv->pos,
                                .n_cells = ctx->seg[sq + 1] - ctx->seg[sq],
                                .scale = j->scale,
                                .slope = alibi_slope(hp, ctx->model->arch, h0),
                                .swa = j->swa,
                                .softcap = hp->attn_softcap};
            herd_attn(&a, scratch);
            t = t1;
        }
    }
}

/* ggml's choice: the tiled path takes batches of 64 or more over an F16 or
 * an F32 cache whose K and V types agree (herd's own F32 vector code is the
 * tiled one, so an F32 cache always goes there); everything else, every
 * quantized or BF16 cache and mixed types whatever the batch, is the vector
 * path. */
static bool vector_path(const herd_kv_cache *kv, int T)
{
    const bool plain =
        kv->type_k == kv->type_v && (kv->type_k == HERD_TYPE_F16 || kv->type_k == HERD_TYPE_F32);
    if (!plain) return true;
    return T < TILED_MIN_TOKENS && kv->type_k == HERD_TYPE_F16;
}

/* Ranges for a vector-path decode of one token: as many as threads (the
 * test's choice if it set ctx->att_ranges) once the sequence has 512 cells;
 * 1 (unsplit) otherwise. */
static int split_ranges(const herd_ctx *ctx, const att_job *j, int n_threads)
{
    if (!j->vector || j->b->n_tokens != 1) return 1;
    const int sq = j->seq[0];
    if (ctx->seg[sq + 1] - ctx->seg[sq] < SPLIT_MIN_CELLS) return 1;
    const int R = ctx->att_ranges > 0 ? ctx->att_ranges : n_threads;
    return R < HERD_ATT_MAX_RANGES ? R : HERD_ATT_MAX_RANGES;
}

void herd_attention(herd_ctx *ctx, int il, const herd_batch *b, const int32_t *seq)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, pick_kernels);
    const herd_hparams *hp = &ctx->model->hp;
    const int T = b->n_tokens;
    const herd_kv_cache *kv = herd_ctx_kv(ctx, il);
    /* phi2 scales Q before attention, so its scores are not scaled again */
    att_job job = {.ctx = ctx,
                   .il = il,
                   .kv = kv,
                   .swa = herd_layer_windowed(hp, ctx->swa, il) ? ctx->swa : 0,
                   .b = b,
                   .seq = seq,
                   .vector = vector_path(kv, T),
                   .scale =
                       ctx->model->arch->q_prescale ? 1.0f : 1.0f / sqrtf((float)hp->head_dim)};
    atomic_init(&job.next, 0);
    job.ranges = 1;
    /* A quantized cache holds rotated K and V (herd_kv_rot_k/v): Q turns
     * with K, and the output turns back with V. */
    const size_t nq = (size_t)T * herd_n_embd_q(hp);
    const int rk = herd_kv_rot_k(kv, hp->head_dim), rv = herd_kv_rot_v(kv, hp->head_dim);
    if (rk) herd_fwht(ctx->s.q, nq, rk);
    group_cells(kv, ctx->params.n_seq_max, ctx->seg, ctx->vis);
    /* Threads only pay off when there is enough work to split: waking them
     * costs microseconds, a tiny model's decode step is about that long. */
    const int64_t work = (int64_t)T * hp->n_head * hp->head_dim * kv->n_used;
    const int nth = work > 65536 ? ctx->n_threads : 1;
    job.ranges = split_ranges(ctx, &job, nth);
    herd_parallel(nth, job.vector ? attention_worker : attention_worker_tiled, &job);
    if (job.ranges > 1) {
        ctx->att_splits++;
        const size_t stride = PART_STRIDE(hp->head_dim);
        for (int h = 0; h < hp->n_head; h++)
            merge_partials(partials_of(ctx) + (size_t)h * stride, stride * (size_t)hp->n_head,
                           job.ranges, hp->head_dim, ctx->s.att + (size_t)h * hp->head_dim);
    }
    if (rv) herd_fwht(ctx->s.att, nq, rv);
}
