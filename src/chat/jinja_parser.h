/*
 * jinja_parser.h — what the two halves of the parser share: the parser state,
 * token helpers, node building and the expression entry points.
 * herd_jinja_parse.c parses expressions; jinja_stmt.c parses statements and the
 * template body. Private to src/chat.
 */
#ifndef HERD_JINJA_PARSER_H
#define HERD_JINJA_PARSER_H

#include "chat/jinja.h"

#include <string.h>

#define MAX_NEST 500

typedef struct P {
    const jtoks *tk;
    size_t i;
    herd_chat_template *t;
    int loop_depth, nest, macro_depth;
    bool uses_varargs, uses_kwargs;
} P;

typedef herd_status (*parse_fn)(P *p, jnode **out);

static inline const jtok *cur(const P *p)
{
    return &p->tk->v[p->i];
}
static inline const jtok *look(const P *p)
{
    return p->i + 1 < p->tk->n ? &p->tk->v[p->i + 1] : &p->tk->v[p->tk->n - 1];
}
static inline void adv(P *p)
{
    if (cur(p)->kind != TK_EOF) p->i++;
}
static inline bool tok_op(const jtok *k, const char *op)
{
    return k->kind == TK_OP && !strcmp(k->op, op);
}
static inline bool tok_name(const jtok *k, const char *n)
{
    return k->kind == TK_NAME && !strcmp(k->text, n);
}
static inline bool is_op(const P *p, const char *op)
{
    return tok_op(cur(p), op);
}
static inline bool is_name(const P *p, const char *n)
{
    return tok_name(cur(p), n);
}

const char *herd_jp_describe(const jtok *k);
/* A syntax error (HERD_E_FORMAT) / an unsupported construct, at the current line. */
herd_status herd_jp_err(const P *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
herd_status herd_jp_unsup(const P *p, const char *what);
herd_status herd_jp_nomem(void);
/* A node owned by the template. */
jnode *herd_jp_mk(P *p, jnode_kind kind, int line);
bool herd_jp_add_arg(jnode *n, jnode *a);
bool herd_jp_add_name(jnode *n, const char *s);
herd_status herd_jp_expect_op(P *p, const char *op);
herd_status herd_jp_expect_kind(P *p, jtok_kind kind, const char *what);
herd_status herd_jp_block_end(P *p);

/* An expression; with_condexpr: allow "a if c else b". */
herd_status herd_jp_expression(P *p, bool with_condexpr, jnode **out);
/* Expressions separated by commas (a tuple if there is a comma); end_name:
 * a name that also ends it ("recursive" in a for loop). */
herd_status herd_jp_tuple(P *p, bool with_condexpr, bool explicit_paren, const char *end_name,
                          jnode **out);
/* "|name(args)" on in; inline_: the first filter of {% filter %}, no '|'. */
herd_status herd_jp_filter(P *p, jnode *in, bool inline_, jnode **out);

#endif
