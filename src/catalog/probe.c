/*
 * probe.c — measure this machine for the performance model (predict.h).
 *
 * Every figure is timed through the library's own code: herd_matmul for the
 * products (so the kernels, the tiling and the thread pool are the ones a
 * model runs with), herd_attn for attention, herd_parallel for the read
 * bandwidth. Weights are one quantized row of random values copied over a
 * buffer much larger than the caches: the kernels' speed does not depend on
 * the values, and quantizing 128 MB would take longer than the probe.
 * Each figure is the best of a few passes, timed on the wall clock (the
 * best pass is the one the neighbours disturbed least); HERD_PROBE_CLOCK=cpu
 * times CPU seconds instead, for a busy machine (clock_s below). CPU time
 * divided by the threads was the default until bench/predict showed it
 * predicting 2-thread decoding at 3.5x what herd bench measured: a worker
 * that sleeps while it waits for its partner adds nothing to CPU time.
 */
#include "catalog/predict.h"
#include "tensor/tensor.h"
#include "util/pool.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_IN      4096
#define GEMM_ROWS 512
#define GEMM_TOK  512
#define ATT_DIM   128
#define ATT_CELLS 4096
#define PASSES    3

static const uint32_t PROBE_TYPES[] = {HERD_TYPE_F16,  HERD_TYPE_Q8_0, HERD_TYPE_Q4_0,
                                       HERD_TYPE_Q4_K, HERD_TYPE_Q5_K, HERD_TYPE_Q6_K};

