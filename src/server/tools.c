/*
 * tools.c — OpenAI tool calls: tools, tool_choice and parallel_tool_calls in,
 * message.tool_calls (and delta.tool_calls) out.
 *
 * How a model writes a call depends on its family, which the chat template
 * tells (herd_tools_detect, as llama.cpp's common/chat.cpp decides):
 *
 *   hermes   Hermes 2 Pro, Qwen 2.5, Qwen 3:  <tool_call>\n{"name": …, "arguments":
 * {…}}\n</tool_call> llama3   Llama 3.1 / 3.2:                 {"name": …, "parameters": {…}}
 * (after <|python_tag|>) mistral  Mistral Nemo:                    [TOOL_CALLS][{"name": …,
 * "arguments": {…}, "id": …}] generic  any other template:              {"tool_call": {"name": …,
 * "arguments": {…}}} or {"tool_calls": […]} or {"response": "…"}
 *
 * Templates with tool support render the tools themselves. For the others
 * (generic) the tools and the answer's JSON shape go into the system message,
 * the output is always constrained to that JSON (as llama.cpp does), and tool
 * messages and earlier calls are given to the template as plain text.
 *
 * tool_choice "required" or a named function constrains the output with a
 * grammar: the family's wrapper around calls whose arguments follow each
 * tool's parameter schema. "auto" leaves the model free (except generic) and
 * parses what it wrote; "none" renders no tools and parses nothing.
 */
#define _GNU_SOURCE /* memmem */
#include "server/server_impl.h"

#include "grammar/grammar.h"
#include "grammar/schema.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int herd_tools_detect(const char *template_src)
{
    if (!template_src) return TOOLS_GENERIC;
    if (strstr(template_src, "<tool_call>")) return TOOLS_HERMES;
    if (strstr(template_src, "[TOOL_CALLS]")) return TOOLS_MISTRAL;
    if (strstr(template_src, "<|python_tag|>") || strstr(template_src, "ipython"))
        return TOOLS_LLAMA3;
    return TOOLS_GENERIC;
}

/* ------------------------------------------------------------- request */

static bool check_tool(const json_t *t, size_t i, api_error *e)
{
    const json_t *f = json_object_get(t, "function");
    const char *type = json_string_value(json_object_get(t, "type"));
    if (!json_is_object(t) || !type || strcmp(type, "function") || !json_is_object(f))
        return herd_api_fail(e, 400, "tools",
                             "tools[%zu] must be {\"type\": \"function\", \"function\": {…}}", i);
    const json_t *name = json_object_get(f, "name"), *params = json_object_get(f, "parameters");
    if (!json_is_string(name) || !json_string_length(name) || json_string_length(name) > 64)
        return herd_api_fail(e, 400, "tools",
                             "tools[%zu].function.name must be a string of 1-64 bytes", i);
    if (params && !json_is_object(params) && !json_is_null(params))
        return herd_api_fail(e, 400, "tools",
                             "tools[%zu].function.parameters must be a JSON Schema", i);
    return true;
}

static const json_t *find_tool(const json_t *tools, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        const char *n = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (n && !strcmp(n, name)) return t;
    }
    return NULL;
}

