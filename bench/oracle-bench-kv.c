/*
 * oracle-bench-kv.c — the oracle's `bench` (../shared/oracle/oracle.c,
 * cmd_bench: llama-bench's pp and tg tests, same random tokens, same timing)
 * with llama.cpp's cache types, which the oracle CLI cannot set:
 *
 *   oracle-bench-kv MODEL [-p 512] [-n 128] [-d 0] [-t 2] [-r 5] [-c N]
 *                   [-ctk f16] [-ctv f16] [--fill-once] [--json]
 *
 * -ctk/-ctv: f32, f16, bf16, q8_0, q4_0 (llama.cpp's names), flash attention
 * on, as llama.cpp needs for a quantized V cache and uses on the CPU anyway.
 * -d D: D random tokens in the cache before each run (untimed), tests named
 * pp512@dD / tg128@dD. --fill-once: the depth is decoded once, before the
 * first test, and before each run only the cells past it are removed
 * (llama_memory_seq_rm); the timed part is unchanged. At d16384 on a 7B
 * model on 2 cores a fill takes about a quarter of an hour, which the oracle
 * pays before every run (warm-up included). -c N: a context of N cells
 * instead of depth + prompt + generation + 16 (llama.cpp clears its whole
 * KV buffer when it makes it, so its resident memory for a long context
 * shows without filling it; bench/depth-rss).
 *
 * Built against the oracle's own libllama by bench/oracle-bench-kv.sh (as
 * tests/ref/kv/make_refs.sh builds make_refs.c); ORACLE_CPU picks one CPU
 * variant as the oracle does. The output lines and JSON are the oracle's,
 * so bench/compare-llama-cpp reads either.
 */
#include "ggml-backend.h"
#include "llama.h"
#include "../tests/ref/kv/llama_cache_type.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *msg, const char *arg)
{
    fprintf(stderr, "oracle-bench-kv: %s%s\n", msg, arg ? arg : "");
    exit(1);
}

static void quiet(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static enum ggml_type cache_type(const char *s)
{
    enum ggml_type t = GGML_TYPE_F16;
    if (!llama_cache_type(s, &t)) die("unknown cache type (accepted: " LLAMA_CACHE_TYPES "): ", s);
    return t;
}

typedef struct {
    const char *model;
    int n_prompt, n_gen, n_depth, threads, reps, json, once, n_ctx;
    enum ggml_type tk, tv;
} opts;

static int count(const char *a, const char *v)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 0 || x > 1 << 20) die("invalid count for ", a);
    return (int)x;
}

static opts parse(int argc, char **argv)
{
    opts o = {.n_prompt = 512, .n_gen = 128, .threads = 2, .reps = 5};
    o.tk = o.tv = GGML_TYPE_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "--json"))
            o.json = 1;
        else if (!strcmp(a, "--fill-once"))
            o.once = 1;
        else if (!strcmp(a, "-ctk") && has)
            o.tk = cache_type(argv[++i]);
        else if (!strcmp(a, "-ctv") && has)
            o.tv = cache_type(argv[++i]);
        else if (!strcmp(a, "-p") && has)
            o.n_prompt = count(a, argv[++i]);
        else if (!strcmp(a, "-n") && has)
            o.n_gen = count(a, argv[++i]);
        else if (!strcmp(a, "-d") && has)
            o.n_depth = count(a, argv[++i]);
        else if (!strcmp(a, "-t") && has)
            o.threads = count(a, argv[++i]);
        else if (!strcmp(a, "-r") && has)
            o.reps = count(a, argv[++i]);
        else if (!strcmp(a, "-c") && has)
            o.n_ctx = count(a, argv[++i]);
        else if (a[0] != '-' && !o.model)
            o.model = a;
        else
            die("unknown or incomplete option ", a);
    }
    if (!o.model)
        die("usage: oracle-bench-kv MODEL [-p 512] [-n 128] [-d 0] [-t 2] [-r 5] [-c N] "
            "[-ctk T] [-ctv T] [--fill-once] [--json]",
            NULL);
    if (o.reps < 1 || o.threads < 1) die("-r and -t must be at least 1", NULL);
    if (o.once && o.n_depth < 1) die("--fill-once needs a depth (-d N, N > 0)", NULL);
    if (o.n_ctx && o.n_ctx < o.n_depth + o.n_prompt + o.n_gen + 1)
        die("-c is smaller than depth + prompt + generation", NULL);
    return o;
}

/* The oracle's decode_range: n tokens from position pos0 in batches of
 * n_batch, sequence 0, only the last token's logits. */
static void decode_range(struct llama_context *c, const llama_token *t, int n, int pos0,
                         int n_batch)
{
    struct llama_batch b = llama_batch_init(n_batch, 0, 1);
    for (int s = 0; s < n; s += n_batch) {
        int m = n - s < n_batch ? n - s : n_batch;
        b.n_tokens = m;
        for (int j = 0; j < m; j++) {
            b.token[j] = t[s + j];
            b.pos[j] = pos0 + s + j;
            b.n_seq_id[j] = 1;
            b.seq_id[j][0] = 0;
            b.logits[j] = s + j == n - 1;
        }
        if (llama_decode(c, b) != 0) die("llama_decode failed", NULL);
    }
    llama_batch_free(b);
}

