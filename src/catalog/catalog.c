/*
 * catalog.c — loading the landscape catalog and showing it.
 *
 * The JSON document is parsed with Jansson and kept whole: `herd catalog
 * --json` prints it back with every source, and the fact listing walks it
 * generically, so a fact added to data/catalog.json shows up without a code
 * change. Only what the table and the recommender need is copied into the
 * typed herd_catalog_model view; a required field that is missing or of the
 * wrong type fails the load with HERD_E_FORMAT naming the model and field.
 * What the sources say is checked separately, by herd_catalog_verify().
 */
#include "catalog/catalog_impl.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Generated at build time from data/catalog.json (src/catalog/embed.cmake). */
extern const unsigned char herd_catalog_data[];
extern const size_t herd_catalog_data_len;

const char *herd_catalog_embedded(size_t *len)
{
    if (len) *len = herd_catalog_data_len;
    return (const char *)herd_catalog_data;
}

const char *herd_commercial_name(herd_commercial c)
{
    switch (c) {
    case HERD_COMMERCIAL_YES:
        return "yes";
    case HERD_COMMERCIAL_CONDITIONAL:
        return "conditional";
    case HERD_COMMERCIAL_NO:
        return "no";
    default:
        return "unknown";
    }
}

const char *herd_task_name(unsigned task)
{
    switch (task) {
    case HERD_TASK_TEXT:
        return "text";
    case HERD_TASK_CHAT:
        return "chat";
    case HERD_TASK_INSTRUCT:
        return "instruct";
    default:
        return "?";
    }
}

herd_status herd_catalog_parse_task(const char *s, unsigned *mask)
{
    /* A person asking for "chat" is as well served by an instruct-tuned model
     * (both answer requests), so the two assistant kinds go together. */
    if (!strcmp(s, "text") || !strcmp(s, "base") || !strcmp(s, "completion"))
        *mask = HERD_TASK_TEXT;
    else if (!strcmp(s, "chat") || !strcmp(s, "instruct") || !strcmp(s, "assistant"))
        *mask = HERD_TASK_CHAT | HERD_TASK_INSTRUCT;
    else
        return herd_seterr(HERD_E_INVALID, "unknown task '%s' (text, chat or instruct)", s);
    return HERD_OK;
}

/* ------------------------------------------------------------ loading */

#define BAD(...) herd_seterr(HERD_E_FORMAT, "catalog: " __VA_ARGS__)

/* The string value of fact key of model e; NULL (and an error) if absent. */
static herd_status str_fact(const json_t *e, const char *id, const char *key, const char **val,
                            const char **src)
{
    const json_t *f = catalog_fact(e, key);
    const char *v = f ? json_string_value(json_object_get(f, "value")) : NULL;
    if (!v) return BAD("%s: '%s' must be a fact with a string value", id, key);
    *val = v;
    if (src) *src = catalog_source(f);
    return HERD_OK;
}

static herd_status num_fact(const json_t *e, const char *id, const char *key, double *val,
                            const char **src)
{
    const json_t *f = catalog_fact(e, key);
    const json_t *v = f ? json_object_get(f, "value") : NULL;
    if (!json_is_number(v) || json_number_value(v) <= 0)
        return BAD("%s: '%s' must be a fact with a positive number", id, key);
    *val = json_number_value(v);
    *src = catalog_source(f);
    return HERD_OK;
}

static herd_status parse_task(const char *id, const char *s, unsigned *task)
{
    if (!strcmp(s, "text"))
        *task = HERD_TASK_TEXT;
    else if (!strcmp(s, "chat"))
        *task = HERD_TASK_CHAT;
    else if (!strcmp(s, "instruct"))
        *task = HERD_TASK_INSTRUCT;
    else
        return BAD("%s: variant task '%s' is not text, chat or instruct", id, s);
    return HERD_OK;
}

