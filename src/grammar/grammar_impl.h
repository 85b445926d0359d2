/*
 * grammar_impl.h — the compiled form of a grammar, shared by the parser
 * (gbnf.c) and the matcher (match.c).
 *
 * As in llama.cpp, a rule is a run of elements: alternatives separated by ALT
 * and the rule closed by END. A character class is one CHAR or CHAR_NOT (or
 * CHAR_ANY) followed by CHAR_RNG_UPPER (closing a range) and CHAR_ALT (more
 * members). Groups and repetitions were rewritten into generated rules, so a
 * rule body holds only characters and references.
 *
 * All rules live in one array (elems), rule r starting at rule_start[r]; a
 * position in the grammar is an index into elems.
 */
#ifndef HERD_GRAMMAR_IMPL_H
#define HERD_GRAMMAR_IMPL_H

#include "grammar/grammar.h"

enum {
    GE_END = 0,      /* end of a rule */
    GE_ALT = 1,      /* start of another alternative */
    GE_RULE_REF = 2, /* value: rule id */
    GE_CHAR = 3,     /* value: code point */
    GE_CHAR_NOT = 4, /* inverse class: value is its first member */
    GE_CHAR_RNG = 5, /* upper end of a range opened by the previous element */
    GE_CHAR_ALT = 6, /* another member of the class */
    GE_CHAR_ANY = 7, /* '.' */
};

typedef struct {
    uint32_t type;
    uint32_t value;
} gelem;

struct herd_grammar {
    gelem *elems;
    uint32_t n_elems;
    uint32_t *rule_start; /* [n_rules] */
    uint32_t n_rules;
    uint32_t root;
    /* minrest[pos]: fewest bytes that finish the alternative from pos on
     * (HERD_GCOST_INF if it cannot finish), the cost of a stack's level. */
    uint32_t *minrest;
    int refs; /* atomic */
};

#define HERD_GCOST_INF (UINT32_MAX / 4)

static inline bool gelem_is_end(const gelem *e)
{
    return e->type == GE_END || e->type == GE_ALT;
}

static inline bool gelem_is_char(const gelem *e)
{
    return e->type == GE_CHAR || e->type == GE_CHAR_NOT || e->type == GE_CHAR_ANY;
}

#endif
