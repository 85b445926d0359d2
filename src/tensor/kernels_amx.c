/*
 * kernels_amx.c — prompt-sized matrix products on AMX (Intel's tile unit).
 *
 * AMX multiplies a 16×K tile by a K×16 tile into a 16×16 tile of int32 (int8
 * inputs, TDPBSSD) or F32 (BF16 inputs, TDPBF16PS) in one instruction: about
 * ten times what AVX-512 does per cycle. It pays only for batches (a token
 * tile is 16 tokens), so herd_matmul uses it for prompts and keeps the
 * AVX-512 kernels for decoding. The numbers stay ggml's:
 *
 *   Q8_0, Q4_0  each 32-element block is one exact int32 dot product (weights
 *               × Q8_0 activations, as ggml), scaled in F32 by d_w·d_x and
 *               summed over the blocks: the AVX-512 kernels' arithmetic in
 *               another order.
 *   Q4_K, Q6_K  a super-block's sub-block scales are small integers, so the
 *               whole super-block stays in integers: the weights are
 *               expanded to v = scale·q (Q4_K: 0..945, Q6_K: −4096..4064),
 *               split into int8 halves v = 128·h + l, and Σ v·y = 128·Σ h·y
 *               + Σ l·y is exact in int32. Q4_K's mins are a third product
 *               (weights m of the element's sub-block). Then one F32 step
 *               per super-block: (d·Σv·y − dmin·Σm·y)·y.d. The same sums
 *               ggml's Q8_K dot products make, in fewer F32 steps.
 *   F16, BF16   F16 values are exactly hi + lo with hi, lo BF16 (11 bits of
 *               significand = 8 + 3); so are the activations, rounded to F16
 *               as ggml does. Four BF16 products per pair are exact and the
 *               tile unit accumulates them in F32: ggml's F16 dot product,
 *               summed in another order. BF16 weights need one product.
 *
 * Layouts. The weights are the A operand (rows = output rows), unpacked per
 * panel of 16 rows into a per-thread buffer once and used for every token
 * tile. The activations are the B operand, packed once per matmul in AMX's
 * "VNNI" order (groups of 4 int8 or 2 BF16 along K side by side for the 16
 * tokens of a tile), with their scales. Results go through a 16×16
 * transpose into Y. A missing token or row is zero and is not stored, so
 * every output is computed the same way whatever the thread count or its
 * position in a tile.
 *
 * Linux hands out the 8 KB of tile state only on request
 * (arch_prctl(ARCH_REQ_XCOMP_PERM)); herd_amx_init asks once. Each thread
 * loads the tile configuration at the start of a product and releases the
 * tiles at the end, so that context switches do not carry them.
 */
#include "tensor/kernels.h"
#include "util/pool.h"

#include <cpuid.h>
#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c,"         \
                          "amx-tile,amx-int8,amx-bf16"))),                                         \
    apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c,amx-tile,"       \
                   "amx-int8,amx-bf16")
#endif

/* The tile instructions are asm statements that do not tell the compiler
 * which memory they read or write: order them against ordinary accesses. */
#define BARRIER() __asm__ volatile("" ::: "memory")

#define QK HERD_QK_K

/* ------------------------------------------------------------ setup */

