/*
 * bandwidth.c — how fast this machine streams memory into the cores: the
 * ceiling of decoding, which reads every weight once per token.
 *
 * Not a test. Build and run from the repository root:
 *   gcc -O2 -mavx512f -pthread bench/bandwidth.c -o /tmp/bandwidth
 *   /tmp/bandwidth [threads] [MiB]
 * Each thread sums its share of a buffer much larger than the caches with
 * 512-bit loads, four sequential streams per thread, each prefetched 2 KB
 * ahead (what herd's decode kernels do). Prints the best and the median of
 * 9 passes in GB/s (10^9 bytes per second).
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAMS 4
#define PF_DIST 2048
#define PASSES 9

typedef struct {
    const char *p;
    size_t len;
    long sum;
} part;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void *stream(void *arg)
{
    part *pt = arg;
    const size_t per = pt->len / STREAMS / 256 * 256;
    __m512i s = _mm512_setzero_si512();
    for (size_t i = 0; i < per; i += 256)
        for (int k = 0; k < STREAMS; k++) {
            const char *q = pt->p + (size_t)k * per + i;
            for (int l = 0; l < 4; l++) {
                _mm_prefetch(q + PF_DIST + 64 * l, _MM_HINT_T0);
                s = _mm512_add_epi32(s, _mm512_load_si512((const void *)(q + 64 * l)));
            }
        }
    pt->sum = _mm512_reduce_add_epi32(s);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const int nth = argc > 1 ? atoi(argv[1]) : 1;
    const size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 2048;
    if (nth < 1 || nth > 64 || mib < 64) {
        fprintf(stderr, "usage: bandwidth [threads 1..64] [MiB ≥ 64]\n");
        return 2;
    }
    const size_t len = mib << 20;
    char *buf = aligned_alloc(64, len);
    if (!buf) {
        fprintf(stderr, "bandwidth: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    memset(buf, 1, len);
    double gbs[PASSES];
    long total = 0;
    for (int r = 0; r < PASSES; r++) {
        pthread_t th[64];
        part parts[64];
        const double t0 = now();
        for (int i = 0; i < nth; i++) {
            parts[i] = (part){.p = buf + len / nth / 64 * 64 * i, .len = len / nth / 64 * 64};
            pthread_create(&th[i], NULL, stream, &parts[i]);
        }
        for (int i = 0; i < nth; i++) {
            pthread_join(th[i], NULL);
            total += parts[i].sum;
        }
        gbs[r] = (double)len / (now() - t0) / 1e9;
    }
    qsort(gbs, PASSES, sizeof gbs[0], cmp);
    printf("threads %d  %zu MiB  best %.1f GB/s  median %.1f GB/s  (%ld)\n", nth, mib,
           gbs[PASSES - 1], gbs[PASSES / 2], total & 1);
    free(buf);
    return 0;
}
