/*
 * jinja_stmt.c — parsing the template body: text, {{ }} and the statements
 * if/elif/else, for (with else, a filter and loop controls), set (plain,
 * tuple, namespace attribute, block), macro, with, filter, generation.
 * Tags herd does not implement ({% include %}, {% call %}, ...) are refused
 * with HERD_E_UNSUPPORTED naming the tag and its line.
 */
#include "chat/jinja_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static herd_status parse_body(P *p, const char *const *ends, jnode **out, const char **which);

/* Assignment targets: "a", "a, b", "(a, b)". */
static herd_status parse_targets(P *p, jnode *n)
{
    bool paren = is_op(p, "(");
    if (paren) adv(p);
    do {
        if (n->nnames && is_op(p, ",")) adv(p);
        if (cur(p)->kind != TK_NAME)
            return herd_jp_err(p, "expected a variable name, got '%s'", herd_jp_describe(cur(p)));
        if (!herd_jp_add_name(n, cur(p)->text)) return herd_jp_nomem();
        adv(p);
    } while (is_op(p, ","));
    return paren ? herd_jp_expect_op(p, ")") : HERD_OK;
}

static herd_status parse_if(P *p, jnode **out)
{
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    static const char *const endif[] = {"endif", NULL};
    jnode *n = herd_jp_mk(p, S_IF, cur(p)->line);
    if (!n) return herd_jp_nomem();
    const char *which;
    herd_status st = herd_jp_tuple(p, false, false, NULL, &n->a);
    if (!st) st = herd_jp_block_end(p);
    if (!st) st = parse_body(p, ends, &n->b, &which);
    if (st) return st;
    if (!strcmp(which, "elif")) { /* an elif is an if nested in the else */
        if (++p->nest > MAX_NEST) return herd_jp_err(p, "too many elif branches");
        st = parse_if(p, &n->c);
        p->nest--;
    } else if (!strcmp(which, "else")) {
        if (!(st = herd_jp_block_end(p)) && !(st = parse_body(p, endif, &n->c, &which)))
            st = herd_jp_block_end(p);
    } else
        st = herd_jp_block_end(p);
    *out = n;
    return st;
}

static herd_status parse_for(P *p, jnode **out)
{
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const endfor[] = {"endfor", NULL};
    jnode *n = herd_jp_mk(p, S_FOR, cur(p)->line);
    if (!n) return herd_jp_nomem();
    herd_status st = parse_targets(p, n);
    if (!st && !is_name(p, "in")) st = herd_jp_err(p, "expected 'in' in a for loop");
    if (st) return st;
    adv(p);
    if ((st = herd_jp_tuple(p, false, false, "recursive", &n->a))) return st;
    if (is_name(p, "if")) {
        adv(p);
        if ((st = herd_jp_expression(p, true, &n->d))) return st;
    }
    if (is_name(p, "recursive")) return herd_jp_unsup(p, "recursive for loops");
    if ((st = herd_jp_block_end(p))) return st;
    const char *which;
    p->loop_depth++;
    st = parse_body(p, ends, &n->b, &which);
    p->loop_depth--;
    if (!st && !strcmp(which, "else")) {
        if (!(st = herd_jp_block_end(p))) st = parse_body(p, endfor, &n->c, &which);
    }
    if (!st) st = herd_jp_block_end(p);
    *out = n;
    return st;
}

/* A chain of filters over an implicit input: "{% filter f|g %}" (inline) or
 * "{% set x | f %}". */
static herd_status parse_filter_chain(P *p, bool inline_, jnode **out)
{
    *out = NULL;
    herd_status st = HERD_OK;
    if (inline_ ? cur(p)->kind != TK_NAME : !is_op(p, "|"))
        return herd_jp_err(p, "expected a filter");
    if (inline_) st = herd_jp_filter(p, NULL, true, out);
    while (!st && is_op(p, "|")) st = herd_jp_filter(p, *out, false, out);
    return st;
}

