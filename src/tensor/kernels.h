/*
 * kernels.h — internal: how the kernel files fill the type-traits table.
 */
#ifndef HERD_KERNELS_H
#define HERD_KERNELS_H

#include "tensor/tensor.h"

/* Fill to_float, from_float(_ref), vec_dot_type, vec_dot(_ref) with the scalar
 * references (kernels_ref.c). */
void herd_kernels_install_ref(herd_type_traits *traits);
/* Replace from_float/vec_dot with the fastest SIMD versions the CPU supports
 * (HERD_SIMD may cap them); returns the level name ("scalar", "avx2",
 * "avx512", "amx"). */
const char *herd_kernels_install_simd(herd_type_traits *traits);
/* The level for HERD_SIMD=want (NULL or "": none) on a CPU whose best level
 * is have: want where the CPU has it, else have, with a one-line note in
 * note (empty when there is nothing to say; note_cap 0: no note). Pure, so
 * that tests can play a CPU without AVX-512. */
enum { HERD_SIMD_SCALAR, HERD_SIMD_AVX2, HERD_SIMD_AVX512, HERD_SIMD_AMX, HERD_SIMD_N };
int herd_simd_choose(const char *want, int have, char *note, size_t note_cap);

/* ------------------------------------------------------------------------
 * Block layouts, byte for byte as ggml stores them (ggml-common.h). Rows of
 * blocks are 2-byte aligned (4 for Q8_K) whenever the tensor data is, which
 * GGUF guarantees (32); the F16 scales are still read through memcpy
 * (herd_ld_f16) and SIMD loads are unaligned ones.
 */
#define HERD_QK4_0 32
#define HERD_QK8_0 32
#define HERD_QK_K  256

typedef struct {
    uint16_t d;     /* F16 scale */
    uint8_t qs[16]; /* element j in the low nibble of qs[j], j+16 in the high */
} herd_block_q4_0;

typedef struct {
    uint16_t d; /* F16 scale */
    int8_t qs[32];
} herd_block_q8_0;

typedef struct {
    uint8_t ql[128];   /* low 4 bits of the 6-bit quants */
    uint8_t qh[64];    /* high 2 bits */
    int8_t scales[16]; /* one per 16 elements */
    uint16_t d;        /* F16 super-block scale */
} herd_block_q6_K;

typedef struct {
    float d;
    int8_t qs[256];
    int16_t bsums[16]; /* sum of qs in each group of 16 */
} herd_block_q8_K;

/* Q4_1 / Q5_1: x = q·d + m with q unsigned (0..15 / 0..31); Q5_0: (q − 16)·d.
 * The fifth bit of element j is bit j of qh (little-endian 32 bits). */
typedef struct {
    uint16_t d, m;
    uint8_t qs[16];
} herd_block_q4_1;

typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
} herd_block_q5_0;

typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} herd_block_q5_1;

/* Q8_1: Q8_0 plus s = d·Σqs (F16), the activation type of Q4_1/Q5_1 (their
 * min m enters the dot product as m·s). */
typedef struct {
    uint16_t d, s;
    int8_t qs[32];
} herd_block_q8_1;

/* K-quants: super-blocks of 256 with per-16 (Q2_K, Q3_K) or per-32 (Q4_K,
 * Q5_K) sub-block scales, themselves quantized against the F16 d (and dmin).
 *   Q2_K  x = d·(sc&15)·q − dmin·(sc>>4),       q 2 bits
 *   Q3_K  x = d·(s6−32)·(q − 4·!hbit),          q 2 bits + 1 high bit
 *   Q4_K  x = d·s6·q − dmin·m6,                 q 4 bits, 6-bit scales/mins
 *   Q5_K  as Q4_K with a fifth bit in qh. */
typedef struct {
    uint8_t scales[16]; /* low nibble scale, high nibble min */
    uint8_t qs[64];
    uint16_t d, dmin;
} herd_block_q2_K;

typedef struct {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12]; /* 16 6-bit scales, packed */
    uint16_t d;
} herd_block_q3_K;

typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12]; /* 8 6-bit scales and 8 6-bit mins, packed */
    uint8_t qs[128];
} herd_block_q4_K;

typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} herd_block_q5_K;

_Static_assert(sizeof(herd_block_q4_1) == 20, "block_q4_1 layout");
_Static_assert(sizeof(herd_block_q5_0) == 22, "block_q5_0 layout");
_Static_assert(sizeof(herd_block_q5_1) == 24, "block_q5_1 layout");
_Static_assert(sizeof(herd_block_q8_1) == 36, "block_q8_1 layout");
_Static_assert(sizeof(herd_block_q2_K) == 84, "block_q2_K layout");
_Static_assert(sizeof(herd_block_q3_K) == 110, "block_q3_K layout");
_Static_assert(sizeof(herd_block_q4_K) == 144, "block_q4_K layout");
_Static_assert(sizeof(herd_block_q5_K) == 176, "block_q5_K layout");
_Static_assert(sizeof(herd_block_q4_0) == 18, "block_q4_0 layout");
_Static_assert(sizeof(herd_block_q8_0) == 34, "block_q8_0 layout");
_Static_assert(sizeof(herd_block_q6_K) == 210, "block_q6_K layout");
_Static_assert(sizeof(herd_block_q8_K) == 292, "block_q8_K layout");

