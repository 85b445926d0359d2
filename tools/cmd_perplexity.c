/*
 * cmd_perplexity.c — `herd perplexity -m M -f TEXT [-c 512] [-b N]`, printed
 * as llama-perplexity prints it: a running estimate per chunk, then
 * "Final estimate: PPL = X +/- Y".
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void progress(int chunk, double ppl, void *user)
{
    (void)user;
    printf("[%d]%.4f,", chunk, ppl);
    fflush(stdout);
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (buf) *len = n;
    return buf;
}

int cmd_perplexity(int argc, char **argv)
{
    cli_opts o;
    if (!cli_parse(argc, argv, &o)) return 2;
    if (!o.file) return cli_error(2, "perplexity: -f TEXTFILE is required");
    size_t len = 0;
    char *text = read_text(o.file, &len);
    if (!text) return cli_error(1, "perplexity: cannot read %s", o.file);
    herd_model *m = cli_load_model(&o);
    if (!m) {
        free(text);
        return 1;
    }
    int n_chunk = o.n_ctx > 0 ? o.n_ctx : 512, rc = 0, n = 0;
    int32_t *ids = NULL;
    herd_status st = herd_tokenize(m, text, len, herd_add_bos(m), false, NULL, 0, &n);
    if (!st && (ids = malloc(((size_t)n + 1) * sizeof *ids)))
        st = herd_tokenize(m, text, len, herd_add_bos(m), false, ids, n + 1, &n);
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = n_chunk;
    cp.n_batch = o.n_batch < n_chunk ? o.n_batch : n_chunk;
    cp.n_threads = o.n_threads;
    cp.type_k = cp.type_v = o.cache_type;
    herd_ctx *c = NULL;
    if (st || !ids) rc = cli_fail("tokenize");
    else if (herd_ctx_new(m, &cp, &c)) rc = cli_fail("context");
    else {
        fprintf(stderr, "perplexity: %d tokens, %d chunks of %d\n", n, n / n_chunk, n_chunk);
        herd_ppl_result r;
        double t0 = herd_time();
        if (herd_perplexity(c, ids, n, n_chunk, o.n_chunks, progress, NULL, &r)) {
            printf("\n");
            rc = cli_fail("perplexity");
        } else {
            printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.err);
            fprintf(stderr, "perplexity: %ld tokens scored in %.2f s\n", r.count, herd_time() - t0);
        }
    }
    herd_ctx_free(c);
    free(ids);
    free(text);
    herd_model_free(m);
    return rc;
}
