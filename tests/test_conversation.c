/*
 * test_conversation.c — herd_conv, the multi-turn chat behind `herd chat`, on
 * the tiny llama (random weights, so the answers are gibberish, but greedy
 * sampling makes them deterministic). The tiny model carries no chat template,
 * so the picker's built-in format (chatml) is used.
 *
 * What is measured:
 *   - the second turn decodes only the tokens after the first turn: the
 *     whole first prompt and the generated answer stay in the KV cache, while
 *     a conversation rebuilt from the same messages decodes everything;
 *   - when the context fills, the oldest turn (never the system prompt) is
 *     dropped, the caller is told, and the system prompt's tokens are reused;
 *     also when the cache fills in the middle of an answer;
 *   - /reset keeps the system prompt and its cached tokens;
 *   - stop strings end an answer and are never streamed; an interrupted
 *     answer is kept as far as it got; the format's stop strings;
 *   - a Jinja template that writes BOS itself gets no second one, and one
 *     that raises leaves the conversation unchanged;
 *   - with a sliding window (evicted cells) the cache is only kept whole.
 */
#include "helpers.h"
#include "chat/chat.h"

#include <stdlib.h>
#include <string.h>

static herd_model *model;

typedef struct record {
    char text[8192];
    size_t n;
    int drops, dropped, pieces, stop_after;
} record;

static void rec_text(void *user, const char *text, size_t len)
{
    record *r = user;
    if (r->n + len < sizeof r->text) memcpy(r->text + r->n, text, len), r->n += len;
    r->text[r->n] = 0;
    r->pieces++;
}

static void rec_drop(void *user, int n)
{
    record *r = user;
    r->drops++;
    r->dropped += n;
}

static bool rec_poll(void *user)
{
    record *r = user;
    return r->stop_after && r->pieces >= r->stop_after;
}

static herd_conv_io io_of(record *r)
{
    memset(r, 0, sizeof *r);
    herd_conv_io io = {.text = rec_text, .dropped = rec_drop, .interrupted = rec_poll, .user = r};
    return io;
}

static herd_ctx *new_ctx(int n_ctx)
{
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = n_ctx;
    herd_ctx *ctx = NULL;
    CHECK(herd_ctx_new(model, &cp, &ctx) == HERD_OK);
    return ctx;
}

static herd_conv *new_conv(herd_ctx *ctx, const char *system, int n_predict)
{
    herd_conv_params p = herd_conv_default_params();
    p.system = system;
    p.n_predict = n_predict;
    p.sampling.temp = 0;
    herd_conv *c = NULL;
    CHECKF(herd_conv_new(model, ctx, &p, &c) == HERD_OK, "%s", herd_errmsg());
    return c;
}

static const char *content(const herd_conv *c, size_t i)
{
    return json_string_value(json_object_get(json_array_get(herd_conv_messages(c), i), "content"));
}

static const char *role(const herd_conv *c, size_t i)
{
    return json_string_value(json_object_get(json_array_get(herd_conv_messages(c), i), "role"));
}

/* Turn 2 costs only its new tokens; a rebuilt conversation pays for all. */
static void test_cache_reuse(void)
{
    herd_ctx *ctx = new_ctx(256);
    herd_conv *c = new_conv(ctx, NULL, 12);
    CHECK(!strcmp(herd_conv_format(c), "chatml"));
    record r;
    herd_conv_io io = io_of(&r);
    herd_conv_stop why;
    herd_conv_stats s1, s2;
    CHECK(herd_conv_reply(c, "hello", &io, &why) == HERD_OK);
    herd_conv_get_stats(c, &s1);
    CHECK(why == HERD_CONV_LIMIT && s1.n_generated == 12);
    CHECK(s1.n_reused == 0 && s1.n_decoded == s1.n_prompt);
    CHECK(s1.n_cached == s1.n_prompt + s1.n_generated);
    CHECK(!strcmp(r.text, content(c, 1))); /* what was streamed is what was kept */

    long total = s1.n_decoded_total;
    CHECK(herd_conv_reply(c, "how are you", &io, &why) == HERD_OK);
    herd_conv_get_stats(c, &s2);
    CHECKF(s2.n_reused == s1.n_cached, "reused %d of %d", s2.n_reused, s1.n_cached);
    CHECKF(s2.n_decoded == s2.n_prompt - s1.n_cached, "decoded %d, prompt %d, cached %d",
           s2.n_decoded, s2.n_prompt, s1.n_cached);
    CHECK(s2.n_decoded > 0 && s2.n_decoded < 60);
    CHECK(s2.n_decoded_total - total == s2.n_decoded + s2.n_generated);
    printf("turn 1: %d prompt tokens decoded; turn 2: %d of %d\n", s1.n_decoded, s2.n_decoded,
           s2.n_prompt);

    /* The same conversation rebuilt from its messages decodes all of it. */
    herd_ctx *ctx2 = new_ctx(256);
    herd_conv *d = new_conv(ctx2, NULL, 12);
    CHECK(herd_conv_add(d, "user", "hello") == HERD_OK);
    CHECK(herd_conv_add(d, "assistant", content(c, 1)) == HERD_OK);
    herd_conv_stats s3;
    CHECK(herd_conv_reply(d, "how are you", &io, &why) == HERD_OK);
    herd_conv_get_stats(d, &s3);
    CHECK(s3.n_reused == 0 && s3.n_decoded == s3.n_prompt && s3.n_prompt > s2.n_decoded + 12);
    herd_conv_free(d);
    herd_ctx_free(ctx2);
    herd_conv_free(c);
    herd_ctx_free(ctx);
}

