/*
 * structured.c — the request fields that constrain the output to a grammar:
 * OpenAI's response_format ({type: text | json_object | json_schema}) and
 * llama.cpp's json_schema and grammar, on chat and completions alike.
 *
 * Each is honoured (compiled into r->gen.grammar) or refused with a 400 that
 * names the field and, for a schema, the keyword at fault; none is ignored.
 * At most one may be given: two constraints would have to be intersected.
 */
#include "server/server_impl.h"

#include "grammar/grammar.h"
#include "grammar/schema.h"

#include <stdlib.h>
#include <string.h>

/* Compile GBNF text into the request (param names the field for errors). */
bool herd_structured_set_gbnf(api_request *r, const char *gbnf, size_t len, const char *param,
                              api_error *e)
{
    herd_grammar *g = NULL;
    if (herd_grammar_parse(gbnf, len, &g)) return herd_api_fail(e, 400, param, "%s", herd_errmsg());
    herd_grammar_free(r->gen.grammar);
    r->gen.grammar = g;
    return true;
}

/* A JSON Schema (any JSON value) into the request's grammar. */
bool herd_structured_set_schema(api_request *r, const json_t *schema, const char *param,
                                api_error *e)
{
    char *dump = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = dump ? strlen(dump) : 0;
    free(dump);
    if (n > HERD_SCHEMA_MAX_BYTES)
        return herd_api_fail(e, 400, param, "%s: the schema is %zu bytes; the limit is %u", param,
                             n, HERD_SCHEMA_MAX_BYTES);
    char *gbnf = NULL;
    if (herd_schema_to_gbnf(schema, &gbnf))
        return herd_api_fail(e, 400, param, "%s", herd_errmsg());
    bool ok = herd_structured_set_gbnf(r, gbnf, strlen(gbnf), param, e);
    free(gbnf);
    return ok;
}

/* Any JSON object: json_object mode. */
static bool any_object(api_request *r, const char *param, api_error *e)
{
    json_t *s = json_pack("{s:s}", "type", "object");
    bool ok = s ? herd_structured_set_schema(r, s, param, e)
                : herd_api_fail(e, 500, NULL, "out of memory");
    json_decref(s);
    return ok;
}

static bool response_format(const json_t *rf, api_request *r, api_error *e)
{
    const char *P = "response_format";
    if (!json_is_object(rf)) return herd_api_fail(e, 400, P, "'response_format' must be an object");
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!type)
        return herd_api_fail(e, 400, P,
                             "'response_format.type' must be text, json_object or json_schema");
    if (!strcmp(type, "text")) return true;
    if (!strcmp(type, "json_object")) {
        const json_t *schema = json_object_get(rf, "schema"); /* llama.cpp's extension */
        if (schema && !json_is_null(schema)) return herd_structured_set_schema(r, schema, P, e);
        return any_object(r, P, e);
    }
    if (strcmp(type, "json_schema"))
        return herd_api_fail(
            e, 400, P, "response_format type '%s' is unknown (text, json_object, json_schema)",
            type);
    const json_t *js = json_object_get(rf, "json_schema");
    if (!json_is_object(js))
        return herd_api_fail(e, 400, P, "'response_format.json_schema' must be an object");
    const json_t *name = json_object_get(js, "name"), *strict = json_object_get(js, "strict");
    if (name && !json_is_string(name))
        return herd_api_fail(e, 400, P, "'response_format.json_schema.name' must be a string");
    if (strict && !json_is_boolean(strict) && !json_is_null(strict))
        return herd_api_fail(e, 400, P, "'response_format.json_schema.strict' must be a boolean");
    const json_t *schema = json_object_get(js, "schema");
    if (!schema || json_is_null(schema)) return any_object(r, P, e); /* as OpenAI */
    return herd_structured_set_schema(r, schema, P, e);
}

bool herd_structured_parse(const json_t *o, api_request *r, api_error *e)
{
    const json_t *rf = json_object_get(o, "response_format");
    const json_t *js = json_object_get(o, "json_schema"), *gr = json_object_get(o, "grammar");
    if (rf && json_is_null(rf)) rf = NULL;
    if (js && json_is_null(js)) js = NULL;
    if (gr && json_is_null(gr)) gr = NULL;
    if (!!rf + !!js + !!gr > 1)
        return herd_api_fail(e, 400, gr ? "grammar" : "json_schema",
                             "give one of 'response_format', 'json_schema' and 'grammar'");
    if (rf) return response_format(rf, r, e);
    if (js) return herd_structured_set_schema(r, js, "json_schema", e);
    if (gr) {
        if (!json_is_string(gr))
            return herd_api_fail(e, 400, "grammar", "'grammar' must be a string");
        return herd_structured_set_gbnf(r, json_string_value(gr), json_string_length(gr), "grammar",
                                        e);
    }
    return true;
}
