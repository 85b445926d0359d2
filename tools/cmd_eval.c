/*
 * cmd_eval.c — `herd eval -m M --task FILE [--limit N] [-c CTX] [--scores]`:
 * multiple-choice accuracy on a HellaSwag, ARC, MMLU or Winogrande JSONL
 * file, scored as lm-evaluation-harness scores it (src/eval/mc.c), printed
 * as the harness prints its table. A progress bar goes to stderr; --scores
 * also prints every choice's log-likelihood, one line each.
 */
#include "cli.h"
#include "eval/eval.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int last; /* last percentage drawn */
    double t0;
    bool tty;
} progress_bar;

static void draw(int done, int total, const herd_mc_result *r, void *user)
{
    progress_bar *pb = user;
    const int pct = (int)(100L * done / total), width = 30, fill = width * done / total;
    /* On a terminal every percent; into a file every tenth, so logs stay short. */
    if (done != total && (pct == pb->last || (!pb->tty && pct / 10 == pb->last / 10))) return;
    pb->last = pct;
    char bar[64];
    memset(bar, '=', (size_t)fill);
    memset(bar + fill, ' ', (size_t)(width - fill));
    bar[width] = 0;
    const double dt = herd_time() - pb->t0;
    fprintf(stderr, "%s[%s] %3d%% %d/%d  acc_norm %.4f  %.1f questions/s%s", pb->tty ? "\r" : "",
            bar, pct, done, total, r->value[HERD_MC_ACC_NORM], dt > 0 ? done / dt : 0.0,
            pb->tty && done != total ? "" : "\n");
    fflush(stderr);
}

static void print_scores(const herd_mc_task *t, const herd_mc_scores *sc)
{
    printf("# line\tchoice\tgold\tloglik\ttokens\tchars\n");
    for (int k = 0; k < t->n; k++)
        for (int i = 0; i < t->q[k].n_choices; i++)
            printf("%d\t%d\t%d\t%.9g\t%d\t%d\n", t->q[k].line, i, i == t->q[k].gold, sc[k].ll[i],
                   sc[k].n_tokens[i], t->q[k].norm_len[i]);
}

static void print_table(const char *task, const herd_mc_result *r)
{
    int w = (int)strlen(task) > 4 ? (int)strlen(task) : 4;
    printf("|%-*s|%-13s|%6s|   |%6s|\n", w, "Task", "Metric", "Value", "Stderr");
    printf("|%.*s|-------------|-----:|---|-----:|\n", w, "--------------------------------");
    for (int m = 0; m < HERD_MC_N_METRICS; m++)
        printf("|%-*s|%-13s|%6.4f|±  |%6.4f|\n", w, m ? "" : task, herd_mc_metric_name(m),
               r->value[m], r->stderr_[m]);
    printf("\n");
    for (int m = 0; m < HERD_MC_N_METRICS; m++)
        printf("%-14s %s\n", herd_mc_metric_name(m), herd_mc_metric_about(m));
}

static int evaluate(herd_model *m, const cli_opts *o, const herd_mc_task *t)
{
    int need = 0;
    if (herd_mc_max_tokens(m, t, &need)) return cli_fail("eval");
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = o->n_ctx > 0 ? o->n_ctx : need;
    if (cp.n_ctx < need)
        return cli_error(1, "eval: a question needs %d tokens, more than -c %d", need, cp.n_ctx);
    cp.n_batch = o->n_batch < cp.n_ctx ? o->n_batch : cp.n_ctx;
    cp.n_threads = o->n_threads;
    cp.type_k = o->cache_type_k, cp.type_v = o->cache_type_v;
    herd_ctx *c;
    if (herd_ctx_new(m, &cp, &c)) return cli_fail("context");
    herd_mc_scores *sc = calloc((size_t)t->n, sizeof *sc);
    progress_bar pb = {.last = -100, .t0 = herd_time(), .tty = isatty(2)};
    herd_mc_result r;
    int rc = 0;
    if (!sc)
        rc = cli_error(1, "eval: out of memory");
    else if (herd_mc_evaluate(c, t, draw, &pb, sc, &r))
        rc = cli_fail("eval");
    else {
        fprintf(stderr, "eval: %d questions, %ld tokens decoded in %.2f s\n", r.n, r.tokens_decoded,
                herd_time() - pb.t0);
        if (o->scores) print_scores(t, sc);
        print_table(herd_mc_kind_name(t->kind), &r);
    }
    free(sc);
    herd_ctx_free(c);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    cli_opts o;
    if (!cli_parse(argc, argv, CLI_MODEL | CLI_CTX | CLI_EVAL, &o)) return 2;
    if (!o.task) return cli_error(2, "eval: --task FILE is required");
    herd_mc_task *t;
    if (herd_mc_load(o.task, o.limit, &t)) return cli_fail("eval");
    herd_model *m = cli_load_model(&o);
    if (!m) {
        herd_mc_free(t);
        return 1;
    }
    int n_choices = 0;
    for (int k = 0; k < t->n; k++) n_choices += t->q[k].n_choices;
    printf("herd eval: %s, %d questions (%d choices) from %s\n\n", herd_mc_kind_name(t->kind), t->n,
           n_choices, o.task);
    int rc = evaluate(m, &o, t);
    herd_model_free(m);
    herd_mc_free(t);
    return rc;
}
