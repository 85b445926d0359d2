/*
 * tokenizer.h — text to token ids and back, from the vocabulary a GGUF file
 * carries (tokenizer.ggml.*).
 *
 * tokenizer.ggml.model = "llama": SentencePiece-style. The text gets the added
 * space prefix, spaces become U+2581, pieces are merged greedily by score
 * (llama.cpp's llm_tokenizer_spm), and bytes with no piece fall back to the
 * <0xNN> tokens.
 *
 * tokenizer.ggml.model = "gpt2": byte-level BPE. The pre-tokenizer that
 * tokenizer.ggml.pre names cuts the text into words (pretok.h), each byte
 * becomes GPT-2's character for it, and tokenizer.ggml.merges merge them,
 * lowest rank first (llama.cpp's llm_tokenizer_bpe). Text is read as UTF-8
 * the way llama.cpp reads it: an invalid byte becomes U+FFFD.
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
/* Does tokenizing put a space in front of the text (SentencePiece)? */
bool herd_vocab_add_space_prefix(const herd_vocab *v);
bool herd_vocab_is_eog(const herd_vocab *v, int32_t id); /* eos, eot, … */
int herd_vocab_token_type(const herd_vocab *v, int32_t id);
/* The stored piece text of a token (U+2581 not replaced), or NULL. */
const char *herd_vocab_token_text(const herd_vocab *v, int32_t id);
/* The id whose stored text is exactly text[0..len), or -1. */
int32_t herd_vocab_find(const herd_vocab *v, const char *text, size_t len);

/* Same contract as herd_tokenize() in herd.h: the ids go to ids[0..cap) and
 * *n_ids gets the count the text needs, which may exceed cap (HERD_OK all the
 * same; call again with a bigger buffer). add_bos prepends the BOS token (if
 * the vocabulary has one) whatever add_bos_token says — ask
 * herd_vocab_add_bos() for that — and never appends EOS. Text with no BOS in
 * front still gets the SentencePiece space prefix, as in llama.cpp. A BPE
 * vocabulary without merges (HERD_E_FORMAT) or with a pre-tokenizer herd does
 * not know (HERD_E_UNSUPPORTED) fails here, not when loaded. */
herd_status herd_vocab_tokenize(const herd_vocab *v, const char *text, size_t len, bool add_bos,
                                bool parse_special, int32_t *ids, int cap, int *n_ids);
/* Same contracts as herd_token_to_piece() and herd_detokenize().
 * token_to_piece writes min(length, cap) bytes, plus a NUL if it fits, and
 * returns the piece's length (-1 for an id outside the vocabulary).
 * detokenize is llama.cpp's llama_detokenize(remove_special = false,
 * unparse_special = special): remove_leading_space strips one space from the
 * front of the FIRST token's piece, when the vocabulary adds a space prefix
 * (a BOS first in ids swallows it, as in llama.cpp); BPE vocabularies get
 * llama.cpp's clean-up of spaces before punctuation. buf gets min(len, cap)
 * bytes plus a NUL if it fits, *len the full length; HERD_E_RANGE for an id
 * outside the vocabulary. */
int herd_vocab_token_to_piece(const herd_vocab *v, int32_t id, bool special, char *buf, int cap);
herd_status herd_vocab_detokenize(const herd_vocab *v, const int32_t *ids, int n, bool special,
                                  bool remove_leading_space, char *buf, size_t cap, size_t *len);

#endif
