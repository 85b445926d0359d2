/*
 * conversation.c — a chat with a model: the messages, their rendering with the
 * model's chat format, and the KV cache that holds that rendering. chat.h
 * ("conversations") tells what it does; this file is how.
 *
 * The one invariant: cache[0..n_cache) is exactly the token sequence that
 * sequence 0 of the KV cache holds, in position order. herd_kv_remove() trims
 * both, herd_decode() appends to both, nothing else touches either.
 *
 * A reply is: render the conversation (with the generation prompt), tokenize
 * it, keep the longest cached prefix that matches (match()), decode the rest
 * (prefill()), then sample until an end-of-generation token, a stop string, the
 * token limit or an interruption (generate()). When the prompt does not leave
 * room for an answer, whole turns are dropped from the front first
 * (build_prompt()).
 */
#define _GNU_SOURCE /* memmem */
#include "chat/chat.h"
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

struct herd_conv {
    herd_model *model;
    herd_ctx *ctx;
    int n_ctx, n_batch, n_predict;
    herd_chat_template *tmpl; /* NULL: the built-in format below */
    const char *format;       /* canonical name of the built-in format */
    char *bos, *eos;          /* token texts the template sees; NULL: undefined */
    json_t *messages;
    herd_sampler *smp;
    char **stops; /* NULL-terminated */
    size_t max_stop;
    int32_t *cache; /* [n_ctx] tokens of sequence 0 */
    int n_cache;
    int last_row; /* row of the last batch whose logits come next */
    herd_conv_stats st;
};

/* ------------------------------------------------------------ text buffer */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static bool buf_reserve(buf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

static bool buf_put(buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n)) return false;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

/* A token's text: special tokens written out, so that a stop string such as
 * "<|im_end|>" is seen whether the model wrote it as one token or several. */
static bool put_piece(const herd_conv *c, buf *b, int32_t tok)
{
    char tmp[64];
    int n = herd_token_to_piece(c->model, tok, true, tmp, sizeof tmp);
    if (n <= 0) return true;
    if (n <= (int)sizeof tmp) return buf_put(b, tmp, (size_t)n);
    if (!buf_reserve(b, (size_t)n)) return false;
    herd_token_to_piece(c->model, tok, true, b->p + b->n, n);
    b->n += (size_t)n;
    b->p[b->n] = 0;
    return true;
}

/* A copy that is valid UTF-8: each byte of an invalid or cut-off sequence
 * becomes U+FFFD. JSON strings need valid text, and a model may stop in the
 * middle of a character or emit stray bytes. */
static char *valid_utf8(const char *s, size_t n, size_t *len)
{
    buf b = {0};
    if (!buf_reserve(&b, n)) return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c0 = (unsigned char)s[i];
        size_t k = c0 < 0x80   ? 1
                   : c0 < 0xC2 ? 0
                   : c0 < 0xE0 ? 2
                   : c0 < 0xF0 ? 3
                   : c0 < 0xF5 ? 4
                               : 0;
        bool ok = k > 0 && i + k <= n;
        for (size_t j = 1; ok && j < k; j++) ok = ((unsigned char)s[i + j] & 0xC0) == 0x80;
        if (ok && k > 2) { /* no overlong forms, surrogates or code points past U+10FFFF */
            unsigned char c1 = (unsigned char)s[i + 1];
            ok = !(c0 == 0xE0 && c1 < 0xA0) && !(c0 == 0xED && c1 > 0x9F) &&
                 !(c0 == 0xF0 && c1 < 0x90) && !(c0 == 0xF4 && c1 > 0x8F);
        }
        if (!(ok ? buf_put(&b, s + i, k) : buf_put(&b, "\xEF\xBF\xBD", 3))) {
            free(b.p);
            return NULL;
        }
        i += ok ? k : 1;
    }
    *len = b.n;
    return b.p;
}

/* --------------------------------------------------------------- messages */

static bool is_role(const json_t *m, const char *role)
{
    const char *r = json_string_value(json_object_get(m, "role"));
    return r && !strcmp(r, role);
}

