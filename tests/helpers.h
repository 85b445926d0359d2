/*
 * helpers.h — the small test harness every tests/test_*.c uses.
 *
 * CHECK records a failure with its location and goes on, so one run shows
 * every broken case; main() ends with `return test_report();`, which prints a
 * summary and returns non-zero if anything failed (CTest reads the status).
 *
 * A part that cannot run (no ../shared, no oracle) calls test_skip or fails
 * test_shared: then, unless something failed, the exit status is 77, which
 * CTest (SKIP_RETURN_CODE) reports as skipped, never as passed. With
 * HERD_REQUIRE_SHARED=1 (CI) a missing ../shared file is a failure instead.
 */
#ifndef HERD_TEST_HELPERS_H
#define HERD_TEST_HELPERS_H

#include "herd.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int test_checks, test_failures, test_skips;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Print "N checks, M failed, K parts skipped" and return the process exit
 * status: 1 if anything failed, else 77 if anything was skipped, else 0. */
int test_report(void);
/* Record that a part of the test did not run, and why (printed as "skip: "). */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Read a whole file (NUL-terminated as a convenience); NULL if unreadable. */
char *test_read_file(const char *path, size_t *len);
/* Write a buffer to a file; false on error. */
bool test_write_file(const char *path, const void *data, size_t len);
/* A fresh temporary directory for this test process (created once, removed
 * with its contents at exit; HERD_TEST_KEEP=1 keeps it and prints its name). */
const char *test_tmpdir(void);

/* Run a shell command; capture stdout and stderr (malloc'ed, may be NULL
 * pointers if not wanted). Returns the exit status (or -1). */
int test_run(const char *cmd, char **out, char **err);
/* The herd binary under test ($HERD_BIN, else build/herd). */
const char *test_herd_bin(void);

/* Path of a file under ../shared; false if missing, which is a skip (or a
 * failure under HERD_REQUIRE_SHARED=1). */
bool test_shared(const char *rel, char *path, size_t cap);

/* The index of the largest of n logits (the first of equals). */
int test_argmax(const float *x, int n);
/* The gap between the largest of x[0..n) and the next. */
float test_top2_gap(const float *x, int n);
/* KL(P || Q) of the softmaxes of two logit rows of n, in nats. */
double test_kl_div(const float *p_logits, const float *q_logits, int n);

#endif
