/*
 * kernels_legacy_ref.c — scalar references for the 32-element block types
 * beyond Q4_0/Q8_0: Q4_1, Q5_0, Q5_1, and Q8_1, the activation type of the
 * two "_1" formats.
 *
 * As in kernels_ref.c, the file quantizers reproduce ggml's
 * quantize_row_*_ref operation for operation (float rounding included), so
 * that requantizing an F32 tensor gives llama-quantize's bytes; the dot
 * products compute ggml-cpu's exact integer sums and differ from its SIMD
 * code only in the order of the F32 additions.
 *
 * Q8_1 has the same split as Q8_0: ggml-cpu's x86 activation quantizer
 * multiplies by 127/amax and rounds half to even, quantize_row_q8_1_ref
 * divides by amax/127 and uses roundf. Matmul uses the first (from_float),
 * file making the second (from_float_ref).
 */
#include "tensor/kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void st_f16(void *p, float f)
{
    uint16_t h = herd_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* The fifth bits of a Q5 block: bit j of the 32-bit little-endian qh. */
static inline uint32_t ld_qh(const uint8_t *qh)
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static inline void st_qh(uint8_t *qh, uint32_t v)
{
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(v >> (8 * k));
}

/* ------------------------------------------------------------ Q4_1 */

void herd_quantize_q4_1_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q4_1 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        st_f16(&y[i].d, d);
        st_f16(&y[i].m, min);
        for (int j = 0; j < 16; j++) {
            const uint8_t q0 = (uint8_t)MIN(15, (int8_t)((x[j] - min) * id + 0.5f));
            const uint8_t q1 = (uint8_t)MIN(15, (int8_t)((x[j + 16] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void dequantize_q4_1(const void *vx, float *y, int64_t n)
{
    const herd_block_q4_1 *x = vx;
    for (int64_t i = 0; i < n / 32; i++, y += 32) {
        const float d = herd_ld_f16(&x[i].d), m = herd_ld_f16(&x[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (x[i].qs[j] & 0x0f) * d + m;
            y[j + 16] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

/* Σ (q·dx + m)·dy·qy = dx·dy·Σq·qy + m·s, s = dy·Σqy from the Q8_1 block. */
void herd_vec_dot_q4_1_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q4_1 *x = vx;
    const herd_block_q8_1 *y = vy;
    float sumf = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++)
            sumi += (x[i].qs[j] & 0x0f) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        sumf += (herd_ld_f16(&x[i].d) * herd_ld_f16(&y[i].d)) * sumi +
                herd_ld_f16(&x[i].m) * herd_ld_f16(&y[i].s);
    }
    *s = sumf;
}

/* ------------------------------------------------------------ Q5_0 */

void herd_quantize_q5_0_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q5_0 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        st_f16(&y[i].d, d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const uint8_t q0 = (uint8_t)MIN(31, (int8_t)(x[j] * id + 16.5f));
            const uint8_t q1 = (uint8_t)MIN(31, (int8_t)(x[j + 16] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        st_qh(y[i].qh, qh);
    }
}

/* Element j of a Q5 block as 0..31. */
static inline int q5_at(const uint8_t *qs, uint32_t qh, int j)
{
    const int lo = j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4;
    return lo | (int)((qh >> j) & 1) << 4;
}

static void dequantize_q5_0(const void *vx, float *y, int64_t n)
{
    const herd_block_q5_0 *x = vx;
    for (int64_t i = 0; i < n / 32; i++, y += 32) {
        const float d = herd_ld_f16(&x[i].d);
        const uint32_t qh = ld_qh(x[i].qh);
        for (int j = 0; j < 32; j++) y[j] = (q5_at(x[i].qs, qh, j) - 16) * d;
    }
}

void herd_vec_dot_q5_0_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q5_0 *x = vx;
    const herd_block_q8_0 *y = vy;
    float sumf = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const uint32_t qh = ld_qh(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += (q5_at(x[i].qs, qh, j) - 16) * y[i].qs[j];
        sumf += (herd_ld_f16(&x[i].d) * herd_ld_f16(&y[i].d)) * sumi;
    }
    *s = sumf;
}

/* ------------------------------------------------------------ Q5_1 */

void herd_quantize_q5_1_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q5_1 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        st_f16(&y[i].d, d);
        st_f16(&y[i].m, min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            /* No clamp, as in ggml: (max − min)·id + 0.5 stays below 32. */
            const uint8_t q0 = (uint8_t)((x[j] - min) * id + 0.5f);
            const uint8_t q1 = (uint8_t)((x[j + 16] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + 16);
        }
        st_qh(y[i].qh, qh);
    }
}

static void dequantize_q5_1(const void *vx, float *y, int64_t n)
{
    const herd_block_q5_1 *x = vx;
    for (int64_t i = 0; i < n / 32; i++, y += 32) {
        const float d = herd_ld_f16(&x[i].d), m = herd_ld_f16(&x[i].m);
        const uint32_t qh = ld_qh(x[i].qh);
        for (int j = 0; j < 32; j++) y[j] = q5_at(x[i].qs, qh, j) * d + m;
    }
}

void herd_vec_dot_q5_1_ref(int64_t n, float *s, const void *vx, const void *vy)
{
    const herd_block_q5_1 *x = vx;
    const herd_block_q8_1 *y = vy;
    float sumf = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const uint32_t qh = ld_qh(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += q5_at(x[i].qs, qh, j) * y[i].qs[j];
        sumf += (herd_ld_f16(&x[i].d) * herd_ld_f16(&y[i].d)) * sumi +
                herd_ld_f16(&x[i].m) * herd_ld_f16(&y[i].s);
    }
    *s = sumf;
}

/* ------------------------------------------------------------ Q8_1 */

void herd_quantize_q8_1_ref(const float *x, void *vy, int64_t n)
{
    herd_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = MAX(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        st_f16(&y[i].d, d);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        st_f16(&y[i].s, sum * d);
    }
}

void herd_quantize_q8_1_act(const float *x, void *vy, int64_t n)
{
    herd_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = MAX(amax, fabsf(x[j]));
        const float d = amax / 127.f;
        st_f16(&y[i].d, d);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[i].qs[j] = (int8_t)herd_nearest_int(x[j] * id);
            sum += y[i].qs[j];
        }
        st_f16(&y[i].s, d * (float)sum);
    }
}

static void dequantize_q8_1(const void *vx, float *y, int64_t n)
{
    const herd_block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / 32; i++) {
        const float d = herd_ld_f16(&x[i].d);
        for (int j = 0; j < 32; j++) y[i * 32 + j] = x[i].qs[j] * d;
    }
}

/* ------------------------------------------------------------ install */

static void set(herd_type_traits *t, herd_to_float_fn to, herd_from_float_fn from,
                herd_from_float_fn from_ref, uint32_t vdt, herd_vec_dot_fn dot)
{
    t->to_float = to;
    t->from_float = from;
    t->from_float_ref = from_ref;
    t->vec_dot_type = vdt;
    t->vec_dot = dot;
    t->vec_dot_ref = dot;
}

void herd_kernels_install_legacy_ref(herd_type_traits *traits)
{
    set(&traits[HERD_TYPE_Q4_1], dequantize_q4_1, herd_quantize_q4_1_ref, herd_quantize_q4_1_ref,
        HERD_TYPE_Q8_1, herd_vec_dot_q4_1_ref);
    set(&traits[HERD_TYPE_Q5_0], dequantize_q5_0, herd_quantize_q5_0_ref, herd_quantize_q5_0_ref,
        HERD_TYPE_Q8_0, herd_vec_dot_q5_0_ref);
    set(&traits[HERD_TYPE_Q5_1], dequantize_q5_1, herd_quantize_q5_1_ref, herd_quantize_q5_1_ref,
        HERD_TYPE_Q8_1, herd_vec_dot_q5_1_ref);
    /* Q8_1 is only ever an activation type: no weight dot product. */
    set(&traits[HERD_TYPE_Q8_1], dequantize_q8_1, herd_quantize_q8_1_act, herd_quantize_q8_1_ref,
        HERD_TYPE_Q8_1, NULL);
}
