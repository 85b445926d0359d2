/*
 * pretok.c — byte-level BPE pre-tokenizers: which expressions each
 * tokenizer.ggml.pre names (llama.cpp's llm_tokenizer_bpe), and running them
 * the way llama.cpp's unicode_regex_split does.
 *
 * Each expression runs on every word the previous one left, and never sees
 * past it: a match is a word, and so is the text between two matches.
 *
 *   GPT-2's and Llama 3's expressions: hand-written loops over code point
 *     flags, as llama.cpp's unicode_regex_split_custom_* (which differ from the
 *     regex in corner cases; those loops are what llama.cpp tokenizes with).
 *   Others with \p{..}: PCRE2 on the "collapsed" text, one byte per code
 *     point: ASCII as itself, other White_Space as '\v', other letters as
 *     0xD2, numbers 0xD1, punctuation 0xD3, marks 0xD4, symbols 0xD5, the rest
 *     0xD0; \p{L} becomes [\xD2A-Za-z] and so on. This is llama.cpp's trick
 *     for std::regex: exact for \p{L}, \p{N}, \p{P}, \p{S} and \p{M}, but
 *     \p{Lu} and the other letter subclasses all become \p{L} there.
 *   Others: PCRE2 on the UTF-8 text, without Unicode properties (std::wregex
 *     knows only ASCII classes), non-ASCII White_Space turned into '\v'.
 * '$' is compiled PCRE2_DOLLAR_ENDONLY, as in ECMAScript.
 */
#include "tokenizer/pretok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------- the expressions */

#define RE_GPT2     "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_CONTRACT "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3                                                                                  \
    RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"       \
                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2      RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" RE_QWEN2_TAIL
/* Upper-then-lower letter runs, as lookaheads llama.cpp's collapsing can run. */
#define RE_UPPER "((?=[\\p{L}])([^a-z]))"
#define RE_LOWER "((?=[\\p{L}])([^A-Z]))"
#define RE_CASED(c)                                                                                \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+" c "|[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER        \
    "+" RE_LOWER "*" c
#define RE_CASED_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* CJK ideographs as DeepSeek's tokenizers list them (一-龥, U+0800-一, 가-U+D7FF). */
#define RE_CJK  "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
#define RE_KANA "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+"
/* Cased letters (Lu, Ll, Lt), DeepSeek LLM's word characters. */
// clang-format off
#define RE_DS_LETTERS \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}" \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}" \
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}" \
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}" \
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}" \
    "\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}" \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}" \
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}" \
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}" \
    "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}" \
    "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}" \
    "\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}" \
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}" \
    "\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}" \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}" \
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}" \
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}" \
    "\\x{1E900}-\\x{1E943}]+"
// clang-format on
/* Anything but spaces and ". , ! ? … 。 ， 、 । ۔ ،" (and, as written, "(", "|", ")"). */
#define RE_PORO " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"
#define RE_DS3                                                                                     \
    "[!\"#$%&'()*+,\\-./"                                                                          \
    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"                 \
    "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"

typedef struct pre_kind {
    const char *names; /* space-separated values of tokenizer.ggml.pre */
    const char *re[6];
} pre_kind;

