/*
 * cmd_template.c — `herd template`: print the prompt a chat template makes of
 * a list of messages, exactly (no newline added), so that it can be compared
 * byte for byte with transformers' apply_chat_template(tokenize=False).
 *
 *   herd template (-m MODEL | --chat-template NAME|FILE) --messages FILE.json
 *                 [--add-generation-prompt] [--bos-token TEXT] [--eos-token TEXT]
 *
 * FILE.json is a JSON array of messages, or an object shaped like an OpenAI
 * chat request: {"messages": [...], "tools": [...], "chat_template_kwargs":
 * {...}}, whose kwargs become top-level template variables (as llama.cpp's
 * server does). With -m, the template and the BOS/EOS token texts come from
 * the GGUF file (tokenizer.chat_template, tokenizer.ggml.tokens and the
 * bos/eos ids); a file without a template gets the built-in format picked from
 * its architecture and name. --chat-template overrides the file's template
 * with a built-in format name or a Jinja file; the token flags override the
 * file's tokens. Without -m, an omitted token is undefined in the template.
 *
 * Errors are one line on stderr and a non-zero exit: a template that calls
 * raise_exception prints "herd: template error: <its message>" and exits 1.
 */
#include "cli.h"

#include "chat/chat.h"
#include "gguf/gguf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cmd_template(int argc, char **argv);

typedef struct tmpl_opts {
    const char *model, *chat_template, *messages, *bos, *eos;
    bool add_generation_prompt;
} tmpl_opts;

static int usage(void)
{
    fprintf(stderr,
            "usage: herd template (-m MODEL | --chat-template NAME|FILE) --messages FILE.json\n"
            "                     [--add-generation-prompt] [--bos-token TEXT] [--eos-token "
            "TEXT]\n");
    return 2;
}

static bool parse_args(int argc, char **argv, tmpl_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "-m") || !strcmp(a, "--model") ? &o->model
                           : !strcmp(a, "--chat-template")           ? &o->chat_template
                           : !strcmp(a, "--messages")                ? &o->messages
                           : !strcmp(a, "--bos-token")               ? &o->bos
                           : !strcmp(a, "--eos-token")               ? &o->eos
                                                                     : NULL;
        if (dst) {
            if (i + 1 >= argc) {
                cli_error(2, "%s needs a value", a);
                return false;
            }
            *dst = argv[++i];
        } else if (!strcmp(a, "--add-generation-prompt"))
            o->add_generation_prompt = true;
        else {
            cli_error(2, "template: unknown option '%s'", a);
            return false;
        }
    }
    if ((!o->model && !o->chat_template) || !o->messages) {
        usage();
        return false;
    }
    return true;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *p = realloc(buf, cap);
            if (!p) break;
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    bool ok = !ferror(f) && buf;
    fclose(f);
    if (!ok) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* The messages file: an array, or {"messages", "tools", "documents",
 * "chat_template_kwargs"}. *extra gets a new object (or NULL). */
static int load_messages(const char *path, json_t **messages, json_t **extra)
{
    json_error_t e;
    json_t *j = json_load_file(path, JSON_DECODE_ANY, &e);
    *messages = *extra = NULL;
    if (!j) {
        FILE *f = fopen(path, "rb");
        if (!f) return cli_error(1, "cannot read %s: %s", path, strerror(errno));
        fclose(f);
        return cli_error(1, "%s: invalid JSON at line %d: %s", path, e.line, e.text);
    }
    if (json_is_array(j)) {
        *messages = j;
        return 0;
    }
    json_t *m = json_object_get(j, "messages");
    if (!json_is_array(m)) {
        json_decref(j);
        return cli_error(1,
                         "%s: expected a JSON array of messages or an object with a "
                         "\"messages\" array",
                         path);
    }
    *messages = json_incref(m);
    *extra = json_object();
    json_t *kw = json_object_get(j, "chat_template_kwargs");
    if (kw && !json_is_object(kw) && !json_is_null(kw)) {
        json_decref(j);
        return cli_error(1, "%s: \"chat_template_kwargs\" must be an object", path);
    }
    if (json_is_object(kw)) json_object_update(*extra, kw);
    static const char *const keys[] = {"tools", "documents"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(j, keys[i]);
        if (v) json_object_set(*extra, keys[i], v);
    }
    json_decref(j);
    return 0;
}

