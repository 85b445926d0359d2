/*
 * test_bpe.c — the byte-level BPE tokenizers against llama.cpp.
 *
 * 1. The vectors in ../shared/vocab for every "gpt2" vocabulary there: each
 *    input's ids (no BOS, special tokens as text) must match.
 * 2. 10,000 random strings per vocabulary (bench/tokenize-random.h: scripts,
 *    emoji, combining marks, controls, runs of spaces and digits) come back
 *    from their pieces byte for byte (those whose bytes all have a token:
 *    not Falcon's \v), with special tokens parsed or not, and
 *    from herd_vocab_detokenize where the vocabulary does no clean-up of
 *    spaces (clean-up turns " ," into ","). HERD_BPE_STRINGS sets the count;
 *    under AddressSanitizer it is 1,000. bench/tokenize-oracle compares the
 *    ids of a sample of the same strings with llama.cpp's.
 * 3. GPT-2's and Llama 3's hand-written splitters agree with PCRE2 running
 *    the same expressions, both on llama.cpp's collapsed text and with
 *    PCRE2's own Unicode properties.
 * 4. Invalid UTF-8, special tokens, BOS, bytes without a token, unknown
 *    pre-tokenizers: expected ids taken from ../shared/oracle (llama.cpp).
 */
#include "helpers.h"
#include "gguf/gguf.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_impl.h"
#include "../bench/tokenize-random.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

static const char *const vocabs[] = {"gpt-2",        "aquila", "command-r", "deepseek-coder",
                                     "deepseek-llm", "falcon", "gpt-neox",  "llama-bpe",
                                     "mpt",          "qwen2",  "refact",    "starcoder"};
enum { N_VOCABS = sizeof vocabs / sizeof vocabs[0] };

static herd_vocab *open_vocab(const char *name)
{
    char rel[256], path[512];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    if (!test_shared(rel, path, sizeof path)) return NULL;
    gguf_file *f = NULL;
    herd_vocab *v = NULL;
    herd_status st = herd_gguf_open(path, &f);
    if (!st) st = herd_vocab_load(f, &v);
    CHECKF(st == HERD_OK, "%s: %s", path, herd_errmsg());
    herd_gguf_close(f);
    return v;
}

/* Tokenize into a malloc'ed array. */
static int32_t *tok(const herd_vocab *v, const char *s, size_t len, bool bos, bool special, int *n)
{
    int need = 0;
    herd_status st = herd_vocab_tokenize(v, s, len, bos, special, NULL, 0, &need);
    CHECKF(st == HERD_OK, "tokenize: %s", herd_errmsg());
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    *n = 0;
    if (!st) st = herd_vocab_tokenize(v, s, len, bos, special, ids, need, n);
    CHECK(st == HERD_OK && *n == need);
    return ids;
}

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

/* Do the pieces of ids concatenate to s[0..len)? */
static bool pieces_are(const herd_vocab *v, const int32_t *ids, int n, bool special, const char *s,
                       size_t len)
{
    size_t at = 0;
    char buf[512];
    for (int i = 0; i < n; i++) {
        int k = herd_vocab_token_to_piece(v, ids[i], special, buf, sizeof buf);
        if (k < 0 || k > (int)sizeof buf || at + (size_t)k > len || memcmp(s + at, buf, (size_t)k))
            return false;
        at += (size_t)k;
    }
    return at == len;
}

/* ------------------------------------------------------------ vectors */

