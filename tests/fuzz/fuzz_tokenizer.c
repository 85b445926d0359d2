/*
 * fuzz_tokenizer.c — libFuzzer target for the tokenizers: SentencePiece and
 * byte-level BPE (every pre-tokenizer path: GPT-2's and Llama 3's loops,
 * PCRE2 on collapsed text, PCRE2 on UTF-8), with special tokens parsed or
 * not, and detokenizing what comes out.
 *
 * Built and run by `make fuzz` (CMake with HERD_FUZZ=ON and clang) from the
 * seeds in tests/fuzz/corpus/tokenizer: inputs of ../shared/vocab's test
 * vectors, each behind the byte that picks its vocabulary
 * (tests/fuzz/make-seeds writes them).
 *
 * Run from the project root (the vocabularies are read from ../shared/vocab,
 * or $HERD_FUZZ_VOCAB). The first input byte picks the vocabulary and the
 * flags, the rest is the text.
 *
 * Properties checked, beyond "no crash, no bad read, no leak":
 *   - tokenizing succeeds, and asking for the count first gives the count;
 *   - every id is inside the vocabulary, and detokenizes;
 *   - byte-level BPE: valid UTF-8 whose bytes all have a token comes back
 *     from its pieces unchanged (special tokens unparsed).
 */
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"llama-spm", "phi-3",     "gpt-2",        "llama-bpe",
                                    "qwen2",     "falcon",    "deepseek-llm", "deepseek-coder",
                                    "aquila",    "starcoder", "command-r",    "mpt"};
enum { N = sizeof names / sizeof names[0] };
static herd_vocab *vocab[N];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("HERD_FUZZ_VOCAB");
    for (int i = 0; i < N; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir ? dir : "../shared/vocab",
                 names[i]);
        gguf_file *f = NULL;
        if (herd_gguf_open(path, &f) || herd_vocab_load(f, &vocab[i])) {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, herd_errmsg());
            exit(1);
        }
        herd_gguf_close(f);
    }
    return 0;
}

/* Strict UTF-8 (no overlong forms, nothing above U+10FFFF): what llama.cpp
 * gives back byte for byte. Surrogates are fine: they are re-encoded as read. */
static bool strict_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
        if (k == 0 || i + k > n) return false;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return false;
        if (k == 3 && c == 0xE0 && s[i + 1] < 0xA0) return false;
        if (k == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] >= 0x90)))
            return false;
        i += k;
    }
    return true;
}

static void check_roundtrip(const herd_vocab *v, const int32_t *ids, int n, const uint8_t *s,
                            size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (v->byte_tok[s[i]] < 0) return;
    if (!strict_utf8(s, len)) return;
    char *buf = malloc(len + 1), piece[256];
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        int k = herd_vocab_token_to_piece(v, ids[i], false, piece, sizeof piece);
        if (k < 0 || k > (int)sizeof piece || at + (size_t)k > len) abort();
        memcpy(buf + at, piece, (size_t)k);
        at += (size_t)k;
    }
    if (at != len || memcmp(buf, s, len) != 0) abort();
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const herd_vocab *v = vocab[data[0] % N];
    bool bos = data[0] & 0x40, special = data[0] & 0x80;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int need = -1, n = -1;
    if (herd_vocab_tokenize(v, text, len, bos, special, NULL, 0, &need) != HERD_OK) abort();
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    if (herd_vocab_tokenize(v, text, len, bos, special, ids, need, &n) != HERD_OK || n != need)
        abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= herd_vocab_n_tokens(v)) abort();
    size_t out = 0;
    if (herd_vocab_detokenize(v, ids, n, special, true, NULL, 0, &out) != HERD_OK) abort();
    char *buf = malloc(out + 1);
    size_t out2 = 0;
    if (herd_vocab_detokenize(v, ids, n, special, true, buf, out + 1, &out2) != HERD_OK ||
        out2 != out)
        abort();
    if (herd_vocab_type(v) == HERD_VOCAB_BPE && !special && !bos)
        check_roundtrip(v, ids, n, (const uint8_t *)text, len);
    free(buf);
    free(ids);
    return 0;
}
