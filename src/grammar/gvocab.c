/*
 * gvocab.c — the per-vocabulary tables of the matcher (see gvocab_impl.h),
 * built once per model: every token's piece and a byte trie over them.
 */
#include "grammar/gvocab_impl.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

void herd_gvocab_free(herd_gvocab *v)
{
    if (!v) return;
    free(v->off), free(v->bytes), free(v->eog);
    free(v->child), free(v->sibling), free(v->byte), free(v->tok), free(v->tok_next);
    free(v);
}

int herd_gvocab_n_vocab(const herd_gvocab *v)
{
    return v ? v->n_vocab : 0;
}

/* The child of node under byte b, created when missing; NONE: out of memory. */
static uint32_t trie_child(herd_gvocab *v, uint32_t *cap, uint32_t node, uint8_t b)
{
    for (uint32_t c = v->child[node]; c != NONE; c = v->sibling[c])
        if (v->byte[c] == b) return c;
    if (v->n_nodes == *cap) {
        uint32_t nc = *cap * 2;
        uint32_t *ch = realloc(v->child, nc * sizeof *ch);
        if (ch) v->child = ch;
        uint32_t *sb = realloc(v->sibling, nc * sizeof *sb);
        if (sb) v->sibling = sb;
        uint8_t *by = realloc(v->byte, nc * sizeof *by);
        if (by) v->byte = by;
        int32_t *tk = realloc(v->tok, nc * sizeof *tk);
        if (tk) v->tok = tk;
        if (!ch || !sb || !by || !tk) return NONE;
        *cap = nc;
    }
    uint32_t id = v->n_nodes++;
    v->child[id] = NONE;
    v->sibling[id] = v->child[node];
    v->byte[id] = b;
    v->tok[id] = -1;
    v->child[node] = id;
    return id;
}

static herd_status build_trie(herd_gvocab *v)
{
    uint32_t cap = 4096;
    v->child = malloc(cap * sizeof *v->child);
    v->sibling = malloc(cap * sizeof *v->sibling);
    v->byte = malloc(cap);
    v->tok = malloc(cap * sizeof *v->tok);
    v->tok_next = malloc((size_t)v->n_vocab * sizeof *v->tok_next);
    if (!v->child || !v->sibling || !v->byte || !v->tok || !v->tok_next) return HERD_E_NOMEM;
    v->n_nodes = 1;
    v->child[0] = v->sibling[0] = NONE;
    v->byte[0] = 0;
    v->tok[0] = -1;
    for (int t = v->n_vocab - 1; t >= 0; t--) { /* backwards: chains list lower ids first */
        v->tok_next[t] = -1;
        uint32_t a = v->off[t], b = v->off[t + 1];
        if (v->eog[t] || a == b || v->bytes[a] == 0) continue; /* never text */
        uint32_t node = 0;
        for (uint32_t i = a; i < b && node != NONE; i++)
            node = trie_child(v, &cap, node, v->bytes[i]);
        if (node == NONE) return HERD_E_NOMEM;
        v->tok_next[t] = v->tok[node];
        v->tok[node] = t;
    }
    return HERD_OK;
}

/* Renumber the trie in depth-first order, so that the mask's walk (depth
 * first too) reads the node arrays front to back instead of jumping around
 * memory: a node's first child is the next node. */
static herd_status relayout(herd_gvocab *v)
{
    uint32_t n = v->n_nodes;
    uint32_t *order = malloc(n * sizeof *order), *stack = malloc(n * sizeof *stack);
    uint32_t *renum = malloc(n * sizeof *renum);
    uint32_t *child = malloc(n * sizeof *child), *sibling = malloc(n * sizeof *sibling);
    uint8_t *byte = malloc(n);
    int32_t *tok = malloc(n * sizeof *tok);
    herd_status st =
        order && stack && renum && child && sibling && byte && tok ? HERD_OK : HERD_E_NOMEM;
    if (!st) {
        uint32_t k = 0, sp = 0;
        stack[sp++] = 0;
        while (sp) { /* preorder; children pushed in reverse so the first comes first */
            uint32_t x = stack[--sp];
            renum[x] = k;
            order[k++] = x;
            uint32_t first = sp;
            for (uint32_t c = v->child[x]; c != NONE; c = v->sibling[c]) stack[sp++] = c;
            for (uint32_t a = first, b = sp; a + 1 < b; a++, b--) {
                uint32_t t = stack[a];
                stack[a] = stack[b - 1], stack[b - 1] = t;
            }
        }
        for (uint32_t i = 0; i < n; i++) {
            uint32_t x = order[i];
            child[i] = v->child[x] == NONE ? NONE : renum[v->child[x]];
            sibling[i] = v->sibling[x] == NONE ? NONE : renum[v->sibling[x]];
            byte[i] = v->byte[x];
            tok[i] = v->tok[x];
        }
        free(v->child), free(v->sibling), free(v->byte), free(v->tok);
        v->child = child, v->sibling = sibling, v->byte = byte, v->tok = tok;
        child = sibling = NULL, byte = NULL, tok = NULL;
    }
    free(order), free(stack), free(renum), free(child), free(sibling), free(byte), free(tok);
    return st;
}

