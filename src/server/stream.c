/*
 * stream.c — `stream: true`: Server-Sent Events exactly as OpenAI sends
 * them. Each event is `data: <json>\n\n`: for chat, a first chunk with the
 * assistant role, then content deltas, then an empty delta with
 * finish_reason; for completions, text chunks then the finish chunk; with
 * stream_options.include_usage, a chunk with empty choices and the usage;
 * then `data: [DONE]\n\n`. An error after the headers went out (the server
 * shutting down) is sent as `data: {"error": ...}` before [DONE].
 *
 * libmicrohttpd calls reader() from a polling thread whenever it can send
 * more; reader() never blocks: with nothing to send it suspends the
 * connection and parks it with the watcher (watch.c), which resumes it when
 * the job has news, or cancels the job when the client has gone (its slot
 * is free at the scheduler's next step) and the connection is dropped.
 * stream_free() runs when libmicrohttpd lets go of the response, whatever
 * the reason.
 */
#include "server/server_impl.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

typedef enum { PH_START, PH_RUN, PH_USAGE, PH_DONE, PH_END } phase;

typedef struct stream {
    herd_server *srv;
    srv_job *job;
    api_request req;
    reply_ctx rc;
    char *echo;
    srv_park park; /* while waiting for news */
    srv_cursor cur;
    size_t sent; /* bytes of text sent (text_offset of the next token) */
    phase ph;
    char *buf; /* SSE bytes ready to go */
    size_t len, off, cap;
} stream;

static bool put(stream *st, const char *s, size_t n)
{
    if (st->len + n > st->cap) {
        size_t cap = st->cap ? st->cap : 1024;
        while (cap < st->len + n) cap *= 2;
        char *b = realloc(st->buf, cap);
        if (!b) return false;
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, s, n);
    st->len += n;
    return true;
}

static bool put_event(stream *st, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    bool ok = s && put(st, "data: ", 6) && put(st, s, strlen(s)) && put(st, "\n\n", 2);
    free(s);
    return ok;
}

/* The echoed prompt (with its log-probabilities) once the prompt is read. */
static bool put_echo(stream *st)
{
    const srv_job *j = st->job;
    size_t n = strlen(st->echo);
    json_t *c = herd_reply_chunk(&st->rc, st->echo, n, NULL, 0, 0, SRV_FINISH_NONE, false);
    if (j->gen.echo_logprobs)
        json_object_set_new(json_array_get(json_object_get(c, "choices"), 0), "logprobs",
                            herd_reply_logprobs_legacy(st->rc.model, j->prompt_lp, j->n_prompt,
                                                       j->prompt, NULL, 0, 0));
    st->sent += n;
    return put_event(st, c);
}

/* With tools the answer is held back until it is whole (a call cannot be
 * told from text before), then sent as one delta: content or tool_calls
 * (each with its index). True in *called when tools were called. */
static bool put_tool_answer(stream *st, bool *called)
{
    json_t *calls, *msg = herd_reply_message(st->job, &calls);
    json_t *c = herd_reply_chunk(&st->rc, NULL, 0, NULL, 0, 0, SRV_FINISH_NONE, false);
    json_t *delta = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
    *called = calls != NULL;
    if (calls) {
        size_t i;
        json_t *call;
        json_array_foreach(calls, i, call)
            json_object_set_new(call, "index", json_integer((json_int_t)i));
        json_object_set(delta, "tool_calls", calls);
    } else {
        json_object_set(delta, "content", json_object_get(msg, "content"));
    }
    json_decref(msg);
    return put_event(st, c);
}

static bool put_final(stream *st)
{
    const srv_job *j = st->job; /* done: the scheduler no longer writes it */
    if (j->finish == SRV_FINISH_ERROR) {
        api_error e;
        herd_api_fail(&e, 503, NULL, "%s", j->error);
        return put_event(st, herd_api_error_json(&e));
    }
    bool called = false;
    if (j->gen.tool_format && st->rc.kind == API_CHAT && !put_tool_answer(st, &called))
        return false;
    json_t *c = herd_reply_chunk(&st->rc, NULL, 0, NULL, 0, 0, j->finish, false);
    if (called)
        json_object_set_new(json_array_get(json_object_get(c, "choices"), 0), "finish_reason",
                            json_string("tool_calls"));
    json_object_set_new(c, "timings", herd_reply_timings(&j, 1));
    json_object_set_new(
        c, "context",
        json_pack("{s:i,s:i}", "n_ctx", st->rc.n_ctx_slot, "used", j->n_prompt + j->n_gen));
    return put_event(st, c);
}

