/*
 * test_schema.c — JSON Schema to GBNF: documents each schema must accept and
 * refuse (through the compiled grammar), the errors that name an unsupported
 * keyword, integer ranges checked against every value, and random walks whose
 * every finished output is JSON (Jansson) of the right shape.
 */
#include "helpers.h"
#include "grammar/grammar.h"
#include "grammar/schema.h"

#include <stdlib.h>
#include <string.h>

static herd_grammar *compile(const char *schema)
{
    char *gbnf = NULL;
    herd_status st = herd_schema_text_to_gbnf(schema, strlen(schema), &gbnf);
    CHECKF(st == HERD_OK, "%s: %s", schema, herd_errmsg());
    if (st) return NULL;
    herd_grammar *g = NULL;
    st = herd_grammar_parse(gbnf, strlen(gbnf), &g);
    CHECKF(st == HERD_OK, "%s: grammar %s: %s", schema, gbnf, herd_errmsg());
    free(gbnf);
    return g;
}

static void check_docs(const char *schema, const char *const *yes, const char *const *no)
{
    herd_grammar *g = compile(schema);
    if (!g) return;
    for (; *yes; yes++)
        CHECKF(herd_grammar_matches(g, *yes, strlen(*yes)), "%s should accept %s", schema, *yes);
    for (; *no; no++)
        CHECKF(!herd_grammar_matches(g, *no, strlen(*no)), "%s should refuse %s", schema, *no);
    herd_grammar_free(g);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_documents(void)
{
    check_docs("{\"type\":\"string\"}", L("\"\"", "\"a b\"", "\"\\n\\u00e9\"", "\"é\""),
               L("a", "\"a", "1", "\"\n\""));
    check_docs("{\"type\":\"integer\"}", L("0", "-12", "123456"), L("01", "1.5", "-", ""));
    check_docs("{\"type\":\"number\"}", L("0", "-1.25", "3e10", "2.5E-3"), L(".5", "1.", "+1"));
    check_docs("{\"type\":\"boolean\"}", L("true", "false"), L("True", "1"));
    check_docs("{\"type\":\"null\"}", L("null"), L("nil"));
    check_docs("{\"type\":[\"string\",\"null\"]}", L("null", "\"x\""), L("1"));
    check_docs("{\"enum\":[\"red\",1,null,{\"a\":[true]}]}",
               L("\"red\"", "1", "null", "{\"a\":[true]}"), L("\"blue\"", "2"));
    check_docs("{\"const\":\"x\\\"y\"}", L("\"x\\\"y\""), L("\"xy\""));
    check_docs("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", L("\"ab\"", "\"abc\""),
               L("\"a\"", "\"abcd\""));
    check_docs("{\"type\":\"string\",\"format\":\"date\"}", L("\"2024-02-29\""),
               L("\"2024-13-01\"", "\"24-01-01\""));
    check_docs("{\"type\":\"string\",\"format\":\"time\"}",
               L("\"23:59:59Z\"", "\"01:02:03.456+05:30\""), L("\"24:00:00Z\""));
    check_docs("{\"type\":\"string\",\"format\":\"date-time\"}", L("\"2024-01-02T03:04:05Z\""),
               L("\"2024-01-02 03:04:05Z\""));
    check_docs("{\"type\":\"string\",\"format\":\"uuid\"}",
               L("\"123e4567-e89b-12d3-a456-426614174000\""), L("\"123e4567\""));
    check_docs("{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d+(\\\\.\\\\d)?$\"}",
               L("\"AB-1\"", "\"ZZ-123.4\""), L("\"ab-1\"", "\"AB-\"", "\"AB-1.\""));
    check_docs("{\"type\":\"string\",\"pattern\":\"ab|cd\"}", L("\"xxabyy\"", "\"cd\""),
               L("\"ac\""));
    check_docs(
        "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3}",
        L("[1]", "[1, 2,3]", "[ 1 ]"), L("[]", "[1,2,3,4]", "[1,]"));
    check_docs("{\"type\":\"array\"}", L("[]", "[1,\"a\",[null]]"), L("[1 2]"));
    check_docs(
        "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}",
        L("[\"a\",1]"), L("[1,\"a\"]", "[\"a\"]"));
    const char *obj = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},"
                      "\"b\":{\"type\":\"string\"},\"c\":{\"type\":\"boolean\"}},"
                      "\"required\":[\"b\"],\"additionalProperties\":false}";
    check_docs(obj,
               L("{\"b\":\"x\"}", "{ \"b\": \"x\", \"a\": 1 }", "{\"b\":\"x\",\"a\":1,\"c\":true}",
                 "{\"b\":\"x\",\"c\":false}"),
               L("{}", "{\"a\":1}", "{\"b\":\"x\",\"d\":1}", "{\"b\":\"x\",\"b\":\"y\"}"));
    const char *opt = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},"
                      "\"b\":{\"type\":\"integer\"}}}";
    check_docs(opt, L("{}", "{\"a\":1}", "{\"b\":2}", "{\"a\":1,\"b\":2}"),
               L("{\"b\":2,\"a\":1}", "{,\"a\":1}"));
    const char *open = "{\"type\":\"object\",\"properties\":{\"ab\":{\"type\":\"integer\"}},"
                       "\"additionalProperties\":{\"type\":\"string\"}}";
    check_docs(open,
               L("{\"ab\":1,\"x\":\"s\"}", "{\"a\":\"s\"}", "{\"abc\":\"s\"}", "{\"\":\"s\"}"),
               L("{\"ab\":\"s\"}", "{\"x\":1}"));
    check_docs("{\"type\":\"object\"}", L("{}", "{\"k\":[1,{\"z\":null}]}"), L("[]"));
    const char *defs = "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":"
                       "\"integer\"},\"next\":{\"anyOf\":[{\"$ref\":\"#/$defs/node\"},{\"type\":"
                       "\"null\"}]}},\"required\":[\"v\",\"next\"]}},\"$ref\":\"#/$defs/node\"}";
    check_docs(defs, L("{\"v\":1,\"next\":null}", "{\"v\":1,\"next\":{\"v\":2,\"next\":null}}"),
               L("{\"v\":1}"));
    check_docs("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"maxLength\":1}]}",
               L("5", "\"a\""), L("\"ab\"", "true"));
    check_docs("{\"type\":\"string\",\"nullable\":true}", L("null", "\"a\""), L("1"));
    check_docs("{}", L("1", "\"x\"", "{\"a\":[]}", "null"), L("nul"));
    check_docs("{\"title\":\"T\",\"description\":\"d\",\"type\":\"integer\",\"default\":3}", L("3"),
               L("\"3\""));
}

