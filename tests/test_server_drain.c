/*
 * test_server_drain.c — `herd serve` (the program, as an operator or
 * Kubernetes runs it) stopped by SIGTERM, over and over.
 *
 * Covered:
 *  - Stress: RUNS servers on the tiny model, each sent SIGTERM at a slightly
 *    different moment while connections are opening (a thread dialing and
 *    asking /health without pause), idle (connected, silent), half-sent
 *    (headers trickling) and streaming. Every run must drain and exit 0 with
 *    a log of nothing but the expected lines (no libmicrohttpd complaint, no
 *    abort, no sanitizer report); once the server says it is draining, a new
 *    connection is refused, not queued in the backlog; the streams finish.
 *    libmicrohttpd 0.9.75 aborted here with epoll ("Failed to remove listen
 *    FD from epoll set"), now it polls with poll().
 *  - A drain that runs out of time: a stream that would take far longer
 *    than --drain-timeout 1 is cut (it ends with an error event and [DONE],
 *    never a finish_reason), a request queued behind it gets a 503, and the
 *    process exits 0 within the timeout and a margin.
 */
#include "helpers.h"
#include "http_client.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 20

/* Past the drain timeout the process joins its threads and frees its memory:
 * milliseconds of CPU, which a loaded machine can stretch. A sanitizer build
 * is several times slower at both. */
#ifdef __SANITIZE_ADDRESS__
#define EXIT_MARGIN_S 4.0
#else
#define EXIT_MARGIN_S 1.5
#endif

static char model[256];

/* ---------------------------------------------------------------- the process */

typedef struct server {
    pid_t pid;
    int port;
    char log[512];
} server;

/* Start `herd serve` with its log in a file; wait until it listens. */
static bool spawn(server *s, const char *name, const char *const *extra)
{
    snprintf(s->log, sizeof s->log, "%s/%s.log", test_tmpdir(), name);
    const char *argv[32] = {
        test_herd_bin(),  "serve", "-m", model, "--port", "0", "--quiet", "-t", "1",
        "--conns-per-ip", "0"};
    int n = 11;
    while (*extra && n < 31) argv[n++] = *extra++;
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 2) < 0) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->port = 0;
    for (int i = 0; i < 3000 && s->pid > 0 && !s->port; i++) {
        char *text = test_read_file(s->log, NULL);
        const char *at = text ? strstr(text, " port ") : NULL;
        if (at && strstr(text, "listening on")) s->port = atoi(at + 6);
        free(text);
        if (!s->port) usleep(10000);
    }
    CHECKF(s->port > 0, "%s: herd serve did not start (see %s)", name, s->log);
    if (s->port <= 0 && s->pid > 0) kill(s->pid, SIGKILL), waitpid(s->pid, NULL, 0);
    return s->port > 0;
}

static bool log_has(const server *s, const char *what)
{
    char *text = test_read_file(s->log, NULL);
    bool has = text && strstr(text, what);
    free(text);
    return has;
}

/* Wait for the exit; its status, or -1 after timeout_s (then it is killed).
 * *took: seconds from t0. */
