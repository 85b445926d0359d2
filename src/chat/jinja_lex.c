/*
 * herd_jinja_lex.c — template source to tokens, with jinja2's whitespace rules.
 *
 * Whitespace is where renderings most easily differ, so this follows the
 * jinja2 3.1 lexer step by step, as transformers configures it:
 *   - newlines are normalized to \n and one trailing newline of the source is
 *     dropped (keep_trailing_newline=False);
 *   - "{%-" / "{{-" / "{#-" strip all whitespace before the tag; "-%}" / "-}}"
 *     / "-#}" all whitespace after it;
 *   - lstrip_blocks: spaces and tabs between the start of a line and a block
 *     or comment tag are removed (not before "{{", not with "{%+"); "the start
 *     of a line" includes right after a tag whose match ended in a newline;
 *   - trim_blocks: one newline right after "%}" or "#}" is removed (not after
 *     "}}", not with "+%}");
 *   - the end of a tag is only recognized when brackets are balanced, so
 *     "{{ {'a': {'b': 1}} }}" works.
 * Comments vanish; {% raw %} ... {% endraw %} becomes text.
 */
#include "chat/jinja.h"

#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    const char *s;
    size_t n, pos;
    int line;
    jtoks *out;
} lexer;

static herd_status lex_err(const lexer *lx, const char *msg)
{
    return herd_seterr(HERD_E_FORMAT, "template syntax error, line %d: %s", lx->line, msg);
}

static jtok *push(lexer *lx, jtok_kind kind)
{
    jtoks *t = lx->out;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        jtok *v = realloc(t->v, cap * sizeof *v);
        if (!v) return NULL;
        t->v = v;
        t->cap = cap;
    }
    jtok *k = &t->v[t->n++];
    *k = (jtok){.kind = kind, .line = lx->line};
    return k;
}

