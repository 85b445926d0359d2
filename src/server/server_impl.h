/*
 * server_impl.h — internal: what the modules of the server (server.h tells
 * the story) share with each other. One section per module.
 */
#ifndef HERD_SERVER_IMPL_H
#define HERD_SERVER_IMPL_H

#include "server/server.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

struct MHD_Connection;
struct MHD_Response;

/* ------------------------------------------------------------ jobs (scheduler.c)
 *
 * A job is one prompt to continue. Its input is fixed before it is submitted;
 * its output is written by the scheduler thread under the scheduler's mutex
 * and read by the HTTP thread that waits for it. Both hold a reference; the
 * last release frees it, so a client that disconnects and a scheduler that is
 * mid-step never race over the memory. Everything in srv_gen is fixed-size so
 * that a job owns its input outright. */

#define SRV_MAX_STOP   16  /* stop strings per request (OpenAI allows 4; lm-eval sends more) */
#define SRV_STOP_BYTES 128 /* longest stop string, bytes */
#define SRV_MAX_TOP    20  /* alternatives per logprob entry (OpenAI's limit) */
#define SRV_MAX_BIAS   300 /* logit_bias entries (OpenAI's limit) */

typedef struct srv_gen {
    int max_tokens; /* -1: until the slot's context is full */
    herd_sampler_params sp;
    float presence_penalty, frequency_penalty; /* over the generated tokens */
    int n_bias;
    int32_t bias_id[SRV_MAX_BIAS];
    float bias[SRV_MAX_BIAS];
    int n_stop;
    char stop[SRV_MAX_STOP][SRV_STOP_BYTES];
    int logprobs;       /* -1: none; else how many alternatives (0..SRV_MAX_TOP) */
    bool echo_logprobs; /* also the log-probabilities of the prompt tokens */
    /* The one pointer: a grammar constraining the output (response_format,
     * json_schema, grammar, required tool calls), or NULL. The request and
     * each job hold a reference (herd_grammar_retain / herd_grammar_free). */
    struct herd_grammar *grammar;
    int tool_format;    /* TOOLS_*: parse the output into tool calls; 0: do not */
    bool tool_parallel; /* parallel_tool_calls */
} srv_gen;

/* One token's log-probability under the model (raw logits, before any
 * penalty or temperature) and the n_top most likely tokens at that place. */
typedef struct srv_lp {
    int32_t token;
    float logprob;
    int n_top;
    int32_t top_id[SRV_MAX_TOP];
    float top_lp[SRV_MAX_TOP];
} srv_lp;

typedef enum { SRV_FINISH_NONE, SRV_FINISH_STOP, SRV_FINISH_LENGTH, SRV_FINISH_ERROR } srv_finish;

typedef struct srv_job {
    /* input */
    int32_t *prompt;
    int n_prompt;
    srv_gen gen;
    /* output (scheduler mutex) */
    char *text; /* generated text so far, valid UTF-8, stop strings cut */
    size_t text_len, text_cap;
    srv_lp *lp; /* one per generated token when gen.logprobs >= 0 */
    int n_lp, lp_cap;
    srv_lp *prompt_lp; /* [n_prompt] with gen.echo_logprobs ([0] is unused) */
    bool prompt_done, done, cancelled;
    srv_finish finish;
    char error[256];
    int n_cached; /* prompt tokens reused from the slot's cache */
    int n_gen;    /* tokens generated (not counting end-of-generation) */
    double t_submit, t_start, t_prompt, t_end;
    /* bookkeeping (scheduler mutex) */
    int refs;
    struct srv_job *next;
} srv_job;

/* What a waiting thread has not seen yet of a job. */
typedef struct srv_cursor {
    size_t text;
    int lp;
    bool prompt_seen, done_seen;
} srv_cursor;

/* A copy of that news (free with herd_srv_news_free). */
typedef struct srv_news {
    char *text;
    size_t len;
    srv_lp *lp;
    int n_lp;
    bool prompt_done; /* the prompt finished since the last look */
    bool done;        /* the job finished since the last look */
} srv_news;

typedef struct srv_metrics srv_metrics;
typedef struct srv_sched srv_sched;

