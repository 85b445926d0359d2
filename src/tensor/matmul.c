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
 *               With AMX (kernels_amx.c), batches of 16 tokens or more go to
 *               the tile unit instead; without it, to the panel products
 *               of kernels_mm.c (AVX-512 VNNI or AVX2).
 *
 * Threads come from the process's one pool (util/pool.h), whose workers
 * sleep soon after a job: OpenMP's spin for long, which on a shared machine
 * takes the core from the thread they wait for.
 */
#include "tensor/kernels.h"

#include "util/pool.h"

#include <stdatomic.h>
#include <string.h>

/* Batches of at least this many tokens go to the AMX kernels where there
 * are some: a tile is 16 tokens, and below that the AVX-512 tiles win. */
#define AMX_MIN_TOK 16
/* The same for the panel products without AMX (kernels_mm.c): unpacking a
 * panel costs about as much as multiplying it with ten tokens. */
#ifndef MM_MIN_TOK
#define MM_MIN_TOK 16
#endif

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
    const herd_gemm_kernel *k = &herd_gemm_kernels[wtype];
    if (k->gemv) {
        const uint64_t g = (uint64_t)((n_in + k->gemv_pack_block - 1) / k->gemv_pack_block) *
                           k->gemv_pack_block_bytes;
        if (g > bytes) bytes = g;
    }
    if (herd_amx_enabled && n_tok >= AMX_MIN_TOK) {
        const size_t amx = herd_amx_work_size(wtype, n_in, n_tok);
        if (amx > bytes) bytes = amx;
    }
    if (n_tok >= MM_MIN_TOK) {
        const size_t mm = herd_mm_work_size(wtype, n_in, n_tok);
        if (mm > bytes) bytes = mm;
    }
    return (size_t)bytes;
}

/* One matrix product, as the pool's jobs see it. */
typedef struct {
    const herd_type_traits *t, *vt;
    const herd_gemm_kernel *k;
    const uint8_t *w, *act;
    const float *x;
    uint8_t *work;
    float *y;
    int64_t n_in, n_rows, n_tok, n_blocks, rb;
    size_t w_stride, a_stride, a_step;
    atomic_int next; /* the next row block to take (batches) */
} mm_job;

