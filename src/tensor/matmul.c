/*
 * matmul.c — Y = X·Wᵀ for a weight matrix in any computable type, and row
 * lookup (embeddings).
 *
 * As in ggml, the activation rows are converted once to the weight type's
 * vec_dot_type (Q8_0, Q8_K, F16, …) and every output is a dot product of a
 * weight row with a converted activation row. Only the order of the work
 * differs from ggml's:
 *
 *   one token   each thread takes a contiguous slice of the rows, so every
 *               weight byte is streamed from memory once, by one thread.
 *               Decoding is bound by memory bandwidth; nothing else matters.
 *   a batch     rows are cut into blocks (one or more per thread) and each
 *               block walks the tokens in tiles; a micro-kernel computes up to
 *               HERD_GEMM_MAX_R rows × HERD_GEMM_MAX_T tokens per pass, so a
 *               weight block fetched from cache is used for several tokens.
 */
#include "tensor/kernels.h"

#include <omp.h>
#include <string.h>

/* Bytes of one converted activation row: the gemm kernel's own layout if it
 * has one, else a row of vec_dot_type; 0 when X is used as it is (F32). */
static size_t act_row_bytes(const herd_type_traits *t, uint32_t wtype, int64_t n_in)
{
    const herd_gemm_kernel *k = &herd_gemm_kernels[wtype];
    if (k->gemm && k->pack)
        return (size_t)((n_in + k->pack_block - 1) / k->pack_block) * k->pack_block_bytes;
    if (t->vec_dot_type == HERD_TYPE_F32) return 0;
    return herd_row_bytes(t->vec_dot_type, n_in);
}

size_t herd_matmul_work_size(uint32_t wtype, int64_t n_in, int64_t n_tok)
{
    herd_tensor_init();
    const herd_type_traits *t = herd_type(wtype);
    if (!t || !t->vec_dot || n_in <= 0 || n_tok <= 0) return 0;
    uint64_t bytes;
    if (!herd_mul_ok(act_row_bytes(t, wtype, n_in), (uint64_t)n_tok, &bytes)) return 0;
    return (size_t)bytes;
}

/* Convert rows [0, n_tok) of X into work with f, as thread ith of nth, in
 * units of `unit` elements that become `unit_bytes` bytes. With fewer tokens
 * than threads each row is split at unit boundaries instead, so that a
 * single decode token is converted by all threads. */
static void convert_rows(herd_from_float_fn f, int64_t unit, size_t unit_bytes, const float *x,
                         int64_t n_in, int64_t n_tok, uint8_t *work, size_t row_bytes, int ith,
                         int nth)
{
    if (n_tok >= nth) {
        for (int64_t t = ith; t < n_tok; t += nth)
            f(x + t * n_in, work + (size_t)t * row_bytes, n_in);
        return;
    }
    const int64_t nu = (n_in + unit - 1) / unit;
    const int64_t u0 = nu * ith / nth, u1 = nu * (ith + 1) / nth;
    if (u1 <= u0) return;
    const int64_t e0 = u0 * unit, e1 = u1 * unit < n_in ? u1 * unit : n_in;
    for (int64_t t = 0; t < n_tok; t++)
        f(x + t * n_in + e0, work + (size_t)t * row_bytes + (size_t)u0 * unit_bytes, e1 - e0);
}

/* nr rows × nt tokens with one vec_dot each: the fallback micro-kernel. */
static void tile_vec_dot(herd_vec_dot_fn dot, int64_t n, const uint8_t *w, size_t w_stride, int nr,
                         const uint8_t *a, size_t a_stride, int nt, float *s, size_t s_stride)
{
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++)
            dot(n, s + (size_t)t * s_stride + r, w + (size_t)r * w_stride,
                a + (size_t)t * a_stride);
}

