/*
 * schema.c — the walk over a JSON Schema that writes its GBNF (schema.h).
 *
 * Every sub-schema becomes an expression; objects, arrays and references get
 * rules named after their path (root, root-name, root-items, ref-defs-X), so
 * the grammar reads like the schema. Keywords are checked against the list
 * this converter honours before anything is generated: an unknown one is an
 * error naming it and where it sits.
 */
#include "grammar/schema_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

static const char *const KNOWN[] = {
    "type",
    "nullable", /* OpenAPI's, as zod-to-json-schema writes it: true adds null */
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "$ref",
    "$defs",
    "definitions",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    /* annotations: no effect on what is valid */
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    NULL,
};

void *herd_conv_fail(conv *c, const char *path, const char *fmt, ...)
{
    if (c->st) return NULL;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = herd_seterr(HERD_E_INVALID, "json_schema: %s (at %s)", msg, *path ? path : "#");
    return NULL;
}

static void *oom(conv *c)
{
    if (!c->st) c->st = herd_seterr(HERD_E_NOMEM, "json_schema: out of memory");
    return NULL;
}

/* Rule names are [a-zA-Z0-9-]; anything else becomes '-'. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            *s = '-';
}

char *herd_conv_rule(conv *c, const char *name, const char *body)
{
    if (c->st) return NULL;
    size_t n = strlen(name) + 16;
    char *nm = malloc(n);
    if (!nm) return oom(c);
    snprintf(nm, n, "%.*s", (int)(n - 16), name);
    sanitize(nm);
    size_t base = strlen(nm);
    for (int i = 1;; i++) {
        const json_t *have = json_object_get(c->rules, nm);
        if (!have) break;
        if (!strcmp(json_string_value(have), body)) return nm;
        snprintf(nm + base, 16, "-%d", i);
    }
    if (json_object_size(c->rules) >= HERD_GRAMMAR_MAX_RULES) {
        free(nm);
        return herd_conv_fail(c, "", "more than %d rules", HERD_GRAMMAR_MAX_RULES);
    }
    if (json_object_set_new(c->rules, nm, json_string(body))) return free(nm), oom(c);
    return nm;
}

static char *path_join(const char *path, const char *key)
{
    size_t n = strlen(path) + strlen(key) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", path, key);
    return p;
}

static char *visit(conv *c, const json_t *s, const char *name, const char *path);

/* A sub-schema under key (and, for arrays, index i >= 0). */
static char *visit_sub(conv *c, const json_t *s, const char *name, const char *path,
                       const char *key, int i)
{
    char k[64], *nm, *pt;
    if (i >= 0)
        snprintf(k, sizeof k, "%s-%d", key, i);
    else
        snprintf(k, sizeof k, "%s", key);
    nm = malloc(strlen(name) + strlen(k) + 2);
    if (nm) sprintf(nm, "%s-%s", name, k);
    if (i >= 0) snprintf(k, sizeof k, "%s/%d", key, i);
    pt = path_join(path, k);
    char *r = nm && pt ? visit(c, s, nm, pt) : oom(c);
    free(nm), free(pt);
    return r;
}

/* The JSON text of a value as a GBNF literal. */
static char *literal_of(conv *c, const json_t *v)
{
    char *j = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!j) return oom(c);
    sbuf b = {0};
    herd_sb_literal(&b, j, strlen(j));
    free(j);
    return herd_sb_take(&b);
}

static char *alternatives(conv *c, const json_t *list, const char *name, const char *path,
                          const char *key)
{
    if (!json_is_array(list) || !json_array_size(list))
        return herd_conv_fail(c, path, "%s must be a non-empty array", key);
    sbuf b = {0};
    herd_sb_add(&b, "(");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *v = json_array_get(list, i);
        char *e =
            !strcmp(key, "enum") ? literal_of(c, v) : visit_sub(c, v, name, path, key, (int)i);
        if (!e) return free(b.p), NULL;
        herd_sb_printf(&b, "%s%s", i ? " | " : "", e);
        free(e);
    }
    herd_sb_add(&b, ")");
    return herd_sb_take(&b);
}

/* ------------------------------------------------------------- references */

