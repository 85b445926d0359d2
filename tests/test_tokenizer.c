/*
 * test_tokenizer.c — the SentencePiece tokenizer against llama.cpp.
 *
 * The vectors in ../shared/vocab (NAME.gguf.inp / .out) give the ids of each
 * input without BOS and with special tokens unparsed. llama-spm must match
 * them all; phi-3 and baichuan are the other SentencePiece vocabularies there.
 * The expected ids of the edge cases below (invalid UTF-8, special tokens,
 * Phi-3's RSTRIP) were taken from ../shared/oracle (llama.cpp itself).
 */
#include "helpers.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static herd_vocab *open_vocab(const char *rel)
{
    char path[512];
    if (!test_shared(rel, path, sizeof path)) return NULL;
    gguf_file *f = NULL;
    herd_vocab *v = NULL;
    herd_status st = herd_gguf_open(path, &f);
    CHECKF(st == HERD_OK, "%s: %s", path, herd_errmsg());
    if (st) return NULL;
    st = herd_vocab_load(f, &v);
    CHECKF(st == HERD_OK, "%s: %s", path, herd_errmsg());
    herd_gguf_close(f); /* the vocabulary keeps its own copies */
    return v;
}

/* Tokenize into a malloc'ed array (sized by a first call). */
static int32_t *tok(const herd_vocab *v, const char *s, size_t len, bool bos, bool special, int *n)
{
    int need = 0;
    herd_status st = herd_vocab_tokenize(v, s, len, bos, special, NULL, 0, &need);
    CHECKF(st == HERD_OK, "tokenize: %s", herd_errmsg());
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    st = herd_vocab_tokenize(v, s, len, bos, special, ids, need, n);
    CHECK(st == HERD_OK && *n == need);
    return ids;
}

static char *detok(const herd_vocab *v, const int32_t *ids, int n, bool special, bool strip,
                   size_t *len)
{
    herd_status st = herd_vocab_detokenize(v, ids, n, special, strip, NULL, 0, len);
    CHECKF(st == HERD_OK, "detokenize: %s", herd_errmsg());
    char *buf = malloc(*len + 1);
    size_t len2 = 0;
    st = herd_vocab_detokenize(v, ids, n, special, strip, buf, *len + 1, &len2);
    CHECK(st == HERD_OK && len2 == *len && buf[*len] == 0);
    return buf;
}

/* Compare ids with a list written as " 1 2 3". */
static bool ids_equal(const int32_t *ids, int n, const char *want)
{
    int i = 0;
    for (char *end;; want = end, i++) {
        long x = strtol(want, &end, 10);
        if (end == want) break;
        if (i >= n || ids[i] != x) return false;
    }
    return i == n;
}