bool herd_amx_init(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool tile = d & (1u << 24), int8 = d & (1u << 25), bf16 = d & (1u << 22);
    if (!tile || !int8 || !bf16) return false;
    /* ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* Tile shapes per kind of product (rows × bytes per row). */
enum { KIND_Q32, KIND_K, KIND_F16, KIND_BF16 };

static void configure(int kind)
{
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
#define TILE(i, r, c) (cfg.rows[i] = (r), cfg.colsb[i] = (c))
    if (kind == KIND_Q32) {
        TILE(0, 16, 32); /* A: 16 weight rows × one block */
        TILE(1, 8, 64);  /* B: one block of 16 tokens, 4 bytes each per row */
        TILE(2, 16, 64); /* C */
        TILE(3, 16, 64);
        TILE(4, 16, 32);
        TILE(5, 8, 64);
        TILE(6, 16, 64);
        TILE(7, 16, 64);
    } else {
        for (int i = 0; i < 8; i++) TILE(i, 16, 64);
    }
#undef TILE
    BARRIER();
    _tile_loadconfig(&cfg);
}

/* ------------------------------------------------------------ helpers */

/* The 16×16 block acc[r] (lanes = tokens) into Y[t][r0 + r]. */
static void store_tile(const __m512 *acc, float *y, size_t n_rows, int64_t r0, int nr, int64_t t0,
                       int nt)
{
    float tmp[16][16];
    for (int r = 0; r < 16; r++) _mm512_storeu_ps(tmp[r], acc[r]);
    for (int t = 0; t < nt; t++) {
        float *yr = y + (size_t)(t0 + t) * n_rows + r0;
        for (int r = 0; r < nr; r++) yr[r] = tmp[r][t];
    }
}

/* Scatter a row of int8 values (one token) into a VNNI tile buffer: element
 * k of token t goes to byte (k/4)·64 + 4t + k%4. */
static void vnni8_token(uint8_t *dst, const int8_t *q, int n, int t)
{
    for (int g = 0; g < n / 4; g++) memcpy(dst + g * 64 + 4 * t, q + 4 * g, 4);
}

/* ------------------------------------------------------------ Q8_0, Q4_0 */

/* Activations, per (token tile, block): 8 VNNI rows (512 B) then the 16
 * tokens' F32 scales (64 B). */
#define Q32_UNIT 576

static void pack_q32(const float *x, int64_t n_in, int64_t n_tok, uint8_t *act, int64_t j,
                     herd_block_q8_0 *tmp)
{
    const int64_t nb = n_in / 32;
    const herd_type_traits *q8 = herd_type(HERD_TYPE_Q8_0);
    uint8_t *base = act + (size_t)j * nb * Q32_UNIT;
    memset(base, 0, (size_t)nb * Q32_UNIT);
    for (int t = 0; t < 16 && j * 16 + t < n_tok; t++) {
        q8->from_float(x + (size_t)(j * 16 + t) * n_in, tmp, n_in);
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *u = base + b * Q32_UNIT;
            vnni8_token(u, tmp[b].qs, 32, t);
            const float d = herd_ld_f16(&tmp[b].d);
            memcpy(u + 512 + 4 * t, &d, 4);
        }
    }
}

/* A panel of 16 weight rows: per block, 16 × 32 signed bytes, then the 16
 * rows' scales. */
#define Q32_WUNIT (512 + 64)

static void prep_q32(uint32_t wtype, const uint8_t *w, size_t w_stride, int64_t nb, int nr,
                     uint8_t *buf)
{
    memset(buf, 0, (size_t)nb * Q32_WUNIT);
    for (int r = 0; r < nr; r++) {
        const uint8_t *row = w + (size_t)r * w_stride;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *u = buf + b * Q32_WUNIT;
            float d;
            if (wtype == HERD_TYPE_Q8_0) {
                const herd_block_q8_0 *blk = (const herd_block_q8_0 *)(const void *)row + b;
                memcpy(u + 32 * r, blk->qs, 32);
                d = herd_ld_f16(&blk->d);
            } else {
                const herd_block_q4_0 *blk = (const herd_block_q4_0 *)(const void *)row + b;
                const __m128i v = _mm_loadu_si128((const __m128i *)blk->qs);
                const __m128i m = _mm_set1_epi8(0x0f), e = _mm_set1_epi8(8);
                _mm_storeu_si128((__m128i *)(u + 32 * r), _mm_sub_epi8(_mm_and_si128(v, m), e));
                _mm_storeu_si128((__m128i *)(u + 32 * r + 16),
                                 _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), e));
                d = herd_ld_f16(&blk->d);
            }
            memcpy(u + 512 + 4 * r, &d, 4);
        }
    }
}

/* Scale the 16×16 int32 tile c of one block into acc: acc[r] += c[r]·d_w[r]·d_x. */
static inline void scale_q32(const int32_t (*c)[16], const uint8_t *wunit, const uint8_t *aunit,
                             __m512 *acc)
{
    const __m512 da = _mm512_loadu_ps(aunit + 512);
    const float *dw = (const float *)(const void *)(wunit + 512);
    for (int r = 0; r < 16; r++)
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[r])),
                                 _mm512_mul_ps(da, _mm512_set1_ps(dw[r])), acc[r]);
}