static herd_status fill_lists(const json_t *e, herd_catalog_model *m)
{
    const json_t *a = json_object_get(e, "features"), *x;
    size_t i;
    if (!json_is_array(a) || json_array_size(a) > HERD_CATALOG_MAX_FEAT)
        return BAD("%s: 'features' must be an array of at most %d facts", m->id,
                   HERD_CATALOG_MAX_FEAT);
    json_array_foreach(a, i, x)
    {
        const char *v = json_string_value(json_object_get(x, "value"));
        if (!v) return BAD("%s: feature %zu has no string value", m->id, i);
        m->features[m->n_features++] = v;
    }

    a = json_object_get(e, "variants");
    if (!json_is_array(a) || json_array_size(a) == 0 ||
        json_array_size(a) > HERD_CATALOG_MAX_VARIANT)
        return BAD("%s: 'variants' must be an array of 1 to %d facts", m->id,
                   HERD_CATALOG_MAX_VARIANT);
    json_array_foreach(a, i, x)
    {
        herd_catalog_variant *v = &m->variants[m->n_variants++];
        v->repo = json_string_value(json_object_get(x, "value"));
        v->source = json_string_value(json_object_get(x, "source"));
        const char *task = json_string_value(json_object_get(x, "task"));
        if (!v->repo || !task) return BAD("%s: variant %zu needs a value and a task", m->id, i);
        herd_status st = parse_task(m->id, task, &v->task);
        if (st) return st;
        m->tasks |= v->task;
    }

    /* MMLU is the one benchmark the catalog has for several families; the
     * recommender uses it to break ties and shows it as a reason. */
    m->mmlu = -1;
    a = json_object_get(e, "benchmarks");
    json_array_foreach(a, i, x)
    {
        const char *name = json_string_value(json_object_get(x, "name"));
        const json_t *v = json_object_get(x, "value");
        if (name && !strncmp(name, "MMLU", 4) && json_is_number(v) && m->mmlu < 0) {
            m->mmlu = json_number_value(v);
            m->mmlu_source = catalog_source(x);
        }
    }

    a = json_object_get(e, "gguf");
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > HERD_CATALOG_MAX_QUANT)
        return BAD("%s: 'gguf' must be an array of 1 to %d sizes", m->id, HERD_CATALOG_MAX_QUANT);
    json_array_foreach(a, i, x)
    {
        herd_catalog_quant *q = &m->quants[m->n_quants++];
        q->type = json_string_value(json_object_get(x, "type"));
        const json_t *bpw = json_object_get(x, "bpw"), *gb = json_object_get(x, "size_gb");
        if (!q->type || !json_is_number(bpw) || !json_is_number(gb))
            return BAD("%s: gguf entry %zu needs type, bpw and size_gb", m->id, i);
        q->bpw = json_number_value(bpw);
        q->size_gb = json_number_value(gb);
        if (i > 0 && q->bpw <= q[-1].bpw)
            return BAD("%s: gguf entries must be in ascending bpw", m->id);
    }
    return HERD_OK;
}

/* The optional "shape" fact: integers the formulas need; head_dim defaults
 * to n_embd / n_head, the experts and the window to 0. */
static herd_status fill_shape(const json_t *e, herd_catalog_model *m)
{
    const json_t *f = json_object_get(e, "shape");
    if (!f) return HERD_OK;
    const json_t *v = json_object_get(f, "value");
    if (!catalog_fact(e, "shape") || !json_is_object(v))
        return BAD("%s: 'shape' must be a fact whose value is an object", m->id);
    static const char *const keys[] = {"n_layer", "n_embd",  "n_head",   "n_head_kv",
                                       "n_ff",    "n_vocab", "n_expert", "n_expert_used",
                                       "swa",     "head_dim"};
    herd_shape *sh = &m->shape;
    int *dst[] = {&sh->n_layer, &sh->n_embd,   &sh->n_head,        &sh->n_head_kv, &sh->n_ff,
                  &sh->n_vocab, &sh->n_expert, &sh->n_expert_used, &sh->swa,       &sh->head_dim};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const json_t *x = json_object_get(v, keys[i]);
        bool optional = i >= 6;
        if (!x && optional) continue;
        if (!json_is_integer(x) || json_integer_value(x) < (optional ? 0 : 1) ||
            json_integer_value(x) > (1 << 24))
            return BAD("%s: shape.%s must be a %s integer", m->id, keys[i],
                       optional ? "non-negative" : "positive");
        *dst[i] = (int)json_integer_value(x);
    }
    if (!sh->head_dim) sh->head_dim = sh->n_embd / sh->n_head;
    if (sh->n_head_kv > sh->n_head || sh->n_expert_used > sh->n_expert || sh->head_dim < 1)
        return BAD("%s: shape: more KV heads than heads, or more experts used than there are",
                   m->id);
    m->shape_source = catalog_source(f);
    return HERD_OK;
}