static json_t *new_message(const char *role, const char *text, size_t n)
{
    size_t len;
    char *ok = valid_utf8(text ? text : "", text ? n : 0, &len);
    json_t *m = ok ? json_pack("{s:s, s:s%}", "role", role, "content", ok, len) : NULL;
    free(ok);
    return m;
}

/* Index of the first message that is not the system prompt. */
static size_t first_turn(const herd_conv *c)
{
    return json_array_size(c->messages) && is_role(json_array_get(c->messages, 0), "system");
}

/* How many messages make the oldest turn once `skip` messages after the
 * system prompt are left out: from there to the next user message. 0 when
 * that turn runs to the end, for the last user message is never dropped. */
static int oldest_turn(const herd_conv *c, int skip)
{
    size_t n = json_array_size(c->messages), a = first_turn(c) + (size_t)skip, e = a + 1;
    while (e < n && !is_role(json_array_get(c->messages, e), "user")) e++;
    return e < n ? (int)(e - a) : 0;
}

/* ------------------------------------------------------------- rendering */

static herd_status render_msgs(const herd_conv *c, const json_t *msgs, bool gen, char **out,
                               size_t *len)
{
    herd_chat_input in = {
        .messages = msgs, .bos_token = c->bos, .eos_token = c->eos, .add_generation_prompt = gen};
    return c->tmpl ? herd_chat_template_render(c->tmpl, &in, out, len, NULL)
                   : herd_chat_named_render(c->format, msgs, gen, out, len);
}

/* The conversation's prompt without the `skip` oldest non-system messages. */
static herd_status render(const herd_conv *c, int skip, bool gen, char **out, size_t *len)
{
    if (!skip) return render_msgs(c, c->messages, gen, out, len);
    size_t a = first_turn(c);
    json_t *msgs = json_array();
    if (!msgs) return herd_seterr(HERD_E_NOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(c->messages); i++)
        if (i < a || i >= a + (size_t)skip) json_array_append(msgs, json_array_get(c->messages, i));
    herd_status st = render_msgs(c, msgs, gen, out, len);
    json_decref(msgs);
    return st;
}

/* Tokenize a rendered prompt. Templates that write bos_token themselves get
 * no second BOS from the tokenizer. */
static herd_status tokenize(const herd_conv *c, const char *text, size_t len, int32_t **ids, int *n)
{
    size_t nb = c->bos ? strlen(c->bos) : 0;
    bool bos = herd_add_bos(c->model) && !(nb && len >= nb && !memcmp(text, c->bos, nb));
    int need = 0;
    herd_status st = herd_tokenize(c->model, text, len, bos, true, NULL, 0, &need);
    if (st && need == 0) return st;
    if (!(*ids = malloc(((size_t)need + 1) * sizeof **ids)))
        return herd_seterr(HERD_E_NOMEM, "out of memory");
    if ((st = herd_tokenize(c->model, text, len, bos, true, *ids, need + 1, n))) {
        free(*ids);
        *ids = NULL;
    }
    return st;
}

/* Is there room for a prompt of n tokens and an answer of n_left (<= 0: a
 * quarter of the context)? The answer's share is capped at half the context,
 * so that a large -n does not throw away the whole history. */
static bool fits(const herd_conv *c, int n, int n_left)
{
    int room = n_left > 0 ? n_left : c->n_ctx / 4;
    if (room > c->n_ctx / 2) room = c->n_ctx / 2;
    if (room < 1) room = 1;
    return n + room <= c->n_ctx;
}

/* Render and tokenize the conversation with the generation prompt and the
 * answer so far (NULL: none), leaving out the oldest turns until it fits with
 * room for n_left more tokens or nothing more can go. *skip gets the number
 * of messages left out; the caller commits the drop with drop(). */
