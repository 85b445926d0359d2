/*
 * helpers.h — the small test harness every tests/test_*.c uses.
 *
 * CHECK records a failure with its location and goes on, so one run shows
 * every broken case; main() ends with `return test_report();`, which prints a
 * summary and returns non-zero if anything failed (CTest reads the status).
 */
#ifndef HERD_TEST_HELPERS_H
#define HERD_TEST_HELPERS_H

#include "herd.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int test_checks, test_failures;

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

/* Print "N checks, M failed" and return the process exit status. */
int test_report(void);

/* Read a whole file (NUL-terminated as a convenience); NULL if unreadable. */
char *test_read_file(const char *path, size_t *len);
/* Write a buffer to a file; false on error. */
bool test_write_file(const char *path, const void *data, size_t len);
/* A fresh temporary directory for this test process (created once). */
const char *test_tmpdir(void);

/* Run a shell command; capture stdout and stderr (malloc'ed, may be NULL
 * pointers if not wanted). Returns the exit status (or -1). */
int test_run(const char *cmd, char **out, char **err);
/* The herd binary under test ($HERD_BIN, else build/herd). */
const char *test_herd_bin(void);

/* Path of a file under ../shared; false (and a skip message) if missing. */
bool test_shared(const char *rel, char *path, size_t cap);

#endif
