/*
 * cmd_recommend.c — `herd recommend [--ram 8G] [--reserve SIZE|N%]
 * [--min-speed T] [--license commercial] [--lang zh]
 * [--task chat|code|long-context|text] [-c CTX] [--parallel N] [-t N]
 * [--explain | --json]`: the catalog's models that fit this machine, best
 * first, as a compact table; --explain gives every pick's reasons and every
 * other model's exclusion, each with its source. Memory is herd's own
 * estimate (the formula of `herd info`) from each model's shape, speed the
 * performance model on this machine's probe (herd probe); the ranking and the
 * reasons are src/catalog/recommend.c's.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "cmd_probe.h"

#include <jansson.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* "Long context": more than Llama 2's 4096 tokens, i.e. at least 8k. */
#define LONG_CONTEXT 8192

typedef struct {
    const char *ram_arg;
    double ram_gb, reserve_gb, reserve_pct; /* reserve_pct < 0: reserve_gb as given */
    bool explain, json;
} rec_opts;

static void usage(void)
{
    fprintf(stderr,
            "usage: herd recommend [--ram SIZE] [--reserve SIZE|N%%] [--min-speed T]\n"
            "                      [--license commercial|any] [--lang CODE]\n"
            "                      [--task chat|instruct|text|code|long-context] [-c CTX] "
            "[--parallel N]\n"
            "                      [-ctk TYPE] [-ctv TYPE] [-t THREADS] [--explain | --json]\n"
            "SIZE: 8G, 16GB, 512M, 1.5T (binary units: 8G = 8 GiB); a plain number is GiB.\n"
            "--reserve: memory left to the system, default max(1 GB, 10%% of --ram).\n"
            "--min-speed T: only picks predicted to generate at least T tokens/s here, with\n"
            "the prediction's 15%% margin (1.15 x T).\n"
            "-ctk, -ctv TYPE: the K (V) cache type memory is estimated for: f16 (default),\n"
            "f32, bf16, q8_0, q4_0 (--cache-type: both).\n");
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

/* Every language code the catalog lists, for the error of an unknown one. */
static bool known_language(const herd_catalog *cat, const char *lang, char *list, size_t cap)
{
    bool found = false;
    list[0] = 0;
    for (int i = 0; i < herd_catalog_n_models(cat); i++) {
        const herd_catalog_model *m = herd_catalog_model_at(cat, i);
        for (int k = 0; k < m->n_languages; k++) {
            if (!strcmp(m->languages[k], lang)) found = true;
            char pat[16];
            snprintf(pat, sizeof pat, " %s,", m->languages[k]);
            size_t at = strlen(list);
            if (!strstr(list, pat) && at + strlen(pat) < cap)
                snprintf(list + at, cap - at, "%s", pat);
        }
    }
    return found;
}

static int parse_args(int argc, char **argv, herd_catalog_query *q, rec_opts *ro)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(), -1;
        if (!strcmp(a, "--explain")) {
            ro->explain = true;
            continue;
        }
        if (!strcmp(a, "--json")) {
            ro->json = true;
            continue;
        }
        if (!v) return usage(), cli_error(2, "recommend: unknown option or missing value: %s", a);
        double bytes;
        char *end;
        if (!strcmp(a, "--ram")) {
            if (!parse_ram(v, &bytes))
                return cli_error(2, "recommend: --ram: '%s' is not a size", v);
            ro->ram_gb = bytes / 1e9;
            ro->ram_arg = v;
        } else if (!strcmp(a, "--reserve")) {
            double pct = strtod(v, &end);
            if (end != v && !strcmp(end, "%") && pct >= 0 && pct < 100)
                ro->reserve_pct = pct;
            else if (parse_ram(v, &bytes) || !strcmp(v, "0"))
                ro->reserve_pct = -1, ro->reserve_gb = !strcmp(v, "0") ? 0 : bytes / 1e9;
            else
                return cli_error(2, "recommend: --reserve: '%s' is not a size or a percentage", v);
        } else if (!strcmp(a, "--min-speed")) {
            double t = strtod(v, &end);
            if (*end || !(t > 0 && t < 1e6))
                return cli_error(2, "recommend: --min-speed: '%s' is not a speed in tokens/s", v);
            q->min_tg = t;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 1024)
                return cli_error(2, "recommend: -t: bad thread count '%s'", v);
            q->threads = (int)t;
        } else if (!strcmp(a, "--license") || !strcmp(a, "--licence")) {
            if (!strcmp(v, "commercial"))
                q->commercial = true;
            else if (strcmp(v, "any"))
                return cli_error(2, "recommend: --license: '%s' is not one of: commercial, any", v);
        } else if (!strcmp(a, "--lang")) {
            q->language = v;
        } else if (!strcmp(a, "--task")) {
            if (!parse_task(v, q)) return 2;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            long c = strtol(v, &end, 10);
            if (*end || c < 1 || c > (1 << 24))
                return cli_error(2, "recommend: -c: bad context '%s'", v);
            q->n_ctx = (int)c;
        } else if (!strcmp(a, "-ctk") || !strcmp(a, "-ctv") || !strcmp(a, "--cache-type") ||
                   !strcmp(a, "--cache-type-k") || !strcmp(a, "--cache-type-v")) {
            herd_kv_type t;
            if (herd_kv_type_parse(v, &t))
                return cli_error(2, "recommend: %s: %s", a, herd_errmsg());
            const bool k = strcmp(a, "-ctv") && strcmp(a, "--cache-type-v");
            if (k || !strcmp(a, "--cache-type")) q->type_k = t;
            if (!k || !strcmp(a, "--cache-type")) q->type_v = t;
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
    if (ro->explain && ro->json) return cli_error(2, "recommend: --explain or --json, not both");
    if (ro->ram_gb > 0) {
        double r = ro->reserve_pct < 0   ? ro->reserve_gb
                   : ro->reserve_pct > 0 ? ro->ram_gb * ro->reserve_pct / 100
                                         : (ro->ram_gb / 10 > 1 ? ro->ram_gb / 10 : 1);
        ro->reserve_gb = r;
        q->max_ram_gb = ro->ram_gb - r;
        if (q->max_ram_gb <= 0)
            return cli_error(2, "recommend: --reserve %.2f GB leaves nothing of --ram %.2f GB", r,
                             ro->ram_gb);
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

static void print_header(const herd_catalog_query *q, const rec_opts *ro)
{
    printf("herd recommend:");
    if (ro->ram_arg)
        printf(" --ram %s (%.2f GB, less a reserve of %.2f GB: %.2f GB for the model)", ro->ram_arg,
               ro->ram_gb, ro->reserve_gb, q->max_ram_gb);
    if (q->min_tg > 0) printf(" --min-speed %g", q->min_tg);
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
    if (q->type_k != HERD_KV_F16 || q->type_v != HERD_KV_F16)
        printf(", -ctk %s -ctv %s", herd_kv_type_name(q->type_k), herd_kv_type_name(q->type_v));
    printf("; GB = 10^9 bytes.\n");
    if (q->probe)
        printf("speed: predicted from this machine's probe (herd probe), %d thread%s: tg128 and "
               "pp512 tokens/s.\n",
               q->threads, q->threads > 1 ? "s" : "");
    printf("%s.\n", herd_catalog_ranking_rule(q));
}

static void print_explained(const herd_catalog *cat, const herd_catalog_query *q,
                            const herd_recommendation *r, int n)
{
    const int n_models = herd_catalog_n_models(cat);
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
        if (herd_catalog_why_not(cat, i, q, why, sizeof why))
            printf("  %-24s %s\n", herd_catalog_model_at(cat, i)->id, why);
    }
}

static void print_table(const herd_catalog *cat, const herd_recommendation *r, int n)
{
    printf("\n%-3s %-27s %-32s %-7s %7s %7s %7s %8s %-28s %7s %s\n", "#", "model", "variant",
           "type", "file GB", "RAM GB", "tg t/s", "pp t/s", "licence", "context", "quality");
    for (int i = 0; i < n; i++) {
        const herd_catalog_model *m = herd_catalog_model_at(cat, r[i].model);
        const herd_catalog_quant *qu = &m->quants[r[i].quant];
        char tg[16] = "?", pp[16] = "?", quality[32] = "-";
        if (r[i].has_pred)
            snprintf(tg, sizeof tg, "%.1f", r[i].pred.tg),
                snprintf(pp, sizeof pp, "%.0f", r[i].pred.pp);
        if (m->mmlu >= 0) snprintf(quality, sizeof quality, "MMLU %.1f", m->mmlu);
        printf("%-3d %-27s %-32.32s %-7s %7.2f %7.2f %7s %8s %-28.28s %7d %s\n", i + 1, m->id,
               m->variants[r[i].variant].repo, qu->type, qu->size_gb, r[i].ram_gb, tg, pp,
               m->licence, m->context_length, quality);
    }
    if (n == 0) printf("(none: herd recommend --explain says why each model is excluded)\n");
    printf("\n--explain gives the sources of every figure and why the others are excluded.\n");
}

static json_t *reasons_json(const char *r)
{
    json_t *a = json_array();
    while (*r) {
        size_t n = strcspn(r, "\n");
        json_array_append_new(a, json_stringn(r, n));
        r += n + (r[n] == '\n');
    }
    return a;
}

static int print_json(const herd_catalog *cat, const herd_catalog_query *q, const rec_opts *ro,
                      const herd_recommendation *r, int n)
{
    json_t *picks = json_array(), *excl = json_array();
    for (int i = 0; i < n; i++) {
        const herd_catalog_model *m = herd_catalog_model_at(cat, r[i].model);
        const herd_catalog_quant *qu = &m->quants[r[i].quant];
        json_t *p =
            json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:i, s:s, s:s, s:i, s:o}", "id", m->id,
                      "name", m->name, "variant", m->variants[r[i].variant].repo, "type", qu->type,
                      "file_gb", qu->size_gb, "ram_gb", r[i].ram_gb, "n_ctx", r[i].n_ctx, "licence",
                      m->licence, "commercial_use", herd_commercial_name(m->commercial),
                      "context_length", m->context_length, "reasons", reasons_json(r[i].reasons));
        if (r[i].has_pred)
            json_object_set_new(p, "predict",
                                json_pack("{s:f, s:f, s:i}", "tg128", r[i].pred.tg, "pp512",
                                          r[i].pred.pp, "threads", r[i].pred.threads));
        json_object_set_new(p, "quality",
                            m->mmlu >= 0 ? json_pack("{s:s, s:f, s:s}", "benchmark", "MMLU",
                                                     "value", m->mmlu, "source", m->mmlu_source)
                                         : json_null());
        json_array_append_new(picks, p);
    }
    for (int i = 0; i < herd_catalog_n_models(cat); i++) {
        char why[1024];
        if (herd_catalog_why_not(cat, i, q, why, sizeof why))
            json_array_append_new(
                excl, json_pack("{s:s, s:s}", "id", herd_catalog_model_at(cat, i)->id, "why", why));
    }
    json_t *o = json_pack("{s:s, s:o, s:o}", "ranking", herd_catalog_ranking_rule(q), "picks",
                          picks, "excluded", excl);
    if (ro->ram_gb > 0) {
        json_object_set_new(o, "ram_gb", json_real(ro->ram_gb));
        json_object_set_new(o, "reserve_gb", json_real(ro->reserve_gb));
    }
    if (q->min_tg > 0) json_object_set_new(o, "min_speed", json_real(q->min_tg));
    json_object_set_new(o, "threads", json_integer(q->threads));
    char *s = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!s) return cli_error(1, "recommend: out of memory");
    printf("%s\n", s);
    free(s);
    return 0;
}

