/*
 * cmd_bench.c — `herd bench`: llama-bench's two tests on one model.
 *
 *   pp<N>: one batch of N random tokens decoded from an empty cache;
 *   tg<N>: N single-token decodes from an empty cache.
 *   -d D:  llama-bench's depth: before each run (untimed) D random tokens
 *          are put in the cache, and the test continues after them; the
 *          tests are then named pp<N>@d<D>, tg<N>@d<D>.
 *   --fill-once: the depth is filled once, and before each run only the
 *          cells past it are forgotten (the timed part is unchanged): at
 *          d16384 on a 7B model a fill takes a quarter of an hour.
 *
 * One warm-up run, then -r repetitions (src/eval/bench.c, which `herd
 * compare` measures with too); tokens/s as mean ± sample standard deviation,
 * and the median. The table and the JSON fields are llama-bench's (plus
 * "test", as the llama.cpp oracle prints it), so results line up. On a terminal,
 * stderr shows which run is going.
 */
#include "cli.h"
#include "eval/eval.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* On a terminal, which run is going: "pp512 run 3/5" (rep -1: warm-up). */
static void progress(bool prompt, int n, int rep, int n_reps, void *user)
{
    (void)user;
    if (rep < 0)
        fprintf(stderr, "\r\033[K%s%d warm-up", prompt ? "pp" : "tg", n);
    else
        fprintf(stderr, "\r\033[K%s%d run %d/%d", prompt ? "pp" : "tg", n, rep + 1, n_reps);
    fflush(stderr);
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
    int n_prompt = 512, n_gen = 128, n_depth = 0, reps = 5, json = 0, once = 0;
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
        else if (!strcmp(a, "--fill-once"))
            once = 1;
        else
            rest[nr++] = argv[i];
    }
    cli_opts o;
    bool ok = cli_parse(nr, rest, CLI_MODEL | CLI_CTX, &o);
    free(rest);
    if (!ok) return 2;
    if (once && n_depth < 1) return cli_error(2, "bench: --fill-once needs a depth (-d N, N > 0)");
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
    cp.n_ctx = n_depth + n_prompt + n_gen + 16;
    cp.n_batch = n_prompt > 0 ? n_prompt : 512;
    const herd_bench_depth depth = {.depth = n_depth, .n_batch = cp.n_batch, .filled = once};
    cp.n_threads = o.n_threads;
    cp.type_k = o.cache_type_k, cp.type_v = o.cache_type_v;
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
    const bool tty = isatty(STDERR_FILENO);
    unsigned rng = 1234;
    int rc = 0;
    if (once && herd_bench_fill(c, m, &depth, &rng)) rc = cli_fail("bench");
    if (!json && !rc)
        printf("| %-24s | %10s | %8s | %7s | %13s | %20s |\n", "model", "size", "params", "threads",
               "test", "t/s");
    for (int test = 0; test < 2 && !rc; test++) {
        int n = test == 0 ? n_prompt : n_gen;
        if (n <= 0) continue;
        herd_bench_result s;
        herd_status st = herd_bench_test(c, m, test == 0, n, reps, &depth, &rng,
                                         tty ? progress : NULL, NULL, &s);
        if (tty) fprintf(stderr, "\r\033[K");
        if (st) {
            rc = cli_fail("bench");
            break;
        }
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
    herd_ctx_free(c);
    herd_model_free(m);
    return rc;
}
