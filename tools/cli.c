/* cli.c — option parsing and error reporting shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("herd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_fail(const char *what) { return cli_error(1, "%s: %s", what, herd_errmsg()); }

static bool parse_int(const char *flag, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cli_error(2, "%s: '%s' is not an integer in %ld..%ld", flag, s, lo, hi);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool parse_float(const char *flag, const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || v != v) {
        cli_error(2, "%s: '%s' is not a number", flag, s);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) {
        cli_error(2, "%s: '%s' is not an integer", flag, s);
        return false;
    }
    *out = (uint64_t)v; /* -1 (llama.cpp's "random seed") wraps to UINT64_MAX */
    return true;
}

bool cli_parse(int argc, char **argv, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->n_batch = 512;
    o->swa = -1;
    o->n_chunks = -1;
    o->limit = -1;
    o->n_parallel = 1;
    o->sp = herd_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;
#define NEED()                                                                                     \
    if (!v) {                                                                                      \
        cli_error(2, "%s needs a value", a);                                                       \
        return false;                                                                              \
    }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED(); o->model = v; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { NEED(); o->prompt = v; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { NEED(); o->file = v; }
        else if (!strcmp(a, "--ids")) { NEED(); o->ids = v; }
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) { NEED(); o->out = v; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { NEED(); ok = parse_int(a, v, -1, INT_MAX, &o->n_predict); }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) { NEED(); ok = parse_int(a, v, 0, 1 << 24, &o->n_ctx); }
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) { NEED(); ok = parse_int(a, v, 1, 1 << 20, &o->n_batch); }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { NEED(); ok = parse_int(a, v, 1, 1024, &o->n_threads); }
        else if (!strcmp(a, "--chunks")) { NEED(); ok = parse_int(a, v, 0, INT_MAX, &o->n_chunks); }
        else if (!strcmp(a, "--swa")) { NEED(); ok = parse_int(a, v, 0, 1 << 24, &o->swa); }
        else if (!strcmp(a, "--temp")) { NEED(); ok = parse_float(a, v, &o->sp.temp); }
        else if (!strcmp(a, "--top-k")) { NEED(); ok = parse_int(a, v, 0, INT_MAX, &o->sp.top_k); }
        else if (!strcmp(a, "--top-p")) { NEED(); ok = parse_float(a, v, &o->sp.top_p); }
        else if (!strcmp(a, "--min-p")) { NEED(); ok = parse_float(a, v, &o->sp.min_p); }
        else if (!strcmp(a, "--repeat-penalty")) { NEED(); ok = parse_float(a, v, &o->sp.repeat_penalty); }
        else if (!strcmp(a, "--repeat-last-n")) { NEED(); ok = parse_int(a, v, 0, INT_MAX, &o->sp.repeat_last_n); }
        else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) { NEED(); ok = parse_u64(a, v, &o->sp.seed); }
        else if (!strcmp(a, "-ctk") || !strcmp(a, "-ctv") || !strcmp(a, "--cache-type") ||
                 !strcmp(a, "--cache-type-k") || !strcmp(a, "--cache-type-v")) {
            NEED();
            if (!strcmp(v, "f16")) o->cache_type = HERD_KV_F16;
            else if (!strcmp(v, "f32")) o->cache_type = HERD_KV_F32;
            else return cli_error(2, "%s: cache type must be f16 or f32", a), false;
        }
        else if (!strcmp(a, "--task")) { NEED(); o->task = v; }
        else if (!strcmp(a, "--limit")) { NEED(); ok = parse_int(a, v, 0, INT_MAX, &o->limit); }
        else if (!strcmp(a, "--kl-divergence-base")) { NEED(); o->kl_base = v; }
        else if (!strcmp(a, "--kl-divergence")) { o->kl_divergence = 1; takes = false; }
        else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) { NEED(); ok = parse_int(a, v, 1, 4096, &o->n_parallel); }
        else if (!strcmp(a, "--scores")) { o->scores = 1; takes = false; }
        else if (!strcmp(a, "--system")) { NEED(); o->system = v; }
        else if (!strcmp(a, "--chat-template")) { NEED(); o->chat_template = v; }
        else if (!strcmp(a, "--chat")) { o->chat = 1; takes = false; }
        else if (!strcmp(a, "--grammar")) { NEED(); o->grammar = v; }
        else if (!strcmp(a, "--grammar-file")) { NEED(); o->grammar_file = v; }
        else if (!strcmp(a, "--json-schema") || !strcmp(a, "-j")) { NEED(); o->json_schema = v; }
        else if (!strcmp(a, "--no-bos")) { o->no_bos = 1; takes = false; }
        else if (!strcmp(a, "--pieces")) { o->pieces = 1; takes = false; }
        else if (!strcmp(a, "--special")) { o->special = 1; takes = false; }
        else if (!strcmp(a, "--no-display-prompt")) { o->no_display_prompt = 1; takes = false; }
        else if (!strcmp(a, "--mmap")) { o->mmap = 1; takes = false; }
        else if (!strcmp(a, "--no-mmap")) { o->mmap = 0; takes = false; }
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { o->verbose = 1; takes = false; }
        else if (a[0] == '-' && a[1]) return cli_error(2, "unknown option %s", a), false;
        else {
            if (o->n_positional == 4) return cli_error(2, "too many arguments"), false;
            o->positional[o->n_positional++] = a;
            takes = false;
        }
#undef NEED
        if (!ok) return false;
        if (takes) i++;
    }
    return true;
}

herd_model *cli_load_model(const cli_opts *o)
{
    const char *path = o->model ? o->model : (o->n_positional ? o->positional[0] : NULL);
    if (!path) {
        cli_error(2, "no model given (-m FILE)");
        return NULL;
    }
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = o->n_threads;
    mp.mmap = o->mmap;
    herd_model *m;
    if (herd_model_load(path, &mp, &m)) {
        cli_fail(path);
        return NULL;
    }
    return m;
}

/* --ids "1 2 3": ids as given, checked against the vocabulary. */
static int32_t *parse_ids(const herd_model *m, const char *s, int *n)
{
    size_t cap = strlen(s) / 2 + 2;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return NULL;
    int k = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= herd_n_vocab(m)) {
            cli_error(2, "--ids: '%.*s' is not a token id (0..%d)", (int)strcspn(p, " ,\t"), p,
                      herd_n_vocab(m) - 1);
            free(ids);
            return NULL;
        }
        ids[k++] = (int32_t)v;
        p = end;
    }
    *n = k;
    return ids;
}

int32_t *cli_prompt_ids(const herd_model *m, const cli_opts *o, int *n)
{
    if (o->ids) return parse_ids(m, o->ids, n);
    const char *text = o->prompt ? o->prompt : "";
    size_t len = strlen(text);
    bool add_bos = herd_add_bos(m) && !o->no_bos;
    int need = 0;
    if (herd_tokenize(m, text, len, add_bos, true, NULL, 0, &need) && need == 0) {
        cli_fail("tokenize");
        return NULL;
    }
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    if (!ids) return NULL;
    if (herd_tokenize(m, text, len, add_bos, true, ids, need + 1, n)) {
        cli_fail("tokenize");
        free(ids);
        return NULL;
    }
    return ids;
}
