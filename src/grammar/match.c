/*
 * match.c — the matcher: a set of parse stacks advanced one code point at a
 * time, and the token mask computed over the vocabulary's trie.
 *
 * A parse stack is a list of grammar positions, the top being the next
 * element to match (always a character class once expanded; the empty stack
 * means "the grammar may end here"). Stacks are hash-consed nodes (position,
 * parent): the empty stack is node 0 and two equal stacks are the same node,
 * so a set of stacks is a list of integers and duplicates are found with a
 * stamp array. Per node two results are cached: the node after its top class
 * (next) and its expansion, the stacks with a class on top that it stands for
 * (references replaced by each alternative of their rule, as llama.cpp's
 * advance_stack). Stepping a set over a code point is then a class test and a
 * cached list per stack. When the node table outgrows HERD_GMATCH_MAX_NODES,
 * it is rebuilt holding only the current stacks.
 */
#include "grammar/grammar_impl.h"
#include "grammar/gvocab_impl.h"
#include "grammar/mask_cache.h"

#include <stdlib.h>
#include <string.h>

#define NONE                  UINT32_MAX
#define HERD_GMATCH_MAX_NODES (1u << 20)
/* An open UTF-8 sequence keeps its length above its bits: value = bits |
 * len << UTF8_LEN_SHIFT (the bits are at most 18 before the last byte). */
#define UTF8_LEN_SHIFT 24
#define UTF8_BITS(v)   ((v) & ((1u << UTF8_LEN_SHIFT) - 1))

typedef struct {
    uint32_t pos, parent;
    uint32_t next;             /* node after the top class (NONE: not yet known) */
    uint32_t cost;             /* fewest bytes that empty the stack */
    uint32_t exp_off, exp_len; /* expansion in pool (exp_off NONE: not yet known) */
} snode;

typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} u32vec;

struct herd_gmatch {
    const herd_grammar *g;
    const herd_gvocab *v;
    snode *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *hash; /* node id + 1, 0 empty */
    uint32_t hash_cap;
    u32vec pool;              /* cached expansions */
    u32vec cur;               /* the current set of stacks */
    uint32_t partial, remain; /* UTF-8 sequence left open by the last token */
    u32vec scratch;           /* sets of the trie walk, one per depth */
    u32vec todo;
    uint32_t *seen, seen_gen; /* per node: visited by the running expansion */
    uint32_t *mark, mark_gen; /* per node: already in the set being built */
    uint32_t stamp_cap;
    uint32_t *tcost; /* [n_vocab] the mask's cost after each token */
    gmask_cache *cache;
    bool no_cache;
    u32vec key; /* the state's cache key */
    bool oom;
};

/* ------------------------------------------------------------- vectors */

static bool vec_reserve(herd_gmatch *m, u32vec *v, uint64_t n)
{
    if (n <= v->cap) return true;
    uint64_t cap = v->cap ? v->cap : 64;
    while (cap < n) cap *= 2;
    uint32_t *p = cap <= UINT32_MAX ? realloc(v->v, cap * sizeof *p) : NULL;
    if (!p) return m->oom = true, false;
    v->v = p, v->cap = (uint32_t)cap;
    return true;
}

static bool vec_push(herd_gmatch *m, u32vec *v, uint32_t x)
{
    if (v->n == v->cap && !vec_reserve(m, v, (uint64_t)v->n + 1)) return false;
    v->v[v->n++] = x;
    return true;
}

/* ------------------------------------------------------------- nodes */

static uint64_t node_hash(uint32_t pos, uint32_t parent)
{
    uint64_t h = (uint64_t)pos * 0x9E3779B97F4A7C15ULL ^ (uint64_t)parent * 0xC2B2AE3D27D4EB4FULL;
    return h ^ (h >> 29);
}