static void fill(struct llama_context *c, llama_token *toks, int nv, const opts *o)
{
    llama_memory_clear(llama_get_memory(c), true);
    for (int j = 0; j < o->n_depth; j++) toks[j] = rand() % nv;
    decode_range(c, toks, o->n_depth, 0, o->n_prompt > 0 ? o->n_prompt : 512);
    llama_synchronize(c);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One test (pp when prompt, else tg): warm-up, then o->reps timed runs. */
static void run_test(struct llama_context *c, const struct llama_vocab *v, llama_token *toks,
                     const opts *o, int prompt, double *ts)
{
    const int nv = llama_vocab_n_tokens(v), n = prompt ? o->n_prompt : o->n_gen;
    for (int r = -1; r < o->reps; r++) { /* r = -1: warm-up */
        if (o->once)
            llama_memory_seq_rm(llama_get_memory(c), 0, o->n_depth, -1);
        else {
            llama_memory_clear(llama_get_memory(c), true);
            if (o->n_depth > 0) fill(c, toks, nv, o);
        }
        for (int j = 0; j < o->n_prompt; j++) toks[j] = rand() % nv;
        double t0 = now_s();
        if (prompt)
            decode_range(c, toks, n, o->n_depth, n);
        else {
            llama_token tk = llama_vocab_bos(v) >= 0 ? llama_vocab_bos(v) : 0;
            for (int j = 0; j < n; j++) {
                decode_range(c, &tk, 1, o->n_depth + j, 1);
                tk = rand() % nv;
            }
        }
        llama_synchronize(c);
        double dt = now_s() - t0;
        if (r >= 0) ts[r] = n / dt;
    }
}

static void report(const opts *o, const char *desc, double size, double params, int prompt,
                   double *ts)
{
    const int n = prompt ? o->n_prompt : o->n_gen;
    double mean = 0, sd = 0;
    for (int r = 0; r < o->reps; r++) mean += ts[r];
    mean /= o->reps;
    for (int r = 0; r < o->reps; r++) sd += (ts[r] - mean) * (ts[r] - mean);
    sd = o->reps > 1 ? sqrt(sd / (o->reps - 1)) : 0;
    qsort(ts, (size_t)o->reps, sizeof *ts, cmp_double);
    double med = ts[o->reps / 2];
    char name[32];
    if (o->n_depth > 0)
        snprintf(name, sizeof name, "%s%d@d%d", prompt ? "pp" : "tg", n, o->n_depth);
    else
        snprintf(name, sizeof name, "%s%d", prompt ? "pp" : "tg", n);
    if (o->json)
        printf("%s{\"model_type\":\"%s\",\"model_size\":%.0f,\"model_n_params\":%.0f,"
               "\"n_threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"n_depth\":%d,\"type_k\":\"%s\","
               "\"type_v\":\"%s\",\"test\":\"%s\",\"avg_ts\":%.3f,\"stddev_ts\":%.3f,"
               "\"median_ts\":%.3f}",
               !prompt && o->n_prompt > 0 ? "," : "", desc, size, params, o->threads,
               prompt ? n : 0, prompt ? 0 : n, o->n_depth, ggml_type_name(o->tk),
               ggml_type_name(o->tv), name, mean, sd, med);
    else
        printf("| %-28s | %8.2f MiB | %8.2f M | %2d | %s/%s | %6s | %9.2f ± %.2f | median %.2f\n",
               desc, size / 1048576.0, params / 1e6, o->threads, ggml_type_name(o->tk),
               ggml_type_name(o->tv), name, mean, sd, med);
    fflush(stdout);
}

static void load_backends(void)
{
    const char *libdir = getenv("ORACLE_LIBDIR"), *cpu = getenv("ORACLE_CPU");
    if (libdir && cpu && *cpu) { /* one CPU variant only, as the oracle */
        char path[4096];
        snprintf(path, sizeof path, "%s/libggml-cpu-%s.so", libdir, cpu);
        if (!ggml_backend_load(path)) die("cannot load the CPU variant ", path);
    } else if (libdir)
        ggml_backend_load_all_from_path(libdir);
    else
        ggml_backend_load_all();
    llama_backend_init();
}

int main(int argc, char **argv)
{
    const opts o = parse(argc, argv);
    llama_log_set(quiet, NULL);
    load_backends();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *m = llama_model_load_from_file(o.model, mp);
    if (!m) die("cannot load model ", o.model);
    const struct llama_vocab *v = llama_model_get_vocab(m);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(o.n_ctx ? o.n_ctx : o.n_depth + o.n_prompt + o.n_gen + 16);
    cp.n_batch = cp.n_ubatch = (uint32_t)(o.n_prompt > 0 ? o.n_prompt : 512);
    cp.n_threads = cp.n_threads_batch = o.threads;
    cp.no_perf = true;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    cp.type_k = o.tk;
    cp.type_v = o.tv;
    struct llama_context *c = llama_init_from_model(m, cp);
    if (!c) die("cannot create a context with these cache types", NULL);
    const int n_tok = o.n_prompt > o.n_depth ? o.n_prompt : o.n_depth;
    llama_token *toks = malloc((size_t)(n_tok + 1) * sizeof *toks);
    double *ts = malloc((size_t)o.reps * sizeof *ts);
    if (!toks || !ts) die("out of memory", NULL);
    srand(1234);
    char desc[128];
    llama_model_desc(m, desc, sizeof desc);
    const double size = (double)llama_model_size(m), params = (double)llama_model_n_params(m);
    if (o.once) fill(c, toks, llama_vocab_n_tokens(v), &o);
    if (o.json) printf("[");
    for (int test = 0; test < 2; test++) {
        if ((test == 0 ? o.n_prompt : o.n_gen) <= 0) continue;
        run_test(c, v, toks, &o, test == 0, ts);
        report(&o, desc, size, params, test == 0, ts);
    }
    if (o.json) printf("]\n");
    free(ts);
    free(toks);
    llama_free(c);
    llama_model_free(m);
    return 0;
}