static char *visit_ref(conv *c, const json_t *ref, const char *path)
{
    const char *r = json_string_value(ref);
    if (!r) return herd_conv_fail(c, path, "$ref must be a string");
    const json_t *known = json_object_get(c->refs, r);
    if (known) return strdup(json_string_value(known)); /* "#" is root, known from the start */
    const json_t *target = NULL;
    if (!strcmp(r, "#"))
        target = c->root;
    else if (!strncmp(r, "#/$defs/", 8))
        target = json_object_get(json_object_get(c->root, "$defs"), r + 8);
    else if (!strncmp(r, "#/definitions/", 14))
        target = json_object_get(json_object_get(c->root, "definitions"), r + 14);
    else
        return herd_conv_fail(c, path,
                              "$ref \"%s\" is not supported (only #, #/$defs/… and "
                              "#/definitions/…)",
                              r);
    if (!target) return herd_conv_fail(c, path, "$ref \"%s\" names nothing", r);
    char name[160];
    snprintf(name, sizeof name, "ref%.150s", r + 1);
    sanitize(name);
    /* The name is known before the body, so a recursive reference finds it. */
    char *nm = herd_conv_rule(c, name, "\"\"");
    if (!nm || json_object_set_new(c->refs, r, json_string(nm))) return free(nm), oom(c);
    char *body = visit(c, target, nm, r);
    if (body && json_object_set_new(c->rules, nm, json_string(body))) oom(c);
    free(body);
    return c->st ? free(nm), NULL : nm;
}

/* ------------------------------------------------------------- objects */

typedef struct {
    char **kv; /* rule name per member */
    int n;
} kvlist;

static char *object_member(conv *c, const char *key, const json_t *s, const char *name,
                           const char *path)
{
    json_t *k = json_string(key);
    char *lit = k ? literal_of(c, k) : oom(c);
    json_decref(k);
    char *ppath = lit ? path_join(path, "properties") : NULL;
    char *v = ppath ? visit_sub(c, s, name, ppath, key, -1) : NULL;
    free(ppath);
    sbuf b = {0};
    if (v) herd_sb_printf(&b, "%s space \":\" space %s space", lit, v);
    free(lit), free(v);
    if (c->st) return free(b.p), NULL;
    char *body = herd_sb_take(&b), *nm = NULL;
    if (body) {
        char *rn = malloc(strlen(name) + strlen(key) + 8);
        if (rn) sprintf(rn, "%s-%s-kv", name, key), nm = herd_conv_rule(c, rn, body);
        free(rn);
    }
    free(body);
    return nm;
}

static bool is_required(const json_t *req, const char *key)
{
    for (size_t i = 0; i < json_array_size(req); i++)
        if (json_is_string(json_array_get(req, i)) &&
            !strcmp(json_string_value(json_array_get(req, i)), key))
            return true;
    return false;
}

/* The body of an object: required members in order, then optional ones, each
 * at most once, then (if allowed) any number of additional members. */
static char *object_body(conv *c, const char **req, int nr, const char **opt, int no,
                         const char *add, const char *name)
{
    sbuf b = {0};
    herd_sb_add(&b, "\"{\" space ");
    if (nr) {
        for (int i = 0; i < nr; i++) herd_sb_printf(&b, "%s%s ", i ? "\",\" space " : "", req[i]);
        for (int i = 0; i < no; i++) herd_sb_printf(&b, "(\",\" space %s)? ", opt[i]);
        if (add) herd_sb_printf(&b, "(\",\" space %s)* ", add);
    } else if (no || add) {
        /* rest-i: what may follow when member i came first (rule per i keeps it linear) */
        char *next = NULL;
        char **rest = calloc((size_t)no + 1, sizeof *rest);
        if (!rest) return free(b.p), oom(c);
        for (int i = no; i >= 0 && !c->st; i--) {
            sbuf r = {0};
            if (i < no) herd_sb_printf(&r, "(\",\" space %s)? ", opt[i]);
            if (next)
                herd_sb_printf(&r, "%s", next);
            else if (add)
                herd_sb_printf(&r, "(\",\" space %s)*", add);
            else
                herd_sb_add(&r, "\"\"");
            char *body = herd_sb_take(&r), rn[200];
            snprintf(rn, sizeof rn, "%.150s-rest", name);
            rest[i] = body ? herd_conv_rule(c, rn, body) : oom(c);
            free(body);
            next = rest[i];
        }
        herd_sb_add(&b, "( ");
        for (int i = 0; i < no && !c->st; i++)
            herd_sb_printf(&b, "%s%s %s ", i ? "| " : "", opt[i], rest[i + 1]);
        if (add && !c->st) herd_sb_printf(&b, "%s%s %s ", no ? "| " : "", add, rest[no]);
        herd_sb_add(&b, ")? ");
        for (int i = 0; i <= no; i++) free(rest[i]);
        free(rest);
    }
    herd_sb_add(&b, "\"}\"");
    if (c->st) return free(b.p), NULL;
    return herd_sb_take(&b);
}

