/* util.c — per-thread error messages, checked allocation, clock. */
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char errbuf[512];

herd_status herd_seterr(herd_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return st;
}

void herd_clearerr(void) { errbuf[0] = 0; }

const char *herd_errmsg(void) { return errbuf; }

const char *herd_status_name(herd_status st)
{
    static const char *const names[] = {"ok",          "invalid argument", "I/O error",
                                        "bad format",  "unsupported",      "out of memory",
                                        "out of range", "context full"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown error";
}

void *herd_calloc(size_t n, size_t size)
{
    uint64_t total;
    if (!herd_mul_ok(n, size, &total) || total > SIZE_MAX) {
        herd_seterr(HERD_E_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) herd_seterr(HERD_E_NOMEM, "out of memory allocating %llu bytes", (unsigned long long)total);
    return p;
}

void *herd_alloc_aligned(size_t size)
{
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded < size) {
        herd_seterr(HERD_E_NOMEM, "allocation of %zu bytes overflows", size);
        return NULL;
    }
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) herd_seterr(HERD_E_NOMEM, "out of memory allocating %zu bytes", size);
    else memset(p, 0, rounded ? rounded : 64);
    return p;
}

double herd_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
