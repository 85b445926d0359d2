/*
 * vocab.c — building a herd_vocab from the tokenizer.ggml.* keys of a GGUF
 * file, the way llama.cpp's llama_vocab::impl::load does.
 *
 * What is loaded, in order:
 *   1. the tokenizer kind and its defaults ("llama" = SentencePiece: BOS 1,
 *      EOS 2, UNK 0, a BOS and a space prefix added; "gpt2" = byte-level BPE);
 *   2. the tokens, their scores and types (arrays at least n_tokens long);
 *   3. the special ids and add_bos/add_eos flags the file sets (an id outside
 *      the vocabulary keeps the default, as llama.cpp does);
 *   4. llama.cpp's guesses from token texts: end-of-turn and fill-in-middle
 *      tokens, the end-of-generation set, tokens forced to CONTROL;
 *   5. the list of special tokens, longest first, for splitting them out of
 *      text, and the Phi-3 RSTRIP rule;
 *   6. for byte-level BPE, the merges and the pre-tokenizer (bpe.c).
 * Token texts are copied, so the GGUF file may be closed afterwards.
 */
#include "tokenizer/vocab_impl.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- hash map */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

int32_t herd_i_vocab_find(const herd_vocab *v, const char *s, size_t len)
{
    for (uint32_t h = hash_bytes(s, len) & v->slot_mask;; h = (h + 1) & v->slot_mask) {
        int32_t e = v->slot[h];
        if (e == 0) return -1;
        const vocab_token *t = &v->tok[e - 1];
        if (t->len == len && memcmp(v->text + t->off, s, len) == 0) return e - 1;
    }
}

static herd_status build_hash(herd_vocab *v)
{
    uint32_t cap = 1024;
    while (cap < 2u * (uint32_t)v->n) cap *= 2;
    v->slot = herd_calloc(cap, sizeof *v->slot);
    if (!v->slot) return HERD_E_NOMEM;
    v->slot_mask = cap - 1;
    for (int32_t id = 0; id < v->n; id++) {
        const char *s = vocab_text(v, id);
        int32_t prev = herd_i_vocab_find(v, s, v->tok[id].len);
        if (prev >= 0)
            return herd_seterr(HERD_E_FORMAT,
                               "duplicate token in vocabulary: '%.64s' has ids %d and %d", s, prev,
                               id);
        uint32_t h = hash_bytes(s, v->tok[id].len) & v->slot_mask;
        while (v->slot[h]) h = (h + 1) & v->slot_mask;
        v->slot[h] = id + 1;
    }
    return HERD_OK;
}

/* ------------------------------------------------------- kind, defaults */

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0) return true;
    return false;
}

/* BPE pre-tokenizers for which llama.cpp turns clean_spaces off or add_bos on. */
// clang-format off
static const char *const bpe_keep_spaces[] = {
    "deepseek-llm", "deepseek-coder", "deepseek-v3", "spark2_5", "youtu", "command-r", "qwen2",
    "deepseek-r1-qwen", "kormo", "f2llmv2", "qwen35", "poro-chat", "viking", "tekken", "smollm",
    "chameleon", "gpt-4o", "llama4", "kanana2", "talkie", "granite-embed-multi-97m", "tiny_aya",
    "cohere2moe", "superbpe", "trillion", "granite-docling", "bailingmoe", "bailingmoe2",
    "llada-moe", "seed-coder", "hunyuan", "hunyuan-dense", "hy_v4", "joyai-llm", "kimi-k2",
    "ufakzeka", "grok-2", "afmoe", "laguna", "minimax-m2", "solar-open", "sarvam-moe", NULL};
static const char *const bpe_add_bos[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1",
                                          "pixtral", "midm-2.0", "lfm2", "jina-v5-nano", "tekken",
                                          "chameleon", NULL};
/* ... and for which it takes a word that is a token whole, unmerged. */
static const char *const bpe_ignore_merges[] = {"llama3", "llama-v3", "llama-bpe", "falcon3",
                                                "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                                                "jina-v5-nano", "tekken", "minicpm5", "youtu",
                                                "granite-embed-multi-97m", NULL};
