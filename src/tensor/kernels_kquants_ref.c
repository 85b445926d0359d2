/*
 * kernels_kquants_ref.c — scalar references for Q2_K, Q3_K, Q4_K and Q5_K
 * (Q6_K and the Q8_K activations are in kernels_ref.c).
 *
 * The quantizers are ggml's quantize_row_q{2,3,4,5}_K_ref, which is what
 * llama-quantize runs without an importance matrix: each sub-block gets a
 * scale (and for Q2/Q4/Q5 a min) from a small search that minimizes a
 * weighted error, the scales are quantized against the super-block's F16 d
 * and dmin, and the elements are requantized with the rounded scales. The
 * searches compare float sums, so every expression keeps ggml's association
 * order and nothing may be contracted into an FMA (this file is compiled for
 * the baseline ISA, which has none): a single different rounding moves a
 * scale and changes bytes.
 *
 * Dot products pair the weights with Q8_K activations: the sum over a
 * super-block is exact in integers, then scaled by d·y.d; the mins of
 * Q2/Q4/Q5_K come in through Q8_K's per-16 sums (bsums), so that
 * Σ (d·s·q − dmin·m)·y = d·Σ s·q·y − dmin·Σ m·bsum.
 */
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

#define QK        HERD_QK_K
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void st_f16(void *p, float f)
{
    uint16_t h = herd_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* ------------------------------------------------------------ searches */

/* ggml's make_qkx2_quants: levels 0..nmax with an affine fit x ≈ scale·l −
 * the_min. Starts from the min–max grid, then tries nstep+1 stretched grids
 * and keeps the least-squares (or least-absolute with use_mad) best. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = herd_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAX(0, MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = herd_nearest_int(iscale * (x[i] - min));
            l = MAX(0, MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ggml's make_q3_quants with do_rmse: symmetric levels −nmax..nmax−1 (L
 * returned biased by nmax), then up to five passes that move single
 * elements to the level that improves the weighted (w = x²) fit. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < 1e-15f) { /* GROUP_MAX_EPS: all zero */
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = herd_nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = herd_nearest_int(x[i] * sl2 / slx);
                new_l = MAX(-nmax, MIN(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Four 2-bit levels per byte: element j + 32k of each 128 in bits 2k. */
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < QK; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

/* ------------------------------------------------------------ Q2_K */

void herd_quantize_q2_K_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q2_K *y = vy;
    uint8_t L[QK], Laux[16];
    float w[16], mins[QK / 16], scales[QK / 16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        float max_scale = 0, max_min = 0; /* the min is deducted: scales are ≥ 0 */
        for (int j = 0; j < QK / 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f,
                                         0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK / 16; j++)
                y[i].scales[j] = (uint8_t)herd_nearest_int(iscale * scales[j]);
            st_f16(&y[i].d, max_scale / q4scale);
        } else {
            memset(y[i].scales, 0, sizeof y[i].scales);
            st_f16(&y[i].d, 0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK / 16; j++)
                y[i].scales[j] |= (uint8_t)(herd_nearest_int(iscale * mins[j]) << 4);
            st_f16(&y[i].dmin, max_min / q4scale);
        } else {
            st_f16(&y[i].dmin, 0.f);
        }
        for (int j = 0; j < QK / 16; j++) {
            const float d = herd_ld_f16(&y[i].d) * (y[i].scales[j] & 0xf);
            if (!d) continue;
            const float dm = herd_ld_f16(&y[i].dmin) * (y[i].scales[j] >> 4);
            for (int k = 0; k < 16; k++) {
                int l = herd_nearest_int((x[16 * j + k] + dm) / d);
                L[16 * j + k] = (uint8_t)MAX(0, MIN(3, l));
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

static void dequantize_q2_K(const void *vx, float *y, int64_t n)
{
    const herd_block_q2_K *x = vx;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = herd_ld_f16(&x[i].d), min = herd_ld_f16(&x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int k = 0; k < QK; k += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int h = 0; h < 2; h++) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (sc & 0xf), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (int8_t)((q[l + 16 * h] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void herd_vec_dot_q2_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q2_K *x = vx;
    const herd_block_q8_K *y = vy;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        const uint8_t *q2 = x[i].qs, *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        int summs = 0, isum = 0, is = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (sc[j] >> 4);
        for (int k = 0; k < QK / 128; k++, q2 += 32) {
            for (int shift = 0; shift < 8; shift += 2, q8 += 32) {
                for (int h = 0; h < 2; h++) {
                    int isuml = 0;
                    for (int l = 16 * h; l < 16 * h + 16; l++)
                        isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += (sc[is++] & 0xf) * isuml;
                }
            }
        }
        const float dall = y[i].d * herd_ld_f16(&x[i].d);
        const float dmin = y[i].d * herd_ld_f16(&x[i].dmin);
        sumf += dall * isum - dmin * summs;
    }
    *s = sumf;
}

/* ------------------------------------------------------------ Q3_K */

void herd_quantize_q3_K_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q3_K *y = vy;
    int8_t L[QK];
    float scales[QK / 16];
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK / 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK / 16; j++) {
                int8_t l = (int8_t)herd_nearest_int(iscale * scales[j]);
                l = (int8_t)(MAX(-32, MIN(31, l)) + 32);
                if (j < 8)
                    y[i].scales[j] = l & 0xf;
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0xf) << 4);
                l >>= 4;
                y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            st_f16(&y[i].d, 1 / iscale);
        } else {
            st_f16(&y[i].d, 0.f);
        }
        int8_t sc[16];
        herd_q3_K_scales(y[i].scales, sc);
        for (int j = 0; j < QK / 16; j++) {
            const float d = herd_ld_f16(&y[i].d) * sc[j];
            if (!d) continue;
            for (int k = 0; k < 16; k++) {
                int l = herd_nearest_int(x[16 * j + k] / d);
                L[16 * j + k] = (int8_t)(MAX(-4, MIN(3, l)) + 4);
            }
        }
        /* The high bit of element j goes to hmask[j % 32], bit j / 32. */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int j = 0; j < QK; j++) {
            if (L[j] > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1 << (j / 32));
                L[j] = (int8_t)(L[j] - 4);
            }
        }
        pack_2bit((const uint8_t *)L, y[i].qs);
    }
}

