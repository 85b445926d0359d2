/*
 * cmd_compare.c — `herd compare M1 M2 … [--text F] [--task F] [--html OUT]
 * [-c CTX] [--chunks K] [--limit N] [-p PP] [-n TG] [-r N] [-t N]`: every
 * model measured the same way (src/eval/compare.c; speed with herd bench's
 * code), one table, and optionally a standalone HTML report with charts
 * (src/eval/report.c). stderr shows each model's phases as they start.
 *
 * Each model is measured in a child process of its own (fork), so that the
 * child's peak resident set (wait4's ru_maxrss) is that model's peak memory,
 * not the largest so far; the child sends its row back through a pipe. The
 * parent loads nothing, so the children start alike.
 */
#include "cli.h"
#include "eval/eval.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MODELS 32

typedef struct {
    const char *models[MAX_MODELS];
    int n_models;
    const char *html, *task_path;
    herd_compare_opts o;
} compare_args;

static bool int_arg(const char *flag, const char *v, int lo, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > (1 << 24)) {
        cli_error(2, "compare: %s: '%s' is not a count", flag, v);
        return false;
    }
    *out = (int)x;
    return true;
}

static int parse_args(int argc, char **argv, compare_args *a)
{
    memset(a, 0, sizeof *a);
    a->o.max_chunks = -1;
    int limit = -1;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (f[0] != '-') {
            if (a->n_models == MAX_MODELS)
                return cli_error(2, "compare: at most %d models", MAX_MODELS);
            a->models[a->n_models++] = f;
            continue;
        }
        if (!v) return cli_error(2, "compare: %s needs a value", f);
        if (!strcmp(f, "--text") || !strcmp(f, "-f"))
            a->o.text_path = v;
        else if (!strcmp(f, "--task"))
            a->task_path = v;
        else if (!strcmp(f, "--html"))
            a->html = v;
        else if (!strcmp(f, "-c") || !strcmp(f, "--ctx-size"))
            ok = int_arg(f, v, 4, &a->o.n_ctx);
        else if (!strcmp(f, "--chunks"))
            ok = int_arg(f, v, 1, &a->o.max_chunks);
        else if (!strcmp(f, "--limit"))
            ok = int_arg(f, v, 1, &limit);
        else if (!strcmp(f, "-p"))
            ok = int_arg(f, v, 1, &a->o.pp_n);
        else if (!strcmp(f, "-n"))
            ok = int_arg(f, v, 1, &a->o.tg_n);
        else if (!strcmp(f, "-r"))
            ok = int_arg(f, v, 3, &a->o.reps);
        else if (!strcmp(f, "-t") || !strcmp(f, "--threads"))
            ok = cli_threads(f, v, &a->o.n_threads);
        else
            return cli_error(2, "compare: unknown option %s", f);
        if (!ok) return 2;
        i++;
    }
    if (a->n_models == 0)
        return cli_error(2, "compare: usage: herd compare M1 M2 ... [--text F] [--task F] "
                            "[--html OUT] [-c CTX] [--chunks K] [--limit N] [-p PP] [-n TG] "
                            "[-r N] (herd compare --help)");
    for (int i = 0; a->html && i < a->n_models; i++)
        if (herd_same_file(a->html, a->models[i]))
            return cli_error(2, "compare: --html %s is one of the models; choose another name",
                             a->html);
    if (a->html &&
        (herd_same_file(a->html, a->o.text_path) || herd_same_file(a->html, a->task_path)))
        return cli_error(2, "compare: --html %s is an input file; choose another name", a->html);
    if (a->task_path) {
        herd_mc_task *t;
        if (herd_mc_load(a->task_path, limit, &t)) return cli_fail("compare");
        a->o.task = t;
        a->o.task_path = a->task_path;
    }
    return 0;
}

static bool read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k, n -= (size_t)k;
    }
    return true;
}

static bool write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k, n -= (size_t)k;
    }
    return true;
}

