/*
 * schema_impl.h — what the two halves of the schema converter share: a
 * growable string, the converter's state and the string/integer builders
 * (schema_str.c) used by the walk over the schema (schema.c).
 */
#ifndef HERD_SCHEMA_IMPL_H
#define HERD_SCHEMA_IMPL_H

#include "grammar/grammar.h"
#include "grammar/schema.h"

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

void herd_sb_add(sbuf *b, const char *s);
void herd_sb_addn(sbuf *b, const char *s, size_t n);
void herd_sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string (owned by the caller; "" when empty), NULL when out of memory. */
char *herd_sb_take(sbuf *b);
/* A GBNF literal "…" for bytes s[0..n). */
void herd_sb_literal(sbuf *b, const char *s, size_t n);

typedef struct {
    json_t *rules; /* name -> body */
    json_t *refs;  /* "$ref" value -> rule name */
    const json_t *root;
    herd_status st;
    int depth;
} conv;

/* Record an error (the first one wins); returns NULL for convenience. */
void *herd_conv_fail(conv *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Add a rule (a fresh name if another body holds it); its name, malloc'ed. */
char *herd_conv_rule(conv *c, const char *name, const char *body);
/* A built-in rule (string, number, value, date, …) with what it needs. */
const char *herd_conv_prim(conv *c, const char *name);

/* GBNF expressions for string and integer schemas (malloc'ed; NULL on error). */
char *herd_schema_string(conv *c, const json_t *s, const char *name, const char *path);
char *herd_schema_integer(conv *c, const json_t *s, const char *path);
/* A JSON string key whose content differs from every names[i] (raw bytes). */
char *herd_schema_not_strings(conv *c, const char *const *names, int n);

#endif