static herd_status build_prompt(herd_conv *c, const buf *answer, int n_left, int32_t **ids, int *n,
                                int *skip)
{
    for (*skip = 0;;) {
        char *text;
        size_t len;
        buf b = {0};
        herd_status st = render(c, *skip, true, &text, &len);
        if (st) return st;
        bool ok = buf_put(&b, text, len) && (!answer || buf_put(&b, answer->p, answer->n));
        free(text);
        st = ok ? tokenize(c, b.p, b.n, ids, n) : herd_seterr(HERD_E_NOMEM, "out of memory");
        free(b.p);
        if (st) return st;
        int d = fits(c, *n, n_left) ? 0 : oldest_turn(c, *skip);
        if (!d) return HERD_OK;
        free(*ids);
        *ids = NULL;
        *skip += d;
    }
}

static void drop(herd_conv *c, int skip, const herd_conv_io *io)
{
    if (!skip) return;
    size_t a = first_turn(c);
    for (int i = 0; i < skip; i++) json_array_remove(c->messages, a);
    c->st.n_dropped += skip;
    if (io && io->dropped) io->dropped(io->user, skip);
}

/* ----------------------------------------------------------- cache reuse */

/* The texts of t[0..n) one after another, off[k] where the k-th begins
 * (off[n] = the total). Control and user-defined tokens are marked with a
 * 0xFF byte (never in UTF-8), so that a special token never matches the same
 * characters written as plain text: the model reads them differently. */
static bool texts(const herd_conv *c, const int32_t *t, int n, buf *b, size_t *off)
{
    for (int k = 0; k < n; k++) {
        off[k] = b->n;
        int type = herd_vocab_token_type(c->model->vocab, t[k]);
        if ((type == HERD_TOKEN_CONTROL || type == HERD_TOKEN_USER_DEFINED) &&
            !buf_put(b, "\xFF", 1))
            return false;
        if (!put_piece(c, b, t[k])) return false;
    }
    off[n] = b->n;
    return true;
}

/* How much of the cache the prompt t[0..n) keeps: cache[0..*keep) stays and
 * t[*from..n) is decoded after it. First the common run of identical tokens;
 * then, past it, the longest stretch whose text is the same on both sides and
 * ends on a token boundary of each. The second part keeps an answer the model
 * generated even when the tokenizer cuts the same text into other tokens. */
static herd_status match(const herd_conv *c, const int32_t *t, int n, int *keep, int *from)
{
    int l = 0;
    while (l < c->n_cache && l < n && c->cache[l] == t[l]) l++;
    *keep = *from = l;
    int na = c->n_cache - l, nb = n - l;
    if (!na || !nb) return HERD_OK;
    buf ta = {0}, tb = {0};
    size_t *oa = malloc(((size_t)na + 1) * sizeof *oa), *ob = malloc(((size_t)nb + 1) * sizeof *ob);
    bool ok = oa && ob && texts(c, c->cache + l, na, &ta, oa) && texts(c, t + l, nb, &tb, ob);
    if (ok) {
        size_t m = 0;
        while (m < ta.n && m < tb.n && ta.p[m] == tb.p[m]) m++;
        int i = 0, j = 0;
        while (i <= na && j <= nb && oa[i] <= m && ob[j] <= m) {
            if (oa[i] == ob[j]) {
                *keep = l + i++;
                *from = l + j++;
            } else if (oa[i] < ob[j])
                i++;
            else
                j++;
        }
    }
    free(ta.p), free(tb.p), free(oa), free(ob);
    return ok ? HERD_OK : herd_seterr(HERD_E_NOMEM, "out of memory");
}

static bool interrupted(const herd_conv_io *io)
{
    return io && io->interrupted && io->interrupted(io->user);
}

/* Append t[0..n) to the cache in batches of n_batch; the last token's logits
 * come next. Stops early (with *stopped) when interrupted between batches. */