// clang-format on

static herd_status load_kind(herd_vocab *v, const gguf_file *f)
{
    if (!herd_gguf_get_strz(f, "tokenizer.ggml.model", v->model, sizeof v->model))
        return herd_seterr(HERD_E_FORMAT, "no tokenizer.ggml.model: the file has no vocabulary");
    herd_gguf_get_strz(f, "tokenizer.ggml.pre", v->pre, sizeof v->pre);
    v->bos = v->eos = v->eot = v->eom = v->unk = v->pad = v->sep = v->mask = -1;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;
    if (strcmp(v->model, "llama") == 0) {
        v->kind = HERD_VOCAB_SPM;
        v->bos = 1, v->eos = 2, v->unk = 0;
        v->add_space_prefix = v->add_bos = v->escape_spaces = true;
    } else if (strcmp(v->model, "gpt2") == 0) {
        v->kind = HERD_VOCAB_BPE;
        v->bos = 11, v->eos = 11;
        v->clean_spaces = !in_list(v->pre, bpe_keep_spaces);
        v->add_bos = in_list(v->pre, bpe_add_bos);
        v->ignore_merges = in_list(v->pre, bpe_ignore_merges);
        v->escape_spaces = strcmp(v->pre, "sarvam-moe") == 0;
        if (strcmp(v->pre, "glm4") == 0 || strcmp(v->pre, "chatglm-bpe") == 0) v->bos = -1;
    } else {
        return herd_seterr(HERD_E_UNSUPPORTED,
                           "tokenizer model '%s' is not supported (herd reads 'llama' and 'gpt2')",
                           v->model);
    }
    herd_gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);
    return HERD_OK;
}

/* ---------------------------------------------------------------- tokens */

static const gguf_kv *find_array(const gguf_file *f, const char *key, int n, herd_status *st)
{
    const gguf_kv *kv = herd_gguf_find_kv(f, key);
    *st = HERD_OK;
    if (!kv) return NULL;
    if (kv->type != GGUF_TYPE_ARRAY)
        *st = herd_seterr(HERD_E_FORMAT, "%s is a %s, not an array", key,
                          herd_gguf_type_name(kv->type));
    else if (kv->arr_n < (uint64_t)n)
        *st = herd_seterr(HERD_E_FORMAT, "%s has %llu elements for %d tokens", key,
                          (unsigned long long)kv->arr_n, n);
    return *st ? NULL : kv;
}

static herd_status copy_texts(herd_vocab *v, const gguf_kv *kv)
{
    uint64_t total = 0;
    for (int i = 0; i < v->n; i++) {
        uint64_t len = herd_gguf_arr_str(kv, (uint64_t)i).len;
        total += (len ? len : 24) + 1; /* an empty token becomes "[EMPTY_i]" */
    }
    if (total > UINT32_MAX)
        return herd_seterr(HERD_E_FORMAT, "vocabulary texts take %llu bytes, more than herd reads",
                           (unsigned long long)total);
    v->text = herd_calloc((size_t)total, 1);
    if (!v->text) return HERD_E_NOMEM;
    uint32_t off = 0;
    for (int i = 0; i < v->n; i++) {
        gguf_str s = herd_gguf_arr_str(kv, (uint64_t)i);
        char *dst = v->text + off;
        if (s.len)
            memcpy(dst, s.ptr, s.len);
        else
            s.len = (uint64_t)snprintf(dst, 25, "[EMPTY_%d]", i);
        v->tok[i].off = off;
        v->tok[i].len = (uint32_t)s.len;
        off += (uint32_t)s.len + 1;
    }
    return HERD_OK;
}

static uint16_t attr_of_type(int64_t type)
{
    switch (type) {
    case HERD_TOKEN_NORMAL:
        return ATTR_NORMAL;
    case HERD_TOKEN_UNKNOWN:
        return ATTR_UNKNOWN;
    case HERD_TOKEN_CONTROL:
        return ATTR_CONTROL;
    case HERD_TOKEN_USER_DEFINED:
        return ATTR_USER_DEFINED;
    case HERD_TOKEN_UNUSED:
        return ATTR_UNUSED;
    case HERD_TOKEN_BYTE:
        return ATTR_BYTE;
    default:
        return 0; /* undefined */
    }
}