#define TDP_Q32(wu, au, ta, tb, tc)                                                                \
    do {                                                                                           \
        _tile_loadd(ta, wu, 32);                                                                   \
        _tile_loadd(tb, au, 64);                                                                   \
        _tile_zero(tc);                                                                            \
        _tile_dpbssd(tc, ta, tb);                                                                  \
    } while (0)

/* One panel × one token tile: Σ over blocks of int32 tiles scaled in F32.
 * The tile unit and the vector unit work in parallel on different blocks:
 * blocks go in pairs, and the products of pair p + 1 (tiles 6, 7) are
 * issued before the vector unit scales pair p (tiles 2, 3), and the other
 * way round. A last odd block is done alone. */
static void tile_q32(const uint8_t *wbuf, const uint8_t *act, int64_t nb, __m512 *acc)
{
    int32_t c[2][16][16] __attribute__((aligned(64)));
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    const int64_t np = nb / 2;
    BARRIER();
    if (np > 0) {
        TDP_Q32(wbuf, act, 0, 1, 2);
        TDP_Q32(wbuf + Q32_WUNIT, act + Q32_UNIT, 4, 5, 3);
    }
    for (int64_t p = 0; p < np; p++) {
        const int64_t b = 2 * p;
        const uint8_t *w0 = wbuf + b * Q32_WUNIT, *a0 = act + b * Q32_UNIT;
        if (p & 1) {
            if (p + 1 < np) {
                TDP_Q32(w0 + 2 * Q32_WUNIT, a0 + 2 * Q32_UNIT, 0, 1, 2);
                TDP_Q32(w0 + 3 * Q32_WUNIT, a0 + 3 * Q32_UNIT, 4, 5, 3);
            }
            _tile_stored(6, c[0], 64);
            _tile_stored(7, c[1], 64);
        } else {
            if (p + 1 < np) {
                TDP_Q32(w0 + 2 * Q32_WUNIT, a0 + 2 * Q32_UNIT, 0, 1, 6);
                TDP_Q32(w0 + 3 * Q32_WUNIT, a0 + 3 * Q32_UNIT, 4, 5, 7);
            }
            _tile_stored(2, c[0], 64);
            _tile_stored(3, c[1], 64);
        }
        BARRIER();
        scale_q32((const int32_t(*)[16])c[0], w0, a0, acc);
        scale_q32((const int32_t(*)[16])c[1], w0 + Q32_WUNIT, a0 + Q32_UNIT, acc);
    }
    if (nb & 1) {
        const uint8_t *w0 = wbuf + (nb - 1) * Q32_WUNIT, *a0 = act + (nb - 1) * Q32_UNIT;
        TDP_Q32(w0, a0, 0, 1, 2);
        _tile_stored(2, c[0], 64);
        BARRIER();
        scale_q32((const int32_t(*)[16])c[0], w0, a0, acc);
    }
}

/* ------------------------------------------------------------ Q4_K, Q6_K */

/* Activations, per (token tile, super-block): 64 VNNI rows (4 KB), then the
 * 16 tokens' Q8_K scales. */
#define K_UNIT (4096 + 64)

static void pack_k(const float *x, int64_t n_in, int64_t n_tok, uint8_t *act, int64_t j,
                   herd_block_q8_K *tmp)
{
    const int64_t ns = n_in / QK;
    const herd_type_traits *q8 = herd_type(HERD_TYPE_Q8_K);
    uint8_t *base = act + (size_t)j * ns * K_UNIT;
    memset(base, 0, (size_t)ns * K_UNIT);
    for (int t = 0; t < 16 && j * 16 + t < n_tok; t++) {
        q8->from_float(x + (size_t)(j * 16 + t) * n_in, tmp, n_in);
        for (int64_t s = 0; s < ns; s++) {
            uint8_t *u = base + s * K_UNIT;
            vnni8_token(u, tmp[s].qs, QK, t);
            memcpy(u + 4096 + 4 * t, &tmp[s].d, 4);
        }
    }
}