// clang-format off
static const pre_kind kinds[] = {
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {"llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano dbrx "
     "smaug-bpe glm4 chatglm-bpe", {RE_LLAMA3}},
    {"deepseek-llm", {"[\r\n]", RE_DS_LETTERS,
                      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}"
                      "\\x{3000}-\\x{3002}]+",
                      "\\s+$", RE_CJK, "\\p{N}+"}},
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}"}},
    {"deepseek-v3 hunyuan-dense hy_v4 joyai-llm", {"\\p{N}{1,3}", RE_KANA, RE_DS3}},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b mellum2", {"\\p{N}", RE_GPT2}},
    {"gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert "
     "jina-v1-en jina-v2-code roberta-bpe mpt olmo jais trillion granite-docling exaone4",
     {RE_GPT2}},
    {"qwen2 deepseek-r1-qwen kormo f2llmv2 stablelm2 hunyuan solar-open megrez", {RE_QWEN2}},
    {"qwen35", {RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+"
                "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"poro-chat bloom gpt3-finnish", {RE_PORO}},
    {"viking", {RE_PORO, "\\p{N}"}},
    {"tekken", {RE_CASED("") "|\\p{N}" RE_CASED_TAIL}},
    {"gpt-4o llama4 kanana2 talkie minimax-m2",
     {RE_CASED(RE_CONTRACT "?") "|\\p{N}{1,3}" RE_CASED_TAIL}},
    {"chameleon", {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )",
                   "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2}},
    {"seed-coder", {RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+"
                    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"grok-2", {RE_QWEN2}},
    {"bailingmoe bailingmoe2 llada-moe",
     {"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
      "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"}},
    {"minicpm5", {"\\p{N}{1,3}", RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+" RE_QWEN2_TAIL}},
};
// clang-format on

/* ------------------------------------------------------------ compiling */

typedef enum step_kind { STEP_GPT2, STEP_LLAMA3, STEP_COLLAPSED, STEP_UTF8 } step_kind;

typedef struct step {
    step_kind kind;
    pcre2_code *re;
} step;

struct pretok {
    int n;
    step steps[6];
};

/* The categories llama.cpp collapses, and what each \p{..} becomes. */
static const struct {
    const char *name, *set;
} ucat[] = {
    {"\\p{N}", "\\x{D1}0-9"},
    {"\\p{L}", "\\x{D2}A-Za-z"},
    {"\\p{P}", "\\x{D3}\\x{21}-\\x{23}\\x{25}-\\x{2A}\\x{2C}-\\x{2F}\\x{3A}\\x{3B}\\x{3F}\\x{40}"
               "\\x{5B}-\\x{5D}\\x{5F}\\x{7B}\\x{7D}"},
    {"\\p{M}", "\\x{D4}"},
    {"\\p{S}", "\\x{D5}\\x{24}\\x{2B}\\x{3C}-\\x{3E}\\x{5E}\\x{60}\\x{7C}\\x{7E}"},
    {"\\p{Lu}", "\\x{D2}A-Za-z"},
    {"\\p{Ll}", "\\x{D2}A-Za-z"},
    {"\\p{Lt}", "\\x{D2}A-Za-z"},
    {"\\p{Lm}", "\\x{D2}A-Za-z"},
    {"\\p{Lo}", "\\x{D2}A-Za-z"},
};
enum { N_UCAT = sizeof ucat / sizeof ucat[0] };

static int ucat_at(const char *re, size_t i)
{
    for (int k = 0; k < N_UCAT; k++)
        if (strncmp(re + i, ucat[k].name, strlen(ucat[k].name)) == 0) return k;
    return -1;
}

static bool uses_ucat(const char *re)
{
    for (size_t i = 0; re[i]; i++)
        if (ucat_at(re, i) >= 0) return true;
    return false;
}

/* The expression for the collapsed text, rewritten as llama.cpp rewrites it:
 * \p{X} becomes X's set, bracketed unless already inside [...]. NULL when
 * out of memory. */
static char *collapse_regex(const char *re)
{
    size_t n = strlen(re), m = 0;
    char *out = malloc(n * 21 + 1); /* \p{P} grows the most: 5 bytes become 102 */
    if (!out) return NULL;
    bool inside = false;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '[' && (i == 0 || re[i - 1] != '\\')) {
            inside = true;
        } else if (inside && c == ']' && re[i - 1] != '\\') {
            inside = false;
        } else if (c == '\\' && i + 3 < n && ucat_at(re, i) >= 0) {
            int k = ucat_at(re, i);
            size_t sl = strlen(ucat[k].set);
            if (!inside) out[m++] = '[';
            memcpy(out + m, ucat[k].set, sl);
            m += sl;
            if (!inside) out[m++] = ']';
            i += strlen(ucat[k].name) - 1;
            continue;
        }
        out[m++] = c;
    }
    out[m] = 0;
    return out;
}

static herd_status compile_step(const char *re, bool custom, step *s)
{
    if (custom && strcmp(re, RE_GPT2) == 0) return s->kind = STEP_GPT2, HERD_OK;
    if (custom && strcmp(re, RE_LLAMA3) == 0) return s->kind = STEP_LLAMA3, HERD_OK;
    bool collapsed = uses_ucat(re);
    for (const char *c = re; collapsed && *c; c++)
        if ((uint8_t)*c >= 0x80) /* as in llama.cpp: the collapsed text has no such bytes */
            return herd_seterr(HERD_E_UNSUPPORTED,
                               "pre-tokenizer expression '%.80s' mixes "
                               "\\p{..} with non-ASCII characters",
                               re);
    char *src = collapsed ? collapse_regex(re) : (char *)re;
    if (!src) return herd_seterr(HERD_E_NOMEM, "pre-tokenizer: out of memory");
    uint32_t opts = PCRE2_DOLLAR_ENDONLY | (collapsed ? 0 : PCRE2_UTF);
    int err;
    PCRE2_SIZE at;
    s->kind = collapsed ? STEP_COLLAPSED : STEP_UTF8;
    s->re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, opts, &err, &at, NULL);
    if (src != re) free(src);
    if (!s->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return herd_seterr(HERD_E_INVALID, "pre-tokenizer expression '%.80s': %s at %zu", re,
                           (char *)msg, (size_t)at);
    }
    pcre2_jit_compile(s->re, PCRE2_JIT_COMPLETE); /* else PCRE2's interpreter */
    return HERD_OK;
}

herd_status herd_pretok_from_regexes(const char *const *regexes, int n, bool custom, pretok **out)
{
    *out = NULL;
    if (n < 1 || n > 6) return herd_seterr(HERD_E_INVALID, "pre-tokenizer: %d expressions", n);
    pretok *p = herd_calloc(1, sizeof *p);
    if (!p) return HERD_E_NOMEM;
    for (; p->n < n; p->n++) {
        herd_status st = compile_step(regexes[p->n], custom, &p->steps[p->n]);
        if (st) {
            herd_pretok_free(p);
            return st;
        }
    }
    *out = p;
    return HERD_OK;
}

static bool name_in(const char *name, const char *names)
{
    size_t len = strlen(name);
    for (const char *s = names; *s;) {
        size_t w = strcspn(s, " ");
        if (w == len && memcmp(s, name, len) == 0) return true;
        s += w + (s[w] == ' ');
    }
    return false;
}

herd_status herd_pretok_new(const char *name, pretok **out)
{
    *out = NULL;
    if (!name || !*name) name = "default";
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!name_in(name, kinds[k].names)) continue;
        int n = 0;
        while (n < 6 && kinds[k].re[n]) n++;
        return herd_pretok_from_regexes(kinds[k].re, n, true, out);
    }
    return herd_seterr(HERD_E_UNSUPPORTED, "pre-tokenizer '%s' is not supported", name);
}

