/*
 * test_sample.c — the sampler chain: greedy, penalties, top-k/top-p/min-p,
 * seeding, and argument checking.
 *
 * The statistical checks draw many times with a fixed seed, so they are
 * deterministic; the bounds are loose enough to hold for any decent RNG.
 */
#include "helpers.h"
#include "sample/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static herd_sampler *make(herd_sampler_params p, int n_vocab)
{
    herd_sampler *s = NULL;
    herd_status st = herd_sampler_new(&p, n_vocab, &s);
    CHECKF(st == HERD_OK, "herd_sampler_new: %s", herd_errmsg());
    return s;
}

static herd_sampler_params plain(float temp, uint64_t seed)
{
    herd_sampler_params p = herd_sampler_default_params();
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = seed;
    return p;
}

static void test_greedy(void)
{
    float l[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f, -INFINITY};
    herd_sampler *s = make(plain(0.0f, 1), 6);
    CHECK(herd_sampler_sample(s, l) == 1); /* first of the tied maxima */
    l[4] = 3.0f;
    CHECK(herd_sampler_sample(s, l) == 4);
    herd_sampler_free(s);

    /* Negative temperature is greedy too; NaN logits never win. */
    float m[3] = {NAN, -5.0f, -6.0f};
    s = make(plain(-1.0f, 1), 3);
    CHECK(herd_sampler_sample(s, m) == 1);
    herd_sampler_free(s);
}

static void test_top_k1_is_greedy(void)
{
    enum { N = 1000 };
    float *l = malloc(N * sizeof *l);
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        l[i] = (float)((x >> 40) % 1000) / 100.0f;
    }
    herd_sampler *g = make(plain(0.0f, 1), N);
    herd_sampler_params p = plain(1.5f, 7);
    p.top_k = 1;
    herd_sampler *k = make(p, N);
    int32_t want = herd_sampler_sample(g, l);
    for (int i = 0; i < 50; i++) CHECK(herd_sampler_sample(k, l) == want);
    herd_sampler_free(g);
    herd_sampler_free(k);
    free(l);
}

static void draw_seq(uint64_t seed, const float *l, int n, int32_t *out, int count)
{
    herd_sampler *s = make(plain(1.0f, seed), n);
    for (int i = 0; i < count; i++) out[i] = herd_sampler_sample(s, l);
    herd_sampler_free(s);
}

static void test_seeds(void)
{
    enum { N = 50, COUNT = 64 };
    float l[N];
    for (int i = 0; i < N; i++) l[i] = 0.0f; /* uniform: every draw matters */
    int32_t a[COUNT], b[COUNT], c[COUNT];
    draw_seq(42, l, N, a, COUNT);
    draw_seq(42, l, N, b, COUNT);
    draw_seq(43, l, N, c, COUNT);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);

    /* reset restarts the stream of a fixed seed. */
    herd_sampler *s = make(plain(1.0f, 42), N);
    for (int i = 0; i < 10; i++) herd_sampler_sample(s, l);
    herd_sampler_reset(s);
    for (int i = 0; i < COUNT; i++) b[i] = herd_sampler_sample(s, l);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(herd_sampler_seed(s) == 42);
    herd_sampler_free(s);

    /* The random default seeds differently each time (very likely). */
    draw_seq(HERD_SEED_RANDOM, l, N, b, COUNT);
    draw_seq(HERD_SEED_RANDOM, l, N, c, COUNT);
    CHECK(memcmp(b, c, sizeof b) != 0);
}

static void test_penalty(void)
{
    float l[4] = {1.0f, 3.0f, 2.8f, -1.0f};
    herd_sampler_params p = plain(0.0f, 1);
    p.repeat_penalty = 1.2f; /* 3.0 / 1.2 = 2.5 < 2.8 */
    p.repeat_last_n = 2;
    herd_sampler *s = make(p, 4);
    CHECK(herd_sampler_sample(s, l) == 1);
    herd_sampler_accept(s, 1);
    CHECK(herd_sampler_sample(s, l) == 2);
    /* A token seen twice is penalised once, as llama.cpp does. */
    herd_sampler_accept(s, 1);
    CHECK(herd_sampler_sample(s, l) == 2);
    /* The window holds 2 tokens: after two others, 1 is forgiven. */
    herd_sampler_accept(s, 0);
    herd_sampler_accept(s, 3);
    CHECK(herd_sampler_sample(s, l) == 1);
    /* Negative logits are multiplied: -1 * 1.2 is further below. */
    float m[4] = {-1.0f, -1.1f, -3.0f, -4.0f};
    herd_sampler_reset(s);
    herd_sampler_accept(s, 0);
    CHECK(herd_sampler_sample(s, m) == 1);
    /* Out-of-range accepted ids are ignored, not a crash. */
    herd_sampler_accept(s, 99);
    herd_sampler_accept(s, -5);
    CHECK(herd_sampler_sample(s, l) == 1);
    herd_sampler_free(s);

    /* The caller's logits are not modified. */
    CHECK(l[1] == 3.0f && m[0] == -1.0f);
}

/* Count how often each token is drawn. */
static void histogram(herd_sampler *s, const float *l, int n, int draws, int *count)
{
    memset(count, 0, (size_t)n * sizeof *count);
    for (int i = 0; i < draws; i++) {
        int32_t t = herd_sampler_sample(s, l);
        CHECK(t >= 0 && t < n);
        if (t >= 0 && t < n) count[t]++;
    }
}

