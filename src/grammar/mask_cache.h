/*
 * mask_cache.h — the last few masks of a matcher, by parse state.
 *
 * Parse stacks are hash-consed, so a state (its set of stack ids and its open
 * UTF-8 sequence) is a short list of integers, and a state seen before has the
 * same mask as then. Grammars revisit states all the time (every character
 * inside a JSON string leaves the same state), so a handful of entries turn
 * most masks into a copy. Entries are dropped when the node table is rebuilt
 * (ids change meaning then).
 */
#ifndef HERD_MASK_CACHE_H
#define HERD_MASK_CACHE_H

#include "util/util.h"

typedef struct gmask_cache gmask_cache;

gmask_cache *herd_gmask_cache_new(int n_vocab);
void herd_gmask_cache_free(gmask_cache *c);
void herd_gmask_cache_clear(gmask_cache *c);
/* The mask and costs of the state key[0..n) (any order): its count of
 * allowed tokens, or -1 when it is not cached. */
int herd_gmask_cache_get(gmask_cache *c, const uint32_t *key, uint32_t n, bool *allowed,
                         uint32_t *cost);
void herd_gmask_cache_put(gmask_cache *c, const uint32_t *key, uint32_t n, const bool *allowed,
                          const uint32_t *cost, int count);

#endif