static int count_nl(const char *s, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

static herd_status emit_text(lexer *lx, const char *p, size_t n)
{
    if (n == 0) return HERD_OK;
    jtok *k = push(lx, TK_TEXT);
    if (!k || !(k->text = malloc(n + 1))) return herd_seterr(HERD_E_NOMEM, "out of memory");
    memcpy(k->text, p, n);
    k->text[n] = 0;
    k->len = n;
    return HERD_OK;
}

/* Length of the whitespace (Python's \s) at s[i..n). */
static size_t ws_run(const char *s, size_t n, size_t i)
{
    size_t j = i;
    while (j < n) {
        size_t k = j;
        if (!herd_py_isspace(herd_u8_next(s, n, &k))) break;
        j = k;
    }
    return j - i;
}

/* Text before a tag, after the tag's whitespace control: "-" strips all
 * trailing whitespace; otherwise lstrip_blocks removes the indentation of a
 * block tag that starts its line. Returns the new length. */
static size_t control_text(const char *text, size_t n, char sign, bool is_var, bool line_starting)
{
    if (sign == '-') {
        while (n > 0) {
            size_t st = n - 1;
            while (st > 0 && ((unsigned char)text[st] & 0xc0) == 0x80) st--;
            size_t k = st;
            if (!herd_py_isspace(herd_u8_next(text, n, &k))) break;
            n = st;
        }
        return n;
    }
    if (sign == '+' || is_var) return n;
    size_t l_pos = n;
    while (l_pos > 0 && text[l_pos - 1] != '\n') l_pos--;
    if (l_pos == 0 && !line_starting) return n;
    if (l_pos < n && ws_run(text, n, l_pos) == n - l_pos) return l_pos;
    return n;
}

/* Is there "{%[-+]? raw [-]?%}" at s[at]? Sets *end past it, *sign. */
static bool raw_begin(const lexer *lx, size_t at, size_t *end, char *sign, bool *strip_after)
{
    const char *s = lx->s;
    size_t n = lx->n, i = at + 2;
    *sign = (i < n && (s[i] == '-' || s[i] == '+')) ? s[i++] : 0;
    i += ws_run(s, n, i);
    if (n - i < 3 || memcmp(s + i, "raw", 3) != 0) return false;
    i += 3;
    i += ws_run(s, n, i);
    *strip_after = false;
    if (i < n && s[i] == '-') {
        *strip_after = true;
        i++;
    }
    if (n - i < 2 || s[i] != '%' || s[i + 1] != '}') return false;
    *end = i + 2;
    return true;
}

/* {% raw %}: everything up to {% endraw %} is text. */
static herd_status lex_raw(lexer *lx, size_t begin_end, bool strip_after, bool *line_starting)
{
    const char *s = lx->s;
    size_t n = lx->n, i = begin_end;
    if (strip_after) i += ws_run(s, n, i);
    *line_starting = i > 0 && s[i - 1] == '\n';
    for (size_t j = i; j + 1 < n; j++) {
        if (s[j] != '{' || s[j + 1] != '%') continue;
        size_t k = j + 2;
        char sign = (k < n && (s[k] == '-' || s[k] == '+')) ? s[k++] : 0;
        k += ws_run(s, n, k);
        if (n - k < 6 || memcmp(s + k, "endraw", 6) != 0) continue;
        k += 6;
        k += ws_run(s, n, k);
        char esign = (k < n && (s[k] == '-' || s[k] == '+')) ? s[k++] : 0;
        if (n - k < 2 || s[k] != '%' || s[k + 1] != '}') continue;
        k += 2;
        size_t tn = control_text(s + i, j - i, sign, false, *line_starting);
        herd_status st = emit_text(lx, s + i, tn);
        if (st) return st;
        if (esign == '-')
            k += ws_run(s, n, k);
        else if (esign != '+' && k < n && s[k] == '\n')
            k++;
        lx->line += count_nl(s + begin_end, k - begin_end);
        *line_starting = s[k - 1] == '\n';
        lx->pos = k;
        return HERD_OK;
    }
    return lex_err(lx, "missing end of raw directive");
}

/* Python's unicode-escape decoding of a string literal's body. */
static herd_status decode_string(lexer *lx, const char *p, size_t n, jtok *k)
{
    jbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\' || i + 1 >= n) {
            herd_jbuf_putc(&b, p[i]);
            continue;
        }
        char c = p[++i];
        int hex = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
        if (hex) {
            uint32_t v = 0;
            int d = 0;
            for (; d < hex && i + 1 < n; d++) {
                char h = p[i + 1];
                int x = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (x < 0) break;
                v = v * 16 + (uint32_t)x;
                i++;
            }
            if (d < hex || v > 0x10ffff) {
                herd_jbuf_free(&b);
                return lex_err(lx, "bad escape in string literal");
            }
            herd_u8_put(&b, v);
            continue;
        }
        if (c >= '0' && c <= '7') {
            uint32_t v = (uint32_t)(c - '0');
            for (int d = 1; d < 3 && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '7'; d++)
                v = v * 8 + (uint32_t)(p[++i] - '0');
            herd_u8_put(&b, v);
            continue;
        }
        switch (c) {
        case 'n':
            herd_jbuf_putc(&b, '\n');
            break;
        case 't':
            herd_jbuf_putc(&b, '\t');
            break;
        case 'r':
            herd_jbuf_putc(&b, '\r');
            break;
        case 'a':
            herd_jbuf_putc(&b, '\a');
            break;
        case 'b':
            herd_jbuf_putc(&b, '\b');
            break;
        case 'f':
            herd_jbuf_putc(&b, '\f');
            break;
        case 'v':
            herd_jbuf_putc(&b, '\v');
            break;
        case '\\':
            herd_jbuf_putc(&b, '\\');
            break;
        case '\'':
            herd_jbuf_putc(&b, '\'');
            break;
        case '"':
            herd_jbuf_putc(&b, '"');
            break;
        case '\n':
            break; /* line continuation */
        case 'N':
            herd_jbuf_free(&b);
            return lex_err(lx, "\\N{...} escapes are not supported");
        default: /* Python keeps unknown escapes as written */
            herd_jbuf_putc(&b, '\\');
            herd_jbuf_putc(&b, c);
        }
    }
    if (herd_jv_nomem) {
        herd_jbuf_free(&b);
        return herd_seterr(HERD_E_NOMEM, "out of memory");
    }
    k->len = b.n;
    k->text = b.p ? b.p : calloc(1, 1);
    return k->text ? HERD_OK : herd_seterr(HERD_E_NOMEM, "out of memory");
}