static herd_status load_tokens(herd_vocab *v, const gguf_file *f)
{
    const gguf_kv *kv = herd_gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!kv)
        return herd_seterr(HERD_E_FORMAT, "no tokenizer.ggml.tokens: the file has no vocabulary");
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING)
        return herd_seterr(HERD_E_FORMAT, "tokenizer.ggml.tokens is not an array of strings");
    if (kv->arr_n == 0 || kv->arr_n > INT32_MAX / 4)
        return herd_seterr(HERD_E_FORMAT, "tokenizer.ggml.tokens has %llu tokens",
                           (unsigned long long)kv->arr_n);
    v->n = (int)kv->arr_n;
    v->tok = herd_calloc((size_t)v->n, sizeof *v->tok);
    if (!v->tok) return HERD_E_NOMEM;
    herd_status st = copy_texts(v, kv);
    if (st) return st;

    const gguf_kv *scores = find_array(f, "tokenizer.ggml.scores", v->n, &st);
    if (st) return st;
    if (scores && scores->arr_type != GGUF_TYPE_FLOAT32 && scores->arr_type != GGUF_TYPE_INT32)
        return herd_seterr(HERD_E_FORMAT, "tokenizer.ggml.scores is not an array of float32/int32");
    const gguf_kv *types = find_array(f, "tokenizer.ggml.token_type", v->n, &st);
    if (st) return st;
    if (types && types->arr_type != GGUF_TYPE_INT32)
        return herd_seterr(HERD_E_FORMAT, "tokenizer.ggml.token_type is not an array of int32");
    for (int i = 0; i < v->n; i++) {
        v->tok[i].score = scores ? (float)herd_gguf_arr_f64(scores, (uint64_t)i) : 0.0f;
        v->tok[i].attr = types ? attr_of_type(herd_gguf_arr_i64(types, (uint64_t)i)) : ATTR_NORMAL;
    }
    return build_hash(v);
}

/* ------------------------------------------------------- special tokens */