static bool grow_nodes(herd_gmatch *m)
{
    uint32_t cap = m->cap_nodes ? m->cap_nodes * 2 : 1024;
    snode *n = realloc(m->nodes, cap * sizeof *n);
    uint32_t *h = calloc((size_t)cap * 2, sizeof *h);
    uint32_t *seen = realloc(m->seen, cap * sizeof *seen);
    if (seen) m->seen = seen;
    uint32_t *mark = realloc(m->mark, cap * sizeof *mark);
    if (mark) m->mark = mark;
    if (n) m->nodes = n;
    if (!n || !h || !seen || !mark) return free(h), m->oom = true, false;
    memset(seen + m->stamp_cap, 0, (cap - m->stamp_cap) * sizeof *seen);
    memset(mark + m->stamp_cap, 0, (cap - m->stamp_cap) * sizeof *mark);
    m->stamp_cap = cap;
    free(m->hash);
    m->hash = h, m->hash_cap = cap * 2, m->cap_nodes = cap;
    for (uint32_t i = 1; i < m->n_nodes; i++) {
        uint64_t k = node_hash(n[i].pos, n[i].parent) & (m->hash_cap - 1);
        while (h[k]) k = (k + 1) & (m->hash_cap - 1);
        h[k] = i + 1;
    }
    return true;
}

/* The node for stack parent + [pos]; NONE when out of memory. */
static uint32_t intern(herd_gmatch *m, uint32_t pos, uint32_t parent)
{
    if (m->hash_cap) {
        uint64_t k = node_hash(pos, parent) & (m->hash_cap - 1);
        for (; m->hash[k]; k = (k + 1) & (m->hash_cap - 1)) {
            const snode *n = &m->nodes[m->hash[k] - 1];
            if (n->pos == pos && n->parent == parent) return m->hash[k] - 1;
        }
    }
    if (m->n_nodes == m->cap_nodes && !grow_nodes(m)) return NONE;
    uint32_t id = m->n_nodes++;
    uint32_t cost = m->g->minrest[pos] + m->nodes[parent].cost;
    m->nodes[id] =
        (snode){pos, parent, NONE, cost < HERD_GCOST_INF ? cost : HERD_GCOST_INF, NONE, 0};
    uint64_t k = node_hash(pos, parent) & (m->hash_cap - 1);
    while (m->hash[k]) k = (k + 1) & (m->hash_cap - 1);
    m->hash[k] = id + 1;
    return id;
}

/* parent + [pos], or just parent when pos ends its alternative. */
static uint32_t push_pos(herd_gmatch *m, uint32_t pos, uint32_t parent)
{
    return gelem_is_end(&m->g->elems[pos]) ? parent : intern(m, pos, parent);
}

/* A new generation of a stamp array: every mark of the previous ones is void. */
static uint32_t new_gen(uint32_t *stamp, uint32_t *gen, uint32_t cap)
{
    if (++*gen == 0) {
        memset(stamp, 0, cap * sizeof *stamp);
        *gen = 1;
    }
    return *gen;
}

/* ------------------------------------------------------------- classes */

/* Does code point c match the class at pos? *after = the position past it. */
static bool match_char(const gelem *e, uint32_t pos, uint32_t c, uint32_t *after)
{
    bool positive = e[pos].type != GE_CHAR_NOT, found = false;
    do {
        if (e[pos].type == GE_CHAR_ANY) {
            found = true, pos++;
        } else if (e[pos + 1].type == GE_CHAR_RNG) {
            found |= e[pos].value <= c && c <= e[pos + 1].value;
            pos += 2;
        } else {
            found |= e[pos].value == c;
            pos++;
        }
    } while (e[pos].type == GE_CHAR_ALT);
    if (after) *after = pos;
    return found == positive;
}

/* Could some completion of an open UTF-8 sequence (value so far, remain
 * continuation bytes to come) match the class at pos? The completions are a
 * range of code points, cut to what strict UTF-8 allows. */
