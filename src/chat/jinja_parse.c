/*
 * herd_jinja_parse.c — expressions: tokens to AST nodes, following jinja2's parser.py
 * (the statements are in jinja_stmt.c).
 *
 * Precedence, loosest first, exactly as jinja2 (which differs from Python in
 * places templates rely on):
 *   x if c else y  >  or  >  and  >  not  >  == != < <= > >= in, not in
 *   >  + -  >  ~  >  * / // %  >  **  >  unary - +  >  |filter, is test,
 *   calls  >  .attr [index] (call)
 * so 'a' + b | trim is 'a' + (b|trim) and ** is left-associative.
 *
 * Filter and test names are resolved here, like jinja2's compiler does: an
 * unknown one fails the whole template even if the branch never runs.
 */
#include "chat/jinja_parser.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *herd_jp_describe(const jtok *k)
{
    switch (k->kind) {
    case TK_EOF:
        return "end of template";
    case TK_TEXT:
        return "template text";
    case TK_VAR_BEGIN:
        return "'{{'";
    case TK_VAR_END:
        return "end of print statement";
    case TK_BLOCK_BEGIN:
        return "'{%'";
    case TK_BLOCK_END:
        return "end of statement block";
    case TK_NAME:
        return k->text;
    case TK_STRING:
        return "string";
    case TK_INT:
        return "integer";
    case TK_FLOAT:
        return "float";
    case TK_OP:
        return k->op;
    }
    return "token";
}

herd_status herd_jp_err(const P *p, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return herd_seterr(HERD_E_FORMAT, "template syntax error, line %d: %s", cur(p)->line, msg);
}

herd_status herd_jp_unsup(const P *p, const char *what)
{
    return herd_seterr(HERD_E_UNSUPPORTED, "unsupported template construct, line %d: %s",
                       cur(p)->line, what);
}

herd_status herd_jp_nomem(void)
{
    return herd_seterr(HERD_E_NOMEM, "out of memory");
}

jnode *herd_jp_mk(P *p, jnode_kind kind, int line)
{
    herd_chat_template *t = p->t;
    if (t->nall == t->capall) {
        size_t cap = t->capall ? 2 * t->capall : 64;
        jnode **v = realloc(t->all, cap * sizeof *v);
        if (!v) return NULL;
        t->all = v;
        t->capall = cap;
    }
    jnode *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->line = line;
    t->all[t->nall++] = n;
    return n;
}

bool herd_jp_add_arg(jnode *n, jnode *a)
{
    if ((n->nargs & (n->nargs - 1)) == 0) { /* grow at powers of two */
        jnode **v = realloc(n->args, (n->nargs ? 2 * n->nargs : 1) * sizeof *v);
        if (!v) return false;
        n->args = v;
    }
    n->args[n->nargs++] = a;
    return true;
}

bool herd_jp_add_name(jnode *n, const char *s)
{
    if ((n->nnames & (n->nnames - 1)) == 0) {
        char **v = realloc(n->names, (n->nnames ? 2 * n->nnames : 1) * sizeof *v);
        if (!v) return false;
        n->names = v;
    }
    char *c = strdup(s);
    if (!c) return false;
    n->names[n->nnames++] = c;
    return true;
}

herd_status herd_jp_expect_op(P *p, const char *op)
{
    if (!is_op(p, op))
        return herd_jp_err(p, "expected '%s', got '%s'", op, herd_jp_describe(cur(p)));
    adv(p);
    return HERD_OK;
}

herd_status herd_jp_expect_kind(P *p, jtok_kind kind, const char *what)
{
    if (cur(p)->kind != kind)
        return herd_jp_err(p, "expected %s, got '%s'", what, herd_jp_describe(cur(p)));
    adv(p);
    return HERD_OK;
}

herd_status herd_jp_block_end(P *p)
{
    return herd_jp_expect_kind(p, TK_BLOCK_END, "end of statement block");
}

/* ----------------------------------------------------------- expressions */

herd_status herd_jp_expression(P *p, bool with_condexpr, jnode **out);
static herd_status parse_unary(P *p, bool with_filter, jnode **out);
herd_status herd_jp_tuple(P *p, bool with_condexpr, bool explicit_paren, const char *end_name,
                          jnode **out);

