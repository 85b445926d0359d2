/*
 * named.c — built-in chat formats for model files that carry no template.
 *
 * Eighteen formats are llama.cpp's (src/llama-chat.cpp, llm_chat_apply_template)
 * with its names and byte-for-byte renderings, quirks included: llama2 puts
 * the system prompt in the first [INST] without <<SYS>>, the mistral and
 * llama2 families ignore add_generation_prompt, command-r / llama3 / gemma
 * trim ASCII whitespace. Three come from model cards: phi-2 ("Instruct: …\n
 * Output:"), falcon (Falcon-180B-Chat's "User: …\nFalcon:") and stablelm-alpha
 * (<|USER|>…<|ASSISTANT|>). None of them uses bos/eos tokens: the tokenizer
 * adds BOS.
 *
 * herd_chat_named_pick() chooses one from general.architecture and
 * general.name with a short first-match table.
 */
#include "chat/jinja.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct msg {
    const char *role, *content;
    size_t len;
} msg;

typedef void (*format_fn)(jbuf *b, const msg *m, size_t n, bool gen, int variant);

static bool is(const msg *m, const char *role)
{
    return !strcmp(m->role, role);
}
static void put(jbuf *b, const msg *m)
{
    herd_jbuf_put(b, m->content, m->len);
}

/* llama.cpp's trim(): ASCII isspace at both ends. */
static void put_trim(jbuf *b, const msg *m)
{
    size_t a = 0, z = m->len;
    while (a < z && isspace((unsigned char)m->content[a])) a++;
    while (z > a && isspace((unsigned char)m->content[z - 1])) z--;
    herd_jbuf_put(b, m->content + a, z - a);
}

static void fmt_chatml(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)v;
    for (size_t i = 0; i < n; i++) {
        herd_jbuf_puts(b, "<|im_start|>");
        herd_jbuf_puts(b, m[i].role);
        herd_jbuf_putc(b, '\n');
        put(b, &m[i]);
        herd_jbuf_puts(b, "<|im_end|>\n");
    }
    if (gen) herd_jbuf_puts(b, "<|im_start|>assistant\n");
}

/* llama2 (0), llama2-sys (1), llama2-sys-bos (2), llama2-sys-strip (3). */
static void fmt_llama2(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)gen;
    bool inside = true;
    herd_jbuf_puts(b, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        if (!inside) {
            inside = true;
            herd_jbuf_puts(b, v == 2 ? "<s>[INST] " : "[INST] ");
        }
        if (is(&m[i], "system")) {
            herd_jbuf_puts(b, v ? "<<SYS>>\n" : "");
            v == 3 ? put_trim(b, &m[i]) : put(b, &m[i]);
            herd_jbuf_puts(b, v ? "\n<</SYS>>\n\n" : "\n");
        } else if (is(&m[i], "user")) {
            v == 3 ? put_trim(b, &m[i]) : put(b, &m[i]);
            herd_jbuf_puts(b, " [/INST]");
        } else {
            v == 3 ? put_trim(b, &m[i]) : put(b, &m[i]);
            herd_jbuf_puts(b, "</s>");
            inside = false;
        }
    }
}

/* mistral-v1 (0) and mistral-v3 (1). */
static void fmt_mistral(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)gen;
    const char *lead = v == 0 ? " " : "";
    bool inside = false;
    for (size_t i = 0; i < n; i++) {
        if (!inside) {
            herd_jbuf_puts(b, lead);
            herd_jbuf_puts(b, "[INST] ");
            inside = true;
        }
        if (is(&m[i], "system")) {
            put(b, &m[i]);
            herd_jbuf_puts(b, "\n\n");
        } else if (is(&m[i], "user")) {
            put(b, &m[i]);
            herd_jbuf_puts(b, lead);
            herd_jbuf_puts(b, "[/INST]");
        } else {
            herd_jbuf_putc(b, ' ');
            v == 1 ? put_trim(b, &m[i]) : put(b, &m[i]);
            herd_jbuf_puts(b, "</s>");
            inside = false;
        }
    }
}

