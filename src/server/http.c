/*
 * http.c — the HTTP side, on libmicrohttpd: the daemon, the route table,
 * request bodies, the API key, CORS, and sending replies.
 *
 * libmicrohttpd polls every connection from a small pool of threads
 * (http_threads), so an idle or slow socket costs a file descriptor and a
 * little memory, never a thread. It polls with poll(), not epoll: 0.9.75's
 * MHD_quiesce_daemon races its epoll workers for the listening socket and
 * aborts the process when it loses (a drain on SIGTERM hit it). No handler may therefore block on a
 * generation: a handler that must wait for jobs returns a wait (srv_wait),
 * and its connection is suspended and parked with the watcher (watch.c),
 * which resumes it when the jobs are done; a stream's reader does the same
 * whenever it has nothing to send (stream.c). libmicrohttpd calls
 * on_request several times per request: first with the headers only (where
 * the route, method, key and declared body size are checked, so that a bad
 * request is answered before its body is read), then with pieces of the
 * body, then once more with none, when the handler runs — and once more
 * after a parked connection is resumed.
 *
 * The crowd limits: at most max_conns connections (capped below the
 * process's file limit), at most conns_per_ip from one address, a request
 * deadline enforced by the watcher, and libmicrohttpd's idle timeout.
 *
 * Errors are OpenAI-style JSON: 404 for an unknown path, 405 (with Allow) for
 * a known path with the wrong method, 401 for a missing or wrong key, 413 for
 * a body past the limit, 503 while the model loads or the server drains.
 * CORS headers are sent only when --cors names an origin; preflight OPTIONS
 * requests then get 204.
 */
#define _GNU_SOURCE /* POLLRDHUP, strncasecmp */
#include "server/server_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct route {
    const char *path, *method;
    http_reply (*fn)(http_req *);
    bool public; /* served without the API key */
} route;