static herd_status load_special_ids(herd_vocab *v, const gguf_file *f)
{
    static const struct {
        const char *key;
        size_t field;
    } keys[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(herd_vocab, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(herd_vocab, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(herd_vocab, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(herd_vocab, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(herd_vocab, unk)},
        {"tokenizer.ggml.seperator_token_id", offsetof(herd_vocab, sep)},
        {"tokenizer.ggml.padding_token_id", offsetof(herd_vocab, pad)},
        {"tokenizer.ggml.mask_token_id", offsetof(herd_vocab, mask)},
        {"tokenizer.ggml.fim_pre_token_id", offsetof(herd_vocab, fim_pre)},
        {"tokenizer.ggml.fim_suf_token_id", offsetof(herd_vocab, fim_suf)},
        {"tokenizer.ggml.fim_mid_token_id", offsetof(herd_vocab, fim_mid)},
        {"tokenizer.ggml.fim_pad_token_id", offsetof(herd_vocab, fim_pad)},
        {"tokenizer.ggml.fim_rep_token_id", offsetof(herd_vocab, fim_rep)},
        {"tokenizer.ggml.fim_sep_token_id", offsetof(herd_vocab, fim_sep)},
        {"tokenizer.ggml.prefix_token_id", offsetof(herd_vocab, fim_pre)}, /* deprecated names */
        {"tokenizer.ggml.suffix_token_id", offsetof(herd_vocab, fim_suf)},
        {"tokenizer.ggml.middle_token_id", offsetof(herd_vocab, fim_mid)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int32_t *id = (int32_t *)((char *)v + keys[i].field);
        if (*id >= v->n) *id = -1; /* a default the vocabulary is too small for */
        uint32_t u;
        if (herd_gguf_get_u32(f, keys[i].key, &u) && u < (uint32_t)v->n) *id = (int32_t)u;
    }
    herd_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &v->add_bos);
    herd_gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &v->add_eos);
    if (v->add_bos && v->bos < 0)
        return herd_seterr(HERD_E_FORMAT, "tokenizer.ggml.add_bos_token is true, but there is no "
                                          "valid tokenizer.ggml.bos_token_id");
    if (v->add_eos && v->eos < 0)
        return herd_seterr(HERD_E_FORMAT, "tokenizer.ggml.add_eos_token is true, but there is no "
                                          "valid tokenizer.ggml.eos_token_id");
    return HERD_OK;
}

/* llama.cpp finds these tokens by their text when the file does not name
 * them, and makes them CONTROL. The first match in id order wins. */
// clang-format off
static const char *const eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>", NULL};
static const char *const eom_texts[] = {"<|eom_id|>", NULL};
static const char *const fim_pre_texts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
    "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const fim_suf_texts[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
    "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const fim_mid_texts[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
    "<|code_middle|>", "<|middle|>", NULL};
static const char *const fim_pad_texts[] = {
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const fim_rep_texts[] = {
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};

/* Tokens that end generation, whatever the file says about them. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[", NULL};
// clang-format on

static int32_t find_z(const herd_vocab *v, const char *text)
{
    return herd_i_vocab_find(v, text, strlen(text));
}

/* The first text of the list the vocabulary has, or -1. llama.cpp takes the
 * first in its hash map's order; list order gives the same answers on the
 * real vocabularies (<|end|> over <|endoftext|> for Phi-3, <|im_end|>
 * for Qwen2, <|eot_id|> for Llama 3) and does not depend on a hash. */
static int32_t first_of(const herd_vocab *v, const char *const *texts)
{
    for (; *texts; texts++) {
        int32_t id = find_z(v, *texts);
        if (id >= 0) return id;
    }
    return -1;
}

static void guess_special_ids(herd_vocab *v)
{
    struct {
        int32_t *id;
        const char *const *texts;
    } rules[] = {
        {&v->eot, eot_texts},         {&v->eom, eom_texts},         {&v->fim_pre, fim_pre_texts},
        {&v->fim_suf, fim_suf_texts}, {&v->fim_mid, fim_mid_texts}, {&v->fim_pad, fim_pad_texts},
        {&v->fim_rep, fim_rep_texts}, {&v->fim_sep, fim_sep_texts},
    };
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        if (*rules[r].id >= 0) continue;
        *rules[r].id = first_of(v, rules[r].texts);
        if (*rules[r].id >= 0) v->tok[*rules[r].id].attr |= ATTR_CONTROL;
    }
    /* control tokens named "unused…" are unused ones */
    for (int32_t id = 0; id < v->n; id++)
        if ((v->tok[id].attr & ATTR_CONTROL) && strstr(vocab_text(v, id), "unused"))
            v->tok[id].attr |= ATTR_UNUSED;
}

static void eog_add(herd_vocab *v, int32_t id)
{
    if (id < 0) return;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return;
    v->eog[v->n_eog++] = id;
}

static void eog_remove(herd_vocab *v, int32_t id)
{
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) v->eog[i] = v->eog[--v->n_eog];
}

static bool eog_has_text(const herd_vocab *v, const char *s, int32_t *id)
{
    for (int i = 0; i < v->n_eog; i++) {
        if (strcmp(vocab_text(v, v->eog[i]), s) == 0) {
            if (id) *id = v->eog[i];
            return true;
        }
    }
    return false;
}