static herd_status fill_model(const json_t *e, size_t idx, herd_catalog_model *m)
{
    herd_status st;
    if (!json_is_object(e)) return BAD("model %zu is not an object", idx);
    m->id = json_string_value(json_object_get(e, "id"));
    m->name = json_string_value(json_object_get(e, "name"));
    m->family = json_string_value(json_object_get(e, "family"));
    if (!m->id || !m->id[0] || !m->name || !m->family)
        return BAD("model %zu needs an id, a name and a family", idx);
    if ((st = str_fact(e, m->id, "developer", &m->developer, &m->developer_source)) ||
        (st = num_fact(e, m->id, "params_b", &m->params_b, &m->params_source)) ||
        (st = str_fact(e, m->id, "arch", &m->arch, NULL)))
        return st;
    m->active_params_b = m->params_b;
    m->active_source = m->params_source;
    if (json_object_get(e, "active_params_b") &&
        (st = num_fact(e, m->id, "active_params_b", &m->active_params_b, &m->active_source)))
        return st;

    const json_t *f = catalog_fact(e, "context_length"), *v;
    if (!f) return BAD("%s: 'context_length' must be a fact", m->id);
    v = json_object_get(f, "value");
    if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= (1 << 30))
        m->context_length = (int)json_integer_value(v);
    else if (!json_is_null(v))
        return BAD("%s: 'context_length' must be a positive integer or null", m->id);
    m->context_source = catalog_source(f);

    const json_t *lic = json_object_get(e, "licence");
    if ((st = str_fact(lic, m->id, "name", &m->licence, &m->licence_source)) ||
        (st = str_fact(lic, m->id, "terms", &m->terms, &m->terms_source)))
        return st;
    f = catalog_fact(lic, "commercial_use");
    if (!f) return BAD("%s: 'licence.commercial_use' must be a fact", m->id);
    const char *c = json_string_value(json_object_get(f, "value"));
    if (!c)
        m->commercial = HERD_COMMERCIAL_UNKNOWN;
    else if (!strcmp(c, "yes"))
        m->commercial = HERD_COMMERCIAL_YES;
    else if (!strcmp(c, "conditional"))
        m->commercial = HERD_COMMERCIAL_CONDITIONAL;
    else if (!strcmp(c, "no"))
        m->commercial = HERD_COMMERCIAL_NO;
    else
        return BAD("%s: commercial_use '%s' is not yes, conditional or no", m->id, c);
    m->commercial_source = catalog_source(f);

    f = catalog_fact(e, "languages");
    if (!f) return BAD("%s: 'languages' must be a fact", m->id);
    v = json_object_get(f, "value");
    if (json_is_array(v)) {
        size_t i;
        const json_t *x;
        if (json_array_size(v) > HERD_CATALOG_MAX_LANG)
            return BAD("%s: more than %d languages", m->id, HERD_CATALOG_MAX_LANG);
        json_array_foreach(v, i, x)
        {
            if (!json_is_string(x)) return BAD("%s: language %zu is not a string", m->id, i);
            m->languages[m->n_languages++] = json_string_value(x);
        }
    } else if (!json_is_null(v)) {
        return BAD("%s: 'languages' must be an array of codes or null", m->id);
    }
    m->languages_source = catalog_source(f);
    if ((st = fill_shape(e, m))) return st;
    return fill_lists(e, m);
}

herd_status herd_catalog_parse(const char *text, size_t len, herd_catalog **out)
{
    *out = NULL;
    json_error_t err;
    json_t *root = json_loadb(text, len, 0, &err);
    if (!root) return BAD("line %d: %s", err.line, err.text);
    herd_catalog *cat = herd_calloc(1, sizeof *cat);
    if (!cat) {
        json_decref(root);
        return HERD_E_NOMEM;
    }
    cat->root = root;
    herd_status st = HERD_OK;
    cat->models = json_object_get(root, "models");
    size_t n = json_array_size(cat->models);
    if (!json_is_array(cat->models) || n == 0) {
        st = BAD("no \"models\" array");
        goto fail;
    }
    const json_t *mem = json_object_get(root, "memory");
    const json_t *ov = catalog_fact(mem, "overhead_gb");
    if (!ov || !json_is_number(json_object_get(ov, "value"))) {
        st = BAD("memory.overhead_gb must be a fact with a number");
        goto fail;
    }
    cat->overhead_gb = json_number_value(json_object_get(ov, "value"));
    cat->overhead_source = catalog_source(ov);
    if (!(cat->m = herd_calloc(n, sizeof *cat->m))) {
        st = HERD_E_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++, cat->n++)
        if ((st = fill_model(json_array_get(cat->models, i), i, &cat->m[i]))) goto fail;
    *out = cat;
    return HERD_OK;
fail:
    herd_catalog_free(cat);
    return st;
}