static void fmt_mistral_v7(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)gen;
    (void)v;
    for (size_t i = 0; i < n; i++) {
        if (is(&m[i], "system")) {
            herd_jbuf_puts(b, "[SYSTEM_PROMPT] ");
            put(b, &m[i]);
            herd_jbuf_puts(b, "[/SYSTEM_PROMPT]");
        } else if (is(&m[i], "user")) {
            herd_jbuf_puts(b, "[INST] ");
            put(b, &m[i]);
            herd_jbuf_puts(b, "[/INST]");
        } else {
            herd_jbuf_putc(b, ' ');
            put(b, &m[i]);
            herd_jbuf_puts(b, "</s>");
        }
    }
}

/* "<|role|>\n" content END for every message: phi3 (0), zephyr (1), falcon3 (2). */
static void fmt_tagged(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    static const char *const end[] = {"<|end|>\n", "<|endoftext|>\n", "\n"};
    for (size_t i = 0; i < n; i++) {
        herd_jbuf_puts(b, "<|");
        herd_jbuf_puts(b, m[i].role);
        herd_jbuf_puts(b, "|>\n");
        put(b, &m[i]);
        herd_jbuf_puts(b, end[v]);
    }
    if (gen) herd_jbuf_puts(b, "<|assistant|>\n");
}

/* vicuna (0) and vicuna-orca (1). */
static void fmt_vicuna(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    for (size_t i = 0; i < n; i++) {
        if (is(&m[i], "system")) {
            herd_jbuf_puts(b, v ? "SYSTEM: " : "");
            put(b, &m[i]);
            herd_jbuf_puts(b, v ? "\n" : "\n\n");
        } else if (is(&m[i], "user")) {
            herd_jbuf_puts(b, "USER: ");
            put(b, &m[i]);
            herd_jbuf_putc(b, '\n');
        } else if (is(&m[i], "assistant")) {
            herd_jbuf_puts(b, "ASSISTANT: ");
            put(b, &m[i]);
            herd_jbuf_puts(b, "</s>\n");
        }
    }
    if (gen) herd_jbuf_puts(b, "ASSISTANT:");
}

static void fmt_openchat(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)v;
    for (size_t i = 0; i < n; i++) {
        if (!is(&m[i], "system")) {
            herd_jbuf_puts(b, "GPT4 Correct ");
            herd_jbuf_putc(b, (char)toupper((unsigned char)m[i].role[0]));
            if (m[i].role[0]) herd_jbuf_puts(b, m[i].role + 1);
            herd_jbuf_puts(b, ": ");
        }
        put(b, &m[i]);
        herd_jbuf_puts(b, "<|end_of_turn|>");
    }
    if (gen) herd_jbuf_puts(b, "GPT4 Correct Assistant:");
}

static void fmt_llama3(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)v;
    for (size_t i = 0; i < n; i++) {
        herd_jbuf_puts(b, "<|start_header_id|>");
        herd_jbuf_puts(b, m[i].role);
        herd_jbuf_puts(b, "<|end_header_id|>\n\n");
        put_trim(b, &m[i]);
        herd_jbuf_puts(b, "<|eot_id|>");
    }
    if (gen) herd_jbuf_puts(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Gemma has no system role: the system text joins the next user turn. */
static void fmt_gemma(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)v;
    jbuf sys = {0};
    for (size_t i = 0; i < n; i++) {
        if (is(&m[i], "system")) {
            put_trim(&sys, &m[i]);
            continue;
        }
        bool model = is(&m[i], "assistant");
        herd_jbuf_puts(b, "<start_of_turn>");
        herd_jbuf_puts(b, model ? "model" : m[i].role);
        herd_jbuf_putc(b, '\n');
        if (sys.n && !model) {
            herd_jbuf_put(b, sys.p, sys.n);
            herd_jbuf_puts(b, "\n\n");
            herd_jbuf_free(&sys);
        }
        put_trim(b, &m[i]);
        herd_jbuf_puts(b, "<end_of_turn>\n");
    }
    herd_jbuf_free(&sys);
    if (gen) herd_jbuf_puts(b, "<start_of_turn>model\n");
}