/* Every value in a window around the bounds is accepted exactly when inside. */
static void check_range(const char *bounds, long lo, long hi, long from, long to)
{
    char schema[200];
    snprintf(schema, sizeof schema, "{\"type\":\"integer\",%s}", bounds);
    herd_grammar *g = compile(schema);
    if (!g) return;
    int bad = 0;
    for (long x = from; x <= to; x++) {
        char s[32];
        snprintf(s, sizeof s, "%ld", x);
        bool want = x >= lo && x <= hi;
        if (herd_grammar_matches(g, s, strlen(s)) != want && bad++ < 5)
            CHECKF(false, "%s: %ld %s", schema, x, want ? "refused" : "accepted");
    }
    herd_grammar_free(g);
}

static void test_ranges(void)
{
    check_range("\"minimum\":0,\"maximum\":100", 0, 100, -120, 1200);
    check_range("\"minimum\":7,\"maximum\":1234", 7, 1234, -20, 3000);
    check_range("\"minimum\":-57,\"maximum\":-3", -57, -3, -200, 200);
    check_range("\"minimum\":-15,\"maximum\":208", -15, 208, -300, 300);
    check_range("\"exclusiveMinimum\":9,\"exclusiveMaximum\":99", 10, 98, -5, 150);
    check_range("\"minimum\":95", 95, 1L << 40, -100, 2000);
    check_range("\"maximum\":-95", -(1L << 40), -95, -2000, 100);
    check_range("\"minimum\":-42", -42, 1L << 40, -2000, 2000);
    check_range("\"maximum\":42", -(1L << 40), 42, -2000, 2000);
    check_range("\"minimum\":1.5,\"maximum\":7.5", 2, 7, -10, 20);
}

static void check_error(const char *schema, const char *want)
{
    char *gbnf = NULL;
    herd_status st = herd_schema_text_to_gbnf(schema, strlen(schema), &gbnf);
    CHECKF(st == HERD_E_INVALID && !gbnf, "%s should be refused", schema);
    CHECKF(strstr(herd_errmsg(), want), "%.200s: got \"%s\", want \"%s\"", schema, herd_errmsg(),
           want);
    free(gbnf);
}

