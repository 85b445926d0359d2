/*
 * bpe.c — byte-level BPE ("gpt2" vocabularies): the text fragments between
 * special tokens to token ids, as llama.cpp's llm_tokenizer_bpe_session does.
 *
 * 1. The pre-tokenizer (pretok.c) cuts the fragment into words.
 * 2. Each byte of a word is one symbol: the character GPT-2's byte-to-unicode
 *    table gives it ("Ġ" for a space), which is how the vocabulary and the
 *    merges spell bytes.
 * 3. Adjacent symbols are merged, the pair of lowest merge rank first (ties:
 *    leftmost), for as long as some adjacent pair is a merge.
 * 4. Each final symbol is its token. One that is not a token gives, for each
 *    byte of its spelling, the token spelled by that one byte, if any; this
 *    drops most such bytes, as llama.cpp does.
 * With ignore_merges (Llama 3), a word that is a token as a whole is taken
 * as is.
 *
 * llama.cpp compares strings at every step; herd interns every string the
 * merges can produce (the operands and results of tokenizer.ggml.merges and
 * the 256 byte characters), so a symbol is a string id, a merge is a lookup of
 * two ids, and the string comparisons become integer ones. A symbol's string
 * can only grow, so a queued pair is stale exactly when either side's length
 * changed (the same test spm.c makes).
 */
#include "tokenizer/pretok.h"
#include "tokenizer/vocab_impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct bpe_merges {
    /* interned strings */
    char *chars;
    size_t chars_len, chars_cap;
    uint32_t *off, *len;
    int32_t *tok; /* the token each string spells, or -1 */
    int32_t n_str, str_cap;
    int32_t *str_slot; /* hash: string → id + 1, 0 empty */
    uint32_t str_mask;
    /* (left id, right id) → rank and the merged string's id, in one cache line */
    struct bpe_rule {
        uint64_t key; /* left << 32 | right; PAIR_NONE: empty */
        int32_t rank, sid;
    } * pair;
    uint32_t pair_mask;
    int32_t byte_sid[256];
    char byte_chr[256][2]; /* GPT-2's character for each byte, as UTF-8 */
    uint8_t byte_chr_len[256];
} bpe_merges;

#define PAIR_NONE UINT64_MAX

/* ------------------------------------------------------------- hashing */

static uint32_t hash_str(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static inline uint32_t hash_pair(uint64_t k)
{
    k *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 32);
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t c = 1024;
    while (c < n) c *= 2;
    return c;
}

/* The id of s[0..n), interned if new; -1 if out of memory. */
static int32_t intern(bpe_merges *m, const char *s, size_t n)
{
    uint32_t h = hash_str(s, n) & m->str_mask;
    for (;; h = (h + 1) & m->str_mask) {
        int32_t e = m->str_slot[h];
        if (e == 0) break;
        if (m->len[e - 1] == n && memcmp(m->chars + m->off[e - 1], s, n) == 0) return e - 1;
    }
    if (m->n_str == m->str_cap ||
        !herd_vocab_reserve((void **)&m->chars, &m->chars_cap, m->chars_len + n + 1, 1))
        return -1;
    int32_t id = m->n_str++;
    memcpy(m->chars + m->chars_len, s, n);
    m->off[id] = (uint32_t)m->chars_len;
    m->len[id] = (uint32_t)n;
    m->chars_len += n;
    m->str_slot[h] = id + 1;
    return id;
}

static const struct bpe_rule *find_pair(const bpe_merges *m, int32_t l, int32_t r)
{
    uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (uint32_t h = hash_pair(k) & m->pair_mask;; h = (h + 1) & m->pair_mask) {
        if (m->pair[h].key == k) return &m->pair[h];
        if (m->pair[h].key == PAIR_NONE) return NULL;
    }
}

/* Add a merge unless the pair has one already: the first rank stays, as
 * llama.cpp's bpe_ranks.emplace keeps it. */
static void add_pair(bpe_merges *m, int32_t l, int32_t r, int32_t rank, int32_t sid)
{
    uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint32_t h = hash_pair(k) & m->pair_mask;
    for (; m->pair[h].key != PAIR_NONE; h = (h + 1) & m->pair_mask)
        if (m->pair[h].key == k) return;
    m->pair[h] = (struct bpe_rule){k, rank, sid};
}

/* ------------------------------------------------------------- loading */

/* The UTF-8 of the character GPT-2's byte-level table writes for byte b:
 * printable Latin-1 as itself, the other 68 bytes as U+0100.. in order. */
static int gpt2_char(uint8_t b, char out[2])
{
    unsigned cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174))
        cp = 256 + (b <= 32 ? b : b <= 160 ? 33u + (b - 127u) : 67u);
    char u[4];
    int n = herd_utf8_encode(cp, u); /* 1 or 2 bytes: cp < 0x800 */
    memcpy(out, u, 2);
    return n;
}

