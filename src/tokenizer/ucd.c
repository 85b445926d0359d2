/*
 * ucd.c — what the BPE pre-tokenizer needs to know about code points: how
 * llama.cpp reads them from UTF-8, and their category flags.
 *
 * Decoding follows llama.cpp's unicode_cpt_from_utf8: the lead byte announces
 * the length and the continuation bytes must be 10xxxxxx, but overlong forms
 * and surrogates are taken as they decode. Anything else is U+FFFD over one
 * byte. llama.cpp lets a 4-byte form above U+10FFFF through and then throws
 * (the process aborts) when it writes the word back; herd counts it invalid
 * like the rest.
 *
 * The flags come from PCRE2's Unicode tables rather than a table of our own:
 * the first time a block of 256 code points is met, each of them is matched
 * against \p{N}, \p{L}, … and \p{White_Space}, and the block is kept for the
 * life of the process (published with an atomic pointer, so threads may race
 * to fill the same block: the loser frees its copy). Text touches few blocks,
 * so this costs microseconds, not the ~100 ms of asking all 1.1M at start.
 * Surrogates, which UTF-8 PCRE2 cannot be asked about, are Cs (control).
 *
 * llama.cpp's tables are Unicode 15.1's, PCRE2 10.42's (Debian 12) Unicode
 * 14's: the 5,116 code points assigned in between are listed below, and a
 * code point PCRE2 calls unassigned takes its class from there. (A PCRE2 on
 * Unicode 16 or later would know characters llama.cpp calls unassigned.)
 * With that, all 1,114,112 code points get the flags llama.cpp's own tables
 * (llama.cpp's unicode-data.cpp) give them: checked once,
 * code point by code point.
 */
#include "tokenizer/pretok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

size_t herd_utf8_decode(const uint8_t *s, size_t n, uint32_t *cpt)
{
    uint8_t c = s[0];
    size_t k = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
    if (k == 1) {
        *cpt = c;
        return 1;
    }
    if (k == 0 || k > n) goto invalid;
    uint32_t v = c & (0x7Fu >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) goto invalid;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v > 0x10FFFF) goto invalid;
    *cpt = v;
    return k;
invalid:
    *cpt = 0xFFFD;
    return 1;
}

int herd_utf8_encode(uint32_t cpt, char out[4])
{
    if (cpt < 0x80) {
        out[0] = (char)cpt;
        return 1;
    }
    int n = cpt < 0x800 ? 2 : cpt < 0x10000 ? 3 : 4;
    out[0] = (char)((0xF00u >> n) | (cpt >> (6 * (n - 1))));
    for (int i = 1; i < n; i++) out[i] = (char)(0x80 | ((cpt >> (6 * (n - 1 - i))) & 0x3F));
    return n;
}

/* ------------------------------------------------------------ categories */

/* One capture group per class, in the order of the flags they give. */
static const char cat_pattern[] =
    "(\\p{N})|(\\p{L})|(\\p{Z})|(\\p{M})|(\\p{P})|(\\p{S})|(\\p{Cn})|(\\p{C})";

static pcre2_code *cat_re, *space_re;
static pthread_once_t compile_once = PTHREAD_ONCE_INIT;

static pcre2_code *compile(const char *pattern)
{
    int err;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &err, &at, NULL);
    if (re) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter if JIT is missing */
    return re;
}

static void compile_classifiers(void)
{
    cat_re = compile(cat_pattern);
    space_re = compile("\\p{White_Space}");
}