static void print_ids(const char *what, const int32_t *ids, int n)
{
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------ vectors */

/* Run NAME's vectors; returns the number of inputs that matched, *total the
 * count. Every input also round-trips through detokenize. */
static int run_vectors(const char *name, int *total, bool verbose)
{
    char rel[256], path[512], opath[512];
    snprintf(rel, sizeof rel, "vocab/%s.gguf", name);
    herd_vocab *v = open_vocab(rel);
    snprintf(rel, sizeof rel, "vocab/%s.gguf.inp", name);
    bool have = test_shared(rel, path, sizeof path);
    snprintf(rel, sizeof rel, "vocab/%s.gguf.out", name);
    have = have && test_shared(rel, opath, sizeof opath);
    *total = 0;
    if (!v || !have) {
        herd_vocab_free(v);
        return 0;
    }
    char *inp = test_read_file(path, NULL), *out = test_read_file(opath, NULL);
    const char *sep = "\n__ggml_vocab_test__\n";
    char *p = inp, *line = out;
    int pass = 0, roundtrip = 0;
    for (char *end; (end = strstr(p, sep)) != NULL; p = end + strlen(sep), (*total)++) {
        size_t len = (size_t)(end - p);
        char *eol = strchr(line, '\n');
        if (eol) *eol = 0;
        int n;
        int32_t *ids = tok(v, p, len, false, false, &n);
        if (ids_equal(ids, n, line))
            pass++;
        else if (verbose) {
            fprintf(stderr, "%s: input %d \"%.*s\" differs\n", name, *total, (int)len, p);
            print_ids("got", ids, n);
            fprintf(stderr, "  want:%s\n", line);
        }
        size_t dlen;
        char *back = detok(v, ids, n, false, true, &dlen);
        if (dlen == len && memcmp(back, p, len) == 0)
            roundtrip++;
        else if (verbose)
            fprintf(stderr, "%s: input %d does not round-trip: \"%s\"\n", name, *total, back);
        free(back);
        free(ids);
        line = eol ? eol + 1 : line + strlen(line);
    }
    CHECKF(roundtrip == *total, "%s: %d of %d inputs round-trip", name, roundtrip, *total);
    free(inp);
    free(out);
    herd_vocab_free(v);
    return pass;
}

static void test_vectors(void)
{
    int total;
    int pass = run_vectors("ggml-vocab-llama-spm", &total, true);
    fprintf(stderr, "llama-spm: %d/%d vectors match\n", pass, total);
    CHECK(total > 0 && pass == total);
    pass = run_vectors("ggml-vocab-phi-3", &total, true);
    fprintf(stderr, "phi-3: %d/%d vectors match\n", pass, total);
    CHECK(total > 0 && pass == total);
    pass = run_vectors("ggml-vocab-baichuan", &total, true);
    fprintf(stderr, "baichuan: %d/%d vectors match\n", pass, total);
    CHECK(total > 0 && pass == total);
}

/* ---------------------------------------------------------- edge cases */

/* Tokenize without BOS and compare with llama.cpp's ids. */
static void expect(const herd_vocab *v, const char *s, size_t len, bool special, const char *want)
{
    int n;
    int32_t *ids = tok(v, s, len, false, special, &n);
    bool ok = ids_equal(ids, n, want);
    CHECKF(ok, "\"%.*s\" (special %d): want%s", (int)len, s, special, want);
    if (!ok) print_ids("got", ids, n);
    free(ids);
}

#define EXPECT(v, lit, special, want) expect(v, lit, sizeof lit - 1, special, want)

static void test_llama_edges(void)
{
    herd_vocab *v = open_vocab("vocab/ggml-vocab-llama-spm.gguf");
    if (!v) return;
    CHECK(herd_vocab_type(v) == HERD_VOCAB_SPM && herd_vocab_n_tokens(v) == 32000);
    CHECK(herd_vocab_bos(v) == 1 && herd_vocab_eos(v) == 2 && herd_vocab_add_bos(v));
    CHECK(!herd_vocab_add_eos(v) && herd_vocab_add_space_prefix(v));
    CHECK(herd_vocab_is_eog(v, 2) && !herd_vocab_is_eog(v, 1) && !herd_vocab_is_eog(v, 13));
    CHECK(strcmp(herd_vocab_model_name(v), "llama") == 0);
    CHECK(herd_vocab_find(v, "<0x0A>", 6) == 13 && herd_vocab_find(v, "zzzzzz", 6) == -1);

    /* Special tokens: parsed only when asked; the text after one gets a space. */
    EXPECT(v, "<s>hello</s>", true, " 1 22172 2");
    EXPECT(v, "<s>hello</s>", false, " 529 29879 29958 12199 829 29879 29958");
    EXPECT(v, " <s> hello </s> x", true, " 259 1 29871 22172 29871 2 29871 921");
    EXPECT(v, " <s> hello </s> x", false, " 29871 529 29879 29958 22172 1533 29879 29958 921");

    /* Invalid UTF-8 is cut by lead-byte length and falls back to bytes. */
    EXPECT(v,
           "\xc3"
           "A",
           false, " 29871 198 68");
    EXPECT(v,
           "a\xff\xfe"
           "b",
           false, " 263 258 257 101");
    EXPECT(v, "\x80", false, " 29871 131");
    EXPECT(v, "\xe2\x96", false, " 29871 229 153");
    EXPECT(v, "\xc3 x", false, " 29871 198 229 153 132 29916");

    /* Byte fallback: an emoji and a rare CJK character are their bytes. */
    const char *rare[] = {"\xf0\x9f\xa6\x99", "\xf0\xa0\x80\x80"};
    for (int r = 0; r < 2; r++) {
        int n;
        int32_t *ids = tok(v, rare[r], 4, false, false, &n);
        CHECK(n == 5 && ids[0] == 29871);
        for (int i = 1; i < n; i++) {
            CHECK(herd_vocab_token_type(v, ids[i]) == HERD_TOKEN_BYTE);
            char b[8];
            CHECK(herd_vocab_token_to_piece(v, ids[i], false, b, sizeof b) == 1);
            CHECK(b[0] == rare[r][i - 1]);
        }
        size_t len;
        char *back = detok(v, ids, n, false, true, &len);
        CHECK(len == 4 && memcmp(back, rare[r], 4) == 0);
        free(back);
        free(ids);
    }

    /* Empty input: nothing, or just BOS. */
    int n = -1;
    CHECK(herd_vocab_tokenize(v, "", 0, false, false, NULL, 0, &n) == HERD_OK && n == 0);
    CHECK(herd_vocab_tokenize(v, NULL, 0, false, true, NULL, 0, &n) == HERD_OK && n == 0);
    int32_t one[4] = {0};
    CHECK(herd_vocab_tokenize(v, "", 0, true, false, one, 4, &n) == HERD_OK && n == 1 &&
          one[0] == 1);

    /* A buffer too small still reports the count and fills what fits. */
    int32_t two[2] = {-1, -1};
    CHECK(herd_vocab_tokenize(v, "Hello world again", 17, true, false, two, 1, &n) == HERD_OK);
    CHECK(n == 4 && two[0] == 1 && two[1] == -1);

    /* Bad arguments. */
    CHECK(herd_vocab_tokenize(v, NULL, 3, false, false, NULL, 0, &n) == HERD_E_INVALID);
    CHECK(herd_vocab_tokenize(v, "x", 1, false, false, NULL, 5, &n) == HERD_E_INVALID);
    CHECK(herd_vocab_tokenize(v, "x", 1, false, false, NULL, 0, NULL) == HERD_E_INVALID);
    herd_vocab_free(v);
}

static void test_pieces(void)
{
    herd_vocab *v = open_vocab("vocab/ggml-vocab-llama-spm.gguf");
    if (!v) return;
    char b[64];
    CHECK(herd_vocab_token_to_piece(v, 15043, false, b, sizeof b) == 6 && strcmp(b, " Hello") == 0);
    CHECK(herd_vocab_token_to_piece(v, 1, false, b, sizeof b) == 0 && b[0] == 0);
    CHECK(herd_vocab_token_to_piece(v, 1, true, b, sizeof b) == 3 && strcmp(b, "<s>") == 0);
    CHECK(herd_vocab_token_to_piece(v, 0, false, b, sizeof b) == 0); /* unknown: like control */
    CHECK(herd_vocab_token_to_piece(v, 13, false, b, sizeof b) == 1 && b[0] == '\n');
    CHECK(herd_vocab_token_to_piece(v, 15043, false, b, 3) == 6 && memcmp(b, " He", 3) == 0);
    CHECK(herd_vocab_token_to_piece(v, 15043, false, NULL, 0) == 6);
    CHECK(herd_vocab_token_to_piece(v, 32000, false, b, sizeof b) < 0);
    CHECK(herd_vocab_token_to_piece(v, -1, false, b, sizeof b) < 0);
    CHECK(strcmp(herd_vocab_token_text(v, 15043), "\xe2\x96\x81Hello") == 0);
    CHECK(herd_vocab_token_text(v, 32000) == NULL);
    CHECK(herd_vocab_token_type(v, 1) == HERD_TOKEN_CONTROL);
    CHECK(herd_vocab_token_type(v, 15043) == HERD_TOKEN_NORMAL);

    /* Detokenize as llama.cpp: only the first token loses its space, a BOS
     * first keeps the next token's space, control tokens show if special. */
    int32_t hw[] = {15043, 3186};
    int32_t bhw[] = {1, 15043, 3186, 2};
    size_t len;
    char *s = detok(v, hw, 2, false, true, &len);
    CHECK(strcmp(s, "Hello world") == 0);
    free(s);
    s = detok(v, hw, 2, false, false, &len);
    CHECK(strcmp(s, " Hello world") == 0);
    free(s);
    s = detok(v, bhw, 4, false, true, &len);
    CHECK(strcmp(s, " Hello world") == 0);
    free(s);
    s = detok(v, bhw, 4, true, true, &len);
    CHECK(strcmp(s, "<s> Hello world</s>") == 0);
    free(s);
    char small[4];
    CHECK(herd_vocab_detokenize(v, hw, 2, false, true, small, sizeof small, &len) == HERD_OK);
    CHECK(len == 11 && memcmp(small, "Hell", 4) == 0);
    int32_t bad[] = {15043, 99999};
    CHECK(herd_vocab_detokenize(v, bad, 2, false, true, small, sizeof small, &len) == HERD_E_RANGE);
    CHECK(herd_vocab_detokenize(v, NULL, 0, false, true, NULL, 0, &len) == HERD_OK && len == 0);
    herd_vocab_free(v);
}

/* Phi-3: </s> is user-defined but becomes CONTROL (an end-of-generation
 * text), and its special tokens strip the spaces to their right (RSTRIP). */
static void test_phi3(void)
{
    herd_vocab *v = open_vocab("vocab/ggml-vocab-phi-3.gguf");
    if (!v) return;
    CHECK(herd_vocab_eos(v) == 32000 && herd_vocab_is_eog(v, 32000));
    CHECK(herd_vocab_is_eog(v, 32007) && herd_vocab_is_eog(v, 2) && !herd_vocab_is_eog(v, 32010));
    CHECK(herd_vocab_token_type(v, 2) == HERD_TOKEN_CONTROL);
    EXPECT(v, "a</s>  b", true, " 263 2 289");
    EXPECT(v, "<|user|>\nhi<|end|>\n<|assistant|>", true, " 32010 7251 32007 32001");
    EXPECT(v, "x <|end|>  y", true, " 921 29871 32007 343");
    herd_vocab_free(v);
}

/* Random bytes never crash, and round-trip as long as no broken UTF-8 lead
 * byte swallows a space: llama.cpp cuts "\xc3 x" as "\xc3\xe2" "\x96"
 * "\x81" "x" after escaping the space, so the space comes back as the bytes
 * of U+2581 (checked above). Inputs without spaces (and without U+2581,
 * which detokenizes to a space) always round-trip. */
static void test_random_bytes(void)
{
    herd_vocab *v = open_vocab("vocab/ggml-vocab-llama-spm.gguf");
    if (!v) return;
    uint64_t x = 0x1234567;
    char buf[200];
    int ok = 0;
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = (size_t)(iter % 60);
        for (size_t i = 0; i < len; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            static const char alphabet[] = "<s>/_\xe2\x96\x81\xc3\xa9"
                                           "ab";
            buf[i] = iter % 3 ? (char)(x >> 56) : alphabet[(x >> 56) % 12];
            if (buf[i] == ' ') buf[i] = '_';
        }
        /* A literal U+2581 is a space to SentencePiece: it comes back as one. */
        for (size_t i = 2; i < len; i++)
            if (!memcmp(buf + i - 2, "\xe2\x96\x81", 3)) buf[i] = '\x80';
        /* With BOS and special tokens parsed: no crash, ids in range. */
        int n;
        int32_t *ids = tok(v, buf, len, true, true, &n);
        for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < 32000);
        free(ids);
        /* As plain text: the bytes come back. */
        ids = tok(v, buf, len, false, false, &n);
        size_t dlen;
        char *back = detok(v, ids, n, false, true, &dlen);
        ok += dlen == len && memcmp(back, buf, len) == 0;
        free(back);
        free(ids);
    }
    CHECKF(ok == 2000, "%d of 2000 random inputs round-trip", ok);
    herd_vocab_free(v);
}