static char *visit_object(conv *c, const json_t *s, const char *name, const char *path)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *ap = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props))
        return herd_conv_fail(c, path, "properties must be an object");
    if (req && !json_is_array(req)) return herd_conv_fail(c, path, "required must be an array");
    if (ap && !json_is_boolean(ap) && !json_is_object(ap))
        return herd_conv_fail(c, path, "additionalProperties must be a boolean or a schema");
    if (!herd_conv_prim(c, "space")) return NULL;
    size_t np = json_object_size(props), nreq = json_array_size(req);
    const char **rq = calloc(np + nreq + 1, sizeof *rq), **op = calloc(np + 1, sizeof *op);
    const char **names = calloc(np + nreq + 1, sizeof *names);
    char **owned = calloc(np + nreq + 2, sizeof *owned);
    int nr = 0, no = 0, nn = 0, nown = 0;
    if (!rq || !op || !names || !owned) goto out;
    const char *key;
    const json_t *sub;
    json_object_foreach((json_t *)props, key, sub)
    {
        char *kv = object_member(c, key, sub, name, path);
        if (!kv) goto out;
        owned[nown++] = kv, names[nn++] = key;
        if (is_required(req, key))
            rq[nr++] = kv;
        else
            op[no++] = kv;
    }
    for (size_t i = 0; i < nreq; i++) { /* required but not described: any value */
        const char *k = json_string_value(json_array_get(req, i));
        if (!k) {
            herd_conv_fail(c, path, "required holds a non-string");
            goto out;
        }
        if (json_object_get(props, k)) continue;
        if (json_is_false(ap)) {
            herd_conv_fail(c, path, "\"%s\" is required but additionalProperties is false", k);
            goto out;
        }
        json_t *any = json_object();
        char *kv = any ? object_member(c, k, any, name, path) : oom(c);
        json_decref(any);
        if (!kv) goto out;
        owned[nown++] = kv, names[nn++] = k, rq[nr++] = kv;
    }
    char *add = NULL;
    bool open = json_is_object(ap) || json_is_true(ap) || (!props && !ap);
    if (open) {
        json_t *any = json_is_object(ap) ? NULL : json_object();
        char *k = herd_schema_not_strings(c, names, nn);
        char *v = k ? visit_sub(c, any ? any : ap, name, path, "additionalProperties", -1) : NULL;
        json_decref(any);
        sbuf b = {0};
        if (v) herd_sb_printf(&b, "%s space \":\" space %s space", k, v);
        free(k), free(v);
        char *body = c->st ? NULL : herd_sb_take(&b), rn[200];
        snprintf(rn, sizeof rn, "%.150s-additional-kv", name);
        if (body) add = owned[nown++] = herd_conv_rule(c, rn, body);
        free(body);
        if (!add) goto out;
    }
    char *r = object_body(c, rq, nr, op, no, add, name);
    for (int i = 0; i < nown; i++) free(owned[i]);
    free(rq), free(op), free(names), free(owned);
    return r;
out:
    for (int i = 0; owned && i < nown; i++) free(owned[i]);
    free(rq), free(op), free(names), free(owned);
    return c->st ? NULL : oom(c);
}

/* ------------------------------------------------------------- arrays */