/* A small context: each turn needs about 45 tokens and an answer's room. */
static void test_overflow(void)
{
    herd_ctx *ctx = new_ctx(128);
    herd_conv *c = new_conv(ctx, "You are terse.", 16);
    record r;
    herd_conv_io io = io_of(&r);
    herd_conv_stats s;
    const char *msgs[] = {"hi", "how are you", "third one", "fourth message"};
    int first_drop = -1;
    for (int i = 0; i < 4; i++) {
        CHECK(herd_conv_reply(c, msgs[i], &io, NULL) == HERD_OK);
        herd_conv_get_stats(c, &s);
        if (s.n_dropped && first_drop < 0) {
            first_drop = i;
            CHECK(r.drops == 1 && r.dropped == 2 && s.n_dropped == 2);
            /* the system prompt's tokens were kept, the rest decoded again */
            CHECK(s.n_reused > 5 && s.n_reused < s.n_prompt - 20);
            CHECK(s.n_decoded == s.n_prompt - s.n_reused);
        }
        CHECK(s.n_cached <= 128);
    }
    CHECKF(first_drop == 2, "first drop at turn %d", first_drop);
    /* system, then the last two turns */
    CHECK(json_array_size(herd_conv_messages(c)) == 5);
    CHECK(!strcmp(role(c, 0), "system") && !strcmp(content(c, 0), "You are terse."));
    CHECK(!strcmp(content(c, 1), "third one") && !strcmp(content(c, 3), "fourth message"));
    herd_conv_free(c);
    herd_ctx_free(ctx);
}

/* The cache fills during an answer: old turns go, the answer goes on. */
static void test_overflow_mid_answer(void)
{
    herd_ctx *ctx = new_ctx(128);
    herd_conv *c = new_conv(ctx, "Be brief.", 0);
    CHECK(herd_conv_add(c, "user", "one") == HERD_OK);
    CHECK(herd_conv_add(c, "assistant", "uno") == HERD_OK);
    CHECK(herd_conv_add(c, "user", "two") == HERD_OK);
    CHECK(herd_conv_add(c, "assistant", "dos") == HERD_OK);
    record r;
    herd_conv_io io = io_of(&r);
    herd_conv_stop why;
    herd_conv_stats s;
    CHECK(herd_conv_reply(c, "three", &io, &why) == HERD_OK);
    herd_conv_get_stats(c, &s);
    CHECKF(why == HERD_CONV_CONTEXT, "why %d", why);
    CHECK(r.drops >= 1 && r.dropped == 4 && s.n_dropped == 4);
    CHECK(s.n_generated > 128 - 80); /* it went on after the drop */
    CHECK(json_array_size(herd_conv_messages(c)) == 3);
    CHECK(!strcmp(content(c, 1), "three") && !strcmp(content(c, 2), r.text));
    herd_conv_free(c);
    herd_ctx_free(ctx);
}

static void test_reset(void)
{
    herd_ctx *ctx = new_ctx(256);
    herd_conv *c = new_conv(ctx, "You are terse.", 8);
    record r;
    herd_conv_io io = io_of(&r);
    herd_conv_stats s1, s2;
    CHECK(herd_conv_reply(c, "hi", &io, NULL) == HERD_OK);
    herd_conv_get_stats(c, &s1);
    CHECK(herd_conv_reply(c, "more", &io, NULL) == HERD_OK);
    herd_conv_reset(c);
    CHECK(json_array_size(herd_conv_messages(c)) == 1 && !strcmp(role(c, 0), "system"));
    CHECK(herd_conv_reply(c, "hi", &io, NULL) == HERD_OK);
    herd_conv_get_stats(c, &s2);
    /* same prompt as turn 1: everything up to the new answer is in the cache */
    CHECK(s2.n_prompt == s1.n_prompt);
    CHECK(s2.n_reused == s2.n_prompt - 1 && s2.n_decoded == 1);
    CHECK(json_array_size(herd_conv_messages(c)) == 3);
    /* a new system prompt: only "<s><|im_start|>system\n" still matches */
    CHECK(herd_conv_set_system(c, "Talk like a pirate.") == HERD_OK);
    CHECK(herd_conv_reply(c, "ahoy", &io, NULL) == HERD_OK);
    herd_conv_get_stats(c, &s2);
    CHECK(s2.n_reused > 0 && s2.n_reused < 14 && s2.n_decoded == s2.n_prompt - s2.n_reused);
    CHECK(!strcmp(content(c, 0), "Talk like a pirate."));
    herd_conv_free(c);
    herd_ctx_free(ctx);
}