herd_status herd_gvocab_from_pieces(int n_vocab, const char *const *pieces, const int *lens,
                                    const bool *eog, herd_gvocab **out)
{
    if (!out) return herd_seterr(HERD_E_INVALID, "gvocab: out is NULL");
    *out = NULL;
    if (n_vocab <= 0 || !pieces || !lens)
        return herd_seterr(HERD_E_INVALID, "gvocab: empty vocabulary");
    herd_gvocab *v = calloc(1, sizeof *v);
    uint64_t total = 0;
    for (int i = 0; i < n_vocab; i++) {
        if (lens[i] < 0 || (lens[i] && !pieces[i]))
            return free(v), herd_seterr(HERD_E_INVALID, "gvocab: bad piece %d", i);
        total += (uint64_t)lens[i];
    }
    if (!v || total > UINT32_MAX) return free(v), herd_seterr(HERD_E_NOMEM, "gvocab: too large");
    v->n_vocab = n_vocab;
    v->off = malloc(((size_t)n_vocab + 1) * sizeof *v->off);
    v->bytes = malloc(total ? total : 1);
    v->eog = calloc((size_t)n_vocab, sizeof *v->eog);
    if (!v->off || !v->bytes || !v->eog) {
        herd_gvocab_free(v);
        return herd_seterr(HERD_E_NOMEM, "gvocab: out of memory");
    }
    uint32_t at = 0;
    for (int i = 0; i < n_vocab; i++) {
        v->off[i] = at;
        if (lens[i]) memcpy(v->bytes + at, pieces[i], (size_t)lens[i]);
        at += (uint32_t)lens[i];
        v->eog[i] = eog && eog[i];
    }
    v->off[n_vocab] = at;
    if (build_trie(v) || relayout(v)) {
        herd_gvocab_free(v);
        return herd_seterr(HERD_E_NOMEM, "gvocab: out of memory");
    }
    *out = v;
    return HERD_OK;
}

herd_status herd_gvocab_from_model(const herd_model *model, herd_gvocab **out)
{
    if (!out) return herd_seterr(HERD_E_INVALID, "gvocab: out is NULL");
    *out = NULL;
    int n = model ? herd_n_vocab(model) : 0;
    if (n <= 0) return herd_seterr(HERD_E_INVALID, "gvocab: no vocabulary");
    char **pieces = calloc((size_t)n, sizeof *pieces);
    int *lens = calloc((size_t)n, sizeof *lens);
    bool *eog = calloc((size_t)n, sizeof *eog);
    herd_status st = pieces && lens && eog ? HERD_OK : HERD_E_NOMEM;
    char buf[256];
    for (int i = 0; i < n && !st; i++) {
        eog[i] = herd_token_is_eog(model, i);
        int len = herd_token_to_piece(model, i, false, buf, (int)sizeof buf);
        if (len < 0) len = 0;
        lens[i] = len;
        if (len && !(pieces[i] = malloc((size_t)len)))
            st = HERD_E_NOMEM;
        else if (len > (int)sizeof buf)
            herd_token_to_piece(model, i, false, pieces[i], len);
        else if (len)
            memcpy(pieces[i], buf, (size_t)len);
    }
    if (!st)
        st = herd_gvocab_from_pieces(n, (const char *const *)pieces, lens, eog, out);
    else
        herd_seterr(st, "gvocab: out of memory");
    for (int i = 0; pieces && i < n; i++) free(pieces[i]);
    free(pieces), free(lens), free(eog);
    return st;
}