static bool match_partial(const gelem *e, uint32_t pos, uint32_t value, uint32_t remain)
{
    static const uint32_t min_of[5] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t len = value >> UTF8_LEN_SHIFT, bits = UTF8_BITS(value);
    uint32_t lo = bits << (remain * 6), hi = lo | ((1u << (remain * 6)) - 1);
    if (len > 4) return false;
    if (lo < min_of[len]) lo = min_of[len];
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    if (hi >= 0xD800 && lo <= 0xDFFF) { /* a block never spans the surrogates whole */
        if (lo < 0xD800)
            hi = 0xD7FF;
        else if (hi > 0xDFFF)
            lo = 0xE000;
        else
            return false;
    }
    if (lo > hi) return false;
    bool positive = e[pos].type != GE_CHAR_NOT;
    do {
        if (e[pos].type == GE_CHAR_ANY) return true;
        if (e[pos + 1].type == GE_CHAR_RNG) {
            if (e[pos].value <= hi && lo <= e[pos + 1].value) return positive;
            pos += 2;
        } else {
            if (lo <= e[pos].value && e[pos].value <= hi) return positive;
            pos++;
        }
    } while (e[pos].type == GE_CHAR_ALT);
    return !positive;
}

/* ------------------------------------------------------------- expansion */

/* Expand node into the stacks with a class (or nothing) on top; the result is
 * cached in the pool. Returns false when out of memory. */
static bool expand(herd_gmatch *m, uint32_t node)
{
    if (m->nodes[node].exp_off != NONE) return true;
    const gelem *e = m->g->elems;
    uint32_t off = m->pool.n;
    uint32_t gen = new_gen(m->seen, &m->seen_gen, m->stamp_cap);
    m->todo.n = 0;
    if (!vec_push(m, &m->todo, node)) return false;
    while (m->todo.n) {
        uint32_t s = m->todo.v[--m->todo.n];
        if (m->seen[s] == gen) continue;
        m->seen[s] = gen;
        uint32_t pos = m->nodes[s].pos;
        if (s == 0 || e[pos].type != GE_RULE_REF) {
            if (!vec_push(m, &m->pool, s)) return false;
            continue;
        }
        uint32_t base = push_pos(m, pos + 1, m->nodes[s].parent);
        if (base == NONE) return false;
        uint32_t a = m->g->rule_start[e[pos].value];
        for (;;) {
            uint32_t t = push_pos(m, a, base);
            if (t == NONE || !vec_push(m, &m->todo, t)) return false;
            while (!gelem_is_end(&e[a])) a++;
            if (e[a].type == GE_END) break;
            a++;
        }
    }
    m->nodes[node].exp_off = off; /* nodes may have moved: index again */
    m->nodes[node].exp_len = m->pool.n - off;
    return true;
}

/* The node past the top class of s (s != 0, top is a class). */
static uint32_t next_of(herd_gmatch *m, uint32_t s)
{
    if (m->nodes[s].next != NONE) return m->nodes[s].next;
    uint32_t after;
    match_char(m->g->elems, m->nodes[s].pos, 0, &after);
    uint32_t n = push_pos(m, after, m->nodes[s].parent);
    if (n != NONE) m->nodes[s].next = n;
    return n;
}

/* Append to out the stacks of set[0..n) after code point c (deduplicated).
 * set may live in out's buffer below out->n. */
static bool step_set(herd_gmatch *m, u32vec *out, uint32_t set_off, uint32_t n, uint32_t c)
{
    const gelem *e = m->g->elems;
    uint32_t gen = new_gen(m->mark, &m->mark_gen, m->stamp_cap);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = out->v[set_off + i];
        if (s == 0 || !match_char(e, m->nodes[s].pos, c, NULL)) continue;
        uint32_t nx = next_of(m, s);
        if (nx == NONE || !expand(m, nx)) return false;
        const snode *sn = &m->nodes[nx];
        if (!vec_reserve(m, out, (uint64_t)out->n + sn->exp_len)) return false;
        for (uint32_t j = 0; j < sn->exp_len; j++) {
            uint32_t t = m->pool.v[sn->exp_off + j];
            if (m->mark[t] == gen) continue;
            m->mark[t] = gen;
            out->v[out->n++] = t;
        }
    }
    return true;
}

/* ------------------------------------------------------------- bytes */

