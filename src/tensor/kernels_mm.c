/*
 * kernels_mm.c — prompt-sized products without AMX: the packing of the
 * activations, the unpacking of weight panels, and the product that hands
 * panels × token groups to the threads. The vector tiles are per ISA
 * (kernels_avx512_mm.c, kernels_avx2_mm.c); the layouts are in kernels_mm.h.
 *
 * Why panels of rows. The 4 × 4 tiles of kernels_avx512.c / kernels_avx2.c
 * spend one conversion, one multiply and one FMA on every block of a (row,
 * token) pair, then a horizontal sum per output: the float work costs as much
 * as the integer work. With P rows per vector those steps are shared by P
 * outputs: a block of 32, P rows × 1 token, is 8 vpdpbusd (the rows' 4 quants
 * in a register times 4 of the token's quants broadcast) and one
 * conversion, multiply and FMA. Unpacking a panel costs about as much as
 * multiplying it with ten tokens, so matmul uses this from 16 tokens on.
 *
 * Nothing is kept between products: the file's bytes stay as they are (no
 * second copy of the weights), the buffers are one panel per thread.
 * Compiled for AVX2 (the unpacking uses it); only called after
 * herd_kernels_install_simd selected an ISA, which implies AVX2.
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

static const herd_mm_isa *isa;

void herd_mm_select(const herd_mm_isa *i)
{
    isa = i;
}

const herd_mm_isa *herd_mm_selected(void)
{
    return isa;
}

static int kind_of(uint32_t wtype)
{
    switch (wtype) {
    case HERD_TYPE_Q4_0:
        return HERD_MM_Q4_0;
    case HERD_TYPE_Q8_0:
        return HERD_MM_Q8_0;
    case HERD_TYPE_Q4_K:
        return HERD_MM_K4;
    case HERD_TYPE_Q5_K:
        return HERD_MM_K5;
    case HERD_TYPE_Q6_K:
        return HERD_MM_K6;
    case HERD_TYPE_Q3_K:
        return HERD_MM_K3;
    case HERD_TYPE_Q2_K:
        return HERD_MM_K2;
    default:
        return -1;
    }
}

static bool is_k(int kind)
{
    return kind >= HERD_MM_K4;
}

static int64_t units(int kind, int64_t n_in)
{
    return is_k(kind) ? n_in / HERD_QK_K : n_in / 32;
}

/* Bytes of one block (super-block) of a P-row weight panel. */
static size_t panel_unit(int kind, int P)
{
    return kind == HERD_MM_K2 ? MM_WU_K2(P) : is_k(kind) ? MM_WU_K(P) : MM_WU_Q32(P);
}

bool herd_mm_supports(uint32_t wtype, int64_t n_in)
{
    if (wtype == HERD_TYPE_F16) return herd_mm_f16_supports(isa, n_in);
    const int kind = kind_of(wtype);
    return isa && kind >= 0 && isa->tiles[kind][0] && n_in > 0 &&
           n_in % (is_k(kind) ? HERD_QK_K : 32) == 0;
}

size_t herd_mm_work_size(uint32_t wtype, int64_t n_in, int64_t n_tok)
{
    if (!herd_mm_supports(wtype, n_in)) return 0;
    if (wtype == HERD_TYPE_F16) return herd_mm_f16_work_size(n_in, n_tok);
    const int kind = kind_of(wtype);
    return (size_t)units(kind, n_in) * (is_k(kind) ? MM_AU_K : MM_AU_Q32) * (size_t)n_tok + 64;
}

/* ------------------------------------------------------------ activations */

