/*
 * jinja_str.c — Python's str operations on UTF-8: code-point indexing and
 * slicing, strip / split / splitlines with Python's notion of whitespace,
 * case mapping, replace, find.
 *
 * Python strings are sequences of code points, so len("é") is 1 and
 * "你好"[::-1] reverses characters, not bytes; every operation here works on
 * code points. Case mapping uses the C library's Unicode tables through a
 * private C.UTF-8 locale, so the process locale does not matter.
 */
#define _GNU_SOURCE
#include "chat/jinja.h"

#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

/* ------------------------------------------------------------------ UTF-8 */

uint32_t herd_u8_next(const char *s, size_t n, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = n - *i;
    unsigned c = p[0];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || (size_t)len > left) {
        (*i)++;
        return c;
    }
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (int k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80) {
            (*i)++;
            return c;
        }
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    *i += (size_t)len;
    return cp;
}

void herd_u8_put(jbuf *b, uint32_t cp)
{
    char t[4];
    size_t n;
    if (cp < 0x80) {
        t[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        t[0] = (char)(0xc0 | (cp >> 6));
        t[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        t[0] = (char)(0xe0 | (cp >> 12));
        t[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        t[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        t[0] = (char)(0xf0 | (cp >> 18));
        t[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        t[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    herd_jbuf_put(b, t, n);
}

size_t herd_u8_len(const char *s, size_t n)
{
    herd_jv_charge_bytes(n); /* a walk over the string: paid like writing it */
    size_t k = 0;
    for (size_t i = 0; i < n; k++) herd_u8_next(s, n, &i);
    return k;
}

size_t herd_u8_offset(const char *s, size_t n, size_t k)
{
    herd_jv_charge_bytes(k);
    size_t i = 0;
    while (k-- > 0 && i < n) herd_u8_next(s, n, &i);
    return i;
}

/* ------------------------------------------------------- character classes */

bool herd_py_isspace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static locale_t loc(void)
{
    pthread_once(&utf8_once, utf8_init);
    return utf8_locale;
}

uint32_t herd_py_lower(uint32_t c)
{
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    locale_t l = loc();
    return l ? (uint32_t)towlower_l((wint_t)c, l) : c;
}

uint32_t herd_py_upper(uint32_t c)
{
    if (c < 0x80) return c >= 'a' && c <= 'z' ? c - 32 : c;
    locale_t l = loc();
    return l ? (uint32_t)towupper_l((wint_t)c, l) : c;
}

bool herd_py_iscased(uint32_t c)
{
    return herd_py_lower(c) != c || herd_py_upper(c) != c;
}

bool herd_py_isalpha(uint32_t c)
{
    if (c < 0x80) return (c | 32) >= 'a' && (c | 32) <= 'z';
    locale_t l = loc();
    return l && iswalpha_l((wint_t)c, l);
}

bool herd_py_isdigit(uint32_t c)
{
    return c >= '0' && c <= '9';
}

/* ------------------------------------------------------------ operations */

static bool in_chars(uint32_t c, jv chars)
{
    if (chars.kind != JV_STR) return herd_py_isspace(c);
    const char *p = jv_sp(chars);
    size_t n = jv_slen(chars);
    for (size_t i = 0; i < n;)
        if (herd_u8_next(p, n, &i) == c) return true;
    return false;
}

jv herd_pystr_strip(jv s, jv chars, bool left, bool right)
{
    const char *p = jv_sp(s);
    size_t n = jv_slen(s), a = 0, z = n;
    if (left) {
        while (a < n) {
            size_t i = a;
            if (!in_chars(herd_u8_next(p, n, &i), chars)) break;
            a = i;
        }
    }
    if (right) {
        while (z > a) {
            size_t st = z - 1;
            while (st > a && ((unsigned char)p[st] & 0xc0) == 0x80) st--;
            size_t i = st;
            if (!in_chars(herd_u8_next(p, n, &i), chars)) break;
            z = st;
        }
    }
    herd_jv_charge_bytes(a + (n - z)); /* what was scanned and dropped */
    if (a == 0 && z == n) return herd_jv_retain(s);
    return herd_jv_str(p + a, z - a);
}

/* The next occurrence of q (m > 0 bytes) in p[0..n), for loops that search
 * again after each hit (split, replace, count). memmem is linear, but
 * sanitizers check the whole haystack on every call, which makes such a loop
 * quadratic under ASan; so search a window that doubles until it holds a hit,
 * which costs O(distance to the hit + m) per call. */
static const char *find_next(const char *p, size_t n, const char *q, size_t m)
{
    if (m == 1) return memchr(p, q[0], n); /* checked only up to the hit */
    for (size_t w = 2 * m + 32;; w *= 2) {
        size_t len = w < n ? w : n;
        const char *hit = memmem(p, len, q, m);
        if (hit || len == n) return hit;
        if (w > SIZE_MAX / 4) return memmem(p, n, q, m);
    }
}

/* str.split(): with a separator, every occurrence; without, runs of
 * whitespace with empty pieces dropped. maxsplit < 0: no limit. */
jv herd_pystr_split(jv s, jv sep, int64_t maxsplit, bool *ok)
{
    const char *p = jv_sp(s);
    size_t n = jv_slen(s);
    jv out = herd_jv_list_new(4, false);
    *ok = true;
    herd_jv_charge_bytes(n);
    if (sep.kind == JV_STR) {
        size_t m = jv_slen(sep);
        if (m == 0) {
            *ok = false;
            return out;
        }
        size_t start = 0;
        for (const char *hit; maxsplit != 0 && !herd_jv_nomem; maxsplit--) {
            if (!(hit = find_next(p + start, n - start, jv_sp(sep), m))) break;
            herd_jv_list_push_take(out, herd_jv_str(p + start, (size_t)(hit - p) - start));
            start = (size_t)(hit - p) + m;
        }
        herd_jv_list_push_take(out, herd_jv_str(p + start, n - start));
        return out;
    }
    size_t i = 0;
    for (;;) {
        while (i < n) { /* skip whitespace */
            size_t j = i;
            if (!herd_py_isspace(herd_u8_next(p, n, &j))) break;
            i = j;
        }
        if (i >= n) break;
        if (maxsplit == 0) { /* the rest, as is */
            herd_jv_list_push_take(out, herd_jv_str(p + i, n - i));
            break;
        }
        size_t start = i;
        while (i < n) {
            size_t j = i;
            if (herd_py_isspace(herd_u8_next(p, n, &j))) break;
            i = j;
        }
        herd_jv_list_push_take(out, herd_jv_str(p + start, i - start));
        maxsplit--;
    }
    return out;
}

/* str.splitlines()'s line breaks: \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85,
 * \u2028, \u2029. The line at p[i]: returns where its text ends, and sets
 * *next past its line break (n at the end). */
size_t herd_pystr_line(const char *p, size_t n, size_t i, size_t *next)
{
    while (i < n) {
        size_t at = i;
        uint32_t c = herd_u8_next(p, n, &i);
        bool nl = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) ||
                  c == 0x85 || c == 0x2028 || c == 0x2029;
        if (!nl) continue;
        if (c == '\r' && i < n && p[i] == '\n') i++;
        *next = i;
        return at;
    }
    *next = n;
    return n;
}

jv herd_pystr_splitlines(const char *p, size_t n)
{
    jv out = herd_jv_list_new(4, false);
    for (size_t i = 0, next; i < n && !herd_jv_nomem; i = next) {
        size_t end = herd_pystr_line(p, n, i, &next);
        herd_jv_list_push_take(out, herd_jv_str(p + i, end - i));
    }
    return out;
}

/* Is c one of the separators of jinja's |title: -, whitespace, ( { [ < */
static bool title_sep(uint32_t c)
{
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || herd_py_isspace(c);
}

jv herd_pystr_case(jv s, int mode)
{
    const char *p = jv_sp(s);
    size_t n = jv_slen(s);
    jbuf b = {0};
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < n;) {
        uint32_t c = herd_u8_next(p, n, &i);
        bool up = false; /* upper-case this one (else lower) */
        switch (mode) {
        case 0:
            break;
        case 1:
            up = true;
            break;
        case 2: /* str.title(): upper after an uncased char, lower after a cased one */
            up = !prev_cased;
            prev_cased = herd_py_iscased(c);
            break;
        case 3:
            up = first;
            break;
        case 4: /* jinja's |title: words begin after -, whitespace, ( { [ < */
            if (title_sep(c)) {
                first = true;
                herd_u8_put(&b, c);
                continue;
            }
            up = first;
            break;
        }
        first = false;
        if (up && c == 0xdf)
            herd_jbuf_puts(&b, mode == 1 ? "SS" : "Ss"); /* no one-letter upper case */
        else
            herd_u8_put(&b, up ? herd_py_upper(c) : herd_py_lower(c));
    }
    return b.p ? herd_jbuf_to_str(&b) : herd_jv_str("", 0);
}

jv herd_pystr_replace(jv s, jv old, jv neu, int64_t count)
{
    const char *p = jv_sp(s), *o = jv_sp(old);
    size_t n = jv_slen(s), m = jv_slen(old);
    jbuf b = {0};
    if (m == 0) { /* Python inserts neu between every character */
        size_t i = 0;
        while (count != 0 && !herd_jv_nomem) {
            herd_jbuf_put(&b, jv_sp(neu), jv_slen(neu));
            count--;
            if (i >= n) break;
            size_t st = i;
            herd_u8_next(p, n, &i);
            herd_jbuf_put(&b, p + st, i - st);
        }
        herd_jbuf_put(&b, p + i, n - i);
        jv r = herd_jbuf_to_str(&b);
        return r.kind == JV_STR ? r : herd_jv_str("", 0);
    }
    size_t i = 0;
    for (const char *hit; count != 0 && !herd_jv_nomem; count--) {
        if (!(hit = find_next(p + i, n - i, o, m))) break;
        herd_jbuf_put(&b, p + i, (size_t)(hit - p) - i);
        herd_jbuf_put(&b, jv_sp(neu), jv_slen(neu));
        i = (size_t)(hit - p) + m;
    }
    herd_jbuf_put(&b, p + i, n - i);
    return b.p ? herd_jbuf_to_str(&b) : herd_jv_str("", 0);
}

static void norm_slice(int64_t len, bool has_start, int64_t *start, bool has_stop, int64_t *stop,
                       int64_t step)
{
    /* Python's PySlice_AdjustIndices. */
    if (!has_start)
        *start = step < 0 ? len - 1 : 0;
    else if (*start < 0) {
        *start += len;
        if (*start < 0) *start = step < 0 ? -1 : 0;
    } else if (*start >= len)
        *start = step < 0 ? len - 1 : len;
    if (!has_stop)
        *stop = step < 0 ? -1 : len;
    else if (*stop < 0) {
        *stop += len;
        if (*stop < 0) *stop = step < 0 ? -1 : 0;
    } else if (*stop >= len)
        *stop = step < 0 ? len - 1 : len;
}

jv herd_pystr_slice(jv s, bool has_start, int64_t start, bool has_stop, int64_t stop, int64_t step)
{
    const char *p = jv_sp(s);
    size_t n = jv_slen(s);
    size_t cps = herd_u8_len(p, n);
    if (!herd_jv_charge_bytes((cps + 1) * sizeof(size_t))) return jv_undef(NULL);
    size_t *off = malloc((cps + 1) * sizeof *off);
    if (!off) {
        herd_jv_nomem = true;
        return jv_undef(NULL);
    }
    size_t i = 0, k = 0;
    while (i < n) {
        off[k++] = i;
        herd_u8_next(p, n, &i);
    }
    off[cps] = n;
    norm_slice((int64_t)cps, has_start, &start, has_stop, &stop, step);
    jbuf b = {0};
    for (int64_t j = start; step > 0 ? j < stop : j > stop;) {
        herd_jbuf_put(&b, p + off[j], off[j + 1] - off[j]);
        if (!jinja_slice_next(&j, stop, step)) break;
    }
    free(off);
    return b.p ? herd_jbuf_to_str(&b) : herd_jv_str("", 0);
}

jv herd_pystr_index(jv s, int64_t i)
{
    const char *p = jv_sp(s);
    size_t n = jv_slen(s);
    int64_t len = (int64_t)herd_u8_len(p, n);
    if (i < 0) i += len;
    if (i < 0 || i >= len) return jv_undef(NULL);
    size_t a = herd_u8_offset(p, n, (size_t)i), z = a;
    herd_u8_next(p, n, &z);
    return herd_jv_str(p + a, z - a);
}

/* The last occurrence of q in p, in linear time: the first in the reversed strings. */
static const char *last_memmem(const char *p, size_t n, const char *q, size_t m)
{
    char *rp = malloc(n + 1), *rq = malloc(m + 1);
    const char *hit = NULL;
    if (rp && rq && herd_jv_charge_bytes(n + m)) {
        for (size_t i = 0; i < n; i++) rp[i] = p[n - 1 - i];
        for (size_t i = 0; i < m; i++) rq[i] = q[m - 1 - i];
        const char *r = memmem(rp, n, rq, m);
        if (r) hit = p + (n - (size_t)(r - rp) - m);
    } else if (!rp || !rq)
        herd_jv_nomem = true;
    free(rp);
    free(rq);
    return hit;
}

int64_t herd_pystr_find(jv s, jv sub, bool reverse)
{
    const char *p = jv_sp(s), *q = jv_sp(sub);
    size_t n = jv_slen(s), m = jv_slen(sub);
    if (m > n) return -1;
    herd_jv_charge_bytes(n);
    const char *hit = m == 0    ? p + (reverse ? n : 0)
                      : reverse ? last_memmem(p, n, q, m)
                                : memmem(p, n, q, m); /* linear; a plain scan is O(n*m) */
    return hit ? (int64_t)herd_u8_len(p, (size_t)(hit - p)) : -1;
}

int64_t herd_pystr_count(jv s, jv sub)
{
    const char *p = jv_sp(s), *q = jv_sp(sub);
    size_t n = jv_slen(s), m = jv_slen(sub);
    if (m == 0) return (int64_t)herd_u8_len(p, n) + 1;
    int64_t k = 0;
    herd_jv_charge_bytes(n);
    for (size_t i = 0; i + m <= n; k++) {
        const char *hit = find_next(p + i, n - i, q, m);
        if (!hit) break;
        i = (size_t)(hit - p) + m;
    }
    return k;
}

jv herd_pystr_repeat(jv s, int64_t n)
{
    jbuf b = {0};
    for (int64_t i = 0; i < n && !herd_jv_nomem; i++) herd_jbuf_put(&b, jv_sp(s), jv_slen(s));
    return b.p ? herd_jbuf_to_str(&b) : herd_jv_str("", 0);
}
