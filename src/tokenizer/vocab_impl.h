/*
 * vocab_impl.h — the inside of herd_vocab, shared by the files of the
 * tokenizer module: vocab.c loads it, tokenize.c splits out special tokens and
 * hands the rest to spm.c (SentencePiece) or bpe.c (byte-level BPE, with
 * pretok.c's pre-tokenizers), piece.c detokenizes.
 *
 * Token attributes are kept as llama.cpp's bit set (llama_token_attr), not as
 * the file's token_type: llama.cpp adds bits after loading (an end-of-turn
 * token stored as NORMAL becomes CONTROL too, Phi-3's special tokens get
 * RSTRIP), and tokenization and detokenization test those bits.
 */
#ifndef HERD_VOCAB_IMPL_H
#define HERD_VOCAB_IMPL_H

#include "tokenizer/tokenizer.h"

enum {
    ATTR_UNKNOWN = 1 << 0,
    ATTR_UNUSED = 1 << 1,
    ATTR_NORMAL = 1 << 2,
    ATTR_CONTROL = 1 << 3,
    ATTR_USER_DEFINED = 1 << 4,
    ATTR_BYTE = 1 << 5,
    ATTR_LSTRIP = 1 << 7,
    ATTR_RSTRIP = 1 << 8,
};

typedef struct vocab_token {
    uint32_t off, len; /* text in herd_vocab.text (NUL-terminated there) */
    float score;
    uint16_t attr;
} vocab_token;

struct herd_vocab {
    herd_vocab_kind kind;
    char model[32]; /* tokenizer.ggml.model */
    char pre[64];   /* tokenizer.ggml.pre, "" if absent */
    int n;
    vocab_token *tok;
    char *text; /* every token's text, NUL-terminated */

    /* text → id: open addressing, slots hold id + 1 (0 = empty). */
    int32_t *slot;
    uint32_t slot_mask;

    int32_t bos, eos, eot, eom, unk, pad, sep, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_space_prefix, clean_spaces, escape_spaces;

    int32_t *eog; /* end-of-generation ids, few */
    int n_eog;
    /* Control, user-defined and unknown tokens, longest text first: the order
     * in which tokenizer_st_partition looks for them. */
    int32_t *special;
    int n_special;
    int32_t byte_tok[256]; /* byte → its fallback token, -1 if none */

    /* byte-level BPE (bpe.c): NULL when the file has no merges, or names a
     * pre-tokenizer herd does not know; tokenizing then fails with a reason. */
    struct bpe_merges *merges;
    struct pretok *pretok;
    bool ignore_merges; /* a word that is a token is not merged (Llama 3) */
};

static inline const char *vocab_text(const herd_vocab *v, int32_t id)
{
    return v->text + v->tok[id].off;
}

/* The id of a token text, or -1. */
int32_t herd_i_vocab_find(const herd_vocab *v, const char *s, size_t len);

/* Where text goes: a caller's buffer of fixed capacity (bytes past cap are
 * counted, not written) or, with grow set, a malloc'ed buffer that grows. */
typedef struct vocab_sink {
    char *buf;
    size_t cap, len;
    bool grow, oom;
} vocab_sink;

void herd_sink_put(vocab_sink *k, const char *s, size_t n);

/* ------------------------------------------------------------ tokenizing */

/* Grow *a (of *cap elements of elem bytes) to hold need; false if out of memory. */
bool herd_vocab_reserve(void **a, size_t *cap, size_t need, size_t elem);

typedef struct id_vec {
    int32_t *a;
    size_t n, cap;
} id_vec;

static inline bool push_id(id_vec *v, int32_t id)
{
    if (!herd_vocab_reserve((void **)&v->a, &v->cap, v->n + 1, sizeof *v->a)) return false;
    v->a[v->n++] = id;
    return true;
}

/* A piece of the input: a special token (tok >= 0) or raw text. */
typedef struct frag {
    int32_t tok;
    size_t off, len;
} frag;

typedef struct frag_vec {
    frag *a;
    size_t n, cap;
} frag_vec;

/* The ids of the fragments, appended to out (spm.c, bpe.c). */
herd_status herd_spm_tokenize(const herd_vocab *v, const char *text, const frag_vec *fr,
                              id_vec *out);
herd_status herd_bpe_tokenize(const herd_vocab *v, const char *text, const frag_vec *fr,
                              id_vec *out);

/* Read tokenizer.ggml.merges and pick the pre-tokenizer (bpe.c). Only running
 * out of memory fails; what is missing makes tokenizing fail later. */
herd_status herd_bpe_load(herd_vocab *v, const gguf_file *f);
void herd_bpe_free(herd_vocab *v);

/* Append the piece of one token (llama.cpp's token_to_piece) with up to lstrip
 * leading spaces removed. Returns false for an id outside the vocabulary. */
bool herd_vocab_piece(const herd_vocab *v, int32_t id, bool special, int lstrip, vocab_sink *k);

#endif