static herd_status decode(herd_conv *c, const int32_t *t, int n, const herd_conv_io *io,
                          bool *stopped)
{
    if (c->n_cache + n > c->n_ctx)
        return herd_seterr(HERD_E_FULL, "the conversation needs %d tokens, the context has %d",
                           c->n_cache + n, c->n_ctx);
    int32_t *pos = malloc((size_t)c->n_batch * sizeof *pos);
    if (!pos) return herd_seterr(HERD_E_NOMEM, "out of memory");
    herd_status st = HERD_OK;
    for (int i = 0; i < n && !st; i += c->n_batch) {
        if (interrupted(io)) {
            *stopped = true;
            break;
        }
        int k = n - i < c->n_batch ? n - i : c->n_batch;
        for (int j = 0; j < k; j++) pos[j] = c->n_cache + j;
        herd_batch b = {.n_tokens = k, .token = t + i, .pos = pos};
        if ((st = herd_decode(c->ctx, &b))) {
            herd_kv_remove(c->ctx, 0, c->n_cache, -1); /* keep the invariant */
            break;
        }
        memcpy(c->cache + c->n_cache, t + i, (size_t)k * sizeof *t);
        c->n_cache += k;
        c->last_row = k - 1;
        c->st.n_decoded_total += k;
    }
    free(pos);
    return st;
}

/* Bring the cache to the prompt t[0..n): keep what matches, remove the
 * rest, decode what is missing. When all of it is cached, the last token is
 * decoded again, for its logits. */
static herd_status prefill(herd_conv *c, const int32_t *t, int n, const herd_conv_io *io,
                           bool *stopped)
{
    int keep, from;
    herd_status st = match(c, t, n, &keep, &from);
    if (st) return st;
    /* With a sliding window W, the cells more than W positions back are
     * evicted as decoding goes on; going back to `keep` needs the W before
     * it, which are gone once the cache has passed W. */
    int w = c->ctx->swa;
    if (w > 0 && keep < c->n_cache && c->n_cache >= w) keep = from = 0;
    int32_t last;
    if (from == n && keep > 0) {
        last = c->cache[--keep];
        t = &last, from = 0, n = 1;
    } else if (from == n)
        from = 0;
    if ((st = herd_kv_remove(c->ctx, 0, keep, -1))) return st;
    c->n_cache = keep;
    c->st.n_reused = keep;
    c->st.n_decoded += n - from;
    return decode(c, t + from, n - from, io, stopped);
}

/* ---------------------------------------------------------- stop strings */

/* End-of-turn markers of the formats and templates herd knows. A format's
 * stop strings are those it writes between an answer and the next user
 * message. */
// clang-format off
static const char *const known_stops[] = {
    "</s>", "<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|user|>", "<|end|>", "<|eot_id|>",
    "<|eom_id|>", "<|start_header_id|>", "<|end_of_turn|>", "GPT4 Correct User:",
    "<end_of_turn>", "<start_of_turn>", "<|EOT|>", "### Instruction:", "<|END_OF_TURN_TOKEN|>",
    "<|START_OF_TURN_TOKEN|>", "\nInstruct:", "\nUser:", "\nUSER:", "<|USER|>", "<eos>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
    "<\xEF\xBD\x9CUser\xEF\xBD\x9C>", "[INST]", "<|end_of_text|>", NULL};
// clang-format on

static bool add_stop(herd_conv *c, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(c->stops[i], s)) return true;
    char **p = realloc(c->stops, (*n + 2) * sizeof *p);
    if (!p) return false;
    c->stops = p;
    if (!(p[*n] = strdup(s))) return false;
    p[++*n] = NULL;
    if (strlen(s) > c->max_stop) c->max_stop = strlen(s);
    return true;
}

/* Render user, assistant, user and look at what lies between the answer and
 * the next question. A template that refuses the sample gets no stop
 * strings: end-of-generation tokens still end answers. */
static herd_status find_stops(herd_conv *c, const char *const *extra)
{
    size_t n = 0;
    if (!(c->stops = calloc(1, sizeof *c->stops)))
        return herd_seterr(HERD_E_NOMEM, "out of memory");
    json_t *sample =
        json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "role", "user", "content", "herdQ1",
                  "role", "assistant", "content", "herdA1", "role", "user", "content", "herdQ2");
    char *text = NULL;
    size_t len;
    herd_status st = sample ? render_msgs(c, sample, false, &text, &len) : HERD_E_NOMEM;
    json_decref(sample);
    if (st == HERD_E_NOMEM) return herd_seterr(st, "out of memory");
    herd_clearerr();
    char *a = st ? NULL : strstr(text, "herdA1"), *q = a ? strstr(a, "herdQ2") : NULL;
    bool ok = true;
    if (q) {
        *q = 0;
        for (const char *const *s = known_stops; *s && ok; s++)
            if (strstr(a + 6, *s)) ok = add_stop(c, &n, *s);
        if (ok && c->eos && *c->eos && strstr(a + 6, c->eos)) ok = add_stop(c, &n, c->eos);
    }
    for (; extra && *extra && ok; extra++)
        if (**extra) ok = add_stop(c, &n, *extra);
    free(text);
    return ok ? HERD_OK : herd_seterr(HERD_E_NOMEM, "out of memory");
}

