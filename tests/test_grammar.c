/*
 * test_grammar.c — the GBNF engine: parsing (and its errors), matching text,
 * repetition rewrites, the token mask against a brute-force check over a
 * small vocabulary with split UTF-8, and random walks through llama.cpp's
 * example grammars whose every output must match its grammar.
 */
#include "helpers.h"
#include "grammar/grammar.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static herd_grammar *parse(const char *text)
{
    herd_grammar *g = NULL;
    herd_status st = herd_grammar_parse(text, strlen(text), &g);
    CHECKF(st == HERD_OK, "parse %s: %s", text, herd_errmsg());
    return g;
}

static bool matches(const herd_grammar *g, const char *text)
{
    return herd_grammar_matches(g, text, strlen(text));
}

/* Each case: grammar, then strings it accepts, "!" then strings it refuses. */
static void check_language(const char *gbnf, const char *const *yes, const char *const *no)
{
    herd_grammar *g = parse(gbnf);
    if (!g) return;
    for (; *yes; yes++) CHECKF(matches(g, *yes), "%s should accept \"%s\"", gbnf, *yes);
    for (; *no; no++) CHECKF(!matches(g, *no), "%s should refuse \"%s\"", gbnf, *no);
    herd_grammar_free(g);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_languages(void)
{
    check_language("root ::= \"ab\" | \"c\"", L("ab", "c"), L("", "a", "abc", "cc"));
    check_language("root ::= [a-c]+ \"!\"", L("a!", "abcabc!"), L("!", "d!", "a"));
    check_language("root ::= [^a-c\\n]*", L("", "xyz", "é€"), L("a", "x\n"));
    check_language("root ::= \"x\"{2,4}", L("xx", "xxx", "xxxx"), L("x", "xxxxx", ""));
    check_language("root ::= \"x\"{3}", L("xxx"), L("xx", "xxxx"));
    check_language("root ::= \"x\"{2,}", L("xx", "xxxxxxx"), L("x"));
    check_language("root ::= (\"a\" | \"b\")? \"c\"", L("c", "ac", "bc"), L("abc", "a"));
    check_language("root ::= .", L("a", "é", "😀"), L("", "ab"));
    check_language("root ::= \"\\u00e9\\x41\\U0001F600\"", L("éA😀"), L("eA😀"));
    check_language("root ::= item (\",\" item)*\nitem ::= [0-9]+ # a number\n", L("1", "1,22,333"),
                   L("", "1,", ",1", "1,,2"));
    check_language("root ::= (\n  \"a\"\n  | \"b\"\n)\n", L("a", "b"), L("ab"));
    /* Nested rules and recursion on the right. */
    check_language("root ::= \"(\" root \")\" | \"\"", L("", "()", "((()))"), L("(", "())"));
    /* [a-] takes '-' literally; \- escapes it. */
    check_language("root ::= [a-]+ [\\-x]", L("a-x", "--"), L("b"));
}

static void check_error(const char *gbnf, const char *want)
{
    herd_grammar *g = NULL;
    herd_status st = herd_grammar_parse(gbnf, strlen(gbnf), &g);
    CHECKF(st == HERD_E_INVALID && !g, "%s should be refused", gbnf);
    CHECKF(strstr(herd_errmsg(), want), "%s: got \"%s\", want \"%s\"", gbnf, herd_errmsg(), want);
    herd_grammar_free(g);
}

static void test_errors(void)
{
    check_error("", "no rule named 'root'");
    check_error("root ::= foo", "undefined rule 'foo'");
    check_error("root ::= \"abc", "line 1, column 10: unterminated string literal");
    check_error("root ::= \"a\"\nx ::= [abc", "line 2, column 7: unterminated character class");
    check_error("root ::= \"a\"\n  x = \"b\"", "line 2, column 5: expecting '::='");
    check_error("root ::= ( \"a\" ", "expecting ')'");
    check_error("root ::= * \"a\"", "line 1, column 10: '*' follows nothing");
    check_error("root ::= \"\\q\"", "unknown escape");
    check_error("root ::= \"\\x4\"", "expecting 2 hex digits");
    check_error("root ::= root \"a\"", "left-recursive");
    check_error("root ::= x\nx ::= \"\" | y \"a\"\ny ::= x", "left-recursive");
    check_error("root ::= \"a\"{3,2}", "maximum below");
    check_error("root ::= \"a\"{5000}", "repetitions");
    check_error("root ::= \"a\"\nroot ::= \"b\"", "defined twice");
    check_error("root ::= <[12]>", "token references");
    check_error("root ::= [z-a]", "range end below");
    check_error("root ::= []", "empty character class");
    check_error("root ::= \"a\" )", "unexpected ')'");
    check_error("root ::= \"a\"{2,", "expecting '}'");
    herd_grammar *g = NULL;
    CHECK(herd_grammar_parse("root ::= \"a\"\0x", 14, &g) == HERD_E_INVALID);
    CHECK(strstr(herd_errmsg(), "NUL byte"));
    CHECK(herd_grammar_parse(NULL, 0, &g) == HERD_E_INVALID);
    CHECK(herd_grammar_parse("root ::= \"a\"", 12, NULL) == HERD_E_INVALID);
}

/* ------------------------------------------------------------ the mask */

/* A small vocabulary: ASCII pieces, multi-byte characters, pieces that split
 * a character (é = C3 A9, € = E2 82 AC), an invalid byte, an empty piece and
 * an end-of-generation token (the last). */
static const char *const PIECES[] = {
    "a",    "b",    "ab", "{",    "}",    "\"",       "\":",  ",",  " ",    "1",
    "12",   "x\"",  "é",  "\xC3", "\xA9", "\xE2\x82", "\xAC", "€",  "\xFF", "",
    "true", "null", "\n", "[",    "]",    "-",        "0",    ".5", "e",    "",
};
#define N_PIECES ((int)(sizeof PIECES / sizeof *PIECES))

static herd_gvocab *small_vocab(void)
{
    int lens[N_PIECES];
    bool eog[N_PIECES] = {0};
    for (int i = 0; i < N_PIECES; i++) lens[i] = (int)strlen(PIECES[i]);
    eog[N_PIECES - 1] = true;
    herd_gvocab *v = NULL;
    CHECK(herd_gvocab_from_pieces(N_PIECES, PIECES, lens, eog, &v) == HERD_OK);
    return v;
}

/* Brute force: a token is allowed iff the text so far plus its piece is a
 * prefix the grammar can still extend (checked with a fresh matcher). */
static bool brute_allows(const herd_grammar *g, const char *so_far, int t)
{
    if (t == N_PIECES - 1) return matches(g, so_far);
    if (!PIECES[t][0]) return false;
    herd_gmatch *m;
    if (herd_gmatch_new(g, NULL, &m)) return false;
    bool ok = herd_gmatch_accept_text(m, so_far, strlen(so_far)) &&
              herd_gmatch_accept_text(m, PIECES[t], strlen(PIECES[t]));
    herd_gmatch_free(m);
    return ok;
}

static uint64_t rng = 88172645463325252ULL;
static uint32_t next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Random walks with the mask; at every step the mask equals brute force and
 * each finished output matches. */
static void walk_small(const char *gbnf, int walks)
{
    herd_grammar *g = parse(gbnf);
    herd_gvocab *v = small_vocab();
    herd_gmatch *m = NULL;
    if (!g || !v || herd_gmatch_new(g, v, &m)) goto out;
    for (int w = 0; w < walks; w++) {
        char text[512] = "";
        herd_gmatch_reset(m);
        for (int step = 0; step < 40; step++) {
            bool allowed[N_PIECES];
            int n = herd_gmatch_mask(m, allowed, HERD_GMATCH_NO_BUDGET), count = 0;
            for (int t = 0; t < N_PIECES; t++) {
                bool want = brute_allows(g, text, t);
                CHECKF(allowed[t] == want, "%s after \"%s\": token %d mask %d brute %d", gbnf, text,
                       t, allowed[t], want);
                CHECK(herd_gmatch_allows(m, t) == allowed[t]);
                count += allowed[t];
            }
            CHECK(n == count);
            /* The cached masks are the walked ones. */
            bool again[N_PIECES];
            herd_gmatch_use_cache(m, false);
            CHECK(herd_gmatch_mask(m, again, HERD_GMATCH_NO_BUDGET) == n);
            CHECK(!memcmp(again, allowed, sizeof again));
            herd_gmatch_use_cache(m, true);
            if (n == 0) break;
            int pick = (int)(next_rand() % (uint32_t)n);
            int t = 0;
            for (; t < N_PIECES; t++)
                if (allowed[t] && pick-- == 0) break;
            CHECK(herd_gmatch_accept(m, t) == HERD_OK);
            if (t == N_PIECES - 1) {
                CHECKF(matches(g, text), "%s: ended at \"%s\"", gbnf, text);
                break;
            }
            if (strlen(text) + strlen(PIECES[t]) < sizeof text) strcat(text, PIECES[t]);
        }
    }
    /* A refused token leaves the matcher unchanged. */
    herd_gmatch_reset(m);
    bool before = herd_gmatch_allows(m, 3);
    for (int t = 0; t < N_PIECES; t++)
        if (!herd_gmatch_allows(m, t)) CHECK(herd_gmatch_accept(m, t) == HERD_E_INVALID);
    CHECK(herd_gmatch_allows(m, 3) == before);
    CHECK(herd_gmatch_accept(m, -1) == HERD_E_INVALID);
    CHECK(herd_gmatch_accept(m, N_PIECES) == HERD_E_INVALID);
out:
    herd_gmatch_free(m);
    herd_gvocab_free(v);
    herd_grammar_free(g);
}

static void test_mask(void)
{
    walk_small("root ::= \"{\" \"\\\"\" [a-bxé€]* \"\\\":\" (\"1\" | \"12\" | \"true\") \"}\"", 30);
    walk_small("root ::= [^\"\\n]{0,6} \"\\\"\"", 30);
    walk_small("root ::= (\"ab\" | \"é\" | \"€\" | \" \")* \"!\"?", 30);
    walk_small("root ::= \"[\" (\"1\" (\",\" \" \"? \"1\")*)? \"]\"", 30);
    /* A grammar with nothing to generate: only the end is allowed. */
    herd_grammar *g = parse("root ::= \"\"");
    herd_gvocab *v = small_vocab();
    herd_gmatch *m = NULL;
    if (g && v && !herd_gmatch_new(g, v, &m)) {
        bool allowed[N_PIECES];
        CHECK(herd_gmatch_mask(m, allowed, HERD_GMATCH_NO_BUDGET) == 1 && allowed[N_PIECES - 1]);
        CHECK(herd_gmatch_must_end(m) && herd_gmatch_can_end(m));
    }
    herd_gmatch_free(m);
    herd_gvocab_free(v);
    herd_grammar_free(g);
}

/* ------------------------------------------- llama.cpp's example grammars */

/* Generate from the grammar with a byte-level vocabulary (all 256 bytes and
 * an end token), choosing randomly among allowed tokens but favouring the end
 * once allowed; every finished output must match. */
static void walk_file(const char *path)
{
    size_t len;
    char *text = test_read_file(path, &len);
    CHECKF(text, "read %s", path);
    if (!text) return;
    herd_grammar *g = NULL;
    herd_status st = herd_grammar_parse(text, len, &g);
    CHECKF(st == HERD_OK, "%s: %s", path, herd_errmsg());
    free(text);
    if (st) return;
    enum { NV = 257 };
    static char bytes[NV][2];
    const char *pieces[NV];
    int lens[NV];
    bool eog[NV] = {0};
    for (int i = 0; i < 256; i++) bytes[i][0] = (char)i, pieces[i] = bytes[i], lens[i] = 1;
    pieces[256] = "", lens[256] = 0, eog[256] = true;
    herd_gvocab *v = NULL;
    herd_gmatch *m = NULL;
    CHECK(herd_gvocab_from_pieces(NV, pieces, lens, eog, &v) == HERD_OK);
    CHECK(v && herd_gmatch_new(g, v, &m) == HERD_OK);
    int finished = 0;
    for (int w = 0; m && w < 8; w++) {
        char out[2048];
        size_t n = 0;
        herd_gmatch_reset(m);
        for (;;) {
            bool allowed[NV];
            /* a budget that closes the output by 1500 bytes */
            int count = herd_gmatch_mask(m, allowed, n < 1500 ? (uint32_t)(1500 - n) : 0);
            CHECKF(count > 0, "%s: stuck after %zu bytes", path, n);
            if (count == 0) break;
            int t;
            if (allowed[256] && (count == 1 || n > 200 || next_rand() % 4 == 0))
                t = 256;
            else
                do t = (int)(next_rand() % 256);
                while (!allowed[t]);
            CHECK(herd_gmatch_accept(m, t) == HERD_OK);
            if (t == 256) {
                CHECKF(herd_grammar_matches(g, out, n), "%s: output refused", path);
                finished++;
                break;
            }
            out[n++] = (char)t;
            if (n == sizeof out) break; /* a grammar that rarely ends: fine, unchecked */
        }
    }
    CHECKF(finished > 0, "%s: no walk finished", path);
    herd_gmatch_free(m);
    herd_gvocab_free(v);
    herd_grammar_free(g);
}

static void test_llama_grammars(void)
{
    const char *dirs[] = {"/root/.cache/herd-oracle/node_modules/node-llama-cpp/llama/grammars",
                          "/work/llama.cpp-src/grammars"};
    const char *env = getenv("HERD_GBNF_DIR");
    const char *dir = NULL;
    DIR *d = NULL;
    if (env) d = opendir(dir = env);
    for (int i = 0; !d && i < 2; i++) d = opendir(dir = dirs[i]);
    if (!d) {
        printf("SKIP llama.cpp grammars: no grammars folder (set HERD_GBNF_DIR)\n");
        return;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".gbnf")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        walk_file(path);
        n++;
    }
    closedir(d);
    CHECKF(n >= 8, "only %d grammars in %s", n, dir);
    printf("llama.cpp grammars: %d from %s\n", n, dir);
}

int main(void)
{
    test_languages();
    test_errors();
    test_mask();
    test_llama_grammars();
    return test_report();
}