/* A panel, per super-block: l[16][256], h[16][256], (Q4_K) m[16][256], then
 * d[16], dmin[16] as F32. */
#define K_WUNIT (3 * 4096 + 128)

/* v = 128·h + l with l in 0..127 and h = v >> 7 (arithmetic). */
static inline void split_store(__m512i v16lo, __m512i v16hi, int8_t *l, int8_t *h)
{
    const __m512i m7 = _mm512_set1_epi16(127);
    _mm256_storeu_si256((__m256i *)l, _mm512_cvtepi16_epi8(_mm512_and_si512(v16lo, m7)));
    _mm256_storeu_si256((__m256i *)(l + 32), _mm512_cvtepi16_epi8(_mm512_and_si512(v16hi, m7)));
    _mm256_storeu_si256((__m256i *)h, _mm512_cvtepi16_epi8(_mm512_srai_epi16(v16lo, 7)));
    _mm256_storeu_si256((__m256i *)(h + 32), _mm512_cvtepi16_epi8(_mm512_srai_epi16(v16hi, 7)));
}

static void prep_q4_K_row(const herd_block_q4_K *x, int r, uint8_t *u)
{
    int8_t *l = (int8_t *)u + 256 * r, *h = (int8_t *)u + 4096 + 256 * r;
    int8_t *mm = (int8_t *)u + 8192 + 256 * r;
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) herd_scale_min_k4(j, x->scales, &sc[j], &m[j]);
    for (int g = 0; g < 4; g++) { /* 64 elements: sub-blocks 2g (low nibbles), 2g + 1 */
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * g));
        const __m256i lo = _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0f));
        const __m512i v0 =
            _mm512_mullo_epi16(_mm512_cvtepu8_epi16(lo), _mm512_set1_epi16(sc[2 * g]));
        const __m512i v1 =
            _mm512_mullo_epi16(_mm512_cvtepu8_epi16(hi), _mm512_set1_epi16(sc[2 * g + 1]));
        split_store(v0, v1, l + 64 * g, h + 64 * g);
        memset(mm + 64 * g, m[2 * g], 32);
        memset(mm + 64 * g + 32, m[2 * g + 1], 32);
    }
    const float d = herd_ld_f16(&x->d), dmin = herd_ld_f16(&x->dmin);
    memcpy(u + 3 * 4096 + 4 * r, &d, 4);
    memcpy(u + 3 * 4096 + 64 + 4 * r, &dmin, 4);
}

static void prep_q6_K_row(const herd_block_q6_K *x, int r, uint8_t *u)
{
    int8_t *l = (int8_t *)u + 256 * r, *h = (int8_t *)u + 4096 + 256 * r;
    /* Element order: for each half of 128, ql[0..31] low nibbles (0..31),
     * ql[32..63] low (32..63), ql[0..31] high (64..95), ql[32..63] high. */
    for (int half = 0; half < 2; half++) {
        const uint8_t *ql = x->ql + 64 * half, *qh = x->qh + 32 * half;
        const __m256i h2 = _mm256_loadu_si256((const __m256i *)qh);
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(0x30);
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                               _mm256_and_si256(_mm256_slli_epi16(h2, 4), m3));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                               _mm256_and_si256(_mm256_slli_epi16(h2, 2), m3));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_and_si256(h2, m3));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(h2, 2), m3));
        for (int k = 0; k < 4; k += 2) {
            /* 32 elements each; scale per 16: scales[8·half + 2k'…]. */
            __m512i v[2];
            for (int p = 0; p < 2; p++) {
                const int e = 128 * half + 32 * (k + p); /* first element */
                const __m512i q16 =
                    _mm512_sub_epi16(_mm512_cvtepu8_epi16(q[k + p]), _mm512_set1_epi16(32));
                const __m512i s = _mm512_inserti64x4(_mm512_set1_epi16(x->scales[e / 16]),
                                                     _mm256_set1_epi16(x->scales[e / 16 + 1]), 1);
                v[p] = _mm512_mullo_epi16(q16, s);
            }
            split_store(v[0], v[1], l + 128 * half + 32 * k, h + 128 * half + 32 * k);
        }
    }
    const float d = herd_ld_f16(&x->d);
    memcpy(u + 3 * 4096 + 4 * r, &d, 4);
}