/* Convert the activation rows, split over the threads by token. */
static void convert_job(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    const herd_gemm_kernel *k = j->k;
    const herd_from_float_fn f = k->gemm && k->pack ? k->pack : j->vt->from_float;
    for (int64_t t = ith; t < j->n_tok; t += nth)
        f(j->x + t * j->n_in, j->work + (size_t)t * j->a_stride, j->n_in);
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

/* Decode tunables (measured on the 2-core machine, README "Measured"):
 * ranges per thread (16 is 15% slower on TinyLlama; 1 is 10% slower on 7B),
 * the shortest range, and software prefetch of the next rows for the float
 * types without a gemv, F32 and BF16 (20% slower: their kernels do little
 * per byte, the hardware prefetchers do better alone). Override with -D for experiments. */
#ifndef DECODE_SPLIT
#define DECODE_SPLIT 4
#endif
#ifndef DECODE_MIN_ROWS
#define DECODE_MIN_ROWS 64
#endif
#ifndef PF_FLOAT
#define PF_FLOAT 0
#endif
#ifndef PF_ROW_BYTES
#define PF_ROW_BYTES 2048
#endif

/* Rows [r0, r1) of a decode product. */
static void decode_rows(const mm_job *j, int64_t r0, int64_t r1)
{
    const herd_gemm_fn gemm = j->k->gemm;
    if (r1 <= r0) return;
    if (j->k->gemv) {
        j->k->gemv(j->n_in, j->w + (size_t)r0 * j->w_stride, j->w_stride, r1 - r0, j->act,
                   j->y + r0);
    } else if (gemm) {
        /* Four rows per pass share the activation loads: rows r, r + h,
         * r + 2h, r + 3h of the range, four sequential streams. One stream
         * keeps too few cache misses in flight for the memory's latency;
         * four read about 1.5 times as fast. */
        const int64_t h = (r1 - r0) / 4;
        /* The next row of each stream is asked for in advance (up to 2 KB
         * of it): the hardware prefetchers alone leave a core at 12 GB/s,
         * software prefetch brings it to 15 or more. Float types, whose
         * kernels spend less per byte, do better without. */
        const size_t pf_bytes = !j->t->is_quantized && !PF_FLOAT ? 0
                                : j->w_stride < PF_ROW_BYTES     ? j->w_stride
                                                                 : PF_ROW_BYTES;
        float s[4];
        for (int64_t r = r0; r < r0 + h; r++) {
            if (r + 1 < r0 + h && pf_bytes)
                for (int k = 0; k < 4; k++) {
                    const uint8_t *nx = j->w + (size_t)(r + 1 + k * h) * j->w_stride;
                    for (size_t o = 0; o < pf_bytes; o += 64) __builtin_prefetch(nx + o, 0, 3);
                }
            gemm(j->n_in, j->w + (size_t)r * j->w_stride, (size_t)h * j->w_stride, 4, j->act,
                 j->a_step, 1, s, 4);
            for (int k = 0; k < 4; k++) j->y[r + k * h] = s[k];
        }
        for (int64_t r = r0 + 4 * h; r < r1; r++)
            gemm(j->n_in, j->w + (size_t)r * j->w_stride, j->w_stride, 1, j->act, j->a_step, 1,
                 j->y + r, (size_t)j->n_rows);
    } else {
        for (int64_t r = r0; r < r1; r++)
            j->t->vec_dot(j->n_in, j->y + r, j->w + (size_t)r * j->w_stride, j->act);
    }
}

/* Decode: ranges of rows (each weight byte streamed from memory once, by one
 * thread), handed out from a shared counter: a few per thread, so that on a
 * busy machine a thread that was descheduled does not hold the others up
 * for its whole share. Results do not depend on who takes a range. */
static void decode_job(void *arg, int ith, int nth)
{
    (void)ith, (void)nth;
    mm_job *j = arg;
    for (int64_t c; (c = atomic_fetch_add(&j->next, 1)) < j->n_blocks;) {
        const int64_t r0 = c * j->rb, r1 = r0 + j->rb < j->n_rows ? r0 + j->rb : j->n_rows;
        decode_rows(j, r0, r1);
    }
}

/* Batch: row blocks of rb rows, each walking all tokens in tiles of
 * HERD_GEMM_MAX_T. rb is small enough to give every thread work and to keep
 * a block's weights in L2 across the tokens. Blocks are handed out one at a
 * time: on a busy machine a thread that was descheduled does not hold up the
 * others' share. Every output is computed the same way whichever thread or
 * tile takes it, so results do not depend on the thread count. */
static void batch_job(void *arg, int ith, int nth)
{
    (void)ith, (void)nth;
    mm_job *j = arg;
    const int64_t R = HERD_GEMM_MAX_R, T = HERD_GEMM_MAX_T;
    const herd_gemm_fn gemm = j->k->gemm;
    for (int64_t blk; (blk = atomic_fetch_add(&j->next, 1)) < j->n_blocks;) {
        const int64_t r0 = blk * j->rb, r1 = r0 + j->rb < j->n_rows ? r0 + j->rb : j->n_rows;
        for (int64_t t0 = 0; t0 < j->n_tok; t0 += T) {
            const int nt = (int)(j->n_tok - t0 < T ? j->n_tok - t0 : T);
            for (int64_t r = r0; r < r1; r += R) {
                const int nr = (int)(r1 - r < R ? r1 - r : R);
                const uint8_t *wr = j->w + (size_t)r * j->w_stride;
                const uint8_t *at = j->act + (size_t)t0 * j->a_step;
                float *s = j->y + (size_t)t0 * (size_t)j->n_rows + r;
                if (gemm)
                    gemm(j->n_in, wr, j->w_stride, nr, at, j->a_step, nt, s, (size_t)j->n_rows);
                else
                    tile_vec_dot(j->t->vec_dot, j->n_in, wr, j->w_stride, nr, at, j->a_step, nt, s,
                                 (size_t)j->n_rows);
            }
        }
    }
}

/* The one-token product of j (fields w … w_stride set) in ranges of rows:
 * at least 64 (long enough streams), about four per thread, whole groups of
 * 4 streams. The activations are converted into act unless packed (then act
 * already holds them, converted the same way for the same x). */
static void decode_setup(mm_job *j, uint32_t wtype, uint8_t *act, bool packed, int n_threads)
{
    const herd_gemm_kernel *k = j->k;
    j->a_stride = act_row_bytes(j->t, wtype, j->n_in);
    const bool convert = k->gemv || j->a_stride != 0;
    j->act = convert ? act : (const uint8_t *)j->x;
    j->a_step = convert ? j->a_stride : (size_t)j->n_in * 4;
    /* One row converts in about a microsecond: cheaper here than as a job
     * of its own. */
    if (convert && !packed) {
        j->work = act;
        if (k->gemv)
            k->gemv_pack(j->x, act, j->n_in);
        else
            convert_job(j, 0, 1);
    }
    int64_t rb = n_threads > 1
                     ? (j->n_rows + DECODE_SPLIT * n_threads - 1) / (DECODE_SPLIT * n_threads)
                     : j->n_rows;
    if (rb < DECODE_MIN_ROWS) rb = DECODE_MIN_ROWS;
    j->rb = (rb + 3) / 4 * 4;
    j->n_blocks = (j->n_rows + j->rb - 1) / j->rb;
    atomic_init(&j->next, 0);
}

/* Bytes of one token's converted activations (decode_setup), rounded to a
 * cache line; 0 when X is used as it is. */
static size_t decode_act_bytes(uint32_t wtype, int64_t n_in)
{
    const herd_gemm_kernel *k = &herd_gemm_kernels[wtype];
    size_t b = act_row_bytes(herd_type(wtype), wtype, n_in);
    if (k->gemv)
        b = (size_t)((n_in + k->gemv_pack_block - 1) / k->gemv_pack_block) *
            k->gemv_pack_block_bytes;
    return (b + 63) & ~(size_t)63;
}

void herd_matmul(const void *w, uint32_t wtype, int64_t n_in, int64_t n_rows, const float *x,
                 int64_t n_tok, float *y, void *work, int n_threads)
{
    herd_tensor_init();
    const herd_type_traits *t = herd_type(wtype);
    if (!t || !t->vec_dot || n_rows <= 0 || n_tok <= 0) return;
    if (n_threads < 1) n_threads = 1;
    /* Small products are not worth waking threads for. */
    if ((uint64_t)n_rows * (uint64_t)n_tok * (uint64_t)n_in < 32768) n_threads = 1;
    if (herd_amx_enabled && n_tok >= AMX_MIN_TOK && herd_amx_supports(wtype, n_in) &&
        herd_amx_matmul(w, wtype, n_in, n_rows, x, n_tok, y, work, n_threads))
        return;
    if (n_tok >= MM_MIN_TOK && herd_mm_supports(wtype, n_in) &&
        herd_mm_matmul(w, wtype, n_in, n_rows, x, n_tok, y, work, n_threads))
        return;
    mm_job j = {.t = t,
                .vt = herd_type(t->vec_dot_type),
                .k = &herd_gemm_kernels[wtype],
                .w = w,
                .x = x,
                .work = work,
                .y = y,
                .n_in = n_in,
                .n_rows = n_rows,
                .n_tok = n_tok,
                .w_stride = herd_row_bytes(wtype, n_in)};
    if (n_tok == 1) {
        decode_setup(&j, wtype, work, false, n_threads);
        herd_parallel(n_threads, decode_job, &j);
        return;
    }
    j.a_stride = act_row_bytes(t, wtype, n_in);
    const bool convert = j.a_stride != 0;
    j.act = convert ? (const uint8_t *)work : (const uint8_t *)x;
    j.a_step = convert ? j.a_stride : (size_t)n_in * 4;
    if (convert) herd_parallel(n_threads, convert_job, &j);
    const int64_t R = HERD_GEMM_MAX_R;
    int64_t rb = (n_rows + n_threads - 1) / n_threads;
    if (rb > 64) rb = 64;
    j.rb = (rb + R - 1) / R * R;
    j.n_blocks = (n_rows + j.rb - 1) / j.rb;
    atomic_init(&j.next, 0);
    herd_parallel(n_threads, batch_job, &j);
}

/* ------------------------------------------------------------ many products */

/* Up to MANY products of one token, their row ranges numbered one after
 * another and handed out from one counter. */
#define MANY 32
typedef struct {
    mm_job j[MANY];
    int64_t first[MANY + 1]; /* the number of item i's first range */
    int n;
    atomic_int next;
} many_job;

static void many_job_run(void *arg, int ith, int nth)
{
    (void)ith, (void)nth;
    many_job *m = arg;
    int i = 0;
    for (int64_t c; (c = atomic_fetch_add(&m->next, 1)) < m->first[m->n];) {
        while (c >= m->first[i + 1]) i++; /* ranges are taken in order */
        const mm_job *j = &m->j[i];
        const int64_t r0 = (c - m->first[i]) * j->rb;
        decode_rows(j, r0, r0 + j->rb < j->n_rows ? r0 + j->rb : j->n_rows);
    }
}

size_t herd_matvec_work_size(const herd_matvec *v, int n)
{
    herd_tensor_init();
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        const herd_type_traits *t = herd_type(v[i].wtype);
        if (!t || !t->vec_dot || v[i].n_in <= 0) return 0;
        bytes += decode_act_bytes(v[i].wtype, v[i].n_in);
    }
    return bytes > SIZE_MAX ? 0 : (size_t)bytes;
}

