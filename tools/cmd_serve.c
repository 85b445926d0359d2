/*
 * cmd_serve.c — `herd serve`: load a model and answer OpenAI-compatible HTTP
 * requests until SIGINT or SIGTERM (src/server/server.h tells how).
 *
 *   herd serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [-c CTX]
 *              [-b N] [-t N] [--api-key KEY] [--timeout S] [--cors ORIGIN]
 *              [--max-queue N] [--chat-template NAME|FILE] [--alias NAME] [--quiet]
 *              [--request-timeout S] [--max-conns N] [--conns-per-ip N]
 *              [--http-threads N] [--drain-timeout S]
 *
 * --quiet drops the line per request; the start line and errors stay.
 * --timeout S closes a connection silent for S seconds (default 600);
 * --request-timeout S closes one that has not sent a whole request S seconds
 * after it opened or got its last answer (default 10); --max-conns caps the
 * connections open at once (default 4096, and the file limit, which is raised
 * to its hard maximum), --conns-per-ip those from one address (default 64;
 * 0 for none, as behind a balancer, where every connection comes from it).
 * --max-queue N (or --queue) is how many requests may wait for a slot before
 * the next gets a 503 (default 64); --alias names the model in /v1/models and
 * responses (default: the file's name).
 *
 * The socket is opened before the model is loaded, so that /health says 503
 * while it loads; a port in use or a model that fails to load ends the
 * command with one line and exit status 1. SIGTERM drains (no new
 * connections, 503 to new requests, running ones finish within
 * --drain-timeout S, default 30, and are cut past it) and exits 0 either
 * way, the log line telling which; SIGINT stops at once.
 *
 * -c is the context of all slots together, as in llama.cpp's server: each of
 * the --parallel slots gets CTX / N tokens. The signals are blocked in every
 * thread and taken by sigtimedwait() here, so that shutdown runs in an
 * ordinary thread and can free everything.
 */
#include "cli.h"

#include "server/server.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int cmd_serve(int argc, char **argv);

typedef struct serve_opts {
    herd_server_params sp;
    const char *model, *chat_template, *alias;
    int n_threads, drain_s, conns_per_ip;
    bool quiet;
} serve_opts;

static int usage(void)
{
    fprintf(
        stderr,
        "usage: herd serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [-c CTX]\n"
        "                  [-b N] [-t N] [--api-key KEY] [--timeout S] [--cors ORIGIN]\n"
        "                  [--max-queue N] [--chat-template NAME|FILE] [--alias NAME] [--quiet]\n"
        "                  [--request-timeout S] [--max-conns N] [--conns-per-ip N]\n"
        "                  [--http-threads N] [--drain-timeout S]\n");
    return 2;
}