/* "(args, name=value)" into n->args / n->names (keyword values last). */
static herd_status parse_call_args(P *p, jnode *n)
{
    herd_status st = herd_jp_expect_op(p, "(");
    size_t npos = 0;
    while (!st && !is_op(p, ")")) {
        if (n->nargs && (st = herd_jp_expect_op(p, ","))) break;
        if (is_op(p, ")")) break;
        if (is_op(p, "*") || is_op(p, "**")) return herd_jp_unsup(p, "*args / **kwargs in a call");
        jnode *v;
        if (cur(p)->kind == TK_NAME && tok_op(look(p), "=")) {
            if (!herd_jp_add_name(n, cur(p)->text)) return herd_jp_nomem();
            adv(p);
            adv(p);
            if ((st = herd_jp_expression(p, true, &v))) break;
        } else {
            if (n->nnames) return herd_jp_err(p, "positional argument after keyword argument");
            if ((st = herd_jp_expression(p, true, &v))) break;
            npos++;
        }
        if (!herd_jp_add_arg(n, v)) return herd_jp_nomem();
    }
    if (!st) st = herd_jp_expect_op(p, ")");
    n->flag = n->nnames > 0;
    return st;
}

static herd_status parse_filter_name(P *p, jnode *n)
{
    if (cur(p)->kind != TK_NAME) return herd_jp_err(p, "expected a filter or test name");
    jbuf b = {0};
    herd_jbuf_puts(&b, cur(p)->text);
    adv(p);
    while (is_op(p, ".") && look(p)->kind == TK_NAME) {
        adv(p);
        herd_jbuf_putc(&b, '.');
        herd_jbuf_puts(&b, cur(p)->text);
        adv(p);
    }
    n->str = b.p;
    return b.p ? HERD_OK : herd_jp_nomem();
}

/* One "|name(args)" applied to in (NULL inside {% filter %}); inline: the
 * first filter of {% filter name %}, written without the '|'. */
herd_status herd_jp_filter(P *p, jnode *in, bool inline_, jnode **out)
{
    int line = cur(p)->line;
    if (!inline_) adv(p); /* | */
    jnode *n = herd_jp_mk(p, N_FILTER, line);
    if (!n) return herd_jp_nomem();
    n->a = in;
    herd_status st = parse_filter_name(p, n);
    if (st) return st;
    n->filter_id = herd_jinja_filter_id(n->str);
    if (n->filter_id == -1) return herd_jp_err(p, "no filter named '%s'", n->str);
    if (n->filter_id == -2) {
        char what[120];
        snprintf(what, sizeof what, "the '%s' filter", n->str);
        return herd_jp_unsup(p, what);
    }
    if (is_op(p, "(") && (st = parse_call_args(p, n))) return st;
    *out = n;
    return HERD_OK;
}

static herd_status parse_test(P *p, jnode *in, jnode **out)
{
    int line = cur(p)->line;
    adv(p); /* is */
    jnode *n = herd_jp_mk(p, N_TEST, line);
    if (!n) return herd_jp_nomem();
    n->a = in;
    if (is_name(p, "not")) {
        n->flag = true;
        adv(p);
    }
    herd_status st = parse_filter_name(p, n);
    if (st) return st;
    n->filter_id = herd_jinja_test_id(n->str);
    if (n->filter_id == -1) return herd_jp_err(p, "no test named '%s'", n->str);
    if (n->filter_id == -2) {
        char what[120];
        snprintf(what, sizeof what, "the '%s' test", n->str);
        return herd_jp_unsup(p, what);
    }
    const jtok *k = cur(p);
    if (is_op(p, "(")) return (st = parse_call_args(p, n)) ? st : (*out = n, HERD_OK);
    bool arg =
        k->kind == TK_STRING || k->kind == TK_INT || k->kind == TK_FLOAT || is_op(p, "[") ||
        is_op(p, "{") ||
        (k->kind == TK_NAME && !tok_name(k, "else") && !tok_name(k, "or") && !tok_name(k, "and"));
    if (arg) {
        if (is_name(p, "is")) return herd_jp_err(p, "you cannot chain multiple tests with is");
        jnode *a;
        p->nest++; /* a primary with its postfix, no filters */
        st = parse_unary(p, false, &a);
        p->nest--;
        if (st) return st;
        if (!herd_jp_add_arg(n, a)) return herd_jp_nomem();
    }
    *out = n;
    return HERD_OK;
}