static void test_large_input(void)
{
    herd_vocab *v = open_vocab("vocab/ggml-vocab-llama-spm.gguf");
    if (!v) return;
    const char *chunk = "The quick brown fox jumps over the lazy dog. \xe4\xbd\xa0\xe5\xa5\xbd "
                        "\xf0\x9f\xa6\x99 3.14159 <s> \n\t  ";
    size_t cl = strlen(chunk), len = 1 << 20;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++) big[i] = chunk[i % cl];
    double t0 = herd_time();
    int n;
    int32_t *ids = tok(v, big, len, true, true, &n); /* with "<s>" parsed */
    double dt = herd_time() - t0;
    fprintf(stderr, "1 MiB: %d tokens in %.2f s\n", n, dt);
    CHECKF(dt < 10.0, "tokenizing 1 MiB took %.2f s", dt);
    CHECK(n > 100000 && ids[0] == 1);
    free(ids);
    ids = tok(v, big, len, false, false, &n);
    size_t dlen;
    char *back = detok(v, ids, n, false, true, &dlen);
    CHECK(dlen == len && memcmp(back, big, len) == 0);
    free(back);
    free(ids);
    free(big);
    herd_vocab_free(v);
}

/* The tiny model's prompt, tokenized with BOS, gives the reference ids. */
static void test_tiny_model(void)
{
    char path[512];
    if (!test_shared("models/tiny/ref/llama-f32.json", path, sizeof path)) return;
    json_error_t err;
    json_t *ref = json_load_file(path, 0, &err);
    CHECKF(ref != NULL, "%s: %s", path, err.text);
    if (!ref) return;
    herd_vocab *v = open_vocab("models/tiny/llama-f32.gguf");
    const char *prompt = json_string_value(json_object_get(ref, "prompt"));
    json_t *want = json_object_get(ref, "ids");
    CHECK(prompt && json_is_array(want));
    if (v && prompt && json_is_array(want)) {
        int n;
        int32_t *ids = tok(v, prompt, strlen(prompt), herd_vocab_add_bos(v), true, &n);
        bool same = n == (int)json_array_size(want);
        for (int i = 0; same && i < n; i++)
            same = ids[i] == json_integer_value(json_array_get(want, (size_t)i));
        CHECKF(same, "tiny llama prompt \"%s\"", prompt);
        if (!same) print_ids("got", ids, n);
        free(ids);
    }
    herd_vocab_free(v);
    json_decref(ref);
}

