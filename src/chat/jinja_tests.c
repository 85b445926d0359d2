/*
 * jinja_tests.c — jinja2's tests (`x is defined`, `x is string`, ...), with
 * the Python type rules they encode: bool counts as a number but not as an
 * integer, a string is iterable, undefined is iterable and a sequence, and
 * sameas is identity.
 */
#define _GNU_SOURCE
#include "chat/jinja.h"

#include <string.h>

typedef enum {
    T_BOOLEAN,
    T_CALLABLE,
    T_DEFINED,
    T_DIVISIBLEBY,
    T_EQ,
    T_ESCAPED,
    T_EVEN,
    T_FALSE,
    T_FILTER,
    T_FLOAT,
    T_GE,
    T_GT,
    T_IN,
    T_INTEGER,
    T_ITERABLE,
    T_LE,
    T_LOWER,
    T_LT,
    T_MAPPING,
    T_NE,
    T_NONE,
    T_NUMBER,
    T_ODD,
    T_SAMEAS,
    T_SEQUENCE,
    T_STRING,
    T_TEST,
    T_TRUE,
    T_UNDEFINED,
    T_UPPER
} test_kind;

static const struct {
    const char *name;
    test_kind kind;
} tests[] = {
    {"boolean", T_BOOLEAN},
    {"callable", T_CALLABLE},
    {"defined", T_DEFINED},
    {"divisibleby", T_DIVISIBLEBY},
    {"eq", T_EQ},
    {"equalto", T_EQ},
    {"==", T_EQ},
    {"escaped", T_ESCAPED},
    {"even", T_EVEN},
    {"false", T_FALSE},
    {"filter", T_FILTER},
    {"float", T_FLOAT},
    {"ge", T_GE},
    {">=", T_GE},
    {"gt", T_GT},
    {"greaterthan", T_GT},
    {">", T_GT},
    {"in", T_IN},
    {"integer", T_INTEGER},
    {"iterable", T_ITERABLE},
    {"le", T_LE},
    {"<=", T_LE},
    {"lower", T_LOWER},
    {"lt", T_LT},
    {"lessthan", T_LT},
    {"<", T_LT},
    {"mapping", T_MAPPING},
    {"ne", T_NE},
    {"!=", T_NE},
    {"none", T_NONE},
    {"number", T_NUMBER},
    {"odd", T_ODD},
    {"sameas", T_SAMEAS},
    {"sequence", T_SEQUENCE},
    {"string", T_STRING},
    {"test", T_TEST},
    {"true", T_TRUE},
    {"undefined", T_UNDEFINED},
    {"upper", T_UPPER},
};
#define N_TESTS (sizeof tests / sizeof tests[0])

int herd_jinja_test_id(const char *name)
{
    for (size_t i = 0; i < N_TESTS; i++)
        if (!strcmp(tests[i].name, name)) return (int)i;
    return -1;
}

static herd_status cmp_test(const char *op, jv a, jv b, int line, bool *out)
{
    if (a.kind == JV_UNDEF) return herd_jerr_undef(a, line);
    int c;
    if (!herd_jv_compare(a, b, &c))
        return herd_jerr(HERD_E_INVALID, line,
                         "'%s' not supported between instances of '%s' and '%s'", op,
                         herd_jv_type_name(a), herd_jv_type_name(b));
    *out = c == 2 ? false : op[0] == '<' ? (op[1] ? c <= 0 : c < 0) : (op[1] ? c >= 0 : c > 0);
    return HERD_OK;
}

/* value % div == want, with Python's % (floats too). */
static herd_status mod_test(jv v, jv div, int64_t want, int line, bool *out)
{
    jv r = jv_undef(NULL);
    herd_status st = herd_jinja_binop("%", v, div, line, &r);
    *out = !st && herd_jv_equal(r, jv_int(want));
    herd_jv_release(r);
    return st;
}

