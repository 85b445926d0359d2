/*
 * piece.c — token ids back to text, as llama.cpp's token_to_piece and
 * detokenize do it.
 *
 * A token's piece depends on its attributes:
 *   control, unknown   its text, but only when special is asked for ("" else);
 *   user-defined       its text;
 *   normal             SentencePiece: its text with U+2581 turned into spaces;
 *                      byte-level BPE: each character mapped back to the byte
 *                      GPT-2's table assigned it;
 *   byte (<0xNN>)      the one raw byte NN;
 *   unused, undefined  "".
 * Byte tokens give single bytes, so a character that fell back to bytes is
 * whole again only once the pieces are concatenated: detokenize, not
 * token_to_piece, is what callers printing text want.
 */
#include "tokenizer/vocab_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void herd_sink_put(vocab_sink *k, const char *s, size_t n)
{
    if (k->grow && k->len + n > k->cap && !k->oom) {
        size_t cap = k->cap ? k->cap : 256;
        while (cap < k->len + n) cap *= 2;
        char *p = realloc(k->buf, cap);
        if (p)
            k->buf = p, k->cap = cap;
        else
            k->oom = true;
    }
    if (k->len < k->cap) {
        size_t room = k->cap - k->len;
        memcpy(k->buf + k->len, s, n < room ? n : room);
    }
    k->len += n;
}

/* One piece on its way to a sink, with the leading spaces still to drop. */
typedef struct piece_out {
    vocab_sink *k;
    int strip;
} piece_out;

static void put(piece_out *o, const char *s, size_t n)
{
    for (; o->strip > 0 && n > 0 && *s == ' '; o->strip--) s++, n--;
    if (n == 0) return;
    o->strip = 0;
    herd_sink_put(o->k, s, n);
}

/* SentencePiece: U+2581 (e2 96 81) stands for a space. */
static void put_unescaped(piece_out *o, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i + 2 < n; i++) {
        if (s[i] == '\xe2' && s[i + 1] == '\x96' && s[i + 2] == '\x81') {
            put(o, s + start, i - start);
            put(o, " ", 1);
            start = i + 3;
            i += 2;
        }
    }
    put(o, s + start, n - start);
}

/* One code point of UTF-8, strictly (as llama.cpp's unicode_cpt_from_utf8):
 * *n gets its length; an invalid sequence gives U+FFFD over one byte. */
static uint32_t utf8_next(const uint8_t *s, size_t len, size_t *n)
{
    uint8_t c = s[0];
    int k = c < 0x80             ? 1
            : (c & 0xE0) == 0xC0 ? 2
            : (c & 0xF0) == 0xE0 ? 3
            : (c & 0xF8) == 0xF0 ? 4
                                 : 0;
    *n = 1;
    if (k == 1) return c;
    if (k == 0 || (size_t)k > len) return 0xFFFD;
    uint32_t cp = c & (0x7F >> k);
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0xFFFD;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *n = (size_t)k;
    return cp;
}

/* The byte GPT-2's byte-level table writes as code point cp, or -1. */
static int gpt2_cp_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    uint32_t i = cp - 256; /* the other bytes, in order: 0-32, 127-160, 173 */
    return i <= 32 ? (int)i : i <= 66 ? (int)(127 + i - 33) : 173;
}

/* llama.cpp's llama_decode_text, including its odd marker for characters
 * outside the table: "[UNK_BYTE_0x" + their UTF-8 in hex + the token + "]". */
static void put_bpe_decoded(piece_out *o, const char *text, size_t n)
{
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0, step; i < n; i += step) {
        uint32_t cp = utf8_next(s + i, n - i, &step);
        int b = gpt2_cp_byte(cp);
        if (b >= 0) {
            char c = (char)b;
            put(o, &c, 1);
            continue;
        }
        uint8_t u[4];
        int m = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (m == 1)
            u[0] = (uint8_t)cp;
        else {
            u[0] = (uint8_t)((0xF00 >> m) | (cp >> (6 * (m - 1))));
            for (int j = 1; j < m; j++) u[j] = (uint8_t)(0x80 | ((cp >> (6 * (m - 1 - j))) & 0x3F));
        }
        char hex[16];
        put(o, "[UNK_BYTE_0x", 12);
        for (int j = 0; j < m; j++) {
            snprintf(hex, sizeof hex, "%02x", u[j]);
            put(o, hex, 2);
        }
        put(o, text, n);
        put(o, "]", 1);
    }
}

