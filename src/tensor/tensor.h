/*
 * tensor.h — tensor element types and the kernels that compute with them.
 *
 * One table row per ggml type (ggml's numbering, as stored in GGUF): block
 * size, bytes per block, conversion to and from F32, and the dot product of a
 * weight row with an activation row. As in ggml, activations are first
 * converted to the type the weight type pairs with (its vec_dot_type: F16 for
 * F16, BF16 for BF16, Q8_0 for Q4_0/Q8_0, Q8_K for the K-quants, F32 for F32),
 * and then dotted with integer or float arithmetic; this is what makes the
 * logits match llama.cpp's.
 *
 * Each kernel has a scalar reference (vec_dot_ref, from_float_ref) and may have
 * a faster version for AVX2/FMA or AVX-512, picked once at run time by
 * herd_tensor_init() from what the CPU reports. Tests compare the two.
 *
 * Adding a type touches one row of the table in types.c plus its kernels.
 */
#ifndef HERD_TENSOR_H
#define HERD_TENSOR_H

#include "util/util.h"

#include <math.h>

enum herd_type {
    HERD_TYPE_F32 = 0,
    HERD_TYPE_F16 = 1,
    HERD_TYPE_Q4_0 = 2,
    HERD_TYPE_Q4_1 = 3,
    HERD_TYPE_Q5_0 = 6,
    HERD_TYPE_Q5_1 = 7,
    HERD_TYPE_Q8_0 = 8,
    HERD_TYPE_Q8_1 = 9,
    HERD_TYPE_Q2_K = 10,
    HERD_TYPE_Q3_K = 11,
    HERD_TYPE_Q4_K = 12,
    HERD_TYPE_Q5_K = 13,
    HERD_TYPE_Q6_K = 14,
    HERD_TYPE_Q8_K = 15,
    HERD_TYPE_I8 = 24,
    HERD_TYPE_I16 = 25,
    HERD_TYPE_I32 = 26,
    HERD_TYPE_I64 = 27,
    HERD_TYPE_F64 = 28,
    HERD_TYPE_BF16 = 30,
    HERD_TYPE_COUNT = 40 /* ids at or above this are unknown */
};