static char *visit_array(conv *c, const json_t *s, const char *name, const char *path)
{
    const json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    long min = 0, max = -1;
    const json_t *mn = json_object_get(s, "minItems"), *mx = json_object_get(s, "maxItems");
    if (mn && (!json_is_integer(mn) || json_integer_value(mn) < 0 || json_integer_value(mn) > 1000))
        return herd_conv_fail(c, path, "minItems must be an integer in 0..1000");
    if (mx && (!json_is_integer(mx) || json_integer_value(mx) < 0 || json_integer_value(mx) > 1000))
        return herd_conv_fail(c, path, "maxItems must be an integer in 0..1000");
    if (mn) min = (long)json_integer_value(mn);
    if (mx) max = (long)json_integer_value(mx);
    if (max >= 0 && max < min) return herd_conv_fail(c, path, "maxItems is below minItems");
    if (!herd_conv_prim(c, "space")) return NULL;
    sbuf b = {0};
    herd_sb_add(&b, "\"[\" space ");
    if (prefix) { /* a tuple: exactly these, in order */
        if (!json_is_array(prefix)) return herd_conv_fail(c, path, "prefixItems must be an array");
        if (mn || mx || (items && !json_is_false(items)))
            return herd_conv_fail(c, path,
                                  "prefixItems with items, minItems or maxItems is not supported");
        for (size_t i = 0; i < json_array_size(prefix); i++) {
            char *e = visit_sub(c, json_array_get(prefix, i), name, path, "prefixItems", (int)i);
            if (!e) return free(b.p), NULL;
            herd_sb_printf(&b, "%s%s space ", i ? "\",\" space " : "", e);
            free(e);
        }
    } else if (max != 0) {
        json_t *any = items ? NULL : json_object();
        if (items && !json_is_object(items) && !json_is_boolean(items))
            return herd_conv_fail(c, path, "items must be a schema");
        char *e = visit_sub(c, any ? any : items, name, path, "items", -1);
        json_decref(any);
        if (!e) return free(b.p), NULL;
        /* item ("," item){min-1, max-1}, optional as a whole when min is 0 */
        long lo = min ? min - 1 : 0;
        herd_sb_printf(&b, "%s%s space (\",\" space %s space)", min ? "" : "(", e, e);
        if (max < 0)
            herd_sb_printf(&b, "{%ld,}", lo);
        else
            herd_sb_printf(&b, "{%ld,%ld}", lo, max - 1);
        herd_sb_add(&b, min ? " " : ")? ");
        free(e);
    }
    herd_sb_add(&b, "\"]\"");
    return herd_sb_take(&b);
}

/* ------------------------------------------------------------- the walk */

static char *visit_type(conv *c, const json_t *s, const char *t, const char *name, const char *path)
{
    if (!strcmp(t, "string")) return herd_schema_string(c, s, name, path);
    if (!strcmp(t, "integer")) return herd_schema_integer(c, s, path);
    if (!strcmp(t, "number")) {
        const char *bounds[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
        for (int i = 0; i < 4; i++)
            if (json_object_get(s, bounds[i]))
                return herd_conv_fail(
                    c, path, "%s on a number is not supported (integer bounds are)", bounds[i]);
    }
    if (!strcmp(t, "number") || !strcmp(t, "boolean") || !strcmp(t, "null")) {
        const char *r = herd_conv_prim(c, t);
        return r ? strdup(r) : NULL;
    }
    char *body = !strcmp(t, "object")  ? visit_object(c, s, name, path)
                 : !strcmp(t, "array") ? visit_array(c, s, name, path)
                                       : herd_conv_fail(c, path, "type \"%s\" is unknown", t);
    if (!body) return NULL;
    char *r = herd_conv_rule(c, name, body);
    free(body);
    return r;
}

/* The type a schema without "type" describes, from the keywords it has. */
static const char *implied_type(const json_t *s)
{
    if (json_object_get(s, "properties") || json_object_get(s, "additionalProperties") ||
        json_object_get(s, "required"))
        return "object";
    if (json_object_get(s, "items") || json_object_get(s, "prefixItems") ||
        json_object_get(s, "minItems") || json_object_get(s, "maxItems"))
        return "array";
    if (json_object_get(s, "pattern") || json_object_get(s, "format") ||
        json_object_get(s, "minLength") || json_object_get(s, "maxLength"))
        return "string";
    if (json_object_get(s, "minimum") || json_object_get(s, "maximum") ||
        json_object_get(s, "exclusiveMinimum") || json_object_get(s, "exclusiveMaximum"))
        return "integer";
    return NULL;
}

static bool check_keywords(conv *c, const json_t *s, const char *path)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)s, key, v)
    {
        int i = 0;
        while (KNOWN[i] && strcmp(KNOWN[i], key)) i++;
        if (!KNOWN[i]) return herd_conv_fail(c, path, "%s is not supported", key), false;
    }
    return true;
}