/* ------------------------------------------------- malformed vocabularies */

typedef struct vocab_spec {
    const char *model; /* NULL: no tokenizer.ggml.model */
    int n_tokens;      /* of the list below */
    int n_scores;      /* -1: no scores */
    int n_types;       /* -1: no token types */
    int64_t bos;       /* -1: no key */
    bool add_bos_false;
    bool duplicate; /* repeat a token */
} vocab_spec;

/* A small SentencePiece vocabulary: <unk> <s> </s>, 256 bytes, and a few
 * pieces whose scores make "hello" merge pair by pair into "▁hello", and
 * "ab" and "bc" tie (the leftmost pair must win). */
static const char *const pieces[] = {"\xe2\x96\x81",
                                     "h",
                                     "e",
                                     "l",
                                     "o",
                                     "\xe2\x96\x81h",
                                     "ll",
                                     "he",
                                     "llo",
                                     "hello",
                                     "\xe2\x96\x81hello",
                                     "<|im_end|>",
                                     "a",
                                     "b",
                                     "c",
                                     "ab",
                                     "bc"};
static const float piece_scores[] = {-10, -11, -12, -13, -14, -6,  -1, -2, -3,
                                     -4,  -5,  0,   -20, -21, -22, -7, -7};
enum { N_PIECES = sizeof pieces / sizeof pieces[0], N_SMALL = 3 + 256 + N_PIECES };