void herd_pretok_free(pretok *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->steps[i].re);
    free(p);
}

void herd_pretok_work_free(pretok_work *w)
{
    free(w->cpt);
    free(w->flags);
    free(w->len);
    free(w->len2);
    free(w->coll);
    free(w->utf);
    free(w->boff);
    pcre2_match_data_free(w->md);
    pcre2_match_context_free(w->mctx);
    pcre2_jit_stack_free(w->jit_stack);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------ buffers */

static bool reserve(void **a, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    void *p = realloc(*a, c * elem);
    if (!p) return false;
    *a = p;
    *cap = c;
    return true;
}

/* Append a word of len code points to the next list (empty words are none). */
static bool emit(pretok_work *w, size_t len)
{
    if (len == 0) return true;
    if (!reserve((void **)&w->len2, &w->len2_cap, w->n_len2 + 1, sizeof *w->len2)) return false;
    w->len2[w->n_len2++] = (uint32_t)len;
    return true;
}

/* ------------------------------------------------- the hand-written loops */

#define NO_CPT 0xFFFFFFFFu
enum { WLN = UCD_SPACE | UCD_LETTER | UCD_NUMBER };

/* One word being cut: code points and flags, read as nothing past end. */
typedef struct span {
    const uint32_t *cpt;
    const uint16_t *fl;
    size_t end;
} span;

static inline uint32_t cp_at(const span *s, size_t i)
{
    return i < s->end ? s->cpt[i] : NO_CPT;
}
static inline uint16_t fl_at(const span *s, size_t i)
{
    return i < s->end ? s->fl[i] : 0;
}
static inline uint32_t lower_ascii(uint32_t c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* 's 't 're 've 'm 'll 'd at pos (folding case if fold): its length, or 0. */
static size_t contraction(const span *s, size_t pos, bool fold)
{
    if (s->cpt[pos] != '\'' || pos + 1 >= s->end) return 0;
    uint32_t a = fold ? lower_ascii(s->cpt[pos + 1]) : s->cpt[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= s->end) return 0;
    uint32_t b = fold ? lower_ascii(s->cpt[pos + 2]) : s->cpt[pos + 2];
    return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ? 3 : 0;
}

/* The run of White_Space at pos; *last_nl gets the end of its last \r or \n. */
static size_t space_run(const span *s, size_t pos, size_t *last_nl)
{
    size_t n = 0;
    for (*last_nl = 0; fl_at(s, pos + n) & UCD_SPACE; n++)
        if (s->cpt[pos + n] == '\r' || s->cpt[pos + n] == '\n') *last_nl = pos + n + 1;
    return n;
}

/* The end of the word at pos for GPT-2's expression: 's|'t|'re|'ve|'m|'ll|'d|
 * ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) and, where nothing matches,
 * one code point (llama.cpp's unicode_regex_split_custom_gpt2). */
static size_t gpt2_word(const span *s, size_t pos)
{
    size_t k = contraction(s, pos, false), nl;
    if (k) return pos + k;
    uint32_t c = s->cpt[pos];
    uint16_t f = c == ' ' ? fl_at(s, pos + 1) : s->fl[pos];
    uint16_t cls = f & UCD_LETTER ? UCD_LETTER : f & UCD_NUMBER ? UCD_NUMBER : 0;
    if (cls) {
        for (pos += c == ' '; fl_at(s, pos) & cls;) pos++;
        return pos;
    }
    if (!(f & WLN) && f) {
        for (pos += c == ' '; !(fl_at(s, pos) & WLN) && fl_at(s, pos);) pos++;
        return pos;
    }
    size_t ws = space_run(s, pos, &nl);
    if (ws > 1 && pos + ws < s->end) return pos + ws - 1; /* \s+(?!\S) leaves one */
    return pos + (ws ? ws : 1);
}

/* Llama 3's expression, as llama.cpp's unicode_regex_split_custom_llama3:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t llama3_word(const span *s, size_t pos)
{
    size_t k = contraction(s, pos, true), nl;
    if (k) return pos + k;
    uint32_t c = s->cpt[pos];
    uint16_t f = s->fl[pos];
    if (c != '\r' && c != '\n' && !(f & UCD_NUMBER) &&
        ((f & UCD_LETTER) || (fl_at(s, pos + 1) & UCD_LETTER))) {
        for (pos++; fl_at(s, pos) & UCD_LETTER;) pos++;
        return pos;
    }
    if (f & UCD_NUMBER) {
        size_t end = pos;
        while (end - pos < 3 && (fl_at(s, end) & UCD_NUMBER)) end++;
        return end;
    }
    uint16_t f2 = c == ' ' ? fl_at(s, pos + 1) : f;
    if (!(f2 & WLN) && f) { /* f, not f2: a lone trailing space ends here too */
        for (pos += c == ' '; !(fl_at(s, pos) & WLN) && fl_at(s, pos);) pos++;
        while (cp_at(s, pos) == '\r' || cp_at(s, pos) == '\n') pos++;
        return pos;
    }
    size_t ws = space_run(s, pos, &nl);
    if (nl) return nl;
    if (ws > 1 && pos + ws < s->end) return pos + ws - 1;
    return pos + (ws ? ws : 1);
}