/* Stop strings end an answer and never show; an interruption keeps what was
 * generated. The reference answer comes from the same greedy run. */
static void test_stops(void)
{
    herd_ctx *ctx = new_ctx(256);
    herd_conv *c = new_conv(ctx, NULL, 24);
    record r;
    herd_conv_io io = io_of(&r);
    CHECK(herd_conv_reply(c, "hello", &io, NULL) == HERD_OK);
    char full[8192];
    snprintf(full, sizeof full, "%s", r.text);
    CHECK(strlen(full) > 30);
    const char *const *st = herd_conv_stop_strings(c);
    bool im_end = false;
    for (; *st; st++) im_end |= !strcmp(*st, "<|im_end|>");
    CHECK(im_end);
    herd_conv_free(c);

    /* a stop string taken from the middle of the reference answer */
    char stop[8];
    memcpy(stop, full + 20, 6);
    stop[6] = 0;
    const char *stops[] = {stop, NULL};
    herd_conv_params p = herd_conv_default_params();
    p.n_predict = 24;
    p.sampling.temp = 0;
    p.stop = stops;
    CHECK(herd_conv_new(model, ctx, &p, &c) == HERD_OK);
    herd_conv_stop why;
    io = io_of(&r);
    CHECK(herd_conv_reply(c, "hello", &io, &why) == HERD_OK);
    size_t at = (size_t)(strstr(full, stop) - full);
    CHECKF(why == HERD_CONV_STOP_STRING && strlen(r.text) == at && !strncmp(r.text, full, at),
           "why %d, got [%s]", why, r.text);
    CHECK(!strcmp(content(c, 1), r.text));

    /* interrupted after three pieces */
    herd_conv_reset(c);
    io = io_of(&r);
    r.stop_after = 3;
    CHECK(herd_conv_reply(c, "hello", &io, &why) == HERD_OK);
    CHECK(why == HERD_CONV_INTERRUPTED && r.pieces == 3 && !strncmp(r.text, full, r.n));
    CHECK(!strcmp(content(c, 1), r.text));
    herd_conv_free(c);

    /* other formats' end-of-turn markers */
    static const char *const want[][2] = {
        {"falcon", "\nUser:"},          {"phi-2", "\nInstruct:"},
        {"vicuna", "\nUSER:"},          {"llama2", "</s>"},
        {"zephyr", "<|user|>"},         {"llama3", "<|eot_id|>"},
        {"stablelm-alpha", "<|USER|>"}, {"gemma", "<end_of_turn>"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        p = herd_conv_default_params();
        p.chat_template = want[i][0];
        CHECK(herd_conv_new(model, ctx, &p, &c) == HERD_OK);
        bool found = false;
        for (st = herd_conv_stop_strings(c); *st; st++) found |= !strcmp(*st, want[i][1]);
        CHECKF(found && !strcmp(herd_conv_format(c), want[i][0]), "%s", want[i][0]);
        herd_conv_free(c);
    }
    p.chat_template = "no-such-format";
    CHECK(herd_conv_new(model, ctx, &p, &c) == HERD_E_INVALID && !c);
    herd_ctx_free(ctx);
}

/* A message too long for the context is refused and leaves no trace. */
static void test_too_long(void)
{
    herd_ctx *ctx = new_ctx(64);
    herd_conv *c = new_conv(ctx, NULL, 8);
    char big[2048];
    for (size_t i = 0; i + 1 < sizeof big; i++) big[i] = "ab "[i % 3];
    big[sizeof big - 1] = 0;
    record r;
    herd_conv_io io = io_of(&r);
    CHECK(herd_conv_reply(c, big, &io, NULL) == HERD_E_FULL);
    CHECK(json_array_size(herd_conv_messages(c)) == 0);
    CHECK(herd_conv_reply(c, "hi", &io, NULL) == HERD_OK);
    CHECK(json_array_size(herd_conv_messages(c)) == 2);
    herd_conv_free(c);
    herd_ctx_free(ctx);
}

static int count_tokens(const char *text, bool add_bos)
{
    int n = 0;
    herd_tokenize(model, text, strlen(text), add_bos, true, NULL, 0, &n);
    return n;
}

/* A Jinja template from a file: Llama 2's writes bos_token itself, so the
 * tokenizer must not add a second BOS. A template that raises refuses the
 * message and leaves the conversation as it was. */
static void test_templates(void)
{
    char path[512];
    if (!test_shared("chat/templates/llama-2-chat.jinja", path, sizeof path)) return;
    herd_ctx *ctx = new_ctx(256);
    herd_conv_params p = herd_conv_default_params();
    p.chat_template = path;
    p.system = "Be brief.";
    p.n_predict = 6;
    p.sampling.temp = 0;
    herd_conv *c = NULL;
    CHECK(herd_conv_new(model, ctx, &p, &c) == HERD_OK);
    if (!c) return;
    CHECK(!strcmp(herd_conv_format(c), "jinja"));
    int found = 0;
    for (const char *const *st = herd_conv_stop_strings(c); *st; st++)
        found += !strcmp(*st, "</s>") + !strcmp(*st, "[INST]");
    CHECK(found == 2);
    record r;
    herd_conv_io io = io_of(&r);
    herd_conv_stats s1, s2;
    CHECK(herd_conv_reply(c, "hi", &io, NULL) == HERD_OK);
    herd_conv_get_stats(c, &s1);
    const char *want = "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nhi [/INST]";
    CHECKF(s1.n_prompt == count_tokens(want, false) && s1.n_prompt + 1 == count_tokens(want, true),
           "prompt %d tokens", s1.n_prompt);
    CHECK(herd_conv_reply(c, "more", &io, NULL) == HERD_OK);
    herd_conv_get_stats(c, &s2);
    CHECK(s2.n_reused >= s1.n_prompt && s2.n_decoded == s2.n_prompt - s2.n_reused);
    herd_conv_free(c);

    p = herd_conv_default_params();
    p.template_src = "{{ raise_exception('no, thanks') }}";
    CHECK(herd_conv_new(model, ctx, &p, &c) == HERD_OK);
    if (c) {
        CHECK(!*herd_conv_stop_strings(c));
        CHECK(herd_conv_reply(c, "hi", &io, NULL) == HERD_E_INVALID);
        CHECK(!strcmp(herd_errmsg(), "no, thanks"));
        CHECK(json_array_size(herd_conv_messages(c)) == 0);
        herd_conv_free(c);
    }
    herd_ctx_free(ctx);
}

/* A sliding window evicts old cells: the cache can only be kept whole. */
static void test_sliding_window(void)
{
    char path[512];
    if (!test_shared("models/tiny/llama-swa-f32.gguf", path, sizeof path)) return;
    herd_model *saved = model;
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = 2;
    CHECK(herd_model_load(path, &mp, &model) == HERD_OK);
    for (int swa = 0; swa <= 8 && model; swa += 8) {
        herd_ctx_params cp = herd_ctx_default_params();
        cp.n_ctx = 256;
        cp.swa = swa; /* 0: off; 8: the file's window */
        herd_ctx *ctx = NULL;
        CHECK(herd_ctx_new(model, &cp, &ctx) == HERD_OK);
        herd_conv *c = new_conv(ctx, NULL, 6);
        record r;
        herd_conv_io io = io_of(&r);
        herd_conv_stats s1, s2;
        CHECK(herd_conv_reply(c, "hi", &io, NULL) == HERD_OK);
        herd_conv_get_stats(c, &s1);
        herd_conv_reset(c); /* the same prompt again: reuse all but its last token */
        CHECK(herd_conv_reply(c, "hi", &io, NULL) == HERD_OK);
        herd_conv_get_stats(c, &s2);
        CHECKF(s2.n_reused == (swa ? 0 : s1.n_prompt - 1), "swa %d: reused %d", swa, s2.n_reused);
        herd_conv_free(c);
        herd_ctx_free(ctx);
    }
    herd_model_free(model);
    model = saved;
}

int main(void)
{
    char path[512];
    if (!test_shared("models/tiny/llama-f32.gguf", path, sizeof path)) return test_report();
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = 2;
    if (herd_model_load(path, &mp, &model)) {
        fprintf(stderr, "load: %s\n", herd_errmsg());
        return 1;
    }
    test_cache_reuse();
    test_overflow();
    test_overflow_mid_answer();
    test_reset();
    test_stops();
    test_too_long();
    test_templates();
    test_sliding_window();
    herd_model_free(model);
    return test_report();
}