static void test_filters(void)
{
    enum { N = 5, DRAWS = 20000 };
    /* probabilities 0.5, 0.25, 0.15, 0.07, 0.03 */
    float l[N] = {logf(0.5f), logf(0.25f), logf(0.15f), logf(0.07f), logf(0.03f)};
    int count[N];

    herd_sampler *s = make(plain(1.0f, 3), N);
    histogram(s, l, N, DRAWS, count);
    CHECK(abs(count[0] - DRAWS / 2) < DRAWS / 50); /* no filter: the plain distribution */
    CHECK(count[4] > DRAWS * 0.02 && count[4] < DRAWS * 0.04);
    herd_sampler_free(s);

    herd_sampler_params p = plain(1.0f, 3);
    p.top_p = 0.8f; /* 0.5 + 0.25 + 0.15 >= 0.8: the last two go */
    s = make(p, N);
    histogram(s, l, N, DRAWS, count);
    CHECK(count[3] == 0 && count[4] == 0);
    CHECK(count[2] > DRAWS * 0.13 && count[2] < DRAWS * 0.20); /* 0.15 / 0.9 renormalised */
    herd_sampler_free(s);

    p = plain(1.0f, 3);
    p.min_p = 0.2f; /* keep p >= 0.1: the first three */
    s = make(p, N);
    histogram(s, l, N, DRAWS, count);
    CHECK(count[3] == 0 && count[4] == 0 && count[2] > 0);
    herd_sampler_free(s);

    p = plain(1.0f, 3);
    p.top_k = 2;
    s = make(p, N);
    histogram(s, l, N, DRAWS, count);
    CHECK(count[2] == 0 && count[3] == 0 && count[4] == 0);
    CHECK(count[0] > DRAWS * 0.6 && count[0] < DRAWS * 0.73); /* 2/3 */
    herd_sampler_free(s);

    /* A low temperature sharpens: token 0 dominates (a denormal one too). */
    p = plain(0.1f, 3);
    s = make(p, N);
    histogram(s, l, N, 2000, count);
    CHECK(count[0] > 1990);
    herd_sampler_free(s);
    s = make(plain(1e-45f, 3), N);
    histogram(s, l, N, 100, count);
    CHECK(count[0] == 100);
    herd_sampler_free(s);

    /* top_p = 0 still keeps the best token. */
    p = plain(1.0f, 3);
    p.top_p = 0.0f;
    s = make(p, N);
    histogram(s, l, N, 100, count);
    CHECK(count[0] == 100);
    herd_sampler_free(s);
}

/* A big vocabulary through the partial-selection paths, with the defaults. */
static void test_large_vocab(void)
{
    enum { N = 256000 };
    float *l = malloc(N * sizeof *l);
    uint64_t x = 99;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        l[i] = (float)((x >> 33) % 100000) / 10000.0f; /* 0 .. 10 */
    }
    herd_sampler_params p = herd_sampler_default_params();
    p.seed = 5;
    herd_sampler *s = make(p, N);
    for (int i = 0; i < 20; i++) {
        int32_t t = herd_sampler_sample(s, l);
        CHECK(t >= 0 && t < N && l[t] > 9.0f);
    }
    herd_sampler_free(s);
    /* top-p alone over a flat distribution grows its prefix to many tokens. */
    p = plain(1.0f, 5);
    p.top_p = 0.9f;
    s = make(p, N);
    for (int i = 0; i < 5; i++) {
        int32_t t = herd_sampler_sample(s, l);
        CHECK(t >= 0 && t < N);
    }
    herd_sampler_free(s);
    free(l);
}

static void test_invalid(void)
{
    herd_sampler *s = (herd_sampler *)1;
    herd_sampler_params p = herd_sampler_default_params();
    CHECK(herd_sampler_new(NULL, 10, &s) == HERD_E_INVALID && s == NULL);
    CHECK(herd_sampler_new(&p, 0, &s) == HERD_E_INVALID);
    CHECK(strstr(herd_errmsg(), "n_vocab") != NULL);
    CHECK(herd_sampler_new(&p, -3, &s) == HERD_E_INVALID);
    CHECK(herd_sampler_new(&p, 10, NULL) == HERD_E_INVALID);
    herd_sampler_params q = p;
    q.temp = NAN;
    CHECK(herd_sampler_new(&q, 10, &s) == HERD_E_INVALID);
    q = p;
    q.top_p = -0.5f;
    CHECK(herd_sampler_new(&q, 10, &s) == HERD_E_INVALID);
    q = p;
    q.min_p = 1.5f;
    CHECK(herd_sampler_new(&q, 10, &s) == HERD_E_INVALID);
    q = p;
    q.repeat_penalty = 0.0f;
    CHECK(herd_sampler_new(&q, 10, &s) == HERD_E_INVALID);
    q = p;
    q.repeat_last_n = -1;
    CHECK(herd_sampler_new(&q, 10, &s) == HERD_E_INVALID);

    CHECK(herd_sampler_sample(NULL, NULL) == -1);
    s = make(p, 10);
    CHECK(herd_sampler_sample(s, NULL) == -1);
    herd_sampler_accept(NULL, 1); /* no-ops, not crashes */
    herd_sampler_reset(NULL);
    herd_sampler_free(NULL);
    herd_sampler_free(s);

    /* All logits -inf: some valid id, not a crash. */
    float l[3] = {-INFINITY, -INFINITY, -INFINITY};
    s = make(plain(1.0f, 1), 3);
    int32_t t = herd_sampler_sample(s, l);
    CHECK(t >= 0 && t < 3);
    herd_sampler_free(s);
}

int main(void)
{
    test_greedy();
    test_top_k1_is_greedy();
    test_seeds();
    test_penalty();
    test_filters();
    test_large_vocab();
    test_invalid();
    return test_report();
}
