/*
 * cmd_recommend.c — `herd recommend [--ram 8G] [--license commercial]
 * [--lang zh] [--task chat|code|long-context|text] [-c CTX] [--parallel N]`:
 * the catalog's models that fit, best first, each with the reasons it is
 * suggested, then every other model with the reason it is excluded. Memory is
 * herd's own estimate (the formula of `herd info`) from each model's shape;
 * the ranking and the reasons are src/catalog/recommend.c's.
 */
#include "catalog/catalog.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* "Long context": more than Llama 2's 4096 tokens, i.e. at least 8k. */
#define LONG_CONTEXT 8192

static void usage(void)
{
    fprintf(stderr,
            "usage: herd recommend [--ram SIZE] [--license commercial|any] [--lang CODE]\n"
            "                      [--task chat|instruct|text|code|long-context] [-c CTX] "
            "[--parallel N]\n"
            "SIZE: 8G, 16GB, 512M, 1.5T (binary units: 8G = 8 GiB); a plain number is GiB.\n");
}

/* "8G" -> bytes. */
static bool parse_ram(const char *s, double *bytes)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0) || !isfinite(v)) return false;
    double unit = 1024.0 * 1024 * 1024;
    if (*end == 'M' || *end == 'm')
        unit = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        end++;
    else if (*end == 'T' || *end == 't')
        unit *= 1024, end++;
    if (!strcmp(end, "B") || !strcmp(end, "iB") || !strcmp(end, "b")) end += strlen(end);
    *bytes = v * unit;
    return *end == 0;
}

static bool parse_task(const char *s, herd_catalog_query *q)
{
    if (!strcmp(s, "code")) {
        q->code = true;
    } else if (!strcmp(s, "long-context") || !strcmp(s, "long")) {
        q->min_context = LONG_CONTEXT;
        q->n_ctx = -1; /* its memory at the whole context it is chosen for */
    } else if (herd_catalog_parse_task(s, &q->tasks)) {
        cli_error(2, "recommend: unknown task '%s' (chat, instruct, text, code, long-context)", s);
        return false;
    }
    return true;
}

static int parse_args(int argc, char **argv, herd_catalog_query *q, const char **ram_arg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(), -1;
        if (!v) return usage(), cli_error(2, "recommend: unknown option or missing value: %s", a);
        double bytes;
        char *end;
        if (!strcmp(a, "--ram")) {
            if (!parse_ram(v, &bytes))
                return cli_error(2, "recommend: --ram: '%s' is not a size", v);
            q->max_ram_gb = bytes / 1e9;
            *ram_arg = v;
        } else if (!strcmp(a, "--license") || !strcmp(a, "--licence")) {
            if (!strcmp(v, "commercial"))
                q->commercial = true;
            else if (strcmp(v, "any"))
                return cli_error(2, "recommend: --license: 'commercial' or 'any', not '%s'", v);
        } else if (!strcmp(a, "--lang")) {
            q->language = v;
        } else if (!strcmp(a, "--task")) {
            if (!parse_task(v, q)) return 2;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            long c = strtol(v, &end, 10);
            if (*end || c < 1 || c > (1 << 24))
                return cli_error(2, "recommend: -c: bad context '%s'", v);
            q->n_ctx = (int)c;
        } else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 4096)
                return cli_error(2, "recommend: --parallel: bad count '%s'", v);
            q->n_seq = (int)n;
        } else {
            return usage(), cli_error(2, "recommend: unknown option %s", a);
        }
        i++;
    }
    return 0;
}

/* Reasons are lines; print them indented. */
static void print_reasons(const char *r)
{
    while (*r) {
        size_t n = strcspn(r, "\n");
        printf("      %.*s\n", (int)n, r);
        r += n + (r[n] == '\n');
    }
}

static void print_header(const herd_catalog_query *q, const char *ram_arg)
{
    printf("herd recommend:");
    if (ram_arg) printf(" --ram %s (%.2f GB)", ram_arg, q->max_ram_gb);
    if (q->commercial) printf(" --license commercial");
    if (q->language) printf(" --lang %s", q->language);
    if (q->tasks) printf(" --task %s", q->tasks & HERD_TASK_TEXT ? "text" : "chat");
    if (q->code) printf(" --task code");
    if (q->min_context) printf(" --task long-context (at least %d tokens)", q->min_context);
    printf("\nmemory: herd's estimate (herd info's formula: weights + KV cache + scratch) at ");
    if (q->n_ctx > 0)
        printf("-c %d", q->n_ctx);
    else if (q->n_ctx < 0)
        printf("the model's whole context");
    else
        printf("-c min(the model's context, 4096), as herd info");
    if (q->n_seq > 1) printf(", --parallel %d", q->n_seq);
    printf("; GB = 10^9 bytes; leave room for the system.\n");
}

int cmd_recommend(int argc, char **argv)
{
    herd_catalog_query q = {.estimate = true};
    const char *ram_arg = NULL;
    int rc = parse_args(argc, argv, &q, &ram_arg);
    if (rc) return rc < 0 ? 0 : rc;
    herd_catalog *cat;
    if (herd_catalog_load(&cat)) return cli_fail("catalog");
    const int n_models = herd_catalog_n_models(cat);
    herd_recommendation *r = calloc((size_t)n_models, sizeof *r);
    int n = 0;
    if (!r || herd_catalog_recommend(cat, &q, r, n_models, &n)) {
        free(r);
        herd_catalog_free(cat);
        return r ? cli_fail("recommend") : cli_error(1, "recommend: out of memory");
    }
    print_header(&q, ram_arg);
    printf("\nSuggested (%d):\n", n);
    if (n == 0) printf("  none: every model is excluded below\n");
    for (int i = 0; i < n; i++) {
        const herd_catalog_model *m = herd_catalog_model_at(cat, r[i].model);
        printf("%3d. %-24s %-7s %6.2f GB  %s, %g B, %s, context %d\n", i + 1, m->id,
               m->quants[r[i].quant].type, r[i].ram_gb, m->name, m->params_b, m->licence,
               m->context_length);
        print_reasons(r[i].reasons);
    }
    printf("\nExcluded (%d):\n", n_models - n);
    for (int i = 0; i < n_models; i++) {
        char why[1024];
        if (herd_catalog_why_not(cat, i, &q, why, sizeof why))
            printf("  %-24s %s\n", herd_catalog_model_at(cat, i)->id, why);
    }
    free(r);
    herd_catalog_free(cat);
    return 0;
}
