/*
 * chat.h — turning a conversation into the prompt text a model was trained on.
 *
 * A chat model's GGUF file usually carries its Hugging Face chat template
 * (tokenizer.chat_template), a Jinja2 program that prints the messages with
 * the model's role markers. herd renders it exactly as transformers'
 * apply_chat_template(tokenize=False) does: jinja2 with trim_blocks,
 * lstrip_blocks, the loopcontrols extension and the {% generation %} tag, in an
 * immutable sandbox, with raise_exception(), strftime_now() (on a fixed clock,
 * so renderings are reproducible) and a tojson that is Python's json.dumps.
 * The template sees `messages`, `tools` and `documents` (always defined, none
 * when not given), `add_generation_prompt`, `bos_token` / `eos_token` (left
 * undefined when the model has no such token) and any extra variables.
 *
 * The renderer is a small Jinja interpreter (its internals are in jinja.h):
 *   herd_jinja_lex.c       source -> tokens, applying jinja2's whitespace rules
 *                     (trim_blocks, lstrip_blocks, {%- -%}) exactly;
 *   herd_jinja_parse.c     expressions -> AST with jinja2's precedence, and
 *   jinja_stmt.c      the statements and template body (jinja_parser.h);
 *   jinja_value.c     Python-like values (str, int, list, dict, none,
 *                     undefined): truth, ==, <, str(), repr();
 *   jinja_ops.c       arithmetic, comparisons, `in`;
 *   herd_jinja_eval.c      runs the AST: scopes, loops, macros, set, output;
 *   jinja_budget.c    the render's budget: steps, sizes, depth, cancel;
 *   jinja_methods.c   a.b / a[b] with the sandbox's rules, str/dict/list
 *                     methods, the global functions;
 *   jinja_filters.c, jinja_seqfilters.c, jinja_tests.c   filters and tests;
 *   jinja_str.c       Python's str operations on UTF-8;
 *   jinja_json.c      JSON in (Jansson, key order kept) and out (json.dumps).
 *
 * What the renderer cannot do it refuses: a construct it does not implement
 * ({% include %}, {% call %}, recursive loops, '%' string formatting, ...) is
 * HERD_E_UNSUPPORTED with a message naming it and its line; it never renders
 * something different from jinja2 silently.
 *
 * Models without a template get a built-in named format (named.c): llama.cpp's
 * renderings of llama2, chatml, zephyr, vicuna, ... plus phi-2, falcon and
 * stablelm-alpha from their model cards, and a small table that picks one
 * from the model's architecture and name.
 *
 * On top of both, a conversation (conversation.c) keeps the messages of a
 * chat and the KV cache of their rendering, so that each reply decodes only
 * what is new; `herd chat` and `herd run --chat` are thin layers over it.
 */
#ifndef HERD_CHAT_H
#define HERD_CHAT_H

#include "util/util.h"
#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

/* A parsed template; immutable after parsing, so one may be rendered by
 * several threads at once. */
typedef struct herd_chat_template herd_chat_template;

/* Parse template source (NUL-terminated). Syntax errors are HERD_E_FORMAT
 * ("template syntax error, line N: ..."); constructs herd does not implement
 * are HERD_E_UNSUPPORTED. */
herd_status herd_chat_template_parse(const char *src, herd_chat_template **out);
void herd_chat_template_free(herd_chat_template *t);

/*
 * The budget of every rendering. A template is code that arrives with a model
 * file or a request, so no template may run forever, exhaust memory or the C
 * stack. Each render counts, and stops with an error (never a truncated
 * rendering passed on as complete) when one of these is exceeded:
 *
 *   HERD_CHAT_MAX_STEPS   steps: one per statement, loop iteration and call
 *                         (macro, function, method, filter, test), one per
 *                         element a built-in visits (==, in, sort, +, |join,
 *                         ...) and one per 64 bytes of string written. As every
 *                         byte and element made is paid for, the steps also
 *                         bound what a render allocates (~64 bytes a step).
 *   HERD_CHAT_MAX_OUTPUT  bytes of the rendering, and of any string made on
 *                         the way (the messages' own strings included).
 *   HERD_CHAT_MAX_DEPTH   nesting of a value (lists, dicts, the JSON input)
 *                         and of printing one: a namespace that contains
 *                         itself is refused when printed.
 *
 * Measured on the 795 template cases of the real models' templates (test_chat_template
 * prints the figures and checks the 100x margins): the most any case needs is
 * 798 steps, 2,980 output bytes and depth 8. The limits are 1,250x, 1,400x
 * and 125x that, and low enough that a hostile template stops within a second
 * or two, ASan included, and well under 256 MB.
 */