static herd_status parse_set(P *p, jnode **out)
{
    static const char *const ends[] = {"endset", NULL};
    int line = cur(p)->line;
    herd_status st;
    jnode *n = herd_jp_mk(p, S_SET, line);
    if (!n) return herd_jp_nomem();
    if (cur(p)->kind == TK_NAME && tok_op(look(p), ".")) { /* ns.attr */
        if (!herd_jp_add_name(n, cur(p)->text)) return herd_jp_nomem();
        adv(p);
        adv(p);
        if (cur(p)->kind != TK_NAME) return herd_jp_err(p, "expected an attribute name");
        if (!(n->str = strdup(cur(p)->text))) return herd_jp_nomem();
        adv(p);
    } else if ((st = parse_targets(p, n)))
        return st;
    if (is_op(p, "=")) {
        adv(p);
        if ((st = herd_jp_tuple(p, true, false, NULL, &n->a))) return st;
        *out = n;
        return herd_jp_block_end(p);
    }
    if (n->str || n->nnames != 1) return herd_jp_err(p, "expected '='");
    n->kind = S_SETBLOCK;
    if (is_op(p, "|") && (st = parse_filter_chain(p, false, &n->d))) return st;
    const char *which;
    if ((st = herd_jp_block_end(p)) || (st = parse_body(p, ends, &n->b, &which))) return st;
    *out = n;
    return herd_jp_block_end(p);
}

static herd_status parse_macro(P *p, jnode **out)
{
    static const char *const ends[] = {"endmacro", NULL};
    jnode *n = herd_jp_mk(p, S_MACRO, cur(p)->line);
    herd_status st;
    if (!n) return herd_jp_nomem();
    if (cur(p)->kind != TK_NAME) return herd_jp_err(p, "expected a macro name");
    if (!(n->str = strdup(cur(p)->text))) return herd_jp_nomem();
    adv(p);
    if ((st = herd_jp_expect_op(p, "("))) return st;
    bool defaults = false;
    while (!is_op(p, ")")) {
        if (n->nnames && (st = herd_jp_expect_op(p, ","))) return st;
        if (cur(p)->kind != TK_NAME) return herd_jp_err(p, "expected a parameter name");
        if (!herd_jp_add_name(n, cur(p)->text)) return herd_jp_nomem();
        adv(p);
        jnode *def = NULL;
        if (is_op(p, "=")) {
            adv(p);
            if ((st = herd_jp_expression(p, true, &def))) return st;
            defaults = true;
        } else if (defaults)
            return herd_jp_err(p, "non-default argument follows default argument");
        if (!herd_jp_add_arg(n, def)) return herd_jp_nomem();
    }
    adv(p);
    if ((st = herd_jp_block_end(p))) return st;
    P saved = *p;
    p->loop_depth = 0;
    p->macro_depth++;
    p->uses_varargs = p->uses_kwargs = false;
    const char *which;
    st = parse_body(p, ends, &n->b, &which);
    n->flag = p->uses_varargs;
    n->flag2 = p->uses_kwargs;
    p->loop_depth = saved.loop_depth;
    p->macro_depth = saved.macro_depth;
    p->uses_varargs = saved.uses_varargs;
    p->uses_kwargs = saved.uses_kwargs;
    *out = n;
    return st ? st : herd_jp_block_end(p);
}

static herd_status parse_with(P *p, jnode **out)
{
    static const char *const ends[] = {"endwith", NULL};
    jnode *n = herd_jp_mk(p, S_WITH, cur(p)->line);
    herd_status st;
    if (!n) return herd_jp_nomem();
    while (cur(p)->kind != TK_BLOCK_END) {
        if (n->nnames && (st = herd_jp_expect_op(p, ","))) return st;
        if (cur(p)->kind != TK_NAME) return herd_jp_err(p, "expected a variable name");
        if (!herd_jp_add_name(n, cur(p)->text)) return herd_jp_nomem();
        adv(p);
        jnode *v;
        if ((st = herd_jp_expect_op(p, "=")) || (st = herd_jp_expression(p, true, &v))) return st;
        if (!herd_jp_add_arg(n, v)) return herd_jp_nomem();
    }
    const char *which;
    if ((st = herd_jp_block_end(p)) || (st = parse_body(p, ends, &n->b, &which))) return st;
    *out = n;
    return herd_jp_block_end(p);
}