void herd_probe_identity(char *cpu, size_t cpu_cap, char *herd, size_t herd_cap)
{
    char name[96] = "unknown CPU", line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(name, sizeof name, "%s", strchr(line, ':') + 2);
            name[strcspn(name, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    snprintf(cpu, cpu_cap, "%s, %ld cores", name, sysconf(_SC_NPROCESSORS_ONLN));
    herd_tensor_init();
#ifdef HERD_VERSION
    snprintf(herd, herd_cap, "herd %s %s probe %d", HERD_VERSION, herd_tensor_simd_level(),
             HERD_PROBE_SCHEMA);
#else
    snprintf(herd, herd_cap, "herd %s probe %d", herd_tensor_simd_level(), HERD_PROBE_SCHEMA);
#endif
}

/* The probe's clock. The wall clock by default: with several threads the
 * time a product takes is its slowest thread's, waits at the barrier
 * included, and that is what a decode step sees. HERD_PROBE_CLOCK=cpu (for a
 * busy machine, with bench/predict --cpu) takes the process's CPU seconds
 * divided by the threads instead, which the neighbours do not stretch but
 * which leaves out a thread's waits for its partner: meaningful at 1 thread. */
static bool cpu_clock(void)
{
    static int cpu = -1; /* read once: the clock is asked for around every pass */
    if (cpu < 0) {
        const char *c = getenv("HERD_PROBE_CLOCK");
        cpu = c && !strcmp(c, "cpu");
    }
    return cpu;
}

/* Seconds on the probe's clock, per thread for the CPU clock (divide by nth). */
static double clock_s(void)
{
    struct timespec ts;
    clock_gettime(cpu_clock() ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds are summed over threads; wall seconds are not. */
static double per_thread(double dt, int nth)
{
    return cpu_clock() ? dt / nth : dt;
}

/* The weights the bandwidth and one-token figures stream: twice the L3 and
 * at least 128 MB, so that they come from memory as a model's do (some
 * server parts and VMs have an L3 of 256-512 MB: this one reports 508 MB,
 * where 128 MB, fitting in it, measured 2.4x the memory's speed). */
static size_t gemv_bytes(void)
{
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    size_t b = (size_t)128 << 20;
    if (l3 > 0 && 2 * (size_t)l3 > b) b = 2 * (size_t)l3;
    const size_t cap = (size_t)2 << 30;
    return b < cap ? b : cap;
}

/* ------------------------------------------------------- bandwidth */

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum[HERD_MAX_THREADS];
} read_job;

static void read_part(void *arg, int ith, int nth)
{
    read_job *j = arg;
    size_t lo = j->n * (size_t)ith / (size_t)nth, hi = j->n * (size_t)(ith + 1) / (size_t)nth;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = lo; i + 4 <= hi; i += 4)
        s0 += j->p[i], s1 += j->p[i + 1], s2 += j->p[i + 2], s3 += j->p[i + 3];
    j->sum[ith] = s0 + s1 + s2 + s3;
}

static double read_gbs(const void *buf, size_t bytes, int nth)
{
    read_job j = {.p = buf, .n = bytes / 8};
    double best = 0;
    for (int r = 0; r < PASSES; r++) {
        double t0 = clock_s();
        herd_parallel(nth, read_part, &j);
        double dt = per_thread(clock_s() - t0, nth);
        if (dt > 0 && bytes / dt / 1e9 > best) best = bytes / dt / 1e9;
    }
    return best;
}

/* One empty dispatch of the pool: what a parallel step costs beyond its
 * work (the workers woken, the caller waiting for the last). */
static void nothing(void *arg, int ith, int nth)
{
    (void)arg, (void)ith, (void)nth;
}

/* The fixed costs are microseconds, timed one call at a time: the lower
 * quartile of FIXED_RUNS calls. A decode step pays the typical cost, not the
 * luckiest, but a call a descheduled worker stretched (a busy machine: one in
 * twenty of 20 calls in a row was enough to make a batch of them cost 3 ms)
 * must not count either. */
#define FIXED_RUNS 200

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double lower_quartile_us(double *dt, int n)
{
    qsort(dt, (size_t)n, sizeof *dt, by_value);
    return dt[n / 4] * 1e6;
}

static double sync_us(int nth)
{
    double dt[FIXED_RUNS];
    for (int r = 0; r < FIXED_RUNS; r++) {
        double t0 = clock_s();
        herd_parallel(nth, nothing, NULL);
        dt[r] = per_thread(clock_s() - t0, nth);
    }
    return lower_quartile_us(dt, FIXED_RUNS);
}

/* One small product (16 rows): its input quantized, the pool woken and
 * joined. */
static double call_us(const void *w, const float *x, float *y, void *work, int nth)
{
    double dt[FIXED_RUNS];
    herd_matmul(w, HERD_TYPE_Q8_0, N_IN, 16, x, 1, y, work, nth); /* warm-up */
    for (int r = 0; r < FIXED_RUNS; r++) {
        double t0 = clock_s();
        herd_matmul(w, HERD_TYPE_Q8_0, N_IN, 16, x, 1, y, work, nth);
        dt[r] = per_thread(clock_s() - t0, nth);
    }
    return lower_quartile_us(dt, FIXED_RUNS);
}

/* --------------------------------------------------------- products */

/* Fill buf with copies of one row of `type` quantized from random values. */
static herd_status fill_rows(uint32_t type, uint8_t *buf, size_t bytes, size_t *row_bytes)
{
    const herd_type_traits *tt = herd_type(type);
    if (!tt || !tt->from_float || !herd_type_can_compute(type))
        return herd_seterr(HERD_E_INVALID, "probe: no kernel for %s", herd_type_name(type));
    float x[N_IN];
    unsigned s = 12345;
    for (int i = 0; i < N_IN; i++)
        s = s * 1103515245u + 12345u, x[i] = (float)(s >> 8) / 16777216.f - .5f;
    *row_bytes = herd_row_bytes(type, N_IN);
    (tt->from_float_ref ? tt->from_float_ref : tt->from_float)(x, buf, N_IN);
    for (size_t at = *row_bytes; at + *row_bytes <= bytes; at += *row_bytes)
        memcpy(buf + at, buf, *row_bytes);
    return HERD_OK;
}

/* Best seconds of PASSES calls of one product (after one warm-up call). */
static double time_matmul(const void *w, uint32_t type, int64_t rows, const float *x, int64_t ntok,
                          float *y, void *work, int nth)
{
    double best = 1e30;
    for (int r = 0; r <= PASSES; r++) {
        double t0 = clock_s();
        herd_matmul(w, type, N_IN, rows, x, ntok, y, work, nth);
        double dt = per_thread(clock_s() - t0, nth);
        if (r > 0 && dt < best) best = dt;
    }
    return best;
}

/* The one-token kernel streaming from memory, as a model's decode step
 * streams it: one product call per matrix of MATRIX_ROWS x N_IN weights
 * (4 MB of Q8_0: the size of a 7B layer's q or o, a TinyLlama layer's
 * gate), each reading weights no earlier call read, over the whole buffer
 * (twice the L3). Each call pays what a model's does: its input quantized,
 * the prefetchers starting on a new stream, the threads joined at its end
 * (where this VM's unequal vCPUs wait for each other). Each call is timed
 * on its own and the lower quartile taken, as for the fixed costs: a call a
 * neighbour preempted does not count, and one pass is enough. The call's
 * fixed cost (call_s: the small product's time, measured before) is taken
 * out, since the model adds it once per product on top of the bytes: what
 * remains is the rate of the bytes. GB/s. */
#define MATRIX_ROWS 1024

static double decode_stream_gbs(const uint8_t *w, uint32_t type, size_t rb, int64_t rows,
                                const float *x, float *y, void *work, int nth, double call_s)
{
    const int n = (int)(rows / MATRIX_ROWS);
    double *dt = malloc((size_t)(n > 0 ? n : 1) * sizeof *dt);
    if (!dt || n < 4) {
        free(dt);
        return 0;
    }
    herd_matmul(w, type, N_IN, MATRIX_ROWS, x, 1, y, work, nth); /* warm-up: code, pool */
    for (int i = 0; i < n; i++) {
        const double t0 = clock_s();
        herd_matmul(w + (size_t)i * MATRIX_ROWS * rb, type, N_IN, MATRIX_ROWS, x, 1,
                    y + (size_t)i * MATRIX_ROWS, work, nth);
        dt[i] = per_thread(clock_s() - t0, nth);
    }
    double q = lower_quartile_us(dt, n) * 1e-6;
    free(dt);
    if (call_s > 0 && call_s < q / 2) q -= call_s;
    return q > 0 ? (double)MATRIX_ROWS * (double)rb / q / 1e9 : 0;
}

/* The one-token kernel with its weights in cache: CACHE_PRODUCTS products
 * of the same CACHE_BYTES matrix (it stays in every core's L2) in one pool
 * dispatch (herd_matvec_many, as a layer's q/k/v or gate/up go), so that the
 * kernel's arithmetic, not the bus, sets the pace. GB/s of weights, the best
 * pass of at least CACHE_PASSES and CACHE_MIN_S seconds: a pass is ~0.2 ms,
 * and on a busy machine a pass in which every worker ran throughout is one
 * of many. */
#define CACHE_BYTES    ((size_t)256 << 10)
#define CACHE_PRODUCTS 32
#define CACHE_PASSES   8
#define CACHE_MIN_S    0.02
#define CACHE_MAX      400

static double gemv_cache_gbs(const uint8_t *w, uint32_t type, size_t rb, const float *x, float *y,
                             void *work, int nth)
{
    const int64_t rows = (int64_t)(CACHE_BYTES / rb);
    herd_matvec v[CACHE_PRODUCTS];
    for (int i = 0; i < CACHE_PRODUCTS; i++)
        v[i] = (herd_matvec){.w = w,
                             .wtype = type,
                             .n_in = N_IN,
                             .n_rows = rows,
                             .x = x,
                             .y = y + (size_t)i * (size_t)rows};
    double best = 1e30;
    const double start = herd_time();
    for (int r = 0; r <= CACHE_PASSES || (herd_time() - start < CACHE_MIN_S && r < CACHE_MAX);
         r++) {
        double t0 = clock_s();
        herd_matvec_many(v, CACHE_PRODUCTS, work, nth);
        double dt = per_thread(clock_s() - t0, nth);
        if (r > 0 && dt < best) best = dt;
    }
    return (double)CACHE_PRODUCTS * (double)rows * (double)rb / best / 1e9;
}

static herd_status probe_type(herd_probe_type *pt, uint8_t *buf, const float *x, float *y,
                              void *work, int max_threads, const double *call_us)
{
    size_t rb;
    const size_t bytes = gemv_bytes();
    herd_status st = fill_rows(pt->type, buf, bytes, &rb);
    if (st) return st;
    const int64_t rows = (int64_t)(bytes / rb);
    for (int t = 1; t <= max_threads; t++) {
        pt->gemv_gbs[t] =
            decode_stream_gbs(buf, pt->type, rb, rows, x, y, work, t, call_us[t] * 1e-6);
        if (!(pt->gemv_gbs[t] > 0))
            return herd_seterr(HERD_E_NOMEM, "probe: out of memory timing %s",
                               herd_type_name(pt->type));
        double dt;
        pt->gemv_cache_gbs[t] = gemv_cache_gbs(buf, pt->type, rb, x, y, work, t);
        dt = time_matmul(buf, pt->type, GEMM_ROWS, x, GEMM_TOK, y, work, t);
        pt->gemm_gflops[t] = 2.0 * N_IN * GEMM_ROWS * GEMM_TOK / dt / 1e9;
    }
    return HERD_OK;
}

/* -------------------------------------------------------- attention */

/* Seconds per query x cell of herd_attn over ATT_CELLS F16 cells. */
static double attn_cost(int nq, uint16_t *kv, int32_t *cells, float *q, float *o, void *scratch)
{
    const float *qs[64];
    float *os[64];
    int32_t qpos[64];
    for (int i = 0; i < nq; i++)
        qs[i] = q + (size_t)i * ATT_DIM, os[i] = o + (size_t)i * ATT_DIM, qpos[i] = ATT_CELLS;
    herd_attn_args a = {.q = qs,
                        .out = os,
                        .q_pos = qpos,
                        .nq = nq,
                        .head_dim = ATT_DIM,
                        .k = (const uint8_t *)kv,
                        .v = (const uint8_t *)kv,
                        .row_bytes = ATT_DIM * 2,
                        .type = HERD_TYPE_F16,
                        .cells = cells,
                        .cell_pos = cells,
                        .n_cells = ATT_CELLS,
                        .scale = 0.088f};
    double best = 1e30;
    for (int r = 0; r <= PASSES; r++) {
        double t0 = clock_s();
        herd_attn(&a, scratch);
        double dt = clock_s() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    return best / nq / ATT_CELLS;
}

static herd_status probe_attention(herd_probe *p)
{
    uint16_t *kv = malloc((size_t)ATT_CELLS * ATT_DIM * 2);
    int32_t *cells = malloc(ATT_CELLS * sizeof *cells);
    float *q = malloc(64 * ATT_DIM * sizeof *q), *o = malloc(64 * ATT_DIM * sizeof *o);
    void *scratch = malloc(herd_attn_scratch_size(ATT_DIM, 64));
    herd_status st = HERD_OK;
    if (!kv || !cells || !q || !o || !scratch) {
        st = herd_seterr(HERD_E_NOMEM, "probe: out of memory");
    } else {
        for (int i = 0; i < ATT_CELLS * ATT_DIM; i++)
            kv[i] = herd_f32_to_f16((float)(i % 97) / 97.f - .5f);
        for (int i = 0; i < ATT_CELLS; i++) cells[i] = i;
        for (int i = 0; i < 64 * ATT_DIM; i++) q[i] = (float)(i % 13) / 13.f - .5f;
        p->attn_ns_decode = attn_cost(4, kv, cells, q, o, scratch) * 1e9;
        p->attn_ns_prompt = attn_cost(64, kv, cells, q, o, scratch) * 1e9;
    }
    free(kv), free(cells), free(q), free(o), free(scratch);
    return st;
}

/* ------------------------------------------------------------ probe */

herd_status herd_probe_run(int max_threads, herd_probe *p)
{
    memset(p, 0, sizeof *p);
    if (max_threads < 1) max_threads = 1;
    if (max_threads > HERD_PROBE_MAX_THREADS) max_threads = HERD_PROBE_MAX_THREADS;
    herd_probe_identity(p->cpu, sizeof p->cpu, p->herd, sizeof p->herd);
    p->max_threads = max_threads;
    const double t0 = herd_time();
    const size_t bytes = gemv_bytes();
    uint8_t *buf = malloc(bytes);
    float *x = malloc((size_t)GEMM_TOK * N_IN * sizeof *x);
    /* Outputs: 512 x 512 for the batch; the one-token product has at most
     * bytes / 2048 rows (no probed type has smaller rows of 4096). */
    size_t ny = (size_t)GEMM_TOK * GEMM_ROWS;
    if (bytes / 2048 > ny) ny = bytes / 2048;
    float *y = malloc(ny * sizeof *y);
    size_t ws = 0;
    for (size_t i = 0; i < sizeof PROBE_TYPES / sizeof PROBE_TYPES[0]; i++) {
        size_t w = herd_matmul_work_size(PROBE_TYPES[i], N_IN, GEMM_TOK);
        if (w > ws) ws = w;
    }
    /* The in-cache products pack x once for all of them (same x, same type). */
    if (ws < (size_t)CACHE_PRODUCTS * herd_row_bytes(HERD_TYPE_F32, N_IN))
        ws = (size_t)CACHE_PRODUCTS * herd_row_bytes(HERD_TYPE_F32, N_IN);
    void *work = malloc(ws ? ws : 1);
    herd_status st = HERD_OK;
    if (!buf || !x || !y || !work) st = herd_seterr(HERD_E_NOMEM, "probe: out of memory");
    if (!st) {
        memset(buf, 1, bytes);
        for (size_t i = 0; i < (size_t)GEMM_TOK * N_IN; i++) x[i] = (float)(i % 31) / 31.f - .5f;
        for (int t = 1; t <= max_threads; t++) {
            p->read_gbs[t] = read_gbs(buf, bytes, t);
            /* One small product: what every call costs beyond its bytes. */
            p->call_us[t] = call_us(buf, x, y, work, t);
            p->sync_us[t] = t > 1 ? sync_us(t) : 1e-3;
        }
    }
    for (size_t i = 0; !st && i < sizeof PROBE_TYPES / sizeof PROBE_TYPES[0]; i++) {
        herd_probe_type *pt = &p->types[p->n_types];
        pt->type = PROBE_TYPES[i];
        if (probe_type(pt, buf, x, y, work, max_threads, p->call_us) == HERD_OK) p->n_types++;
    }
    if (!st) st = probe_attention(p);
    free(buf), free(x), free(y), free(work);
    p->seconds = herd_time() - t0;
    if (!st && p->n_types == 0) st = herd_seterr(HERD_E_INVALID, "probe: no product kernel ran");
    return st;
}