/* ------------------------------------------------------------------------
 * Scalar references (kernels_ref.c), shared with the SIMD files for their
 * tails and with the tests.
 */
void herd_quantize_q8_0_ref(const float *x, void *y, int64_t n); /* quantize_row_q8_0_ref */
void herd_quantize_q8_0_act(const float *x, void *y, int64_t n); /* ggml-cpu x86 activations */
void herd_quantize_q8_K_ref(const float *x, void *y, int64_t n);
void herd_quantize_q4_0_ref(const float *x, void *y, int64_t n);
void herd_quantize_q6_K_ref(const float *x, void *y, int64_t n);
void herd_fp32_to_fp16_row(const float *x, void *y, int64_t n);
void herd_fp32_to_bf16_row(const float *x, void *y, int64_t n);

/* kernels_legacy_ref.c: Q4_1, Q5_0, Q5_1 and the Q8_1 activations. */
void herd_quantize_q4_1_ref(const float *x, void *y, int64_t n);
void herd_quantize_q5_0_ref(const float *x, void *y, int64_t n);
void herd_quantize_q5_1_ref(const float *x, void *y, int64_t n);
void herd_quantize_q8_1_ref(const float *x, void *y, int64_t n); /* quantize_row_q8_1_ref */
void herd_quantize_q8_1_act(const float *x, void *y, int64_t n); /* ggml-cpu x86 activations */
void herd_vec_dot_q4_1_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_q5_0_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_q5_1_ref(int64_t n, float *s, const void *x, const void *y);
void herd_kernels_install_legacy_ref(herd_type_traits *traits);

/* kernels_kquants_ref.c: Q2_K, Q3_K, Q4_K, Q5_K. */
void herd_quantize_q2_K_ref(const float *x, void *y, int64_t n);
void herd_quantize_q3_K_ref(const float *x, void *y, int64_t n);
void herd_quantize_q4_K_ref(const float *x, void *y, int64_t n);
void herd_quantize_q5_K_ref(const float *x, void *y, int64_t n);
void herd_vec_dot_q2_K_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_q3_K_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_q4_K_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_q5_K_ref(int64_t n, float *s, const void *x, const void *y);
void herd_kernels_install_kquants_ref(herd_type_traits *traits);