/* The same x for the same conversion: one packing serves both. */
static bool same_act(const herd_matvec *a, const herd_matvec *b)
{
    const herd_gemm_kernel *ka = &herd_gemm_kernels[a->wtype], *kb = &herd_gemm_kernels[b->wtype];
    if (a->x != b->x || a->n_in != b->n_in) return false;
    if (a->wtype == b->wtype) return true;
    if (ka->gemv || kb->gemv)
        return ka->gemv_pack == kb->gemv_pack && ka->gemv_pack_block == kb->gemv_pack_block &&
               ka->gemv_pack_block_bytes == kb->gemv_pack_block_bytes;
    return false;
}

static void matvec_chunk(const herd_matvec *v, int n, uint8_t *work, int n_threads)
{
    many_job m;
    m.n = n;
    m.first[0] = 0;
    uint64_t size = 0;
    for (int i = 0; i < n; i++) size += (uint64_t)v[i].n_rows * (uint64_t)v[i].n_in;
    if (size < 32768) n_threads = 1;
    for (int i = 0; i < n; i++) {
        const herd_type_traits *t = herd_type(v[i].wtype);
        m.j[i] = (mm_job){.t = t,
                          .vt = herd_type(t->vec_dot_type),
                          .k = &herd_gemm_kernels[v[i].wtype],
                          .w = v[i].w,
                          .x = v[i].x,
                          .y = v[i].y,
                          .n_in = v[i].n_in,
                          .n_rows = v[i].n_rows,
                          .n_tok = 1,
                          .w_stride = herd_row_bytes(v[i].wtype, v[i].n_in)};
        int s = 0;
        while (s < i && !same_act(&v[s], &v[i])) s++;
        if (s < i) {
            decode_setup(&m.j[i], v[i].wtype, (uint8_t *)m.j[s].act, true, n_threads);
        } else {
            decode_setup(&m.j[i], v[i].wtype, work, false, n_threads);
            work += decode_act_bytes(v[i].wtype, v[i].n_in);
        }
        m.first[i + 1] = m.first[i] + m.j[i].n_blocks;
    }
    atomic_init(&m.next, 0);
    herd_parallel(n_threads, many_job_run, &m);
}

void herd_matvec_many(const herd_matvec *v, int n, void *work, int n_threads)
{
    herd_tensor_init();
    for (int i = 0; i < n; i++) {
        const herd_type_traits *t = herd_type(v[i].wtype);
        if (!t || !t->vec_dot || v[i].n_rows <= 0) return;
    }
    if (n_threads < 1) n_threads = 1;
    uint8_t *wb = work;
    for (int i0 = 0; i0 < n; i0 += MANY) {
        const int c = n - i0 < MANY ? n - i0 : MANY;
        matvec_chunk(v + i0, c, wb, n_threads);
        wb += herd_matvec_work_size(v + i0, c);
    }
}

void herd_get_row(const void *w, uint32_t wtype, int64_t n_in, int64_t r, float *out)
{
    herd_tensor_init();
    const herd_type_traits *t = herd_type(wtype);
    if (!t || !t->to_float) return;
    t->to_float((const uint8_t *)w + (size_t)r * herd_row_bytes(wtype, n_in), out, n_in);
}