static herd_status build_eog(herd_vocab *v)
{
    v->eog = herd_calloc(sizeof eog_texts / sizeof eog_texts[0] + 6, sizeof *v->eog);
    if (!v->eog) return HERD_E_NOMEM;
    eog_add(v, v->fim_pad);
    eog_add(v, v->fim_rep);
    eog_add(v, v->fim_sep);
    for (const char *const *t = eog_texts; *t; t++) {
        int32_t id = find_z(v, *t);
        if (id < 0) continue;
        eog_add(v, id);
        v->tok[id].attr |= ATTR_CONTROL;
    }
    /* gpt-oss: always render these */
    static const char *const shown[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>",
                                        NULL};
    for (const char *const *t = shown; *t; t++) {
        int32_t id = find_z(v, *t);
        if (id >= 0) v->tok[id].attr = ATTR_USER_DEFINED;
    }
    eog_add(v, v->eos);
    eog_add(v, v->eot);
    eog_add(v, v->eom);
    /* o200k_harmony and solar-open: <|end|> does not end generation there. */
    int32_t end;
    if (eog_has_text(v, "<|end|>", &end) &&
        ((eog_has_text(v, "<|return|>", NULL) &&
          (eog_has_text(v, "<|call|>", NULL) || eog_has_text(v, "<|calls|>", NULL))) ||
         ((eog_has_text(v, "<|call|>", NULL) || eog_has_text(v, "<|calls|>", NULL)) &&
          eog_has_text(v, "<|flush|>", NULL)))) {
        eog_remove(v, end);
        v->tok[end].attr = ATTR_USER_DEFINED;
    }
    /* gemma4 and paddleocr: </s> is an ordinary token there. */
    int32_t s;
    if (eog_has_text(v, "<|tool_response>", NULL) && eog_has_text(v, "</s>", &s)) {
        eog_remove(v, s);
        v->tok[s].attr = ATTR_NORMAL;
    }
    return HERD_OK;
}

/* qsort has no context argument; per thread, as models may load in parallel. */
static _Thread_local const herd_vocab *sort_vocab;

static int cmp_longer(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    uint32_t la = sort_vocab->tok[a].len, lb = sort_vocab->tok[b].len;
    if (la != lb) return la > lb ? -1 : 1;
    return a < b ? -1 : a > b; /* equal lengths: by id, so the order is fixed */
}

static herd_status build_special_list(herd_vocab *v)
{
    const uint16_t want = ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN;
    v->special = herd_calloc((size_t)v->n, sizeof *v->special);
    if (!v->special) return HERD_E_NOMEM;
    for (int32_t id = 0; id < v->n; id++)
        if (v->tok[id].attr & want) v->special[v->n_special++] = id;
    sort_vocab = v;
    qsort(v->special, (size_t)v->n_special, sizeof *v->special, cmp_longer);
    return HERD_OK;
}

static void set_attr(herd_vocab *v, const char *text, uint16_t bit, bool on)
{
    int32_t id = find_z(v, text);
    if (id < 0) return;
    v->tok[id].attr = on ? (v->tok[id].attr | bit) : (v->tok[id].attr & ~bit);
}

/* llama.cpp's per-model attributes, chosen by model name and pre-tokenizer. */
static void model_attrs(herd_vocab *v, const gguf_file *f)
{
    char name[256] = "", arch[64] = "";
    herd_gguf_get_strz(f, "general.name", name, sizeof name);
    herd_gguf_get_strz(f, "general.architecture", arch, sizeof arch);
    for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (strstr(v->pre, "jina-v2-de") || strstr(v->pre, "jina-v2-es") ||
        strstr(v->pre, "jina-v2-code") || strstr(arch, "nomic-bert-moe") ||
        strstr(arch, "jina-bert-v3")) {
        set_attr(v, "<mask>", ATTR_LSTRIP, true);
    } else if (strstr(name, "phi-3") || strstr(name, "phi3")) {
        for (int i = 0; i < v->n_special; i++) v->tok[v->special[i]].attr |= ATTR_RSTRIP;
        set_attr(v, "</s>", ATTR_RSTRIP, true);
        set_attr(v, "<unk>", ATTR_RSTRIP, false);
        set_attr(v, "<s>", ATTR_RSTRIP, false);
        set_attr(v, "<|endoftext|>", ATTR_RSTRIP, false);
    } else if (strstr(name, "modern-bert")) {
        set_attr(v, "[MASK]", ATTR_LSTRIP, true);
    }
}

