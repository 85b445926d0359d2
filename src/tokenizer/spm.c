/*
 * spm.c — the text fragments between special tokens to token ids, for
 * SentencePiece-style ("llama") vocabularies, step for step as llama.cpp's
 * llm_tokenizer_spm does it (tokenize.c has split the special tokens out).
 *
 * 1. Each fragment gets a space in front when it starts the text or follows
 *    a special token (and the vocabulary adds a space prefix), and every
 *    space becomes U+2581.
 * 2. The fragment is cut into UTF-8 characters, by the length its lead byte
 *    announces (so invalid UTF-8 gives odd "characters", never a crash), and
 *    adjacent symbols are merged, best-scoring pair first (ties: leftmost),
 *    for as long as some adjacent pair is itself a token.
 * 3. Each final symbol is its token, or else its bytes as <0xNN> tokens.
 */
#include "tokenizer/vocab_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- SPM merging */

typedef struct spm_sym {
    int32_t prev, next; /* neighbours in the chain, -1 at the ends */
    uint32_t off, n;    /* bytes in the escaped text; n == 0 once merged away */
} spm_sym;

typedef struct spm_pair {
    int32_t left, right;
    float score;
    uint32_t size; /* bytes of both symbols when queued: a stale pair differs */
} spm_pair;

typedef struct spm_work {
    char *esc; /* the escaped fragment */
    size_t esc_cap;
    spm_sym *sym;
    size_t sym_cap;
    spm_pair *heap; /* max-heap: best score, then lowest left index */
    size_t heap_n, heap_cap;
} spm_work;

static bool pair_before(const spm_pair *a, const spm_pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(spm_work *w, spm_pair p)
{
    if (!herd_vocab_reserve((void **)&w->heap, &w->heap_cap, w->heap_n + 1, sizeof *w->heap))
        return false;
    size_t i = w->heap_n++;
    while (i > 0 && pair_before(&p, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = p;
    return true;
}

static spm_pair heap_pop(spm_work *w)
{
    spm_pair top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!pair_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Queue the pair (left, right) if their concatenation is a token. */
static bool try_pair(const herd_vocab *v, spm_work *w, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return true;
    const spm_sym *l = &w->sym[left], *r = &w->sym[right];
    int32_t id = herd_i_vocab_find(v, w->esc + l->off, l->n + r->n);
    if (id < 0) return true;
    return heap_push(w, (spm_pair){left, right, v->tok[id].score, l->n + r->n});
}

/* The UTF-8 length a lead byte announces (llama.cpp's unicode_len_utf8):
 * continuation bytes count as 1, 0xF8-0xFF as 4. */
static uint32_t utf8_len(uint8_t c)
{
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

/* Escape the fragment (with the optional leading space) into w->esc. */
static bool escape(spm_work *w, const char *s, size_t n, bool prefix, size_t *out_len)
{
    if (!herd_vocab_reserve((void **)&w->esc, &w->esc_cap, 3 * (n + 1), 1)) return false;
    size_t m = 0;
    for (size_t i = prefix ? 0 : 1; i <= n; i++) {
        char c = i == 0 ? ' ' : s[i - 1];
        if (c == ' ') {
            memcpy(w->esc + m, "\xe2\x96\x81", 3);
            m += 3;
        } else {
            w->esc[m++] = c;
        }
    }
    *out_len = m;
    return true;
}

/* The symbol's token, or its bytes as byte tokens (or UNK if there are none). */
static herd_status emit(const herd_vocab *v, const spm_work *w, const spm_sym *s, id_vec *out)
{
    const char *t = w->esc + s->off;
    int32_t id = herd_i_vocab_find(v, t, s->n);
    if (id >= 0) return push_id(out, id) ? HERD_OK : HERD_E_NOMEM;
    for (uint32_t i = 0; i < s->n; i++) {
        int32_t b = v->byte_tok[(uint8_t)t[i]];
        if (b < 0) {
            if (v->unk < 0)
                return herd_seterr(HERD_E_UNSUPPORTED,
                                   "tokenize: byte 0x%02X has no token and "
                                   "the vocabulary has no unknown token",
                                   (uint8_t)t[i]);
            return push_id(out, v->unk) ? HERD_OK : HERD_E_NOMEM;
        }
        if (!push_id(out, b)) return HERD_E_NOMEM;
    }
    return HERD_OK;
}

static herd_status spm_merge(const herd_vocab *v, spm_work *w, size_t len, id_vec *out)
{
    size_t n_sym = 0;
    if (!herd_vocab_reserve((void **)&w->sym, &w->sym_cap, len, sizeof *w->sym))
        return HERD_E_NOMEM;
    for (size_t off = 0; off < len; n_sym++) {
        uint32_t n = utf8_len((uint8_t)w->esc[off]);
        if (n > len - off) n = (uint32_t)(len - off);
        off += n;
        w->sym[n_sym] = (spm_sym){(int32_t)n_sym - 1, off == len ? -1 : (int32_t)n_sym + 1,
                                  (uint32_t)(off - n), n};
    }
    w->heap_n = 0;
    for (size_t i = 1; i < n_sym; i++)
        if (!try_pair(v, w, (int32_t)i - 1, (int32_t)i)) return HERD_E_NOMEM;
    while (w->heap_n) {
        spm_pair p = heap_pop(w);
        spm_sym *l = &w->sym[p.left], *r = &w->sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = p.left;
        if (!try_pair(v, w, l->prev, p.left) || !try_pair(v, w, p.left, l->next))
            return HERD_E_NOMEM;
    }
    for (int32_t i = n_sym ? 0 : -1; i >= 0; i = w->sym[i].next) {
        herd_status st = emit(v, w, &w->sym[i], out);
        if (st) return st;
    }
    return HERD_OK;
}

static herd_status spm_fragment(const herd_vocab *v, spm_work *w, const char *s, size_t n,
                                bool prefix, id_vec *out)
{
    size_t len;
    if (!escape(w, s, n, prefix, &len)) return HERD_E_NOMEM;
    return spm_merge(v, w, len, out);
}

/* -------------------------------------------------------------- entry */

herd_status herd_spm_tokenize(const herd_vocab *v, const char *text, const frag_vec *fr,
                              id_vec *out)
{
    spm_work w = {0};
    herd_status st = HERD_OK;
    bool prev_special = true; /* the text's start counts as after a special token */
    for (size_t i = 0; i < fr->n && !st; i++) {
        const frag *f = &fr->a[i];
        if (f->tok >= 0) {
            if (!push_id(out, f->tok)) st = HERD_E_NOMEM;
            prev_special = true;
        } else {
            st = spm_fragment(v, &w, text + f->off, f->len, v->add_space_prefix && prev_special,
                              out);
            prev_special = false;
        }
    }
    free(w.esc);
    free(w.sym);
    free(w.heap);
    if (st == HERD_E_NOMEM) herd_seterr(st, "tokenize: out of memory");
    return st;
}
