/*
 * tokenize.c — text to token ids, for every kind of vocabulary, as llama.cpp's
 * llama_vocab::impl::tokenize does it.
 *
 * 1. Special tokens are split out of the text (tokenizer_st_partition):
 *    each special token in turn, longest first, is searched for in the text
 *    fragments not yet claimed, and every occurrence cuts its fragment in
 *    three. User-defined tokens are always split out; control and unknown
 *    ones only when parse_special is set. LSTRIP/RSTRIP tokens take the
 *    spaces beside them along.
 * 2. BOS goes first if asked for.
 * 3. The raw fragments go to the vocabulary's tokenizer: spm.c for
 *    SentencePiece, bpe.c for byte-level BPE; special tokens are their ids.
 */
#define _GNU_SOURCE /* memmem */
#include "tokenizer/vocab_impl.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

bool herd_vocab_reserve(void **a, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *p = realloc(*a, c * elem);
    if (!p) return false;
    *a = p;
    *cap = c;
    return true;
}

/* --------------------------------------------------- special partition */

static bool push_frag(frag_vec *v, int32_t tok, size_t off, size_t len)
{
    if (!herd_vocab_reserve((void **)&v->a, &v->cap, v->n + 1, sizeof *v->a)) return false;
    v->a[v->n++] = (frag){tok, off, len};
    return true;
}

/* Cut every occurrence of special token id out of the raw fragment f. */
static bool split_fragment(const herd_vocab *v, const char *text, frag f, int32_t id, frag_vec *out)
{
    const char *t = vocab_text(v, id);
    size_t tl = v->tok[id].len, off = f.off, len = f.len;
    uint16_t attr = v->tok[id].attr;
    while (len > 0) {
        const char *p = memmem(text + off, len, t, tl);
        if (!p) return push_frag(out, -1, off, len);
        size_t at = (size_t)(p - text), left = at - off, end = off + len;
        if (attr & ATTR_LSTRIP)
            while (left > 0 && isspace((unsigned char)text[off + left - 1])) left--;
        if (left > 0 && !push_frag(out, -1, off, left)) return false;
        if (!push_frag(out, id, 0, 0)) return false;
        off = at + tl;
        len = end - off;
        if (attr & ATTR_RSTRIP)
            while (len > 0 && isspace((unsigned char)text[off])) off++, len--;
    }
    return true;
}

/* What the text is made of, to skip the special tokens that cannot occur in
 * it without searching: the bytes and byte pairs it has, and a Bloom filter
 * of its 4-byte windows. Vocabularies have thousands of user-defined tokens
 * ("[PAD151674]"…) that would otherwise each be searched for in the whole
 * text. A token may occur only if all its 4-byte windows do. */
typedef struct grams {
    uint8_t one[32], two[8192];
    uint8_t *four;
    uint32_t shift; /* the Bloom filter has 1 << (32 - shift) bits */
} grams;

static inline uint32_t gram4(const char *s, uint32_t shift)
{
    uint32_t x;
    memcpy(&x, s, 4);
    return (x * 0x9E3779B1u) >> shift;
}

#define BIT_SET(a, i) ((a)[(i) >> 3] |= (uint8_t)(1u << ((i)&7)))
#define BIT_GET(a, i) ((a)[(i) >> 3] >> ((i)&7) & 1)

static grams *grams_of(const char *text, size_t len)
{
    grams *g = calloc(1, sizeof *g);
    uint32_t bits = 4096, shift = 20;
    while (bits < 8 * len && shift > 8) bits *= 2, shift--;
    if (!g || !(g->four = calloc(bits / 8, 1))) {
        free(g);
        return NULL;
    }
    g->shift = shift;
    for (size_t i = 0; i < len; i++) {
        unsigned a = (uint8_t)text[i];
        BIT_SET(g->one, a);
        if (i + 1 < len) BIT_SET(g->two, a << 8 | (uint8_t)text[i + 1]);
        if (i + 3 < len) BIT_SET(g->four, gram4(text + i, shift));
    }
    return g;
}

static void grams_free(grams *g)
{
    if (g) free(g->four);
    free(g);
}

static bool may_occur(const grams *g, const char *t, size_t tl)
{
    if (!BIT_GET(g->one, (uint8_t)t[0])) return false;
    for (size_t i = 0; i + 1 < tl && i < 2; i++)
        if (!BIT_GET(g->two, (unsigned)(uint8_t)t[i] << 8 | (uint8_t)t[i + 1])) return false;
    for (size_t i = 0; i + 3 < tl; i++)
        if (!BIT_GET(g->four, gram4(t + i, g->shift))) return false;
    return true;
}

static herd_status partition(const herd_vocab *v, const char *text, size_t len, bool parse_special,
                             frag_vec *out)
{
    frag_vec cur = {0}, next = {0};
    grams *g = NULL;
    herd_status st = HERD_OK;
    if (len && !push_frag(&cur, -1, 0, len)) goto oom;
    for (int i = 0; i < v->n_special && len; i++) {
        int32_t id = v->special[i];
        if (!parse_special && (v->tok[id].attr & (ATTR_CONTROL | ATTR_UNKNOWN))) continue;
        if (v->tok[id].len > len) continue;
        if (!g && !(g = grams_of(text, len))) goto oom;
        if (!may_occur(g, vocab_text(v, id), v->tok[id].len)) continue;
        next.n = 0;
        for (size_t j = 0; j < cur.n; j++) {
            bool ok = cur.a[j].tok >= 0 ? push_frag(&next, cur.a[j].tok, 0, 0)
                                        : split_fragment(v, text, cur.a[j], id, &next);
            if (!ok) goto oom;
        }
        frag_vec t = cur;
        cur = next;
        next = t;
    }
    goto done;
oom:
    st = herd_seterr(HERD_E_NOMEM, "tokenize: out of memory");
done:
    grams_free(g);
    free(next.a);
    if (st)
        free(cur.a);
    else
        *out = cur;
    return st;
}

herd_status herd_vocab_tokenize(const herd_vocab *v, const char *text, size_t len, bool add_bos,
                                bool parse_special, int32_t *ids, int cap, int *n_ids)
{
    if (!v || !n_ids || (!text && len) || cap < 0 || (!ids && cap > 0))
        return herd_seterr(HERD_E_INVALID, "tokenize: invalid arguments");
    *n_ids = 0;
    if (len > (size_t)INT_MAX / 4)
        return herd_seterr(HERD_E_RANGE, "tokenize: text of %zu bytes is too long", len);
    frag_vec fr = {0};
    id_vec out = {0};
    herd_status st = partition(v, text, len, parse_special, &fr);
    if (!st && add_bos && v->bos >= 0 && !push_id(&out, v->bos))
        st = herd_seterr(HERD_E_NOMEM, "tokenize: out of memory");
    if (!st)
        st = v->kind == HERD_VOCAB_SPM ? herd_spm_tokenize(v, text, &fr, &out)
                                       : herd_bpe_tokenize(v, text, &fr, &out);
    if (!st && out.n > (size_t)INT_MAX) st = herd_seterr(HERD_E_RANGE, "tokenize: too many tokens");
    if (!st) {
        size_t m = out.n < (size_t)cap ? out.n : (size_t)cap;
        if (m) memcpy(ids, out.a, m * sizeof *ids);
        *n_ids = (int)out.n;
    }
    free(fr.a);
    free(out.a);
    return st;
}