#ifndef HERD_CHAT_MAX_STEPS /* the fuzz build lowers it, to spend its time elsewhere */
#define HERD_CHAT_MAX_STEPS 1000000
#endif
#define HERD_CHAT_MAX_OUTPUT (4u << 20)
#define HERD_CHAT_MAX_DEPTH  1000

/* Which limit stopped a render. */
typedef enum herd_chat_limit {
    HERD_CHAT_LIMIT_NONE = 0,
    HERD_CHAT_LIMIT_STEPS,
    HERD_CHAT_LIMIT_OUTPUT,
    HERD_CHAT_LIMIT_DEPTH,
    HERD_CHAT_CANCELLED, /* herd_chat_input.cancel was set */
} herd_chat_limit;

/* The inputs of one rendering. messages is a JSON array of message objects
 * (object key order is kept: tojson and |items depend on it). extra is NULL or
 * an object: its "tools" and "documents" become `tools` / `documents`, every
 * other key a top-level variable. bos / eos NULL leave the variable undefined.
 *
 * cancel, if not NULL, is a flag another thread may set (a server whose client
 * left, or that is shutting down) to stop the render: it is read with the step
 * counter, every few thousand steps (well under a millisecond), and a set flag
 * ends the render with HERD_CHAT_CANCELLED. */
typedef struct herd_chat_input {
    const json_t *messages;
    const json_t *extra;
    const char *bos_token;
    const char *eos_token;
    bool add_generation_prompt;
    const atomic_bool *cancel;
} herd_chat_input;

/* What the last render on this thread used, and which limit (if any) stopped
 * it. A limit hit is HERD_E_UNSUPPORTED (valid Jinja that herd will not run to
 * the end) with a message naming the limit ("... exceeded HERD_CHAT_MAX_STEPS
 * (1000000 steps)"); a cancelled render is HERD_E_INVALID "template render
 * cancelled". */
typedef struct herd_chat_usage {
    uint64_t steps;
    size_t output; /* bytes of the rendering */
    int depth;     /* the deepest value made or walked */
    herd_chat_limit limit;
} herd_chat_usage;
void herd_chat_last_usage(herd_chat_usage *out);
/* "HERD_CHAT_MAX_STEPS", ... ; "" for HERD_CHAT_LIMIT_NONE. */
const char *herd_chat_limit_name(herd_chat_limit l);

/* Render to a malloc'ed NUL-terminated string (*out, caller frees; its length
 * in *len if len is not NULL). When the template calls raise_exception(msg),
 * the status is HERD_E_INVALID and herd_errmsg() is exactly msg, with
 * *raised (if not NULL) set to true. Other runtime errors (an undefined value
 * in '+', a type error) are HERD_E_INVALID with "template error, line N: ..."
 * and unimplemented features HERD_E_UNSUPPORTED, as is a render that exceeds
 * its budget (above; herd_chat_last_usage says which limit). On any error *out
 * is NULL: a rendering is never returned cut short. */
herd_status herd_chat_template_render(const herd_chat_template *t, const herd_chat_input *in,
                                      char **out, size_t *len, bool *raised);

/* Parse and render in one call. */
herd_status herd_chat_render(const char *template_src, const herd_chat_input *in, char **out,
                             size_t *len, bool *raised);

/* ------------------------------------------------------- named formats */

/* Is name a built-in format (or an alias of one, e.g. "llama-2", "mistral")? */
bool herd_chat_named_exists(const char *name);
/* The canonical name of a format or alias, NULL if unknown. */
const char *herd_chat_named_canonical(const char *name);
/* The list of canonical names, NULL-terminated. */
const char *const *herd_chat_named_list(void);
/* Render messages (role/content objects; null content is "") with a built-in
 * format. These are llama.cpp's renderings: bos/eos tokens are not used. */
herd_status herd_chat_named_render(const char *name, const json_t *messages,
                                   bool add_generation_prompt, char **out, size_t *len);
/* The built-in format for a model file that carries no template, from its
 * general.architecture and general.name (either may be NULL or ""). Never
 * NULL: "chatml" when nothing matches. */
const char *herd_chat_named_pick(const char *arch, const char *name);

/* -------------------------------------------------------- conversations */