void herd_matmul(const void *w, uint32_t wtype, int64_t n_in, int64_t n_rows, const float *x,
                 int64_t n_tok, float *y, void *work, int n_threads)
{
    herd_tensor_init();
    const herd_type_traits *t = herd_type(wtype);
    if (!t || !t->vec_dot || n_rows <= 0 || n_tok <= 0) return;
    const herd_type_traits *vt = herd_type(t->vec_dot_type);
    const herd_gemm_kernel *k = &herd_gemm_kernels[wtype];
    const herd_gemm_fn gemm = k->gemm;
    const bool packed = gemm && k->pack;
    const size_t w_stride = herd_row_bytes(wtype, n_in);
    const size_t a_stride = act_row_bytes(t, wtype, n_in);
    const bool convert = a_stride != 0;
    const uint8_t *act = convert ? (const uint8_t *)work : (const uint8_t *)x;
    const size_t a_step = convert ? a_stride : (size_t)n_in * 4;
    const herd_vec_dot_fn dot = t->vec_dot; /* only without gemm, so never packed */
    const uint8_t *wb = w;
    if (n_threads < 1) n_threads = 1;
    /* Small products are not worth waking threads for. */
    if ((uint64_t)n_rows * (uint64_t)n_tok * (uint64_t)n_in < 32768) n_threads = 1;

#pragma omp parallel num_threads(n_threads)
    {
        const int ith = omp_get_thread_num(), nth = omp_get_num_threads();
        if (convert) {
            if (packed)
                convert_rows(k->pack, k->pack_block, k->pack_block_bytes, x, n_in, n_tok, work,
                             a_stride, ith, nth);
            else
                convert_rows(vt->from_float, vt->blck_size, vt->type_size, x, n_in, n_tok, work,
                             a_stride, ith, nth);
#pragma omp barrier
        }
        if (n_tok == 1) {
            /* Decode: one contiguous slice of rows per thread. */
            const int64_t r0 = n_rows * ith / nth, r1 = n_rows * (ith + 1) / nth;
            if (gemm) {
                /* Several rows per pass share the activation loads. */
                for (int64_t r = r0; r < r1; r += HERD_GEMM_MAX_R) {
                    const int nr = (int)(r1 - r < HERD_GEMM_MAX_R ? r1 - r : HERD_GEMM_MAX_R);
                    gemm(n_in, wb + (size_t)r * w_stride, w_stride, nr, act, a_step, 1, y + r,
                         (size_t)n_rows);
                }
            } else {
                for (int64_t r = r0; r < r1; r++) dot(n_in, y + r, wb + (size_t)r * w_stride, act);
            }
        } else {
            /* Batch: row blocks of RB rows, each walking all tokens in tiles
             * of HERD_GEMM_MAX_T. RB is small enough to give every thread
             * work and to keep a block's weights in L2 across the tokens.
             * Blocks are handed out dynamically: on a busy machine a thread
             * that was descheduled does not hold up the others' share.
             * Every output is computed the same way whichever thread or tile
             * takes it, so results do not depend on the thread count. */
            const int64_t R = HERD_GEMM_MAX_R, T = HERD_GEMM_MAX_T;
            int64_t rb = (n_rows + nth - 1) / nth;
            if (rb > 64) rb = 64;
            rb = (rb + R - 1) / R * R;
            const int64_t n_blocks = (n_rows + rb - 1) / rb;
#pragma omp for schedule(dynamic, 1)
            for (int64_t blk = 0; blk < n_blocks; blk++) {
                const int64_t r0 = blk * rb, r1 = r0 + rb < n_rows ? r0 + rb : n_rows;
                for (int64_t t0 = 0; t0 < n_tok; t0 += T) {
                    const int nt = (int)(n_tok - t0 < T ? n_tok - t0 : T);
                    for (int64_t r = r0; r < r1; r += R) {
                        const int nr = (int)(r1 - r < R ? r1 - r : R);
                        const uint8_t *wr = wb + (size_t)r * w_stride;
                        const uint8_t *at = act + (size_t)t0 * a_step;
                        float *s = y + (size_t)t0 * (size_t)n_rows + r;
                        if (gemm)
                            gemm(n_in, wr, w_stride, nr, at, a_step, nt, s, (size_t)n_rows);
                        else
                            tile_vec_dot(dot, n_in, wr, w_stride, nr, at, a_step, nt, s,
                                         (size_t)n_rows);
                    }
                }
            }
        }
    }
}

void herd_get_row(const void *w, uint32_t wtype, int64_t n_in, int64_t r, float *out)
{
    herd_tensor_init();
    const herd_type_traits *t = herd_type(wtype);
    if (!t || !t->to_float) return;
    t->to_float((const uint8_t *)w + (size_t)r * herd_row_bytes(wtype, n_in), out, n_in);
}