static void test_vectors(void)
{
    for (int k = 0; k < N_VOCABS; k++) {
        char rel[256], ipath[512], opath[512];
        herd_vocab *v = open_vocab(vocabs[k]);
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.inp", vocabs[k]);
        bool have = test_shared(rel, ipath, sizeof ipath);
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.out", vocabs[k]);
        if (!v || !have || !test_shared(rel, opath, sizeof opath)) {
            herd_vocab_free(v);
            continue;
        }
        char *inp = test_read_file(ipath, NULL), *out = test_read_file(opath, NULL);
        const char *sep = "\n__ggml_vocab_test__\n";
        char *p = inp, *line = out;
        int total = 0, pass = 0, back = 0;
        for (char *end; (end = strstr(p, sep)) != NULL; p = end + strlen(sep), total++) {
            size_t len = (size_t)(end - p);
            char *eol = strchr(line, '\n');
            if (eol) *eol = 0;
            int n;
            int32_t *ids = tok(v, p, len, false, false, &n);
            if (ids_equal(ids, n, line)) {
                pass++;
            } else {
                fprintf(stderr, "%s: input %d \"%.*s\" differs\n", vocabs[k], total, (int)len, p);
                print_ids("got", ids, n);
                fprintf(stderr, "  want:%s\n", line);
            }
            back += pieces_are(v, ids, n, false, p, len);
            free(ids);
            line = eol ? eol + 1 : line + strlen(line);
        }
        fprintf(stderr, "%s: %d/%d vectors match\n", vocabs[k], pass, total);
        CHECKF(total > 0 && pass == total, "%s: %d of %d vectors", vocabs[k], pass, total);
        CHECKF(back == total, "%s: %d of %d round-trip", vocabs[k], back, total);
        free(inp);
        free(out);
        herd_vocab_free(v);
    }
}

/* -------------------------------------------------------- round trips */

/* Does every byte of s have a token? Falcon's vocabulary lacks 28 (\v, \x1C,
 * 0xC0, 0xF5…): text with those cannot come back, in llama.cpp either. */
static bool all_bytes_known(const herd_vocab *v, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (v->byte_tok[(uint8_t)s[i]] < 0) return false;
    return true;
}

static long n_strings(void)
{
    const char *e = getenv("HERD_BPE_STRINGS");
    if (e && atol(e) > 0) return atol(e);
#if defined(__SANITIZE_ADDRESS__)
    return 1000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 1000;
#endif
#endif
    return 10000;
}

static void test_random_roundtrip(void)
{
    long count = n_strings();
    static char s[4096];
    for (int k = 0; k < N_VOCABS; k++) {
        herd_vocab *v = open_vocab(vocabs[k]);
        if (!v) continue;
        rand_text r = {42}; /* bench/tokenize-oracle samples seed 42 too */
        long plain = 0, special = 0, detok = 0, detok_want = 0, want = 0;
        for (long i = 0; i < count; i++) {
            size_t len = rt_string(&r, s, sizeof s);
            if (!all_bytes_known(v, s, len)) continue;
            want++;
            int n;
            int32_t *ids = tok(v, s, len, false, false, &n);
            plain += pieces_are(v, ids, n, false, s, len);
            if (!v->clean_spaces) {
                size_t dlen = 0;
                char *d = malloc(len + 1);
                detok_want++;
                detok +=
                    herd_vocab_detokenize(v, ids, n, false, false, d, len + 1, &dlen) == HERD_OK &&
                    dlen == len && memcmp(d, s, len) == 0;
                free(d);
            }
            free(ids);
            ids = tok(v, s, len, false, true, &n); /* "<|endoftext|>" and co. parsed */
            special += pieces_are(v, ids, n, true, s, len);
            free(ids);
        }
        fprintf(stderr, "%s: %ld/%ld random strings round-trip (%ld have bytes without a token)\n",
                vocabs[k], plain, want, count - want);
        CHECKF(plain == want, "%s: %ld of %ld round-trip", vocabs[k], plain, want);
        CHECKF(special == want, "%s: %ld of %ld round-trip (special)", vocabs[k], special, want);
        CHECKF(detok == detok_want, "%s: %ld of %ld detokenize", vocabs[k], detok, detok_want);
        herd_vocab_free(v);
    }
}

/* ----------------------------------------------- splitters against PCRE2 */

#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define LLAMA3_RE                                                                                  \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"     \
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* The same with Unicode's White_Space for \s, as llama.cpp's tables have it. */
#define GPT2_UCP                                                                                   \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\p{White_Space}\\p{L}\\p{N}]+|"              \
    "[\\p{White_Space}]+(?![^\\p{White_Space}])"
#define LLAMA3_UCP                                                                                 \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"     \
    "\\p{N}{1,3}| ?[^\\p{White_Space}\\p{L}\\p{N}]+[\\r\\n]*|[\\p{White_Space}]*[\\r\\n]+|"        \
    "[\\p{White_Space}]+(?![^\\p{White_Space}])|[\\p{White_Space}]+"

/* Word lengths (in code points) PCRE2 cuts s into with Unicode properties:
 * matches, and the text between them. */
