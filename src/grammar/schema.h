/*
 * schema.h — JSON Schema to GBNF, so that a schema constrains sampling.
 *
 * The semantics follow llama.cpp's common/json-schema-to-grammar.cpp; the
 * output is JSON with at most one space between tokens. Supported:
 *
 *   type (one or a list), properties, required, additionalProperties (false,
 *   true or a schema), items, prefixItems, minItems, maxItems, enum, const,
 *   anyOf, oneOf, $ref to "#", "#/$defs/…" or "#/definitions/…" (recursion
 *   allowed), string minLength, maxLength, pattern (a regular expression
 *   subset: literals, ., classes, \d \w \s, groups, |, * + ? {m,n}) and
 *   format (date, time, date-time, uuid), integer minimum, maximum,
 *   exclusiveMinimum and exclusiveMaximum, OpenAPI's nullable. Annotations (title, description,
 *   default, examples, $schema, $id, $comment, …) are ignored.
 *
 * Anything else is refused, never dropped: HERD_E_INVALID with a message
 * "json_schema: <keyword> is not supported (at <path>)" or the reason a value
 * is wrong, so the server can answer 400 naming the keyword.
 *
 * Properties come in the order given, required ones first (as llama.cpp);
 * additional properties, when allowed, take keys unlike any declared name.
 * oneOf is generated as anyOf (the grammar cannot make branches exclusive).
 */
#ifndef HERD_SCHEMA_H
#define HERD_SCHEMA_H

#include "util/util.h"

#include <jansson.h>

#define HERD_SCHEMA_MAX_BYTES (1u << 20)

/* GBNF for the schema (malloc'ed, root rule "root"). */
herd_status herd_schema_to_gbnf(const json_t *schema, char **gbnf);
/* The same from JSON text (at most HERD_SCHEMA_MAX_BYTES). */
herd_status herd_schema_text_to_gbnf(const char *text, size_t len, char **gbnf);

#endif