/* Feed byte b to a UTF-8 decoder (value so far, remain bytes to come):
 * 1 and *cp when a code point is complete, 0 while open, -1 if invalid.
 * Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF,
 * so whatever a grammar lets through is text a JSON parser takes. */
static int utf8_byte(uint32_t *value, uint32_t *remain, uint8_t b, uint32_t *cp)
{
    static const uint8_t len_of[16] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4};
    static const uint32_t min_of[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (*remain) {
        if ((b >> 6) != 2) return -1;
        uint32_t len = *value >> UTF8_LEN_SHIFT, bits = UTF8_BITS(*value) << 6 | (b & 0x3Fu);
        *value = bits | len << UTF8_LEN_SHIFT;
        if (--*remain) return 0;
        *value = 0;
        if (bits < min_of[len] || bits > 0x10FFFF || (bits >= 0xD800 && bits <= 0xDFFF)) return -1;
        *cp = bits;
        return 1;
    }
    int n = len_of[b >> 4];
    if (n == 0 || b == 0xC0 || b == 0xC1 || b >= 0xF5) return -1;
    if (n == 1) {
        *cp = b;
        return 1;
    }
    *value = (b & (0x7Fu >> n)) | (uint32_t)n << UTF8_LEN_SHIFT;
    *remain = (uint32_t)n - 1;
    return 0;
}

/* Can some stack of the set continue an open UTF-8 sequence? */
static bool feasible(const herd_gmatch *m, const uint32_t *set, uint32_t n, uint32_t value,
                     uint32_t remain)
{
    for (uint32_t i = 0; i < n; i++)
        if (set[i] && match_partial(m->g->elems, m->nodes[set[i]].pos, value, remain)) return true;
    return false;
}

/* Walk bytes from the current state; on success the resulting set is
 * scratch[0 .. *len) and the decoder state is in *value, *remain. */
static bool walk(herd_gmatch *m, const uint8_t *b, size_t n, uint32_t *len, uint32_t *value,
                 uint32_t *remain)
{
    u32vec *sc = &m->scratch;
    sc->n = 0;
    if (!vec_reserve(m, sc, m->cur.n)) return false;
    memcpy(sc->v, m->cur.v, m->cur.n * sizeof *sc->v);
    sc->n = m->cur.n;
    *value = m->partial, *remain = m->remain;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp;
        int r = utf8_byte(value, remain, b[i], &cp);
        if (r < 0) return false;
        if (r == 0) continue;
        uint32_t old = sc->n;
        if (!step_set(m, sc, 0, old, cp)) return false;
        sc->n -= old;
        memmove(sc->v, sc->v + old, sc->n * sizeof *sc->v);
        if (!sc->n) return false;
    }
    *len = sc->n;
    return *remain == 0 || feasible(m, sc->v, sc->n, *value, *remain);
}

/* ------------------------------------------------------------- lifecycle */

static void clear_tables(herd_gmatch *m)
{
    m->n_nodes = 1; /* node 0: the empty stack */
    m->nodes[0] = (snode){NONE, NONE, NONE, 0, NONE, 0};
    memset(m->hash, 0, m->hash_cap * sizeof *m->hash);
    m->pool.n = 0;
}

/* The start: each alternative of root, expanded. */
static bool start(herd_gmatch *m)
{
    clear_tables(m);
    m->cur.n = 0;
    m->partial = m->remain = 0;
    const gelem *e = m->g->elems;
    uint32_t a = m->g->rule_start[m->g->root];
    uint32_t gen = new_gen(m->mark, &m->mark_gen, m->stamp_cap);
    for (;;) {
        uint32_t s = push_pos(m, a, 0);
        if (s == NONE || !expand(m, s)) return false;
        for (uint32_t j = 0; j < m->nodes[s].exp_len; j++) {
            uint32_t t = m->pool.v[m->nodes[s].exp_off + j];
            if (m->mark[t] != gen && !vec_push(m, &m->cur, t)) return false;
            m->mark[t] = gen;
        }
        while (!gelem_is_end(&e[a])) a++;
        if (e[a].type == GE_END) return true;
        a++;
    }
}

