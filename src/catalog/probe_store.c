/*
 * probe_store.c — the probe as JSON in the user's cache folder.
 *
 * A stored probe is used only if every field is present and sane and it was
 * made on this CPU by this herd; anything else (unreadable, truncated,
 * another machine's) is measured again, and the caller is told why.
 */
#include "catalog/predict.h"
#include "tensor/tensor.h"
#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static json_t *per_thread(const double *v, int n)
{
    json_t *a = json_array();
    for (int t = 1; t <= n; t++) json_array_append_new(a, json_real(v[t]));
    return a;
}

char *herd_probe_json(const herd_probe *p)
{
    json_t *types = json_array();
    for (int i = 0; i < p->n_types; i++)
        json_array_append_new(
            types,
            json_pack("{s:s, s:o, s:o, s:o}", "type", herd_type_name(p->types[i].type), "gemv_gbs",
                      per_thread(p->types[i].gemv_gbs, p->max_threads), "gemv_cache_gbs",
                      per_thread(p->types[i].gemv_cache_gbs, p->max_threads), "gemm_gflops",
                      per_thread(p->types[i].gemm_gflops, p->max_threads)));
    json_t *o = json_pack(
        "{s:i, s:s, s:s, s:i, s:o, s:o, s:o, s:f, s:f, s:f, s:o}", "schema", HERD_PROBE_SCHEMA,
        "cpu", p->cpu, "herd", p->herd, "max_threads", p->max_threads, "read_gbs",
        per_thread(p->read_gbs, p->max_threads), "call_us", per_thread(p->call_us, p->max_threads),
        "sync_us", per_thread(p->sync_us, p->max_threads), "attn_ns_decode", p->attn_ns_decode,
        "attn_ns_prompt", p->attn_ns_prompt, "seconds", p->seconds, "types", types);
    char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    return s;
}

/* n positive finite numbers into v[1..n]. */
static bool get_per_thread(json_t *a, double *v, int n)
{
    if (!json_is_array(a) || (int)json_array_size(a) != n) return false;
    for (int t = 1; t <= n; t++) {
        json_t *x = json_array_get(a, (size_t)t - 1);
        if (!json_is_number(x)) return false;
        v[t] = json_number_value(x);
        if (!(v[t] > 0 && v[t] < 1e9)) return false;
    }
    return true;
}

static uint32_t type_by_name(const char *s)
{
    for (uint32_t t = 0; t < HERD_TYPE_COUNT; t++)
        if (!strcmp(herd_type_name(t), s)) return t;
    return HERD_TYPE_COUNT;
}

static herd_status parse_types(json_t *types, herd_probe *p)
{
    if (!json_is_array(types) || json_array_size(types) == 0 ||
        json_array_size(types) > HERD_PROBE_MAX_TYPES)
        return herd_seterr(HERD_E_FORMAT, "no list of types");
    for (size_t i = 0; i < json_array_size(types); i++) {
        json_t *e = json_array_get(types, i);
        const char *name = json_string_value(json_object_get(e, "type"));
        herd_probe_type *pt = &p->types[p->n_types++];
        pt->type = name ? type_by_name(name) : HERD_TYPE_COUNT;
        if (pt->type == HERD_TYPE_COUNT ||
            !get_per_thread(json_object_get(e, "gemv_gbs"), pt->gemv_gbs, p->max_threads) ||
            !get_per_thread(json_object_get(e, "gemv_cache_gbs"), pt->gemv_cache_gbs,
                            p->max_threads) ||
            !get_per_thread(json_object_get(e, "gemm_gflops"), pt->gemm_gflops, p->max_threads))
            return herd_seterr(HERD_E_FORMAT, "type %zu is incomplete", i);
    }
    return HERD_OK;
}