/* Turn news into events; without news, park until there is some. False
 * when the client left. */
static bool run_step(stream *st, bool *parked)
{
    srv_news n;
    if (st->park.gone) return false; /* the watcher cancelled the job */
    if (!herd_sched_poll(st->srv->sched, st->job, &st->cur, &n)) {
        herd_http_park(st->srv, &st->park);
        *parked = true;
        return true;
    }
    bool ok = true;
    if (n.prompt_done && st->echo) ok = put_echo(st);
    bool held = st->job->gen.tool_format && st->rc.kind == API_CHAT; /* see put_tool_answer */
    if (ok && !held && (n.len || n.n_lp)) {
        ok = put_event(st, herd_reply_chunk(&st->rc, n.text, n.len, n.n_lp ? n.lp : NULL, n.n_lp,
                                            st->sent, SRV_FINISH_NONE, false));
        st->sent += n.len;
    }
    if (ok && n.done) {
        ok = put_final(st);
        st->ph = st->req.include_usage && st->job->finish != SRV_FINISH_ERROR ? PH_USAGE : PH_DONE;
    }
    herd_srv_news_free(&n);
    return ok;
}

/* Fill the buffer with the next events (nothing when *parked); false at
 * the end or on failure. */
static bool refill(stream *st, bool *parked)
{
    st->len = st->off = 0;
    while (st->len == 0 && !*parked) {
        switch (st->ph) {
        case PH_START:
            st->ph = PH_RUN;
            if (st->rc.kind == API_CHAT &&
                !put_event(st, herd_reply_chunk(&st->rc, "", 0, NULL, 0, 0, SRV_FINISH_NONE, true)))
                return false;
            break;
        case PH_RUN:
            if (!run_step(st, parked)) return false;
            break;
        case PH_USAGE:
            st->ph = PH_DONE;
            if (!put_event(st, herd_reply_usage_chunk(&st->rc, st->job))) return false;
            break;
        case PH_DONE:
            st->ph = PH_END;
            if (!put(st, "data: [DONE]\n\n", 14)) return false;
            break;
        case PH_END:
            return false;
        }
    }
    return true;
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    stream *st = cls;
    bool parked = false;
    if (st->off == st->len && !refill(st, &parked))
        return st->ph == PH_END ? MHD_CONTENT_READER_END_OF_STREAM
                                : MHD_CONTENT_READER_END_WITH_ERROR;
    if (parked) return 0; /* called again once resumed */
    size_t n = st->len - st->off < max ? st->len - st->off : max;
    memcpy(out, st->buf + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream *st = cls;
    herd_sched_cancel(st->srv->sched, st->job); /* a no-op when it is done */
    herd_sched_release(st->srv->sched, st->job);
    herd_api_request_free(&st->req);
    free(st->echo);
    free(st->buf);
    free(st);
}

http_reply herd_stream_start(http_req *r, api_request *req, srv_job *job, char *echo_text,
                             const reply_ctx *rc)
{
    stream *st = calloc(1, sizeof *st);
    http_reply rep = {500, NULL, NULL};
    if (!st) {
        herd_sched_cancel(r->srv->sched, job);
        herd_sched_release(r->srv->sched, job);
        free(echo_text);
        return rep;
    }
    st->srv = r->srv;
    st->job = job;
    st->req = *req;
    memset(req, 0, sizeof *req); /* the stream owns its JSON now */
    st->rc = *rc;
    st->echo = echo_text;
    st->park =
        (srv_park){.conn = r->conn, .fd = r->fd, .jobs = &st->job, .n_jobs = 1, .cur = &st->cur};
    rep.resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, st, stream_free);
    if (!rep.resp) {
        stream_free(st);
        return rep;
    }
    rep.status = 200;
    MHD_add_response_header(rep.resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(rep.resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(rep.resp, "X-Accel-Buffering", "no");
    return rep;
}
