/*
 * vocab_impl.h — the inside of herd_vocab, shared by the files of the
 * tokenizer module (vocab.c loads it, spm.c tokenizes, piece.c detokenizes).
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
};

static inline const char *vocab_text(const herd_vocab *v, int32_t id)
{
    return v->text + v->tok[id].off;
}

/* The id of a token text, or -1. */
int32_t vocab_find(const herd_vocab *v, const char *s, size_t len);

/* Where text goes: a caller's buffer of fixed capacity (bytes past cap are
 * counted, not written) or, with grow set, a malloc'ed buffer that grows. */
typedef struct vocab_sink {
    char *buf;
    size_t cap, len;
    bool grow, oom;
} vocab_sink;

void sink_put(vocab_sink *k, const char *s, size_t n);

/* Append the piece of one token (llama.cpp's token_to_piece) with up to lstrip
 * leading spaces removed. Returns false for an id outside the vocabulary. */
bool vocab_piece(const herd_vocab *v, int32_t id, bool special, int lstrip, vocab_sink *k);

#endif