herd_status herd_probe_parse(const char *text, size_t len, herd_probe *p)
{
    memset(p, 0, sizeof *p);
    json_error_t err;
    json_t *o = json_loadb(text, len, 0, &err);
    if (!o) return herd_seterr(HERD_E_FORMAT, "not JSON (%s)", err.text);
    herd_status st = HERD_OK;
    json_int_t schema = json_integer_value(json_object_get(o, "schema"));
    json_int_t mt = json_integer_value(json_object_get(o, "max_threads"));
    const char *cpu = json_string_value(json_object_get(o, "cpu"));
    const char *herd = json_string_value(json_object_get(o, "herd"));
    char my_cpu[128], my_herd[64];
    herd_probe_identity(my_cpu, sizeof my_cpu, my_herd, sizeof my_herd);
    if (schema != HERD_PROBE_SCHEMA)
        st =
            herd_seterr(HERD_E_FORMAT, "schema %lld, not %d", (long long)schema, HERD_PROBE_SCHEMA);
    else if (!cpu || !herd || mt < 1 || mt > HERD_PROBE_MAX_THREADS)
        st = herd_seterr(HERD_E_FORMAT, "cpu, herd or max_threads missing");
    else if (strcmp(cpu, my_cpu))
        st = herd_seterr(HERD_E_INVALID, "made on another CPU (%s)", cpu);
    else if (strcmp(herd, my_herd))
        st = herd_seterr(HERD_E_INVALID, "made by another herd (%s)", herd);
    if (!st) {
        snprintf(p->cpu, sizeof p->cpu, "%s", cpu);
        snprintf(p->herd, sizeof p->herd, "%s", herd);
        p->max_threads = (int)mt;
        p->attn_ns_decode = json_number_value(json_object_get(o, "attn_ns_decode"));
        p->attn_ns_prompt = json_number_value(json_object_get(o, "attn_ns_prompt"));
        p->seconds = json_number_value(json_object_get(o, "seconds"));
        if (!get_per_thread(json_object_get(o, "read_gbs"), p->read_gbs, p->max_threads) ||
            !get_per_thread(json_object_get(o, "call_us"), p->call_us, p->max_threads) ||
            !get_per_thread(json_object_get(o, "sync_us"), p->sync_us, p->max_threads) ||
            !(p->attn_ns_decode > 0 && p->attn_ns_decode < 1e6) ||
            !(p->attn_ns_prompt > 0 && p->attn_ns_prompt < 1e6))
            st = herd_seterr(HERD_E_FORMAT, "a measurement is missing or out of range");
    }
    if (!st) st = parse_types(json_object_get(o, "types"), p);
    json_decref(o);
    return st;
}

herd_status herd_probe_path(char *buf, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, cap, "%s/herd/probe.json", xdg);
    else if (home && home[0])
        n = snprintf(buf, cap, "%s/.cache/herd/probe.json", home);
    else
        return herd_seterr(HERD_E_INVALID, "neither XDG_CACHE_HOME nor HOME is set");
    if (n < 0 || (size_t)n >= cap) return herd_seterr(HERD_E_INVALID, "cache path too long");
    return HERD_OK;
}

static herd_status load(const char *path, herd_probe *p)
{
    FILE *f = fopen(path, "rb");
    if (!f) return herd_seterr(HERD_E_IO, "cannot read it (%s)", strerror(errno));
    char *text = NULL;
    long len = -1;
    if (!fseek(f, 0, SEEK_END) && (len = ftell(f)) >= 0 && len < (1 << 20) &&
        !fseek(f, 0, SEEK_SET))
        text = malloc((size_t)len + 1);
    herd_status st = HERD_OK;
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len)
        st = herd_seterr(HERD_E_IO, "cannot read it");
    else
        st = herd_probe_parse(text, (size_t)len, p);
    free(text);
    fclose(f);
    return st;
}

/* mkdir -p of path's folders. */
static void make_dirs(const char *path)
{
    char d[1024];
    snprintf(d, sizeof d, "%s", path);
    for (char *s = d + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(d, 0755);
            *s = '/';
        }
}

static herd_status store(const char *path, const herd_probe *p)
{
    char *text = herd_probe_json(p);
    if (!text) return herd_seterr(HERD_E_NOMEM, "probe: out of memory");
    make_dirs(path);
    herd_out o;
    herd_status st = herd_out_open(&o, path, NULL);
    if (!st) {
        if (fputs(text, o.fp) < 0 || fputc('\n', o.fp) < 0) {
            herd_out_abort(&o);
            st = herd_seterr(HERD_E_IO, "%s: write failed", path);
        } else {
            st = herd_out_commit(&o);
        }
    }
    free(text);
    return st;
}

herd_status herd_probe_cached(const char *path, int max_threads, herd_probe *out, bool *remeasured,
                              char *why, size_t cap)
{
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    if (why && cap) why[0] = 0;
    *remeasured = false;
    if (exists && load(path, out) == HERD_OK && out->max_threads >= max_threads) return HERD_OK;
    if (why && cap && exists)
        snprintf(why, cap, "%s",
                 out->max_threads && out->max_threads < max_threads ? "measured with fewer threads"
                                                                    : herd_errmsg());
    *remeasured = true;
    herd_status st = herd_probe_run(max_threads, out);
    if (!st) st = store(path, out);
    return st;
}