static herd_status parse_subscript(P *p, jnode *obj, jnode **out)
{
    int line = cur(p)->line;
    herd_status st;
    if (is_op(p, ".")) {
        adv(p);
        const jtok *k = cur(p);
        jnode *n;
        if (k->kind == TK_NAME) {
            if (!(n = herd_jp_mk(p, N_GETATTR, line)) || !(n->str = strdup(k->text)))
                return herd_jp_nomem();
        } else if (k->kind == TK_INT) {
            jnode *c = herd_jp_mk(p, N_CONST, line);
            if (!c || !(n = herd_jp_mk(p, N_GETITEM, line))) return herd_jp_nomem();
            c->val = jv_int(k->ival);
            n->b = c;
        } else
            return herd_jp_err(p, "expected name or number after '.'");
        adv(p);
        n->a = obj;
        *out = n;
        return HERD_OK;
    }
    adv(p); /* [ */
    jnode *parts[3] = {NULL, NULL, NULL};
    int colons = 0;
    while (!is_op(p, "]")) {
        if (is_op(p, ":")) {
            if (++colons > 2) return herd_jp_err(p, "too many ':' in a slice");
            adv(p);
            continue;
        }
        if (is_op(p, ",")) return herd_jp_unsup(p, "a subscript with several indices");
        if (parts[colons]) return herd_jp_err(p, "expected ']' or ':'");
        if ((st = herd_jp_expression(p, true, &parts[colons]))) return st;
    }
    adv(p);
    jnode *n = herd_jp_mk(p, colons ? N_SLICE : N_GETITEM, line);
    if (!n) return herd_jp_nomem();
    n->a = obj;
    if (!colons && !parts[0]) return herd_jp_err(p, "expected an index between '[' and ']'");
    n->b = parts[0];
    n->c = parts[1];
    n->d = parts[2];
    *out = n;
    return HERD_OK;
}

static herd_status parse_postfix(P *p, jnode *n, bool filters, jnode **out)
{
    herd_status st = HERD_OK;
    for (;;) {
        if (is_op(p, ".") || is_op(p, "["))
            st = parse_subscript(p, n, &n);
        else if (is_op(p, "(")) {
            jnode *c = herd_jp_mk(p, N_CALL, cur(p)->line);
            if (!c) return herd_jp_nomem();
            c->a = n;
            st = parse_call_args(p, c);
            n = c;
        } else if (filters && is_op(p, "|"))
            st = herd_jp_filter(p, n, false, &n);
        else if (filters && is_name(p, "is"))
            st = parse_test(p, n, &n);
        else
            break;
        if (st) return st;
    }
    *out = n;
    return HERD_OK;
}

static herd_status parse_seq(P *p, jnode *n, const char *close, bool dict)
{
    herd_status st;
    adv(p);
    while (!is_op(p, close)) {
        if (n->nargs && (st = herd_jp_expect_op(p, ","))) return st;
        if (is_op(p, close)) break;
        jnode *v;
        if ((st = herd_jp_expression(p, true, &v))) return st;
        if (!herd_jp_add_arg(n, v)) return herd_jp_nomem();
        if (dict) {
            if ((st = herd_jp_expect_op(p, ":")) || (st = herd_jp_expression(p, true, &v)))
                return st;
            if (!herd_jp_add_arg(n, v)) return herd_jp_nomem();
        }
    }
    adv(p);
    return HERD_OK;
}