herd_status herd_catalog_load(herd_catalog **out)
{
    size_t len;
    const char *text = herd_catalog_embedded(&len);
    return herd_catalog_parse(text, len, out);
}

herd_status herd_catalog_load_file(const char *path, herd_catalog **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return herd_seterr(HERD_E_IO, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    herd_status st = HERD_OK;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 1 << 16;
            char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                st = herd_seterr(HERD_E_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = herd_seterr(HERD_E_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (!st) st = herd_catalog_parse(buf, len, out);
    free(buf);
    return st;
}

void herd_catalog_free(herd_catalog *cat)
{
    if (!cat) return;
    json_decref(cat->root);
    free(cat->m);
    free(cat);
}

int herd_catalog_n_models(const herd_catalog *cat)
{
    return cat->n;
}

const herd_catalog_model *herd_catalog_model_at(const herd_catalog *cat, int i)
{
    return i >= 0 && i < cat->n ? &cat->m[i] : NULL;
}

int herd_catalog_find(const herd_catalog *cat, const char *id)
{
    for (int i = 0; i < cat->n; i++)
        if (!strcmp(cat->m[i].id, id)) return i;
    return -1;
}

double herd_catalog_overhead_gb(const herd_catalog *cat, const char **source)
{
    if (source) *source = cat->overhead_source;
    return cat->overhead_gb;
}

/* -------------------------------------------------------------- facts */

typedef struct {
    herd_catalog_fact *v;
    int n, cap;
} factlist;

/* A JSON value as text: arrays joined with ", ", null as "unknown". */
static char *value_text(const json_t *v)
{
    char buf[1024];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, sizeof buf, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        return strdup("yes");
    case JSON_FALSE:
        return strdup("no");
    case JSON_ARRAY: {
        size_t i, at = 0;
        const json_t *x;
        buf[0] = 0;
        json_array_foreach(v, i, x)
        {
            char *s = value_text(x);
            if (!s) return NULL;
            int w = snprintf(buf + at, sizeof buf - at, "%s%s", i ? ", " : "", s);
            free(s);
            if (w < 0 || (size_t)w >= sizeof buf - at) break; /* long lists are cut */
            at += (size_t)w;
        }
        break;
    }
    case JSON_OBJECT: {
        const char *k;
        const json_t *x;
        size_t at = 0;
        buf[0] = 0;
        json_object_foreach((json_t *)v, k, x)
        {
            char *s = value_text(x);
            if (!s) return NULL;
            int w = snprintf(buf + at, sizeof buf - at, "%s%s %s", at ? ", " : "", k, s);
            free(s);
            if (w < 0 || (size_t)w >= sizeof buf - at) break;
            at += (size_t)w;
        }
        break;
    }
    default:
        return strdup("unknown");
    }
    return strdup(buf);
}

/* The text shown for a fact: its value, "+" for lower bounds ("3500+"), the
 * task of a variant, the size of a GGUF file. */
static char *fact_text(const json_t *f)
{
    const json_t *v = json_object_get(f, "value");
    if (!v && json_is_number(json_object_get(f, "size_gb"))) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.2f GB (%.2f bpw)",
                 json_number_value(json_object_get(f, "size_gb")),
                 json_number_value(json_object_get(f, "bpw")));
        return strdup(buf);
    }
    char *s = value_text(v);
    const char *task = json_string_value(json_object_get(f, "task"));
    bool plus = json_is_true(json_object_get(f, "at_least"));
    if (!s || (!task && !plus)) return s;
    size_t n = strlen(s) + (task ? strlen(task) + 4 : 0) + 2;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%s%s%s%s%s", s, plus ? "+" : "", task ? " (" : "", task ? task : "",
                 task ? ")" : "");
    free(s);
    return t;
}

