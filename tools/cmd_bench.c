/*
 * cmd_bench.c — `herd bench`: llama-bench's two tests on one model.
 *
 *   pp<N>: one batch of N random tokens decoded from an empty cache;
 *   tg<N>: N single-token decodes from an empty cache.
 *   -d D:  llama-bench's depth: before each run (untimed) D random tokens
 *          are put in the cache, and the test continues after them; the
 *          tests are then named pp<N>@d<D>, tg<N>@d<D>.
 *
 * One warm-up run, then -r repetitions; tokens/s as mean ± sample standard
 * deviation, and the median. The table and the JSON fields are llama-bench's
 * (plus "test", as ../shared/oracle prints it), so results line up.
 */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double mean, sd, median;
} stats;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static stats summarize(double *ts, int n)
{
    stats s = {0};
    for (int i = 0; i < n; i++) s.mean += ts[i] / n;
    for (int i = 0; i < n; i++) s.sd += (ts[i] - s.mean) * (ts[i] - s.mean);
    s.sd = n > 1 ? sqrt(s.sd / (n - 1)) : 0;
    qsort(ts, (size_t)n, sizeof *ts, cmp_double);
    s.median = ts[n / 2];
    return s;
}

/* Fill the cache with `depth` random tokens in batches of n_batch (as
 * llama-bench's depth: untimed, only the last token's logits). */
static herd_status fill_depth(herd_ctx *c, int nv, int depth, int n_batch, unsigned *rng)
{
    int32_t *toks = malloc((size_t)n_batch * sizeof *toks),
            *pos = malloc((size_t)n_batch * sizeof *pos);
    herd_status st = toks && pos ? HERD_OK : HERD_E_NOMEM;
    for (int p0 = 0; p0 < depth && !st; p0 += n_batch) {
        int n = depth - p0 < n_batch ? depth - p0 : n_batch;
        for (int j = 0; j < n; j++)
            toks[j] = (int32_t)(rand_r(rng) % (unsigned)nv), pos[j] = p0 + j;
        herd_batch b = {.n_tokens = n, .token = toks, .pos = pos};
        st = herd_decode(c, &b);
    }
    free(toks);
    free(pos);
    return st;
}

/* One timed run of a test; returns tokens/s or a negative value on error. */
static double run_once(herd_ctx *c, const herd_model *m, bool prompt, int n, int depth, int n_batch,
                       unsigned *rng)
{
    int nv = herd_n_vocab(m);
    int32_t *toks = malloc((size_t)n * sizeof *toks), *pos = malloc((size_t)n * sizeof *pos);
    if (!toks || !pos) {
        free(toks), free(pos);
        return -1;
    }
    for (int j = 0; j < n; j++) toks[j] = (int32_t)(rand_r(rng) % (unsigned)nv), pos[j] = depth + j;
    if (!prompt && !depth && herd_token_bos(m) >= 0) toks[0] = herd_token_bos(m);
    herd_kv_remove(c, -1, 0, -1);
    if (depth > 0 && fill_depth(c, nv, depth, n_batch, rng)) {
        free(toks), free(pos);
        return -1;
    }
    double t0 = herd_time();
    herd_status st = HERD_OK;
    if (prompt) {
        herd_batch b = {.n_tokens = n, .token = toks, .pos = pos};
        st = herd_decode(c, &b);
    } else {
        for (int j = 0; j < n && !st; j++) {
            herd_batch b = {.n_tokens = 1, .token = toks + j, .pos = pos + j};
            st = herd_decode(c, &b);
        }
    }
    double dt = herd_time() - t0;
    free(toks);
    free(pos);
    return st ? -1 : n / dt;
}

static void model_desc(const herd_model *m, char *buf, size_t cap)
{
    herd_model_info in;
    herd_model_get_info(m, &in);
    double b = in.n_params / 1e9;
    if (b >= 1)
        snprintf(buf, cap, "%s %.0fB %s", in.arch, b, in.file_type);
    else
        snprintf(buf, cap, "%s %.0fM %s", in.arch, in.n_params / 1e6, in.file_type);
}