static herd_status split_custom(pretok_work *w, step_kind kind, size_t start, size_t len)
{
    span s = {w->cpt, w->flags, start + len};
    for (size_t pos = start; pos < s.end;) {
        size_t end = kind == STEP_GPT2 ? gpt2_word(&s, pos) : llama3_word(&s, pos);
        if (!emit(w, end - pos)) return HERD_E_NOMEM;
        pos = end;
    }
    return HERD_OK;
}

/* ------------------------------------------------------------ PCRE2 runs */

static char collapse(uint32_t c, uint16_t f)
{
    if (c < 0x80) return (char)c;
    if (f & UCD_SPACE) return '\v';
    switch (f & 0xFF) {
    case UCD_NUMBER:
        return (char)0xD1;
    case UCD_LETTER:
        return (char)0xD2;
    case UCD_PUNCT:
        return (char)0xD3;
    case UCD_MARK:
        return (char)0xD4;
    case UCD_SYMBOL:
        return (char)0xD5;
    default:
        return (char)0xD0;
    }
}

static bool build_collapsed(pretok_work *w)
{
    if (w->have_coll) return true;
    if (!reserve((void **)&w->coll, &w->coll_cap, w->n + 1, 1)) return false;
    for (size_t i = 0; i < w->n; i++) w->coll[i] = collapse(w->cpt[i], w->flags[i]);
    return w->have_coll = true;
}

