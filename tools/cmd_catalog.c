/*
 * cmd_catalog.c — `herd catalog`: the landscape of open models, with sources.
 *
 *   herd catalog                  a table: developer, size, context, licence,
 *                                 commercial use, languages, architecture
 *   herd catalog --json           the whole catalog, every fact with its source
 *   herd catalog MODEL            one model's facts, each with its source
 *   herd catalog MODEL --json     that model's entry
 *   filters (table and --json):   --commercial --max-ram GB --lang CODE
 *                                 --task text|chat|instruct --min-ctx N
 *   herd catalog --verify SEED    check every fact against the rules and the
 *                                 seed document (exit 1 on any problem)
 *
 * The catalog is built into libherd (src/catalog), so this works anywhere.
 */
#include "catalog/catalog.h"
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cmd_catalog(int argc, char **argv);

static void usage(void)
{
    fprintf(stderr,
            "usage: herd catalog [MODEL] [--json] [--commercial] [--max-ram GB] [--lang CODE]\n"
            "                    [--task text|chat|instruct] [--min-ctx N]\n"
            "       herd catalog --verify SEED-FILE\n");
}

static bool parse_num(const char *flag, const char *s, double lo, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo)) {
        cli_error(2, "catalog: %s: '%s' is not a number >= %g", flag, s, lo);
        return false;
    }
    *out = v;
    return true;
}

/* ------------------------------------------------------------ table */

static const char *commercial_short(herd_commercial c)
{
    return c == HERD_COMMERCIAL_YES           ? "yes"
           : c == HERD_COMMERCIAL_CONDITIONAL ? "cond."
           : c == HERD_COMMERCIAL_NO          ? "no"
                                              : "?";
}

typedef struct {
    char params[40], ctx[16], langs[64], arch[200];
} row_text;

static void row_of(const herd_catalog_model *m, row_text *r)
{
    if (m->active_params_b < m->params_b)
        snprintf(r->params, sizeof r->params, "%gB (%g act.)", m->params_b, m->active_params_b);
    else
        snprintf(r->params, sizeof r->params, "%gB", m->params_b);
    if (m->context_length)
        snprintf(r->ctx, sizeof r->ctx, "%d", m->context_length);
    else
        snprintf(r->ctx, sizeof r->ctx, "?");
    r->langs[0] = 0;
    for (int i = 0; i < m->n_languages; i++) {
        size_t at = strlen(r->langs);
        snprintf(r->langs + at, sizeof r->langs - at, "%s%s", i ? "," : "", m->languages[i]);
    }
    if (!m->n_languages) snprintf(r->langs, sizeof r->langs, "?");
    size_t at = (size_t)snprintf(r->arch, sizeof r->arch, "%s:", m->arch);
    for (int i = 0; i < m->n_features && at < sizeof r->arch; i++)
        at += (size_t)snprintf(r->arch + at, sizeof r->arch - at, "%s%s", i ? ", " : " ",
                               m->features[i]);
}

static void widen(int *w, const char *s)
{
    if ((int)strlen(s) > *w) *w = (int)strlen(s);
}

static int print_table(const herd_catalog *cat, const int *sel, int n)
{
    int w_id = 5, w_dev = 9, w_par = 6, w_ctx = 7, w_lic = 7, w_lang = 9;
    row_text *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) return cli_error(1, "catalog: out of memory");
    for (int i = 0; i < n; i++) {
        const herd_catalog_model *m = herd_catalog_model_at(cat, sel[i]);
        row_of(m, &rows[i]);
        widen(&w_id, m->id);
        widen(&w_dev, m->developer);
        widen(&w_par, rows[i].params);
        widen(&w_ctx, rows[i].ctx);
        widen(&w_lic, m->licence);
        widen(&w_lang, rows[i].langs);
    }
    printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-5s  %-*s  %s\n", w_id, "MODEL", w_dev, "DEVELOPER",
           w_par, "PARAMS", w_ctx, "CONTEXT", w_lic, "LICENCE", "COMM.", w_lang, "LANGUAGES",
           "ARCH: FEATURES");
    for (int i = 0; i < n; i++) {
        const herd_catalog_model *m = herd_catalog_model_at(cat, sel[i]);
        printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-5s  %-*s  %s\n", w_id, m->id, w_dev, m->developer,
               w_par, rows[i].params, w_ctx, rows[i].ctx, w_lic, m->licence,
               commercial_short(m->commercial), w_lang, rows[i].langs, rows[i].arch);
    }
    printf("\nCOMM.: commercial use; cond. = allowed under the licence's conditions.\n"
           "`herd catalog MODEL` shows every fact of a model with its source (the seed "
           "document's line, a model card or paper); --json prints them all.\n");
    free(rows);
    return 0;
}

/* ------------------------------------------------------------ facts */