bool herd_tools_parse_request(const json_t *o, api_request *r, api_error *e)
{
    const json_t *tools = json_object_get(o, "tools"), *tc = json_object_get(o, "tool_choice");
    const json_t *par = json_object_get(o, "parallel_tool_calls");
    r->tool_choice = TOOL_CHOICE_AUTO;
    r->parallel = true; /* OpenAI's default */
    if (par && !json_is_null(par)) {
        if (!json_is_boolean(par))
            return herd_api_fail(e, 400, "parallel_tool_calls",
                                 "'parallel_tool_calls' must be a boolean");
        r->parallel = json_is_true(par);
    }
    if (tools && json_is_null(tools)) tools = NULL;
    if (tools) {
        if (!json_is_array(tools))
            return herd_api_fail(e, 400, "tools", "'tools' must be an array");
        for (size_t i = 0; i < json_array_size(tools); i++)
            if (!check_tool(json_array_get(tools, i), i, e)) return false;
        if (!json_array_size(tools)) tools = NULL;
    }
    if (tc && !json_is_null(tc)) {
        const char *s = json_string_value(tc);
        const json_t *fn = json_object_get(tc, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (s && !strcmp(s, "none"))
            r->tool_choice = TOOL_CHOICE_NONE;
        else if (s && !strcmp(s, "auto"))
            r->tool_choice = TOOL_CHOICE_AUTO;
        else if (s && !strcmp(s, "required"))
            r->tool_choice = TOOL_CHOICE_REQUIRED;
        else if (json_is_object(tc) && name) {
            if (!tools || !find_tool(tools, name))
                return herd_api_fail(e, 400, "tool_choice",
                                     "tool_choice names '%s', which is not in 'tools'", name);
            r->tool_choice = TOOL_CHOICE_NAMED;
            snprintf(r->tool_name, sizeof r->tool_name, "%s", name);
        } else
            return herd_api_fail(
                e, 400, "tool_choice",
                "'tool_choice' must be none, auto, required or {\"type\": \"function\", "
                "\"function\": {\"name\": …}}");
        if (!tools && r->tool_choice != TOOL_CHOICE_NONE && r->tool_choice != TOOL_CHOICE_AUTO)
            return herd_api_fail(e, 400, "tool_choice", "'tool_choice' needs 'tools'");
    }
    r->tools = tools ? json_incref((json_t *)tools) : NULL;
    return true;
}

/* ------------------------------------------------------------- grammar */

/* The schema of one call: {name: const, <args>: parameters} (+ id for Mistral). */
static json_t *call_schema(const json_t *tool, const char *args_key, bool with_id)
{
    const json_t *f = json_object_get(tool, "function");
    const json_t *params = json_object_get(f, "parameters");
    json_t *args = json_is_object(params) ? json_incref((json_t *)params)
                                          : json_pack("{s:s}", "type", "object");
    json_t *props =
        json_pack("{s:{s:O},s:o}", "name", "const", json_object_get(f, "name"), args_key, args);
    json_t *req = json_pack("[s,s]", "name", args_key);
    if (with_id) {
        json_object_set_new(
            props, "id", json_pack("{s:s,s:s}", "type", "string", "pattern", "^[a-zA-Z0-9]{9}$"));
        json_array_append_new(req, json_string("id"));
    }
    return json_pack("{s:s,s:o,s:o,s:b}", "type", "object", "properties", props, "required", req,
                     "additionalProperties", 0);
}

/* anyOf over the tools the choice allows. */
static json_t *calls_schema(const api_request *r, const char *args_key, bool with_id)
{
    json_t *any = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(r->tools, i, t)
    {
        const char *n = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (r->tool_choice == TOOL_CHOICE_NAMED && strcmp(n, r->tool_name)) continue;
        json_array_append_new(any, call_schema(t, args_key, with_id));
    }
    return json_pack("{s:o}", "anyOf", any);
}

/* GBNF: root ::= wrapper around tcall, tcall from the schema (stolen). */
static bool set_wrapped(api_request *r, json_t *schema, const char *root, api_error *e)
{
    char *gbnf = NULL;
    herd_status st = herd_schema_to_gbnf(schema, &gbnf);
    json_decref(schema);
    if (st) return herd_api_fail(e, 400, "tools", "%s", herd_errmsg());
    size_t n = strlen(gbnf) + strlen(root) + 32;
    char *all = malloc(n);
    bool ok = all != NULL;
    if (ok) { /* the schema's root becomes tcall */
        snprintf(all, n, "root ::= %s\ntcall%s", root, gbnf + 4);
        ok = herd_structured_set_gbnf(r, all, strlen(all), "tools", e);
    } else {
        herd_api_fail(e, 500, NULL, "out of memory");
    }
    free(all);
    free(gbnf);
    return ok;
}

static bool generic_schema(api_request *r, api_error *e)
{
    json_t *calls = calls_schema(r, "arguments", false), *shape;
    if (r->parallel)
        shape = json_pack("{s:s,s:{s:{s:s,s:o,s:i}},s:[s],s:b}", "type", "object", "properties",
                          "tool_calls", "type", "array", "items", calls, "minItems", 1, "required",
                          "tool_calls", "additionalProperties", 0);
    else
        shape = json_pack("{s:s,s:{s:o},s:[s],s:b}", "type", "object", "properties", "tool_call",
                          calls, "required", "tool_call", "additionalProperties", 0);
    json_t *schema = shape;
    if (r->tool_choice == TOOL_CHOICE_AUTO)
        schema = json_pack("{s:[o,{s:s,s:{s:{s:s}},s:[s],s:b}]}", "anyOf", shape, "type", "object",
                           "properties", "response", "type", "string", "required", "response",
                           "additionalProperties", 0);
    char *text = json_dumps(schema, JSON_COMPACT);
    bool ok = herd_structured_set_schema(r, schema, "tools", e);
    /* The system message tells the shape (templates without tools know none). */
    char *tools = json_dumps(r->tools, JSON_COMPACT);
    size_t n = (text ? strlen(text) : 0) + (tools ? strlen(tools) : 0) + 512;
    char *sys = malloc(n);
    if (ok && sys && text && tools) {
        snprintf(sys, n,
                 "You can call any of the following tools to satisfy the user's requests: %s\n\n"
                 "Respond in JSON format, %s, following this schema: %s",
                 tools,
                 r->tool_choice == TOOL_CHOICE_AUTO
                     ? "either with `tool_call` (a request to call tools) or with `response` (a "
                       "reply to the user's request)"
                     : "with a request to call tools",
                 text);
        json_t *m0 = json_array_get(r->messages, 0);
        const char *role = json_string_value(json_object_get(m0, "role"));
        if (role && !strcmp(role, "system")) {
            const char *c = json_string_value(json_object_get(m0, "content"));
            size_t l = (c ? strlen(c) : 0) + strlen(sys) + 4;
            char *both = malloc(l);
            if (both) snprintf(both, l, "%s\n\n%s", c ? c : "", sys);
            json_object_set_new(m0, "content", json_string(both ? both : sys));
            free(both);
        } else {
            json_array_insert_new(r->messages, 0,
                                  json_pack("{s:s,s:s}", "role", "system", "content", sys));
        }
    }
    free(sys), free(text), free(tools);
    json_decref(schema);
    return ok;
}

/* ------------------------------------------------------------- history */

/* Earlier calls: arguments as objects for templates that render them; for
 * generic templates, calls and tool results as text the template shows. */
static void rewrite_history(api_request *r, int fmt)
{
    size_t i;
    json_t *m;
    json_array_foreach(r->messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *calls = json_object_get(m, "tool_calls");
        size_t k;
        json_t *c;
        json_array_foreach(calls, k, c)
        {
            json_t *f = json_object_get(c, "function");
            const char *a = json_string_value(json_object_get(f, "arguments"));
            json_t *obj = a ? json_loads(a, JSON_DECODE_ANY, NULL) : NULL;
            if (obj) json_object_set_new(f, "arguments", obj);
        }
        if (fmt != TOOLS_GENERIC) continue;
        if (json_array_size(calls)) {
            json_t *list = json_array();
            json_array_foreach(calls, k, c) json_array_append(list, json_object_get(c, "function"));
            json_t *wrap = json_pack("{s:o}", "tool_calls", list);
            char *s = json_dumps(wrap, JSON_COMPACT);
            json_decref(wrap);
            json_object_set_new(m, "content", json_string(s ? s : ""));
            json_object_del(m, "tool_calls");
            free(s);
        } else if (role && !strcmp(role, "tool")) {
            const json_t *content = json_object_get(m, "content");
            json_t *resp =
                json_pack("{s:{s:O}}", "tool_response", "content", content ? content : json_null());
            char *s = json_dumps(resp, JSON_COMPACT);
            json_decref(resp);
            json_object_set_new(m, "role", json_string("user"));
            json_object_set_new(m, "content", json_string(s ? s : ""));
            free(s);
        }
    }
}

bool herd_tools_prepare(herd_server *srv, api_request *r, api_error *e)
{
    int fmt = srv->tool_format ? srv->tool_format : TOOLS_GENERIC;
    rewrite_history(r, fmt);
    if (!r->tools || r->tool_choice == TOOL_CHOICE_NONE) {
        if (r->extra) json_object_del(r->extra, "tools");
        return true;
    }
    if (r->gen.grammar)
        return herd_api_fail(e, 400, "tools",
                             "tools cannot be combined with response_format, "
                             "json_schema or grammar");
    r->gen.tool_format = fmt;
    r->gen.tool_parallel = r->parallel;
    if (fmt == TOOLS_GENERIC) {
        if (r->extra) json_object_del(r->extra, "tools"); /* described in the system message */
        return generic_schema(r, e);
    }
    if (r->tool_choice == TOOL_CHOICE_AUTO) return true; /* free text, parsed afterwards */
    if (fmt == TOOLS_HERMES)
        return set_wrapped(r, calls_schema(r, "arguments", false),
                           r->parallel ? "tc (\"\\n\"? tc)*\ntc ::= \"<tool_call>\\n\" tcall "
                                         "\"\\n</tool_call>\""
                                       : "\"<tool_call>\\n\" tcall \"\\n</tool_call>\"",
                           e);
    if (fmt == TOOLS_LLAMA3)
        return set_wrapped(r, calls_schema(r, "parameters", false), "tcall", e);
    json_t *arr = json_pack("{s:s,s:o,s:i}", "type", "array", "items",
                            calls_schema(r, "arguments", true), "minItems", 1);
    if (!r->parallel) json_object_set_new(arr, "maxItems", json_integer(1));
    return set_wrapped(r, arr, "\"[TOOL_CALLS]\" tcall", e);
}

/* ------------------------------------------------------------- output */

/* An OpenAI tool call from a name and arguments (any JSON: sent as text). */
static json_t *make_call(const char *name, const json_t *args, int fmt, const json_t *id)
{
    static atomic_uint counter;
    char idbuf[32];
    if (json_is_string(id))
        snprintf(idbuf, sizeof idbuf, "%s", json_string_value(id));
    else if (fmt == TOOLS_MISTRAL) /* Mistral's templates want 9 alphanumerics */
        snprintf(idbuf, sizeof idbuf, "c%08u", atomic_fetch_add(&counter, 1) % 100000000u);
    else
        snprintf(idbuf, sizeof idbuf, "call_%u", atomic_fetch_add(&counter, 1));
    char *a = args ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_t *c = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", idbuf, "type", "function", "function",
                          "name", name, "arguments", a ? a : "{}");
    free(a);
    return c;
}

