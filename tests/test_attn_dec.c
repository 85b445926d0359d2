/*
 * test_attn_dec.c — the blocked decode-attention kernel (src/tensor/attn_dec.c)
 * against its scalar reference, and the reference against attention computed
 * in double from the same rounded Q and widened K and V.
 *
 * Random Q, K and V in caches of every type herd stores (F16, F32, BF16,
 * Q8_0, Q4_0, and K and V of different types), head sizes 64, 128, 256, 80
 * (not a multiple of 64) and 72 (not a multiple of 16: the reference), 1 to 8 query
 * heads per KV head, runs of 1 to 1,000 cells (multiples of the 16-cell
 * block and not), cells out of position order, keys in the future (masked),
 * sliding windows, soft-capped scores and ALiBi slopes. The kernels return
 * unnormalised softmax states (M, S, acc): the SIMD kernel must give the
 * reference's bits; the reference, M and acc / S close to the double ones.
 */
#include "helpers.h"
#include "tensor/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) / 16777216.0) * 2.0f - 1.0f;
}

typedef struct {
    uint32_t tk, tv;
    int D, nh, n, swa;
    float cap;
    bool alibi;
} dec_case;

/* Row of D values of a type, widened (as the kernel must see it). */
static void widen(uint32_t type, const uint8_t *row, float *out, int D)
{
    herd_type(type)->to_float(row, out, D);
}

/* Exact attention in double over the widened K/V and the Q the kernel
 * rounds: the normalised output of each head, and its maximum score. */
static void exact(const herd_attn_dec_args *a, double *out, double *Mx)
{
    const int D = a->head_dim;
    float *kf = malloc(sizeof(float) * D), *vf = malloc(sizeof(float) * D),
          *qr = malloc(sizeof(float) * D);
    uint8_t *tmp = malloc((size_t)D * 4 + 64);
    const uint32_t vdt = herd_type(a->type_k)->vec_dot_type;
    for (int h = 0; h < a->nh; h++) {
        if (vdt == HERD_TYPE_F32) {
            memcpy(qr, a->q[h], sizeof(float) * D);
        } else {
            herd_type(vdt)->from_float(a->q[h], tmp, D);
            herd_type(vdt)->to_float(tmp, qr, D);
        }
        double M = -INFINITY, S = 0, *o = out + (size_t)h * D;
        for (int i = 0; i < D; i++) o[i] = 0;
        for (int pass = 0; pass < 2; pass++) /* max, then the sums */
            for (int j = 0; j < a->n_cells; j++) {
                const int c = a->cells[j];
                const float mv = herd_attn_mask(a->pos, a->cell_pos[c], a->swa, a->slope[h]);
                if (mv == -INFINITY) continue;
                widen(a->type_k, a->k + (size_t)c * a->row_k, kf, D);
                double qk = 0;
                for (int i = 0; i < D; i++) qk += (double)qr[i] * kf[i];
                double s = qk * a->scale;
                if (a->softcap != 0) s = a->softcap * tanh(qk * (a->scale / a->softcap));
                s += mv;
                if (pass == 0) {
                    if (s > M) M = s;
                    continue;
                }
                const double p = exp(s - M);
                widen(a->type_v, a->v + (size_t)c * a->row_v, vf, D);
                for (int i = 0; i < D; i++) o[i] += p * vf[i];
                S += p;
            }
        for (int i = 0; i < D; i++) o[i] = S > 0 ? o[i] / S : 0;
        Mx[h] = M;
    }
    free(kf), free(vf), free(qr), free(tmp);
}

/* Worst |a − b| over the heads' normalised outputs. */
static double worst(const herd_attn_dec_args *a, const float *S, float *const *acc,
                    const double *ref)
{
    double w = 0;
    for (int h = 0; h < a->nh; h++)
        for (int i = 0; i < a->head_dim; i++) {
            const double o = S[h] > 0 ? acc[h][i] / (double)S[h] : 0;
            const double d = fabs(o - ref[(size_t)h * a->head_dim + i]);
            if (!(d <= w)) w = d; /* NaN counts as worst */
        }
    return w;
}