static void prep_k(uint32_t wtype, const uint8_t *w, size_t w_stride, int64_t ns, int nr,
                   uint8_t *buf)
{
    for (int64_t s = 0; s < ns; s++) {
        uint8_t *u = buf + s * K_WUNIT;
        memset(u, 0, K_WUNIT);
        for (int r = 0; r < nr; r++) {
            const uint8_t *row = w + (size_t)r * w_stride;
            if (wtype == HERD_TYPE_Q4_K)
                prep_q4_K_row((const herd_block_q4_K *)(const void *)row + s, r, u);
            else
                prep_q6_K_row((const herd_block_q6_K *)(const void *)row + s, r, u);
        }
    }
}

static void tile_k(bool mins, const uint8_t *wbuf, const uint8_t *act, int64_t ns, __m512 *acc)
{
    int32_t c[3][16][16] __attribute__((aligned(64)));
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t s = 0; s < ns; s++) {
        const uint8_t *u = wbuf + s * K_WUNIT, *a = act + s * K_UNIT;
        BARRIER();
        _tile_zero(4);
        _tile_zero(5);
        if (mins) _tile_zero(6);
        for (int kk = 0; kk < 4; kk++) {
            _tile_loadd(3, a + 1024 * kk, 64);
            _tile_loadd(0, u + 64 * kk, 256);
            _tile_dpbssd(4, 0, 3);
            _tile_loadd(1, u + 4096 + 64 * kk, 256);
            _tile_dpbssd(5, 1, 3);
            if (mins) {
                _tile_loadd(2, u + 8192 + 64 * kk, 256);
                _tile_dpbssd(6, 2, 3);
            }
        }
        _tile_stored(4, c[0], 64);
        _tile_stored(5, c[1], 64);
        if (mins) _tile_stored(6, c[2], 64);
        BARRIER();
        const __m512 yd = _mm512_loadu_ps(a + 4096);
        const float *d = (const float *)(const void *)(u + 3 * 4096);
        for (int r = 0; r < 16; r++) {
            const __m512i v = _mm512_add_epi32(_mm512_load_si512(c[0][r]),
                                               _mm512_slli_epi32(_mm512_load_si512(c[1][r]), 7));
            __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(d[r]));
            if (mins)
                f = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[2][r])),
                                     _mm512_set1_ps(d[16 + r]), f);
            acc[r] = _mm512_fmadd_ps(f, yd, acc[r]);
        }
    }
}

/* ------------------------------------------------------------ F16, BF16 */

/* x = hi + lo exactly for an F16 value x (as F32): hi is x rounded to BF16
 * (to nearest even), lo the remainder, which has at most 3 significant bits. */
static inline void split_bf16(__m512 x, __m256i *hi, __m256i *lo)
{
    *hi = (__m256i)_mm512_cvtneps_pbh(x);
    const __m512 h = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(*hi), 16));
    *lo = (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(x, h));
}

/* Activations, per (token tile, 32 elements): hi then lo, each 16 VNNI rows
 * of 16 tokens × 2 BF16 (1 KB). BF16 weights: hi only. */
#define F_UNIT 2048

