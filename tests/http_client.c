/*
 * http_client.c — the small blocking HTTP/1.1 client the server tests speak
 * with: plain sockets on 127.0.0.1 (from any loopback source address), one
 * request per connection, chunked bodies joined.
 */
#define _GNU_SOURCE /* strcasestr */
#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int dial_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
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

int dial(int port)
{
    return dial_from(NULL, port);
}

void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return;
        p += k;
        n -= (size_t)k;
    }
}

void send_request(int fd, const char *method, const char *path, const char *headers,
                  const char *body)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s%s",
                     method, path, headers ? headers : "",
                     body ? "Content-Type: application/json\r\n" : "");
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", strlen(body));
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    send_all(fd, head, (size_t)n);
    if (body) send_all(fd, body, strlen(body));
}

/* Join a chunked body in place. */
size_t dechunk(char *b, size_t n)
{
    size_t in = 0, out = 0;
    while (in < n) {
        char *end;
        unsigned long k = strtoul(b + in, &end, 16);
        char *nl = strstr(end, "\r\n");
        if (!nl || k == 0) break;
        in = (size_t)(nl + 2 - b);
        if (in + k > n) k = n - in;
        memmove(b + out, b + in, k);
        out += k;
        in += k + 2;
    }
    b[out] = 0;
    return out;
}

reply read_reply(int fd)
{
    reply r = {0};
    size_t n = 0, cap = 4096;
    r.raw = malloc(cap);
    for (;;) {
        if (n + 1024 > cap) r.raw = realloc(r.raw, cap *= 2);
        ssize_t k = recv(fd, r.raw + n, cap - n - 1, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    r.raw[n] = 0;
    close(fd);
    char *sep = strstr(r.raw, "\r\n\r\n");
    sscanf(r.raw, "HTTP/1.%*d %d", &r.status);
    if (!sep) return r;
    *sep = 0;
    r.body = sep + 4;
    r.len = n - (size_t)(r.body - r.raw);
    if (strcasestr(r.raw, "transfer-encoding: chunked")) r.len = dechunk(r.body, r.len);
    return r;
}

reply http(int port, const char *method, const char *path, const char *headers, const char *body)
{
    int fd = dial(port);
    if (fd < 0) return (reply){0};
    send_request(fd, method, path, headers, body);
    return read_reply(fd);
}

reply post(int port, const char *path, const char *body)
{
    return http(port, "POST", path, NULL, body);
}

const char *header(const reply *r, const char *name)
{
    static char v[256];
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = r->raw ? strcasestr(r->raw, key) : NULL;
    if (!p) return NULL;
    p += strlen(key);
    while (*p == ' ') p++;
    size_t n = strcspn(p, "\r\n");
    snprintf(v, sizeof v, "%.*s", (int)n, p);
    return v;
}

json_t *body_json(const reply *r)
{
    return r->body ? json_loads(r->body, 0, NULL) : NULL;
}

void reply_free(reply *r)
{
    free(r->raw);
}
