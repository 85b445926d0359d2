/*
 * http_client.h — a small blocking HTTP/1.1 client for the server tests.
 */
#ifndef HERD_TEST_HTTP_CLIENT_H
#define HERD_TEST_HTTP_CLIENT_H

#include <jansson.h>
#include <stddef.h>

typedef struct reply {
    int status;
    char *raw, *body; /* body points into raw (chunked bodies are joined in place) */
    size_t len;
} reply;

/* A connection to 127.0.0.1:port (from source address src, or any), with a
 * 60 s receive timeout; -1 on failure. */
int dial_from(const char *src, int port);
int dial(int port);
void send_all(int fd, const char *p, size_t n);
/* A request with Connection: close (body: JSON, or NULL). */
void send_request(int fd, const char *method, const char *path, const char *headers,
                  const char *body);
/* Join a chunked body of n bytes in place; its new length. */
size_t dechunk(char *b, size_t n);
/* Read until the server closes; closes fd. */
reply read_reply(int fd);
reply http(int port, const char *method, const char *path, const char *headers, const char *body);
reply post(int port, const char *path, const char *body);
/* A header's value (a static buffer), or NULL. */
const char *header(const reply *r, const char *name);
json_t *body_json(const reply *r);
void reply_free(reply *r);

#endif