static void fmt_deepseek(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)v;
    for (size_t i = 0; i < n; i++) {
        if (is(&m[i], "system"))
            put(b, &m[i]);
        else if (is(&m[i], "user")) {
            herd_jbuf_puts(b, "### Instruction:\n");
            put(b, &m[i]);
            herd_jbuf_putc(b, '\n');
        } else if (is(&m[i], "assistant")) {
            herd_jbuf_puts(b, "### Response:\n");
            put(b, &m[i]);
            herd_jbuf_puts(b, "\n<|EOT|>\n");
        }
    }
    if (gen) herd_jbuf_puts(b, "### Response:\n");
}

static void fmt_command_r(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)v;
    for (size_t i = 0; i < n; i++) {
        const char *tok = is(&m[i], "system")      ? "<|SYSTEM_TOKEN|>"
                          : is(&m[i], "user")      ? "<|USER_TOKEN|>"
                          : is(&m[i], "assistant") ? "<|CHATBOT_TOKEN|>"
                                                   : NULL;
        if (!tok) continue;
        herd_jbuf_puts(b, "<|START_OF_TURN_TOKEN|>");
        herd_jbuf_puts(b, tok);
        put_trim(b, &m[i]);
        herd_jbuf_puts(b, "<|END_OF_TURN_TOKEN|>");
    }
    if (gen) herd_jbuf_puts(b, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
}

/* phi-2's QA format: system text, "Instruct: …\n", "Output: …\n", "Output:". */
static void fmt_phi2(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)v;
    for (size_t i = 0; i < n; i++) {
        const char *pre = is(&m[i], "user")        ? "Instruct: "
                          : is(&m[i], "assistant") ? "Output: "
                                                   : "";
        herd_jbuf_puts(b, pre);
        put(b, &m[i]);
        herd_jbuf_putc(b, '\n');
    }
    if (gen) herd_jbuf_puts(b, "Output:");
}

/* Falcon-180B-Chat: "System: …", "User: …", "Falcon: …" joined by newlines. */
static void fmt_falcon(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)v;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const char *pre = is(&m[i], "system")      ? "System: "
                          : is(&m[i], "user")      ? "User: "
                          : is(&m[i], "assistant") ? "Falcon: "
                                                   : NULL;
        if (!pre) continue;
        if (any) herd_jbuf_putc(b, '\n');
        herd_jbuf_puts(b, pre);
        put(b, &m[i]);
        any = true;
    }
    if (gen) herd_jbuf_puts(b, any ? "\nFalcon:" : "Falcon:");
}

/* StableLM-Tuned-Alpha: <|SYSTEM|>…<|USER|>…<|ASSISTANT|>… with no separators. */
static void fmt_stablelm(jbuf *b, const msg *m, size_t n, bool gen, int v)
{
    (void)v;
    for (size_t i = 0; i < n; i++) {
        const char *tok = is(&m[i], "system")      ? "<|SYSTEM|>"
                          : is(&m[i], "user")      ? "<|USER|>"
                          : is(&m[i], "assistant") ? "<|ASSISTANT|>"
                                                   : NULL;
        if (!tok) continue;
        herd_jbuf_puts(b, tok);
        put(b, &m[i]);
    }
    if (gen) herd_jbuf_puts(b, "<|ASSISTANT|>");
}

static const struct {
    const char *name;
    format_fn fn;
    int variant;
} formats[] = {
    {"llama2", fmt_llama2, 0},
    {"llama2-sys", fmt_llama2, 1},
    {"llama2-sys-bos", fmt_llama2, 2},
    {"llama2-sys-strip", fmt_llama2, 3},
    {"mistral-v1", fmt_mistral, 0},
    {"mistral-v3", fmt_mistral, 1},
    {"mistral-v7", fmt_mistral_v7, 0},
    {"zephyr", fmt_tagged, 1},
    {"chatml", fmt_chatml, 0},
    {"vicuna", fmt_vicuna, 0},
    {"vicuna-orca", fmt_vicuna, 1},
    {"openchat", fmt_openchat, 0},
    {"phi3", fmt_tagged, 0},
    {"llama3", fmt_llama3, 0},
    {"falcon3", fmt_tagged, 2},
    {"gemma", fmt_gemma, 0},
    {"deepseek", fmt_deepseek, 0},
    {"command-r", fmt_command_r, 0},
    {"phi-2", fmt_phi2, 0},
    {"falcon", fmt_falcon, 0},
    {"stablelm-alpha", fmt_stablelm, 0},
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

static const char *const aliases[][2] = {{"llama-2", "llama2"}, {"mistral", "mistral-v1"}};

const char *herd_chat_named_canonical(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(name, aliases[i][0])) name = aliases[i][1];
    for (size_t i = 0; i < N_FORMATS; i++)
        if (!strcmp(name, formats[i].name)) return formats[i].name;
    return NULL;
}