/* Rebuild the node table holding only the current stacks (caches dropped). */
static bool compact(herd_gmatch *m)
{
    u32vec flat = {0}; /* per stack: depth, then positions bottom to top */
    bool ok = true;
    for (uint32_t i = 0; ok && i < m->cur.n; i++) {
        uint32_t depth = 0, at = flat.n;
        ok = vec_push(m, &flat, 0);
        for (uint32_t s = m->cur.v[i]; ok && s; s = m->nodes[s].parent, depth++)
            ok = vec_push(m, &flat, m->nodes[s].pos);
        if (ok) flat.v[at] = depth;
    }
    if (ok) {
        herd_gmask_cache_clear(m->cache); /* ids change meaning */
        clear_tables(m);
        uint32_t k = 0;
        for (uint32_t i = 0; ok && i < m->cur.n; i++) {
            uint32_t depth = flat.v[k++], s = 0;
            for (uint32_t d = depth; ok && d > 0; d--)
                ok = (s = intern(m, flat.v[k + d - 1], s)) != NONE;
            k += depth;
            m->cur.v[i] = s;
        }
    }
    free(flat.v);
    return ok;
}

herd_status herd_gmatch_new(const herd_grammar *g, const herd_gvocab *v, herd_gmatch **out)
{
    if (!out) return herd_seterr(HERD_E_INVALID, "grammar: out is NULL");
    *out = NULL;
    if (!g) return herd_seterr(HERD_E_INVALID, "grammar: no grammar");
    herd_gmatch *m = calloc(1, sizeof *m);
    if (!m) return herd_seterr(HERD_E_NOMEM, "grammar: out of memory");
    m->g = g, m->v = v;
    if (!grow_nodes(m) || !start(m)) {
        herd_gmatch_free(m);
        return herd_seterr(HERD_E_NOMEM, "grammar: out of memory");
    }
    *out = m;
    return HERD_OK;
}

void herd_gmatch_free(herd_gmatch *m)
{
    if (!m) return;
    free(m->nodes), free(m->hash), free(m->seen), free(m->mark);
    free(m->pool.v), free(m->cur.v), free(m->scratch.v), free(m->todo.v), free(m->tcost),
        free(m->key.v);
    herd_gmask_cache_free(m->cache);
    free(m);
}

void herd_gmatch_use_cache(herd_gmatch *m, bool on)
{
    if (!m) return;
    m->no_cache = !on;
    if (!on) herd_gmask_cache_free(m->cache), m->cache = NULL;
}

const herd_gvocab *herd_gmatch_vocab(const herd_gmatch *m)
{
    return m ? m->v : NULL;
}

void herd_gmatch_reset(herd_gmatch *m)
{
    if (m && !start(m)) m->cur.n = 0; /* out of memory: a matcher that refuses everything */
}

/* ------------------------------------------------------------- queries */

bool herd_gmatch_can_end(const herd_gmatch *m)
{
    if (!m || m->remain) return false;
    for (uint32_t i = 0; i < m->cur.n; i++)
        if (m->cur.v[i] == 0) return true;
    return false;
}

bool herd_gmatch_must_end(const herd_gmatch *m)
{
    return m && m->remain == 0 && m->cur.n == 1 && m->cur.v[0] == 0;
}

static bool piece_of(const herd_gmatch *m, int32_t t, const uint8_t **b, size_t *n)
{
    const herd_gvocab *v = m->v;
    if (!v || t < 0 || t >= v->n_vocab) return false;
    *b = v->bytes + v->off[t];
    *n = v->off[t + 1] - v->off[t];
    return true;
}

bool herd_gmatch_allows(herd_gmatch *m, int32_t token)
{
    const uint8_t *b;
    size_t n;
    if (!m || !piece_of(m, token, &b, &n)) return false;
    if (m->v->eog[token]) return herd_gmatch_can_end(m);
    if (n == 0 || b[0] == 0) return false;
    uint32_t len, value, remain;
    return walk(m, b, n, &len, &value, &remain);
}