static int wait_exit(server *s, double t0, double timeout_s, double *took)
{
    int status = 0;
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (herd_time() - t0 > timeout_s) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            *took = herd_time() - t0;
            return -1;
        }
        usleep(2000);
    }
    *took = herd_time() - t0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Every line of the log is one the drain is expected to write, or
 * libmicrohttpd's note of a request left half-sent when the daemon stopped
 * (the test's trickling clients). */
static bool log_clean(const server *s)
{
    static const char *ok[] = {
        "herd serve: listening on ", "herd serve: SIGTERM, draining",
        "herd serve: every request finished, shutting down", "herd serve: drain timeout: ",
        "herd serve: http: Connection socket is closed when reading request due to the error"};
    char *text = test_read_file(s->log, NULL);
    bool clean = text != NULL;
    for (char *line = text, *end; clean && line && *line; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        if (end) *end = 0;
        bool known = false;
        for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
            known |= !strncmp(line, ok[i], strlen(ok[i]));
        if (!known) fprintf(stderr, "%s: unexpected line: %s\n", s->log, line);
        clean = known;
    }
    free(text);
    return clean;
}

/* ---------------------------------------------------------------- clients */

static bool refused(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool no = connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno == ECONNREFUSED;
    close(fd);
    return no;
}

/* A streamed completion, read until its first event, then to its end. */
typedef struct stream {
    int fd;
    char *buf;
    size_t len;
} stream;

static bool stream_read(stream *st, const char *until)
{
    for (;;) {
        char *b = realloc(st->buf, st->len + 4097);
        if (!b) return false;
        st->buf = b;
        ssize_t n = recv(st->fd, b + st->len, 4096, 0);
        if (n <= 0) return false;
        st->len += (size_t)n;
        b[st->len] = 0;
        if (until && strstr(b, until)) return true;
    }
}

static stream open_stream(int port, int max_tokens)
{
    stream st = {dial(port), NULL, 0};
    if (st.fd < 0) return st;
    char body[256];
    snprintf(body, sizeof body,
             "{\"prompt\": \"Once upon a time\", \"max_tokens\": %d, \"stream\": true, "
             "\"logit_bias\": {\"2\": -100}}",
             max_tokens);
    send_request(st.fd, "POST", "/v1/completions", NULL, body);
    if (!stream_read(&st, "data: ")) close(st.fd), st.fd = -1;
    return st;
}

/* Read a stream to its end: 1 finished ([DONE] after a finish_reason),
 * 2 cut (an error event, or closed without a finish_reason), 0 neither. */
static int stream_end(stream *st)
{
    if (st->fd < 0) return free(st->buf), 0;
    stream_read(st, NULL);
    close(st->fd);
    char *sep = st->buf ? strstr(st->buf, "\r\n\r\n") : NULL;
    int how = 0;
    if (sep) {
        char *b = sep + 4;
        dechunk(b, st->len - (size_t)(b - st->buf));
        bool done = strstr(b, "data: [DONE]"), error = strstr(b, "data: {\"error\"");
        bool finished =
            strstr(b, "\"finish_reason\":\"length\"") || strstr(b, "\"finish_reason\":\"stop\"");
        how = finished && done && !error ? 1 : !finished ? 2 : 0;
    }
    free(st->buf);
    return how;
}

typedef struct dialer {
    int port;
    atomic_bool stop;
    int answered, refused;
    pthread_t t;
} dialer;

/* Connections opening all the time: each asks /health and leaves. */
static void *dial_main(void *arg)
{
    dialer *d = arg;
    while (!atomic_load(&d->stop)) {
        int fd = dial(d->port);
        if (fd < 0) {
            d->refused++;
            usleep(1000);
            continue;
        }
        send_request(fd, "GET", "/health", NULL, NULL);
        reply r = read_reply(fd);
        d->answered += r.status > 0;
        reply_free(&r);
    }
    return NULL;
}

/* ---------------------------------------------------------------- stress */

static void stress_run(int run, int *alive_checks)
{
    static const char *const extra[] = {"--parallel",  "2", "-c", "2048", "--drain-timeout", "20",
                                        "--max-queue", "4", NULL};
    char name[32];
    snprintf(name, sizeof name, "stress%d", run);
    server s;
    if (!spawn(&s, name, extra)) return;
    int idle[4], half[4];
    stream streams[2];
    for (int i = 0; i < 4; i++) {
        idle[i] = dial(s.port);
        half[i] = dial(s.port);
        if (half[i] >= 0) send_all(half[i], "POST /v1/completions HTTP/1.1\r\nHost: x\r\n", 41);
    }
    for (int i = 0; i < 2; i++) streams[i] = open_stream(s.port, 60);
    dialer d = {.port = s.port};
    pthread_create(&d.t, NULL, dial_main, &d);
    usleep((useconds_t)(run % 5) * 3000); /* SIGTERM at a different moment each run */
    double t0 = herd_time();
    kill(s.pid, SIGTERM);
    while (!log_has(&s, "draining") && herd_time() - t0 < 10) usleep(1000);
    /* The log line comes just before the socket closes: a connection made
     * in between is still accepted; from then on every one is refused. */
    bool no = false;
    while (!(no = refused(s.port)) && herd_time() - t0 < 10) usleep(1000);
    CHECKF(no, "run %d: connections still accepted %.1f s after SIGTERM", run, herd_time() - t0);
    if (no && waitpid(s.pid, NULL, WNOHANG) == 0) {
        (*alive_checks)++; /* refused by the draining server, not a dead one */
        CHECKF(refused(s.port), "run %d: a connection was accepted again while draining", run);
    }
    atomic_store(&d.stop, true);
    pthread_join(d.t, NULL);
    for (int i = 0; i < 2; i++)
        CHECKF(stream_end(&streams[i]) == 1, "run %d: stream %d did not finish during the drain",
               run, i);
    double took;
    int rc = wait_exit(&s, t0, 60, &took);
    CHECKF(rc == 0, "run %d: exit %d after %.2f s (see %s)", run, rc, took, s.log);
    CHECKF(log_clean(&s), "run %d: the log has more than the drain's lines", run);
    CHECKF(log_has(&s, "every request finished"), "run %d: the drain did not finish", run);
    for (int i = 0; i < 4; i++) {
        if (idle[i] >= 0) close(idle[i]);
        if (half[i] >= 0) close(half[i]);
    }
}

static void test_stress(void)
{
    int alive = 0;
    double t0 = herd_time();
    for (int run = 0; run < RUNS; run++) stress_run(run, &alive);
    fprintf(stderr, "stress: %d runs in %.1f s; refused while still draining in %d\n", RUNS,
            herd_time() - t0, alive);
    /* A run whose streams end first has nothing left to drain and may be
     * gone before the check; most must see the refusal from a live server. */
    CHECKF(alive >= RUNS / 2, "only %d of %d runs checked the refusal on a live server", alive,
           RUNS);
}

/* ---------------------------------------------------------------- timeout */

typedef struct bg_post {
    int port;
    reply r;
    pthread_t t;
} bg_post;

static void *bg_main(void *arg)
{
    bg_post *b = arg;
    b->r = post(b->port, "/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 8}");
    return NULL;
}

static void test_timeout(void)
{
    static const char *const extra[] = {"--parallel",      "1", "-c", "32768",
                                        "--drain-timeout", "1", NULL};
    server s;
    if (!spawn(&s, "timeout", extra)) return;
    /* 30,000 tokens: seconds of generation even on an idle machine. */
    stream st = open_stream(s.port, 30000);
    CHECK(st.fd >= 0);
    bg_post queued = {.port = s.port};
    pthread_create(&queued.t, NULL, bg_main, &queued); /* waits behind the stream */
    usleep(200000);
    double t0 = herd_time();
    kill(s.pid, SIGTERM);
    int how = stream_end(&st);
    double cut_at = herd_time() - t0;
    pthread_join(queued.t, NULL);
    double took;
    int rc = wait_exit(&s, t0, 60, &took);
    fprintf(stderr, "timeout: stream cut %.2f s after SIGTERM, exit %d after %.2f s\n", cut_at, rc,
            took);
    CHECKF(how == 2, "the stream was not cut (%d)", how);
    CHECKF(cut_at >= 0.9, "the stream was cut before the drain timeout: %.2f s", cut_at);
    CHECKF(queued.r.status == 503, "the queued request: %d %s", queued.r.status,
           queued.r.body ? queued.r.body : "");
    reply_free(&queued.r);
    CHECKF(rc == 0, "exit %d after a drain timeout", rc);
    CHECKF(took < 1 + EXIT_MARGIN_S, "exit %.2f s after SIGTERM, --drain-timeout 1", took);
    CHECKF(log_has(&s, "drain timeout: 2 requests cut"), "the log does not say what was cut");
    CHECK(log_clean(&s));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!test_shared("models/tiny/llama-f32.gguf", model, sizeof model)) return test_report();
    if (access(test_herd_bin(), X_OK) != 0) {
        test_skip("%s not built", test_herd_bin());
        return test_report();
    }
    test_timeout();
    test_stress();
    return test_report();
}
