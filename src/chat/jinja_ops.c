/*
 * jinja_ops.c — Python's operators on template values: + - * / // % ** with
 * int/float promotion (bool is an int), str and list concatenation and
 * repetition, comparisons, and `in` for strings, lists and dicts.
 *
 * Python integers are unbounded; herd's are 64-bit, and an overflow is an
 * "unsupported" error rather than a wrong number. Using an undefined value in
 * arithmetic or ordering is an error, as with jinja2's default Undefined.
 */
#define _GNU_SOURCE
#include "chat/jinja.h"

#include <math.h>
#include <string.h>

static herd_status type_error(const char *op, jv a, jv b, int line)
{
    if (a.kind == JV_STR && !strcmp(op, "+"))
        return herd_jerr(HERD_E_INVALID, line, "can only concatenate str (not \"%s\") to str",
                         herd_jv_type_name(b));
    return herd_jerr(HERD_E_INVALID, line, "unsupported operand type(s) for %s: '%s' and '%s'", op,
                     herd_jv_type_name(a), herd_jv_type_name(b));
}

/* x ** y for y >= 0 by squaring: at most 63 squarings, and the bases whose
 * powers never grow (0, 1, -1) answered at once. false on overflow: a result
 * beyond 64 bits, which Python would compute as a big integer. */
static bool int_pow(int64_t x, int64_t y, int64_t *out)
{
    if (x == 0 || x == 1 || y == 0) {
        *out = y == 0 ? 1 : x;
        return true;
    }
    if (x == -1) {
        *out = y & 1 ? -1 : 1;
        return true;
    }
    if (y >= 64) return false; /* |x| >= 2: 2**63 is already out of range */
    int64_t r = 1, base = x;
    for (;;) {
        if ((y & 1) && __builtin_mul_overflow(r, base, &r)) return false;
        y >>= 1;
        if (!y) break;
        if (__builtin_mul_overflow(base, base, &base)) return false;
    }
    *out = r;
    return true;
}

herd_status herd_jinja_int_op(char op, int64_t x, int64_t y, int line, jv *out)
{
    int64_t r = 0;
    bool ovf = false;
    switch (op) {
    case '+':
        ovf = __builtin_add_overflow(x, y, &r);
        break;
    case '-':
        ovf = __builtin_sub_overflow(x, y, &r);
        break;
    case '*':
        ovf = __builtin_mul_overflow(x, y, &r);
        break;
    case '/': /* floor division */
    case '%':
        if (y == 0) return herd_jerr(HERD_E_INVALID, line, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1)
            ovf = true;
        else if (op == '/')
            r = x / y - ((x % y != 0) && ((x < 0) != (y < 0)));
        else {
            r = x % y;
            if (r != 0 && (r < 0) != (y < 0)) r += y; /* the divisor's sign, as in Python */
        }
        break;
    case 'p':
        ovf = !int_pow(x, y, &r);
        break;
    }
    if (ovf) return herd_jerr(HERD_E_UNSUPPORTED, line, "integer overflow (big integers)");
    *out = jv_int(r);
    return HERD_OK;
}

static herd_status num_op(const char *op, jv a, jv b, int line, jv *out)
{
    if (jv_is_intlike(a) && jv_is_intlike(b)) {
        if (!strcmp(op, "/")) {
            if (jv_ival(b) == 0) return herd_jerr(HERD_E_INVALID, line, "division by zero");
            *out = jv_float((double)jv_ival(a) / (double)jv_ival(b));
            return HERD_OK;
        }
        if (!strcmp(op, "**") && jv_ival(b) < 0) {
            *out = jv_float(pow((double)jv_ival(a), (double)jv_ival(b)));
            return HERD_OK;
        }
        char c = !strcmp(op, "//") ? '/' : !strcmp(op, "**") ? 'p' : op[0];
        return herd_jinja_int_op(c, jv_ival(a), jv_ival(b), line, out);
    }
    double x = herd_jv_num(a), y = herd_jv_num(b), r;
    if ((!strcmp(op, "/") || !strcmp(op, "//") || !strcmp(op, "%")) && y == 0)
        return herd_jerr(HERD_E_INVALID, line, "float division by zero");
    switch (op[0]) {
    case '+':
        r = x + y;
        break;
    case '-':
        r = x - y;
        break;
    case '%':
        r = fmod(x, y);
        if (r != 0 && (r < 0) != (y < 0)) r += y;
        break;
    case '/':
        r = op[1] ? floor(x / y) : x / y;
        break;
    default:
        r = op[1] ? pow(x, y) : x * y;
        break;
    }
    *out = jv_float(r);
    return HERD_OK;
}