static char *visit(conv *c, const json_t *s, const char *name, const char *path)
{
    if (c->st) return NULL;
    if (json_is_true(s)) return strdup(herd_conv_prim(c, "value") ? "value" : "");
    if (!json_is_object(s)) return herd_conv_fail(c, path, "a schema must be an object or true");
    if (!check_keywords(c, s, path)) return NULL;
    if (++c->depth > MAX_DEPTH) return herd_conv_fail(c, path, "nested deeper than %d", MAX_DEPTH);
    const json_t *t = json_object_get(s, "type"), *v;
    char *r = NULL;
    if ((v = json_object_get(s, "$ref")))
        r = visit_ref(c, v, path);
    else if ((v = json_object_get(s, "const")))
        r = literal_of(c, v);
    else if ((v = json_object_get(s, "enum")))
        r = alternatives(c, v, name, path, "enum");
    else if ((v = json_object_get(s, "anyOf")))
        r = alternatives(c, v, name, path, "anyOf");
    else if ((v = json_object_get(s, "oneOf")))
        r = alternatives(c, v, name, path, "oneOf");
    else if (json_is_string(t))
        r = visit_type(c, s, json_string_value(t), name, path);
    else if (json_is_array(t) && json_array_size(t)) {
        sbuf b = {0};
        herd_sb_add(&b, "(");
        for (size_t i = 0; i < json_array_size(t) && !c->st; i++) {
            const char *ti = json_string_value(json_array_get(t, i));
            char *e =
                ti ? visit_type(c, s, ti, name, path) : herd_conv_fail(c, path, "bad type list");
            if (e) herd_sb_printf(&b, "%s%s", i ? " | " : "", e);
            free(e);
        }
        herd_sb_add(&b, ")");
        r = c->st ? (free(b.p), NULL) : herd_sb_take(&b);
    } else if (t) {
        r = herd_conv_fail(c, path, "type must be a string or a list of strings");
    } else if (implied_type(s)) {
        r = visit_type(c, s, implied_type(s), name, path);
    } else {
        r = herd_conv_prim(c, "value") ? strdup("value") : NULL;
    }
    c->depth--;
    const json_t *nullable = json_object_get(s, "nullable");
    if (nullable && !json_is_boolean(nullable))
        herd_conv_fail(c, path, "nullable must be a boolean");
    if (r && json_is_true(nullable) && herd_conv_prim(c, "null")) {
        sbuf b = {0};
        herd_sb_printf(&b, "(%s | null)", r);
        free(r);
        r = herd_sb_take(&b);
    }
    if (!r) oom(c);
    return c->st ? (free(r), NULL) : r;
}

/* ------------------------------------------------------------- API */

static char *write_rules(conv *c)
{
    sbuf b = {0};
    herd_sb_printf(&b, "root ::= %s\n", json_string_value(json_object_get(c->rules, "root")));
    const char *key;
    json_t *v;
    json_object_foreach(c->rules, key, v)
    {
        if (strcmp(key, "root")) herd_sb_printf(&b, "%s ::= %s\n", key, json_string_value(v));
    }
    return herd_sb_take(&b);
}

herd_status herd_schema_to_gbnf(const json_t *schema, char **gbnf)
{
    if (!gbnf) return herd_seterr(HERD_E_INVALID, "json_schema: out is NULL");
    *gbnf = NULL;
    conv c = {.rules = json_object(), .refs = json_object(), .root = schema};
    if (!c.rules || !c.refs) oom(&c);
    /* root is named first, so "$ref": "#" refers to it */
    if (!c.st && json_object_set_new(c.refs, "#", json_string("root"))) oom(&c);
    if (!c.st && json_object_set_new(c.rules, "root", json_string("\"\""))) oom(&c);
    char *body = c.st ? NULL : visit(&c, schema, "root", "#");
    if (body && !c.st && json_object_set_new(c.rules, "root", json_string(body))) oom(&c);
    free(body);
    if (!c.st && !(*gbnf = write_rules(&c))) oom(&c);
    json_decref(c.rules);
    json_decref(c.refs);
    return c.st;
}

herd_status herd_schema_text_to_gbnf(const char *text, size_t len, char **gbnf)
{
    if (gbnf) *gbnf = NULL;
    if (!text) return herd_seterr(HERD_E_INVALID, "json_schema: no text");
    if (len > HERD_SCHEMA_MAX_BYTES)
        return herd_seterr(HERD_E_INVALID, "json_schema: larger than %u bytes",
                           HERD_SCHEMA_MAX_BYTES);
    json_error_t err;
    json_t *s = json_loadb(text, len, JSON_DECODE_ANY, &err);
    if (!s)
        return herd_seterr(HERD_E_INVALID, "json_schema: not JSON: %s (line %d, column %d)",
                           err.text, err.line, err.column);
    herd_status st = herd_schema_to_gbnf(s, gbnf);
    json_decref(s);
    return st;
}