static herd_status parse_primary(P *p, jnode **out)
{
    const jtok *k = cur(p);
    jnode *n;
    herd_status st;
    switch (k->kind) {
    case TK_NAME: {
        const char *s = k->text;
        bool t = !strcmp(s, "true") || !strcmp(s, "True"),
             f = !strcmp(s, "false") || !strcmp(s, "False");
        bool none = !strcmp(s, "none") || !strcmp(s, "None");
        if (!(n = herd_jp_mk(p, (t || f || none) ? N_CONST : N_NAME, k->line)))
            return herd_jp_nomem();
        if (t || f)
            n->val = jv_bool(t);
        else if (none)
            n->val = jv_none();
        else if (!(n->str = strdup(s)))
            return herd_jp_nomem();
        if (p->macro_depth && !strcmp(s, "varargs")) p->uses_varargs = true;
        if (p->macro_depth && !strcmp(s, "kwargs")) p->uses_kwargs = true;
        adv(p);
        break;
    }
    case TK_STRING: { /* adjacent literals concatenate */
        jbuf b = {0};
        if (!(n = herd_jp_mk(p, N_CONST, k->line))) return herd_jp_nomem();
        while (cur(p)->kind == TK_STRING) {
            herd_jbuf_put(&b, cur(p)->text, cur(p)->len);
            adv(p);
        }
        n->val = herd_jbuf_to_str(&b);
        herd_jv_set_constant(n->val);
        if (n->val.kind != JV_STR) return herd_jp_nomem();
        break;
    }
    case TK_INT:
    case TK_FLOAT:
        if (!(n = herd_jp_mk(p, N_CONST, k->line))) return herd_jp_nomem();
        n->val = k->kind == TK_INT ? jv_int(k->ival) : jv_float(k->fval);
        adv(p);
        break;
    case TK_OP:
        if (is_op(p, "(")) {
            adv(p);
            if ((st = herd_jp_tuple(p, true, true, NULL, &n)) || (st = herd_jp_expect_op(p, ")")))
                return st;
        } else if (is_op(p, "[") || is_op(p, "{")) {
            bool dict = is_op(p, "{");
            if (!(n = herd_jp_mk(p, dict ? N_DICT : N_LIST, k->line))) return herd_jp_nomem();
            if ((st = parse_seq(p, n, dict ? "}" : "]", dict))) return st;
        } else
            return herd_jp_err(p, "unexpected '%s'", k->op);
        break;
    default:
        return herd_jp_err(p, "unexpected %s", herd_jp_describe(k));
    }
    *out = n;
    return HERD_OK;
}

static herd_status parse_unary(P *p, bool with_filter, jnode **out)
{
    if (++p->nest > MAX_NEST) return herd_jp_err(p, "expression nested too deeply");
    herd_status st;
    jnode *n = NULL;
    if (is_op(p, "-") || is_op(p, "+")) {
        if (!(n = herd_jp_mk(p, N_UNARY, cur(p)->line))) return herd_jp_nomem();
        n->op = is_op(p, "-") ? "-" : "+";
        adv(p);
        st = parse_unary(p, false, &n->a);
    } else
        st = parse_primary(p, &n);
    if (!st) st = parse_postfix(p, n, with_filter, &n);
    p->nest--;
    *out = n;
    return st;
}

/* A left-associative chain of binary operators over sub. */
static herd_status parse_binary(P *p, parse_fn sub, const char *const *ops, jnode **out)
{
    herd_status st = sub(p, out);
    while (!st) {
        const char *op = NULL;
        for (int i = 0; ops[i]; i++)
            if (is_op(p, ops[i])) op = ops[i];
        if (!op) break;
        jnode *n = herd_jp_mk(p, N_BINARY, cur(p)->line);
        if (!n) return herd_jp_nomem();
        adv(p);
        n->op = op;
        n->a = *out;
        st = sub(p, &n->b);
        *out = n;
    }
    return st;
}

static herd_status parse_unary_f(P *p, jnode **out)
{
    return parse_unary(p, true, out);
}
static herd_status parse_pow(P *p, jnode **out)
{
    static const char *const ops[] = {"**", NULL};
    return parse_binary(p, parse_unary_f, ops, out);
}
static herd_status parse_math2(P *p, jnode **out)
{
    static const char *const ops[] = {"*", "/", "//", "%", NULL};
    return parse_binary(p, parse_pow, ops, out);
}
static herd_status parse_concat(P *p, jnode **out)
{
    herd_status st = parse_math2(p, out);
    if (st || !is_op(p, "~")) return st;
    jnode *n = herd_jp_mk(p, N_CONCAT, cur(p)->line);
    if (!n || !herd_jp_add_arg(n, *out)) return herd_jp_nomem();
    while (is_op(p, "~")) {
        adv(p);
        jnode *x;
        if ((st = parse_math2(p, &x))) return st;
        if (!herd_jp_add_arg(n, x)) return herd_jp_nomem();
    }
    *out = n;
    return HERD_OK;
}
static herd_status parse_math1(P *p, jnode **out)
{
    static const char *const ops[] = {"+", "-", NULL};
    return parse_binary(p, parse_concat, ops, out);
}