static bool int_arg(const char *flag, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        cli_error(2, "%s: '%s' is not an integer in %ld..%ld", flag, s ? s : "", lo, hi);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool parse(int argc, char **argv, serve_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **str = !strcmp(a, "-m") || !strcmp(a, "--model")   ? &o->model
                           : !strcmp(a, "--host")                      ? &o->sp.host
                           : !strcmp(a, "--api-key")                   ? &o->sp.api_key
                           : !strcmp(a, "--cors")                      ? &o->sp.cors_origin
                           : !strcmp(a, "--chat-template")             ? &o->chat_template
                           : !strcmp(a, "--alias") || !strcmp(a, "-a") ? &o->alias
                                                                       : NULL;
        int *num = !strcmp(a, "--port")                                 ? &o->sp.port
                   : !strcmp(a, "--parallel") || !strcmp(a, "-np")      ? &o->sp.n_parallel
                   : !strcmp(a, "-c") || !strcmp(a, "--ctx-size")       ? &o->sp.n_ctx
                   : !strcmp(a, "-b") || !strcmp(a, "--batch-size")     ? &o->sp.n_batch
                   : !strcmp(a, "-t") || !strcmp(a, "--threads")        ? &o->n_threads
                   : !strcmp(a, "--timeout") || !strcmp(a, "-to")       ? &o->sp.timeout_s
                   : !strcmp(a, "--queue") || !strcmp(a, "--max-queue") ? &o->sp.queue_max
                   : !strcmp(a, "--request-timeout")                    ? &o->sp.request_timeout_s
                   : !strcmp(a, "--max-conns")                          ? &o->sp.max_conns
                   : !strcmp(a, "--conns-per-ip")                       ? &o->conns_per_ip
                   : !strcmp(a, "--http-threads")                       ? &o->sp.http_threads
                   : !strcmp(a, "--drain-timeout")                      ? &o->drain_s
                                                                        : NULL;
        long hi = num == &o->sp.port ? 65535 : num == &o->sp.n_parallel ? 256 : 1 << 24;
        hi = num == &o->sp.http_threads ? 64 : hi;
        long lo = num == &o->sp.n_parallel || num == &o->n_threads || num == &o->sp.http_threads ||
                          num == &o->sp.request_timeout_s || num == &o->sp.max_conns
                      ? 1
                      : 0;
        if (str) {
            if (!v) return cli_error(2, "%s needs a value", a), false;
            *str = v;
            i++;
        } else if (num == &o->n_threads) {
            if (!v) return cli_error(2, "%s needs a value", a), false;
            if (!cli_threads(a, v, num)) return false;
            i++;
        } else if (num) {
            if (!int_arg(a, v, lo, hi, num)) return false;
            i++;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            o->quiet = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return usage(), false;
        else
            return cli_error(2, "serve: unknown option '%s'", a), false;
    }
    if (!o->model) return usage(), false;
    return true;
}

/* The template: a built-in format name, or a file of Jinja source. */
static char *template_arg(const char *arg)
{
    FILE *f = fopen(arg, "rb");
    if (!f) return strdup(arg); /* a name; the server checks it */
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n + 4097 > cap) {
            char *p = realloc(buf, cap = cap ? 2 * cap : 8192);
            if (!p) break;
            buf = p;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

static void log_line(void *ud, const char *line)
{
    fprintf(stderr, "herd serve: %s\n", line);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool loopback(const char *host)
{
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    return !strcmp(host, "::1");
}

/* A thousand idle clients need a thousand descriptors: take what is allowed. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Until a signal: SIGTERM drains first. Returns the exit status. */
static int run(herd_server *srv, const sigset_t *set, const serve_opts *o)
{
    bool loaded = false;
    for (;;) {
        struct timespec tick = {0, 200 * 1000000L};
        int sig = sigtimedwait(set, NULL, &tick);
        herd_status st;
        if (!loaded && herd_server_load_done(srv, &st)) {
            if (st) return cli_fail("serve");
            loaded = true;
        }
        if (sig == SIGINT) {
            fprintf(stderr, "herd serve: SIGINT, shutting down\n");
            return 0;
        }
        if (sig == SIGTERM) {
            fprintf(stderr, "herd serve: SIGTERM, draining (at most %d s)\n", o->drain_s);
            int cut = herd_server_drain(srv, o->drain_s);
            if (cut)
                fprintf(stderr, "herd serve: drain timeout: %d request%s cut, shutting down\n", cut,
                        cut == 1 ? "" : "s");
            else
                fprintf(stderr, "herd serve: every request finished, shutting down\n");
            return 0; /* a drain that had to cut is still an orderly stop */
        }
    }
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o = {.sp = herd_server_default_params(), .drain_s = 30, .conns_per_ip = 64};
    if (!parse(argc, argv, &o)) return 2;
    o.sp.model_params.n_threads = o.n_threads;
    o.sp.model_path = o.model;
    o.sp.conns_per_ip = o.conns_per_ip ? o.conns_per_ip : -1;
    char *tmpl = o.chat_template ? template_arg(o.chat_template) : NULL;
    o.sp.model_id = o.alias ? o.alias : base_name(o.model);
    o.sp.chat_template = tmpl;
    o.sp.log = log_line;
    o.sp.log_requests = !o.quiet;
    if (!loopback(o.sp.host) && !(o.sp.api_key && *o.sp.api_key))
        fprintf(stderr,
                "herd serve: warning: listening on %s without --api-key: anyone who can "
                "reach this address can use the model\n",
                o.sp.host);
    raise_fd_limit();
    /* Block the signals before any thread starts, so every thread inherits
     * the mask and only sigtimedwait() in run() sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    herd_server *srv;
    int rc;
    if (herd_server_start(&o.sp, &srv))
        rc = cli_fail("serve");
    else {
        rc = run(srv, &set, &o);
        herd_server_stop(srv);
    }
    free(tmpl);
    return rc;
}
