/*
 * tokenizer.h — text to token ids and back, from the vocabulary a GGUF file
 * carries (tokenizer.ggml.*).
 *
 * tokenizer.ggml.model = "llama": SentencePiece-style. The text gets the added
 * space prefix, spaces become U+2581, pieces are merged greedily by score
 * (llama.cpp's llm_tokenizer_spm), and bytes with no piece fall back to the
 * <0xNN> tokens. Byte-level BPE ("gpt2") comes in a later issue behind the same
 * interface.
 *
 * Special tokens (control and user-defined tokens) in the text are split out
 * first when parse_special is set, as llama.cpp's tokenizer_st_partition does.
 */
#ifndef HERD_TOKENIZER_H
#define HERD_TOKENIZER_H

#include "gguf/gguf.h"

/* llama.cpp's token attribute / GGUF token type values. */
enum herd_token_type {
    HERD_TOKEN_UNDEFINED = 0,
    HERD_TOKEN_NORMAL = 1,
    HERD_TOKEN_UNKNOWN = 2,
    HERD_TOKEN_CONTROL = 3,
    HERD_TOKEN_USER_DEFINED = 4,
    HERD_TOKEN_UNUSED = 5,
    HERD_TOKEN_BYTE = 6,
};

typedef enum herd_vocab_kind { HERD_VOCAB_SPM = 1, HERD_VOCAB_BPE = 2 } herd_vocab_kind;

typedef struct herd_vocab herd_vocab;

/* Build the vocabulary from an open file. The vocabulary copies what it needs,
 * so the file may be closed afterwards. */
herd_status herd_vocab_load(const gguf_file *f, herd_vocab **out);
void herd_vocab_free(herd_vocab *v);

herd_vocab_kind herd_vocab_type(const herd_vocab *v);
const char *herd_vocab_model_name(const herd_vocab *v); /* "llama", "gpt2", … */
int herd_vocab_n_tokens(const herd_vocab *v);
int32_t herd_vocab_bos(const herd_vocab *v); /* -1 if none */
int32_t herd_vocab_eos(const herd_vocab *v);
bool herd_vocab_add_bos(const herd_vocab *v);
bool herd_vocab_add_eos(const herd_vocab *v);
bool herd_vocab_is_eog(const herd_vocab *v, int32_t id); /* eos, eot, … */
int herd_vocab_token_type(const herd_vocab *v, int32_t id);
/* The stored piece text of a token (U+2581 not replaced), or NULL. */
const char *herd_vocab_token_text(const herd_vocab *v, int32_t id);

/* Same contract as herd_tokenize() in herd.h. */
herd_status herd_vocab_tokenize(const herd_vocab *v, const char *text, size_t len, bool add_bos,
                                bool parse_special, int32_t *ids, int cap, int *n_ids);
/* Same contracts as herd_token_to_piece() and herd_detokenize(). */
int herd_vocab_token_to_piece(const herd_vocab *v, int32_t id, bool special, char *buf, int cap);
herd_status herd_vocab_detokenize(const herd_vocab *v, const int32_t *ids, int n, bool special,
                                  bool remove_leading_space, char *buf, size_t cap, size_t *len);

#endif
