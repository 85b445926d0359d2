/*
 * util.h — what every module of libherd shares: the per-thread error message
 * and overflow-checked size arithmetic.
 *
 * Errors are reported by returning a herd_status and recording a message with
 * herd_seterr(); callers pass the status up unchanged, so the first (most
 * specific) message is the one the user sees.
 */
#ifndef HERD_UTIL_H
#define HERD_UTIL_H

#include "herd.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record a printf-style message for this thread and return st. */
herd_status herd_seterr(herd_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void herd_clearerr(void);

/* Overflow-checked arithmetic: false if the result does not fit. */
static inline bool herd_mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool herd_add_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* calloc that records HERD_E_NOMEM on failure (n*size checked). */
void *herd_calloc(size_t n, size_t size);
/* Aligned allocation (64 bytes) for activations and caches; free with free(). */
void *herd_alloc_aligned(size_t size);

/* Monotonic clock in seconds. */
double herd_time(void);

#endif