static herd_status lex_string(lexer *lx)
{
    const char *s = lx->s;
    char q = s[lx->pos];
    size_t i = lx->pos + 1;
    while (i < lx->n && s[i] != q) i += s[i] == '\\' ? 2 : 1;
    if (i >= lx->n) return lex_err(lx, "unterminated string literal");
    jtok *k = push(lx, TK_STRING);
    if (!k) return herd_seterr(HERD_E_NOMEM, "out of memory");
    herd_status st = decode_string(lx, s + lx->pos + 1, i - lx->pos - 1, k);
    lx->line += count_nl(s + lx->pos, i - lx->pos);
    lx->pos = i + 1;
    return st;
}

static bool isdig(char c)
{
    return c >= '0' && c <= '9';
}
/* The value of a hex digit (any base up to 16), or -1. */
static int digit_of(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 32);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}
static bool isname0(char c)
{
    return ((c | 32) >= 'a' && (c | 32) <= 'z') || c == '_';
}

/* An integer literal beyond 64 bits: Python's ints are unbounded, herd's are
 * not, so it is refused, naming the literal (cut short if very long). */
static herd_status big_literal(const lexer *lx, const char *lit, size_t n)
{
    return herd_seterr(HERD_E_UNSUPPORTED,
                       "unsupported template construct, line %d: the integer literal %.*s%s is "
                       "beyond 64 bits",
                       lx->line, (int)(n > 60 ? 60 : n), lit, n > 60 ? "..." : "");
}

/* Digits of base at s[i..n) with single '_' between them, as Python (and
 * jinja2's lexer) accept; appended to b without the underscores. */
static size_t scan_digits(const char *s, size_t i, size_t n, int base, bool lead_us, jbuf *b)
{
    for (bool first = !lead_us; i < n; first = false) {
        size_t j = i + (!first && s[i] == '_');
        int d = j < n ? digit_of(s[j]) : -1;
        if (d < 0 || d >= base) break;
        herd_jbuf_putc(b, s[j]);
        i = j + 1;
    }
    return i;
}

/* A number: 0x / 0o / 0b integers, decimal integers, and floats with a
 * fraction or an exponent. Floats are read by strtod from every digit of the
 * literal, so they round exactly as Python's float() does; integers are exact
 * or refused. */
