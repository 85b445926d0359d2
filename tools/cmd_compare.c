/*
 * cmd_compare.c — `herd compare M1 M2 … [--text F] [--task F] [--html OUT]
 * [--json] [-c CTX] [--chunks K] [--limit N] [-p PP] [-n TG] [-r N] [-t N]`:
 * every model measured the same way (src/eval/compare.c; speed with herd
 * bench's runs, interleaved across the models: tools/compare_proc.h), beside
 * what the performance model predicts for it on this machine (herd probe);
 * one table or JSON, and optionally a standalone HTML report with charts
 * (src/eval/report.c). stderr shows each model's phases as they start.
 */
#include "cli.h"
#include "cmd_probe.h"
#include "compare_proc.h"
#include "eval/eval.h"
#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS 32

typedef struct {
    const char *models[MAX_MODELS];
    int n_models;
    const char *html, *task_path;
    bool json;
    int n_groups; /* > 1: the models did not fit in memory together */
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
        if (!strcmp(f, "--json")) {
            a->json = true;
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
                            "[--html OUT] [--json] [-c CTX] [--chunks K] [--limit N] [-p PP] "
                            "[-n TG] [-r N] (herd compare --help)");
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

/* How speed was measured and what the predictions are, under the table. */
static void speed_note(const compare_args *a, const herd_compare_row *r, int n)
{
    int i = 0;
    while (i < n && r[i].reps <= 0) i++;
    if (i == n) return;
    printf("speed: herd bench's pp%d and tg%d, each model loaded and resident, a warm-up then "
           "%d runs each; median ± standard deviation; ",
           r[i].pp_n, r[i].tg_n, r[i].reps);
    if (a->n_groups > 1)
        printf("the models do not fit in memory together: runs interleaved within %d groups\n",
               a->n_groups);
    else
        printf("runs interleaved across the models (A B … B A …)\n");
    for (i = 0; i < n && r[i].pred_threads <= 0; i++) {
    }
    if (i < n)
        printf("pred: herd's performance model from this machine's probe (herd probe), %d "
               "thread%s; pred MiB: herd's memory estimate (herd info)\n",
               r[i].pred_threads, r[i].pred_threads > 1 ? "s" : "");
    else
        printf("pred MiB: herd's memory estimate (herd info); no speed prediction (no probe)\n");
}

static void print_table(const compare_args *a, const herd_compare_row *r, int n)
{
    int w = 5; /* the model column fits the longest file name (up to 48) */
    for (int i = 0; i < n; i++) w = (int)strlen(r[i].label) > w ? (int)strlen(r[i].label) : w;
    w = w < 48 ? w : 48;
    printf("| %-*s | %-8s | %8s | %-6s | %9s | %9s | %9s | %7s | %17s | %8s | %17s | %8s |", w,
           "model", "arch", "params", "type", "file MiB", "peak MiB", "pred MiB", "load ms",
           "pp t/s", "pp pred", "tg t/s", "tg pred");
    if (a->o.text_path) printf(" %18s | %6s |", "perplexity", "bpb");
    if (a->o.task) printf(" %8s | %8s |", "acc", "acc_norm");
    printf(" %-16s | %-34s | %7s |\n", "licence (file)", "licence (catalog)", "context");
    for (int i = 0; i < n; i++) {
        printf("| %-*.*s | %-8.8s |", w, w, r[i].label, r[i].arch[0] ? r[i].arch : "-");
        print_num(r[i].params >= 0 ? r[i].params / 1e6 : -1, 7, "%.2fM");
        printf(" %-6.6s |", r[i].file_type[0] ? r[i].file_type : "-");
        print_num(r[i].file_bytes >= 0 ? r[i].file_bytes / 1048576.0 : -1, 9, "%.2f");
        print_num(r[i].peak_rss_bytes >= 0 ? r[i].peak_rss_bytes / 1048576.0 : -1, 9, "%.1f");
        print_num(r[i].mem_pred_bytes >= 0 ? r[i].mem_pred_bytes / 1048576.0 : -1, 9, "%.1f");
        print_num(r[i].load_s >= 0 ? r[i].load_s * 1e3 : -1, 7, "%.1f");
        print_speed(r[i].pp_ts, r[i].pp_sd);
        print_num(r[i].pp_pred, 8, "%.1f");
        print_speed(r[i].tg_ts, r[i].tg_sd);
        print_num(r[i].tg_pred, 8, "%.1f");
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
    speed_note(a, r, n);
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

/* A figure, or null when it was not measured (< 0). */
static json_t *num(double v)
{
    return v >= 0 ? json_real(v) : json_null();
}

/* A count (bytes, parameters), or null. */
static json_t *count(double v)
{
    return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* One test's measured and predicted tokens/s. */
static json_t *speed_json(int n, double ts, double sd, double pred)
{
    return json_pack("{s:i, s:o, s:o, s:o}", "n", n, "tokens_per_s", num(ts), "sd",
                     num(ts >= 0 ? sd : -1), "predicted", num(pred));
}

static json_t *row_json(const compare_args *a, const herd_compare_row *r)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o}, s:o, s:o, s:o, s:o}", "model",
        r->label, "path", r->path, "name", str_or_null(r->name), "architecture",
        str_or_null(r->arch), "parameters", count(r->params), "file_type",
        str_or_null(r->file_type), "file_bytes", count(r->file_bytes), "load_s", num(r->load_s),
        "context_length", r->ctx_train > 0 ? json_integer(r->ctx_train) : json_null(), "memory",
        "peak_bytes", count(r->peak_rss_bytes), "predicted_bytes", count(r->mem_pred_bytes), "pp",
        speed_json(r->pp_n, r->pp_ts, r->pp_sd, r->pp_pred), "tg",
        speed_json(r->tg_n, r->tg_ts, r->tg_sd, r->tg_pred), "licence", str_or_null(r->licence),
        "error", str_or_null(r->error));
    if (!j) return NULL;
    json_object_set_new(j, "predicted_threads",
                        r->pred_threads > 0 ? json_integer(r->pred_threads) : json_null());
    if (r->catalog_id[0])
        json_object_set_new(j, "catalog",
                            json_pack("{s:s, s:s, s:s}", "id", r->catalog_id, "licence",
                                      r->catalog_licence, "commercial", r->catalog_commercial));
    if (a->o.text_path)
        json_object_set_new(j, "perplexity",
                            json_pack("{s:o, s:o, s:o, s:i}", "value", num(r->ppl), "err",
                                      num(r->ppl_err), "bits_per_byte", num(r->bpb), "n_ctx",
                                      r->ppl_ctx));
    if (a->o.task)
        json_object_set_new(j, "task",
                            json_pack("{s:o, s:o, s:o, s:o}", "acc", num(r->acc), "acc_err",
                                      num(r->acc_err), "acc_norm", num(r->acc_norm), "acc_norm_err",
                                      num(r->acc_norm_err)));
    return j;
}