/* The 6-bit scale j and min j (j < 8) of a Q4_K/Q5_K block's 12 bytes. */
static inline void herd_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The 16 6-bit scales of a Q3_K block, as signed values −32..31. */
static inline void herd_q3_K_scales(const uint8_t *sc, int8_t *out)
{
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? sc[j] & 0xf : sc[j - 8] >> 4;
        const int hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* ggml's nearest_int: round half to even through the float adder, exact for
 * |v| < 2^22 (all callers stay far below). */
static inline int herd_nearest_int(float v)
{
    float t = v + 12582912.f;
    int32_t i;
    __builtin_memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

void herd_vec_dot_f32_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_f16_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_bf16_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_q8_0_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_q4_0_ref(int64_t n, float *s, const void *x, const void *y);
void herd_vec_dot_q6_K_ref(int64_t n, float *s, const void *x, const void *y);

/* F16 → F32, exact (every half is a float). NaNs come out quiet with their
 * payload, as F16C's vcvtph2ps does, so scalar and SIMD agree bit for bit. */
static inline float herd_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000 | (m << 13) | (m ? 0x400000 : 0);
    } else if (e) {
        bits = sign | ((e + 112) << 23) | (m << 13);
    } else if (m) {
        /* Subnormal: m·2^-24; shift the leading 1 up to the implicit bit. */
        int sh = __builtin_clz(m) - 21; /* m has its top bit at 10 - sh */
        bits = sign | ((uint32_t)(113 - sh) << 23) | ((m << sh) & 0x3ff) << 13;
    } else {
        bits = sign;
    }
    float f;
    __builtin_memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float herd_ld_f16(const void *p)
{
    uint16_t h;
    __builtin_memcpy(&h, p, sizeof h);
    return herd_half_to_float(h);
}

/* ------------------------------------------------------------------------
 * Multi-row × multi-token kernels for matmul (matmul.c).
 *
 * gemm: s[t * s_stride + r] = dot(W row r, Y row t) for r < nr, t < nt, where
 * W rows are x_stride bytes apart and activation rows y_stride bytes apart;
 * nr ≤ HERD_GEMM_MAX_R, nt ≤ HERD_GEMM_MAX_T. A kernel loads each weight
 * block once for all nt tokens (prompts) and shares the activation work
 * between nr rows (decoding).
 *
 * The activations are rows of the weight's vec_dot_type, unless the kernel
 * has its own layout: then pack converts F32 to it, pack_block elements at a
 * time into pack_block_bytes each (a row of n elements takes
 * ceil(n / pack_block) units; n need only be a multiple of the vec_dot_type's
 * block). A packed layout holds the same quantized values as the
 * vec_dot_type row, only rearranged and with per-block terms precomputed, so
 * results do not depend on it. gemm NULL: matmul tiles with vec_dot.
 */
#define HERD_GEMM_MAX_R 4
#define HERD_GEMM_MAX_T 4
typedef void (*herd_gemm_fn)(int64_t n, const void *x, size_t x_stride, int nr, const void *y,
                             size_t y_stride, int nt, float *s, size_t s_stride);
/* gemv: s[r] = dot(W row r, Y) for r < nr, one token: decoding. Rows are
 * streamed one after another (one sequential stream per thread, which the
 * hardware prefetcher follows best). Its activations have their own layout
 * (gemv_pack, gemv_pack_block elements into gemv_pack_block_bytes each). */
typedef void (*herd_gemv_fn)(int64_t n, const void *x, size_t x_stride, int64_t nr, const void *y,
                             float *s);
typedef struct herd_gemm_kernel {
    herd_gemm_fn gemm;
    herd_from_float_fn pack; /* NULL: activations in vec_dot_type */
    int64_t pack_block;
    size_t pack_block_bytes;
    herd_gemv_fn gemv; /* NULL: decode with gemm (or vec_dot) */
    herd_from_float_fn gemv_pack;
    int64_t gemv_pack_block;
    size_t gemv_pack_block_bytes;
} herd_gemm_kernel;
extern herd_gemm_kernel herd_gemm_kernels[HERD_TYPE_COUNT];

/* AMX (kernels_amx.c): batched products on the tile unit, used by matmul for
 * prompts when herd_amx_init() succeeded (the CPU has AMX-INT8/BF16 and the
 * kernel granted the tile state) and the weight type has a kernel. */
bool herd_amx_init(void);
bool herd_amx_supports(uint32_t wtype, int64_t n_in);
size_t herd_amx_work_size(uint32_t wtype, int64_t n_in, int64_t n_tok);
/* false: not done (out of memory); the caller computes Y another way. */
bool herd_amx_matmul(const void *w, uint32_t wtype, int64_t n_in, int64_t n_rows, const float *x,
                     int64_t n_tok, float *y, void *work, int n_threads);
extern bool herd_amx_enabled; /* set by herd_kernels_install_simd */

/* Panel products for prompts without AMX (kernels_mm.c; layouts in
 * kernels_mm.h): Q4_0, Q8_0, Q4_K, Q5_K and Q6_K with P weight rows per
 * vector, on AVX-512 VNNI (P = 16) or AVX2 with or without AVX-VNNI (P = 8).
 * herd_kernels_install_simd selects the ISA; matmul uses it for batches
 * that AMX does not take. Same contract as the AMX functions above. */
struct herd_mm_isa;
void herd_mm_select(const struct herd_mm_isa *isa); /* NULL: none */
const struct herd_mm_isa *herd_mm_selected(void);
bool herd_mm_supports(uint32_t wtype, int64_t n_in);
size_t herd_mm_work_size(uint32_t wtype, int64_t n_in, int64_t n_tok);
bool herd_mm_matmul(const void *w, uint32_t wtype, int64_t n_in, int64_t n_rows, const float *x,
                    int64_t n_tok, float *y, void *work, int n_threads);

/* Per-ISA installers, called by herd_kernels_install_simd after checking the
 * CPU (kernels_avx2.c, kernels_avx512.c). HERD_SIMD=avx2 in the environment
 * stops at AVX2 even on an AVX-512 CPU (tests use it). */
void herd_kernels_install_avx2(herd_type_traits *traits);
void herd_kernels_install_avx2_k(herd_type_traits *traits); /* kernels_avx2_k.c */
/* Decoding on AVX2 (kernels_avx2_gemv.c, kernels_avx2_gemv_k.c): the gemv
 * of Q4_0, Q8_0, Q4_K, Q6_K and F16, with AVX-VNNI (vnni) or without, and
 * the Q4_K / Q6_K vec_dot that sum as they do. herd_kernels_install_avx2
 * installs them without AVX-VNNI; herd_kernels_install_simd again with it
 * where the CPU has it and AVX2 is the level. herd_avx2_gemv: the kernel of
 * a type (NULL: none), for the tests. */
void herd_kernels_install_avx2_gemv(herd_type_traits *traits, bool vnni);
void herd_kernels_install_avx2_gemv_k(herd_type_traits *traits);
herd_gemv_fn herd_avx2_gemv(uint32_t type, bool vnni);
herd_gemv_fn herd_avx2_gemv_k(uint32_t type, bool vnni);
void herd_kernels_install_avx512(herd_type_traits *traits);
void herd_kernels_install_avx512_k(herd_type_traits *traits);      /* kernels_avx512_k.c */
void herd_kernels_install_avx512_gemv(herd_type_traits *traits);   /* kernels_avx512_gemv.c */
void herd_kernels_install_avx512_gemv_k(herd_type_traits *traits); /* kernels_avx512_gemv_k.c */

/* kernels_avx512_gemv_k23.c: decoding Q2_K and Q3_K. */
void herd_kernels_install_avx512_gemv_k23(herd_type_traits *traits);

#endif
