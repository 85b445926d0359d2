/*
 * malformed.h — a catalogue of invalid GGUF files, built in memory.
 *
 * Each case starts from one small valid file (malformed_base) and breaks one
 * thing: the magic, a version, a count, a length, a type, a dimension, an
 * offset, a name, the alignment. Every case must be rejected by the reader
 * with HERD_E_FORMAT and a message; test_gguf checks that, and CLI tests can
 * write the same files to disk and check that `herd` fails cleanly on them.
 */
#ifndef HERD_TEST_MALFORMED_H
#define HERD_TEST_MALFORMED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Number of cases. */
int malformed_count(void);
/* Build case i (0 <= i < malformed_count()) into a malloc'ed buffer of exactly
 * *len bytes (the caller frees it); *what gets a short static description.
 * False if i is out of range or memory ran out. */
bool malformed_build(int i, uint8_t **buf, size_t *len, const char **what);

/* The valid file the cases are made from (malloc'ed, exactly *len bytes): a
 * few keys of each kind and tensors F32, Q8_0, F32, F32, whose data ends
 * exactly at the end of the file (no trailing padding). */
bool malformed_base(uint8_t **buf, size_t *len);
/* A file with one key ("test.nest") holding `levels` arrays nested in each
 * other, the innermost an array of three UINT8; valid iff levels <=
 * GGUF_MAX_ARRAY_DEPTH. */
bool malformed_nested(int levels, uint8_t **buf, size_t *len);

#endif