static bpe_merges *merges_new(uint64_t n_merges)
{
    bpe_merges *m = herd_calloc(1, sizeof *m);
    if (!m) return NULL;
    m->str_cap = (int32_t)(3 * n_merges + 256);
    uint32_t scap = pow2_at_least(2 * (uint64_t)m->str_cap);
    uint32_t pcap = pow2_at_least(2 * n_merges);
    m->str_mask = scap - 1, m->pair_mask = pcap - 1;
    m->off = malloc((size_t)m->str_cap * sizeof *m->off);
    m->len = malloc((size_t)m->str_cap * sizeof *m->len);
    m->str_slot = calloc(scap, sizeof *m->str_slot);
    m->pair = malloc(pcap * sizeof *m->pair);
    if (!m->off || !m->len || !m->str_slot || !m->pair)
        return m; /* the caller sees the NULLs and frees */
    for (uint32_t i = 0; i < pcap; i++) m->pair[i].key = PAIR_NONE;
    for (int b = 0; b < 256; b++) {
        m->byte_chr_len[b] = (uint8_t)gpt2_char((uint8_t)b, m->byte_chr[b]);
        m->byte_sid[b] = intern(m, m->byte_chr[b], m->byte_chr_len[b]);
    }
    return m;
}

static void merges_free(bpe_merges *m)
{
    if (!m) return;
    free(m->chars);
    free(m->off);
    free(m->len);
    free(m->tok);
    free(m->str_slot);
    free(m->pair);
    free(m);
}

/* One merge "A B" (split at the first space after the first byte, as
 * llama.cpp splits it); lines without one can never apply. */
static bool read_merge(bpe_merges *m, gguf_str s, int32_t rank, char **buf, size_t *cap)
{
    const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
    if (!sp) return true;
    size_t a = (size_t)(sp - s.ptr), b = s.len - a - 1;
    if (!herd_vocab_reserve((void **)buf, cap, a + b, 1)) return false;
    memcpy(*buf, s.ptr, a);
    memcpy(*buf + a, sp + 1, b);
    int32_t l = intern(m, s.ptr, a), r = intern(m, sp + 1, b), lr = intern(m, *buf, a + b);
    if (l < 0 || r < 0 || lr < 0) return false;
    add_pair(m, l, r, rank, lr);
    return true;
}

static herd_status load_merges(herd_vocab *v, const gguf_kv *kv)
{
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING)
        return herd_seterr(HERD_E_FORMAT, "tokenizer.ggml.merges is not an array of strings");
    if (kv->arr_n > INT32_MAX / 4)
        return herd_seterr(HERD_E_FORMAT, "tokenizer.ggml.merges has %llu merges",
                           (unsigned long long)kv->arr_n);
    bpe_merges *m = merges_new(kv->arr_n);
    bool ok = m && m->off && m->len && m->str_slot && m->pair;
    char *buf = NULL;
    size_t cap = 0;
    for (uint64_t i = 0; ok && i < kv->arr_n; i++)
        ok = read_merge(m, herd_gguf_arr_str(kv, i), (int32_t)i, &buf, &cap);
    free(buf);
    if (ok && (m->tok = malloc((size_t)m->n_str * sizeof *m->tok)) != NULL) {
        for (int32_t i = 0; i < m->n_str; i++)
            m->tok[i] = herd_i_vocab_find(v, m->chars + m->off[i], m->len[i]);
        v->merges = m;
        return HERD_OK;
    }
    merges_free(m);
    return herd_seterr(HERD_E_NOMEM, "loading tokenizer.ggml.merges: out of memory");
}

herd_status herd_bpe_load(herd_vocab *v, const gguf_file *f)
{
    const gguf_kv *kv = herd_gguf_find_kv(f, "tokenizer.ggml.merges");
    herd_status st = kv ? load_merges(v, kv) : HERD_OK;
    if (st) return st;
    st = herd_pretok_new(v->pre, &v->pretok);
    return st == HERD_E_NOMEM ? st : HERD_OK; /* an unknown one fails when used */
}

void herd_bpe_free(herd_vocab *v)
{
    merges_free(v->merges);
    herd_pretok_free(v->pretok);
}

/* ------------------------------------------------------------- merging */

typedef struct bpe_sym {
    int32_t prev, next, sid; /* neighbours (-1 at the ends), string id */
    uint32_t n;              /* bytes; 0 once merged away */
} bpe_sym;

typedef struct bpe_pair {
    int32_t left, right, rank, sid;
    uint32_t size; /* bytes of both symbols when queued */
} bpe_pair;

typedef struct bpe_work {
    pretok_work pre;
    char *word, *spell; /* a word's bytes, and its byte-level spelling */
    size_t word_cap, spell_cap;
    bpe_sym *sym;
    size_t sym_cap;
    bpe_pair *heap; /* min-heap: lowest rank, then leftmost */
    size_t heap_n, heap_cap;
} bpe_work;

