/*
 * kernels_gemv_k.h — internal: the streaming loop of the AVX-512 K-quant
 * decode kernels, one copy for kernels_avx512_gemv_k.c (Q4_K, Q5_K, Q6_K)
 * and kernels_avx512_gemv_k23.c (Q2_K, Q3_K).
 *
 * Not an ordinary header: a file includes it after defining its own
 *   acc_k, act_k     the accumulators of a row, a super-block's activations
 *   ACC_ZERO         an acc_k of zeros
 *   load_act(u)      act_k from the UNIT packed bytes at u
 *   block_k(kind, x, &y, acc), finish(acc)
 *   block_bytes(kind), pf_lines(kind)   a weight block's bytes, the cache
 *                    lines of it to prefetch per step
 * and QK, UNIT, NS, PF_DIST. Everything is inlined, so each file's kernels
 * are the code they were when each file had its own copy of this loop.
 */

/* nr rows: NS streams (rows r, r + h, r + 2h, …) sharing each super-block's
 * activations, each prefetched PF_DIST bytes ahead, then the rows left over
 * one at a time. */
static inline __attribute__((always_inline)) void
gemv_k(int kind, int64_t n, const uint8_t *vx, size_t xs, int64_t nr, const uint8_t *vy, float *s)
{
    const size_t bsz = block_bytes(kind);
    const int64_t nb = n / QK, h = nr / NS;
    const acc_k zero = ACC_ZERO;
    for (int64_t r = 0; r < h; r++) {
        acc_k acc[NS];
#pragma GCC unroll 8
        for (int k = 0; k < NS; k++) acc[k] = zero;
        for (int64_t i = 0; i < nb; i++) {
            const act_k y = load_act(vy + (size_t)i * UNIT);
#pragma GCC unroll 8
            for (int k = 0; k < NS; k++) {
                const uint8_t *x = vx + (size_t)(r + k * h) * xs + (size_t)i * bsz;
#pragma GCC unroll 4
                for (int l = 0; l < pf_lines(kind); l++)
                    _mm_prefetch((const char *)x + PF_DIST + 64 * l, _MM_HINT_T0);
                acc[k] = block_k(kind, x, &y, acc[k]);
            }
        }
#pragma GCC unroll 8
        for (int k = 0; k < NS; k++) s[r + k * h] = finish(acc[k]);
    }
    for (int64_t r = NS * h; r < nr; r++) {
        acc_k acc = zero;
        for (int64_t i = 0; i < nb; i++) {
            const act_k y = load_act(vy + (size_t)i * UNIT);
            acc = block_k(kind, vx + (size_t)r * xs + (size_t)i * bsz, &y, acc);
        }
        s[r] = finish(acc);
    }
}
