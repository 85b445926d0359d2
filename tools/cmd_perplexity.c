/*
 * cmd_perplexity.c — `herd perplexity -m M -f TEXT [-c 512] [-b N]`, printed
 * as llama-perplexity prints it: a running estimate per chunk, then
 * "Final estimate: PPL = X +/- Y".
 *
 * With --kl-divergence-base FILE the run also saves every scored position's
 * full distribution to FILE; `herd perplexity -m OTHER --kl-divergence-base
 * FILE --kl-divergence` then runs OTHER over the same tokens (no -f: they are
 * in FILE) and prints llama-perplexity --kl-divergence's table and statistics.
 */
#include "cli.h"
#include "eval/eval.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static void progress(int chunk, double ppl, void *user)
{
    (void)user;
    printf("[%d]%.4f,", chunk, ppl);
    fflush(stdout);
}

static herd_ctx *make_ctx(herd_model *m, const cli_opts *o, int n_chunk)
{
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = n_chunk;
    cp.n_batch = o->n_batch < n_chunk ? o->n_batch : n_chunk;
    cp.n_threads = o->n_threads;
    cp.type_k = o->cache_type_k, cp.type_v = o->cache_type_v;
    herd_ctx *c = NULL;
    if (herd_ctx_new(m, &cp, &c)) cli_fail("context");
    return c;
}

/* The tokens of the text file, with BOS if the vocabulary adds one. */
static int32_t *tokenize_file(herd_model *m, const char *path, int *n)
{
    size_t len = 0;
    char *text = cli_read_file(path, &len);
    if (!text) return NULL;
    int32_t *ids = NULL;
    herd_status st = herd_tokenize(m, text, len, herd_add_bos(m), false, NULL, 0, n);
    if (!st && (ids = malloc(((size_t)*n + 1) * sizeof *ids)))
        st = herd_tokenize(m, text, len, herd_add_bos(m), false, ids, *n + 1, n);
    free(text);
    if (st || !ids) {
        cli_fail("tokenize");
        free(ids);
        return NULL;
    }
    return ids;
}

/* The plain run; with o->kl_base, the base run that saves distributions. */
static int perplexity(herd_model *m, const cli_opts *o)
{
    int n_chunk = herd_ppl_default_chunk(m, o->n_ctx), n = 0, rc = 0;
    int32_t *ids = tokenize_file(m, o->file, &n);
    herd_ctx *c = ids ? make_ctx(m, o, n_chunk) : NULL;
    herd_kld_writer *w = NULL;
    if (!c)
        rc = 1;
    else if (o->kl_base &&
             herd_kld_writer_open(o->kl_base, herd_n_vocab(m), ids, n, n_chunk, o->n_chunks, &w))
        rc = cli_fail("kl-divergence-base");
    else {
        fprintf(stderr, "perplexity: %d tokens, %d chunks of %d\n", n, n / n_chunk, n_chunk);
        herd_ppl_result r;
        double t0 = herd_time();
        herd_status st = herd_perplexity_each(c, ids, n, n_chunk, o->n_chunks, progress,
                                              w ? herd_kld_writer_add : NULL, w, &r);
        herd_status wst = herd_kld_writer_close(w);
        if (st || wst) {
            printf("\n");
            rc = cli_fail("perplexity");
        } else {
            printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.err);
            /* A figure means nothing without the chunk length it was made with. */
            printf("%d chunks of %d tokens (-c %d%s)\n", herd_ppl_chunks(n, n_chunk, o->n_chunks),
                   n_chunk, n_chunk,
                   o->n_ctx > 0 ? "" : ", the default: min(training context, 512)");
            fprintf(stderr, "perplexity: %ld tokens scored in %.2f s\n", r.count, herd_time() - t0);
            if (o->kl_base)
                fprintf(stderr, "perplexity: saved %ld distributions to %s\n", r.count, o->kl_base);
        }
    }
    herd_ctx_free(c);
    free(ids);
    return rc;
}

/* One row of llama-perplexity's --kl-divergence table, after each chunk. */
static void kl_row(int chunk, double ppl, void *user)
{
    (void)ppl;
    herd_kld_summary s;
    if (herd_kld_summarize(herd_kld_base_stats(user), &s)) return;
    printf("%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    "
           "%6.3f ± %6.3f %%\n",
           chunk, s.ppl.val, s.ppl.unc, s.log_ppl_ratio.val, s.log_ppl_ratio.unc, s.kld.val,
           s.kld.unc, 100 * s.p_diff_rms.val, 100 * s.p_diff_rms.unc, 100 * s.same_top.val,
           100 * s.same_top.unc);
    fflush(stdout);
}