static void pack_f(bool bf16, const float *x, int64_t n_in, int64_t n_tok, uint8_t *act, int64_t j)
{
    const int64_t nc = n_in / 32;
    uint8_t *base = act + (size_t)j * nc * F_UNIT;
    memset(base, 0, (size_t)nc * F_UNIT);
    for (int t = 0; t < 16 && j * 16 + t < n_tok; t++) {
        const float *xt = x + (size_t)(j * 16 + t) * n_in;
        for (int64_t c = 0; c < nc; c++) {
            uint8_t *u = base + c * F_UNIT;
            const __m512 a = _mm512_loadu_ps(xt + 32 * c), b = _mm512_loadu_ps(xt + 32 * c + 16);
            uint16_t hv[32], lv[32];
            if (bf16) { /* ggml rounds activations to BF16 */
                uint16_t tmp[32];
                herd_fp32_to_bf16_row(xt + 32 * c, tmp, 32);
                memcpy(hv, tmp, sizeof hv);
                memset(lv, 0, sizeof lv);
            } else { /* ... or to F16 */
                const __m512 fa = _mm512_cvtph_ps(_mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
                const __m512 fb = _mm512_cvtph_ps(_mm512_cvtps_ph(b, _MM_FROUND_TO_NEAREST_INT));
                __m256i h0, l0, h1, l1;
                split_bf16(fa, &h0, &l0);
                split_bf16(fb, &h1, &l1);
                _mm256_storeu_si256((__m256i *)hv, h0);
                _mm256_storeu_si256((__m256i *)(hv + 16), h1);
                _mm256_storeu_si256((__m256i *)lv, l0);
                _mm256_storeu_si256((__m256i *)(lv + 16), l1);
            }
            /* Pair p (elements 2p, 2p+1) of token t at row p, bytes 4t. */
            for (int p = 0; p < 16; p++) {
                memcpy(u + p * 64 + 4 * t, hv + 2 * p, 4);
                memcpy(u + 1024 + p * 64 + 4 * t, lv + 2 * p, 4);
            }
        }
    }
}

/* A panel, per 32 elements: hi[16][32] then lo[16][32] BF16 (2 KB). */
#define F_WUNIT 2048

static void prep_f(bool bf16, const uint8_t *w, size_t w_stride, int64_t nc, int nr, uint8_t *buf)
{
    memset(buf, 0, (size_t)nc * F_WUNIT);
    for (int r = 0; r < nr; r++) {
        const uint8_t *row = w + (size_t)r * w_stride;
        for (int64_t c = 0; c < nc; c++) {
            uint8_t *u = buf + c * F_WUNIT;
            if (bf16) {
                memcpy(u + 64 * r, row + 64 * c, 64);
                continue;
            }
            __m256i h0, l0, h1, l1;
            split_bf16(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 64 * c))), &h0,
                       &l0);
            split_bf16(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 64 * c + 32))),
                       &h1, &l1);
            _mm256_storeu_si256((__m256i *)(u + 64 * r), h0);
            _mm256_storeu_si256((__m256i *)(u + 64 * r + 32), h1);
            _mm256_storeu_si256((__m256i *)(u + 1024 + 64 * r), l0);
            _mm256_storeu_si256((__m256i *)(u + 1024 + 64 * r + 32), l1);
        }
    }
}

static void tile_f(bool bf16, const uint8_t *wbuf, const uint8_t *act, int64_t nc, __m512 *acc)
{
    float c[16][16] __attribute__((aligned(64)));
    BARRIER();
    _tile_zero(4);
    for (int64_t k = 0; k < nc; k++) {
        const uint8_t *u = wbuf + k * F_WUNIT, *a = act + k * F_UNIT;
        _tile_loadd(0, u, 64);
        _tile_loadd(2, a, 64);
        _tile_dpbf16ps(4, 0, 2);
        if (!bf16) {
            _tile_loadd(1, u + 1024, 64);
            _tile_loadd(3, a + 1024, 64);
            _tile_dpbf16ps(4, 0, 3);
            _tile_dpbf16ps(4, 1, 2);
            _tile_dpbf16ps(4, 1, 3);
        }
    }
    _tile_stored(4, c, 64);
    BARRIER();
    for (int r = 0; r < 16; r++) acc[r] = _mm512_load_ps(c[r]);
}

/* Two token tiles at once: each weight tile loaded serves both (tile loads,
 * not products, bound the one-tile loop). */