/* UTF-8 again, but non-ASCII White_Space as '\v' and surrogates (which
 * PCRE2 cannot take, and no expression names) as U+FFFF. */
static bool build_utf8(pretok_work *w)
{
    if (w->have_utf) return true;
    if (!reserve((void **)&w->utf, &w->utf_cap, 4 * w->n + 1, 1) ||
        !reserve((void **)&w->boff, &w->boff_cap, w->n + 1, sizeof *w->boff))
        return false;
    size_t m = 0;
    for (size_t i = 0; i < w->n; i++) {
        uint32_t c = w->cpt[i];
        if (c >= 0x80 && (w->flags[i] & UCD_SPACE)) c = '\v';
        if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFF;
        w->boff[i] = (uint32_t)m;
        m += (size_t)herd_utf8_encode(c, w->utf + m);
    }
    w->boff[w->n] = (uint32_t)m;
    return w->have_utf = true;
}

static herd_status match_error(int rc)
{
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return herd_seterr(HERD_E_UNSUPPORTED, "pre-tokenizer: PCRE2 match failed: %s", (char *)msg);
}

/* Match re at subj[off..len), retrying once with a 4 MiB JIT stack if the
 * default 32 KiB one is not enough. */
static int match(pretok_work *w, const pcre2_code *re, const char *subj, size_t len, size_t off,
                 uint32_t opts)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, off, opts, w->md, w->mctx);
    if (rc != PCRE2_ERROR_JIT_STACKLIMIT || w->jit_stack) return rc;
    w->jit_stack = pcre2_jit_stack_create(32 * 1024, 4 << 20, NULL);
    w->mctx = pcre2_match_context_create(NULL);
    if (!w->jit_stack || !w->mctx) return PCRE2_ERROR_NOMEMORY;
    pcre2_jit_stack_assign(w->mctx, NULL, w->jit_stack);
    return pcre2_match(re, (PCRE2_SPTR)subj, len, off, opts, w->md, w->mctx);
}