static herd_status lex_number(lexer *lx)
{
    const char *s = lx->s;
    size_t i = lx->pos, n = lx->n;
    jbuf b = {0};
    bool is_float = false;
    int base = 10;
    if (s[i] == '0' && i + 1 < n) {
        char x = (char)(s[i + 1] | 32);
        base = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 10;
        if (base != 10 && i + 2 < n && digit_of(s[i + 2 + (s[i + 2] == '_')]) >= 0 &&
            digit_of(s[i + 2 + (s[i + 2] == '_')]) < base)
            i = scan_digits(s, i + 2, n, base, true, &b);
        else
            base = 10; /* "0" then a name, as in jinja2 */
    }
    if (base == 10) {
        i = scan_digits(s, i, n, 10, false, &b);
        bool after_dot = lx->pos > 0 && s[lx->pos - 1] == '.';
        if (!after_dot && i + 1 < n && s[i] == '.' && isdig(s[i + 1])) {
            is_float = true;
            herd_jbuf_putc(&b, '.');
            i = scan_digits(s, i + 1, n, 10, false, &b);
        }
        if (!after_dot && i < n && (s[i] | 32) == 'e') {
            size_t j = i + 1;
            if (j < n && (s[j] == '+' || s[j] == '-')) j++;
            if (j < n && isdig(s[j])) {
                is_float = true;
                herd_jbuf_put(&b, s + i, j - i);
                i = scan_digits(s, j, n, 10, false, &b);
            }
        }
    }
    herd_status st = HERD_OK;
    jtok *k = herd_jv_nomem || !b.p ? NULL : push(lx, is_float ? TK_FLOAT : TK_INT);
    if (!k)
        st = herd_seterr(HERD_E_NOMEM, "out of memory");
    else if (is_float)
        k->fval = strtod(b.p, NULL);
    else {
        int64_t v = 0;
        for (size_t d = 0; d < b.n && !st; d++)
            if (__builtin_mul_overflow(v, base, &v) ||
                __builtin_add_overflow(v, digit_of(b.p[d]), &v))
                st = big_literal(lx, s + lx->pos, i - lx->pos);
        k->ival = v;
    }
    herd_jbuf_free(&b);
    lx->pos = i;
    return st;
}

static const char *const ops2[] = {"//", "**", "==", "!=", ">=", "<=", NULL};
static const char ops1[] = "+-*/%~[](){}><=.:|,;";

/* The tokens of one {{ }} or {% %} tag, up to and including its end. */
static herd_status lex_tag(lexer *lx, bool is_block, bool *line_starting)
{
    const char *s = lx->s;
    size_t n = lx->n;
    char stack[64];
    int depth = 0;
    herd_status st;
    for (;;) {
        size_t w = ws_run(s, n, lx->pos);
        lx->line += count_nl(s + lx->pos, w);
        lx->pos += w;
        if (lx->pos >= n) return lex_err(lx, is_block ? "unclosed '{%' tag" : "unclosed '{{' tag");
        const char *p = s + lx->pos;
        size_t left = n - lx->pos;
        char close = is_block ? '%' : '}';
        if (depth == 0) {
            bool minus = left >= 3 && p[0] == '-' && p[1] == close && p[2] == '}';
            bool plus = is_block && left >= 3 && p[0] == '+' && p[1] == close && p[2] == '}';
            if (minus || plus || (left >= 2 && p[0] == close && p[1] == '}')) {
                if (!push(lx, is_block ? TK_BLOCK_END : TK_VAR_END))
                    return herd_seterr(HERD_E_NOMEM, "out of memory");
                lx->pos += (minus || plus) ? 3 : 2;
                size_t skip = 0;
                if (minus)
                    skip = ws_run(s, n, lx->pos);
                else if (is_block && !plus && lx->pos < n && s[lx->pos] == '\n')
                    skip = 1;
                lx->line += count_nl(s + lx->pos, skip);
                lx->pos += skip;
                *line_starting = s[lx->pos - 1] == '\n';
                return HERD_OK;
            }
        }
        char c = p[0];
        if (c == '\'' || c == '"')
            st = lex_string(lx);
        else if (isdig(c))
            st = lex_number(lx);
        else if (isname0(c)) {
            size_t i = 0;
            while (i < left && (isname0(p[i]) || isdig(p[i]))) i++;
            jtok *k = push(lx, TK_NAME);
            if (!k || !(k->text = strndup(p, i))) return herd_seterr(HERD_E_NOMEM, "out of memory");
            k->len = i;
            lx->pos += i;
            st = HERD_OK;
        } else {
            int len = 0;
            for (int i = 0; ops2[i]; i++)
                if (left >= 2 && p[0] == ops2[i][0] && p[1] == ops2[i][1]) len = 2;
            if (!len && strchr(ops1, c) && c) len = 1;
            if (!len) return lex_err(lx, "unexpected character in tag");
            if (c == '(' || c == '[' || c == '{') {
                if (depth == (int)sizeof stack) return lex_err(lx, "brackets nested too deeply");
                stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
            } else if (c == ')' || c == ']' || c == '}') {
                if (depth == 0 || stack[depth - 1] != c) {
                    char m[32] = "unexpected ' '";
                    m[12] = c;
                    return lex_err(lx, m);
                }
                depth--;
            }
            jtok *k = push(lx, TK_OP);
            if (!k) return herd_seterr(HERD_E_NOMEM, "out of memory");
            memcpy(k->op, p, (size_t)len);
            lx->pos += (size_t)len;
            st = HERD_OK;
        }
        if (st) return st;
    }
}

