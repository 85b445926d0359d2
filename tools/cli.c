/* cli.c — option parsing and error reporting shared by the subcommands. */
#include "cli.h"

#include "gguf/gguf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The library's messages often start with the file they concern already
 * ("m.gguf: gguf: …"): then `what` is not repeated in front of them. */
int cli_fail(const char *what)
{
    const char *msg = herd_errmsg();
    size_t n = strlen(what);
    if (!strncmp(msg, what, n) && msg[n] == ':') return cli_error(1, "%s", msg);
    return cli_error(1, "%s: %s", what, msg);
}

int cli_max_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return 4 * (n > 0 ? (int)n : 1);
}

bool cli_int(const char *flag, const char *s, long lo, long hi, int *out)
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

bool cli_threads(const char *flag, const char *s, int *out)
{
    const int most = cli_max_threads();
    if (!cli_int(flag, s, 1, 1 << 16, out)) return false;
    if (*out > most) {
        cli_error(2, "%s %d: more than 4 threads per core (%d cores here) only slows herd down",
                  flag, *out, most / 4);
        return false;
    }
    return true;
}

/* A number in lo..hi (both included). */
static bool parse_float(const char *flag, const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || v != v || v < lo || v > hi) {
        if (hi >= 1e30f)
            cli_error(2, "%s: '%s' is not a number >= %g", flag, s, lo);
        else
            cli_error(2, "%s: '%s' is not a number in %g..%g", flag, s, lo, hi);
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
    if (errno || end == s || *end || v < -1) {
        cli_error(2, "%s: '%s' is not a seed (0 or more, or -1 for a random one)", flag, s);
        return false;
    }
    *out = (uint64_t)v; /* -1 (llama.cpp's "random seed") wraps to UINT64_MAX */
    return true;
}

bool cli_parse(int argc, char **argv, unsigned allowed, cli_opts *o)
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
/* An option of a group the command does not use would be ignored: refuse it. */
#define G(group)                                                                                   \
    if (!(allowed & (group))) {                                                                    \
        cli_error(2, "%s does not apply to herd %s (herd %s --help)", a, argv[0], argv[0]);        \
        return false;                                                                              \
    }
#define NEED()                                                                                     \
    if (!v) {                                                                                      \
        cli_error(2, "%s needs a value", a);                                                       \
        return false;                                                                              \
    }
        /* One option a line reads best. */
        /* clang-format off */
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { G(CLI_MODEL); NEED(); o->model = v; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { G(CLI_PROMPT); NEED(); o->prompt = v; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { G(CLI_FILE); NEED(); o->file = v; }
        else if (!strcmp(a, "--ids")) { G(CLI_PROMPT); NEED(); o->ids = v; }
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) { G(CLI_OUT); NEED(); o->out = v; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { G(CLI_GEN); NEED(); ok = cli_int(a, v, -1, INT_MAX, &o->n_predict); }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) { G(CLI_CTX); NEED(); ok = cli_int(a, v, 0, 1 << 24, &o->n_ctx); }
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) { G(CLI_CTX); NEED(); ok = cli_int(a, v, 1, 1 << 20, &o->n_batch); }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { G(CLI_MODEL); NEED(); ok = cli_threads(a, v, &o->n_threads); }
        else if (!strcmp(a, "--chunks")) { G(CLI_PPL); NEED(); ok = cli_int(a, v, 1, INT_MAX, &o->n_chunks); }
        else if (!strcmp(a, "--swa")) { G(CLI_CTX); NEED(); ok = cli_int(a, v, 0, 1 << 24, &o->swa); }
        else if (!strcmp(a, "--temp")) { G(CLI_GEN); NEED(); ok = parse_float(a, v, 0, 1e30f, &o->sp.temp); }
        else if (!strcmp(a, "--top-k")) { G(CLI_GEN); NEED(); ok = cli_int(a, v, 0, INT_MAX, &o->sp.top_k); }
        else if (!strcmp(a, "--top-p")) { G(CLI_GEN); NEED(); ok = parse_float(a, v, 0, 1, &o->sp.top_p); }
        else if (!strcmp(a, "--min-p")) { G(CLI_GEN); NEED(); ok = parse_float(a, v, 0, 1, &o->sp.min_p); }
        else if (!strcmp(a, "--repeat-penalty")) { G(CLI_GEN); NEED(); ok = parse_float(a, v, 1e-6f, 1e30f, &o->sp.repeat_penalty); }
        else if (!strcmp(a, "--repeat-last-n")) { G(CLI_GEN); NEED(); ok = cli_int(a, v, 0, INT_MAX, &o->sp.repeat_last_n); }
        else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) { G(CLI_GEN); NEED(); ok = parse_u64(a, v, &o->sp.seed); }
        else if (!strcmp(a, "-ctk") || !strcmp(a, "-ctv") || !strcmp(a, "--cache-type") ||
                 !strcmp(a, "--cache-type-k") || !strcmp(a, "--cache-type-v")) {
            G(CLI_CTX);
            NEED();
            herd_kv_type t;
            if (herd_kv_type_parse(v, &t)) return cli_error(2, "%s: %s", a, herd_errmsg()), false;
            const bool k = strcmp(a, "-ctv") && strcmp(a, "--cache-type-v");
            const bool both = !strcmp(a, "--cache-type");
            if (k || both) o->cache_type_k = t;
            if (!k || both) o->cache_type_v = t;
        }
        else if (!strcmp(a, "--task")) { G(CLI_EVAL); NEED(); o->task = v; }
        else if (!strcmp(a, "--limit")) { G(CLI_EVAL); NEED(); ok = cli_int(a, v, 1, INT_MAX, &o->limit); }
        else if (!strcmp(a, "--kl-divergence-base")) { G(CLI_PPL); NEED(); o->kl_base = v; }
        else if (!strcmp(a, "--kl-divergence")) { G(CLI_PPL); o->kl_divergence = 1; takes = false; }
        else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) { G(CLI_PARALLEL); NEED(); ok = cli_int(a, v, 1, 4096, &o->n_parallel); }
        else if (!strcmp(a, "--scores")) { G(CLI_EVAL); o->scores = 1; takes = false; }
        else if (!strcmp(a, "--system")) { G(CLI_CHAT); NEED(); o->system = v; }
        else if (!strcmp(a, "--chat-template")) { G(CLI_CHAT); NEED(); o->chat_template = v; }
        else if (!strcmp(a, "--chat")) { G(CLI_CHAT); o->chat = 1; takes = false; }
        else if (!strcmp(a, "--grammar")) { G(CLI_GEN); NEED(); o->grammar = v; }
        else if (!strcmp(a, "--grammar-file")) { G(CLI_GEN); NEED(); o->grammar_file = v; }
        else if (!strcmp(a, "--json-schema") || !strcmp(a, "-j")) { G(CLI_GEN); NEED(); o->json_schema = v; }
        else if (!strcmp(a, "--no-bos")) { G(CLI_PROMPT); o->no_bos = 1; takes = false; }
        else if (!strcmp(a, "--pieces")) { G(CLI_PIECES); o->pieces = 1; takes = false; }
        else if (!strcmp(a, "--no-display-prompt")) { G(CLI_GEN); o->no_display_prompt = 1; takes = false; }
        else if (!strcmp(a, "--mmap")) { G(CLI_MODEL); o->mmap = 1; takes = false; }
        else if (!strcmp(a, "--no-mmap")) { G(CLI_MODEL); o->mmap = 0; takes = false; }
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { G(CLI_VERBOSE); o->verbose = 1; takes = false; }
        else if (a[0] == '-' && a[1]) return cli_error(2, "unknown option %s", a), false;
        else {
            if (o->n_positional == 4) return cli_error(2, "too many arguments"), false;
            o->positional[o->n_positional++] = a;
            takes = false;
        }