/* Unicode 15.0 and 15.1's new characters: first, last, flags. */
#define M UCD_MARK
#define L UCD_LETTER
#define N UCD_NUMBER
#define P UCD_PUNCT
#define S UCD_SYMBOL
// clang-format off
static const uint32_t since_14[][3] = {
    {0x0CF3, 0x0CF3, M}, {0x0ECE, 0x0ECE, M}, {0x2FFC, 0x2FFF, S}, {0x31EF, 0x31EF, S},
    {0x10EFD, 0x10EFF, M}, {0x1123F, 0x11240, L}, {0x11241, 0x11241, M}, {0x11B00, 0x11B09, P},
    {0x11F00, 0x11F01, M}, {0x11F02, 0x11F02, L}, {0x11F03, 0x11F03, M}, {0x11F04, 0x11F10, L},
    {0x11F12, 0x11F33, L}, {0x11F34, 0x11F3A, M}, {0x11F3E, 0x11F42, M}, {0x11F43, 0x11F4F, P},
    {0x11F50, 0x11F59, N}, {0x1342F, 0x1342F, L}, {0x13439, 0x1343F, UCD_CONTROL},
    {0x13440, 0x13440, M}, {0x13441, 0x13446, L}, {0x13447, 0x13455, M}, {0x1B132, 0x1B132, L},
    {0x1B155, 0x1B155, L}, {0x1D2C0, 0x1D2D3, N}, {0x1DF25, 0x1DF2A, L}, {0x1E030, 0x1E06D, L},
    {0x1E08F, 0x1E08F, M}, {0x1E4D0, 0x1E4EB, L}, {0x1E4EC, 0x1E4EF, M}, {0x1E4F0, 0x1E4F9, N},
    {0x1F6DC, 0x1F6DC, S}, {0x1F774, 0x1F776, S}, {0x1F77B, 0x1F77F, S}, {0x1F7D9, 0x1F7D9, S},
    {0x1FA75, 0x1FA77, S}, {0x1FA87, 0x1FA88, S}, {0x1FAAD, 0x1FAAF, S}, {0x1FABB, 0x1FABD, S},
    {0x1FABF, 0x1FABF, S}, {0x1FACE, 0x1FACF, S}, {0x1FADA, 0x1FADB, S}, {0x1FAE8, 0x1FAE8, S},
    {0x1FAF7, 0x1FAF8, S}, {0x2B739, 0x2B739, L}, {0x2EBF0, 0x2EE5D, L}, {0x31350, 0x323AF, L},
};
// clang-format on
#undef M
#undef L
#undef N
#undef P
#undef S

static uint16_t unicode_15(uint32_t cpt)
{
    for (size_t i = 0; i < sizeof since_14 / sizeof since_14[0]; i++)
        if (cpt >= since_14[i][0] && cpt <= since_14[i][1]) return (uint16_t)since_14[i][2];
    return UCD_UNDEFINED;
}

enum { N_BLOCKS = 0x110000 >> 8 };
static _Atomic(uint16_t *) blocks[N_BLOCKS];

static uint16_t classify(pcre2_match_data *md, uint32_t cpt)
{
    static const uint16_t group_flag[] = {UCD_NUMBER, UCD_LETTER, UCD_SEPARATOR, UCD_MARK,
                                          UCD_PUNCT,  UCD_SYMBOL, UCD_UNDEFINED, UCD_CONTROL};
    if (cpt >= 0xD800 && cpt <= 0xDFFF) return UCD_CONTROL;
    char s[4];
    int n = herd_utf8_encode(cpt, s);
    uint16_t f = UCD_UNDEFINED;
    if (pcre2_match(cat_re, (PCRE2_SPTR)s, (size_t)n, 0, 0, md, NULL) > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        for (int g = 1; g <= 8; g++)
            if (ov[2 * g] != PCRE2_UNSET) {
                f = group_flag[g - 1];
                break;
            }
    }
    if (f == UCD_UNDEFINED) f = unicode_15(cpt);
    if (pcre2_match(space_re, (PCRE2_SPTR)s, (size_t)n, 0, 0, md, NULL) > 0) f |= UCD_SPACE;
    return f;
}

static uint16_t *fill_block(uint32_t b)
{
    pthread_once(&compile_once, compile_classifiers);
    if (!cat_re || !space_re) return NULL;
    uint16_t *blk = malloc(256 * sizeof *blk);
    pcre2_match_data *md = pcre2_match_data_create(9, NULL);
    if (!blk || !md) {
        free(blk);
        pcre2_match_data_free(md);
        return NULL;
    }
    for (uint32_t i = 0; i < 256; i++) blk[i] = classify(md, b << 8 | i);
    pcre2_match_data_free(md);
    uint16_t *expected = NULL;
    if (!atomic_compare_exchange_strong(&blocks[b], &expected, blk)) {
        free(blk); /* another thread was first: use its copy */
        blk = expected;
    }
    return blk;
}

bool herd_ucd_flags(const uint32_t *cpt, uint16_t *flags, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t b = cpt[i] >> 8;
        uint16_t *blk = atomic_load_explicit(&blocks[b], memory_order_acquire);
        if (!blk && !(blk = fill_block(b))) return false;
        flags[i] = blk[cpt[i] & 255];
    }
    return true;
}
