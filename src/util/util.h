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
#include <stdio.h>

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

/*
 * Outputs never truncate what herd reads. herd_out_open() creates a temporary
 * file in the folder of `path` (so the final rename cannot cross file systems);
 * herd_out_commit() flushes, closes and renames it over `path`;
 * herd_out_abort() closes and removes it. The original file stays intact until
 * the commit, and is untouched if anything fails before.
 *
 * herd_out_open refuses (HERD_E_INVALID) when `path` names the same file as
 * `input` (same device and inode: also through a symlink or a hard link);
 * pass input = NULL when the output reads no file. An output that exists and
 * is not a regular file (/dev/null, a FIFO) is written directly: a rename
 * would replace the device itself.
 */
typedef struct herd_out {
    FILE *fp;
    char *path; /* final name */
    char *tmp;  /* temporary name in the same folder */
} herd_out;

herd_status herd_out_open(herd_out *o, const char *path, const char *input);
herd_status herd_out_commit(herd_out *o);
void herd_out_abort(herd_out *o);
/* True when both paths exist and name the same file (device and inode). */
bool herd_same_file(const char *a, const char *b);

#endif