static size_t ucp_split(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t len,
                        uint32_t *out)
{
    size_t n = 0, done = 0, off = 0;
    for (;;) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, off, PCRE2_NOTEMPTY, md, NULL);
        size_t ms = len, me = len;
        if (rc > 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            ms = ov[0], me = ov[1];
        }
        for (size_t edge = 0, a = done, b = ms; edge < 2; edge++, a = ms, b = me) {
            uint32_t c = 0; /* code points in s[a..b) */
            for (size_t i = a; i < b; i++) c += ((uint8_t)s[i] & 0xC0) != 0x80;
            if (c) out[n++] = c;
        }
        if (rc <= 0) break;
        done = off = me;
    }
    return n;
}

static void compare_splitter(const char *name, const char *re, const char *ucp)
{
    pretok *custom = NULL, *coll = NULL;
    herd_status st = herd_pretok_from_regexes(&re, 1, true, &custom);
    if (!st) st = herd_pretok_from_regexes(&re, 1, false, &coll);
    int err;
    PCRE2_SIZE at;
    pcre2_code *u = pcre2_compile((PCRE2_SPTR)ucp, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                  &err, &at, NULL);
    CHECKF(st == HERD_OK && u, "%s: %s", name, herd_errmsg());
    if (st || !u) goto done;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    pretok_work a = {0}, b = {0};
    uint32_t *lens = malloc(4096 * sizeof *lens);
    static char s[4096];
    rand_text r = {7};
    long same_coll = 0, same_ucp = 0, count = n_strings();
    for (long i = 0; i < count; i++) {
        size_t len = rt_string(&r, s, sizeof s);
        herd_pretok_split(custom, &a, s, len);
        herd_pretok_split(coll, &b, s, len);
        same_coll += a.n_len == b.n_len && !memcmp(a.len, b.len, a.n_len * sizeof *a.len);
        size_t n = ucp_split(u, md, s, len, lens);
        bool same = n == a.n_len && !memcmp(a.len, lens, n * sizeof *lens);
        same_ucp += same;
        if (!same && count - same_ucp < 3)
            fprintf(stderr, "%s: differs on \"%.*s\"\n", name, (int)len, s);
    }
    fprintf(stderr, "%s splitter: %ld/%ld as PCRE2 on collapsed text, %ld/%ld as PCRE2 (UCP)\n",
            name, same_coll, count, same_ucp, count);
    CHECK(same_coll == count && same_ucp == count);
    free(lens);
    herd_pretok_work_free(&a);
    herd_pretok_work_free(&b);
    pcre2_match_data_free(md);
done:
    pcre2_code_free(u);
    herd_pretok_free(custom);
    herd_pretok_free(coll);
}

static void test_splitters(void)
{
    compare_splitter("GPT-2", GPT2_RE, GPT2_UCP);
    compare_splitter("Llama 3", LLAMA3_RE, LLAMA3_UCP);
}

/* ------------------------------------------------------- edge cases */

static void expect(const herd_vocab *v, const char *s, size_t len, bool bos, bool special,
                   const char *want)
{
    int n;
    int32_t *ids = tok(v, s, len, bos, special, &n);
    bool ok = ids_equal(ids, n, want);
    CHECKF(ok, "\"%.*s\" (bos %d, special %d): want%s", (int)len, s, bos, special, want);
    if (!ok) print_ids("got", ids, n);
    free(ids);
}

#define EXPECT(v, lit, bos, special, want) expect(v, lit, sizeof lit - 1, bos, special, want)

/* llama.cpp reads a stray byte as U+FFFD and an overlong form as what it
 * encodes; herd reads a 4-byte form above U+10FFFF (llama.cpp aborts) as
 * four stray bytes. */