/* Convert n elements (n a multiple of blck_size) of a row. */
typedef void (*herd_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*herd_from_float_fn)(const float *src, void *dst, int64_t n);
/* *s = dot(x, y) over n elements; x in the weight type, y in its vec_dot_type. */
typedef void (*herd_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

typedef struct herd_type_traits {
    const char *name;  /* "F32", "Q4_0", … as llama.cpp prints them */
    int64_t blck_size; /* elements per block */
    size_t type_size;  /* bytes per block */
    bool is_quantized;
    /* Compute support; NULL where herd has no kernel for the type (the file can
     * still be read and described). */
    herd_to_float_fn to_float;
    /* from_float: how ggml-cpu converts activations (fastest available).
     * from_float_ref: ggml's quantize_row_*_ref, what model files are made
     * with. Same bits for every type except Q8_0, where ggml's x86 activation
     * quantizer rounds differently (see kernels_ref.c). */
    herd_from_float_fn from_float;
    herd_from_float_fn from_float_ref;
    uint32_t vec_dot_type;       /* the type activations are converted to */
    herd_vec_dot_fn vec_dot;     /* fastest available */
    herd_vec_dot_fn vec_dot_ref; /* scalar reference */
} herd_type_traits;

/* Detect CPU features and fill in the fastest kernels. Idempotent, thread-safe.
 * HERD_NO_SIMD=1 in the environment forces the scalar references. */
void herd_tensor_init(void);
/* "scalar", "avx2", "avx512", "amx": the kernel level in use. */
const char *herd_tensor_simd_level(void);
/* Why the level is not what HERD_SIMD asked for (a level this CPU lacks, an
 * unknown name: one line, without a newline), or NULL. */
const char *herd_tensor_simd_note(void);

/* NULL for an id ggml does not define. */
const herd_type_traits *herd_type(uint32_t type);
bool herd_type_can_compute(uint32_t type); /* to_float and vec_dot present */
const char *herd_type_name(uint32_t type); /* "?" when unknown */

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size. */
size_t herd_row_bytes(uint32_t type, int64_t n);

/* Scalar half- and bfloat16 conversions (round to nearest even). */
float herd_f16_to_f32(uint16_t h);
uint16_t herd_f32_to_f16(float f);
float herd_bf16_to_f32(uint16_t h);
uint16_t herd_f32_to_bf16(float f);

/* Y[t][r] = dot(W row r, X row t) for t < n_tok, r < n_rows.
 * W: n_rows rows of n_in elements of wtype (row-major, as stored in GGUF).
 * X: n_tok rows of n_in floats. Y: n_tok rows of n_rows floats.
 * work: at least herd_matmul_work_size(wtype, n_in, n_tok) bytes, used for the
 * activations converted to the weight's vec_dot_type.
 * Threads: splits the work over n_threads threads of the pool (by output rows for a
 * single token, by tiles of rows × tokens for a batch). */
size_t herd_matmul_work_size(uint32_t wtype, int64_t n_in, int64_t n_tok);
void herd_matmul(const void *w, uint32_t wtype, int64_t n_in, int64_t n_rows, const float *x,
                 int64_t n_tok, float *y, void *work, int n_threads);

/* Several one-token products in one pool dispatch: y_i = W_i·x_i for i < n
 * (the chosen experts of a decoded token: the pool wakes once, not once per
 * matrix). Every output has the bits herd_matmul with n_tok 1 gives it.
 * Items with the same x and n_in share its conversion. work: at least
 * herd_matvec_work_size(v, n) bytes. */
typedef struct herd_matvec {
    const void *w;
    uint32_t wtype;
    int64_t n_in, n_rows;
    const float *x;
    float *y;
} herd_matvec;
size_t herd_matvec_work_size(const herd_matvec *v, int n);
void herd_matvec_many(const herd_matvec *v, int n, void *work, int n_threads);

/* Attention of nq queries (each head_dim floats, all reading the same KV
 * head) over cache rows, in F32: per query, softmax over the visible cells
 * of (q·k)·scale + mask (soft-capped first if softcap > 0), applied to v. Cells are visited in the
 * order given (any order gives the same result up to F32 rounding). A query at position pos sees a
 * cell at kpos if kpos ≤ pos and, with a sliding window swa > 0, kpos > pos − swa; ALiBi adds
 * slope·F16(−(pos − kpos)) (slope 0: none). Rows of k and v are row_bytes apart, head_dim values of
 * `type` (F16 or F32) each, starting at the KV head's offset. scratch: at least
 * herd_attn_scratch_size(head_dim, nq) bytes. Each K/V row is widened once
 * per call for all nq queries, so callers should group every query that
 * shares a KV head (heads of a group, tokens of a batch). */
typedef struct herd_attn_args {
    const float *const *q; /* nq query rows */
    float *const *out;     /* nq output rows */
    const int32_t *q_pos;  /* position of each query */
    int nq, head_dim;
    const uint8_t *k, *v;
    size_t row_bytes;
    uint32_t type;
    const int32_t *cells;    /* the cells to visit */
    const int32_t *cell_pos; /* position of each cell, indexed by cell */
    int n_cells;
    float scale, slope;
    int swa;
    /* Soft-capping (Gemma 2): scores become softcap·tanh(q·k·scale/softcap)
     * before the mask is added, as in ggml's flash attention; 0: none. */
    float softcap;
} herd_attn_args;
size_t herd_attn_scratch_size(int head_dim, int nq);
void herd_attn(const herd_attn_args *a, void *scratch);

/* The mask added to the score of a query at pos for a key at kpos, as
 * llama.cpp's F16 KQ mask holds it: −inf where the key is not visible, else
 * 0 or, with ALiBi, slope·F16(−(pos − kpos)). */
static inline float herd_attn_mask(int pos, int kpos, int swa, float slope)
{
    if (kpos > pos || (swa > 0 && kpos <= pos - swa)) return -INFINITY;
    if (slope == 0.0f) return 0.0f;
    return slope * herd_f16_to_f32(herd_f32_to_f16(-(float)(pos - kpos)));
}

/* Decode attention (attn_dec.c): nh ≤ HERD_ATTN_DEC_HEADS query heads of one
 * token at position pos that read the same KV head, over n_cells cells of a
 * cache of any type herd stores (F16, F32, BF16, Q8_0, Q4_0; K and V may
 * differ), masked as herd_attn_mask says. The result is each head's online
 * softmax state, unnormalised, so that ranges of one sequence can be merged:
 * M[h] the largest score seen (−inf: none), S[h] = Σ exp(s − M[h]) and
 * acc[h] = Σ exp(s − M[h])·v (head_dim floats). Q is first rounded as ggml
 * rounds it for K's dot product (to K's vec_dot_type) and widened back; K and
 * V are widened exactly; the rest is F32. scratch: herd_attn_dec_scratch_size
 * bytes. */
#define HERD_ATTN_DEC_HEADS 8
#define HERD_ATTN_DEC_MAX_D 512
typedef struct herd_attn_dec_args {
    const float *const *q; /* nh query rows of head_dim floats */
    int nh, head_dim;
    const uint8_t *k, *v;    /* the KV head's K (V) in cell 0 */
    size_t row_k, row_v;     /* bytes from one cell's K (V) to the next's */
    uint32_t type_k, type_v; /* HERD_TYPE_* */
    const int32_t *cells;    /* the cells to visit, in order */
    const int32_t *cell_pos; /* position of each cell, indexed by cell */
    int n_cells, pos, swa;
    float scale, softcap;
    const float *slope; /* nh ALiBi slopes (0: none) */
} herd_attn_dec_args;
typedef void (*herd_attn_dec_fn)(const herd_attn_dec_args *a, float *M, float *S, float *const *acc,
                                 void *scratch);
size_t herd_attn_dec_scratch_size(int head_dim);
/* The kernel of a SIMD level ("scalar": the reference, "avx512"), for tests
 * and for the caller's choice; false for a level this build lacks. */
bool herd_attn_dec_kernel(const char *level, herd_attn_dec_fn *fn);

/* Dequantize row r of W (n_in elements) into out: embedding lookup. */
void herd_get_row(const void *w, uint32_t wtype, int64_t n_in, int64_t r, float *out);

#endif
