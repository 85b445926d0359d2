/*
 * pretok.h — the pre-tokenizer of byte-level BPE vocabularies: text cut into
 * the words that BPE then merges within, the way llama.cpp's unicode.cpp and
 * llm_tokenizer_bpe do it.
 *
 * A vocabulary names its pre-tokenizer (tokenizer.ggml.pre); each name stands
 * for a list of regular expressions, applied in turn: every expression cuts
 * the pieces the previous ones left (a match is a piece, and so is the text
 * between two matches). Two expressions that nearly every model uses — GPT-2's
 * and Llama 3's — llama.cpp runs as hand-written loops over code point
 * categories; herd has the same loops. The others run on PCRE2, on the
 * text as llama.cpp's std::regex sees it: every code point above ASCII
 * "collapsed" to one byte standing for its category when the expression uses
 * \p{..}, or as UTF-8 with non-ASCII spaces turned into '\v' otherwise.
 *
 * Code points are read from UTF-8 as llama.cpp reads them (ucd.c), and the
 * words are written back as UTF-8 from those code points, so a stray byte
 * becomes U+FFFD and an overlong form its shortest form, as in llama.cpp.
 */
#ifndef HERD_PRETOK_H
#define HERD_PRETOK_H

#include "util/util.h"

/* ------------------------------------------------------ code points (ucd.c) */

/* llama.cpp's unicode_cpt_flags: the category's major class and White_Space. */
enum {
    UCD_UNDEFINED = 1 << 0, /* unassigned (Cn) */
    UCD_NUMBER = 1 << 1,    /* \p{N} */
    UCD_LETTER = 1 << 2,    /* \p{L} */
    UCD_SEPARATOR = 1 << 3, /* \p{Z} */
    UCD_MARK = 1 << 4,      /* \p{M} */
    UCD_PUNCT = 1 << 5,     /* \p{P} */
    UCD_SYMBOL = 1 << 6,    /* \p{S} */
    UCD_CONTROL = 1 << 7,   /* \p{C} but Cn */
    UCD_SPACE = 1 << 8,     /* White_Space */
};

/* The flags of n code points (each <= 0x10FFFF). False: out of memory. */
bool herd_ucd_flags(const uint32_t *cpt, uint16_t *flags, size_t n);

/* Decode one code point from s[0..n) (n >= 1) as llama.cpp does; returns the
 * bytes used. Invalid input gives U+FFFD over one byte. */
size_t herd_utf8_decode(const uint8_t *s, size_t n, uint32_t *cpt);
/* Encode cpt (<= 0x10FFFF, surrogates too) into out; returns its length. */
int herd_utf8_encode(uint32_t cpt, char out[4]);

/* ------------------------------------------------- pre-tokenizer (pretok.c) */

typedef struct pretok pretok;

/* The pre-tokenizer llama.cpp uses for tokenizer.ggml.pre = name ("" when the
 * key is absent: llama.cpp's default). HERD_E_UNSUPPORTED for a name herd
 * does not know. */
herd_status herd_pretok_new(const char *name, pretok **out);
/* A pre-tokenizer from a list of expressions; with custom false, GPT-2's and
 * Llama 3's expressions run on PCRE2 too (tests compare the two). */
herd_status herd_pretok_from_regexes(const char *const *regexes, int n, bool custom, pretok **out);
void herd_pretok_free(pretok *p);

/* Scratch space for splitting, reused across calls; zero-initialise it. */
typedef struct pretok_work {
    uint32_t *cpt; /* the text's code points */
    uint16_t *flags;
    size_t n, cap, flags_cap;
    uint32_t *len, *len2; /* word lengths in code points, and the next list */
    size_t n_len, len_cap, n_len2, len2_cap;
    char *coll;     /* the collapsed text: one byte per code point */
    char *utf;      /* the text as UTF-8 for std::wregex-style expressions */
    uint32_t *boff; /* byte offset of each code point in utf, and of the end */
    size_t coll_cap, utf_cap, boff_cap;
    bool have_coll, have_utf;
    void *md, *mctx; /* PCRE2 match data, and a match context with a bigger JIT stack */
    void *jit_stack;
} pretok_work;

void herd_pretok_work_free(pretok_work *w);

/* Split text[0..len) into words: w->len[0..n_len) are their lengths in code
 * points, in order over w->cpt[0..n). */
herd_status herd_pretok_split(const pretok *p, pretok_work *w, const char *text, size_t len);

#endif
