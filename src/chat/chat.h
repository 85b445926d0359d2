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
 *   jinja_lex.c       source -> tokens, applying jinja2's whitespace rules
 *                     (trim_blocks, lstrip_blocks, {%- -%}) exactly;
 *   jinja_parse.c     expressions -> AST with jinja2's precedence, and
 *   jinja_stmt.c      the statements and template body (jinja_parser.h);
 *   jinja_value.c     Python-like values (str, int, list, dict, none,
 *                     undefined): truth, ==, <, str(), repr();
 *   jinja_ops.c       arithmetic, comparisons, `in`;
 *   jinja_eval.c      runs the AST: scopes, loops, macros, set, output;
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
 */
#ifndef HERD_CHAT_H
#define HERD_CHAT_H

#include "util/util.h"
#include <jansson.h>

/* A parsed template; immutable after parsing, so one may be rendered by
 * several threads at once. */
typedef struct herd_chat_template herd_chat_template;

/* Parse template source (NUL-terminated). Syntax errors are HERD_E_FORMAT
 * ("template syntax error, line N: ..."); constructs herd does not implement
 * are HERD_E_UNSUPPORTED. */
herd_status herd_chat_template_parse(const char *src, herd_chat_template **out);
void herd_chat_template_free(herd_chat_template *t);

/* The inputs of one rendering. messages is a JSON array of message objects
 * (object key order is kept: tojson and |items depend on it). extra is NULL or
 * an object: its "tools" and "documents" become `tools` / `documents`, every
 * other key a top-level variable. bos / eos NULL leave the variable undefined. */
typedef struct herd_chat_input {
    const json_t *messages;
    const json_t *extra;
    const char *bos_token;
    const char *eos_token;
    bool add_generation_prompt;
} herd_chat_input;

/* Render to a malloc'ed NUL-terminated string (*out, caller frees; its length
 * in *len if len is not NULL). When the template calls raise_exception(msg),
 * the status is HERD_E_INVALID and herd_errmsg() is exactly msg, with
 * *raised (if not NULL) set to true. Other runtime errors (an undefined value
 * in '+', a type error) are HERD_E_INVALID with "template error, line N: ..."
 * and unimplemented features HERD_E_UNSUPPORTED. */
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

#endif
