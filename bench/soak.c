/*
 * soak.c — a crowd of idle and trickling connections against `herd serve`
 * (driven by bench/soak), and a normal client that must still be served.
 *
 *   soak --port P [--conns 1000] [--seconds 60] [--sources 16] [--trickle-s 2]
 *
 * The crowd: --conns connections from --sources loopback addresses
 * (127.0.0.2 and up, so that the per-address limit is not what saves the
 * server); half say nothing, half send the start of a request and then a
 * header line every --trickle-s seconds, never finishing it. A connection
 * the server closes is opened again at once, so that the crowd stays at
 * full size for the whole run (what a persistent attacker does).
 *
 * The normal client, from 127.0.0.1, once a second: GET /health and a chat
 * completion (max_tokens 8), each on a new connection, timed from connect to
 * the last byte. A streamed completion runs all along on another connection
 * so that a slot is busy. Everything stops by itself after --seconds.
 *
 * Output: one `key value` per line; exit 1 if any normal request failed or
 * took 2 s or more.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int port = 8080, n_conns = 1000, seconds = 60, n_sources = 16;
static double trickle_s = 2;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int dial(const char *src, double timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (int)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (src) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &b.sin_addr);
        if (bind(fd, (struct sockaddr *)&b, sizeof b)) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_str(int fd, const char *s)
{
    (void)!send(fd, s, strlen(s), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* ---------------------------------------------------------------- crowd */

typedef struct member {
    int fd;
    bool trickles;
    double next;
} member;

static member *crowd;
static long reopened, open_failed;

static void member_open(int i)
{
    char src[32];
    snprintf(src, sizeof src, "127.0.0.%d", 2 + i % n_sources);
    member *m = &crowd[i];
    m->fd = dial(src, 1);
    m->trickles = i % 2;
    m->next = now() + trickle_s;
    if (m->fd < 0) {
        open_failed++;
        return;
    }
    if (m->trickles) send_str(m->fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: soak\r\n");
}

/* Trickle, and reopen what the server closed. */
static void crowd_tend(void)
{
    double t = now();
    for (int i = 0; i < n_conns; i++) {
        member *m = &crowd[i];
        if (m->fd >= 0) {
            char b[512];
            ssize_t n = recv(m->fd, b, sizeof b, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(m->fd);
                m->fd = -1;
            }
        }
        if (m->fd < 0) {
            member_open(i);
            reopened++;
        } else if (m->trickles && t >= m->next) {
            send_str(m->fd, "X-Trickle: 1\r\n");
            m->next = t + trickle_s;
        }
    }
}

static int crowd_held(void)
{
    int n = 0;
    for (int i = 0; i < n_conns; i++) n += crowd[i].fd >= 0;
    return n;
}

/* ---------------------------------------------------------------- normal client */

/* One request on a new connection; its status (0: failed) and time. */
static int request(const char *method, const char *path, const char *body, double *secs)
{
    double t0 = now();
    int fd = dial(NULL, 10);
    int status = 0;
    if (fd >= 0) {
        char head[512];
        int n = snprintf(head, sizeof head,
                         "%s %s HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         method, path, body ? strlen(body) : 0, body ? body : "");
        send(fd, head, (size_t)n, MSG_NOSIGNAL);
        char b[8192];
        size_t got = 0;
        ssize_t k;
        while ((k = recv(fd, b + got, sizeof b - 1 - got, 0)) > 0)
            if ((got += (size_t)k) == sizeof b - 1) got = 0; /* only the status line matters */
        b[got] = 0;
        if (strncmp(b, "HTTP/1.", 7) == 0) status = atoi(b + 9);
        close(fd);
    }
    *secs = now() - t0;
    return status;
}

typedef struct series {
    const char *name;
    double v[4096];
    int n, failed;
} series;

static void add(series *s, int status, double secs)
{
    if (status != 200) s->failed++;
    if (s->n < 4096) s->v[s->n++] = secs;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int report(series *s)
{
    qsort(s->v, (size_t)s->n, sizeof *s->v, cmp);
    double p50 = s->n ? s->v[s->n / 2] : 0, p99 = s->n ? s->v[(s->n * 99) / 100] : 0;
    double max = s->n ? s->v[s->n - 1] : 0;
    printf("%s_requests %d\n%s_failed %d\n%s_p50_s %.4f\n%s_p99_s %.4f\n%s_max_s %.4f\n", s->name,
           s->n, s->name, s->failed, s->name, p50, s->name, p99, s->name, max);
    return s->failed == 0 && s->n > 0 && max < 2.0;
}

/* A long streamed completion: a slot stays busy while the crowd is there. */
static int busy_stream(void)
{
    int fd = dial(NULL, 1);
    if (fd < 0) return -1;
    /* no max_tokens: until the slot's context is full */
    const char *body = "{\"prompt\": \"Once upon a time\", \"stream\": true}";
    char head[512];
    snprintf(head, sizeof head,
             "POST /v1/completions HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    send_str(fd, head);
    return fd;
}

static void drain_stream(int *fd)
{
    char b[65536];
    if (*fd < 0) return;
    ssize_t n;
    while ((n = recv(*fd, b, sizeof b, MSG_DONTWAIT)) > 0) {
    }
    if (n == 0) { /* finished (context full): start another */
        close(*fd);
        *fd = busy_stream();
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--conns")) n_conns = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--seconds")) seconds = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--sources")) n_sources = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--trickle-s")) trickle_s = atof(argv[i + 1]);
    }
    if (n_conns < 1 || n_sources < 1 || n_sources > 250 || seconds < 1) return 2;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    crowd = calloc((size_t)n_conns, sizeof *crowd);
    for (int i = 0; i < n_conns; i++) member_open(i);
    printf("crowd_opened %d\n", crowd_held());
    int stream = busy_stream();
    static series health = {.name = "health"}, chat = {.name = "chat"};
    const char *chat_body = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello there\"}], "
                            "\"max_tokens\": 8}";
    double t0 = now(), next = t0;
    int held_min = n_conns;
    while (now() - t0 < seconds) {
        crowd_tend();
        drain_stream(&stream);
        int held = crowd_held();
        held_min = held < held_min ? held : held_min;
        if (now() >= next) {
            double s;
            int st = request("GET", "/health", NULL, &s);
            add(&health, st, s);
            st = request("POST", "/v1/chat/completions", chat_body, &s);
            add(&chat, st, s);
            next += 1;
        }
        poll(NULL, 0, 20);
    }
    printf("crowd_held_min %d\ncrowd_reopened %ld\ncrowd_open_failed %ld\n", held_min, reopened,
           open_failed);
    int ok = report(&health) & report(&chat);
    for (int i = 0; i < n_conns; i++)
        if (crowd[i].fd >= 0) close(crowd[i].fd);
    if (stream >= 0) close(stream);
    free(crowd);
    printf("verdict %s\n", ok ? "pass" : "FAIL");
    return ok ? 0 : 1;
}