/* Element e (< 256) of a Q3_K block as −4..3: two bits from qs, minus 4
 * unless its bit in hmask is set. */
static inline int q3_at(const herd_block_q3_K *b, int e)
{
    const int half = e / 128, r = e % 128, j = r / 32, l = r % 32;
    const int q = (b->qs[32 * half + l] >> (2 * j)) & 3;
    return q - ((b->hmask[l] >> (4 * half + j)) & 1 ? 0 : 4);
}

static void dequantize_q3_K(const void *vx, float *y, int64_t n)
{
    const herd_block_q3_K *x = vx;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d_all = herd_ld_f16(&x[i].d);
        int8_t sc[16];
        herd_q3_K_scales(x[i].scales, sc);
        for (int e = 0; e < QK; e++) {
            const float dl = d_all * sc[e / 16];
            y[e] = dl * q3_at(&x[i], e);
        }
    }
}

/* ggml_vec_dot_q3_K_q8_K_generic's shape: exact integer sums in eight lanes
 * per super-block, scaled and accumulated in F32 lanes. */
void herd_vec_dot_q3_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q3_K *x = vx;
    const herd_block_q8_K *y = vy;
    float sums[8] = {0};
    for (int64_t i = 0; i < n / QK; i++) {
        int8_t sc[16];
        herd_q3_K_scales(x[i].scales, sc);
        int32_t aux32[8] = {0};
        for (int e = 0; e < QK; e++) aux32[e % 8] += sc[e / 16] * (y[i].qs[e] * q3_at(&x[i], e));
        const float d = herd_ld_f16(&x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
    }
    float sumf = 0;
    for (int l = 0; l < 8; l++) sumf += sums[l];
    *s = sumf;
}

/* ------------------------------------------------------------ Q4_K, Q5_K */

/* Both share the search (make_qkx2_quants on 32-element sub-blocks with
 * weights av_x + |x|), the 6-bit scale/min packing and the requantization;
 * they differ in nmax and the search grid. L gets levels 0..nmax. */