static void pack_token(int kind, const float *x, int64_t n_in, uint8_t *a)
{
    if (!is_k(kind)) {
        const herd_type_traits *q8 = herd_type(HERD_TYPE_Q8_0);
        const int32_t mul = kind == HERD_MM_Q4_0 ? -8 : -128;
        for (int64_t b = 0; b < n_in / 32; b++, a += MM_AU_Q32) {
            herd_block_q8_0 blk;
            q8->from_float(x + 32 * b, &blk, 32);
            int32_t s = 0;
            for (int i = 0; i < 32; i++) s += blk.qs[i];
            const int32_t corr = mul * s;
            const float d = herd_ld_f16(&blk.d);
            memcpy(a, blk.qs, 32);
            memcpy(a + 32, &corr, 4);
            memcpy(a + 36, &d, 4);
        }
        return;
    }
    const herd_type_traits *q8 = herd_type(HERD_TYPE_Q8_K);
    for (int64_t s = 0; s < n_in / HERD_QK_K; s++, a += MM_AU_K) {
        herd_block_q8_K blk;
        q8->from_float(x + HERD_QK_K * s, &blk, HERD_QK_K);
        memcpy(a, blk.qs, 256);
        memcpy(a + MM_AK_D, &blk.d, 4);
        if (kind == HERD_MM_K2) { /* d·(sum of each 16), for the mins */
            for (int j = 0; j < 16; j++) {
                const float v = (float)blk.bsums[j] * blk.d;
                memcpy(a + MM_AK_BSD + 4 * j, &v, 4);
            }
            continue;
        }
        for (int j = 0; j < 8; j++) {
            const float v = (float)(blk.bsums[2 * j] + blk.bsums[2 * j + 1]) * blk.d;
            memcpy(a + MM_AK_BSD + 4 * j, &v, 4);
        }
        for (int j = 0; j < 16; j++) {
            const int32_t c = (kind == HERD_MM_K3 ? -4 : -32) * blk.bsums[j];
            memcpy(a + MM_AK_C16 + 4 * j, &c, 4);
        }
    }
}

/* ------------------------------------------------------------ weight panels */

/* n (16 or 32) unsigned quants of row r into a block of a P-row panel:
 * group g of 4 at byte 4·P·g + 4·r. */
static inline void put_q(uint8_t *u, int P, int r, const uint8_t *q, int n)
{
    for (int g = 0; g < n / 4; g++) memcpy(u + 4 * P * g + 4 * r, q + 4 * g, 4);
}

static inline void put_f32(uint8_t *p, float v)
{
    memcpy(p, &v, 4);
}

/* The low and high nibbles of 32 bytes: two runs of 32 quants. */
static inline void nibbles32(const uint8_t *qs, uint8_t *lo, uint8_t *hi)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)qs), m = _mm256_set1_epi8(0x0f);
    _mm256_storeu_si256((__m256i *)lo, _mm256_and_si256(v, m));
    _mm256_storeu_si256((__m256i *)hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), m));
}

static void prep_q32_row(int kind, const uint8_t *row, int64_t nb, int P, int r, uint8_t *buf)
{
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *u = buf + b * MM_WU_Q32(P), q[32];
        float d;
        if (kind == HERD_MM_Q8_0) {
            const herd_block_q8_0 *blk = (const herd_block_q8_0 *)(const void *)row + b;
            const __m256i v = _mm256_loadu_si256((const __m256i *)blk->qs);
            _mm256_storeu_si256((__m256i *)q, _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)));
            d = herd_ld_f16(&blk->d);
        } else {
            const herd_block_q4_0 *blk = (const herd_block_q4_0 *)(const void *)row + b;
            const __m128i v = _mm_loadu_si128((const __m128i *)blk->qs), m = _mm_set1_epi8(0x0f);
            _mm_storeu_si128((__m128i *)q, _mm_and_si128(v, m));
            _mm_storeu_si128((__m128i *)(q + 16), _mm_and_si128(_mm_srli_epi16(v, 4), m));
            d = herd_ld_f16(&blk->d);
        }
        put_q(u, P, r, q, 32);
        put_f32(u + 32 * P + 4 * r, d);
    }
}

/* Q4_K / Q5_K: sub-block j of 32 at 32·P·j. */
static void prep_k45_row(int kind, const uint8_t *row, int64_t ns, int P, int r, uint8_t *buf)
{
    const size_t bs = kind == HERD_MM_K4 ? sizeof(herd_block_q4_K) : sizeof(herd_block_q5_K);
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *blk = row + s * bs, *scales = blk + 4;
        const uint8_t *qs = kind == HERD_MM_K4 ? blk + 16 : blk + 48, *qh = blk + 16;
        uint8_t *u = buf + s * MM_WU_K(P);
        const float d = herd_ld_f16(blk), dmin = herd_ld_f16(blk + 2);
        for (int g = 0; g < 4; g++) {
            uint8_t q[2][32];
            nibbles32(qs + 32 * g, q[0], q[1]);
            if (kind == HERD_MM_K5) {
                /* Bit 2g (2g + 1) of qh[l] is the fifth bit of element l of
                 * sub-block 2g (2g + 1). */
                const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
                for (int k = 0; k < 2; k++) {
                    const __m256i bit = _mm256_set1_epi8((char)(1 << (2 * g + k)));
                    const __m256i on = _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
                    const __m256i v = _mm256_loadu_si256((const __m256i *)q[k]);
                    _mm256_storeu_si256(
                        (__m256i *)q[k],
                        _mm256_or_si256(v, _mm256_and_si256(on, _mm256_set1_epi8(16))));
                }
            }
            for (int k = 0; k < 2; k++) {
                const int j = 2 * g + k;
                uint8_t sc, m;
                herd_scale_min_k4(j, scales, &sc, &m);
                put_q(u + 32 * P * j, P, r, q[k], 32);
                put_f32(u + 256 * P + 4 * P * j + 4 * r, d * sc);
                put_f32(u + 288 * P + 4 * P * j + 4 * r, dmin * m);
            }
        }
    }
}