/* {"name", "arguments"|"parameters"} into calls; false if it is not a call. */
static bool add_call(json_t *calls, const json_t *o, int fmt)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    const json_t *args = json_object_get(o, "arguments");
    if (!args) args = json_object_get(o, "parameters");
    if (!name || !json_is_object(o)) return false;
    json_array_append_new(calls, make_call(name, args, fmt, json_object_get(o, "id")));
    return true;
}

static json_t *load(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) s++, n--;
    return json_loadb(s, n, JSON_DISABLE_EOF_CHECK, NULL);
}

static char *trimmed(const char *s, size_t n)
{
    while (n && strchr(" \n\t\r", *s)) s++, n--;
    while (n && strchr(" \n\t\r", s[n - 1])) n--;
    return n ? strndup(s, n) : NULL;
}

/* The calls in text (NULL if none) and the text around them (*content). */
json_t *herd_tools_parse_output(int fmt, const char *text, size_t len, char **content)
{
    *content = NULL;
    json_t *calls = json_array();
    const char *end = text + len;
    if (fmt == TOOLS_GENERIC) {
        json_t *o = load(text, len);
        const json_t *one = json_object_get(o, "tool_call"),
                     *many = json_object_get(o, "tool_calls");
        const char *resp = json_string_value(json_object_get(o, "response"));
        size_t i;
        json_t *c;
        if (one) add_call(calls, one, fmt);
        json_array_foreach(many, i, c) add_call(calls, c, fmt);
        if (resp)
            *content = strdup(resp);
        else if (!one && !many)
            *content = trimmed(text, len);
        json_decref(o);
    } else if (fmt == TOOLS_HERMES) {
        const char *at = memmem(text, len, "<tool_call>", 11);
        *content = trimmed(text, at ? (size_t)(at - text) : len);
        while (at) {
            const char *body = at + 11;
            const char *close = memmem(body, (size_t)(end - body), "</tool_call>", 12);
            json_t *o = load(body, close ? (size_t)(close - body) : (size_t)(end - body));
            add_call(calls, o, fmt);
            json_decref(o);
            at = close ? memmem(close, (size_t)(end - close), "<tool_call>", 11) : NULL;
        }
    } else if (fmt == TOOLS_MISTRAL) {
        const char *at = memmem(text, len, "[TOOL_CALLS]", 12);
        *content = trimmed(text, at ? (size_t)(at - text) : len);
        json_t *a = at ? load(at + 12, (size_t)(end - at - 12)) : NULL;
        size_t i;
        json_t *c;
        json_array_foreach(a, i, c) add_call(calls, c, fmt);
        json_decref(a);
    } else { /* llama3: the whole answer is one call, maybe after <|python_tag|> */
        const char *s = text;
        const char *tag = memmem(text, len, "<|python_tag|>", 14);
        if (tag) s = tag + 14;
        json_t *o = load(s, (size_t)(end - s));
        if (!(o && add_call(calls, o, fmt))) *content = trimmed(text, len);
        json_decref(o);
    }
    if (!json_array_size(calls)) {
        json_decref(calls);
        if (!*content && fmt != TOOLS_GENERIC) *content = trimmed(text, len);
        return NULL;
    }
    return calls;
}