static void quantize_k4(const float *x, uint16_t *d, uint16_t *dmin, uint8_t *scales_out,
                        uint8_t *L, int nmax, float rmin, int nstep)
{
    uint8_t Laux[32];
    float w[32], mins[QK / 32], scales[QK / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin,
                                     0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t *q = scales_out;
    for (int j = 0; j < QK / 32; j++) {
        uint8_t ls = (uint8_t)herd_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)herd_nearest_int(inv_min * mins[j]);
        ls = MIN(63, ls);
        lm = MIN(63, lm);
        if (j < 4) {
            q[j] = ls;
            q[j + 4] = lm;
        } else {
            q[j + 4] = (uint8_t)((ls & 0xf) | ((lm & 0xf) << 4));
            q[j - 4] |= (uint8_t)((ls >> 4) << 6);
            q[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    st_f16(d, max_scale / 63.f);
    st_f16(dmin, max_min / 63.f);
    for (int j = 0; j < QK / 32; j++) {
        uint8_t sc, m;
        herd_scale_min_k4(j, q, &sc, &m);
        const float dd = herd_ld_f16(d) * sc;
        if (!dd) continue;
        const float dm = herd_ld_f16(dmin) * m;
        for (int k = 0; k < 32; k++) {
            int l = herd_nearest_int((x[32 * j + k] + dm) / dd);
            L[32 * j + k] = (uint8_t)MAX(0, MIN(nmax, l));
        }
    }
}

void herd_quantize_q4_K_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q4_K *y = vy;
    uint8_t L[QK];
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        quantize_k4(x, &y[i].d, &y[i].dmin, y[i].scales, L, 15, -1.f, 20);
        /* Elements j and j + 32 of each 64 share a byte (low, high nibble). */
        for (int j = 0; j < QK; j += 64)
            for (int l = 0; l < 32; l++)
                y[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void herd_quantize_q5_K_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q5_K *y = vy;
    uint8_t L[QK];
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        quantize_k4(x, &y[i].d, &y[i].dmin, y[i].scales, L, 31, -0.5f, 15);
        /* As Q4_K, plus the fifth bit of element j + 64k (+32) in bit 2k
         * (2k + 1) of qh[j]. */
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int j = 0, b = 0; j < QK; j += 64, b += 2) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) l1 -= 16, y[i].qh[l] |= (uint8_t)(1 << b);
                if (l2 > 15) l2 -= 16, y[i].qh[l] |= (uint8_t)(2 << b);
                y[i].qs[j / 2 + l] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

/* Element e of a Q4_K / Q5_K block (qh NULL for Q4_K) as 0..15 / 0..31. */
static inline int k4_at(const uint8_t *qs, const uint8_t *qh, int e)
{
    const int g = e / 64, r = e % 64, l = r % 32;
    int q = r < 32 ? qs[32 * g + l] & 0xf : qs[32 * g + l] >> 4;
    if (qh) q |= ((qh[l] >> (2 * g + r / 32)) & 1) << 4;
    return q;
}

static void dequantize_k4(const uint16_t *pd, const uint16_t *pdmin, const uint8_t *scales,
                          const uint8_t *qs, const uint8_t *qh, float *y)
{
    const float d = herd_ld_f16(pd), min = herd_ld_f16(pdmin);
    for (int j = 0; j < QK / 32; j++) {
        uint8_t sc, m;
        herd_scale_min_k4(j, scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        for (int l = 0; l < 32; l++) y[32 * j + l] = d1 * k4_at(qs, qh, 32 * j + l) - m1;
    }
}

static void dequantize_q4_K(const void *vx, float *y, int64_t n)
{
    const herd_block_q4_K *x = vx;
    for (int64_t i = 0; i < n / QK; i++, y += QK)
        dequantize_k4(&x[i].d, &x[i].dmin, x[i].scales, x[i].qs, NULL, y);
}

static void dequantize_q5_K(const void *vx, float *y, int64_t n)
{
    const herd_block_q5_K *x = vx;
    for (int64_t i = 0; i < n / QK; i++, y += QK)
        dequantize_k4(&x[i].d, &x[i].dmin, x[i].scales, x[i].qs, x[i].qh, y);
}

/* ggml's generic Q4_K/Q5_K dot: per super-block, eight exact int32 lanes of
 * scale·q·y scaled by d·y.d into F32 lanes, and the mins subtracted as
 * dmin·y.d·Σ m·bsum. */
static float vec_dot_k4(int64_t n, const uint8_t *vx, size_t bsize, size_t qs_off, int qh_off,
                        const herd_block_q8_K *y)
{
    float sums[8] = {0}, sumf = 0;
    for (int64_t i = 0; i < n / QK; i++, vx += bsize) {
        const uint8_t *scales = vx + 4, *qs = vx + qs_off;
        const uint8_t *qh = qh_off ? vx + qh_off : NULL;
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; j++) herd_scale_min_k4(j, scales, &sc[j], &m[j]);
        int sumi = 0;
        for (int j = 0; j < 16; j++) sumi += y[i].bsums[j] * m[j / 2];
        int32_t aux32[8] = {0};
        for (int e = 0; e < QK; e++) aux32[e % 8] += sc[e / 32] * (y[i].qs[e] * k4_at(qs, qh, e));
        const float d = herd_ld_f16(vx) * y[i].d;
        for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
        const float dmin = herd_ld_f16(vx + 2) * y[i].d;
        sumf -= dmin * sumi;
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

void herd_vec_dot_q4_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    *s = vec_dot_k4(n, vx, sizeof(herd_block_q4_K), offsetof(herd_block_q4_K, qs), 0, vy);
}

void herd_vec_dot_q5_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    *s = vec_dot_k4(n, vx, sizeof(herd_block_q5_K), offsetof(herd_block_q5_K, qs),
                    (int)offsetof(herd_block_q5_K, qh), vy);
}

/* ------------------------------------------------------------ install */

static void set(herd_type_traits *t, herd_to_float_fn to, herd_from_float_fn from,
                herd_vec_dot_fn dot)
{
    t->to_float = to;
    t->from_float = from;
    t->from_float_ref = from;
    t->vec_dot_type = HERD_TYPE_Q8_K;
    t->vec_dot = dot;
    t->vec_dot_ref = dot;
}

void herd_kernels_install_kquants_ref(herd_type_traits *traits)
{
    set(&traits[HERD_TYPE_Q2_K], dequantize_q2_K, herd_quantize_q2_K_ref, herd_vec_dot_q2_K_ref);
    set(&traits[HERD_TYPE_Q3_K], dequantize_q3_K, herd_quantize_q3_K_ref, herd_vec_dot_q3_K_ref);
    set(&traits[HERD_TYPE_Q4_K], dequantize_q4_K, herd_quantize_q4_K_ref, herd_vec_dot_q4_K_ref);
    set(&traits[HERD_TYPE_Q5_K], dequantize_q5_K, herd_quantize_q5_K_ref, herd_vec_dot_q5_K_ref);
}