static herd_status open_spec(const vocab_spec *sp, herd_vocab **out)
{
    static char bytes[256][8];
    const char *toks[N_SMALL];
    float scores[N_SMALL];
    int32_t types[N_SMALL];
    toks[0] = "<unk>", toks[1] = "<s>", toks[2] = "</s>";
    types[0] = HERD_TOKEN_UNKNOWN, types[1] = types[2] = HERD_TOKEN_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[3 + b] = bytes[b];
        types[3 + b] = HERD_TOKEN_BYTE;
    }
    for (int i = 0; i < N_PIECES; i++) {
        toks[259 + i] = pieces[i];
        types[259 + i] = HERD_TOKEN_NORMAL;
    }
    for (int i = 0; i < N_SMALL; i++) scores[i] = i < 259 ? 0.0f : piece_scores[i - 259];
    if (sp->duplicate) toks[260] = toks[261];

    gguf_writer *w = herd_gguf_writer_new();
    if (sp->model) herd_gguf_set_str(w, "tokenizer.ggml.model", sp->model);
    herd_gguf_set_str(w, "general.name", "test");
    herd_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)sp->n_tokens);
    if (sp->n_scores >= 0)
        herd_gguf_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores,
                          (uint64_t)sp->n_scores);
    if (sp->n_types >= 0)
        herd_gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types,
                          (uint64_t)sp->n_types);
    if (sp->bos >= 0) herd_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)sp->bos);
    if (sp->add_bos_false) herd_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    uint8_t *buf = NULL;
    size_t len = 0;
    herd_status st = herd_gguf_write_mem(w, &buf, &len);
    herd_gguf_writer_free(w);
    CHECKF(st == HERD_OK, "gguf_write_mem: %s", herd_errmsg());
    gguf_file *f = NULL;
    if (!st) st = herd_gguf_open_mem(buf, len, &f);
    CHECKF(st == HERD_OK, "gguf_open_mem: %s", herd_errmsg());
    *out = NULL;
    if (!st) st = herd_vocab_load(f, out);
    herd_gguf_close(f);
    free(buf);
    return st;
}