/* "Maximum", "99.9%  ", "Median ", …: llama.cpp's labels, 7 wide. */
static const char *quantile_label(float f)
{
    static char buf[16];
    if (f >= 1) return "Maximum";
    if (f <= 0) return "Minimum";
    if (f == .5f) return "Median ";
    snprintf(buf, sizeof buf, "%4.1f%%  ", f * 100);
    return buf;
}

static void kl_report(const herd_kld_summary *s)
{
    printf("\n====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", s->ppl.val, s->ppl.unc);
    printf("Mean PPL(base)                : %10.6f ± %10.6f\n", s->ppl_base.val, s->ppl_base.unc);
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * s->log_ppl_cor);
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", s->log_ppl_ratio.val,
           s->log_ppl_ratio.unc);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", s->ppl_ratio.val, s->ppl_ratio.unc);
    printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", s->ppl_diff.val, s->ppl_diff.unc);
    printf("\n====== KL divergence statistics ======\n");
    printf("Mean    KLD: %10.6f ± %10.6f\n", s->kld.val, s->kld.unc);
    for (int i = 0; i < HERD_KLD_NQ; i++)
        printf("%s KLD: %10.6f\n", quantile_label(herd_kld_fractions[i]), s->kld_q[i]);
    printf("\n====== Token probability statistics ======\n");
    printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * s->p_diff.val, 100 * s->p_diff.unc);
    for (int i = 0; i < HERD_PDIFF_NQ; i++)
        printf("%s Δp: %6.3f%%\n", quantile_label(herd_pdiff_fractions[i]), 100 * s->p_diff_q[i]);
    printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * s->p_diff_rms.val, 100 * s->p_diff_rms.unc);
    printf("Same top p: %6.3f ± %5.3f %%\n", 100 * s->same_top.val, 100 * s->same_top.unc);
}

/* --kl-divergence: the second run, over the base file's tokens. */
static int kl_divergence(herd_model *m, const cli_opts *o)
{
    herd_kld_base *b;
    if (herd_kld_base_open(o->kl_base, &b)) return cli_fail("kl-divergence");
    int rc = 0, n = 0;
    const int n_chunk = herd_kld_base_n_chunk(b);
    const int32_t *ids = herd_kld_base_tokens(b, &n);
    if (herd_kld_base_n_vocab(b) != herd_n_vocab(m)) {
        rc = cli_error(1, "kl-divergence: %s has a vocabulary of %d, the model %d", o->kl_base,
                       herd_kld_base_n_vocab(b), herd_n_vocab(m));
        herd_kld_base_close(b);
        return rc;
    }
    if (o->n_ctx > 0 && o->n_ctx != n_chunk)
        fprintf(stderr, "perplexity: using the base file's context of %d (not -c %d)\n", n_chunk,
                o->n_ctx);
    herd_ctx *c = make_ctx(m, o, n_chunk);
    if (!c)
        rc = 1;
    else {
        fprintf(stderr, "kl_divergence: %d chunks of %d from %s\n", n / n_chunk, n_chunk,
                o->kl_base);
        printf("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence    "
               "          Δp RMS            Same top p\n");
        herd_ppl_result r;
        herd_kld_summary s;
        if (herd_perplexity_each(c, ids, n, n_chunk, -1, kl_row, herd_kld_compare, b, &r))
            rc = cli_fail("kl-divergence");
        else if (herd_kld_summarize(herd_kld_base_stats(b), &s))
            rc = cli_fail("kl-divergence");
        else
            kl_report(&s);
    }
    herd_ctx_free(c);
    herd_kld_base_close(b);
    return rc;
}

int cmd_perplexity(int argc, char **argv)
{
    cli_opts o;
    if (!cli_parse(argc, argv, CLI_MODEL | CLI_FILE | CLI_CTX | CLI_PPL, &o)) return 2;
    if (o.kl_divergence && !o.kl_base)
        return cli_error(2, "perplexity: --kl-divergence needs --kl-divergence-base FILE");
    if (!o.kl_divergence && !o.file) return cli_error(2, "perplexity: -f TEXTFILE is required");
    if (o.kl_divergence && o.file)
        return cli_error(2,
                         "perplexity: --kl-divergence reads its tokens from the base file; "
                         "drop -f %s",
                         o.file);
    /* The base file is written while the model and the text are read. */
    if (o.kl_base && !o.kl_divergence &&
        (herd_same_file(o.kl_base, o.file) || (o.model && herd_same_file(o.kl_base, o.model))))
        return cli_error(
            2, "perplexity: --kl-divergence-base %s is an input file; choose another name",
            o.kl_base);
    herd_model *m = cli_load_model(&o);
    if (!m) return 1;
    int rc = o.kl_divergence ? kl_divergence(m, &o) : perplexity(m, &o);
    herd_model_free(m);
    return rc;
}
