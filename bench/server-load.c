/*
 * server-load.c — a bounded load test for `herd serve` (driven by
 * bench/server-load): N streaming clients for S seconds, plus a stream of
 * malformed requests and clients that hang up mid-stream.
 *
 *   server-load --port P [--clients 16] [--seconds 60] [--max-tokens 32]
 *               [--disconnect-every 5] [--malformed-per-s 10] [--cut]
 *
 * Every valid request is a streamed /v1/completions with include_usage; it
 * succeeds when the status is 200, the events end with [DONE] and the usage
 * chunk reports max_tokens completion tokens (or finish_reason "stop").
 * Every K-th request of a client hangs up after its first event instead.
 * Malformed requests (bad JSON, wrong types, impossible values, oversized
 * bodies) must get a 4xx. At the deadline clients stop starting requests;
 * those in flight finish (or, with --cut, are hung up on and not counted).
 *
 * Aggregate throughput is the server's own count of generated tokens
 * (herd_tokens_predicted_total in /metrics) over the window, so that the
 * tail after the deadline does not blur it. Output: one `key value` per line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int port = 8080, n_clients = 16, seconds = 60, max_tokens = 32, disconnect_every = 5;
static double malformed_per_s = 10;
static bool cut;
static double t_start, t_deadline;
static atomic_int ok, failed, hung_up, cut_short, malformed_sent, malformed_bad;
static atomic_long tokens;
static pthread_mutex_t ttft_mu = PTHREAD_MUTEX_INITIALIZER;
static double *ttft;
static int n_ttft, cap_ttft;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 600};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool send_post(int fd, const char *path, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: l\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     path, len);
    return send_all(fd, head, (size_t)n) && send_all(fd, body, len);
}

static void add_ttft(double t)
{
    pthread_mutex_lock(&ttft_mu);
    if (n_ttft == cap_ttft) {
        cap_ttft = cap_ttft ? 2 * cap_ttft : 1024;
        ttft = realloc(ttft, (size_t)cap_ttft * sizeof *ttft);
    }
    ttft[n_ttft++] = t;
    pthread_mutex_unlock(&ttft_mu);
}

/* One streamed request. hang_up: close after the first event. */
static void one_request(int client, int k, bool hang_up)
{
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"model\": \"m\", \"prompt\": \"You are a helpful assistant. Continue the "
                     "story. The quick brown fox jumps over the lazy dog, and then (client %d, "
                     "request %d)\", \"max_tokens\": %d, \"temperature\": 0.8, \"seed\": %d, "
                     "\"stream\": true, \"stream_options\": {\"include_usage\": true}}",
                     client, k, max_tokens, k);
    double t0 = now();
    int fd = dial();
    if (fd < 0 || !send_post(fd, "/v1/completions", body, (size_t)n)) {
        if (fd >= 0) close(fd);
        failed++;
        return;
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    bool first = false, gone = false;
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = 0;
        if (!first && strstr(buf, "data: {")) {
            first = true;
            add_ttft(now() - t0);
            if (hang_up) {
                gone = true;
                break;
            }
        }
        if (cut && now() > t_deadline) {
            gone = true;
            break;
        }
    }
    close(fd);
    if (gone) {
        hang_up ? hung_up++ : cut_short++;
        free(buf);
        return;
    }
    const char *u = strstr(buf, "\"completion_tokens\":");
    int got = u ? atoi(u + 20) : -1;
    bool good = !strncmp(buf, "HTTP/1.1 200", 12) && strstr(buf, "data: [DONE]") &&
                (got == max_tokens || (got >= 0 && strstr(buf, "\"finish_reason\":\"stop\"")));
    if (good) {
        ok++;
        tokens += got;
    } else {
        failed++;
        fprintf(stderr, "failed request (client %d #%d): %.300s\n", client, k, buf);
    }
    free(buf);
}

static void *client_main(void *arg)
{
    int c = (int)(intptr_t)arg;
    for (int k = 0; now() < t_deadline; k++)
        one_request(c, k, disconnect_every > 0 && k % disconnect_every == disconnect_every - 1);
    return NULL;
}

static const char *const malformed[] = {
    "{\"prompt\": \"x\",",
    "[]",
    "{\"prompt\": 5}",
    "{\"prompt\": \"x\", \"max_tokens\": \"many\"}",
    "{\"prompt\": \"x\", \"max_tokens\": 1000000000}",
    "{\"prompt\": \"x\", \"temperature\": -3}",
    "{\"prompt\": \"x\", \"n\": 4}",
    "{\"prompt\": [99999999]}",
    "{\"prompt\": \"x\", \"stop\": {\"a\": 1}}",
    "\xff\xfe garbage",
};