/* Each phase of a model's measurement, on the line the parent started. */
static void phase(const char *what, void *user)
{
    (void)user;
    fprintf(stderr, " %s …", what);
    fflush(stderr);
}

/* Measure one model in a child; its row, with the child's peak RSS. */
static void measure(const char *path, const herd_compare_opts *o, herd_compare_row *row)
{
    int fd[2];
    fflush(NULL);
    if (pipe(fd) != 0) {
        snprintf(row->error, sizeof row->error, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        herd_compare_row r;
        herd_compare_opts co = *o;
        co.phase = phase;
        herd_compare_measure(path, &co, &r);
        _exit(write_full(fd[1], &r, sizeof r) ? 0 : 1);
    }
    close(fd[1]);
    memset(row, 0, sizeof *row);
    bool got = pid > 0 && read_full(fd[0], row, sizeof *row);
    close(fd[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (pid > 0)
        while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
        }
    if (!got) {
        snprintf(row->path, sizeof row->path, "%s", path);
        snprintf(row->label, sizeof row->label, "%s", path);
        snprintf(row->error, sizeof row->error, "the measuring process failed (status %d)", status);
        return;
    }
    row->peak_rss_bytes = (double)ru.ru_maxrss * 1024.0; /* Linux: KiB */
}

static void print_num(double v, int width, const char *fmt)
{
    char b[32];
    if (v >= 0)
        snprintf(b, sizeof b, fmt, v);
    else
        snprintf(b, sizeof b, "-");
    printf(" %*s |", width, b);
}

/* "123.4 ± 5.6": a speed with its spread. */
static void print_speed(double v, double sd)
{
    char b[40] = "-";
    if (v >= 0) snprintf(b, sizeof b, "%.1f ± %.1f", v, sd);
    printf(" %17s |", b);
}

/* Rows whose perplexities are over different tokens (vocabularies). */
static bool mixed_vocabularies(const herd_compare_row *r, int n)
{
    for (int i = 1; i < n; i++)
        if (r[i].ppl >= 0 && r[0].ppl >= 0 && r[i].vocab_hash != r[0].vocab_hash) return true;
    return false;
}

static void print_table(const compare_args *a, const herd_compare_row *r, int n)
{
    int w = 5; /* the model column fits the longest file name (up to 48) */
    for (int i = 0; i < n; i++) w = (int)strlen(r[i].label) > w ? (int)strlen(r[i].label) : w;
    w = w < 48 ? w : 48;
    printf("| %-*s | %-8s | %8s | %-6s | %9s | %9s | %7s | %17s | %17s |", w, "model", "arch",
           "params", "type", "file MiB", "peak MiB", "load ms", "pp t/s", "tg t/s");
    if (a->o.text_path) printf(" %18s | %6s |", "perplexity", "bpb");
    if (a->o.task) printf(" %8s | %8s |", "acc", "acc_norm");
    printf(" %-16s | %-34s | %7s |\n", "licence (file)", "licence (catalog)", "context");
    for (int i = 0; i < n; i++) {
        printf("| %-*.*s | %-8.8s |", w, w, r[i].label, r[i].arch[0] ? r[i].arch : "-");
        print_num(r[i].params >= 0 ? r[i].params / 1e6 : -1, 7, "%.2fM");
        printf(" %-6.6s |", r[i].file_type[0] ? r[i].file_type : "-");
        print_num(r[i].file_bytes >= 0 ? r[i].file_bytes / 1048576.0 : -1, 9, "%.2f");
        print_num(r[i].peak_rss_bytes >= 0 ? r[i].peak_rss_bytes / 1048576.0 : -1, 9, "%.1f");
        print_num(r[i].load_s >= 0 ? r[i].load_s * 1e3 : -1, 7, "%.1f");
        print_speed(r[i].pp_ts, r[i].pp_sd);
        print_speed(r[i].tg_ts, r[i].tg_sd);
        if (a->o.text_path) {
            char b[40] = "-";
            if (r[i].ppl >= 0) snprintf(b, sizeof b, "%.4f ± %.4f", r[i].ppl, r[i].ppl_err);
            printf(" %18s |", b);
            print_num(r[i].bpb, 6, "%.4f");
        }
        if (a->o.task) {
            print_num(r[i].acc, 8, "%.4f");
            print_num(r[i].acc_norm, 8, "%.4f");
        }
        char cat[192] = "-";
        if (r[i].catalog_id[0])
            snprintf(cat, sizeof cat, "%s (%s)", r[i].catalog_licence, r[i].catalog_id);
        printf(" %-16.16s | %-34.34s |", r[i].licence[0] ? r[i].licence : "-", cat);
        print_num(r[i].ctx_train > 0 ? r[i].ctx_train : -1, 7, "%.0f");
        printf("\n");
    }
    for (int i = 0; i < n; i++)
        if (r[i].error[0]) printf("%s: %s\n", r[i].label, r[i].error);
    for (int i = 0; i < n; i++)
        if (r[i].reps > 0) {
            printf("speed: herd bench's measurement: pp%d and tg%d, a warm-up then %d runs each; "
                   "median ± standard deviation\n",
                   r[i].pp_n, r[i].tg_n, r[i].reps);
            break;
        }
    if (a->o.text_path) {
        printf("perplexity: %s in chunks of -c tokens (", a->o.text_path);
        for (int i = 0, k = 0; i < n; i++)
            if (r[i].ppl >= 0) printf("%s%s %d", k++ ? ", " : "", r[i].label, r[i].ppl_ctx);
        printf(")%s; bpb: bits per byte of the scored text\n",
               a->o.n_ctx > 0 ? "" : ", by default min(training context, 512)");
        if (mixed_vocabularies(r, n))
            printf("note: these models have different vocabularies, so their perplexities are over "
                   "different tokens and not comparable; bits per byte is\n");
    }
    if (a->o.task)
        printf("task: %s, %d questions from %s (lm-evaluation-harness's acc and acc_norm)\n",
               herd_mc_kind_name(a->o.task->kind), a->o.task->n, a->task_path);
}

static int write_html(const compare_args *a, const herd_compare_row *rows, int n)
{
    herd_out out;
    if (herd_out_open(&out, a->html, NULL)) return cli_fail("compare");
    if (herd_compare_html(out.fp, &a->o, rows, n)) {
        herd_out_abort(&out);
        return cli_fail("compare");
    }
    if (herd_out_commit(&out)) return cli_fail("compare");
    fprintf(stderr, "compare: wrote %s\n", a->html);
    return 0;
}

int cmd_compare(int argc, char **argv)
{
    compare_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    herd_compare_row *rows = calloc((size_t)a.n_models, sizeof *rows);
    if (!rows) rc = cli_error(1, "compare: out of memory");
    for (int i = 0; rows && i < a.n_models; i++) {
        fprintf(stderr, "compare: [%d/%d] %s:", i + 1, a.n_models, a.models[i]);
        const double t0 = herd_time();
        measure(a.models[i], &a.o, &rows[i]);
        fprintf(stderr, " %.1f s%s%s\n", herd_time() - t0, rows[i].error[0] ? ": " : "",
                rows[i].error);
        if (rows[i].error[0]) rc = 1;
        if (a.o.n_ctx > 0 && a.o.text_path && rows[i].ctx_train > 0 &&
            a.o.n_ctx > rows[i].ctx_train)
            fprintf(stderr, "herd: warning: -c %d is more than the %d tokens %s was trained on\n",
                    a.o.n_ctx, rows[i].ctx_train, rows[i].label);
    }
    if (rows) {
        print_table(&a, rows, a.n_models);
        if (a.html && write_html(&a, rows, a.n_models)) rc = 1;
    }
    free(rows);
    herd_mc_free((herd_mc_task *)a.o.task);
    return rc;
}
