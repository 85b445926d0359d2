/*
 * test_server_slots.c — which slot a prompt goes to (src/server/scheduler.c,
 * pick_slot), seen from outside: the prompt tokens each request took from a
 * cache (timings.cache_n) on a server of two slots.
 *
 * Every conversation here opens with the same 41-token system prompt, as a
 * fleet's do. Covered: a newcomer takes the slot never used rather than
 * evicting a conversation that shares only the system prompt with it; each
 * conversation's next turn finds its whole history cached; with both slots
 * holding conversations, a newcomer evicts the least recently used one
 * (keeping the system prompt) and the other conversation stays whole; the
 * same prompt again reuses all but its last token; of two slots that both
 * hold a prompt's prefix, the one holding the longer wins. Under the policy
 * this replaced (the longest common prefix among free slots, whatever it
 * evicts) four checks fail: B took A's slot for the system prompt, and the
 * next turns of A and B found only that.
 */
#include "helpers.h"
#include "http_client.h"
#include "server/server_impl.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL  "models/tiny/llama-f32.gguf"
#define SYS    41 /* BOS and the common system prompt */
#define MAXTOK 256

static herd_model *model;

/* A prompt as token ids: the system prompt, then each (first, n) run of
 * consecutive ids (a turn). */
typedef struct {
    int n;
    int id[MAXTOK];
} prompt;

static prompt sys_prompt(void)
{
    prompt p = {.n = 0};
    p.id[p.n++] = 1;
    for (int i = 1; i < SYS; i++) p.id[p.n++] = 300 + 7 * i;
    return p;
}

static prompt turn(prompt p, int first, int n)
{
    for (int i = 0; i < n && p.n < MAXTOK; i++) p.id[p.n++] = first + i;
    return p;
}

/* POST the prompt (one token generated, so that the cache holds exactly the
 * prompt afterwards) and return timings.cache_n, or -1. */
static int cached(int port, const prompt *p)
{
    char body[MAXTOK * 8 + 128];
    int n = snprintf(body, sizeof body, "{\"prompt\": [");
    for (int i = 0; i < p->n; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s%d", i ? ", " : "", p->id[i]);
    snprintf(body + n, sizeof body - (size_t)n, "], \"max_tokens\": 1, \"temperature\": 0}");
    reply r = post(port, "/v1/completions", body);
    json_t *j = body_json(&r);
    json_t *c = json_object_get(json_object_get(j, "timings"), "cache_n");
    CHECKF(r.status == 200 && json_is_integer(c), "%d %s", r.status, r.body);
    int k = json_is_integer(c) ? (int)json_integer_value(c) : -1;
    json_decref(j);
    reply_free(&r);
    return k;
}

static herd_server *start(void)
{
    herd_server_params p = herd_server_default_params();
    p.model = model;
    p.model_id = "tiny";
    p.port = 0;
    p.n_parallel = 2;
    p.n_ctx = 1024;
    p.queue_max = 8;
    p.body_max = 64 * 1024;
    herd_server *s = NULL;
    CHECKF(herd_server_start(&p, &s) == HERD_OK, "server start: %s", herd_errmsg());
    return s;
}

/* Conversations A, B, C on two slots, one request at a time. */
static void test_conversations(void)
{
    herd_server *s = start();
    if (!s) return;
    int port = herd_server_port(s);
    prompt sys = sys_prompt();
    prompt a1 = turn(sys, 500, 20), b1 = turn(sys, 600, 20), c1 = turn(sys, 800, 20);
    CHECK(cached(port, &a1) == 0);
    /* B shares only the system prompt with A's slot: the empty slot is its. */
    int k = cached(port, &b1);
    CHECKF(k == 0, "newcomer B took %d tokens from a cache: it evicted A", k);
    prompt a2 = turn(a1, 700, 10), b2 = turn(b1, 710, 10);
    k = cached(port, &a2);
    CHECKF(k == a1.n, "A's second turn: %d cached, want %d", k, a1.n);
    k = cached(port, &b2);
    CHECKF(k == b1.n, "B's second turn: %d cached, want %d", k, b1.n);
    /* Both slots hold a conversation: C evicts A's (used less recently) and
     * keeps its system prompt; B stays whole. */
    k = cached(port, &c1);
    CHECKF(k == SYS, "newcomer C: %d cached, want the system prompt's %d", k, SYS);
    prompt b3 = turn(b2, 720, 10);
    k = cached(port, &b3);
    CHECKF(k == b2.n, "B's third turn after C came: %d cached, want %d", k, b2.n);
    /* A comes back: no slot holds it; the LRU one (C's) gives the system prompt. */
    prompt a3 = turn(a2, 730, 10);
    k = cached(port, &a3);
    CHECKF(k == SYS, "A after eviction: %d cached, want %d", k, SYS);
    /* The same prompt again: all but the last token (decoded for its logits). */
    k = cached(port, &a3);
    CHECKF(k == a3.n - 1, "the same prompt again: %d cached, want %d", k, a3.n - 1);
    herd_server_stop(s);
}

typedef struct {
    int port;
    prompt p;
} req_arg;

static void *req_worker(void *arg)
{
    req_arg *a = arg;
    cached(a->port, &a->p);
    return NULL;
}

static void wait_queued(herd_server *s, int n)
{
    herd_server_stats st;
    for (int i = 0; i < 500; i++) {
        herd_server_get_stats(s, &st);
        if (st.queue_depth == n) return;
        usleep(10000);
    }
    CHECKF(false, "queued %d, want %d", st.queue_depth, n);
}

/* P and P+Q on the two slots (sent together, so each takes one); then
 * P+Q+R: both slots hold its prefix, the longer one is taken. */
static void test_longest(void)
{
    herd_server *s = start();
    if (!s) return;
    int port = herd_server_port(s);
    prompt p = turn(sys_prompt(), 500, 20), pq = turn(p, 900, 30), pqr = turn(pq, 1000, 5);
    req_arg a[2] = {{port, p}, {port, pq}};
    pthread_t t[2];
    herd_server_pause(s, true);
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, req_worker, &a[i]);
    wait_queued(s, 2);
    herd_server_pause(s, false);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    int k = cached(port, &pqr);
    CHECKF(k == pq.n, "P+Q+R: %d cached, want P+Q's %d", k, pq.n);
    /* P again: the slot holding all of it (now only P's, after P+Q+R took
     * the other) — all but its last token. */
    k = cached(port, &p);
    CHECKF(k == p.n - 1, "P again: %d cached, want %d", k, p.n - 1);
    herd_server_stop(s);
}

int main(void)
{
    char path[256];
    if (!test_shared(MODEL, path, sizeof path)) return test_report();
    signal(SIGPIPE, SIG_IGN);
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = 1;
    if (herd_model_load(path, &mp, &model)) {
        fprintf(stderr, "load: %s\n", herd_errmsg());
        return 1;
    }
    test_conversations();
    test_longest();
    herd_model_free(model);
    return test_report();
}