/* What a model file contributes: its template (or a built-in format name)
 * and its BOS/EOS token texts. */
typedef struct model_chat {
    char *template_src;
    char *format; /* built-in format when the file has no template */
    char *bos, *eos;
} model_chat;

static char *dup_gstr(gguf_str s)
{
    char *p = malloc(s.len + 1);
    if (!p) return NULL;
    memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

static char *token_text(const gguf_file *f, const char *id_key)
{
    uint32_t id;
    const gguf_kv *toks = herd_gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!herd_gguf_get_u32(f, id_key, &id) || !toks || toks->type != GGUF_TYPE_ARRAY ||
        toks->arr_type != GGUF_TYPE_STRING || id >= toks->arr_n)
        return NULL;
    return dup_gstr(herd_gguf_arr_str(toks, id));
}

static int load_model_chat(const char *path, model_chat *mc)
{
    gguf_file *f;
    if (herd_gguf_open(path, &f)) return cli_fail(path);
    gguf_str s;
    if (herd_gguf_get_str(f, "tokenizer.chat_template", &s))
        mc->template_src = dup_gstr(s);
    else {
        char arch[64] = "", name[256] = "";
        herd_gguf_get_strz(f, "general.architecture", arch, sizeof arch);
        herd_gguf_get_strz(f, "general.name", name, sizeof name);
        mc->format = strdup(herd_chat_named_pick(arch, name));
    }
    mc->bos = token_text(f, "tokenizer.ggml.bos_token_id");
    mc->eos = token_text(f, "tokenizer.ggml.eos_token_id");
    herd_gguf_close(f);
    if (!mc->template_src && !mc->format) return cli_error(1, "%s: out of memory", path);
    return 0;
}

static void free_model_chat(model_chat *mc)
{
    free(mc->template_src);
    free(mc->format);
    free(mc->bos);
    free(mc->eos);
}

/* Render with a Jinja source or a built-in format; print or report. */
static int render(const char *src, const char *format, const herd_chat_input *in)
{
    char *out = NULL;
    size_t len = 0;
    bool raised = false;
    herd_status st =
        format ? herd_chat_named_render(format, in->messages, in->add_generation_prompt, &out, &len)
               : herd_chat_render(src, in, &out, &len, &raised);
    if (st) {
        /* One line, whatever the template's message holds. Other errors already
         * say "template error, line N" / "template syntax error". */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", herd_errmsg());
        for (char *c = msg; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' ';
        return cli_error(1, "%s%s", raised ? "template error: " : "template: ", msg);
    }
    fwrite(out, 1, len, stdout);
    free(out);
    return fflush(stdout) == 0 ? 0 : cli_error(1, "writing the prompt: %s", strerror(errno));
}

int cmd_template(int argc, char **argv)
{
    tmpl_opts o = {0};
    if (!parse_args(argc, argv, &o)) return 2;
    model_chat mc = {0};
    json_t *messages = NULL, *extra = NULL;
    char *file_src = NULL;
    int rc = o.model ? load_model_chat(o.model, &mc) : 0;
    if (!rc) rc = load_messages(o.messages, &messages, &extra);
    const char *src = mc.template_src, *format = mc.format;
    if (!rc && o.chat_template) {
        format = herd_chat_named_canonical(o.chat_template);
        src = NULL;
        if (!format && !(src = file_src = read_text(o.chat_template)))
            rc = cli_error(1,
                           "--chat-template: '%s' is neither a built-in format nor a readable "
                           "file (%s)",
                           o.chat_template, strerror(errno));
    }
    if (!rc) {
        herd_chat_input in = {
            .messages = messages,
            .extra = extra,
            .bos_token = o.bos ? o.bos : mc.bos,
            .eos_token = o.eos ? o.eos : mc.eos,
            .add_generation_prompt = o.add_generation_prompt,
        };
        rc = render(src, format, &in);
    }
    free(file_src);
    free_model_chat(&mc);
    json_decref(messages);
    json_decref(extra);
    return rc;
}