/* Nothing passes and --ram is the cause: the smallest candidate that passes
 * every other filter, and what it would need. */
static int nothing_fits(const herd_catalog *cat, herd_catalog_query q, const rec_opts *ro)
{
    const double budget = q.max_ram_gb;
    q.max_ram_gb = 0, q.min_tg = 0;
    int best = -1, best_quant = 0;
    double best_gb = 0;
    for (int i = 0; i < herd_catalog_n_models(cat); i++) {
        herd_mem_estimate e;
        if (!herd_catalog_matches(cat, i, &q, NULL) ||
            herd_catalog_estimate(cat, i, 0, &q, &e, NULL))
            continue;
        if (best < 0 || e.total / 1e9 < best_gb) best = i, best_gb = e.total / 1e9;
    }
    if (best < 0 || best_gb <= budget) return -1; /* memory is not the cause */
    const herd_catalog_model *m = herd_catalog_model_at(cat, best);
    return cli_error(1,
                     "recommend: nothing fits in %.2f GB (--ram %s less a reserve of %.2f GB); "
                     "the smallest candidate, %s as %s, needs %.2f GB",
                     budget, ro->ram_arg, ro->reserve_gb, m->id, m->quants[best_quant].type,
                     best_gb);
}

static int recommend(herd_catalog *cat, const herd_catalog_query *query, const rec_opts *ro)
{
    herd_catalog_query qv = *query, *q = &qv; /* q->probe points into this frame */
    char langs[512];
    if (q->language && !known_language(cat, q->language, langs, sizeof langs))
        return cli_error(2, "recommend: --lang: '%s' is not listed by any model; known:%s",
                         q->language, langs);
    herd_probe probe;
    if (cli_probe(&probe)) return 1;
    q->probe = &probe;
    if (q->threads <= 0) q->threads = cli_default_threads();
    if (q->threads > probe.max_threads) q->threads = probe.max_threads;
    const int n_models = herd_catalog_n_models(cat);
    herd_recommendation *r = calloc((size_t)n_models, sizeof *r);
    int n = 0;
    if (!r) return cli_error(1, "recommend: out of memory");
    if (herd_catalog_recommend(cat, q, r, n_models, &n)) {
        free(r);
        return cli_fail("recommend");
    }
    int rc = 0;
    if (n == 0 && ro->ram_gb > 0 && !ro->json && (rc = nothing_fits(cat, *q, ro)) > 0) {
        free(r);
        return rc;
    }
    rc = 0;
    if (ro->json) {
        rc = print_json(cat, q, ro, r, n);
    } else {
        print_header(q, ro);
        if (ro->explain)
            print_explained(cat, q, r, n);
        else
            print_table(cat, r, n);
    }
    free(r);
    return rc;
}

int cmd_recommend(int argc, char **argv)
{
    herd_catalog_query q = {.estimate = true};
    rec_opts ro = {.reserve_pct = 0};
    int rc = parse_args(argc, argv, &q, &ro);
    if (rc) return rc < 0 ? 0 : rc;
    herd_catalog *cat;
    if (herd_catalog_load(&cat)) return cli_fail("catalog");
    rc = recommend(cat, &q, &ro);
    herd_catalog_free(cat);
    return rc;
}