herd_status herd_jinja_test(jrender *r, jscope *s, int id, jv v, jv *a, size_t n, int line,
                            bool *out)
{
    (void)r;
    (void)s;
    test_kind k = tests[id].kind;
    if (!jv_charge(1)) return herd_jv_stop_error(line);
    jv arg = n > 0 ? a[0] : jv_undef(NULL);
    bool needs = k == T_DIVISIBLEBY || k == T_EQ || k == T_GE || k == T_GT || k == T_IN ||
                 k == T_LE || k == T_LT || k == T_NE || k == T_SAMEAS;
    if (needs && n != 1)
        return herd_jerr(HERD_E_INVALID, line, "the %s test takes one argument", tests[id].name);
    jbuf b = {0};
    herd_status st = HERD_OK;
    switch (k) {
    case T_BOOLEAN:
        *out = v.kind == JV_BOOL;
        break;
    case T_CALLABLE:
        *out = v.kind == JV_MACRO || v.kind == JV_FUNC || v.kind == JV_METHOD || v.kind == JV_UNDEF;
        break;
    case T_DEFINED:
        *out = v.kind != JV_UNDEF;
        break;
    case T_UNDEFINED:
        *out = v.kind == JV_UNDEF;
        break;
    case T_DIVISIBLEBY:
        return mod_test(v, arg, 0, line, out);
    case T_EVEN:
        return mod_test(v, jv_int(2), 0, line, out);
    case T_ODD:
        return mod_test(v, jv_int(2), 1, line, out);
    case T_EQ:
        *out = herd_jv_equal(v, arg);
        break;
    case T_NE:
        *out = !herd_jv_equal(v, arg);
        break;
    case T_LT:
        return cmp_test("<", v, arg, line, out);
    case T_LE:
        return cmp_test("<=", v, arg, line, out);
    case T_GT:
        return cmp_test(">", v, arg, line, out);
    case T_GE:
        return cmp_test(">=", v, arg, line, out);
    case T_ESCAPED:
        *out = false;
        break;
    case T_FALSE:
        *out = v.kind == JV_BOOL && !v.u.b;
        break;
    case T_TRUE:
        *out = v.kind == JV_BOOL && v.u.b;
        break;
    case T_FILTER:
        *out = v.kind == JV_STR && herd_jinja_filter_id(jv_sp(v)) >= 0;
        break;
    case T_TEST:
        *out = v.kind == JV_STR && herd_jinja_test_id(jv_sp(v)) >= 0;
        break;
    case T_FLOAT:
        *out = v.kind == JV_FLOAT;
        break;
    case T_INTEGER:
        *out = v.kind == JV_INT;
        break;
    case T_NUMBER:
        *out = herd_jv_is_number(v);
        break;
    case T_IN:
        if (arg.kind == JV_STR && v.kind == JV_STR && herd_jv_charge_bytes(jv_slen(arg)))
            *out = memmem(jv_sp(arg), jv_slen(arg), jv_sp(v), jv_slen(v)) != NULL || !jv_slen(v);
        else if (arg.kind == JV_LIST) {
            *out = false;
            for (size_t i = 0; i < arg.u.l->n && !*out && jv_charge(1); i++)
                *out = herd_jv_equal(arg.u.l->v[i], v);
        } else if (arg.kind == JV_DICT)
            *out = v.kind == JV_STR && herd_jv_dict_get(arg, jv_sp(v), jv_slen(v));
        else if (arg.kind == JV_UNDEF)
            *out = false;
        else
            return herd_jerr(HERD_E_INVALID, line, "argument of type '%s' is not iterable",
                             herd_jv_type_name(arg));
        break;
    case T_ITERABLE:
        *out = v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_DICT || v.kind == JV_UNDEF ||
               v.kind == JV_LOOP;
        break;
    case T_SEQUENCE: /* has len() and [] */
        *out = v.kind == JV_STR || v.kind == JV_DICT || v.kind == JV_UNDEF ||
               (v.kind == JV_LIST && (v.u.l->view == JV_VIEW_NONE || v.u.l->view == JV_VIEW_RANGE));
        break;
    case T_MAPPING:
        *out = v.kind == JV_DICT;
        break;
    case T_NONE:
        *out = v.kind == JV_NONE;
        break;
    case T_STRING:
        *out = v.kind == JV_STR;
        break;
    case T_SAMEAS:
        if (v.kind != arg.kind)
            *out = false;
        else if (v.kind == JV_NONE || v.kind == JV_UNDEF)
            *out = true;
        else if (v.kind == JV_BOOL || v.kind == JV_INT)
            *out = herd_jv_equal(v, arg);
        else if (v.kind == JV_STR)
            *out = v.u.s == arg.u.s;
        else if (v.kind == JV_LIST)
            *out = v.u.l == arg.u.l;
        else if (v.kind == JV_DICT || v.kind == JV_NS)
            *out = v.u.d == arg.u.d;
        else
            *out = herd_jv_equal(v, arg);
        break;
    case T_LOWER:
    case T_UPPER: {
        jv sv, res = jv_undef(NULL);
        if (!herd_jv_to_str(&b, v))
            return herd_jerr(HERD_E_UNSUPPORTED, line, "a case test on a %s", herd_jv_type_name(v));
        sv = herd_jbuf_to_str(&b);
        st = herd_jinja_call_method(r, sv, k == T_LOWER ? "islower" : "isupper", NULL, 0, NULL,
                                    NULL, 0, line, &res);
        *out = !st && herd_jv_truthy(res);
        herd_jv_release(sv);
        herd_jv_release(res);
        return st;
    }
    }
    return st;
}