static herd_status push(factlist *fl, const char *key, const json_t *f, bool seed)
{
    if (fl->n == fl->cap) {
        int ncap = fl->cap ? 2 * fl->cap : 64;
        herd_catalog_fact *nv = realloc(fl->v, (size_t)ncap * sizeof *nv);
        if (!nv) return herd_seterr(HERD_E_NOMEM, "out of memory listing facts");
        fl->v = nv;
        fl->cap = ncap;
    }
    herd_catalog_fact *x = &fl->v[fl->n];
    memset(x, 0, sizeof *x);
    x->key = strdup(key);
    x->value = json_is_object(f) ? fact_text(f) : value_text(f);
    if (!x->key || !x->value) {
        free(x->key);
        free(x->value);
        return herd_seterr(HERD_E_NOMEM, "out of memory listing facts");
    }
    if (json_is_object(f)) {
        x->source = catalog_source(f);
        x->note = json_string_value(json_object_get(f, "note"));
        x->status = json_string_value(json_object_get(f, "status"));
    }
    x->seed = seed;
    fl->n++;
    return HERD_OK;
}

/* Walk a member of a model entry: facts are listed with the seed's statements
 * about them; objects that are not facts (licence) and arrays of facts
 * (benchmarks) are descended into. A bare value outside any fact is listed
 * too, without a source, so that it shows rather than hides. */
static herd_status walk(factlist *fl, const json_t *node, const char *path)
{
    char sub[256];
    herd_status st;
    if (json_is_object(node) && json_is_string(json_object_get(node, "source"))) {
        if ((st = push(fl, path, node, false))) return st;
        size_t i;
        const json_t *s;
        json_array_foreach(json_object_get(node, "seed"), i, s)
        {
            if ((st = push(fl, path, s, true))) return st;
        }
        return HERD_OK;
    }
    if (json_is_object(node)) {
        const char *k;
        const json_t *c;
        json_object_foreach((json_t *)node, k, c)
        {
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            if ((st = walk(fl, c, sub))) return st;
        }
        return HERD_OK;
    }
    if (json_is_array(node)) {
        size_t i;
        const json_t *c;
        json_array_foreach(node, i, c)
        {
            const char *label = json_string_value(json_object_get(c, "name"));
            if (!label) label = json_string_value(json_object_get(c, "metric"));
            if (!label) label = json_string_value(json_object_get(c, "type"));
            if (label)
                snprintf(sub, sizeof sub, "%s: %s", path, label);
            else
                snprintf(sub, sizeof sub, "%s", path);
            if ((st = walk(fl, c, sub))) return st;
        }
        return HERD_OK;
    }
    return push(fl, path, node, false);
}

herd_status herd_catalog_facts(const herd_catalog *cat, int model, herd_catalog_fact **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (model < 0 || model >= cat->n) return herd_seterr(HERD_E_INVALID, "no model %d", model);
    factlist fl = {0};
    const json_t *e = json_array_get(cat->models, (size_t)model), *c;
    const char *k;
    json_object_foreach((json_t *)e, k, c)
    {
        if (!strcmp(k, "id") || !strcmp(k, "name") || !strcmp(k, "family")) continue;
        herd_status st = walk(&fl, c, k);
        if (st) {
            herd_catalog_facts_free(fl.v, fl.n);
            return st;
        }
    }
    *out = fl.v;
    *n = fl.n;
    return HERD_OK;
}

void herd_catalog_facts_free(herd_catalog_fact *facts, int n)
{
    for (int i = 0; i < n; i++) {
        free(facts[i].key);
        free(facts[i].value);
    }
    free(facts);
}

/* --------------------------------------------------------------- JSON */

#define DUMP_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER)

char *herd_catalog_json(const herd_catalog *cat, const int *models, int n)
{
    if (!models) return json_dumps(cat->root, DUMP_FLAGS);
    /* A shallow copy shares every member with the loaded document; only the
     * models array is new. */
    json_t *doc = json_copy(cat->root), *arr = json_array();
    char *s = NULL;
    if (doc && arr) {
        for (int i = 0; i < n; i++)
            if (models[i] >= 0 && models[i] < cat->n)
                json_array_append(arr, json_array_get(cat->models, (size_t)models[i]));
        if (json_object_set(doc, "models", arr) == 0) s = json_dumps(doc, DUMP_FLAGS);
    }
    json_decref(arr);
    json_decref(doc);
    if (!s) herd_seterr(HERD_E_NOMEM, "out of memory writing the catalog");
    return s;
}

char *herd_catalog_model_json(const herd_catalog *cat, int model)
{
    if (model < 0 || model >= cat->n) {
        herd_seterr(HERD_E_INVALID, "no model %d", model);
        return NULL;
    }
    return json_dumps(json_array_get(cat->models, (size_t)model), DUMP_FLAGS);
}