static herd_status parse_compare(P *p, jnode **out)
{
    static const char *const cmp[] = {"==", "!=", "<", "<=", ">", ">=", NULL};
    jnode *first, *n = NULL;
    herd_status st = parse_math1(p, &first);
    while (!st) {
        const char *op = NULL;
        for (int i = 0; cmp[i]; i++)
            if (is_op(p, cmp[i])) op = cmp[i];
        if (op)
            adv(p);
        else if (is_name(p, "in")) {
            op = "in";
            adv(p);
        } else if (is_name(p, "not") && tok_name(look(p), "in")) {
            op = "not in";
            adv(p);
            adv(p);
        } else
            break;
        if (!n) {
            if (!(n = herd_jp_mk(p, N_COMPARE, first->line)) || !herd_jp_add_arg(n, first))
                return herd_jp_nomem();
        }
        jnode *x;
        if ((st = parse_math1(p, &x))) return st;
        if (!herd_jp_add_arg(n, x) || !herd_jp_add_name(n, op)) return herd_jp_nomem();
    }
    *out = n ? n : first;
    return st;
}

static herd_status parse_not(P *p, jnode **out)
{
    if (!is_name(p, "not")) return parse_compare(p, out);
    if (++p->nest > MAX_NEST) return herd_jp_err(p, "expression nested too deeply");
    jnode *n = herd_jp_mk(p, N_NOT, cur(p)->line);
    if (!n) return herd_jp_nomem();
    adv(p);
    *out = n;
    herd_status st = parse_not(p, &n->a);
    p->nest--;
    return st;
}

static herd_status parse_logic(P *p, const char *word, jnode_kind kind, parse_fn sub, jnode **out)
{
    herd_status st = sub(p, out);
    while (!st && is_name(p, word)) {
        jnode *n = herd_jp_mk(p, kind, cur(p)->line);
        if (!n) return herd_jp_nomem();
        adv(p);
        n->a = *out;
        st = sub(p, &n->b);
        *out = n;
    }
    return st;
}
static herd_status parse_and(P *p, jnode **out)
{
    return parse_logic(p, "and", N_AND, parse_not, out);
}
static herd_status parse_or(P *p, jnode **out)
{
    return parse_logic(p, "or", N_OR, parse_and, out);
}

herd_status herd_jp_expression(P *p, bool with_condexpr, jnode **out)
{
    herd_status st = parse_or(p, out);
    if (!with_condexpr) return st;
    while (!st && is_name(p, "if")) {
        jnode *n = herd_jp_mk(p, N_COND, cur(p)->line);
        if (!n) return herd_jp_nomem();
        adv(p);
        n->b = *out;
        if ((st = parse_or(p, &n->a))) return st;
        if (is_name(p, "else")) {
            adv(p);
            if (++p->nest > MAX_NEST) return herd_jp_err(p, "expression nested too deeply");
            st = herd_jp_expression(p, true, &n->c);
            p->nest--;
        }
        *out = n;
    }
    return st;
}

static bool tuple_end(const P *p, const char *end_name)
{
    const jtok *k = cur(p);
    return k->kind == TK_VAR_END || k->kind == TK_BLOCK_END || k->kind == TK_EOF ||
           tok_op(k, ")") || (end_name && tok_name(k, end_name));
}

herd_status herd_jp_tuple(P *p, bool with_condexpr, bool explicit_paren, const char *end_name,
                          jnode **out)
{
    jnode *t = herd_jp_mk(p, N_TUPLE, cur(p)->line);
    if (!t) return herd_jp_nomem();
    bool is_tuple = false;
    herd_status st;
    for (;;) {
        if (t->nargs && (st = herd_jp_expect_op(p, ","))) return st;
        if (tuple_end(p, end_name)) break;
        jnode *x;
        if ((st = herd_jp_expression(p, with_condexpr, &x))) return st;
        if (!herd_jp_add_arg(t, x)) return herd_jp_nomem();
        if (!is_op(p, ",")) break;
        is_tuple = true;
    }
    if (!is_tuple && t->nargs == 1)
        *out = t->args[0];
    else if (!is_tuple && !explicit_paren)
        return herd_jp_err(p, "expected an expression, got '%s'", herd_jp_describe(cur(p)));
    else
        *out = t;
    return HERD_OK;
}

void herd_jinja_nodes_free(herd_chat_template *t)
{
    for (size_t i = 0; i < t->nall; i++) {
        jnode *n = t->all[i];
        herd_jv_free_constant(n->val);
        free(n->str);
        for (size_t k = 0; k < n->nnames; k++) free(n->names[k]);
        free(n->names);
        free(n->args);
        free(n);
    }
    free(t->all);
    t->all = NULL;
    t->nall = t->capall = 0;
}
