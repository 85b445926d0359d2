/*
 * mask_cache.c — a small least-recently-used table of masks by parse state
 * (mask_cache.h). Costs are kept as 16 bits, saturating: a budget only ever
 * compares them with the tokens left.
 */
#include "grammar/mask_cache.h"

#include <stdlib.h>
#include <string.h>

#define ENTRIES 16
#define MAX_KEY 256 /* states with more stacks are not cached */

typedef struct {
    uint32_t key[MAX_KEY], n;
    uint64_t used; /* 0: empty */
    bool *allowed;
    uint16_t *cost;
    int count;
} entry;

struct gmask_cache {
    int n_vocab;
    uint64_t clock;
    entry e[ENTRIES];
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

gmask_cache *herd_gmask_cache_new(int n_vocab)
{
    gmask_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->n_vocab = n_vocab;
    for (int i = 0; i < ENTRIES; i++) {
        c->e[i].allowed = malloc((size_t)n_vocab);
        c->e[i].cost = malloc((size_t)n_vocab * sizeof *c->e[i].cost);
        if (!c->e[i].allowed || !c->e[i].cost) {
            herd_gmask_cache_free(c);
            return NULL;
        }
    }
    return c;
}

void herd_gmask_cache_free(gmask_cache *c)
{
    if (!c) return;
    for (int i = 0; i < ENTRIES; i++) free(c->e[i].allowed), free(c->e[i].cost);
    free(c);
}

void herd_gmask_cache_clear(gmask_cache *c)
{
    for (int i = 0; c && i < ENTRIES; i++) c->e[i].used = 0;
}

/* The key sorted into out; false when too long to cache. */
static bool sorted_key(const uint32_t *key, uint32_t n, uint32_t *out)
{
    if (n > MAX_KEY) return false;
    memcpy(out, key, n * sizeof *key);
    qsort(out, n, sizeof *out, cmp_u32);
    return true;
}

int herd_gmask_cache_get(gmask_cache *c, const uint32_t *key, uint32_t n, bool *allowed,
                         uint32_t *cost)
{
    uint32_t k[MAX_KEY];
    if (!c || !sorted_key(key, n, k)) return -1;
    for (int i = 0; i < ENTRIES; i++) {
        entry *e = &c->e[i];
        if (!e->used || e->n != n || memcmp(e->key, k, n * sizeof *k)) continue;
        e->used = ++c->clock;
        memcpy(allowed, e->allowed, (size_t)c->n_vocab);
        for (int t = 0; t < c->n_vocab; t++)
            cost[t] = e->cost[t] == UINT16_MAX ? UINT32_MAX / 4 : e->cost[t];
        return e->count;
    }
    return -1;
}

void herd_gmask_cache_put(gmask_cache *c, const uint32_t *key, uint32_t n, const bool *allowed,
                          const uint32_t *cost, int count)
{
    uint32_t k[MAX_KEY];
    if (!c || !sorted_key(key, n, k)) return;
    entry *e = &c->e[0];
    for (int i = 1; i < ENTRIES; i++)
        if (c->e[i].used < e->used) e = &c->e[i];
    memcpy(e->key, k, n * sizeof *k);
    e->n = n;
    e->used = ++c->clock;
    e->count = count;
    memcpy(e->allowed, allowed, (size_t)c->n_vocab);
    for (int t = 0; t < c->n_vocab; t++)
        e->cost[t] = !allowed[t] ? 0 : cost[t] >= UINT16_MAX ? UINT16_MAX : (uint16_t)cost[t];
}
