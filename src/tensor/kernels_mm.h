/*
 * kernels_mm.h — internal: the layouts shared by the panel products for
 * prompts without AMX (kernels_mm.c drives them; kernels_avx512_mm.c and
 * kernels_avx2_mm.c hold the vector tiles).
 *
 * A vector holds P weight ROWS (P = 16 with AVX-512, 8 with AVX2), so the
 * float work of a block is shared by P outputs and outputs need no
 * horizontal sums. The weights are unpacked per panel of P rows into a
 * per-thread buffer; the activations are packed once per product.
 *
 * Weight panel (P rows), as unsigned bytes for vpdpbusd / vpmaddubsw:
 *   Q4_0, Q8_0  per block of 32: element k of row r at byte 4·P·(k/4) +
 *               4·r + k%4 (Q4_0 nibbles 0..15, Q8_0 q + 128), then the P
 *               rows' F32 scales at 32·P.                       (36·P bytes)
 *   K-quants    per super-block: sub-block j of 32 at 32·P·j, laid out as a
 *               block above (Q6_K's sub-block j of 16 at 16·P·j); then at
 *               256·P per row and sub-block the F32 d·sc_j (4·P·j + 4·r;
 *               16 of them for Q6_K, 8 for Q4_K/Q5_K) and, for Q4_K/Q5_K,
 *               dmin·m_j at 288·P + 4·P·j + 4·r.                (320·P bytes)
 *   Q2_K, Q3_K  as Q6_K: sub-block j of 16 at 16·P·j (Q2_K q 0..3, Q3_K
 *               q + 4, 0..7), d·sc_j at 256·P + 4·P·j + 4·r (Q3_K's sc
 *               signed); Q2_K also dmin·m_j at 320·P + 4·P·j + 4·r.
 *                                               (320·P bytes, Q2_K 384·P)
 * Activations, per token:
 *   Q4_0, Q8_0  per block: the Q8_0 quants, the int32 correction −8·Σq
 *               (Q4_0: nibbles are q + 8) or −128·Σq (Q8_0), the F32 d.
 *   K-quants    per super-block: the Q8_K quants, d, d·(sum of each 32
 *               quants) as 8 F32, −32·(sum of each 16) as 16 int32 (Q6_K's
 *               quants are stored as q + 32; Q3_K's as q + 4, so −4·sum;
 *               Q2_K's need none and take d·(sum of each 16) as 16 F32 at
 *               MM_AK_BSD instead).
 * So every block's (sub-block's) integer sum is ggml's exactly; only the F32
 * steps after it are in another order.
 *
 * F16 weights (kernels_mm_f16.c drives them) have panels of their own:
 * f16_rows rows (two or more vectors: one vector of rows per broadcast
 * activation would load as much as it multiplies), unpacked to F32 one
 * chunk of MM_F16_KC elements at a time, element k of row r at float
 * k·f16_rows + r (the chunk stays in L1 while the tokens go by). The
 * activations are F32 rows holding F16 values (vec_dot_type F16: rounded,
 * then widened once). Each output sums its chunk's products in element
 * order in one lane, and the chunks' sums in chunk order.
 */
#ifndef HERD_KERNELS_MM_H
#define HERD_KERNELS_MM_H

#include "tensor/kernels.h"

enum {
    HERD_MM_Q4_0,
    HERD_MM_Q8_0,
    HERD_MM_K4, /* the K-quants from here on */
    HERD_MM_K5,
    HERD_MM_K6,
    HERD_MM_K3,
    HERD_MM_K2,
    HERD_MM_KINDS
};

#define MM_WU_Q32(P) (36 * (P))
#define MM_WU_K(P)   (320 * (P))
#define MM_WU_K2(P)  (384 * (P))
#define MM_AU_Q32    40
#define MM_AU_K      384
#define MM_AK_D      256
#define MM_AK_BSD    260
#define MM_AK_C16    292

/* P rows × nt tokens (nt fixed per function): y[t·ys + r] for r < nr, over
 * nu blocks (super-blocks) of the panel wp and the activations a (token
 * rows as bytes apart). */
typedef void (*herd_mm_tile_fn)(const uint8_t *wp, int64_t nu, const uint8_t *a, size_t as,
                                float *y, size_t ys, int nr);

/* F16: f16_rows rows × nt tokens over nk elements of a chunk wp, the
 * activations a (token rows as floats apart, at the chunk's first element):
 * y[t·ys + r] for r < nr, stored (add false: the first chunk) or added. */
typedef void (*herd_mm_f16_fn)(const float *wp, int64_t nk, const float *a, size_t as, float *y,
                               size_t ys, int nr, bool add);

#define MM_F16_MAX_TOK 8

/* One vector ISA's tiles: tiles[kind][k] does 1 << k tokens; NULL where it
 * has none (a kind with no 1-token tile is not supported). f16[k] does k
 * tokens, 1 ≤ k ≤ f16_tok; f16_rows 0: no F16 panel product. */
typedef struct herd_mm_isa {
    const char *name;
    int rows; /* P */
    herd_mm_tile_fn tiles[HERD_MM_KINDS][5];
    int f16_rows, f16_tok;
    herd_mm_f16_fn f16[MM_F16_MAX_TOK + 1];
} herd_mm_isa;

/* The F16 panel product (kernels_mm_f16.c), for the isa kernels_mm.c
 * selected; kernels_mm.c hands F16 over to these. */
bool herd_mm_f16_supports(const herd_mm_isa *isa, int64_t n_in);
size_t herd_mm_f16_work_size(int64_t n_in, int64_t n_tok);
bool herd_mm_f16_matmul(const herd_mm_isa *isa, const void *w, int64_t n_in, int64_t n_rows,
                        const float *x, int64_t n_tok, float *y, void *work, int n_threads);

extern const herd_mm_isa herd_mm_isa_avx512;   /* kernels_avx512_mm.c */
extern const herd_mm_isa herd_mm_isa_avx2;     /* kernels_avx2_mm.c */
extern const herd_mm_isa herd_mm_isa_avx2vnni; /* kernels_avx2_mm.c, AVX-VNNI */

#endif
