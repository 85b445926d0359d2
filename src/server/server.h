/*
 * server.h — `herd serve`: an OpenAI-compatible HTTP server with continuous
 * batching.
 *
 * The story of a request:
 *
 *   http.c       libmicrohttpd accepts the connection (one thread per
 *                connection), checks the route, the method, the API key and
 *                the body size (413 past the limit), answers CORS preflights,
 *                and hands the body to the route's handler (routes.c).
 *   api.c        turns the JSON body into a request struct, checking every
 *                known field's type and range (a 400 with an OpenAI-style
 *                error otherwise; unknown fields are ignored, as OpenAI's own
 *                server does); reply.c builds the response JSON.
 *   routes.c     has prompt.c tokenize the prompt (chat messages rendered
 *                with the model's chat template first) and refuse prompts
 *                that do not fit a slot's context, submits one job per prompt
 *                to the scheduler and waits for it — or, for `stream: true`,
 *                returns a response whose reader callback (stream.c) pulls
 *                tokens as they come and writes them as Server-Sent Events.
 *   scheduler.c  one thread owns the herd_ctx. It has N slots, each its own
 *                sequence id (n_seq_max = N) and its own sampler. Every step is
 *                one herd_decode batch holding one token of every generating
 *                slot plus chunks of the prompts being read; queued jobs take
 *                free slots between steps (continuous batching). A job placed
 *                on a slot keeps the cached cells of the longest common prefix
 *                (prefix reuse) and recomputes only the rest. Past N running
 *                and queue_max waiting jobs, a submit is refused (503).
 *                token.c samples a slot's next token and turns pieces into
 *                text (stop strings, UTF-8); job.c is how the HTTP threads
 *                wait for a job and read its output.
 *   metrics.c    counters and gauges, printed as Prometheus text.
 *   server.c     start and stop, in that order and its reverse.
 *
 * Waiting threads never block blindly: while a handler or a stream reader
 * waits for tokens it wakes every few tens of milliseconds to peek at its
 * socket, and a client that went away cancels its job, which frees the slot
 * at the next step.
 *
 * Shutdown (herd_server_stop): new connections are refused, every job still
 * queued or running ends with an error, libmicrohttpd's threads are joined,
 * then the scheduler's; everything is freed.
 */
#ifndef HERD_SERVER_H
#define HERD_SERVER_H

#include "util/util.h"

typedef struct herd_server herd_server;

/* A line of the server's log (no newline). The library never prints. */
typedef void (*herd_server_log_fn)(void *ud, const char *line);

typedef struct herd_server_params {
    herd_model *model;         /* loaded by the caller; must outlive the server */
    const char *model_id;      /* what /v1/models and responses call it */
    const char *host;          /* numeric IPv4/IPv6 address; NULL = 127.0.0.1 */
    int port;                  /* 0 = any free port (herd_server_port tells) */
    int n_parallel;            /* slots: sequences decoded together (>= 1) */
    int n_ctx;                 /* KV cells of all slots; each gets n_ctx / n_parallel.
                                  0 = the model's training context, at most 4096 */
    int n_batch;               /* most tokens per decode step; 0 = 512 */
    int queue_max;             /* jobs waiting for a slot before 503; < 0 = 64 */
    size_t body_max;           /* request body limit in bytes (413 past it); 0 = 8 MiB */
    const char *api_key;       /* NULL or "": no authentication */
    const char *cors_origin;   /* NULL: no CORS headers at all */
    int timeout_s;             /* idle connection timeout; 0 = 600 */
    const char *chat_template; /* a built-in format name or Jinja source; NULL = the model's */
    herd_server_log_fn log;    /* NULL: silent */
    void *log_ud;
    bool log_requests; /* a line per request, not only start and errors */
} herd_server_params;

herd_server_params herd_server_default_params(void);

/* Start listening and scheduling; on success the server runs in threads of
 * its own until herd_server_stop. */
herd_status herd_server_start(const herd_server_params *params, herd_server **out);
/* The port the server listens on (useful with port 0). */
int herd_server_port(const herd_server *s);
/* Stop, join every thread and free everything (NULL is fine). */
void herd_server_stop(herd_server *s);

/* A snapshot of the scheduler and counters (for /metrics and tests). */
typedef struct herd_server_stats {
    int n_slots, slots_busy, queue_depth;
    int n_ctx_slot; /* context of one slot */
    uint64_t requests, requests_failed;
    uint64_t jobs_done, jobs_cancelled;
    uint64_t prompt_tokens; /* prompt tokens actually computed */
    uint64_t cached_tokens; /* prompt tokens reused from a slot's cache */
    uint64_t generated_tokens;
    uint64_t decode_steps;
    double decode_seconds; /* time spent in herd_decode */
} herd_server_stats;

void herd_server_get_stats(herd_server *s, herd_server_stats *out);

/* Tests: hold the scheduler between steps (jobs stay queued) or let it go. */
void herd_server_pause(herd_server *s, bool paused);

#endif