static uint32_t set_cost_stacks(const herd_gmatch *m, const uint32_t *set, uint32_t n,
                                bool skip_empty)
{
    uint32_t best = HERD_GMATCH_NO_BUDGET;
    for (uint32_t i = 0; i < n; i++)
        if ((set[i] || !skip_empty) && m->nodes[set[i]].cost < best) best = m->nodes[set[i]].cost;
    return best;
}

/* The cost of a state: its cheapest stack, where an open UTF-8 sequence
 * counts its missing bytes (each may take a token of its own) in place of the
 * (at least one) byte the stack counts for its character. */
static uint32_t set_cost(const herd_gmatch *m, const uint32_t *set, uint32_t n, uint32_t remain)
{
    uint32_t c = set_cost_stacks(m, set, n, remain > 0); /* the empty stack takes no byte */
    return c == HERD_GMATCH_NO_BUDGET || !remain ? c : (c ? c - 1 : 0) + remain;
}

uint32_t herd_gmatch_cost(const herd_gmatch *m)
{
    return m ? set_cost(m, m->cur.v, m->cur.n, m->remain) : HERD_GMATCH_NO_BUDGET;
}

uint32_t herd_gmatch_cost_after(herd_gmatch *m, int32_t token)
{
    const uint8_t *b;
    size_t n;
    if (!m || !piece_of(m, token, &b, &n)) return HERD_GMATCH_NO_BUDGET;
    if (m->v->eog[token]) return herd_gmatch_can_end(m) ? 0 : HERD_GMATCH_NO_BUDGET;
    uint32_t len, value, remain;
    if (n == 0 || b[0] == 0 || !walk(m, b, n, &len, &value, &remain)) return HERD_GMATCH_NO_BUDGET;
    return set_cost(m, m->scratch.v, len, remain);
}

/* Keep the tokens whose cost is within the budget, or else the cheapest. */
static int apply_budget(herd_gmatch *m, bool *allowed, uint32_t budget)
{
    uint32_t best = HERD_GMATCH_NO_BUDGET;
    for (int t = 0; t < m->v->n_vocab; t++)
        if (allowed[t] && m->tcost[t] < best) best = m->tcost[t];
    uint32_t limit = budget > best ? budget : best;
    int count = 0;
    for (int t = 0; t < m->v->n_vocab; t++) {
        if (allowed[t] && m->tcost[t] > limit) allowed[t] = false;
        count += allowed[t];
    }
    return count;
}

/* Depth-first over the trie below tnode, the set being scratch[off, off+len). */
static void mask_walk(herd_gmatch *m, uint32_t tnode, uint32_t off, uint32_t len, uint32_t value,
                      uint32_t remain, bool *allowed, int *count)
{
    const herd_gvocab *v = m->v;
    for (uint32_t c = v->child[tnode]; c != NONE && !m->oom; c = v->sibling[c]) {
        uint32_t val = value, rem = remain, cp, noff = off, nlen = len;
        int r = utf8_byte(&val, &rem, v->byte[c], &cp);
        if (r < 0) continue;
        if (r == 1) {
            noff = m->scratch.n;
            if (!step_set(m, &m->scratch, off, len, cp)) return;
            nlen = m->scratch.n - noff;
        } else if (!feasible(m, m->scratch.v + off, len, val, rem)) {
            continue;
        }
        if (nlen) {
            uint32_t cost = v->tok[c] >= 0 ? set_cost(m, m->scratch.v + noff, nlen, rem) : 0;
            for (int32_t t = v->tok[c]; t >= 0; t = v->tok_next[t])
                allowed[t] = true, (*count)++, m->tcost[t] = cost;
            mask_walk(m, c, noff, nlen, val, rem, allowed, count);
        }
        m->scratch.n = r == 1 ? noff : m->scratch.n;
    }
}