typedef struct srv_sched_params {
    herd_model *model;
    int n_slots, n_ctx, n_batch, queue_max;
    srv_metrics *metrics;
} srv_sched_params;

typedef enum { SCHED_OK = 0, SCHED_FULL, SCHED_CLOSED } sched_result;

herd_status herd_sched_start(const srv_sched_params *p, srv_sched **out);
/* Refuse new jobs and end every queued or running one with an error. */
void herd_sched_close(srv_sched *s);
/* Join the thread and free (after herd_sched_close and after every waiter left). */
void herd_sched_free(srv_sched *s);
int herd_sched_n_ctx_slot(const srv_sched *s);
int herd_sched_capacity(const srv_sched *s); /* slots + queue bound */

/* A new job (one reference, held by the caller); NULL when out of memory. */
srv_job *herd_job_new(const int32_t *prompt, int n_prompt, const srv_gen *gen);
/* Queue all of jobs or none (SCHED_FULL past the bound); each queued job gets
 * a reference held by the scheduler. */
sched_result herd_sched_submit(srv_sched *s, srv_job *const *jobs, int n);
void herd_sched_cancel(srv_sched *s, srv_job *job);
void herd_sched_release(srv_sched *s, srv_job *job);
/* Without waiting: with a cursor, has jobs[0] news past it; without, is
 * every job done? */
bool herd_sched_ready(srv_sched *s, srv_job *const *jobs, int n, const srv_cursor *c);
/* Wait at most timeout_ms for news of any job since *seen (an epoch). */
void herd_sched_wait_news(srv_sched *s, uint64_t *seen, int timeout_ms);
/* Copy the news past the cursor, if any, and advance it (never waits).
 * False if there was none. */
bool herd_sched_poll(srv_sched *s, srv_job *job, srv_cursor *cur, srv_news *news);
void herd_srv_news_free(srv_news *n);
void herd_sched_pause(srv_sched *s, bool paused);
void herd_sched_stats(srv_sched *s, herd_server_stats *out);

/* ------------------------------------------------------------------ token.c */

/* Copy n bytes to out (room for 3n), replacing every byte that is not part of
 * a valid UTF-8 sequence with U+FFFD, as JSON needs; returns the length. */
size_t herd_utf8_repair(const char *in, size_t n, char *out);
/* Bytes at the end of s that start a UTF-8 sequence not yet complete. */
size_t herd_utf8_partial_tail(const char *s, size_t n);

/* ---------------------------------------------------------------- metrics.c */

/* A latency histogram: cumulative counts per upper bound, as Prometheus
 * wants them (the last bucket is +Inf). */
#define SRV_HIST_BUCKETS 12
typedef struct srv_hist {
    uint64_t le[SRV_HIST_BUCKETS], count;
    double sum;
} srv_hist;

struct srv_metrics {
    pthread_mutex_t mu;
    double t_start;
    uint64_t requests, requests_failed, jobs_done, jobs_cancelled, prefix_hits;
    uint64_t prompt_tokens, cached_tokens, generated_tokens, decode_steps;
    double decode_seconds, prompt_seconds, generation_seconds;
    uint64_t status[6]; /* responses by class: 1xx..5xx ([0] unused) */
    srv_hist ttft;      /* submit to first generated token, seconds */
    srv_hist tpot;      /* time per generated token after the first, seconds */
};

void herd_metrics_init(srv_metrics *m);
void herd_metrics_destroy(srv_metrics *m);
void herd_metrics_response(srv_metrics *m, int status);
/* One decode step: prompt and generated tokens in it, its duration. */
void herd_metrics_step(srv_metrics *m, int n_prompt, int n_gen, double seconds);
/* A finished job: cache reuse, cancellation, its latencies. */
void herd_metrics_job(srv_metrics *m, const srv_job *j);
/* Prometheus text exposition (malloc'ed). */
char *herd_metrics_render(srv_metrics *m, const herd_server_stats *st);

/* ------------------------------------------------------------------ api.c */

typedef struct api_error {
    int status;       /* HTTP status */
    const char *type; /* "invalid_request_error", "server_error", ... */
    const char *code; /* NULL or e.g. "context_length_exceeded" */
    char param[64];   /* the offending field, or "" */
    char message[512];
} api_error;