herd_status herd_jinja_binop(const char *op, jv a, jv b, int line, jv *out)
{
    if (a.kind == JV_UNDEF) return herd_jerr_undef(a, line);
    if (b.kind == JV_UNDEF) return herd_jerr_undef(b, line);
    if (herd_jv_is_number(a) && herd_jv_is_number(b)) return num_op(op, a, b, line, out);
    if (!strcmp(op, "+")) {
        if (a.kind == JV_STR && b.kind == JV_STR) {
            jbuf buf = {0};
            herd_jbuf_put(&buf, jv_sp(a), jv_slen(a));
            herd_jbuf_put(&buf, jv_sp(b), jv_slen(b));
            *out = buf.p ? herd_jbuf_to_str(&buf) : herd_jv_str("", 0);
            return HERD_OK;
        }
        if (a.kind == JV_LIST && b.kind == JV_LIST && a.u.l->tuple == b.u.l->tuple &&
            !a.u.l->view && !b.u.l->view) {
            if (!jv_charge(a.u.l->n + b.u.l->n)) return herd_jv_stop_error(line);
            *out = herd_jv_list_new(a.u.l->n + b.u.l->n, a.u.l->tuple);
            for (size_t i = 0; i < a.u.l->n; i++)
                herd_jv_list_push_take(*out, herd_jv_retain(a.u.l->v[i]));
            for (size_t i = 0; i < b.u.l->n; i++)
                herd_jv_list_push_take(*out, herd_jv_retain(b.u.l->v[i]));
            return HERD_OK;
        }
    }
    if (!strcmp(op, "*") && (jv_is_intlike(a) || jv_is_intlike(b))) {
        jv seq = jv_is_intlike(a) ? b : a;
        int64_t k = jv_is_intlike(a) ? jv_ival(a) : jv_ival(b);
        if (k < 0) k = 0;
        if (seq.kind == JV_STR) { /* the size checked before anything is made */
            size_t len = jv_slen(seq);
            if (len && (uint64_t)k > HERD_CHAT_MAX_OUTPUT / len) {
                herd_jv_limit(HERD_CHAT_LIMIT_OUTPUT);
                return herd_jv_stop_error(line);
            }
            *out = herd_pystr_repeat(seq, len ? k : 0);
            return HERD_OK;
        }
        if (seq.kind == JV_LIST && !seq.u.l->view) {
            size_t n = seq.u.l->n;
            if (n && (uint64_t)k > HERD_CHAT_MAX_STEPS / n) {
                herd_jv_limit(HERD_CHAT_LIMIT_STEPS);
                return herd_jv_stop_error(line);
            }
            if (!n) k = 0;
            *out = herd_jv_list_new(n * (size_t)k, seq.u.l->tuple);
            for (int64_t j = 0; j < k && !herd_jv_nomem; j++)
                for (size_t i = 0; i < seq.u.l->n; i++)
                    herd_jv_list_push_take(*out, herd_jv_retain(seq.u.l->v[i]));
            return HERD_OK;
        }
    }
    if (!strcmp(op, "%") && a.kind == JV_STR)
        return herd_jerr(HERD_E_UNSUPPORTED, line, "'%%' string formatting is not supported");
    return type_error(op, a, b, line);
}

static herd_status contains(jv container, jv item, int line, bool *out)
{
    switch (container.kind) {
    case JV_UNDEF:
        *out = false;
        return HERD_OK;
    case JV_STR:
        if (item.kind != JV_STR)
            return herd_jerr(HERD_E_INVALID, line,
                             "'in <string>' requires string as left operand, not %s",
                             herd_jv_type_name(item));
        herd_jv_charge_bytes(jv_slen(container));
        *out = jv_slen(item) == 0 ||
               memmem(jv_sp(container), jv_slen(container), jv_sp(item), jv_slen(item)) != NULL;
        return HERD_OK;
    case JV_LIST: {
        jv items; /* an iterator is consumed by the search */
        herd_status st = herd_jinja_iterate(container, line, &items);
        if (st) return st;
        *out = false;
        for (size_t i = 0; i < items.u.l->n && !*out && jv_charge(1); i++)
            *out = herd_jv_equal(items.u.l->v[i], item);
        herd_jv_release(items);
        return HERD_OK;
    }
    case JV_DICT:
        if (item.kind == JV_LIST || item.kind == JV_DICT)
            return herd_jerr(HERD_E_INVALID, line, "unhashable type: '%s'",
                             herd_jv_type_name(item));
        *out = item.kind == JV_STR && herd_jv_dict_get(container, jv_sp(item), jv_slen(item));
        return HERD_OK;
    default:
        return herd_jerr(HERD_E_INVALID, line, "argument of type '%s' is not iterable",
                         herd_jv_type_name(container));
    }
}

herd_status herd_jinja_compare(const char *op, jv a, jv b, int line, bool *out)
{
    if (!strcmp(op, "=="))
        *out = herd_jv_equal(a, b);
    else if (!strcmp(op, "!="))
        *out = !herd_jv_equal(a, b);
    else if (!strcmp(op, "in"))
        return contains(b, a, line, out);
    else if (!strcmp(op, "not in")) {
        herd_status st = contains(b, a, line, out);
        *out = !*out;
        return st;
    } else {
        if (a.kind == JV_UNDEF) return herd_jerr_undef(a, line);
        if (b.kind == JV_UNDEF) return herd_jerr_undef(b, line);
        int c;
        if (!herd_jv_compare(a, b, &c))
            return herd_jerr(HERD_E_INVALID, line,
                             "'%s' not supported between instances of '%s' and '%s'", op,
                             herd_jv_type_name(a), herd_jv_type_name(b));
        if (c == 2)
            *out = false; /* NaN */
        else if (!strcmp(op, "<"))
            *out = c < 0;
        else if (!strcmp(op, "<="))
            *out = c <= 0;
        else if (!strcmp(op, ">"))
            *out = c > 0;
        else
            *out = c >= 0;
    }
    return HERD_OK;
}