/*
 * A conversation (conversation.c): the messages so far, and what of their
 * rendering is in sequence 0 of a context's KV cache.
 *
 * Each reply renders the whole conversation with the chat format, tokenizes
 * it and decodes only what the cache does not hold yet: the cached tokens are
 * kept as far as their text is a prefix of the new prompt's (token by token,
 * then by text, so an answer the model generated stays cached even when the
 * tokenizer would split its text differently), any divergent tail is removed
 * with herd_kv_remove(), and the rest is decoded. Earlier turns are never
 * decoded again unless the prompt before them changed (a new system prompt, or
 * dropped turns).
 *
 * Answers stop at an end-of-generation token (herd_token_is_eog) or at one of
 * the format's stop strings: the end-of-turn markers ("</s>", "<|im_end|>",
 * "<|user|>", "\nUser:", ...) that the format writes after an assistant
 * message, found by rendering a sample conversation. A stop string is never
 * shown: text that could be the start of one is held back until it is not.
 *
 * When the prompt and room for an answer do not fit in the context, the oldest
 * turns (a user message and the answers after it; never the system prompt nor
 * the current message) are dropped, the caller is told, and the conversation
 * is rendered again; the cache is reused as far as it still matches (usually
 * the system prompt). The same happens when the cache fills during an answer:
 * the answer so far is kept and generation continues after the shorter prompt.
 */
typedef struct herd_conv herd_conv;

typedef struct herd_conv_params {
    const char *chat_template; /* a built-in format name or a Jinja file; NULL: see below */
    const char *template_src;  /* Jinja source; overrides chat_template */
    /* With neither, the model's tokenizer.chat_template, else the built-in
     * format herd_chat_named_pick() gives for the model. */
    const char *system;      /* the system prompt; NULL or "": none */
    int n_predict;           /* most tokens per answer; <= 0: until the context is full */
    const char *const *stop; /* more stop strings, NULL-terminated; NULL: none */
    herd_sampler_params sampling;
} herd_conv_params;

herd_conv_params herd_conv_default_params(void);

/* The conversation uses sequence 0 of ctx, which nobody else may touch while
 * it lives; it starts by clearing it. model and ctx must outlive it. */
herd_status herd_conv_new(herd_model *model, herd_ctx *ctx, const herd_conv_params *params,
                          herd_conv **out);
void herd_conv_free(herd_conv *c);

/* What a reply reports to its caller while it runs. Any member may be NULL. */
typedef struct herd_conv_io {
    void (*text)(void *user, const char *text, size_t len); /* answer text, streamed */
    void (*dropped)(void *user, int n_messages);            /* oldest messages dropped for room */
    bool (*interrupted)(void *user);                        /* polled between tokens and batches */
    void *user;
} herd_conv_io;

typedef enum herd_conv_stop {
    HERD_CONV_EOG = 0,     /* an end-of-generation token */
    HERD_CONV_STOP_STRING, /* one of the format's stop strings */
    HERD_CONV_LIMIT,       /* n_predict tokens */
    HERD_CONV_INTERRUPTED, /* io->interrupted() said so */
    HERD_CONV_CONTEXT,     /* the context is full and nothing is left to drop */
} herd_conv_stop;

/* Add a user message and generate the assistant's answer, which joins the
 * conversation however it stopped (an interrupted answer is kept as far as it
 * got). HERD_E_FULL, with the conversation unchanged, when the message cannot
 * fit in the context even alone with the system prompt. */
herd_status herd_conv_reply(herd_conv *c, const char *user_text, const herd_conv_io *io,
                            herd_conv_stop *why);
/* Append a message without generating (role "user", "assistant", ...). */
herd_status herd_conv_add(herd_conv *c, const char *role, const char *content);
/* Replace the system prompt (NULL or "": remove it). */
herd_status herd_conv_set_system(herd_conv *c, const char *text);
/* Forget every message but the system prompt. The cache is left as it is: the
 * next reply reuses whatever prefix still matches. */
void herd_conv_reset(herd_conv *c);

/* The messages, an OpenAI-style JSON array of {"role", "content"} objects
 * (borrowed; valid until the next call that changes the conversation). */
const json_t *herd_conv_messages(const herd_conv *c);
/* Write the messages to a file as JSON. */
herd_status herd_conv_save(const herd_conv *c, const char *path);
/* The built-in format's name, or "jinja" for a template. */
const char *herd_conv_format(const herd_conv *c);
/* The stop strings, NULL-terminated. */
const char *const *herd_conv_stop_strings(const herd_conv *c);

/* Counters, for the user and for the tests that check the cache is reused. */
typedef struct herd_conv_stats {
    int n_prompt;         /* tokens of the last prompt rendered */
    int n_reused;         /* of those, found in the cache (the last prefill) */
    int n_decoded;        /* prompt tokens the last reply decoded, re-prefills included */
    int n_generated;      /* tokens the last reply generated */
    int n_dropped;        /* messages the last reply dropped */
    int n_cached;         /* cache cells of the conversation */
    long n_decoded_total; /* every token decoded since herd_conv_new */
} herd_conv_stats;
void herd_conv_get_stats(const herd_conv *c, herd_conv_stats *out);

#endif