/* Q6_K: quants 0..63 (q + 32); sub-block j of 16 at 16·P·j. */
static void prep_k6_row(const uint8_t *row, int64_t ns, int P, int r, uint8_t *buf)
{
    for (int64_t s = 0; s < ns; s++) {
        const herd_block_q6_K *x = (const herd_block_q6_K *)(const void *)row + s;
        uint8_t *u = buf + s * MM_WU_K(P);
        const float d = herd_ld_f16(&x->d);
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x->ql + 64 * half, *qh = x->qh + 32 * half;
            const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(0x30);
            /* q[k]: elements 128·half + 32·k + (0..31), as ggml lays them. */
            uint8_t q[4][32];
            _mm256_storeu_si256((__m256i *)q[0],
                                _mm256_or_si256(_mm256_and_si256(l0, m4),
                                                _mm256_and_si256(_mm256_slli_epi16(h, 4), m3)));
            _mm256_storeu_si256((__m256i *)q[1],
                                _mm256_or_si256(_mm256_and_si256(l1, m4),
                                                _mm256_and_si256(_mm256_slli_epi16(h, 2), m3)));
            _mm256_storeu_si256((__m256i *)q[2],
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                                _mm256_and_si256(h, m3)));
            _mm256_storeu_si256((__m256i *)q[3],
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                                _mm256_and_si256(_mm256_srli_epi16(h, 2), m3)));
            for (int k = 0; k < 4; k++) put_q(u + 32 * P * (4 * half + k), P, r, q[k], 32);
        }
        for (int j = 0; j < 16; j++) put_f32(u + 256 * P + 4 * P * j + 4 * r, d * x->scales[j]);
    }
}

/* Q2_K / Q3_K: the 2-bit quants (Q3_K: plus 4 where its hmask bit is set,
 * q + 4); sub-block j of 16 at 16·P·j. Element 128·h + 32·k + l is bits
 * 2k, 2k + 1 of qs[32·h + l] (and bit 4·h + k of hmask[l]). */
static void prep_k23_row(int kind, const uint8_t *row, int64_t ns, int P, int r, uint8_t *buf)
{
    const size_t bs = kind == HERD_MM_K2 ? sizeof(herd_block_q2_K) : sizeof(herd_block_q3_K);
    const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *blk = row + s * bs;
        uint8_t *u = buf + s * panel_unit(kind, P);
        const uint8_t *qs, *hm = NULL;
        if (kind == HERD_MM_K2) {
            const herd_block_q2_K *x = (const herd_block_q2_K *)(const void *)blk;
            const float d = herd_ld_f16(&x->d), dmin = herd_ld_f16(&x->dmin);
            for (int j = 0; j < 16; j++) {
                put_f32(u + 256 * P + 4 * P * j + 4 * r, d * (x->scales[j] & 0xf));
                put_f32(u + 320 * P + 4 * P * j + 4 * r, dmin * (x->scales[j] >> 4));
            }
            qs = x->qs;
        } else {
            const herd_block_q3_K *x = (const herd_block_q3_K *)(const void *)blk;
            const float d = herd_ld_f16(&x->d);
            int8_t sc[16];
            herd_q3_K_scales(x->scales, sc);
            for (int j = 0; j < 16; j++) put_f32(u + 256 * P + 4 * P * j + 4 * r, d * sc[j]);
            qs = x->qs;
            hm = x->hmask;
        }
        const __m256i h = hm ? _mm256_loadu_si256((const __m256i *)hm) : _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * half));
            for (int k = 0; k < 4; k++) {
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(v, 2 * k), m3);
                const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(h, 4 * half + k), m1);
                q = _mm256_or_si256(q, _mm256_slli_epi16(hb, 2));
                uint8_t e[32];
                _mm256_storeu_si256((__m256i *)e, q);
                const int j = 8 * half + 2 * k;
                put_q(u + 16 * P * j, P, r, e, 16);
                put_q(u + 16 * P * (j + 1), P, r, e + 16, 16);
            }
        }
    }
}