static const route routes[] = {
    {"/health", "GET", herd_route_health, true},
    {"/v1/health", "GET", herd_route_health, true},
    {"/v1/models", "GET", herd_route_models, false},
    {"/models", "GET", herd_route_models, false},
    {"/v1/completions", "POST", herd_route_completions, false},
    {"/completions", "POST", herd_route_completions, false},
    {"/v1/chat/completions", "POST", herd_route_chat, false},
    {"/chat/completions", "POST", herd_route_chat, false},
    {"/tokenize", "POST", herd_route_tokenize, false},
    {"/detokenize", "POST", herd_route_detokenize, false},
    {"/apply-template", "POST", herd_route_apply_template, false},
    {"/metrics", "GET", herd_route_metrics, false},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Per-request state, from the first call to the completion notice. */
typedef struct conn_state {
    const route *rt;
    char *body;
    size_t len, cap;
    bool answered; /* a reply was queued before the body was read */
    bool too_big;  /* the body passed the limit: the rest is dropped */
    size_t dropped;
    double t0;
    srv_wait *wait; /* parked until its jobs are done */
    watch_conn *wc;
    const char *method, *url; /* for the log line after a wait */
} conn_state;

/* ---------------------------------------------------------------- replies */

http_reply herd_http_text(int status, const char *type, char *text)
{
    http_reply r = {status, NULL, NULL};
    if (!text) return r;
    r.resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r.resp)
        free(text);
    else
        MHD_add_response_header(r.resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return r;
}

http_reply herd_http_json(int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return (http_reply){500, NULL, NULL};
    return herd_http_text(status, "application/json; charset=utf-8", s);
}

http_reply herd_http_error(const api_error *e)
{
    http_reply r = herd_http_json(e->status, herd_api_error_json(e));
    if (r.resp && e->status == 503) MHD_add_response_header(r.resp, "Retry-After", "1");
    /* After a body too large to read, the connection is not worth keeping. */
    if (r.resp && e->status == 413)
        MHD_add_response_header(r.resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return r;
}

bool herd_http_client_gone(int fd)
{
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return true;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* The handler this polling thread is running (for its cancel flag). */
static _Thread_local srv_running *running;

const atomic_bool *herd_http_cancel_flag(void)
{
    return running ? &running->cancel : NULL;
}

static void add_cors(herd_server *srv, struct MHD_Response *resp, bool preflight)
{
    if (!srv->cors_origin) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", srv->cors_origin);
    MHD_add_response_header(resp, "Vary", "Origin");
    if (preflight) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
}

/* Queue a reply (NULL response: drop the connection). */
static enum MHD_Result send_reply(herd_server *srv, struct MHD_Connection *c, http_reply r,
                                  const char *method, const char *url, conn_state *cs)
{
    if (!r.resp) {
        if (srv->p.log_requests)
            herd_srv_log(srv, "%s %s: connection dropped (%s)", method, url,
                         r.status ? "out of memory" : "client gone");
        return MHD_NO;
    }
    add_cors(srv, r.resp, r.status == 204);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r.status, r.resp);
    MHD_destroy_response(r.resp);
    herd_metrics_response(&srv->metrics, r.status);
    if (srv->p.log_requests)
        herd_srv_log(srv, "%s %s %d %.3f s", method, url, r.status, herd_time() - cs->t0);
    return ok;
}

static http_reply error_reply(int status, const char *code, const char *fmt, const char *arg)
{
    api_error e;
    herd_api_fail(&e, status, NULL, fmt, arg);
    e.code = code;
    return herd_http_error(&e);
}

/* ---------------------------------------------------------------- checks */

static bool key_ok(herd_server *srv, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    h += 7;
    while (*h == ' ') h++;
    /* Compare in time independent of where the first difference is. */
    size_t n = strlen(h), k = strlen(srv->api_key);
    unsigned diff = n != k;
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)h[i] ^ (unsigned char)srv->api_key[i % k];
    return diff == 0;
}

/* The reply to send before reading the body, if any. */
static http_reply check_headers(herd_server *srv, struct MHD_Connection *c, const char *url,
                                const char *method, conn_state *cs)
{
    http_reply none = {0, NULL, NULL};
    const route *path_match = NULL;
    bool head = !strcmp(method, "HEAD");
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (strcmp(routes[i].path, url)) continue;
        path_match = &routes[i];
        if (!strcmp(routes[i].method, method) || (head && !strcmp(routes[i].method, "GET")))
            cs->rt = &routes[i];
    }
    if (!path_match) return error_reply(404, "not_found", "no such endpoint: %s", url);
    if (!strcmp(method, "OPTIONS") && srv->cors_origin) {
        http_reply r = {204, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT), NULL};
        return r;
    }
    if (!cs->rt) {
        http_reply r = error_reply(405, "method_not_allowed", "%s is not allowed here", method);
        if (r.resp) MHD_add_response_header(r.resp, MHD_HTTP_HEADER_ALLOW, path_match->method);
        return r;
    }
    if (!cs->rt->public && cs->rt->fn != herd_route_metrics && !herd_srv_ready(srv)) {
        bool draining = herd_srv_loaded(srv);
        http_reply r = error_reply(503, draining ? "draining" : "loading", "%s",
                                   draining ? "the server is shutting down; retry elsewhere"
                                            : "the model is loading; retry later");
        if (r.resp && draining)
            MHD_add_response_header(r.resp, MHD_HTTP_HEADER_CONNECTION, "close");
        return r;
    }
    if (srv->api_key && !cs->rt->public && !key_ok(srv, c))
        return error_reply(401, "invalid_api_key", "%s",
                           "invalid or missing API key (send Authorization: Bearer KEY)");
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > srv->p.body_max)
        return error_reply(413, "request_too_large", "%s", "the request body is too large");
    return none;
}

/* ---------------------------------------------------------------- MHD */

void herd_http_park(herd_server *srv, srv_park *p)
{
    MHD_suspend_connection(p->conn);
    herd_watch_park(srv, p);
}