/* The index of the code point at byte b of the word at start: *cur moves
 * forward only, as matches do. */
static size_t cpt_at(const pretok_work *w, bool utf, size_t start, size_t *cur, size_t b)
{
    if (!utf) return start + b;
    while (w->boff[*cur] - w->boff[start] < b) (*cur)++;
    return *cur;
}

/* Cut the word of len code points at start with the step's expression: the
 * text before each match is a word, and so is the match. */
static herd_status split_regex(pretok_work *w, const step *s, size_t start, size_t len)
{
    bool utf = s->kind == STEP_UTF8;
    const char *subj = utf ? w->utf + w->boff[start] : w->coll + start;
    size_t blen = utf ? w->boff[start + len] - w->boff[start] : len;
    uint32_t opts = PCRE2_NOTEMPTY | (utf ? PCRE2_NO_UTF_CHECK : 0);
    size_t done = start, cur = start; /* code points emitted; cursor for cpt_at */
    for (size_t off = 0; off < blen;) {
        int rc = match(w, s->re, subj, blen, off, opts);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc == PCRE2_ERROR_NOMEMORY) return HERD_E_NOMEM;
        if (rc < 0) return match_error(rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t a = cpt_at(w, utf, start, &cur, ov[0]), b = cpt_at(w, utf, start, &cur, ov[1]);
        if (!emit(w, a - done) || !emit(w, b - a)) return HERD_E_NOMEM;
        done = b;
        off = ov[1];
    }
    return emit(w, start + len - done) ? HERD_OK : HERD_E_NOMEM;
}

/* ------------------------------------------------------------- driver */

static herd_status decode(pretok_work *w, const char *text, size_t len)
{
    if (!reserve((void **)&w->cpt, &w->cap, len + 1, sizeof *w->cpt) ||
        !reserve((void **)&w->flags, &w->flags_cap, len + 1, sizeof *w->flags))
        return HERD_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len; n++)
        i += herd_utf8_decode((const uint8_t *)text + i, len - i, &w->cpt[n]);
    w->n = n;
    return herd_ucd_flags(w->cpt, w->flags, n) ? HERD_OK : HERD_E_NOMEM;
}

/* The next list (len2) becomes the current one (len); the old current one
 * is reused as the next. */
static void swap_lists(pretok_work *w)
{
    uint32_t *t = w->len;
    size_t tc = w->len_cap;
    w->len = w->len2, w->len_cap = w->len2_cap, w->n_len = w->n_len2;
    w->len2 = t, w->len2_cap = tc, w->n_len2 = 0;
}

herd_status herd_pretok_split(const pretok *p, pretok_work *w, const char *text, size_t len)
{
    herd_status st = decode(w, text, len);
    w->have_coll = w->have_utf = false;
    w->n_len = w->n_len2 = 0;
    if (!st && !w->md && !(w->md = pcre2_match_data_create(1, NULL))) st = HERD_E_NOMEM;
    if (!st && w->n && !emit(w, w->n)) st = HERD_E_NOMEM;
    for (int k = 0; k < p->n && !st; k++) {
        swap_lists(w); /* the list just made is the input of this step */
        const step *s = &p->steps[k];
        if ((s->kind == STEP_COLLAPSED && !build_collapsed(w)) ||
            (s->kind == STEP_UTF8 && !build_utf8(w))) {
            st = HERD_E_NOMEM;
            break;
        }
        for (size_t i = 0, start = 0; i < w->n_len && !st; start += w->len[i++]) {
            st = s->kind <= STEP_LLAMA3 ? split_custom(w, s->kind, start, w->len[i])
                                        : split_regex(w, s, start, w->len[i]);
        }
    }
    swap_lists(w); /* the last step's words are the result */
    if (st == HERD_E_NOMEM) herd_seterr(st, "pre-tokenizer: out of memory");
    return st;
}