static void run_case(const dec_case *t, herd_attn_dec_fn fast, const char *level)
{
    const int D = t->D, n = t->n, nh = t->nh;
    /* each cell's row holds two KV heads; the kernel reads the second */
    const size_t hk = herd_row_bytes(t->tk, D), hv = herd_row_bytes(t->tv, D);
    const size_t row_k = 2 * hk + 4, row_v = 2 * hv + 12;
    uint8_t *kc = malloc(row_k * n), *vc = malloc(row_v * n);
    int32_t *cells = malloc(sizeof(int32_t) * n), *cpos = malloc(sizeof(int32_t) * n);
    float *row = malloc(sizeof(float) * D), qbuf[HERD_ATTN_DEC_HEADS][512], slope[8];
    const float *q[HERD_ATTN_DEC_HEADS];
    for (int c = 0; c < n; c++) {
        for (int i = 0; i < D; i++) row[i] = frand() * 2.0f;
        herd_type(t->tk)->from_float_ref(row, kc + (size_t)c * row_k + hk, D);
        for (int i = 0; i < D; i++) row[i] = frand();
        herd_type(t->tv)->from_float_ref(row, vc + (size_t)c * row_v + hv, D);
        cells[c] = c;
        cpos[c] = c;
    }
    /* visit the cells in a shuffled order; the token sits at 90% of the run,
     * so the last tenth of the cells are in its future */
    for (int c = n - 1; c > 0; c--) {
        const int r = (int)((frand() * 0.5f + 0.5f) * c);
        const int32_t x = cells[c];
        cells[c] = cells[r], cells[r] = x;
    }
    for (int h = 0; h < nh; h++) {
        for (int i = 0; i < D; i++) qbuf[h][i] = frand() * 1.5f;
        q[h] = qbuf[h];
        slope[h] = t->alibi ? powf(2.0f, -(float)(h + 1)) : 0.0f;
    }
    const herd_attn_dec_args a = {.q = q,
                                  .nh = nh,
                                  .head_dim = D,
                                  .k = kc + hk,
                                  .v = vc + hv,
                                  .row_k = row_k,
                                  .row_v = row_v,
                                  .type_k = t->tk,
                                  .type_v = t->tv,
                                  .cells = cells,
                                  .cell_pos = cpos,
                                  .n_cells = n,
                                  .pos = n * 9 / 10,
                                  .swa = t->swa,
                                  .scale = 1.0f / sqrtf((float)D),
                                  .softcap = t->cap,
                                  .slope = slope};
    void *scratch = malloc(herd_attn_dec_scratch_size(D));
    float M0[8], S0[8], M1[8], S1[8], *acc0[8], *acc1[8];
    for (int h = 0; h < nh; h++) {
        acc0[h] = malloc(sizeof(float) * D);
        acc1[h] = malloc(sizeof(float) * D);
    }
    double *ref = malloc(sizeof(double) * nh * D), Mx[8];
    exact(&a, ref, Mx);
    herd_attn_dec_fn scalar;
    herd_attn_dec_kernel("scalar", &scalar);
    scalar(&a, M0, S0, acc0, scratch);
    char name[160];
    snprintf(name, sizeof name, "%s/%s D%d heads %d cells %d window %d cap %g%s",
             herd_type_name(t->tk), herd_type_name(t->tv), D, nh, n, t->swa, t->cap,
             t->alibi ? " alibi" : "");
    /* The reference against double: F32 sums of ≤ 1,000 terms of size ~1;
     * an F16 V's accumulator is rounded to F16 at every cell (ggml's), which
     * leaves ~1e-3 of the output's ±1 range at 1,000 cells. */
    const double wr = worst(&a, S0, acc0, ref), tol = t->tv == HERD_TYPE_F16 ? 4e-3 : 2e-5;
    CHECKF(wr < tol, "scalar, %s: |out − exact| %.3g", name, wr);
    for (int h = 0; h < nh; h++)
        CHECKF(M0[h] == (float)Mx[h] || fabs(M0[h] - Mx[h]) < 1e-5 * (1 + fabs(Mx[h])),
               "scalar, %s: head %d max %.9g vs %.9g", name, h, M0[h], Mx[h]);
    /* The SIMD kernel against the reference: the same bits. */
    if (fast) {
        fast(&a, M1, S1, acc1, scratch);
        for (int h = 0; h < nh; h++) {
            CHECKF(!memcmp(&M1[h], &M0[h], sizeof(float)) && !memcmp(&S1[h], &S0[h], sizeof(float)),
                   "%s, %s: head %d max %.9g vs %.9g, sum %.9g vs %.9g", level, name, h, M1[h],
                   M0[h], S1[h], S0[h]);
            CHECKF(!memcmp(acc1[h], acc0[h], sizeof(float) * D), "%s, %s: head %d accumulator",
                   level, name, h);
        }
    }
    for (int h = 0; h < nh; h++) free(acc0[h]), free(acc1[h]);
    free(ref), free(scratch), free(kc), free(vc), free(cells), free(cpos), free(row);
}