/* Where the first stop string begins in s[from..n), or n. */
static size_t find_stop(const herd_conv *c, const char *s, size_t from, size_t n)
{
    size_t at = n;
    if (!s || from >= n) return n; /* memmem(NULL, 0, ...) is undefined */
    for (char **p = c->stops; *p; p++) {
        const char *hit = memmem(s + from, n - from, *p, strlen(*p));
        if (hit && (size_t)(hit - s) < at) at = (size_t)(hit - s);
    }
    return at;
}

/* How many bytes at the end of s[0..n) could begin a stop string. */
static size_t held_back(const herd_conv *c, const char *s, size_t n)
{
    size_t k = c->max_stop ? c->max_stop - 1 : 0;
    for (k = k < n ? k : n; k > 0; k--)
        for (char **p = c->stops; *p; p++)
            if (strlen(*p) > k && !memcmp(*p, s + n - k, k)) return k;
    return 0;
}

/* Pass the answer on up to what could still turn out to be a stop string
 * (all of it when final). */
static void show(const herd_conv *c, const herd_conv_io *io, const buf *ans, size_t *shown,
                 bool final)
{
    size_t end = ans->n - (final ? 0 : held_back(c, ans->p + *shown, ans->n - *shown));
    if (end > *shown && io && io->text) io->text(io->user, ans->p + *shown, end - *shown);
    if (end > *shown) *shown = end;
}

/* ------------------------------------------------------------ generation */

/* The cache is full in the middle of an answer: drop old turns and carry on
 * after the shorter prompt, the answer so far included. *ok is false when
 * nothing can be dropped or the rest still does not fit. */
static herd_status make_room(herd_conv *c, const buf *ans, const herd_conv_io *io, bool *ok,
                             bool *stopped)
{
    *ok = false;
    if (!oldest_turn(c, 0)) return HERD_OK;
    int left = c->n_predict > 0 ? c->n_predict - c->st.n_generated : 0, n, skip;
    int32_t *ids;
    herd_status st = build_prompt(c, ans, left, &ids, &n, &skip);
    if (st) return st;
    if (skip && n < c->n_ctx) {
        drop(c, skip, io);
        c->st.n_prompt = n;
        st = prefill(c, ids, n, io, stopped);
        *ok = !st;
    }
    free(ids);
    return st;
}

/* Sample the answer into ans, streaming it through io. The cache holds every
 * token of the answer but the one that ended it. */
static herd_status generate(herd_conv *c, const herd_conv_io *io, buf *ans, herd_conv_stop *why)
{
    herd_status st = HERD_OK;
    size_t shown = 0;
    for (;;) {
        bool stopped = false, ok = true;
        if (c->n_predict > 0 && c->st.n_generated >= c->n_predict) {
            *why = HERD_CONV_LIMIT;
            break;
        }
        if (c->n_cache >= c->n_ctx && (st = make_room(c, ans, io, &ok, &stopped))) break;
        if (!ok || stopped || interrupted(io)) {
            *why = ok ? HERD_CONV_INTERRUPTED : HERD_CONV_CONTEXT;
            break;
        }
        int32_t tok = herd_sampler_sample(c->smp, herd_get_logits(c->ctx, c->last_row));
        if (herd_token_is_eog(c->model, tok)) {
            *why = HERD_CONV_EOG;
            break;
        }
        herd_sampler_accept(c->smp, tok);
        c->st.n_generated++;
        size_t from = ans->n;
        if (!put_piece(c, ans, tok)) {
            st = herd_seterr(HERD_E_NOMEM, "out of memory");
            break;
        }
        /* a stop string may begin in text held back from the last piece */
        from = from > c->max_stop ? from - c->max_stop : 0;
        size_t at = find_stop(c, ans->p, from > shown ? from : shown, ans->n);
        if (at < ans->n) {
            ans->n = at;
            *why = HERD_CONV_STOP_STRING;
            break;
        }
        show(c, io, ans, &shown, false);
        if ((st = decode(c, &tok, 1, NULL, &stopped))) break;
    }
    show(c, io, ans, &shown, true);
    return st;
}