static void test_invalid_utf8(void)
{
    herd_vocab *v = open_vocab("gpt-2");
    if (!v) return;
    EXPECT(v,
           "a\xff"
           "b",
           false, false, " 64 4210 65");
    EXPECT(v, "\xc0\x80x", false, false, " 188 87");
    EXPECT(v, "\xed\xa0\x80", false, false, " 169 254 222");
    int n, m;
    int32_t *a = tok(v, "\xf4\x90\x80\x80z", 5, false, false, &n);
    int32_t *b = tok(v, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz", 13, false, false, &m);
    CHECK(n == m && n > 0 && memcmp(a, b, (size_t)n * sizeof *a) == 0);
    free(a);
    free(b);
    herd_vocab_free(v);

    /* Random bytes: no crash, ids in range, in every vocabulary. */
    for (int k = 0; k < N_VOCABS; k++) {
        if (!(v = open_vocab(vocabs[k]))) continue;
        rand_text r = {99};
        char s[64];
        int bad = 0;
        for (int i = 0; i < 500; i++) {
            size_t len = rt_below(&r, sizeof s);
            for (size_t j = 0; j < len; j++) s[j] = (char)rt_next(&r);
            int32_t *ids = tok(v, s, len, true, i % 2, &n);
            for (int j = 0; j < n; j++) bad += ids[j] < 0 || ids[j] >= herd_vocab_n_tokens(v);
            free(ids);
        }
        CHECKF(bad == 0, "%s: %d ids out of range", vocabs[k], bad);
        herd_vocab_free(v);
    }
}

static void test_special(void)
{
    herd_vocab *v = open_vocab("qwen2");
    if (v) {
        static const char chat[] =
            "<|im_start|>user\nHello, world!<|im_end|>\n<|im_start|>assistant\n";
        EXPECT(v, chat, false, true, " 151644 872 198 9707 11 1879 0 151645 198 151644 77091 198");
        EXPECT(v, chat, false, false,
               " 27 91 318 4906 91 29 872 198 9707 11 1879 86932 91 318 6213 91 397 27 91 318 4906 "
               "91 29 77091 198");
        EXPECT(v, "x[PAD151674]y", false, false, " 87 151674 88"); /* user-defined: always */
        CHECK(!herd_vocab_add_bos(v));
        /* Control tokens are printed only when asked for. */
        int n;
        int32_t *ids = tok(v, chat, sizeof chat - 1, false, true, &n);
        char buf[128];
        size_t len;
        CHECK(herd_vocab_detokenize(v, ids, n, false, false, buf, sizeof buf, &len) == HERD_OK);
        CHECK(strcmp(buf, "user\nHello, world!\nassistant\n") == 0);
        CHECK(herd_vocab_detokenize(v, ids, n, true, false, buf, sizeof buf, &len) == HERD_OK);
        CHECK(strcmp(buf, chat) == 0);
        free(ids);
        herd_vocab_free(v);
    }
    if ((v = open_vocab("llama-bpe")) != NULL) {
        CHECK(herd_vocab_add_bos(v) && herd_vocab_bos(v) == 128000);
        EXPECT(v, "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>", true, true,
               " 128000 128006 882 128007 271 13347 1070 128009");
        EXPECT(v, "<|begin_of_text|>Hi", true, true, " 128000 128000 13347");
        CHECK(herd_vocab_is_eog(v, 128009));
        herd_vocab_free(v);
    }
    if ((v = open_vocab("gpt-2")) != NULL) {
        EXPECT(v, "a<|endoftext|>b", false, true, " 64 50256 65");
        herd_vocab_free(v);
    }
    if ((v = open_vocab("deepseek-coder")) != NULL) {
        EXPECT(v,
               "<\xef\xbd\x9c"
               "fim\xe2\x96\x81"
               "begin\xef\xbd\x9c>def f():<\xef\xbd\x9c"
               "fim\xe2\x96\x81hole\xef\xbd\x9c>\n<\xef\xbd\x9c"
               "fim\xe2\x96\x81"
               "end\xef\xbd\x9c>",
               false, true, " 32016 1551 267 10942 32015 185 32017");
        herd_vocab_free(v);
    }
    if ((v = open_vocab("command-r")) != NULL) {
        EXPECT(v, "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi<|END_OF_TURN_TOKEN|>",
               herd_vocab_add_bos(v), true, " 5 255000 255006 37535 255001");
        herd_vocab_free(v);
    }
}

/* ------------------------------------------------- small vocabularies */

/* A vocabulary made here: a, b, ab, Ġ, Ġab, <|endoftext|>, "cé", x; merges
 * "a b", "Ġ ab", "c é", "b a". pre: NULL for none; merges false for none. */
static herd_vocab *small_vocab(const char *pre, bool merges, herd_status *st)
{
    const char *toks[] = {"a",
                          "b",
                          "ab",
                          "\xc4\xa0",
                          "\xc4\xa0"
                          "ab",
                          "<|endoftext|>",
                          "c\xc3\xa9",
                          "x"};
    int32_t types[] = {1, 1, 1, 1, 1, 3, 1, 1};
    const char *rules[] = {"a b", "\xc4\xa0 ab", "c \xc3\xa9", "b a"};
    gguf_writer *w = herd_gguf_writer_new();
    herd_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre) herd_gguf_set_str(w, "tokenizer.ggml.pre", pre);
    herd_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 8);
    herd_gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 8);
    if (merges) herd_gguf_set_arr_str(w, "tokenizer.ggml.merges", rules, 4);
    herd_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 5);
    herd_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 5);
    uint8_t *buf = NULL;
    size_t len = 0;
    gguf_file *f = NULL;
    herd_vocab *v = NULL;
    *st = herd_gguf_write_mem(w, &buf, &len);
    if (!*st) *st = herd_gguf_open_mem(buf, len, &f);
    if (!*st) *st = herd_vocab_load(f, &v);
    herd_gguf_close(f);
    herd_gguf_writer_free(w);
    free(buf);
    return v;
}