static void tile_f2(bool bf16, const uint8_t *wbuf, const uint8_t *act1, const uint8_t *act2,
                    int64_t nc, __m512 *acc1, __m512 *acc2)
{
    float c[2][16][16] __attribute__((aligned(64)));
    BARRIER();
    _tile_zero(4);
    _tile_zero(5);
    for (int64_t k = 0; k < nc; k++) {
        const uint8_t *u = wbuf + k * F_WUNIT, *a = act1 + k * F_UNIT, *b = act2 + k * F_UNIT;
        _tile_loadd(0, u, 64);
        _tile_loadd(2, a, 64);
        _tile_loadd(6, b, 64);
        _tile_dpbf16ps(4, 0, 2);
        _tile_dpbf16ps(5, 0, 6);
        if (!bf16) {
            _tile_loadd(1, u + 1024, 64);
            _tile_loadd(3, a + 1024, 64);
            _tile_loadd(7, b + 1024, 64);
            _tile_dpbf16ps(4, 0, 3);
            _tile_dpbf16ps(5, 0, 7);
            _tile_dpbf16ps(4, 1, 2);
            _tile_dpbf16ps(5, 1, 6);
            _tile_dpbf16ps(4, 1, 3);
            _tile_dpbf16ps(5, 1, 7);
        }
    }
    _tile_stored(4, c[0], 64);
    _tile_stored(5, c[1], 64);
    BARRIER();
    for (int r = 0; r < 16; r++) {
        acc1[r] = _mm512_load_ps(c[0][r]);
        acc2[r] = _mm512_load_ps(c[1][r]);
    }
}

/* ------------------------------------------------------------ driver */

static int kind_of(uint32_t wtype)
{
    switch (wtype) {
    case HERD_TYPE_Q8_0:
    case HERD_TYPE_Q4_0:
        return KIND_Q32;
    case HERD_TYPE_Q4_K:
    case HERD_TYPE_Q6_K:
        return KIND_K;
    case HERD_TYPE_F16:
        return KIND_F16;
    case HERD_TYPE_BF16:
        return KIND_BF16;
    default:
        return -1;
    }
}

/* Bytes of packed activations (per token tile) and of a weight panel. */
static size_t act_tile_bytes(int kind, int64_t n_in)
{
    return kind == KIND_Q32 ? (size_t)(n_in / 32) * Q32_UNIT
           : kind == KIND_K ? (size_t)(n_in / QK) * K_UNIT
                            : (size_t)(n_in / 32) * F_UNIT;
}

static size_t panel_bytes(int kind, int64_t n_in)
{
    return kind == KIND_Q32 ? (size_t)(n_in / 32) * Q32_WUNIT
           : kind == KIND_K ? (size_t)(n_in / QK) * K_WUNIT
                            : (size_t)(n_in / 32) * F_WUNIT;
}

bool herd_amx_supports(uint32_t wtype, int64_t n_in)
{
    const int kind = kind_of(wtype);
    if (kind < 0) return false;
    return n_in % (kind == KIND_K ? QK : 32) == 0;
}

size_t herd_amx_work_size(uint32_t wtype, int64_t n_in, int64_t n_tok)
{
    if (!herd_amx_supports(wtype, n_in)) return 0;
    return act_tile_bytes(kind_of(wtype), n_in) * (size_t)((n_tok + 15) / 16) + 64;
}

#ifndef ACT_GROUP_BYTES
#define ACT_GROUP_BYTES (1u << 20)
#endif

/* One product, as the pool's jobs see it. */
typedef struct {
    int kind;
    uint32_t wtype;
    const uint8_t *w;
    const float *x;
    float *y;
    uint8_t *act, *bufs;
    int64_t n_in, n_rows, n_tok, n_tiles, n_panels, nk;
    size_t w_stride, at, pb, tb;
    atomic_int next; /* the next weight panel to take */
} amx_job;

static void pack_job(void *arg, int ith, int nth)
{
    amx_job *j = arg;
    void *tmp = j->bufs + (j->pb + j->tb) * (size_t)ith + j->pb;
    for (int64_t t = ith; t < j->n_tiles; t += nth) {
        if (j->kind == KIND_Q32)
            pack_q32(j->x, j->n_in, j->n_tok, j->act, t, tmp);
        else if (j->kind == KIND_K)
            pack_k(j->x, j->n_in, j->n_tok, j->act, t, tmp);
        else
            pack_f(j->kind == KIND_BF16, j->x, j->n_in, j->n_tok, j->act, t);
    }
}

/* Panels are handed out one at a time (a descheduled thread does not hold
 * up the others' share); each panel is unpacked once and multiplied with
 * every token tile. */