#undef NEED
#undef G
        /* clang-format on */
        if (!ok) return false;
        if (takes) i++;
    }
    /* One positional argument is the model when -m is not given (`herd info
     * M.gguf`); anything else would be silently ignored, so it is an error. */
    const int n_free = o->model ? 0 : 1;
    if (o->n_positional > n_free) {
        cli_error(2, "unexpected argument '%s' (the model is -m FILE, a prompt -p TEXT or -f FILE)",
                  o->positional[n_free]);
        return false;
    }
    if (!o->model && o->n_positional) o->model = o->positional[0];
    return true;
}

/* Does the file hold no tensor at all (a vocabulary file)? Mapping reads
 * only the header. */
static bool holds_no_tensors(const char *path)
{
    gguf_file *f;
    if (herd_gguf_open_ex(path, GGUF_MAP, &f)) return false; /* the full load reports it */
    const bool none = herd_gguf_n_tensors(f) == 0;
    herd_gguf_close(f);
    return none;
}

herd_model *cli_load_model_as(const cli_opts *o, cli_load how)
{
    const char *path = o->model;
    if (!path) {
        cli_error(2, "no model given (-m FILE)");
        return NULL;
    }
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = o->n_threads;
    mp.mmap = o->mmap;
    mp.vocab_only = how == CLI_LOAD_VOCAB || (how == CLI_LOAD_ANY && holds_no_tensors(path));
    herd_model *m;
    if (herd_model_load(path, &mp, &m)) {
        cli_fail(path);
        return NULL;
    }
    /* As llama.cpp, once: a longer context runs, but past what the model was
     * trained on its output degrades. */
    const int train = herd_n_ctx_train(m);
    if (!mp.vocab_only && train > 0 && o->n_ctx > train)
        fprintf(stderr, "herd: warning: -c %d is more than the %d tokens %s was trained on\n",
                o->n_ctx, train, path);
    return m;
}

herd_model *cli_load_model(const cli_opts *o)
{
    return cli_load_model_as(o, CLI_LOAD_FULL);
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error(1, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) {
            char *nb = realloc(buf, (cap *= 2) + 1);
            if (!nb) free(buf);
            buf = nb;
        }
    const bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        cli_error(1, "cannot read %s%s", path, buf ? "" : ": out of memory");
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
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