bool herd_chat_named_exists(const char *name)
{
    return herd_chat_named_canonical(name) != NULL;
}

const char *const *herd_chat_named_list(void)
{
    static const char *names[N_FORMATS + 1];
    for (size_t i = 0; i < N_FORMATS; i++) names[i] = formats[i].name;
    return names;
}

herd_status herd_chat_named_render(const char *name, const json_t *messages,
                                   bool add_generation_prompt, char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    const char *canon = herd_chat_named_canonical(name);
    if (!canon) return herd_seterr(HERD_E_INVALID, "unknown chat format '%s'", name ? name : "");
    if (messages && !json_is_array(messages))
        return herd_seterr(HERD_E_INVALID, "messages must be a JSON array");
    size_t n = messages ? json_array_size(messages) : 0;
    msg *m = calloc(n + 1, sizeof *m);
    if (!m) return herd_seterr(HERD_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *j = json_array_get(messages, i);
        const json_t *role = json_object_get(j, "role"), *content = json_object_get(j, "content");
        if (!json_is_string(role) ||
            (content && !json_is_string(content) && !json_is_null(content))) {
            free(m);
            return herd_seterr(
                json_is_string(role) ? HERD_E_UNSUPPORTED : HERD_E_INVALID, "message %zu: %s", i,
                json_is_string(role) ? "built-in chat formats take string content only"
                                     : "no \"role\" string");
        }
        m[i].role = json_string_value(role);
        m[i].content = json_is_string(content) ? json_string_value(content) : "";
        m[i].len = json_is_string(content) ? json_string_length(content) : 0;
    }
    jbuf b = {0};
    herd_jv_nomem = false;
    for (size_t i = 0; i < N_FORMATS; i++)
        if (formats[i].name == canon)
            formats[i].fn(&b, m, n, add_generation_prompt, formats[i].variant);
    free(m);
    if (!b.p && !herd_jv_nomem) b.p = calloc(1, 1);
    if (herd_jv_nomem || !b.p) {
        herd_jbuf_free(&b);
        return herd_seterr(HERD_E_NOMEM, "out of memory");
    }
    *out = b.p;
    if (len) *len = b.n;
    return HERD_OK;
}

/* First match wins: a substring of general.name (case-insensitive), or an
 * exact general.architecture. */
static const struct {
    const char *name_has, *arch, *format;
} picks[] = {
    {"vicuna", NULL, "vicuna"},
    {"openchat", NULL, "openchat"},
    {"zephyr", NULL, "zephyr"},
    {"falcon3", NULL, "falcon3"},
    {"mistral", NULL, "mistral-v1"},
    {"mixtral", NULL, "mistral-v1"},
    {"deepseek", NULL, "deepseek"},
    {"command-r", NULL, "command-r"},
    {NULL, "phi2", "phi-2"},
    {NULL, "phi3", "phi3"},
    {NULL, "falcon", "falcon"},
    {NULL, "gptneox", "stablelm-alpha"},
    {NULL, "stablelm", "stablelm-alpha"},
    {NULL, "gemma", "gemma"},
    {NULL, "gemma2", "gemma"},
    {NULL, "mistral", "mistral-v1"},
    {NULL, "command-r", "command-r"},
};

static bool has_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; hay && *hay; hay++)
        if (!strncasecmp(hay, needle, n)) return true;
    return false;
}

const char *herd_chat_named_pick(const char *arch, const char *name)
{
    for (size_t i = 0; i < sizeof picks / sizeof picks[0]; i++) {
        if (picks[i].name_has && has_ci(name, picks[i].name_has)) return picks[i].format;
        if (picks[i].arch && arch && !strcmp(arch, picks[i].arch)) return picks[i].format;
    }
    if (arch && !strcmp(arch, "llama") && has_ci(name, "chat")) return "llama2";
    return "chatml";
}