/* A run of cells the token sees none of (all in its future): an empty state. */
static void check_empty(herd_attn_dec_fn fn, const char *level)
{
    const int D = 64, n = 40;
    uint16_t *kv = calloc((size_t)n * D, sizeof(uint16_t));
    int32_t cells[40], cpos[40];
    for (int c = 0; c < n; c++) cells[c] = c, cpos[c] = 100 + c;
    float qv[64] = {0}, slope[1] = {0}, M, S, *acc = malloc(sizeof(float) * D);
    const float *q[1] = {qv};
    const herd_attn_dec_args a = {.q = q,
                                  .nh = 1,
                                  .head_dim = D,
                                  .k = (const uint8_t *)kv,
                                  .v = (const uint8_t *)kv,
                                  .row_k = 2 * D,
                                  .row_v = 2 * D,
                                  .type_k = HERD_TYPE_F16,
                                  .type_v = HERD_TYPE_F16,
                                  .cells = cells,
                                  .cell_pos = cpos,
                                  .n_cells = n,
                                  .pos = 50,
                                  .scale = 0.125f,
                                  .slope = slope};
    void *scratch = malloc(herd_attn_dec_scratch_size(D));
    for (int i = 0; i < D; i++) acc[i] = 1;
    fn(&a, &M, &S, &acc, scratch);
    bool zero = true;
    for (int i = 0; i < D; i++) zero &= acc[i] == 0.0f;
    CHECKF(M == -INFINITY && S == 0.0f && zero, "%s: nothing visible gives M %g S %g", level, M, S);
    free(kv), free(acc), free(scratch);
}

int main(void)
{
    herd_tensor_init();
    herd_attn_dec_fn fast = NULL, scalar;
    CHECK(herd_attn_dec_kernel("scalar", &scalar));
    check_empty(scalar, "scalar");
    if (!herd_attn_dec_kernel("avx512", &fast) || !__builtin_cpu_supports("avx512f") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl") ||
        !__builtin_cpu_supports("avx512dq")) {
        fast = NULL;
        test_skip("avx512 decode kernel: this build or CPU lacks it");
    } else {
        check_empty(fast, "avx512");
    }
    static const uint32_t types[][2] = {
        {HERD_TYPE_F16, HERD_TYPE_F16},   {HERD_TYPE_F32, HERD_TYPE_F32},
        {HERD_TYPE_Q8_0, HERD_TYPE_Q8_0}, {HERD_TYPE_Q4_0, HERD_TYPE_Q4_0},
        {HERD_TYPE_BF16, HERD_TYPE_BF16}, {HERD_TYPE_Q8_0, HERD_TYPE_F16},
        {HERD_TYPE_F16, HERD_TYPE_Q4_0}};
    static const int lens[] = {1, 5, 16, 17, 33, 100, 1000};
    static const int heads[] = {1, 3, 4, 8};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (size_t hi = 0; hi < sizeof heads / sizeof heads[0]; hi++) {
                dec_case t = {.tk = types[ti][0],
                              .tv = types[ti][1],
                              .D = li % 2 ? 128 : 64,
                              .nh = heads[hi],
                              .n = lens[li]};
                run_case(&t, fast, "avx512");
                t.swa = 7, t.cap = 0;
                run_case(&t, fast, "avx512");
                t.swa = 0, t.cap = 30.0f, t.alibi = true;
                run_case(&t, fast, "avx512");
            }
    /* head sizes: 256 (Gemma), 80 (phi-2: not a multiple of 64, one
     * accumulator), 72 (not a multiple of 16: the reference) */
    const int Ds[] = {256, 80, 72};
    for (int i = 0; i < 3; i++) {
        dec_case t = {.tk = HERD_TYPE_F16, .tv = HERD_TYPE_F16, .D = Ds[i], .nh = 4, .n = 300};
        run_case(&t, fast, "avx512");
        t.tk = t.tv = HERD_TYPE_Q8_0;
        if (Ds[i] % 32 == 0) run_case(&t, fast, "avx512");
    }
    return test_report();
}
