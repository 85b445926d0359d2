/*
 * bench_kernels.c — matmul throughput for TinyLlama-sized matrices.
 *
 * Not a test. Build by hand from the repository root:
 *   gcc -O2 -pthread -Iinclude -Isrc bench/bench_kernels.c src/tensor/[a-z]*.c
 *       src/util/util.c src/util/pool.c -lm -o /tmp/bench_kernels
 * and run /tmp/bench_kernels [seconds-per-case]. HERD_NO_SIMD=1 / HERD_SIMD=avx2
 * select lower kernel levels.
 *
 * Decode (one token) is bound by memory bandwidth, so each decode case cycles
 * through enough copies of the matrix to defeat the caches, and reports the
 * weight bytes streamed per second. Prompt cases (512 tokens) report GFLOP/s.
 * Each case reports the fastest call and the mean: on a shared machine the
 * fastest is the kernel, the mean includes everybody else. With one thread
 * "cpu" is the mean CPU time per call, which descheduling does not inflate.
 */
#include "tensor/kernels.h"
#include "tensor/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>

/* CPU time of the calling thread: with one thread, the kernel's own time
 * even when the machine is shared. */
static double thread_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float frand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((*s >> 40) / 16777216.0) - 0.5f;
}

static void bench(uint32_t type, int64_t n_rows, int64_t n_in, int64_t n_tok, int n_threads,
                  double seconds)
{
    const size_t wbytes = herd_row_bytes(type, n_in) * (size_t)n_rows;
    /* Copies of the matrix: 768 MB for decode, more than any cache. */
    int copies = n_tok == 1 ? (int)(768.0 * 1024 * 1024 / wbytes) + 1 : 1;
    if (getenv("BENCH_HOT")) copies = 1; /* the matrix stays in cache: compute speed */
    uint64_t seed = 42;
    float *row = malloc((size_t)n_in * sizeof *row);
    uint8_t *w = herd_alloc_aligned(wbytes * copies);
    if (getenv("BENCH_HUGE")) { /* 2 MB pages: no TLB misses while streaming */
        uintptr_t a = ((uintptr_t)w + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
        madvise((void *)a, wbytes * copies - (a - (uintptr_t)w), MADV_HUGEPAGE);
    }
    const herd_type_traits *t = herd_type(type);
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t i = 0; i < n_in; i++) row[i] = frand(&seed);
        t->from_float_ref(row, w + r * herd_row_bytes(type, n_in), n_in);
    }
    /* Copies must differ in every page, or a deduplicating hypervisor or
     * KSM may back them with the same memory. Flip a quant byte (never a
     * scale) near the start of each page. */
    const size_t bs = t->type_size, q0 = type == HERD_TYPE_Q4_0 || type == HERD_TYPE_Q8_0 ? 2 : 0;
    for (int c = 1; c < copies; c++) {
        uint8_t *wc = w + c * wbytes;
        memcpy(wc, w, wbytes);
        for (size_t pg = 0; pg < wbytes; pg += 4096) {
            const size_t at = (pg + bs - 1) / bs * bs + q0;
            if (at < wbytes) wc[at] ^= (uint8_t)(1 + c % 7);
        }
    }
    float *x = malloc((size_t)(n_in * n_tok) * sizeof *x);
    float *y = malloc((size_t)(n_rows * n_tok) * sizeof *y);
    for (int64_t i = 0; i < n_in * n_tok; i++) x[i] = frand(&seed);
    void *work = herd_alloc_aligned(herd_matmul_work_size(type, n_in, n_tok) + 64);

    herd_matmul(w, type, n_in, n_rows, x, n_tok, y, work, n_threads); /* warm up */
    int iters = 0;
    double t0 = herd_time(), el, best = 1e9, c0 = thread_time();
    do {
        const double a = herd_time();
        herd_matmul(w + (size_t)(iters % copies) * wbytes, type, n_in, n_rows, x, n_tok, y, work,
                    n_threads);
        const double e = herd_time() - a;
        if (e < best) best = e;
        iters++;
        el = herd_time() - t0;
    } while (el < seconds);
    const double mean = el / iters, cpu = (thread_time() - c0) / iters;
    const double flops = 2.0 * (double)n_rows * (double)n_in * (double)n_tok;
    printf("%-5s %5lld x %5lld  n_tok %4lld  threads %d  best %8.3f ms %7.1f GFLOP/s %6.1f GB/s"
           "  (mean %8.3f ms",
           t->name, (long long)n_rows, (long long)n_in, (long long)n_tok, n_threads, best * 1e3,
           flops / best * 1e-9, (double)wbytes / best * 1e-9, mean * 1e3);
    if (n_threads == 1)
        printf(", cpu %8.3f ms = %7.1f GFLOP/s %6.1f GB/s", cpu * 1e3, flops / cpu * 1e-9,
               (double)wbytes / cpu * 1e-9);
    printf(")\n");
    fflush(stdout);
    free(row);
    free(w);
    free(x);
    free(y);
    free(work);
}

/* bench_kernels [SECONDS [TYPE…]] — TYPE as llama.cpp prints it (Q4_K, F16…);
 * BENCH_THREADS=1 (or 2) runs only that thread count, BENCH_TOK=1 (or 512)
 * only decode (or prompt) cases, BENCH_HOT=1 keeps the decode matrix in cache
 * (the kernel's compute speed instead of the memory's). */
int main(int argc, char **argv)
{
    const double secs = argc > 1 ? atof(argv[1]) : 1.0;
    herd_tensor_init();
    printf("kernel level: %s\n", herd_tensor_simd_level());
    uint32_t types[HERD_TYPE_COUNT] = {HERD_TYPE_Q4_0, HERD_TYPE_Q8_0, HERD_TYPE_Q4_K,
                                       HERD_TYPE_Q6_K, HERD_TYPE_F16};
    size_t n_types = 5;
    if (argc > 2) {
        n_types = 0;
        for (int a = 2; a < argc; a++)
            for (uint32_t t = 0; t < HERD_TYPE_COUNT; t++)
                if (herd_type(t) && !strcasecmp(herd_type_name(t), argv[a])) types[n_types++] = t;
    }
    const char *th_env = getenv("BENCH_THREADS"), *tok_env = getenv("BENCH_TOK");
    const int th_only = th_env ? atoi(th_env) : 0, tok_only = tok_env ? atoi(tok_env) : 0;
    static const int64_t shapes[][2] = {{2048, 2048}, {5632, 2048}};
    for (size_t k = 0; k < n_types; k++)
        for (int s = 0; s < 2; s++)
            for (int tok = 0; tok < 2; tok++)
                for (int th = 1; th <= 2; th++) {
                    const int n_tok = tok ? 512 : 1;
                    if ((th_only && th != th_only) || (tok_only && n_tok != tok_only)) continue;
                    bench(types[k], shapes[s][0], shapes[s][1], n_tok, th, secs);
                }
    return 0;
}
