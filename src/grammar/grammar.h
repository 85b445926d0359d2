/*
 * grammar.h — constrained sampling: llama.cpp's GBNF grammars, compiled once,
 * matched per token against a vocabulary.
 *
 * Three objects, each made once and shared where it can be:
 *
 *   herd_grammar      the rules of one GBNF text, parsed and checked (every
 *                     rule defined, no left recursion). Immutable.
 *   herd_gvocab       what the matcher needs of a vocabulary, computed once per
 *                     model: each token's bytes, a byte trie over all of them
 *                     and which tokens end generation. Immutable, shareable by
 *                     any number of matchers and threads.
 *   herd_gmatch       one generation's position in the grammar: a set of parse
 *                     stacks, advanced by each accepted token.
 *
 * The semantics are llama.cpp's (src/llama-grammar.cpp): the grammar works on
 * Unicode code points; a token is allowed when its bytes, decoded as UTF-8
 * after whatever partial sequence the previous tokens left, can all be
 * consumed by at least one stack (a token may end inside a code point as long
 * as some continuation could still match). An end-of-generation token is
 * allowed exactly when the grammar may end there; a token with no text never.
 *
 * Why it is cheap per token: parse stacks are hash-consed (a stack is one
 * integer and equal stacks are equal integers), the result of stepping a stack
 * over a code point is cached, and the mask walks the trie once, so tokens
 * sharing a prefix share the work. herd_gmatch_allows() checks one token alone,
 * which lets the sampler draw first and mask only when the draw is refused.
 */
#ifndef HERD_GRAMMAR_H
#define HERD_GRAMMAR_H

#include "util/util.h"

typedef struct herd_grammar herd_grammar;
typedef struct herd_gvocab herd_gvocab;
typedef struct herd_gmatch herd_gmatch;

/* Limits (a request's grammar is untrusted input). */
#define HERD_GRAMMAR_MAX_RULES  10000
#define HERD_GRAMMAR_MAX_REPEAT 2000 /* llama.cpp's MAX_REPETITION_THRESHOLD */
#define HERD_GRAMMAR_MAX_BYTES  (1u << 20)

/* Parse a GBNF text (len bytes; need not be NUL-terminated) whose start rule
 * is "root". A bad grammar is HERD_E_INVALID with "line L, column C: what". */
herd_status herd_grammar_parse(const char *text, size_t len, herd_grammar **out);
/* Grammars are reference-counted (jobs of one request share one): retain
 * adds a reference, free drops one and frees with the last. */
herd_grammar *herd_grammar_retain(herd_grammar *g);
void herd_grammar_free(herd_grammar *g);
/* Number of rules after the expansion of groups and repetitions. */
int herd_grammar_n_rules(const herd_grammar *g);

/* Per-vocabulary tables. from_model reads the pieces as llama.cpp's grammar
 * does (token_to_piece without special tokens' text); from_pieces is for tests
 * and tools: pieces[i] of lens[i] bytes, eog[i] marks end-of-generation ids. */
herd_status herd_gvocab_from_model(const herd_model *model, herd_gvocab **out);
herd_status herd_gvocab_from_pieces(int n_vocab, const char *const *pieces, const int *lens,
                                    const bool *eog, herd_gvocab **out);
void herd_gvocab_free(herd_gvocab *v);
int herd_gvocab_n_vocab(const herd_gvocab *v);

/* A matcher at the start of the grammar. g and v must outlive it. */
herd_status herd_gmatch_new(const herd_grammar *g, const herd_gvocab *v, herd_gmatch **out);
void herd_gmatch_free(herd_gmatch *m);
void herd_gmatch_reset(herd_gmatch *m);
const herd_gvocab *herd_gmatch_vocab(const herd_gmatch *m);
/* Masks are cached by parse state (mask_cache.h); off, each is walked anew
 * (for tests and benchmarks). On by default. */
void herd_gmatch_use_cache(herd_gmatch *m, bool on);

/* Could token come next? (false for an id out of range) */
bool herd_gmatch_allows(herd_gmatch *m, int32_t token);
/* allowed[i] = may token i come next; returns how many may (0: the grammar is
 * stuck, which a caller must end rather than spin on).
 *
 * budget (HERD_GMATCH_NO_BUDGET: none) is the number of tokens the output may
 * still take after this one. Each state has a cost, the fewest UTF-8 bytes
 * that complete the grammar from it (a token can always be one byte: the
 * vocabularies with byte fallback have one per byte); with a budget only the tokens
 * leading to a cost within it are allowed (or, if none does, those leading to
 * the lowest cost), so an output running out of tokens closes what it opened
 * instead of being cut. */
#define HERD_GMATCH_NO_BUDGET UINT32_MAX
int herd_gmatch_mask(herd_gmatch *m, bool *allowed, uint32_t budget);
/* The cost after token (see above), HERD_GMATCH_NO_BUDGET if it is refused. */
uint32_t herd_gmatch_cost_after(herd_gmatch *m, int32_t token);
/* The cost of the current state. */
uint32_t herd_gmatch_cost(const herd_gmatch *m);
/* Advance over an allowed token (HERD_E_INVALID if it is not allowed; the
 * matcher is then unchanged). An end-of-generation token finishes the match. */
herd_status herd_gmatch_accept(herd_gmatch *m, int32_t token);
/* Advance over raw text (UTF-8), as if generated: false if the grammar refuses
 * it (the matcher is then unchanged). For tests and prefilled output. */
bool herd_gmatch_accept_text(herd_gmatch *m, const char *text, size_t len);
/* May the output end here? And must it (nothing but the end is left)? */
bool herd_gmatch_can_end(const herd_gmatch *m);
bool herd_gmatch_must_end(const herd_gmatch *m);

/* Does the whole of text match the grammar? (a convenience over the above) */
bool herd_grammar_matches(const herd_grammar *g, const char *text, size_t len);

#endif