int cmd_bench(int argc, char **argv)
{
    int n_prompt = 512, n_gen = 128, n_depth = 0, reps = 5, json = 0;
    /* -p/-n/-r mean counts here, as in llama-bench; pull them out first. */
    char **rest = malloc((size_t)argc * sizeof *rest);
    int nr = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int *dst = !strcmp(a, "-p")   ? &n_prompt
                   : !strcmp(a, "-n") ? &n_gen
                   : !strcmp(a, "-d") ? &n_depth
                   : !strcmp(a, "-r") ? &reps
                                      : NULL;
        if (dst && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1 << 20 || (dst == &reps && v < 1)) {
                free(rest);
                return cli_error(2, "bench: %s: invalid count '%s'", a, argv[i]);
            }
            *dst = (int)v;
        } else if (!strcmp(a, "--json"))
            json = 1;
        else
            rest[nr++] = argv[i];
    }
    cli_opts o;
    bool ok = cli_parse(nr, rest, &o);
    free(rest);
    if (!ok) return 2;
    herd_model *m = cli_load_model(&o);
    if (!m) return 1;
    /* The cache holds the depth and the longer test: within -c if given,
     * else within the model's training context (beyond it positions mean
     * nothing). */
    const int longest = n_prompt > n_gen ? n_prompt : n_gen, need = n_depth + longest;
    const int limit = o.n_ctx > 0 ? o.n_ctx : herd_n_ctx_train(m);
    if (n_depth > 0 && limit > 0 && need > limit) {
        herd_model_free(m);
        return cli_error(2,
                         "bench: -d %d: depth plus the longest test (%d) exceeds the context of %d "
                         "(accepted: 0 to %d)",
                         n_depth, longest, limit, limit > longest ? limit - longest : 0);
    }
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = need + 16;
    cp.n_batch = n_prompt > 0 ? n_prompt : 512;
    cp.n_threads = o.n_threads;
    herd_ctx *c;
    if (herd_ctx_new(m, &cp, &c)) {
        herd_model_free(m);
        return cli_fail("context");
    }
    herd_model_info in;
    herd_model_get_info(m, &in);
    char desc[128];
    model_desc(m, desc, sizeof desc);
    int threads = o.n_threads > 0 ? o.n_threads : in.n_threads;
    json_t *arr = json_array();
    double *ts = malloc((size_t)reps * sizeof *ts);
    unsigned rng = 1234;
    int rc = 0;
    if (!json)
        printf("| %-24s | %10s | %8s | %7s | %13s | %20s |\n", "model", "size", "params", "threads",
               "test", "t/s");
    for (int test = 0; test < 2 && !rc; test++) {
        int n = test == 0 ? n_prompt : n_gen;
        if (n <= 0) continue;
        for (int r = -1; r < reps && !rc; r++) {
            double v = run_once(c, m, test == 0, n, n_depth, cp.n_batch, &rng);
            if (v < 0)
                rc = cli_fail("bench");
            else if (r >= 0)
                ts[r] = v;
        }
        if (rc) break;
        stats s = summarize(ts, reps);
        char name[32];
        if (n_depth > 0)
            snprintf(name, sizeof name, "%s%d@d%d", test == 0 ? "pp" : "tg", n, n_depth);
        else
            snprintf(name, sizeof name, "%s%d", test == 0 ? "pp" : "tg", n);
        if (json)
            json_array_append_new(
                arr,
                json_pack("{s:s, s:I, s:I, s:i, s:i, s:i, s:i, s:s, s:f, s:f, s:f}", "model_type",
                          desc, "model_size", (json_int_t)in.tensor_bytes, "model_n_params",
                          (json_int_t)in.n_params, "n_threads", threads, "n_prompt",
                          test == 0 ? n : 0, "n_gen", test == 1 ? n : 0, "n_depth", n_depth, "test",
                          name, "avg_ts", s.mean, "stddev_ts", s.sd, "median_ts", s.median));
        else
            printf("| %-24s | %6.2f MiB | %6.2f M | %7d | %13s | %9.2f ± %-8.2f |\n", desc,
                   in.tensor_bytes / 1048576.0, in.n_params / 1e6, threads, name, s.mean, s.sd);
        fflush(stdout);
    }
    if (json && !rc) {
        char *txt = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
        if (txt) puts(txt);
        free(txt);
    }
    json_decref(arr);
    free(ts);
    herd_ctx_free(c);
    herd_model_free(m);
    return rc;
}