static void test_small_vocab(void)
{
    vocab_spec ok = {"llama", N_SMALL, N_SMALL, N_SMALL, -1, false, false};
    herd_vocab *v = NULL;
    herd_status st = open_spec(&ok, &v);
    CHECKF(st == HERD_OK, "small vocabulary: %s", herd_errmsg());
    if (!v) return;
    /* ll, he, llo, hello, ▁hello: one token; "x" is not a piece. */
    EXPECT(v, "hello", false, " 269");
    EXPECT(v, "hellox", false, " 269 123");
    EXPECT(v, "abc", false, " 259 274 273"); /* ▁ ab c: the tie goes left */
    /* <|im_end|> is found by its text: end of generation and CONTROL. */
    int32_t im_end = herd_vocab_find(v, "<|im_end|>", 10);
    CHECK(im_end == 270 && herd_vocab_is_eog(v, im_end));
    CHECK(herd_vocab_token_type(v, im_end) == HERD_TOKEN_CONTROL);
    EXPECT(v, "hello<|im_end|>", true, " 269 270");
    herd_vocab_free(v);

    struct {
        vocab_spec sp;
        herd_status want;
        const char *msg;
    } bad[] = {
        {{NULL, N_SMALL, N_SMALL, N_SMALL, -1, false, false},
         HERD_E_FORMAT,
         "tokenizer.ggml.model"},
        {{"bert", N_SMALL, N_SMALL, N_SMALL, -1, false, false}, HERD_E_UNSUPPORTED, "bert"},
        {{"llama", N_SMALL, N_SMALL - 1, N_SMALL, -1, false, false}, HERD_E_FORMAT, "scores"},
        {{"llama", N_SMALL, N_SMALL, 10, -1, false, false}, HERD_E_FORMAT, "token_type"},
        {{"llama", N_SMALL, N_SMALL, N_SMALL, -1, false, true}, HERD_E_FORMAT, "duplicate"},
        {{"llama", 0, -1, -1, -1, false, false}, HERD_E_FORMAT, "tokens"},
        /* BOS 1 is the default; a vocabulary of one token has no BOS to add */
        {{"llama", 1, -1, -1, -1, false, false}, HERD_E_FORMAT, "bos"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = (herd_vocab *)1;
        st = open_spec(&bad[i].sp, &v);
        CHECKF(st == bad[i].want && v == NULL, "case %zu: status %d (%s)", i, st, herd_errmsg());
        CHECKF(strstr(herd_errmsg(), bad[i].msg) != NULL, "case %zu: message \"%s\"", i,
               herd_errmsg());
    }
    /* An out-of-range BOS keeps the default (llama.cpp); add_bos false is honoured. */
    vocab_spec far = {"llama", N_SMALL, -1, -1, 100000, true, false};
    st = open_spec(&far, &v);
    CHECK(st == HERD_OK && herd_vocab_bos(v) == 1 && !herd_vocab_add_bos(v));
    herd_vocab_free(v);
}

/* Byte-level BPE vocabularies load and detokenize (tokenizing: test_bpe.c). */
static void test_bpe_vocab(void)
{
    herd_vocab *v = open_vocab("vocab/ggml-vocab-gpt-2.gguf");
    if (!v) return;
    CHECK(herd_vocab_type(v) == HERD_VOCAB_BPE && strcmp(herd_vocab_model_name(v), "gpt2") == 0);
    CHECK(!herd_vocab_add_bos(v) && !herd_vocab_add_space_prefix(v));
    int32_t eot = herd_vocab_find(v, "<|endoftext|>", 13);
    CHECK(eot == 50256 && herd_vocab_is_eog(v, eot));
    int32_t hello = herd_vocab_find(v, "\xc4\xa0hello", 7); /* "Ġhello" */
    int32_t nl = herd_vocab_find(v, "\xc4\x8a", 2);         /* "Ċ" = '\n' */
    CHECK(hello > 0 && nl > 0);
    char b[32];
    CHECK(herd_vocab_token_to_piece(v, hello, false, b, sizeof b) == 6 && strcmp(b, " hello") == 0);
    CHECK(herd_vocab_token_to_piece(v, nl, false, b, sizeof b) == 1 && b[0] == '\n');
    /* clean_up_tokenization_spaces: " ," loses its space. */
    int32_t comma = herd_vocab_find(v, "\xc4\xa0,", 3);
    int32_t ids[] = {hello, comma, hello, nl};
    size_t len;
    char *s = detok(v, ids, 4, false, true, &len);
    CHECKF(strcmp(s, " hello, hello\n") == 0, "got \"%s\"", s);
    free(s);
    int n;
    int32_t hi[2];
    CHECK(herd_vocab_tokenize(v, "hi", 2, false, false, hi, 2, &n) == HERD_OK);
    CHECK(n == 1 && hi[0] == 5303);
    herd_vocab_free(v);
}

int main(void)
{
    test_vectors();
    test_llama_edges();
    test_pieces();
    test_phi3();
    test_random_bytes();
    test_large_input();
    test_tiny_model();
    test_small_vocab();
    test_bpe_vocab();
    return test_report();
}