/* A {# comment #}. */
static herd_status lex_comment(lexer *lx, bool *line_starting)
{
    const char *s = lx->s;
    size_t n = lx->n;
    for (size_t e = lx->pos; e + 1 < n; e++) {
        if (s[e] != '#' || s[e + 1] != '}') continue;
        char sign = e > lx->pos && (s[e - 1] == '-' || s[e - 1] == '+') ? s[e - 1] : 0;
        size_t k = e + 2;
        if (sign == '-')
            k += ws_run(s, n, k);
        else if (sign != '+' && k < n && s[k] == '\n')
            k++;
        lx->line += count_nl(s + lx->pos, k - lx->pos);
        *line_starting = s[k - 1] == '\n';
        lx->pos = k;
        return HERD_OK;
    }
    return lex_err(lx, "unclosed comment");
}

/* Newlines to \n, and one trailing newline dropped. */
static char *normalize(const char *src, size_t *len)
{
    size_t n = strlen(src), k = 0;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else
            s[k++] = src[i];
    }
    if (k > 0 && s[k - 1] == '\n') k--;
    s[k] = 0;
    *len = k;
    return s;
}

herd_status herd_jinja_lex(const char *src, jtoks *out)
{
    *out = (jtoks){0};
    size_t n;
    char *s = normalize(src, &n);
    if (!s) return herd_seterr(HERD_E_NOMEM, "out of memory");
    lexer lx = {.s = s, .n = n, .line = 1, .out = out};
    bool line_starting = true;
    herd_status st = HERD_OK;
    while (!st && lx.pos < n) {
        const char *t = NULL;
        for (size_t i = lx.pos; i + 1 < n && !t; i++)
            if (s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')) t = s + i;
        if (!t) {
            st = emit_text(&lx, s + lx.pos, n - lx.pos);
            break;
        }
        size_t at = (size_t)(t - s);
        char kind = t[1];
        char sign = at + 2 < n && (t[2] == '-' || t[2] == '+') ? t[2] : 0;
        size_t raw_end = 0;
        char rsign;
        bool strip_after, raw = kind == '%' && raw_begin(&lx, at, &raw_end, &rsign, &strip_after);
        size_t tn = control_text(s + lx.pos, at - lx.pos, sign, kind == '{', line_starting);
        st = emit_text(&lx, s + lx.pos, tn);
        lx.line += count_nl(s + lx.pos, at - lx.pos);
        if (st) break;
        if (raw) {
            st = lex_raw(&lx, raw_end, strip_after, &line_starting);
            continue;
        }
        lx.pos = at + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            st = lex_comment(&lx, &line_starting);
            continue;
        }
        if (!push(&lx, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN)) {
            st = herd_seterr(HERD_E_NOMEM, "out of memory");
            break;
        }
        st = lex_tag(&lx, kind == '%', &line_starting);
    }
    if (!st && !push(&lx, TK_EOF)) st = herd_seterr(HERD_E_NOMEM, "out of memory");
    free(s);
    if (st) herd_jinja_toks_free(out);
    return st;
}

void herd_jinja_toks_free(jtoks *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->v[i].text);
    free(t->v);
    *t = (jtoks){0};
}
