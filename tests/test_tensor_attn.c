/*
 * test_tensor_attn.c — herd_attn (src/tensor/attn.c) against attention
 * computed in double from the same cache values: causal masks, sliding
 * windows, ALiBi, Gemma 2's score soft-cap, F16 and F32 caches, head sizes that take the vector
 * path and one that does not, cells in any order and groups of many queries.
 */
#include "helpers.h"
#include "tensor/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) / 16777216.0) * 2.0f - 1.0f;
}

static double cache_at(const uint8_t *row, uint32_t type, int i)
{
    if (type == HERD_TYPE_F16) {
        uint16_t h;
        memcpy(&h, row + 2 * i, 2);
        return herd_f16_to_f32(h);
    }
    float f;
    memcpy(&f, row + 4 * i, 4);
    return f;
}

static float g_softcap; /* soft-cap of the cases run (0: none) */

static void check_case(uint32_t type, int D, int nq, int n_cells, int swa, float slope)
{
    const size_t esz = type == HERD_TYPE_F16 ? 2 : 4, row_bytes = esz * (size_t)D + 8;
    uint8_t *k = malloc(row_bytes * (size_t)n_cells), *v = malloc(row_bytes * (size_t)n_cells);
    int32_t *cells = malloc((size_t)n_cells * sizeof *cells),
            *pos = malloc((size_t)n_cells * sizeof *pos);
    float *qbuf = malloc((size_t)nq * D * sizeof(float)),
          *obuf = malloc((size_t)nq * D * sizeof(float));
    const float **q = malloc((size_t)nq * sizeof *q);
    float **out = malloc((size_t)nq * sizeof *out);
    int32_t *q_pos = malloc((size_t)nq * sizeof *q_pos);
    for (int c = 0; c < n_cells; c++) {
        pos[c] = c;
        cells[c] = c;
        for (int i = 0; i < D; i++) {
            const float kv[2] = {frand() * 2, frand()};
            for (int w = 0; w < 2; w++) {
                uint8_t *row = (w ? v : k) + (size_t)c * row_bytes;
                if (type == HERD_TYPE_F16) {
                    const uint16_t h = herd_f32_to_f16(kv[w]);
                    memcpy(row + 2 * i, &h, 2);
                } else {
                    memcpy(row + 4 * i, &kv[w], 4);
                }
            }
        }
    }
    /* Visit the cells in a shuffled order: the result must not depend on it. */
    for (int c = n_cells - 1; c > 0; c--) {
        const int r = (int)(rng % (uint64_t)(c + 1));
        const int32_t t = cells[c];
        cells[c] = cells[r];
        cells[r] = t;
        frand();
    }
    for (int j = 0; j < nq; j++) {
        q[j] = qbuf + (size_t)j * D;
        out[j] = obuf + (size_t)j * D;
        q_pos[j] = (int)(rng % (uint64_t)n_cells);
        frand();
        for (int i = 0; i < D; i++) qbuf[(size_t)j * D + i] = frand();
    }
    const float scale = 1.0f / sqrtf((float)D);
    herd_attn_args a = {.q = q,
                        .out = out,
                        .q_pos = q_pos,
                        .nq = nq,
                        .head_dim = D,
                        .k = k,
                        .v = v,
                        .row_bytes = row_bytes,
                        .type = type,
                        .cells = cells,
                        .cell_pos = pos,
                        .n_cells = n_cells,
                        .scale = scale,
                        .slope = slope,
                        .swa = swa,
                        .softcap = g_softcap};
    void *scratch = malloc(herd_attn_scratch_size(D, nq));
    herd_attn(&a, scratch);
    double worst = 0;
    for (int j = 0; j < nq; j++) {
        double *sc = malloc((size_t)n_cells * sizeof *sc), M = -INFINITY, S = 0;
        for (int c = 0; c < n_cells; c++) {
            const int kp = pos[c], qp = q_pos[j];
            if (kp > qp || (swa > 0 && kp <= qp - swa)) {
                sc[c] = -INFINITY;
                continue;
            }
            double s = 0;
            for (int i = 0; i < D; i++)
                s += (double)q[j][i] * cache_at(k + (size_t)c * row_bytes, type, i);
            if (g_softcap != 0) s = g_softcap * tanh(s * scale / g_softcap) / scale;
            sc[c] = s * scale +
                    (slope != 0 ? slope * herd_f16_to_f32(herd_f32_to_f16(-(float)(qp - kp))) : 0);
            if (sc[c] > M) M = sc[c];
        }
        for (int c = 0; c < n_cells; c++) S += sc[c] == -INFINITY ? 0 : exp(sc[c] - M);
        for (int i = 0; i < D; i++) {
            double o = 0;
            for (int c = 0; c < n_cells; c++)
                if (sc[c] != -INFINITY)
                    o += exp(sc[c] - M) * cache_at(v + (size_t)c * row_bytes, type, i);
            o /= S;
            const double e = fabs(o - out[j][i]);
            if (e > worst) worst = e;
        }
        free(sc);
    }
    CHECKF(worst < 2e-5, "attn %s D=%d nq=%d cells=%d swa=%d slope=%g softcap=%g: max error %g",
           herd_type_name(type), D, nq, n_cells, swa, slope, g_softcap, worst);
    free(scratch);
    free(k);
    free(v);
    free(cells);
    free(pos);
    free(qbuf);
    free(obuf);
    free(q);
    free(out);
    free(q_pos);
}

int main(void)
{
    herd_tensor_init();
    printf("kernel level: %s\n", herd_tensor_simd_level());
    static const uint32_t types[] = {HERD_TYPE_F16, HERD_TYPE_F32};
    for (int t = 0; t < 2; t++) {
        check_case(types[t], 64, 1, 1, 0, 0);
        check_case(types[t], 64, 17, 100, 0, 0);
        check_case(types[t], 64, 40, 257, 0, 0);
        check_case(types[t], 128, 9, 70, 0, 0);
        check_case(types[t], 64, 33, 130, 8, 0);      /* sliding window */
        check_case(types[t], 64, 20, 90, 0, 0.0625f); /* ALiBi */
        check_case(types[t], 80, 12, 75, 0, 0);       /* not a multiple of 16: scalar path */
        check_case(types[t], 16, 5, 33, 5, 0.5f);
        /* Soft-capped scores (Gemma 2): a cap small enough to bite. */
        g_softcap = 0.5f;
        check_case(types[t], 64, 40, 130, 0, 0);
        check_case(types[t], 64, 33, 130, 8, 0);
        check_case(types[t], 80, 12, 75, 0, 0);
        g_softcap = 0;
    }
    return test_report();
}
