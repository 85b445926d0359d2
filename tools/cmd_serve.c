/*
 * cmd_serve.c — `herd serve`: load a model and answer OpenAI-compatible HTTP
 * requests until SIGINT or SIGTERM (src/server/server.h tells how).
 *
 *   herd serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [-c CTX]
 *              [-b N] [-t N] [--api-key KEY] [--timeout S] [--cors ORIGIN]
 *              [--queue N] [--chat-template NAME|FILE] [--alias NAME] [--quiet]
 *
 * --quiet drops the line per request; the start line and errors stay.
 * --timeout S closes a connection idle for S seconds (default 600); --queue N
 * is how many requests may wait for a slot before the next gets a 503
 * (default 64); --alias names the model in /v1/models and responses (default:
 * the file's name).
 *
 * -c is the context of all slots together, as in llama.cpp's server: each of
 * the --parallel slots gets CTX / N tokens. The signals are blocked in every
 * thread and taken by sigwait() here, so that shutdown runs in an ordinary
 * thread and can free everything.
 */
#include "cli.h"

#include "server/server.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

int cmd_serve(int argc, char **argv);

typedef struct serve_opts {
    herd_server_params sp;
    const char *model, *chat_template, *alias;
    int n_threads;
    bool quiet;
} serve_opts;

static int usage(void)
{
    fprintf(stderr,
            "usage: herd serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [-c CTX]\n"
            "                  [-b N] [-t N] [--api-key KEY] [--timeout S] [--cors ORIGIN]\n"
            "                  [--queue N] [--chat-template NAME|FILE] [--alias NAME] [--quiet]\n");
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
        int *num = !strcmp(a, "--port")                             ? &o->sp.port
                   : !strcmp(a, "--parallel") || !strcmp(a, "-np")  ? &o->sp.n_parallel
                   : !strcmp(a, "-c") || !strcmp(a, "--ctx-size")   ? &o->sp.n_ctx
                   : !strcmp(a, "-b") || !strcmp(a, "--batch-size") ? &o->sp.n_batch
                   : !strcmp(a, "-t") || !strcmp(a, "--threads")    ? &o->n_threads
                   : !strcmp(a, "--timeout") || !strcmp(a, "-to")   ? &o->sp.timeout_s
                   : !strcmp(a, "--queue")                          ? &o->sp.queue_max
                                                                    : NULL;
        long hi = num == &o->sp.port ? 65535 : num == &o->sp.n_parallel ? 256 : 1 << 24;
        long lo = num == &o->sp.n_parallel || num == &o->n_threads ? 1 : 0;
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

int cmd_serve(int argc, char **argv)
{
    serve_opts o = {.sp = herd_server_default_params()};
    if (!parse(argc, argv, &o)) return 2;
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = o.n_threads;
    herd_model *m;
    if (herd_model_load(o.model, &mp, &m)) return cli_fail(o.model);
    char *tmpl = o.chat_template ? template_arg(o.chat_template) : NULL;
    o.sp.model = m;
    o.sp.model_id = o.alias ? o.alias : base_name(o.model);
    o.sp.chat_template = tmpl;
    o.sp.log = log_line;
    o.sp.log_requests = !o.quiet;
    /* Block the signals before any thread starts, so every thread inherits
     * the mask and only sigwait() below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    herd_server *srv;
    int rc = 0;
    if (herd_server_start(&o.sp, &srv))
        rc = cli_fail("serve");
    else {
        int sig = 0;
        sigwait(&set, &sig);
        fprintf(stderr, "herd serve: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        herd_server_stop(srv);
    }
    free(tmpl);
    herd_model_free(m);
    return rc;
}