static inline bool pair_before(const bpe_pair *a, const bpe_pair *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool heap_push(bpe_work *w, bpe_pair p)
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

static bpe_pair heap_pop(bpe_work *w)
{
    bpe_pair top = w->heap[0], last = w->heap[--w->heap_n];
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

/* Queue (left, right) if their strings are a merge. */
static bool try_pair(const bpe_merges *m, bpe_work *w, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return true;
    const bpe_sym *l = &w->sym[left], *r = &w->sym[right];
    const struct bpe_rule *rule = find_pair(m, l->sid, r->sid);
    if (!rule) return true;
    return heap_push(w, (bpe_pair){left, right, rule->rank, rule->sid, l->n + r->n});
}

/* The byte-level spelling of bytes s[0..n) into w->spell; its length. */
static size_t spell(const bpe_merges *m, bpe_work *w, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        memcpy(w->spell + k, m->byte_chr[b], m->byte_chr_len[b]);
        k += m->byte_chr_len[b];
    }
    return k;
}

/* A final symbol: its token, or the one-byte tokens of its spelling. */
static bool emit_symbol(const herd_vocab *v, bpe_work *w, const bpe_sym *s, size_t at, id_vec *out)
{
    const bpe_merges *m = v->merges;
    if (m->tok[s->sid] >= 0) return push_id(out, m->tok[s->sid]);
    size_t k = spell(m, w, w->word + at, s->n);
    for (size_t i = 0; i < k; i++) {
        int32_t id = herd_i_vocab_find(v, w->spell + i, 1);
        if (id >= 0 && !push_id(out, id)) return false;
    }
    return true;
}

static herd_status bpe_word(const herd_vocab *v, bpe_work *w, size_t n, id_vec *out)
{
    const bpe_merges *m = v->merges;
    if (v->ignore_merges) {
        int32_t id = herd_i_vocab_find(v, w->spell, spell(m, w, w->word, n));
        if (id >= 0) return push_id(out, id) ? HERD_OK : HERD_E_NOMEM;
    }
    if (!herd_vocab_reserve((void **)&w->sym, &w->sym_cap, n, sizeof *w->sym)) return HERD_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        w->sym[i] = (bpe_sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1,
                              m->byte_sid[(uint8_t)w->word[i]], 1};
    w->heap_n = 0;
    for (size_t i = 1; i < n; i++)
        if (!try_pair(m, w, (int32_t)i - 1, (int32_t)i)) return HERD_E_NOMEM;
    while (w->heap_n) {
        bpe_pair p = heap_pop(w);
        bpe_sym *l = &w->sym[p.left], *r = &w->sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size) continue; /* stale */
        l->sid = p.sid;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = p.left;
        if (!try_pair(m, w, l->prev, p.left) || !try_pair(m, w, p.left, l->next))
            return HERD_E_NOMEM;
    }
    for (int32_t i = n ? 0 : -1; i >= 0; i = w->sym[i].next)
        if (!emit_symbol(v, w, &w->sym[i], (size_t)i, out)) return HERD_E_NOMEM;
    return HERD_OK;
}

/* ---------------------------------------------------------------- entry */

/* Pre-tokenize one raw fragment and merge each of its words. */
static herd_status bpe_fragment(const herd_vocab *v, bpe_work *w, const char *s, size_t n,
                                id_vec *out)
{
    herd_status st = herd_pretok_split(v->pretok, &w->pre, s, n);
    const uint32_t *cpt = w->pre.cpt;
    for (size_t i = 0; i < w->pre.n_len && !st; cpt += w->pre.len[i++]) {
        size_t len = w->pre.len[i], k = 0;
        if (!herd_vocab_reserve((void **)&w->word, &w->word_cap, 4 * len, 1) ||
            !herd_vocab_reserve((void **)&w->spell, &w->spell_cap, 8 * len, 1))
            return HERD_E_NOMEM;
        for (size_t j = 0; j < len; j++) k += (size_t)herd_utf8_encode(cpt[j], w->word + k);
        st = bpe_word(v, w, k, out);
    }
    return st;
}

herd_status herd_bpe_tokenize(const herd_vocab *v, const char *text, const frag_vec *fr,
                              id_vec *out)
{
    if (!v->merges)
        return herd_seterr(HERD_E_FORMAT, "tokenize: the vocabulary has no tokenizer.ggml.merges");
    if (!v->pretok)
        return herd_seterr(HERD_E_UNSUPPORTED, "tokenize: pre-tokenizer '%s' is not supported",
                           v->pre[0] ? v->pre : "default");
    bpe_work w = {0};
    herd_status st = HERD_OK;
    for (size_t i = 0; i < fr->n && !st; i++) {
        const frag *f = &fr->a[i];
        if (f->tok >= 0)
            st = push_id(out, f->tok) ? HERD_OK : HERD_E_NOMEM;
        else
            st = bpe_fragment(v, &w, text + f->off, f->len, out);
    }
    herd_pretok_work_free(&w.pre);
    free(w.word);
    free(w.spell);
    free(w.sym);
    free(w.heap);
    if (st == HERD_E_NOMEM) herd_seterr(st, "tokenize: out of memory");
    return st;
}