/* herd compare --json: {"speed": how it was measured, "models": [...]}. */
static int print_json(const compare_args *a, const herd_compare_row *r, int n)
{
    json_t *models = json_array();
    for (int i = 0; models && i < n; i++) json_array_append_new(models, row_json(a, &r[i]));
    json_t *j =
        json_pack("{s:{s:i, s:b, s:i}, s:o*}", "speed", "reps", a->o.reps > 0 ? a->o.reps : 3,
                  "interleaved", a->n_groups == 1, "groups", a->n_groups, "models", models);
    if (j && a->o.task)
        json_object_set_new(j, "task",
                            json_pack("{s:s, s:s, s:i}", "kind", herd_mc_kind_name(a->o.task->kind),
                                      "path", a->task_path, "questions", a->o.task->n));
    char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!s) return cli_error(1, "compare: out of memory");
    printf("%s\n", s);
    free(s);
    return 0;
}

/* Measure every model, interleaved in as few groups as fit in memory. */
static void measure_all(compare_args *a, herd_compare_row *rows)
{
    int end[MAX_MODELS];
    a->n_groups = compare_plan(a->models, a->n_models, end);
    a->o.interleaved = a->n_groups == 1;
    for (int g = 0, first = 0; g < a->n_groups; first = end[g++])
        compare_group(a->models + first, end[g] - first, first, a->n_models, &a->o, rows + first);
}

int cmd_compare(int argc, char **argv)
{
    compare_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    /* The probe first (it measures the machine if none is stored), never
     * while a model is being measured. Without one, no speed prediction. */
    herd_probe probe;
    if (cli_probe(&probe) == 0) a.o.probe = &probe;
    herd_compare_row *rows = calloc((size_t)a.n_models, sizeof *rows);
    if (!rows) rc = cli_error(1, "compare: out of memory");
    if (rows) measure_all(&a, rows);
    for (int i = 0; rows && i < a.n_models; i++) {
        if (rows[i].error[0]) rc = 1;
        if (a.o.n_ctx > 0 && a.o.text_path && rows[i].ctx_train > 0 &&
            a.o.n_ctx > rows[i].ctx_train)
            fprintf(stderr, "herd: warning: -c %d is more than the %d tokens %s was trained on\n",
                    a.o.n_ctx, rows[i].ctx_train, rows[i].label);
    }
    if (rows) {
        if (a.json && print_json(&a, rows, a.n_models)) rc = 1;
        if (!a.json) print_table(&a, rows, a.n_models);
        if (a.html && write_html(&a, rows, a.n_models)) rc = 1;
    }
    free(rows);
    herd_mc_free((herd_mc_task *)a.o.task);
    return rc;
}