static watch_conn *conn_watch(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The handler's answer: send it, or park the connection until it is ready. */
static enum MHD_Result answer(herd_server *srv, struct MHD_Connection *c, http_reply r,
                              conn_state *cs)
{
    cs->answered = true;
    if (!r.wait) return send_reply(srv, c, r, cs->method, cs->url, cs);
    cs->wait = r.wait;
    r.wait->park.conn = c;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r.wait->park.fd = ci ? ci->connect_fd : -1;
    herd_http_park(srv, &r.wait->park);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    herd_server *srv = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        if (!(cs = calloc(1, sizeof *cs))) return MHD_NO;
        cs->t0 = herd_time();
        cs->method = method;
        cs->url = url;
        cs->wc = conn_watch(c);
        *con_cls = cs;
        herd_srv_request_begin(srv);
        http_reply r = check_headers(srv, c, url, method, cs);
        if (!r.resp && !r.status) return MHD_YES;
        herd_watch_conn_receiving(srv, cs->wc, false);
        cs->answered = true;
        return send_reply(srv, c, r, method, url, cs);
    }
    if (cs->wait) { /* resumed: the jobs are done, or the client left */
        srv_wait *w = cs->wait;
        http_reply r = w->park.gone ? (http_reply){0, NULL, NULL} : w->finish(w);
        cs->wait = NULL;
        w->free(w);
        return send_reply(srv, c, r, method, url, cs);
    }
    if (cs->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        /* libmicrohttpd takes a reply only before or after the body, so an
         * oversized body (sent without Content-Length) is read and dropped,
         * up to a bound past which the connection is simply closed. */
        if (cs->too_big || *upload_size > srv->p.body_max - cs->len) {
            cs->too_big = true;
            cs->dropped += *upload_size;
            *upload_size = 0;
            return cs->dropped > 16 * srv->p.body_max ? MHD_NO : MHD_YES;
        }
        if (cs->len + *upload_size + 1 > cs->cap) {
            size_t cap = cs->cap ? cs->cap : 4096;
            while (cap < cs->len + *upload_size + 1) cap *= 2;
            char *b = realloc(cs->body, cap);
            if (!b) return MHD_NO;
            cs->body = b;
            cs->cap = cap;
        }
        memcpy(cs->body + cs->len, upload, *upload_size);
        cs->len += *upload_size;
        cs->body[cs->len] = 0;
        *upload_size = 0;
        return MHD_YES;
    }
    herd_watch_conn_receiving(srv, cs->wc, false);
    if (cs->too_big) {
        cs->answered = true;
        return send_reply(
            srv, c, error_reply(413, "request_too_large", "%s", "the request body is too large"),
            method, url, cs);
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    http_req req = {srv, c, ci ? ci->connect_fd : -1, cs->body ? cs->body : "", cs->len};
    srv_running run = {.fd = req.fd};
    herd_watch_run_begin(srv, &run);
    running = &run;
    http_reply r = cs->rt->fn(&req);
    running = NULL;
    herd_watch_run_end(srv, &run);
    return answer(srv, c, r, cs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    herd_server *srv = cls;
    conn_state *cs = *con_cls;
    if (!cs) return;
    if (cs->wait) cs->wait->free(cs->wait);       /* only when the daemon stops */
    herd_watch_conn_receiving(srv, cs->wc, true); /* the next request's deadline starts */
    herd_srv_request_end(srv);
    free(cs->body);
    free(cs);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    herd_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? herd_watch_conn_open(srv, ci->connect_fd) : NULL;
    } else {
        herd_watch_conn_close(srv, *socket_context);
        *socket_context = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    herd_server *srv = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (!srv->mhd) /* starting: the reason goes into the error instead */
        snprintf(srv->start_error, sizeof srv->start_error, "%s", line);
    else
        herd_srv_log(srv, "http: %s", line);
}

/* Connections the process's file limit leaves room for (a few dozen
 * descriptors stay for the model, logs and libmicrohttpd's own). */
static unsigned conn_limit(int want)
{
    struct rlimit rl;
    rlim_t cap =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : 1u << 20;
    cap = cap > 128 ? cap - 64 : 64;
    return (rlim_t)want < cap ? (unsigned)want : (unsigned)cap;
}

herd_status herd_http_start(herd_server *srv)
{
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv->p.port)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)srv->p.port)};
    struct sockaddr *addr = (struct sockaddr *)&a4;
    unsigned flags =
        MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (inet_pton(AF_INET, srv->host, &a4.sin_addr) != 1) {
        if (inet_pton(AF_INET6, srv->host, &a6.sin6_addr) != 1)
            return herd_seterr(HERD_E_INVALID, "--host '%s' is not a numeric IPv4 or IPv6 address",
                               srv->host);
        addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    }
    unsigned per_ip = srv->p.conns_per_ip > 0 ? (unsigned)srv->p.conns_per_ip : 0;
    /* The logger goes first, so that it sees errors about the other options. */
    srv->mhd = MHD_start_daemon(
        flags, (uint16_t)srv->p.port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, srv, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)srv->p.timeout_s, MHD_OPTION_CONNECTION_LIMIT, conn_limit(srv->p.max_conns),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)srv->p.http_threads, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_END);
    if (!srv->mhd)
        return herd_seterr(HERD_E_IO, "cannot listen on %s port %d: %s", srv->host, srv->p.port,
                           srv->start_error[0] ? srv->start_error : "in use, or not allowed");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : srv->p.port;
    return HERD_OK;
}

void herd_http_quiesce(herd_server *srv)
{
    if (!srv->mhd || srv->quiesced) return;
    srv->quiesced = true;
    /* The workers drop the listening socket from their poll sets when they
     * next wake, so it stays open until MHD_stop_daemon: closed now, its
     * number could be reused under them. shutdown() stops the kernel
     * listening at once, so that a new connection is refused (the balancer
     * tries another replica) instead of waiting in the backlog. */
    MHD_socket s = MHD_quiesce_daemon(srv->mhd);
    srv->quiesced_fd = s;
    if (s != MHD_INVALID_SOCKET) shutdown(s, SHUT_RDWR);
}

void herd_http_stop(herd_server *srv)
{
    if (srv->mhd) MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
    if (srv->quiesced && srv->quiesced_fd != MHD_INVALID_SOCKET) close(srv->quiesced_fd);
    srv->quiesced = false;
}