static void *malformed_main(void *arg __attribute__((unused)))
{
    /* A 9 MiB body announced the way curl announces it: answered (413) from
     * the headers, before a byte of it is sent. */
    const char *big = "POST /v1/completions HTTP/1.1\r\nHost: l\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: 9437184\r\n"
                      "Expect: 100-continue\r\n\r\n";
    for (int k = 0; now() < t_deadline; k++) {
        int fd = dial();
        if (fd < 0) continue;
        int pick = k % 11;
        if (pick == 10)
            send_all(fd, big, strlen(big));
        else
            send_post(fd, pick % 2 ? "/v1/chat/completions" : "/v1/completions", malformed[pick],
                      strlen(malformed[pick]));
        char buf[4096];
        ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
        buf[r > 0 ? r : 0] = 0;
        close(fd);
        malformed_sent++;
        if (strncmp(buf, "HTTP/1.1 4", 10)) {
            malformed_bad++;
            fprintf(stderr, "malformed request %d got: %.200s\n", pick, buf);
        }
        usleep((useconds_t)(1e6 / malformed_per_s));
    }
    return NULL;
}

static double metric(const char *name)
{
    int fd = dial();
    if (fd < 0) return -1;
    const char *req = "GET /metrics HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n";
    send_all(fd, req, strlen(req));
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = recv(fd, buf + len, cap - len - 1, 0)) > 0) len += (size_t)r;
    buf[len] = 0;
    close(fd);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(buf, key);
    double v = p ? atof(p + strlen(key)) : -1;
    free(buf);
    return v;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--port"))
            port = atoi(v), i++;
        else if (!strcmp(a, "--clients"))
            n_clients = atoi(v), i++;
        else if (!strcmp(a, "--seconds"))
            seconds = atoi(v), i++;
        else if (!strcmp(a, "--max-tokens"))
            max_tokens = atoi(v), i++;
        else if (!strcmp(a, "--disconnect-every"))
            disconnect_every = atoi(v), i++;
        else if (!strcmp(a, "--malformed-per-s"))
            malformed_per_s = atof(v), i++;
        else if (!strcmp(a, "--cut"))
            cut = true;
        else {
            fprintf(stderr, "server-load: unknown option %s\n", a);
            return 2;
        }
    }
    double tok0 = metric("herd_tokens_predicted_total");
    double prompt0 = metric("herd_prompt_tokens_total");
    double cached0 = metric("herd_prompt_tokens_cached_total");
    t_start = now();
    t_deadline = t_start + seconds;
    pthread_t *th = calloc((size_t)n_clients + 1, sizeof *th);
    for (int i = 0; i < n_clients; i++)
        pthread_create(&th[i], NULL, client_main, (void *)(intptr_t)i);
    if (malformed_per_s > 0) pthread_create(&th[n_clients], NULL, malformed_main, NULL);
    while (now() < t_deadline) usleep(100000);
    double tok1 = metric("herd_tokens_predicted_total");
    double window = now() - t_start;
    for (int i = 0; i < n_clients; i++) pthread_join(th[i], NULL);
    if (malformed_per_s > 0) pthread_join(th[n_clients], NULL);
    double total = now() - t_start;
    qsort(ttft, (size_t)n_ttft, sizeof *ttft, cmp);
    printf("clients %d\nseconds %.1f\nwall_seconds %.1f\n", n_clients, window, total);
    printf("requests_ok %d\nrequests_failed %d\nhung_up_mid_stream %d\ncut_at_deadline %d\n",
           (int)ok, (int)failed, (int)hung_up, (int)cut_short);
    printf("malformed_sent %d\nmalformed_not_4xx %d\n", (int)malformed_sent, (int)malformed_bad);
    printf("client_tokens %ld\n", (long)tokens);
    printf("prompt_tokens_computed %.0f\nprompt_tokens_reused %.0f\n",
           metric("herd_prompt_tokens_total") - prompt0,
           metric("herd_prompt_tokens_cached_total") - cached0);
    printf("server_tokens_in_window %.0f\naggregate_tokens_per_s %.2f\n", tok1 - tok0,
           (tok1 - tok0) / window);
    if (n_ttft) {
        printf("ttft_p50_ms %.0f\nttft_p99_ms %.0f\nttft_max_ms %.0f\n", 1e3 * ttft[n_ttft / 2],
               1e3 * ttft[(int)(0.99 * (n_ttft - 1))], 1e3 * ttft[n_ttft - 1]);
    }
    free(th);
    free(ttft);
    return failed || malformed_bad ? 1 : 0;
}