/* Fill e and return false (so that `return herd_api_fail(...)` reads well). */
bool herd_api_fail(api_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* {"error": {"message", "type", "param", "code"}} */
json_t *herd_api_error_json(const api_error *e);

typedef enum { API_COMPLETION, API_CHAT } api_kind;

typedef enum {
    TOOL_CHOICE_AUTO,
    TOOL_CHOICE_NONE,
    TOOL_CHOICE_REQUIRED,
    TOOL_CHOICE_NAMED
} tool_choice;

typedef struct api_request {
    api_kind kind;
    json_t *tools; /* chat: the request's tools (validated), or NULL */
    tool_choice tool_choice;
    char tool_name[72]; /* TOOL_CHOICE_NAMED */
    bool parallel;      /* parallel_tool_calls */
    json_t *prompts;    /* completions: array of prompts (string or array of ids) */
    json_t *messages;   /* chat: messages with string contents */
    json_t *extra;      /* chat: template variables (tools, chat_template_kwargs) or NULL */
    srv_gen gen;
    bool stream, include_usage, echo;
} api_request;

/* n_vocab bounds logit_bias ids. */
bool herd_api_parse_completion(const json_t *body, int n_vocab, api_request *r, api_error *e);
bool herd_api_parse_chat(const json_t *body, int n_vocab, api_request *r, api_error *e);
void herd_api_request_free(api_request *r);
/* Parse a request body: an object, or a 400 (malformed JSON / not an object). */
json_t *herd_api_parse_body(const char *body, size_t len, api_error *e);

/* ----------------------------------------------------------- structured.c */

/* response_format, json_schema and grammar into r->gen.grammar (or a 400). */
bool herd_structured_parse(const json_t *body, api_request *r, api_error *e);
bool herd_structured_set_gbnf(api_request *r, const char *gbnf, size_t len, const char *param,
                              api_error *e);
bool herd_structured_set_schema(api_request *r, const json_t *schema, const char *param,
                                api_error *e);

/* ---------------------------------------------------------------- tools.c */

/* How a family writes tool calls (tools.c explains each). */
enum { TOOLS_GENERIC = 1, TOOLS_HERMES, TOOLS_LLAMA3, TOOLS_MISTRAL };

/* The family of a chat template (its Jinja source; NULL: a built-in format). */
int herd_tools_detect(const char *template_src);
/* tools, tool_choice, parallel_tool_calls: checked into r (or a 400). */
bool herd_tools_parse_request(const json_t *body, api_request *r, api_error *e);
/* With the server's family: the grammar, the system message and the history
 * as the template needs them. Before the prompt is rendered. */
bool herd_tools_prepare(herd_server *srv, api_request *r, api_error *e);
/* The calls in an answer (NULL: none) and the text beside them (*content,
 * malloc'ed or NULL). */
json_t *herd_tools_parse_output(int fmt, const char *text, size_t len, char **content);

/* ---------------------------------------------------------------- reply.c */

/* What every response of one request shares. */
typedef struct reply_ctx {
    const herd_model *model;
    const char *model_id;
    char id[48];
    long created;
    int n_ctx_slot;
    api_kind kind;
    bool chat_logprobs; /* chat: logprobs in the "content" shape */
} reply_ctx;

void herd_reply_ctx_init(reply_ctx *rc, herd_server *srv, api_kind kind);
const char *herd_reply_finish_name(srv_finish f);
/* The whole answer of a finished request: one choice per job. echo_text[i]
 * is the prompt text to put in front of choice i (NULL: no echo). */
json_t *herd_reply_full(const reply_ctx *rc, srv_job *const *jobs, int n, char *const *echo_text);
/* A streamed chunk with a text delta (and its logprobs; offset: bytes of
 * text sent before), or the first chat chunk (role), or the last (finish). */
json_t *herd_reply_chunk(const reply_ctx *rc, const char *text, size_t len, const srv_lp *lp,
                         int n_lp, size_t offset, srv_finish finish, bool role);
/* The usage chunk of stream_options.include_usage. */
json_t *herd_reply_usage_chunk(const reply_ctx *rc, const srv_job *job);
json_t *herd_reply_usage(const srv_job *const *jobs, int n);
json_t *herd_reply_timings(const srv_job *const *jobs, int n);
/* Legacy completions logprobs: tokens, token_logprobs, top_logprobs, text_offset. */
json_t *herd_reply_logprobs_legacy(const herd_model *m, const srv_lp *prompt_lp, int n_prompt,
                                   const int32_t *prompt, const srv_lp *lp, int n_lp,
                                   size_t offset0);
/* A chat answer's message: content, or tool calls (*calls, borrowed from the
 * message, non-NULL when the job's tools were called). */
json_t *herd_reply_message(const srv_job *j, json_t **calls);
/* A valid-UTF-8 JSON string of arbitrary bytes (invalid sequences become U+FFFD). */
json_t *herd_reply_string(const char *s, size_t len);
char *herd_reply_piece(const herd_model *m, int32_t id, bool special, size_t *len);

/* --------------------------------------------------------------- prompt.c */

typedef struct srv_prompt {
    int32_t *ids;
    int n;
    char *text; /* the text the ids came from (echo), or NULL */
} srv_prompt;

/* Tokenize one completions prompt (a string: with BOS as the model wants;
 * an array of ids: as given, checked against the vocabulary). */
bool herd_prompt_from_json(const herd_model *m, const json_t *p, srv_prompt *out, api_error *e);
/* Render chat messages with the server's template, then tokenize. */
bool herd_prompt_from_chat(herd_server *srv, const json_t *messages, const json_t *extra,
                           srv_prompt *out, char **rendered, api_error *e);
void herd_prompt_free(srv_prompt *p);
/* The text of ids, piece by piece (malloc'ed; its length in *len if not NULL). */
char *herd_prompt_ids_text(const herd_model *m, const int32_t *ids, int n, size_t *len);
/* A prompt of n tokens with max_tokens must fit a slot: a 400 otherwise. */
bool herd_prompt_fits(int n_prompt, int max_tokens, int n_ctx_slot, api_error *e);
/* Render messages with the server's chat format (with the generation prompt).
 * *raised: the template called raise_exception(). */
herd_status herd_i_chat_render(herd_server *srv, const json_t *messages, const json_t *extra,
                               char **out, size_t *len, bool *raised);
/* After a failed herd_i_chat_render: was it the render's budget or its cancel
 * flag? Then e says so (500 naming the limit, or 503). */
bool herd_render_stopped(herd_server *srv, api_error *e);
herd_status herd_chat_setup(herd_server *srv, const char *override);
void herd_chat_teardown(herd_server *srv);

/* ------------------------------------------------------ http.c, routes.c, stream.c */

/* One request as a route handler sees it. */
typedef struct http_req {
    herd_server *srv;
    struct MHD_Connection *conn;
    int fd; /* the client's socket, to notice a disconnect while waiting */
    const char *body;
    size_t len;
} http_req;

/* A connection suspended until its jobs have news (watch.c). The node
 * lives in the waiting request's own state. */
typedef struct srv_park {
    struct MHD_Connection *conn;
    int fd;
    srv_job *const *jobs;
    int n_jobs;
    const srv_cursor *cur; /* NULL: wake when every job is done; else when jobs[0]
                              has news past the cursor */
    bool gone;             /* the client went away (its jobs were cancelled) */
    double checked;        /* when its socket was last looked at */
    struct srv_park *next;
} srv_park;

struct http_reply;

/* An answer that must wait for jobs: the handler returns it, http.c parks
 * the connection, and once the jobs are ready calls finish (unless the
 * client left), then free when the request is over. */
typedef struct srv_wait {
    srv_park park;
    struct http_reply (*finish)(struct srv_wait *w);
    void (*free)(struct srv_wait *w);
} srv_wait;

/* A handler's answer: a status and a response (JSON or a stream), or a
 * wait. */
typedef struct http_reply {
    int status;
    struct MHD_Response *resp;
    srv_wait *wait;
} http_reply;

http_reply herd_http_json(int status, json_t *j); /* steals j */
http_reply herd_http_error(const api_error *e);
http_reply herd_http_text(int status, const char *type, char *text); /* steals text */
/* Has the client closed its end? */
bool herd_http_client_gone(int fd);
/* The cancel flag of the handler this thread runs (NULL outside one): set
 * when its client leaves or the server stops. */
const atomic_bool *herd_http_cancel_flag(void);

http_reply herd_route_health(http_req *r);
http_reply herd_route_models(http_req *r);
http_reply herd_route_completions(http_req *r);
http_reply herd_route_chat(http_req *r);
http_reply herd_route_tokenize(http_req *r);
http_reply herd_route_detokenize(http_req *r);
http_reply herd_route_apply_template(http_req *r);
http_reply herd_route_metrics(http_req *r);

/* A Server-Sent Events response that streams the jobs' tokens (stream.c).
 * Takes over the request, the references to the jobs and echo_text. */
http_reply herd_stream_start(http_req *r, api_request *req, srv_job *job, char *echo_text,
                             const reply_ctx *rc);

/* Suspend the connection of p (from a request handler or a content reader)
 * until its jobs are ready; p->conn and p->fd are set by the caller. */
void herd_http_park(herd_server *srv, srv_park *p);

herd_status herd_http_start(herd_server *srv);
void herd_http_quiesce(herd_server *srv);
void herd_http_stop(herd_server *srv);

/* ------------------------------------------------------------------ watch.c */

/* One open connection, as the watcher sees it (libmicrohttpd's socket
 * context). */
typedef struct watch_conn {
    int fd;
    double since;   /* when it started waiting for its current request */
    bool receiving; /* no complete request yet: the deadline runs */
    bool cut;
    struct watch_conn *prev, *next;
} watch_conn;

typedef struct srv_watch srv_watch;

/* A handler running in a polling thread (a template render may take a
 * while): the watcher sets cancel when its client leaves or the server
 * stops. */
typedef struct srv_running {
    int fd;
    atomic_bool cancel;
    double checked;
    struct srv_running *prev, *next;
} srv_running;

herd_status herd_watch_start(herd_server *srv);
/* Resume every parked connection and park none from now on (the jobs must
 * be over: the scheduler closed). */
void herd_watch_release_all(herd_server *srv);
void herd_watch_stop(herd_server *srv);
watch_conn *herd_watch_conn_open(herd_server *srv, int fd);
void herd_watch_conn_close(herd_server *srv, watch_conn *c);
/* The request is complete (receiving = false) or answered (true again). */
void herd_watch_conn_receiving(herd_server *srv, watch_conn *c, bool receiving);
/* Park a connection already suspended. */
void herd_watch_park(herd_server *srv, srv_park *p);
void herd_watch_stats(herd_server *srv, herd_server_stats *out);
void herd_watch_run_begin(herd_server *srv, srv_running *r);
void herd_watch_run_end(herd_server *srv, srv_running *r);

/* ---------------------------------------------------------------- server.c */

struct herd_chat_template;

struct herd_server {
    herd_server_params p;
    herd_model *model;
    char *model_id, *host, *api_key, *cors_origin;
    srv_sched *sched;
    srv_metrics metrics;
    /* chat (prompt.c) */
    struct herd_chat_template *tmpl;
    char *chat_format; /* built-in format when there is no Jinja template */
    char *bos_text, *eos_text;
    int tool_format; /* TOOLS_*: how the template's family writes tool calls */
    /* http.c */
    struct MHD_Daemon *mhd;
    int port;
    long created;
    srv_watch *watch;
    bool quiesced;
    int quiesced_fd;       /* the listening socket, shut down, closed after the daemon stops */
    char start_error[512]; /* libmicrohttpd's complaint while starting */
    /* life (server.c): ready once loaded, not ready again while draining */
    pthread_mutex_t life_mu;
    pthread_cond_t life_cv;
    pthread_t loader;
    bool loader_started, owns_model;
    int loaded;   /* atomic: the model, chat format and scheduler are set up */
    int draining; /* atomic: answer 503 to new requests */
    bool load_done;
    herd_status load_status;
    char load_error[512];
    int requests_active; /* under life_mu */
};

/* Loaded (srv->sched and the chat format may be used)? Ready for new
 * generation requests (loaded and not draining)? */
bool herd_srv_loaded(herd_server *srv);
bool herd_srv_ready(herd_server *srv);
void herd_srv_request_begin(herd_server *srv);
void herd_srv_request_end(herd_server *srv);

void herd_srv_log(herd_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
