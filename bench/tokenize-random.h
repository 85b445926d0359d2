/*
 * tokenize-random.h — random text for tokenizer tests: the same seed gives the
 * same strings in tests/test_bpe.c (round trips) and in bench/tokenize-harness
 * (herd's ids against llama.cpp's), so the oracle's sample is a sample of what
 * the test checks.
 *
 * A string is a run of pieces, each from one of: ASCII words and English
 * contractions ("'s", "'LL"), long runs of spaces, tabs, newlines ("\r\n"
 * too) and digits, ASCII punctuation, Latin with precomposed and combining
 * accents, Greek, Cyrillic, Arabic, Hebrew, Devanagari, Thai, CJK, kana,
 * Hangul, fullwidth forms, emoji (with ZWJ, variation selectors and skin
 * tones), control and format characters (C0, C1, zero-width, bidi marks),
 * and non-ASCII spaces (NBSP, U+2028, U+3000, U+0085). Code points are ones
 * Unicode 14 already assigned, so every categorisation agrees on them; the
 * text is valid UTF-8 and has no NUL (the oracle's batch files are C strings).
 *
 * Header-only (static functions) so that a test and a bench program can both
 * include it.
 */
#ifndef HERD_TOKENIZE_RANDOM_H
#define HERD_TOKENIZE_RANDOM_H

#include <stddef.h>
#include <stdint.h>

typedef struct rand_text {
    uint64_t s;
} rand_text;

static inline uint32_t rt_next(rand_text *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL; /* PCG step */
    uint64_t x = r->s;
    return (uint32_t)((x ^ (x >> 22)) >> (22 + (x >> 61)));
}

static inline uint32_t rt_below(rand_text *r, uint32_t n)
{
    return rt_next(r) % n;
}

/* Append code point c as UTF-8 at out + *n (room for 4 bytes is the caller's). */
static inline void rt_put(char *out, size_t *n, uint32_t c)
{
    if (c < 0x80) {
        out[(*n)++] = (char)c;
    } else if (c < 0x800) {
        out[(*n)++] = (char)(0xC0 | (c >> 6));
        out[(*n)++] = (char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out[(*n)++] = (char)(0xE0 | (c >> 12));
        out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (c & 0x3F));
    } else {
        out[(*n)++] = (char)(0xF0 | (c >> 18));
        out[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3F));
        out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (c & 0x3F));
    }
}

/* Ranges of code points, first..last, one script or kind each. */
static const uint32_t rt_ranges[][2] = {
    {0x61, 0x7A},       {0x41, 0x5A},       {0xC0, 0xFF},       {0x100, 0x17F},
    {0x300, 0x36F},     {0x391, 0x3C9},     {0x410, 0x44F},     {0x5D0, 0x5EA},
    {0x621, 0x64A},     {0x64B, 0x652},     {0x660, 0x669},     {0x905, 0x939},
    {0x93E, 0x94D},     {0x966, 0x96F},     {0xE01, 0xE30},     {0xE31, 0xE3A},
    {0x4E00, 0x9FFF},   {0x3041, 0x3096},   {0x30A1, 0x30FA},   {0xAC00, 0xD7A3},
    {0xFF01, 0xFF5E},   {0x2010, 0x2027},   {0x20A0, 0x20BF},   {0x2190, 0x21FF},
    {0x2460, 0x24FF},   {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}, {0x2600, 0x26FF},
    {0x1D400, 0x1D4FF}, {0x10400, 0x1044F}, {0xBC, 0xBE},       {0x2150, 0x218B},
    {0x1E00, 0x1EFF},
};

/* Characters that are not text: controls, format characters, odd spaces. */
static const uint32_t rt_odd[] = {
    0x01,   0x07,   0x08,   0x0B,   0x0C,    0x1B,    0x1C,   0x1F,   0x7F,
    0x80,   0x85,   0x9F,   0xA0,   0xAD,    0x200B,  0x200C, 0x200D, 0x200E,
    0x200F, 0x2028, 0x2029, 0x202F, 0x205F,  0x2060,  0x3000, 0xFEFF, 0xFE0F,
    0x1680, 0x2003, 0xE000, 0xFFFD, 0x1F3FB, 0x1F3FF, 0x180E, 0x061C, 0x0600,
};

static const char *const rt_words[] = {
    "the",        "The",          "quick",        "fox",   "I",  "'s",  "'t",    "'re",
    "'ve",        "'m",           "'ll",          "'d",    "'S", "'LL", "don't", "it's",
    "A.",         "e.g.",         "3.14",         "1,000", "x",  "<s>", "</s>",  "<|endoftext|>",
    "<|im_end|>", "\xc3\x84pfel", "\xe2\x80\x94", "...",   "--", "::",
};

/* Write one random string into out (room for cap bytes, cap >= 64); its length. */
static inline size_t rt_string(rand_text *r, char *out, size_t cap)
{
    size_t n = 0, pieces = rt_below(r, 12);
    for (size_t p = 0; p < pieces && n + 64 <= cap; p++) {
        uint32_t kind = rt_below(r, 12), k;
        switch (kind) {
        case 0: /* a word */
        case 1: {
            const char *w = rt_words[rt_below(r, sizeof rt_words / sizeof rt_words[0])];
            while (*w && n < cap - 4) out[n++] = *w++;
            break;
        }
        case 2: /* spaces */
            for (k = 1 + rt_below(r, rt_below(r, 4) ? 3 : 40); k-- && n < cap - 4;) out[n++] = ' ';
            break;
        case 3: /* other white space */
            for (k = 1 + rt_below(r, 6); k-- && n < cap - 4;)
                out[n++] = " \t\n\r\n"[rt_below(r, 5)];
            break;
        case 4: /* digits */
            for (k = 1 + rt_below(r, rt_below(r, 3) ? 5 : 30); k-- && n < cap - 4;)
                out[n++] = (char)('0' + rt_below(r, 10));
            break;
        case 5: /* ASCII punctuation */
            for (k = 1 + rt_below(r, 4); k-- && n < cap - 4;)
                out[n++] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"[rt_below(r, 32)];
            break;
        case 6: /* controls and odd spaces */
            rt_put(out, &n, rt_odd[rt_below(r, sizeof rt_odd / sizeof rt_odd[0])]);
            break;
        default: { /* a run from one script */
            const uint32_t *g = rt_ranges[rt_below(r, sizeof rt_ranges / sizeof rt_ranges[0])];
            for (k = 1 + rt_below(r, 8); k-- && n + 4 < cap;)
                rt_put(out, &n, g[0] + rt_below(r, g[1] - g[0] + 1));
            break;
        }
        }
        if (rt_below(r, 3) == 0 && n < cap - 4) out[n++] = ' ';
    }
    return n;
}

#endif