/* Rows 0 .. nr − 1 (nr ≤ P) of w as a panel; missing rows are zero. */
static void prep_panel(int kind, const uint8_t *w, size_t w_stride, int64_t nu, int P, int nr,
                       uint8_t *buf)
{
    memset(buf, 0, (size_t)nu * panel_unit(kind, P));
    for (int r = 0; r < nr; r++) {
        const uint8_t *row = w + (size_t)r * w_stride;
        if (kind == HERD_MM_K2 || kind == HERD_MM_K3)
            prep_k23_row(kind, row, nu, P, r, buf);
        else if (kind == HERD_MM_K6)
            prep_k6_row(row, nu, P, r, buf);
        else if (is_k(kind))
            prep_k45_row(kind, row, nu, P, r, buf);
        else
            prep_q32_row(kind, row, nu, P, r, buf);
    }
}

/* ------------------------------------------------------------ the product */

/* Token groups of at most this many activation bytes: a group stays in L2
 * while the panels go by; each panel is unpacked once per group. */
#ifndef MM_GROUP_BYTES
#define MM_GROUP_BYTES (1u << 20)
#endif

typedef struct {
    int kind, P;
    const herd_mm_tile_fn *tiles;
    const uint8_t *w;
    const float *x;
    float *y;
    uint8_t *act, *bufs;
    int64_t n_in, n_rows, n_tok, nu, n_panels, tg, n_groups;
    size_t w_stride, as, pb;
    atomic_int next;
} mm_job;

static void pack_job(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    for (int64_t t = ith; t < j->n_tok; t += nth)
        pack_token(j->kind, j->x + t * j->n_in, j->n_in, j->act + (size_t)t * j->as);
}

/* Items are (token group, panel), panels inner; each item unpacks its panel
 * and runs the group's tokens through it in the largest tiles there are. */
static void compute_job(void *arg, int ith, int nth)
{
    (void)nth;
    mm_job *j = arg;
    uint8_t *buf = j->bufs + j->pb * (size_t)ith;
    for (int64_t it; (it = atomic_fetch_add(&j->next, 1)) < j->n_groups * j->n_panels;) {
        const int64_t p = it % j->n_panels, g = it / j->n_panels;
        const int64_t r0 = p * j->P,
                      t_end = (g + 1) * j->tg < j->n_tok ? (g + 1) * j->tg : j->n_tok;
        const int nr = (int)(j->n_rows - r0 < j->P ? j->n_rows - r0 : j->P);
        prep_panel(j->kind, j->w + (size_t)r0 * j->w_stride, j->w_stride, j->nu, j->P, nr, buf);
        for (int64_t t = g * j->tg; t < t_end;) {
            int k = 4;
            while (k > 0 && (!j->tiles[k] || t_end - t < (1 << k))) k--;
            j->tiles[k](buf, j->nu, j->act + (size_t)t * j->as, j->as,
                        j->y + (size_t)t * j->n_rows + r0, (size_t)j->n_rows, nr);
            t += 1 << k;
        }
    }
}

bool herd_mm_matmul(const void *w, uint32_t wtype, int64_t n_in, int64_t n_rows, const float *x,
                    int64_t n_tok, float *y, void *work, int n_threads)
{
    if (wtype == HERD_TYPE_F16)
        return herd_mm_f16_matmul(isa, w, n_in, n_rows, x, n_tok, y, work, n_threads);
    const int kind = kind_of(wtype);
    mm_job j = {.kind = kind,
                .P = isa->rows,
                .tiles = isa->tiles[kind],
                .w = w,
                .x = x,
                .y = y,
                .n_in = n_in,
                .n_rows = n_rows,
                .n_tok = n_tok,
                .nu = units(kind, n_in),
                .w_stride = herd_row_bytes(wtype, n_in)};
    j.n_panels = (n_rows + j.P - 1) / j.P;
    j.as = (size_t)j.nu * (is_k(kind) ? MM_AU_K : MM_AU_Q32);
    j.act = (uint8_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    j.tg = (int64_t)(MM_GROUP_BYTES / j.as);
    if (j.tg < 16) j.tg = 16;
    j.n_groups = (n_tok + j.tg - 1) / j.tg;
    j.pb = ((size_t)j.nu * panel_unit(kind, j.P) + 63) / 64 * 64;
    if (!(j.bufs = herd_alloc_aligned(j.pb * (size_t)n_threads))) return false;
    atomic_init(&j.next, 0);
    herd_parallel(n_threads, pack_job, &j);
    herd_parallel(n_threads, compute_job, &j);
    free(j.bufs);
    return true;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