static int print_model(const herd_catalog *cat, int i)
{
    const herd_catalog_model *m = herd_catalog_model_at(cat, i);
    herd_catalog_fact *f;
    int n;
    if (herd_catalog_facts(cat, i, &f, &n)) return cli_fail("catalog");
    printf("%s: %s (%s family)\n", m->id, m->name, m->family);
    int w = 10;
    for (int k = 0; k < n; k++)
        if (!f[k].seed && (int)strlen(f[k].key) > w) w = (int)strlen(f[k].key);
    if (w > 40) w = 40;
    for (int k = 0; k < n; k++) {
        if (f[k].seed)
            printf("  %-*s    seed says: %s (%s)  [%s]\n", w, "", f[k].value,
                   f[k].status ? f[k].status : "statement", f[k].source);
        else
            printf("  %-*s  %s%s%s%s  [%s]\n", w, f[k].key, f[k].value, f[k].status ? " (" : "",
                   f[k].status ? f[k].status : "", f[k].status ? ")" : "",
                   f[k].source ? f[k].source : "NO SOURCE");
        if (f[k].note) printf("  %-*s    note: %s\n", w, "", f[k].note);
    }
    herd_catalog_facts_free(f, n);
    return 0;
}

/* ----------------------------------------------------------- verify */

static void report(void *ud, const char *problem)
{
    (void)ud;
    fprintf(stderr, "herd: catalog: %s\n", problem);
}

static int verify(const herd_catalog *cat, const char *seed_path)
{
    FILE *f = fopen(seed_path, "rb");
    if (!f) return cli_error(1, "catalog: %s: %s", seed_path, strerror(errno));
    size_t cap = 1 << 16, len = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) return cli_error(1, "catalog: out of memory reading %s", seed_path);
    int problems = herd_catalog_verify(cat, buf, len, report, NULL);
    free(buf);
    if (problems) return cli_error(1, "catalog: %d problem%s", problems, problems == 1 ? "" : "s");
    printf("catalog: %d models, every fact sourced, every seed line checked\n",
           herd_catalog_n_models(cat));
    return 0;
}

/* ------------------------------------------------------------- main */

int cmd_catalog(int argc, char **argv)
{
    herd_catalog_query q = {0};
    const char *model = NULL, *seed = NULL;
    bool json = false, filtered = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--commercial")) {
            q.commercial = filtered = true;
        } else if (!strcmp(a, "--max-ram") && has_val) {
            if (!parse_num(a, argv[++i], 0.001, &q.max_ram_gb)) return 2;
            filtered = true;
        } else if (!strcmp(a, "--min-ctx") && has_val) {
            double v;
            if (!parse_num(a, argv[++i], 1, &v) || v > 1e9) return 2;
            q.min_context = (int)v;
            filtered = true;
        } else if (!strcmp(a, "--lang") && has_val) {
            q.language = argv[++i];
            filtered = true;
        } else if (!strcmp(a, "--task") && has_val) {
            if (herd_catalog_parse_task(argv[++i], &q.tasks)) return cli_fail("catalog");
            filtered = true;
        } else if (!strcmp(a, "--verify") && has_val) {
            seed = argv[++i];
        } else if (a[0] == '-') {
            usage();
            return cli_error(2, "catalog: unknown option or missing value: %s", a);
        } else if (!model) {
            model = a;
        } else {
            return cli_error(2, "catalog: one model at a time ('%s' and '%s')", model, a);
        }
    }

    herd_catalog *cat;
    if (herd_catalog_load(&cat)) return cli_fail("catalog");
    int rc = 0;
    if (seed) {
        rc = verify(cat, seed);
    } else if (model) {
        int i = herd_catalog_find(cat, model);
        if (i < 0) {
            rc = cli_error(1, "catalog: unknown model '%s' (`herd catalog` lists them)", model);
        } else if (json) {
            char *s = herd_catalog_model_json(cat, i);
            if (s)
                printf("%s\n", s);
            else
                rc = cli_fail("catalog");
            free(s);
        } else {
            rc = print_model(cat, i);
        }
    } else {
        int n = herd_catalog_n_models(cat), k = 0;
        int *sel = malloc((size_t)n * sizeof *sel);
        if (!sel) {
            herd_catalog_free(cat);
            return cli_error(1, "catalog: out of memory");
        }
        for (int i = 0; i < n; i++)
            if (herd_catalog_matches(cat, i, &q, NULL)) sel[k++] = i;
        if (json) {
            /* Unfiltered, the data file is printed as written; filtered, the
             * selected entries under the same header. */
            size_t len;
            const char *text = herd_catalog_embedded(&len);
            char *s = filtered ? herd_catalog_json(cat, sel, k) : NULL;
            if (!filtered)
                fwrite(text, 1, len, stdout);
            else if (s)
                printf("%s\n", s);
            else
                rc = cli_fail("catalog");
            free(s);
        } else if (k == 0) {
            printf("no model in the catalog matches these filters\n");
        } else {
            rc = print_table(cat, sel, k);
        }
        free(sel);
    }
    herd_catalog_free(cat);
    return rc;
}
