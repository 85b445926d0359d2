/*
 * server.h — `herd serve`: an OpenAI-compatible HTTP server with continuous
 * batching.
 *
 * The story of a request:
 *
 *   http.c       libmicrohttpd accepts the connection (a few threads poll
 *                every connection with poll(); an idle socket holds no
 *                thread), checks the route, the method, the API key and
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
 *                free slots between steps (continuous batching). A job goes to
 *                the slot holding its prefix (its conversation's last turn),
 *                else to the least recently used one, keeps the cached cells
 *                of the common prefix (prefix reuse) and recomputes the rest. Past N running
 *                and queue_max waiting jobs, a submit is refused (503).
 *                token.c samples a slot's next token and turns pieces into
 *                text (stop strings, UTF-8); job.c is how the HTTP threads
 *                wait for a job and read its output.
 *   metrics.c    counters and gauges, printed as Prometheus text.
 *   server.c     start and stop, in that order and its reverse.
 *
 *   watch.c      one thread that watches what the polling threads must not
 *                wait for: a request waiting for its jobs suspends its
 *                connection and is parked; the watcher resumes it when the
 *                jobs have news, cancels the jobs of a client that went away
 *                (which frees the slot at the next step), and cuts
 *                connections that take too long to send a request.
 *
 * No polling thread ever blocks on a generation, so /health is answered
 * while every slot is busy and a thousand idle sockets are open.
 *
 * Shutdown (herd_server_stop): new connections are refused, every job still
 * queued or running ends with an error, parked connections are resumed to
 * say so, libmicrohttpd's threads are joined, then the watcher's and the
 * scheduler's; everything is freed. herd_server_drain before it lets the
 * running requests finish first, for a time, and cuts them at its end.
 */
#ifndef HERD_SERVER_H
#define HERD_SERVER_H

#include "util/util.h"

typedef struct herd_server herd_server;

/* A line of the server's log (no newline). The library never prints. */
typedef void (*herd_server_log_fn)(void *ud, const char *line);

typedef struct herd_server_params {
    herd_model *model; /* loaded by the caller; must outlive the server. NULL:
                          the server loads model_path itself after it starts
                          listening (/health says 503 until it is ready) */
    const char *model_path;
    herd_model_params model_params;
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
    int timeout_s;             /* a connection silent this long is closed; 0 = 600 */
    int request_timeout_s;     /* a connection must deliver a whole request (headers and
                                  body) this long after it opens or its last answer ends;
                                  0 = 10. Never applies while a request is answered. */
    int max_conns;             /* connections open at once; 0 = 4096 (capped by the fd limit) */
    int conns_per_ip;          /* connections from one address; 0 = 64, < 0 = no limit */
    int http_threads;          /* threads polling the connections; 0 = 4 */
    const char *chat_template; /* a built-in format name or Jinja source; NULL = the model's */
    herd_server_log_fn log;    /* NULL: silent */
    void *log_ud;
    bool log_requests; /* a line per request, not only start and errors */
} herd_server_params;

herd_server_params herd_server_default_params(void);

/* Start listening and scheduling; on success the server runs in threads of
 * its own until herd_server_stop. */
herd_status herd_server_start(const herd_server_params *params, herd_server **out);
/* Wait until the model is loaded and the server ready: the load's status
 * (the server keeps answering 503 after a failed load; stop it). */
herd_status herd_server_wait_ready(herd_server *s);
/* Without waiting: has loading ended (true), and how (*status)? */
bool herd_server_load_done(herd_server *s, herd_status *status);
/* Graceful drain: stop accepting connections (a new one is refused, not
 * queued), answer 503 to new requests on open ones, let the running ones
 * finish for at most timeout_s seconds, then cut those still running (a
 * stream ends with an error event, a waiting request gets a 503). Returns
 * 0 when every request finished in time, else how many were cut (>= 1).
 * herd_server_stop comes after and only joins and frees. */
int herd_server_drain(herd_server *s, double timeout_s);
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
    uint64_t prefix_hits;  /* jobs that took at least half their prompt from a cache */
    int conns_open;        /* HTTP connections open */
    int requests_active;   /* requests not yet answered in full */
    uint64_t conns_cut;    /* connections cut for sending their request too slowly */
    bool ready;            /* loaded and not draining */
} herd_server_stats;

void herd_server_get_stats(herd_server *s, herd_server_stats *out);

/* Tests: hold the scheduler between steps (jobs stay queued) or let it go. */
void herd_server_pause(herd_server *s, bool paused);

#endif