static void compute_job(void *arg, int ith, int nth)
{
    (void)nth;
    amx_job *j = arg;
    uint8_t *wbuf = j->bufs + (j->pb + j->tb) * (size_t)ith;
    const int kind = j->kind;
    configure(kind);
    /* Items are (token group, panel), panels inner: a group's activations
     * (at most ACT_GROUP_BYTES) stay in L2 while the panels go by; the
     * panel is unpacked again for each group, which costs little. */
    int64_t tg = (int64_t)(ACT_GROUP_BYTES / j->at);
    if (tg < 1) tg = 1;
    const int64_t n_groups = (j->n_tiles + tg - 1) / tg;
    for (int64_t it; (it = atomic_fetch_add(&j->next, 1)) < n_groups * j->n_panels;) {
        const int64_t p = it % j->n_panels, g = it / j->n_panels;
        const int64_t t_end = (g + 1) * tg < j->n_tiles ? (g + 1) * tg : j->n_tiles;
        const int64_t r0 = p * 16;
        const int nr = (int)(j->n_rows - r0 < 16 ? j->n_rows - r0 : 16);
        const uint8_t *wp = j->w + (size_t)r0 * j->w_stride;
        if (kind == KIND_Q32)
            prep_q32(j->wtype, wp, j->w_stride, j->nk, nr, wbuf);
        else if (kind == KIND_K)
            prep_k(j->wtype, wp, j->w_stride, j->nk, nr, wbuf);
        else
            prep_f(kind == KIND_BF16, wp, j->w_stride, j->nk, nr, wbuf);
        int64_t t = g * tg;
        if (kind == KIND_F16 || kind == KIND_BF16) {
            for (; t + 1 < t_end; t += 2) {
                __m512 acc1[16], acc2[16];
                tile_f2(kind == KIND_BF16, wbuf, j->act + (size_t)t * j->at,
                        j->act + (size_t)(t + 1) * j->at, j->nk, acc1, acc2);
                store_tile(acc1, j->y, (size_t)j->n_rows, r0, nr, t * 16, 16);
                const int nt = (int)(j->n_tok - (t + 1) * 16 < 16 ? j->n_tok - (t + 1) * 16 : 16);
                store_tile(acc2, j->y, (size_t)j->n_rows, r0, nr, (t + 1) * 16, nt);
            }
        }
        for (; t < t_end; t++) {
            __m512 acc[16];
            const uint8_t *a = j->act + (size_t)t * j->at;
            if (kind == KIND_Q32)
                tile_q32(wbuf, a, j->nk, acc);
            else if (kind == KIND_K)
                tile_k(j->wtype == HERD_TYPE_Q4_K, wbuf, a, j->nk, acc);
            else
                tile_f(kind == KIND_BF16, wbuf, a, j->nk, acc);
            const int nt = (int)(j->n_tok - t * 16 < 16 ? j->n_tok - t * 16 : 16);
            store_tile(acc, j->y, (size_t)j->n_rows, r0, nr, t * 16, nt);
        }
    }
    _tile_release();
}

bool herd_amx_matmul(const void *w, uint32_t wtype, int64_t n_in, int64_t n_rows, const float *x,
                     int64_t n_tok, float *y, void *work, int n_threads)
{
    const int kind = kind_of(wtype);
    amx_job j = {.kind = kind,
                 .wtype = wtype,
                 .w = w,
                 .x = x,
                 .y = y,
                 .n_in = n_in,
                 .n_rows = n_rows,
                 .n_tok = n_tok,
                 .w_stride = herd_row_bytes(wtype, n_in),
                 .at = act_tile_bytes(kind, n_in),
                 .n_tiles = (n_tok + 15) / 16,
                 .n_panels = (n_rows + 15) / 16,
                 .nk = kind == KIND_K ? n_in / QK : n_in / 32};
    j.act = (uint8_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    /* Per thread: a weight panel and one converted activation row (Q8_0 or
     * Q8_K: at most 1.2 bytes per element). */
    j.pb = (panel_bytes(kind, n_in) + 63) / 64 * 64;
    j.tb = ((size_t)n_in * 2 + 127) / 64 * 64;
    if (!(j.bufs = herd_alloc_aligned((j.pb + j.tb) * (size_t)n_threads))) return false;
    atomic_init(&j.next, 0);
    herd_parallel(n_threads, pack_job, &j);
    herd_parallel(n_threads, compute_job, &j);
    free(j.bufs);
    return true;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