static void test_errors(void)
{
    check_error("{\"allOf\":[]}", "allOf is not supported (at #)");
    check_error(
        "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\",\"multipleOf\":2}}}",
        "multipleOf is not supported (at #/properties/a)");
    check_error("{\"type\":\"array\",\"items\":{\"uniqueItems\":true}}",
                "uniqueItems is not supported");
    check_error("{\"type\":\"number\",\"minimum\":1}", "minimum on a number");
    check_error("{\"type\":\"string\",\"format\":\"email\"}", "format \"email\" is not supported");
    check_error("{\"type\":\"string\",\"pattern\":\"(?=a)\"}", "lookaround");
    check_error("{\"type\":\"string\",\"pattern\":\"a\\\\1\"}", "unsupported escape");
    check_error("{\"type\":\"string\",\"pattern\":\"(a\"}", "expecting ')'");
    check_error("{\"$ref\":\"http://x/y\"}", "$ref \"http://x/y\" is not supported");
    check_error("{\"$ref\":\"#/$defs/missing\"}", "names nothing");
    check_error("{\"type\":\"strnig\"}", "type \"strnig\" is unknown");
    check_error("{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "maxItems is below minItems");
    check_error("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer");
    check_error("{\"type\":\"object\",\"required\":[\"x\"],\"additionalProperties\":false}",
                "required but additionalProperties is false");
    check_error("[1,2]", "a schema must be an object or true");
    check_error("{\"type\":", "not JSON");
    check_error("false", "a schema must be an object");
    /* Deep nesting is refused, not a stack overflow. */
    size_t n = 100; /* past the converter's 64, within Jansson's 2048 */
    char *deep = malloc(n * 20 + 100), *p = deep;
    for (size_t i = 0; i < n; i++) p += sprintf(p, "{\"items\":");
    p += sprintf(p, "{}");
    for (size_t i = 0; i < n; i++) *p++ = '}';
    *p = 0;
    check_error(deep, "nested deeper");
    free(deep);
}

/* Random walks over a byte vocabulary: each finished output parses as JSON. */
static uint64_t rng = 0x243F6A8885A308D3ULL;
static uint32_t next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void walk_schema(const char *schema, const herd_gvocab *v)
{
    herd_grammar *g = compile(schema);
    herd_gmatch *m = NULL;
    if (!g || herd_gmatch_new(g, v, &m)) goto out;
    for (int w = 0; w < 20; w++) {
        char out[4096];
        size_t n = 0;
        herd_gmatch_reset(m);
        for (;;) {
            bool allowed[257];
            /* A budget shrinking to 0 at 600 bytes: the walk must close in time. */
            uint32_t budget = n < 600 ? (uint32_t)(600 - n) : 0;
            int count = herd_gmatch_mask(m, allowed, budget);
            CHECKF(count > 0, "%s: stuck after %zu bytes", schema, n);
            if (!count) break;
            int t;
            if (allowed[256] && (count == 1 || next_rand() % 3 == 0))
                t = 256;
            else
                do t = (int)(next_rand() % 256);
                while (!allowed[t]);
            CHECK(herd_gmatch_accept(m, t) == HERD_OK);
            if (t == 256) break;
            out[n++] = (char)t;
            if (n == sizeof out) break;
        }
        CHECKF(n < sizeof out, "%s: no end in %zu bytes", schema, n);
        json_error_t err;
        json_t *j = json_loadb(out, n, JSON_DECODE_ANY, &err);
        CHECKF(j, "%s: output not JSON: %.*s (%s)", schema, (int)n, out, err.text);
        json_decref(j);
    }
out:
    herd_gmatch_free(m);
    herd_grammar_free(g);
}

static void test_walks(void)
{
    enum { NV = 257 };
    static char bytes[NV][2];
    const char *pieces[NV];
    int lens[NV];
    bool eog[NV] = {0};
    for (int i = 0; i < 256; i++) bytes[i][0] = (char)i, pieces[i] = bytes[i], lens[i] = 1;
    pieces[256] = "", lens[256] = 0, eog[256] = true;
    herd_gvocab *v = NULL;
    CHECK(herd_gvocab_from_pieces(NV, pieces, lens, eog, &v) == HERD_OK);
    if (!v) return;
    walk_schema(
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"n\":{\"type\":"
        "\"integer\",\"minimum\":-5,\"maximum\":500},\"tags\":{\"type\":\"array\",\"items\":{"
        "\"type\":\"string\",\"format\":\"date\"}}},\"required\":[\"name\"]}",
        v);
    walk_schema("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"number\"}}", v);
    walk_schema("{}", v);
    walk_schema("{\"anyOf\":[{\"type\":\"array\",\"items\":{\"$ref\":\"#\"},\"maxItems\":2},"
                "{\"type\":\"string\",\"pattern\":\"^x+$\"}]}",
                v);
    herd_gvocab_free(v);
}

int main(void)
{
    test_documents();
    test_ranges();
    test_errors();
    test_walks();
    return test_report();
}