int herd_gmatch_mask(herd_gmatch *m, bool *allowed, uint32_t budget)
{
    if (!m || !m->v || !allowed) return 0;
    const herd_gvocab *v = m->v;
    if (!m->tcost && !(m->tcost = malloc((size_t)v->n_vocab * sizeof *m->tcost))) {
        herd_seterr(HERD_E_NOMEM, "grammar: out of memory");
        return 0;
    }
    /* The key: the stacks, then the open UTF-8 sequence (node ids < 2^31). */
    if (!m->cache && !m->no_cache) m->cache = herd_gmask_cache_new(v->n_vocab);
    if (!vec_reserve(m, &m->key, (uint64_t)m->cur.n + 2)) return 0;
    memcpy(m->key.v, m->cur.v, m->cur.n * sizeof *m->cur.v);
    m->key.v[m->cur.n] = 0x80000000u | m->remain, m->key.v[m->cur.n + 1] = 0x80000000u | m->partial;
    uint32_t n_key = m->cur.n + 2;
    int count = herd_gmask_cache_get(m->cache, m->key.v, n_key, allowed, m->tcost);
    if (count >= 0)
        return budget == HERD_GMATCH_NO_BUDGET || !count ? count : apply_budget(m, allowed, budget);
    memset(allowed, 0, (size_t)v->n_vocab * sizeof *allowed);
    count = 0;
    if (herd_gmatch_can_end(m))
        for (int t = 0; t < v->n_vocab; t++)
            if (v->eog[t]) allowed[t] = true, count++, m->tcost[t] = 0;
    m->scratch.n = 0;
    if (!vec_reserve(m, &m->scratch, m->cur.n)) return 0;
    memcpy(m->scratch.v, m->cur.v, m->cur.n * sizeof *m->cur.v);
    m->scratch.n = m->cur.n;
    mask_walk(m, 0, 0, m->cur.n, m->partial, m->remain, allowed, &count);
    if (m->oom) {
        herd_seterr(HERD_E_NOMEM, "grammar: out of memory");
        return 0;
    }
    herd_gmask_cache_put(m->cache, m->key.v, n_key, allowed, m->tcost, count);
    return budget == HERD_GMATCH_NO_BUDGET || !count ? count : apply_budget(m, allowed, budget);
}

/* ------------------------------------------------------------- advancing */

static bool advance(herd_gmatch *m, const uint8_t *b, size_t n)
{
    uint32_t len, value, remain;
    if (!walk(m, b, n, &len, &value, &remain)) return false;
    if (!vec_reserve(m, &m->cur, len)) return false;
    memcpy(m->cur.v, m->scratch.v, len * sizeof *m->cur.v);
    m->cur.n = len;
    m->partial = value, m->remain = remain;
    if (m->n_nodes > HERD_GMATCH_MAX_NODES && !compact(m)) m->cur.n = 0;
    return true;
}

herd_status herd_gmatch_accept(herd_gmatch *m, int32_t token)
{
    if (!m) return herd_seterr(HERD_E_INVALID, "grammar: no matcher");
    const uint8_t *b;
    size_t n;
    if (!piece_of(m, token, &b, &n))
        return herd_seterr(HERD_E_INVALID, "grammar: token %d out of range", (int)token);
    if (m->v->eog[token]) {
        if (!herd_gmatch_can_end(m))
            return herd_seterr(HERD_E_INVALID, "grammar: end of output before the grammar ends");
        m->cur.n = 0; /* finished: nothing may follow */
        return HERD_OK;
    }
    if (n == 0 || b[0] == 0 || !advance(m, b, n))
        return herd_seterr(m->oom ? HERD_E_NOMEM : HERD_E_INVALID,
                           "grammar: token %d does not continue the grammar", (int)token);
    return HERD_OK;
}

bool herd_gmatch_accept_text(herd_gmatch *m, const char *text, size_t len)
{
    return m && (len == 0 || advance(m, (const uint8_t *)text, len));
}

bool herd_grammar_matches(const herd_grammar *g, const char *text, size_t len)
{
    herd_gmatch *m;
    if (herd_gmatch_new(g, NULL, &m)) return false;
    bool ok = herd_gmatch_accept_text(m, text, len) && herd_gmatch_can_end(m);
    herd_gmatch_free(m);
    return ok;
}