/* The UTF-8 of the character GPT-2's byte-level BPE writes for byte b. */
static int gpt2_byte_utf8(uint8_t b, char out[2])
{
    unsigned cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
        /* the other 68 bytes map to 256, 257, … in byte order */
        cp = 256 + (b <= 32 ? b : b <= 160 ? 33u + (b - 127u) : 67u);
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static void build_byte_tokens(herd_vocab *v)
{
    for (int b = 0; b < 256; b++) {
        char s[8];
        int32_t id;
        if (v->kind == HERD_VOCAB_SPM) {
            snprintf(s, sizeof s, "<0x%02X>", b);
            id = herd_i_vocab_find(v, s, 6);
            if (id < 0) {
                s[0] = (char)b;
                id = herd_i_vocab_find(v, s, 1);
            }
        } else {
            id = herd_i_vocab_find(v, s, (size_t)gpt2_byte_utf8((uint8_t)b, s));
        }
        v->byte_tok[b] = id;
    }
}

/* ------------------------------------------------------------ lifecycle */

herd_status herd_vocab_load(const gguf_file *f, herd_vocab **out)
{
    if (!f || !out) return herd_seterr(HERD_E_INVALID, "herd_vocab_load: NULL argument");
    *out = NULL;
    herd_vocab *v = herd_calloc(1, sizeof *v);
    if (!v) return HERD_E_NOMEM;
    herd_status st;
    if ((st = load_kind(v, f)) || (st = load_tokens(v, f)) || (st = load_special_ids(v, f))) {
        herd_vocab_free(v);
        return st;
    }
    guess_special_ids(v);
    if ((st = build_eog(v)) || (st = build_special_list(v))) {
        herd_vocab_free(v);
        return st;
    }
    model_attrs(v, f);
    build_byte_tokens(v);
    if (v->kind == HERD_VOCAB_BPE && (st = herd_bpe_load(v, f))) {
        herd_vocab_free(v);
        return st;
    }
    *out = v;
    return HERD_OK;
}

void herd_vocab_free(herd_vocab *v)
{
    if (!v) return;
    free(v->tok);
    free(v->text);
    free(v->slot);
    free(v->eog);
    free(v->special);
    herd_bpe_free(v);
    free(v);
}

/* ------------------------------------------------------------ accessors */

herd_vocab_kind herd_vocab_type(const herd_vocab *v)
{
    return v->kind;
}
const char *herd_vocab_model_name(const herd_vocab *v)
{
    return v->model;
}
int herd_vocab_n_tokens(const herd_vocab *v)
{
    return v->n;
}
int32_t herd_vocab_bos(const herd_vocab *v)
{
    return v->bos;
}
int32_t herd_vocab_eos(const herd_vocab *v)
{
    return v->eos;
}
bool herd_vocab_add_bos(const herd_vocab *v)
{
    return v->add_bos;
}
bool herd_vocab_add_eos(const herd_vocab *v)
{
    return v->add_eos;
}
bool herd_vocab_add_space_prefix(const herd_vocab *v)
{
    return v->add_space_prefix;
}

bool herd_vocab_is_eog(const herd_vocab *v, int32_t id)
{
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return true;
    return false;
}

int herd_vocab_token_type(const herd_vocab *v, int32_t id)
{
    if (id < 0 || id >= v->n) return -1;
    uint16_t a = v->tok[id].attr;
    if (a & ATTR_BYTE) return HERD_TOKEN_BYTE;
    if (a & ATTR_CONTROL) return HERD_TOKEN_CONTROL;
    if (a & ATTR_USER_DEFINED) return HERD_TOKEN_USER_DEFINED;
    if (a & ATTR_UNKNOWN) return HERD_TOKEN_UNKNOWN;
    if (a & ATTR_UNUSED) return HERD_TOKEN_UNUSED;
    if (a & ATTR_NORMAL) return HERD_TOKEN_NORMAL;
    return HERD_TOKEN_UNDEFINED;
}

const char *herd_vocab_token_text(const herd_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n ? vocab_text(v, id) : NULL;
}

int32_t herd_vocab_find(const herd_vocab *v, const char *text, size_t len)
{
    return text ? herd_i_vocab_find(v, text, len) : -1;
}