/* ------------------------------------------------------------ public API */

herd_conv_params herd_conv_default_params(void)
{
    herd_conv_params p = {.n_predict = -1, .sampling = herd_sampler_default_params()};
    return p;
}

static char *token_text(const herd_model *m, int32_t id)
{
    const char *s = id >= 0 ? herd_vocab_token_text(m->vocab, id) : NULL;
    return s ? strdup(s) : NULL;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    buf b = {0};
    char tmp[4096];
    size_t got;
    bool ok = buf_reserve(&b, 0);
    while (ok && (got = fread(tmp, 1, sizeof tmp, f)) > 0) ok = buf_put(&b, tmp, got);
    ok = ok && !ferror(f);
    fclose(f);
    if (!ok) free(b.p);
    return ok ? b.p : NULL;
}

/* The template or format: params first, then the model's file, then the
 * built-in format picked from the model's architecture and name. */
static herd_status choose_format(herd_conv *c, const herd_conv_params *p)
{
    const char *src = p->template_src;
    char *file = NULL;
    gguf_str s;
    if (!src && p->chat_template) {
        if ((c->format = herd_chat_named_canonical(p->chat_template))) return HERD_OK;
        if (!(src = file = read_file(p->chat_template)))
            return herd_seterr(HERD_E_INVALID,
                               "chat template '%s' is neither a built-in format nor a readable "
                               "file",
                               p->chat_template);
    }
    if (!src && herd_gguf_get_str(c->model->file, "tokenizer.chat_template", &s)) {
        if (!(src = file = strndup(s.ptr, s.len)))
            return herd_seterr(HERD_E_NOMEM, "out of memory");
    }
    if (!src) {
        c->format = herd_chat_named_pick(c->model->arch_name, c->model->name);
        return HERD_OK;
    }
    herd_status st = herd_chat_template_parse(src, &c->tmpl);
    free(file);
    return st;
}

herd_status herd_conv_new(herd_model *model, herd_ctx *ctx, const herd_conv_params *params,
                          herd_conv **out)
{
    herd_conv_params dp = herd_conv_default_params();
    const herd_conv_params *p = params ? params : &dp;
    *out = NULL;
    herd_conv *c = calloc(1, sizeof *c);
    if (!c) return herd_seterr(HERD_E_NOMEM, "out of memory");
    c->model = model;
    c->ctx = ctx;
    c->n_ctx = herd_ctx_n_ctx(ctx);
    c->n_batch = ctx->params.n_batch;
    c->n_predict = p->n_predict;
    c->bos = token_text(model, herd_token_bos(model));
    c->eos = token_text(model, herd_token_eos(model));
    c->cache = malloc((size_t)c->n_ctx * sizeof *c->cache);
    c->messages = json_array();
    herd_status st = c->cache && c->messages ? HERD_OK : herd_seterr(HERD_E_NOMEM, "out of memory");
    if (!st) st = herd_sampler_new(&p->sampling, herd_n_vocab(model), &c->smp);
    if (!st) st = choose_format(c, p);
    if (!st) st = find_stops(c, p->stop);
    if (!st) st = herd_conv_set_system(c, p->system);
    if (!st) st = herd_kv_remove(ctx, 0, 0, -1);
    if (st) {
        herd_conv_free(c);
        return st;
    }
    *out = c;
    return HERD_OK;
}