static herd_status parse_statement(P *p, jnode **out)
{
    const jtok *k = cur(p);
    const char *name = k->text;
    int line = k->line;
    const char *which;
    herd_status st;
    adv(p);
    if (!strcmp(name, "if")) return parse_if(p, out);
    if (!strcmp(name, "for")) return parse_for(p, out);
    if (!strcmp(name, "set")) return parse_set(p, out);
    if (!strcmp(name, "macro")) return parse_macro(p, out);
    if (!strcmp(name, "with")) return parse_with(p, out);
    if (!strcmp(name, "break") || !strcmp(name, "continue")) {
        if (!p->loop_depth) return herd_jp_err(p, "'%s' outside of a loop", name);
        if (!(*out = herd_jp_mk(p, name[0] == 'b' ? S_BREAK : S_CONTINUE, line)))
            return herd_jp_nomem();
        return herd_jp_block_end(p);
    }
    if (!strcmp(name, "generation")) { /* transformers' tag: the body, unchanged */
        static const char *const ends[] = {"endgeneration", NULL};
        if ((st = herd_jp_block_end(p)) || (st = parse_body(p, ends, out, &which))) return st;
        return herd_jp_block_end(p);
    }
    if (!strcmp(name, "filter")) {
        static const char *const ends[] = {"endfilter", NULL};
        jnode *n = herd_jp_mk(p, S_FILTERBLOCK, line);
        if (!n) return herd_jp_nomem();
        *out = n;
        if ((st = parse_filter_chain(p, true, &n->d)) || (st = herd_jp_block_end(p))) return st;
        if ((st = parse_body(p, ends, &n->b, &which))) return st;
        return herd_jp_block_end(p);
    }
    static const char *const unsupported[] = {"call",  "include", "import",     "from", "extends",
                                              "block", "trans",   "autoescape", NULL};
    for (int i = 0; unsupported[i]; i++) {
        if (!strcmp(name, unsupported[i])) {
            char what[64];
            snprintf(what, sizeof what, "{%% %s %%}", name);
            p->i--;
            return herd_jp_unsup(p, what);
        }
    }
    p->i--;
    if (!strncmp(name, "end", 3) || !strcmp(name, "else") || !strcmp(name, "elif"))
        return herd_jp_err(p, "unexpected '%s'", name);
    return herd_jp_err(p, "unknown tag '%s'", name);
}

static herd_status parse_body(P *p, const char *const *ends, jnode **out, const char **which)
{
    if (++p->nest > MAX_NEST) return herd_jp_err(p, "blocks nested too deeply");
    jnode *body = herd_jp_mk(p, S_BODY, cur(p)->line);
    if (!body) return herd_jp_nomem();
    *out = body;
    herd_status st = HERD_OK;
    while (!st) {
        const jtok *k = cur(p);
        jnode *n = NULL;
        if (k->kind == TK_EOF) {
            if (ends) {
                char want[100] = "";
                for (int i = 0; ends[i]; i++) {
                    strcat(want, i ? (ends[i + 1] ? "', '" : "' or '") : "'");
                    strcat(want, ends[i]);
                }
                st = herd_jp_err(p, "unexpected end of template, expected %s'", want);
            }
            break;
        } else if (k->kind == TK_TEXT) {
            if (!(n = herd_jp_mk(p, S_TEXT, k->line))) return herd_jp_nomem();
            n->val = herd_jv_str(k->text, k->len);
            herd_jv_set_constant(n->val);
            if (n->val.kind != JV_STR) return herd_jp_nomem();
            adv(p);
        } else if (k->kind == TK_VAR_BEGIN) {
            adv(p);
            if (!(n = herd_jp_mk(p, S_OUTPUT, k->line))) return herd_jp_nomem();
            if (!(st = herd_jp_tuple(p, true, false, NULL, &n->a)))
                st = herd_jp_expect_kind(p, TK_VAR_END, "end of print statement");
        } else if (k->kind == TK_BLOCK_BEGIN) {
            adv(p);
            if (cur(p)->kind != TK_NAME) {
                st = herd_jp_err(p, "expected a tag name, got '%s'", herd_jp_describe(cur(p)));
                break;
            }
            bool end = false;
            for (int i = 0; ends && ends[i] && !end; i++) {
                if (is_name(p, ends[i])) {
                    *which = ends[i];
                    end = true;
                }
            }
            if (end) {
                adv(p);
                break;
            }
            st = parse_statement(p, &n);
        } else
            st = herd_jp_err(p, "unexpected %s", herd_jp_describe(k));
        if (!st && n && !herd_jp_add_arg(body, n)) st = herd_jp_nomem();
    }
    p->nest--;
    return st;
}

herd_status herd_jinja_parse(const jtoks *toks, herd_chat_template *t)
{
    P p = {.tk = toks, .t = t};
    const char *which;
    return parse_body(&p, NULL, &t->root, &which);
}
