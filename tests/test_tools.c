/*
 * test_tools.c — tool calls: the family a template belongs to, the calls read
 * back from each family's output (with the text beside them, and what is not
 * a call left as text), and the checks of tools / tool_choice in a request.
 */
#include "helpers.h"
#include "server/server_impl.h"

#include <stdlib.h>
#include <string.h>

/* Parse text in format fmt: want_calls calls, the first named name with
 * arguments args (JSON text), and content (NULL: none). */
static void check_parse(int fmt, const char *text, int want_calls, const char *name,
                        const char *args, const char *content)
{
    char *got = NULL;
    json_t *calls = herd_tools_parse_output(fmt, text, strlen(text), &got);
    CHECKF((int)json_array_size(calls) == want_calls, "%s: %zu calls, want %d", text,
           json_array_size(calls), want_calls);
    if (want_calls && json_array_size(calls)) {
        json_t *f = json_object_get(json_array_get(calls, 0), "function");
        CHECKF(!strcmp(json_string_value(json_object_get(f, "name")), name), "%s: name", text);
        json_t *a = json_loads(json_string_value(json_object_get(f, "arguments")), 0, NULL);
        json_t *w = json_loads(args, 0, NULL);
        CHECKF(a && w && json_equal(a, w), "%s: arguments %s", text,
               json_string_value(json_object_get(f, "arguments")));
        json_decref(a), json_decref(w);
        const char *id = json_string_value(json_object_get(json_array_get(calls, 0), "id"));
        CHECK(id && *id);
        if (fmt == TOOLS_MISTRAL && !strstr(text, "\"id\"")) CHECK(strlen(id) == 9);
    }
    CHECKF(content ? got && !strcmp(got, content) : !got, "%s: content \"%s\", want \"%s\"", text,
           got ? got : "(null)", content ? content : "(null)");
    free(got);
    json_decref(calls);
}

static void test_parse(void)
{
    check_parse(TOOLS_HERMES,
                "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>", 1, "f",
                "{\"x\":1}", NULL);
    check_parse(TOOLS_HERMES,
                "Let me look.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\n"
                "<tool_call>{\"name\": \"g\", \"arguments\": {\"y\": \"z\"}}</tool_call>",
                2, "f", "{}", "Let me look.");
    check_parse(TOOLS_HERMES, "no call here", 0, NULL, NULL, "no call here");
    check_parse(TOOLS_HERMES, "<tool_call>{\"name\": ", 0, NULL, NULL, "<tool_call>{\"name\":");
    check_parse(TOOLS_LLAMA3, "{\"name\": \"f\", \"parameters\": {\"a\": [1]}}", 1, "f",
                "{\"a\":[1]}", NULL);
    check_parse(TOOLS_LLAMA3, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}", 1, "f", "{}",
                NULL);
    check_parse(TOOLS_LLAMA3, "It is sunny.", 0, NULL, NULL, "It is sunny.");
    check_parse(TOOLS_MISTRAL, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"q\": true}}]", 1,
                "f", "{\"q\":true}", NULL);
    check_parse(TOOLS_MISTRAL,
                "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}, \"id\": \"abcdefghi\"}, "
                "{\"name\": \"g\", \"arguments\": {}}]",
                2, "f", "{}", NULL);
    check_parse(TOOLS_GENERIC, "{\"tool_call\": {\"name\": \"f\", \"arguments\": {\"n\": 2}}}", 1,
                "f", "{\"n\":2}", NULL);
    check_parse(TOOLS_GENERIC,
                "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", "
                "\"arguments\": {}}]}",
                2, "f", "{}", NULL);
    check_parse(TOOLS_GENERIC, "{\"response\": \"Hello there\"}", 0, NULL, NULL, "Hello there");
    check_parse(TOOLS_GENERIC, " plain words ", 0, NULL, NULL, "plain words");
}

static void test_detect(void)
{
    CHECK(herd_tools_detect(NULL) == TOOLS_GENERIC);
    CHECK(herd_tools_detect("{{ '<tool_call>' }}") == TOOLS_HERMES);
    CHECK(herd_tools_detect("[TOOL_CALLS]") == TOOLS_MISTRAL);
    CHECK(herd_tools_detect("<|start_header_id|>ipython") == TOOLS_LLAMA3);
    CHECK(herd_tools_detect("{% for m in messages %}{{ m.content }}{% endfor %}") == TOOLS_GENERIC);
    char path[512];
    const char *files[] = {"hermes-2-pro-tool-use", "qwen2.5-instruct",           "qwen3",
                           "llama-3.1-instruct",    "mistral-nemo-instruct-2407", "zephyr"};
    const int want[] = {TOOLS_HERMES, TOOLS_HERMES,  TOOLS_HERMES,
                        TOOLS_LLAMA3, TOOLS_MISTRAL, TOOLS_GENERIC};
    for (int i = 0; i < 6; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "chat/templates/%s.jinja", files[i]);
        if (!test_shared(rel, path, sizeof path)) continue;
        char *src = test_read_file(path, NULL);
        CHECKF(src && herd_tools_detect(src) == want[i], "%s: family %d", files[i],
               src ? herd_tools_detect(src) : -1);
        free(src);
    }
}

static bool request(const char *body, api_error *e, api_request *r)
{
    json_t *o = json_loads(body, 0, NULL);
    memset(r, 0, sizeof *r);
    bool ok = o && herd_tools_parse_request(o, r, e);
    json_decref(o);
    return ok;
}

static void test_request(void)
{
    api_error e;
    api_request r;
    const char *tool = "{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}";
    char body[512];
    snprintf(body, sizeof body, "{\"tools\":[%s],\"tool_choice\":\"required\"}", tool);
    CHECK(request(body, &e, &r) && r.tool_choice == TOOL_CHOICE_REQUIRED && r.parallel);
    json_decref(r.tools);
    snprintf(
        body, sizeof body,
        "{\"tools\":[%s],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
        "\"parallel_tool_calls\":false}",
        tool);
    CHECK(request(body, &e, &r) && r.tool_choice == TOOL_CHOICE_NAMED &&
          !strcmp(r.tool_name, "f") && !r.parallel);
    json_decref(r.tools);
    const char *bad[] = {
        "{\"tools\":{}}",
        "{\"tools\":[{\"type\":\"retrieval\"}]}",
        "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"\"}}]}",
        "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":3}}]}",
        "{\"tool_choice\":\"required\"}",
        "{\"tool_choice\":\"sometimes\"}",
        "{\"parallel_tool_calls\":\"yes\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECKF(!request(bad[i], &e, &r) && e.status == 400, "%s should be a 400", bad[i]);
        json_decref(r.tools);
    }
    snprintf(
        body, sizeof body,
        "{\"tools\":[%s],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}",
        tool);
    CHECK(!request(body, &e, &r) && !strcmp(e.param, "tool_choice"));
    json_decref(r.tools);
}

int main(void)
{
    test_parse();
    test_detect();
    test_request();
    return test_report();
}