void herd_conv_free(herd_conv *c)
{
    if (!c) return;
    herd_chat_template_free(c->tmpl);
    herd_sampler_free(c->smp);
    json_decref(c->messages);
    for (char **s = c->stops; s && *s; s++) free(*s);
    free(c->stops);
    free(c->bos);
    free(c->eos);
    free(c->cache);
    free(c);
}

herd_status herd_conv_add(herd_conv *c, const char *role, const char *content)
{
    json_t *m = new_message(role, content, content ? strlen(content) : 0);
    if (!m || json_array_append_new(c->messages, m))
        return herd_seterr(HERD_E_NOMEM, "out of memory");
    return HERD_OK;
}

herd_status herd_conv_set_system(herd_conv *c, const char *text)
{
    if (first_turn(c)) json_array_remove(c->messages, 0);
    if (!text || !*text) return HERD_OK;
    json_t *m = new_message("system", text, strlen(text));
    if (!m || json_array_insert_new(c->messages, 0, m))
        return herd_seterr(HERD_E_NOMEM, "out of memory");
    return HERD_OK;
}

void herd_conv_reset(herd_conv *c)
{
    while (json_array_size(c->messages) > first_turn(c))
        json_array_remove(c->messages, json_array_size(c->messages) - 1);
}

herd_status herd_conv_reply(herd_conv *c, const char *user_text, const herd_conv_io *io,
                            herd_conv_stop *why)
{
    herd_conv_stop dummy;
    why = why ? why : &dummy;
    *why = HERD_CONV_EOG;
    c->st.n_prompt = c->st.n_reused = c->st.n_decoded = c->st.n_generated = c->st.n_dropped = 0;
    herd_status st = herd_conv_add(c, "user", user_text);
    if (st) return st;
    int32_t *ids = NULL;
    int n = 0, skip = 0;
    if (!(st = build_prompt(c, NULL, c->n_predict, &ids, &n, &skip)) && n >= c->n_ctx)
        st = herd_seterr(HERD_E_FULL,
                         "the message does not fit in the context (%d tokens with the system "
                         "prompt, the context has %d)",
                         n, c->n_ctx);
    if (st) {
        free(ids);
        json_array_remove(c->messages, json_array_size(c->messages) - 1);
        return st;
    }
    drop(c, skip, io);
    c->st.n_prompt = n;
    herd_sampler_reset(c->smp);
    for (int i = 0; i < n; i++) herd_sampler_accept(c->smp, ids[i]);
    bool stopped = false;
    st = prefill(c, ids, n, io, &stopped);
    free(ids);
    buf ans = {0};
    if (!st && stopped)
        *why = HERD_CONV_INTERRUPTED;
    else if (!st)
        st = generate(c, io, &ans, why);
    /* the answer joins the conversation however it ended */
    json_t *m = new_message("assistant", ans.p, ans.n);
    free(ans.p);
    if (!m || json_array_append_new(c->messages, m))
        return st ? st : herd_seterr(HERD_E_NOMEM, "out of memory");
    return st;
}

const json_t *herd_conv_messages(const herd_conv *c)
{
    return c->messages;
}

herd_status herd_conv_save(const herd_conv *c, const char *path)
{
    /* Through a temporary file: /save onto the model (or any file being
     * read) is refused, and a failed write leaves the old file as it was. */
    herd_out out;
    herd_status st = herd_out_open(&out, path, c->model->path);
    if (st) return st;
    if (json_dumpf(c->messages, out.fp, JSON_INDENT(2)) != 0 || fputc('\n', out.fp) == EOF) {
        herd_out_abort(&out);
        return herd_seterr(HERD_E_IO, "%s: write failed", path);
    }
    return herd_out_commit(&out);
}

const char *herd_conv_format(const herd_conv *c)
{
    return c->tmpl ? "jinja" : c->format;
}

const char *const *herd_conv_stop_strings(const herd_conv *c)
{
    return (const char *const *)c->stops;
}

void herd_conv_get_stats(const herd_conv *c, herd_conv_stats *out)
{
    *out = c->st;
    out->n_cached = c->n_cache;
}
