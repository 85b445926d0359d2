/*
 * fuzz_jinja.c — libFuzzer target for the chat-template renderer: the lexer,
 * the parser, and rendering under the render budget (chat.h).
 *
 * Built with the other targets (`make fuzz-jinja` runs it alone; the fuzz
 * build lowers HERD_CHAT_MAX_STEPS to 100,000 so runaway inputs stop sooner).
 *
 * An input is a template, a NUL byte, then a JSON object shaped like a line of
 * ../shared/chat/cases.jsonl: {"messages": [...], "extra": {...}, "bos_token":
 * ..., "eos_token": ..., "add_generation_prompt": ...}. Without the NUL (or
 * with JSON that does not parse) the messages are one user turn. The seeds in
 * tests/fuzz/corpus/jinja are every template of ../shared/chat/templates with
 * its largest case (tests/fuzz/jinja-seeds.sh made them).
 *
 * Properties checked, beyond "no crash, no bad read, no leak, no hang":
 *   - a failed parse or render returns no text and leaves a message;
 *   - a successful render is NUL-terminated at its length, within
 *     HERD_CHAT_MAX_OUTPUT, and reports no limit hit;
 *   - a failed render that hit a limit says so in its message;
 *   - rendering the same parsed template twice gives the same result (the
 *     template is immutable and renders are independent).
 */
#include "chat/chat.h"

#include <stdlib.h>
#include <string.h>

static const char *str_or_null(const json_t *j)
{
    return json_is_string(j) ? json_string_value(j) : NULL;
}

/* One render; aborts on a broken property. Returns the text (or NULL). */
static char *render_once(const herd_chat_template *t, const herd_chat_input *in, herd_status *st,
                         size_t *len)
{
    char *out = (char *)1;
    bool raised = false;
    *st = herd_chat_template_render(t, in, &out, len, &raised);
    herd_chat_usage u;
    herd_chat_last_usage(&u);
    if (*st) {
        if (out != NULL || (!raised && !*herd_errmsg())) abort();
        if (u.limit && !strstr(herd_errmsg(), herd_chat_limit_name(u.limit))) abort();
        return NULL;
    }
    if (!out || out[*len] != 0 || *len > HERD_CHAT_MAX_OUTPUT || u.limit || u.output != *len)
        abort();
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t tn = nul ? (size_t)(nul - data) : size;
    char *src = malloc(tn + 1);
    if (!src) return 0;
    memcpy(src, data, tn);
    src[tn] = 0;

    json_t *req = nul ? json_loadb((const char *)nul + 1, size - tn - 1, 0, NULL) : NULL;
    json_t *msgs = json_is_object(req) ? json_object_get(req, "messages") : NULL;
    json_t *fallback = json_loads("[{\"role\": \"user\", \"content\": \"Hello!\"}]", 0, NULL);
    herd_chat_input in = {
        .messages = json_is_array(msgs) ? msgs : fallback,
        .extra = json_is_object(req) ? json_object_get(req, "extra") : NULL,
        .bos_token = str_or_null(json_object_get(req, "bos_token")),
        .eos_token = str_or_null(json_object_get(req, "eos_token")),
        .add_generation_prompt = !json_is_false(json_object_get(req, "add_generation_prompt")),
    };
    if (in.extra && !json_is_object(in.extra)) in.extra = NULL;

    herd_chat_template *t = NULL;
    herd_status st = herd_chat_template_parse(src, &t);
    if (st) {
        if (t || !*herd_errmsg()) abort();
    } else {
        herd_status st1, st2;
        size_t n1 = 0, n2 = 0;
        char *a = render_once(t, &in, &st1, &n1);
        char *b = render_once(t, &in, &st2, &n2);
        if (st1 != st2 || n1 != n2 || (a && memcmp(a, b, n1))) abort();
        free(a);
        free(b);
        herd_chat_template_free(t);
    }
    json_decref(fallback);
    json_decref(req);
    free(src);
    return 0;
}