/* The byte of a <0xNN> token: the hex digits after "<0x", as llama.cpp reads them. */
static char byte_of(const char *text, size_t len)
{
    unsigned v = 0;
    for (size_t i = 3; i < 5 && i < len; i++) {
        char c = text[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16) break;
        v = v * 16 + d;
    }
    return (char)v;
}

bool herd_vocab_piece(const herd_vocab *v, int32_t id, bool special, int lstrip, vocab_sink *k)
{
    if (id < 0 || id >= v->n) return false;
    uint16_t attr = v->tok[id].attr;
    if (!special && (attr & (ATTR_UNKNOWN | ATTR_CONTROL))) return true;
    const char *text = vocab_text(v, id);
    size_t len = v->tok[id].len;
    piece_out o = {k, lstrip};
    if (attr & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) {
        put(&o, text, len);
    } else if (attr & ATTR_NORMAL) {
        if (v->kind == HERD_VOCAB_SPM || v->escape_spaces)
            put_unescaped(&o, text, len);
        else
            put_bpe_decoded(&o, text, len);
    } else if (attr & ATTR_BYTE) {
        char b = byte_of(text, len);
        put(&o, &b, 1);
    }
    return true;
}

int herd_vocab_token_to_piece(const herd_vocab *v, int32_t id, bool special, char *buf, int cap)
{
    if (!v || (!buf && cap > 0)) {
        herd_seterr(HERD_E_INVALID, "token_to_piece: NULL argument");
        return -1;
    }
    vocab_sink k = {buf, cap > 0 ? (size_t)cap : 0, 0, false, false};
    if (!herd_vocab_piece(v, id, special, 0, &k)) {
        herd_seterr(HERD_E_RANGE, "token id %d is outside the vocabulary (0..%d)", id, v->n - 1);
        return -1;
    }
    if (k.len < k.cap) buf[k.len] = 0;
    return (int)k.len;
}

/* ------------------------------------------------------------ clean-up */

/* llama.cpp's clean_up_tokenization_spaces for BPE vocabularies, in place:
 * " ?" " !" " ." " ," lose the space, " ' " loses both, " 's" " 'm" " 're"
 * " 've" lose the space before the apostrophe. Returns the new length. */
static size_t clean_spaces(char *t, size_t n)
{
    size_t m = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) m--;
        t[m++] = x;
    }
    n = m, m = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
            m--;           /* the space before */
            t[++i] = '\0'; /* and the one after, skipped */
        }
        t[m++] = x;
    }
    n = m, m = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = t[i + 1], x2 = i + 2 < n ? t[i + 2] : 0;
            if (x1 == 's' || x1 == 'm' || (x2 == 'e' && (x1 == 'r' || x1 == 'v'))) m--;
        }
        t[m++] = x;
    }
    return m;
}

herd_status herd_vocab_detokenize(const herd_vocab *v, const int32_t *ids, int n, bool special,
                                  bool remove_leading_space, char *buf, size_t cap, size_t *len)
{
    if (!v || !len || n < 0 || (!ids && n > 0) || (!buf && cap > 0))
        return herd_seterr(HERD_E_INVALID, "detokenize: invalid arguments");
    *len = 0;
    /* Clean-up needs the whole text first; otherwise write straight through. */
    vocab_sink k = {buf, cap, 0, false, false};
    if (v->clean_spaces) k = (vocab_sink){NULL, 0, 0, true, false};
    int lstrip = remove_leading_space && v->add_space_prefix;
    for (int i = 0; i < n; i++, lstrip = 0) {
        if (!herd_vocab_piece(v, ids[i], special, lstrip, &k)) {
            if (k.grow) free(k.buf);
            return herd_seterr(HERD_E_RANGE, "token id %d at position %d is outside the vocabulary",
                               ids[i], i);
        }
    }
    if (k.grow) {
        if (k.oom) {
            free(k.buf);
            return herd_seterr(HERD_E_NOMEM, "detokenize: out of memory");
        }
        k.len = clean_spaces(k.buf, k.len);
        if (cap && k.len) memcpy(buf, k.buf, k.len < cap ? k.len : cap);
        free(k.buf);
    }
    if (k.len < cap) buf[k.len] = 0;
    *len = k.len;
    return HERD_OK;
}