static void test_small_vocab(void)
{
    herd_status st;
    herd_vocab *v = small_vocab("gpt-2", true, &st);
    CHECKF(st == HERD_OK, "small vocabulary: %s", herd_errmsg());
    if (v) {
        /* Bytes whose symbol is no token are dropped, as in llama.cpp. */
        EXPECT(v, "abc", false, false, " 2");
        EXPECT(v, "ab ab", false, false, " 2 4");
        EXPECT(v, "xyz", false, false, " 7");
        EXPECT(v, "c\xc3\xa9", false, false, "");
        EXPECT(v, "ba", false, false, " 1 0");
        EXPECT(v, "a b", false, false, " 0 3 1");
        herd_vocab_free(v);
    }
    /* An unknown pre-tokenizer or missing merges: loads, fails to tokenize. */
    int n;
    v = small_vocab("no-such-pre", true, &st);
    CHECK(st == HERD_OK && v);
    if (v) {
        CHECK(herd_vocab_tokenize(v, "ab", 2, false, false, NULL, 0, &n) == HERD_E_UNSUPPORTED);
        CHECK(strstr(herd_errmsg(), "no-such-pre") != NULL);
        herd_vocab_free(v);
    }
    v = small_vocab("gpt-2", false, &st);
    CHECK(st == HERD_OK && v);
    if (v) {
        CHECK(herd_vocab_tokenize(v, "ab", 2, false, false, NULL, 0, &n) == HERD_E_FORMAT);
        CHECK(strstr(herd_errmsg(), "merges") != NULL);
        herd_vocab_free(v);
    }
    /* No pre key: llama.cpp's default pre-tokenizer. */
    v = small_vocab(NULL, true, &st);
    CHECK(st == HERD_OK && v);
    if (v) EXPECT(v, "ab ab", false, false, " 2 4");
    herd_vocab_free(v);
}

/* Every pre-tokenizer name herd knows compiles; others are refused. */
static void test_pretok_names(void)
{
    static const char *const names[] = {
        "default",   "llama3",     "llama-bpe", "deepseek-llm", "deepseek-coder", "deepseek-v3",
        "falcon",    "starcoder",  "refact",    "command-r",    "gpt-2",          "mpt",
        "qwen2",     "qwen35",     "poro-chat", "viking",       "tekken",         "gpt-4o",
        "chameleon", "seed-coder", "grok-2",    "bailingmoe",   "minicpm5",       "smollm",
        "stablelm2", "olmo",       "dbrx",      "smaug-bpe",    "glm4",           "exaone",
        "",          "bloom",      "jais",      "megrez",       "hunyuan"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        pretok *p = NULL;
        herd_status st = herd_pretok_new(names[i], &p);
        CHECKF(st == HERD_OK && p, "pre-tokenizer '%s': %s", names[i], herd_errmsg());
        herd_pretok_free(p);
    }
    pretok *p = (pretok *)1;
    CHECK(herd_pretok_new("kimi-k2", &p) == HERD_E_UNSUPPORTED && p == NULL);
}

int main(void)
{
    test_vectors();
    test_random_roundtrip();
    test_splitters();
    test_invalid_utf8();
    test_special();
    test_small_vocab();
    test_pretok_names();
    return test_report();
}
