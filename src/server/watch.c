/*
 * watch.c — the watcher: one thread that does the waiting libmicrohttpd's
 * polling threads must never do.
 *
 * The polling threads serve every connection from a few poll() loops, so a
 * handler that blocked until its generation ended would stall every other
 * connection of its thread, /health included. Instead, a request whose
 * answer needs jobs suspends its connection (libmicrohttpd then neither
 * reads it, nor times it out, nor calls us for it) and parks it here. The
 * watcher wakes on every scheduler step (herd_sched_wait_news), resumes the
 * parked connections whose jobs have news, and every PEEK_S seconds looks
 * at each parked socket: a client that went away gets its jobs cancelled,
 * which frees their slots at the next step, and is resumed so that its
 * request can end.
 *
 * It also holds the list of open connections with the time each began
 * waiting for its current request. A connection that has not delivered a
 * whole request (headers and body) within request_timeout_s of opening or
 * of its previous answer is cut with shutdown(); libmicrohttpd notices and
 * closes it. An idle or trickling client therefore holds a socket for
 * seconds, not minutes, whatever it sends; a request being answered (a
 * generation, a stream) is never subject to that deadline.
 *
 * Handlers that run in a polling thread (a chat template's render) are
 * registered too: the watcher sets their cancel flag when their client goes
 * away or the server stops, and the renderer stops within a millisecond.
 *
 * Locks: the watcher's mutex, then the scheduler's (herd_sched_ready,
 * herd_sched_cancel); libmicrohttpd is called (resume) with neither held.
 */
#include "server/server_impl.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define WATCH_SLICE_MS 20   /* longest sleep between two looks at the parked list */
#define PEEK_S         0.1  /* how often a parked socket is checked for a hang-up */
#define CUT_EVERY_S    0.25 /* how often the connection deadlines are checked */

struct srv_watch {
    pthread_mutex_t mu;
    pthread_t thread;
    bool started, stop, closing;
    watch_conn *conns;
    srv_park *parked;
    srv_running *running;
    int n_conns, n_parked;
    uint64_t n_cut;
    double last_cut;
};

/* Cut the connections past their request deadline (w->mu held). */
static void cut_late(herd_server *srv, srv_watch *w, double now)
{
    double limit = srv->p.request_timeout_s;
    for (watch_conn *c = w->conns; c; c = c->next)
        if (c->receiving && !c->cut && now - c->since > limit) {
            /* The fd is still open: herd_watch_conn_close runs before
             * libmicrohttpd closes it, under this same mutex. */
            shutdown(c->fd, SHUT_RDWR);
            c->cut = true;
            w->n_cut++;
        }
}

/* Cancel the handlers whose client left, or all when closing (w->mu held). */
static void cancel_gone(srv_watch *w, double now)
{
    for (srv_running *r = w->running; r; r = r->next) {
        if (w->closing) atomic_store(&r->cancel, true);
        if (now - r->checked < PEEK_S || atomic_load(&r->cancel)) continue;
        r->checked = now;
        if (herd_http_client_gone(r->fd)) atomic_store(&r->cancel, true);
    }
}

/* Unlink the parked connections that can go on (w->mu held). */
static srv_park *take_ready(herd_server *srv, srv_watch *w, double now)
{
    srv_park *wake = NULL, **pp = &w->parked;
    while (*pp) {
        srv_park *p = *pp;
        bool ready = w->closing || herd_sched_ready(srv->sched, p->jobs, p->n_jobs, p->cur);
        if (!ready && now - p->checked >= PEEK_S) {
            p->checked = now;
            if (herd_http_client_gone(p->fd)) {
                p->gone = ready = true;
                for (int i = 0; i < p->n_jobs; i++) herd_sched_cancel(srv->sched, p->jobs[i]);
            }
        }
        if (!ready) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->next = wake;
        wake = p;
        w->n_parked--;
    }
    return wake;
}

static void resume_all(srv_park *p)
{
    while (p) {
        srv_park *next = p->next; /* p may be freed once its connection runs */
        MHD_resume_connection(p->conn);
        p = next;
    }
}

static void *watch_main(void *arg)
{
    herd_server *srv = arg;
    srv_watch *w = srv->watch;
    uint64_t epoch = 0;
    for (;;) {
        if (herd_srv_loaded(srv))
            herd_sched_wait_news(srv->sched, &epoch, WATCH_SLICE_MS);
        else
            nanosleep(&(struct timespec){0, WATCH_SLICE_MS * 1000000L}, NULL);
        pthread_mutex_lock(&w->mu);
        if (w->stop) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        double now = herd_time();
        if (now - w->last_cut >= CUT_EVERY_S) {
            w->last_cut = now;
            cut_late(srv, w, now);
        }
        cancel_gone(w, now);
        srv_park *wake = w->parked ? take_ready(srv, w, now) : NULL;
        pthread_mutex_unlock(&w->mu);
        resume_all(wake);
    }
    return NULL;
}

herd_status herd_watch_start(herd_server *srv)
{
    srv_watch *w = calloc(1, sizeof *w);
    if (!w) return herd_seterr(HERD_E_NOMEM, "out of memory");
    pthread_mutex_init(&w->mu, NULL);
    srv->watch = w;
    if (pthread_create(&w->thread, NULL, watch_main, srv))
        return herd_seterr(HERD_E_NOMEM, "cannot start the connection watcher");
    w->started = true;
    return HERD_OK;
}

void herd_watch_release_all(herd_server *srv)
{
    srv_watch *w = srv->watch;
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->closing = true;
    cancel_gone(w, herd_time());
    srv_park *wake = w->parked;
    w->parked = NULL;
    w->n_parked = 0;
    pthread_mutex_unlock(&w->mu);
    resume_all(wake);
}

void herd_watch_stop(herd_server *srv)
{
    srv_watch *w = srv->watch;
    if (!w) return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    /* libmicrohttpd is stopped: every connection was closed and unlinked. */
    pthread_mutex_destroy(&w->mu);
    free(w);
    srv->watch = NULL;
}

watch_conn *herd_watch_conn_open(herd_server *srv, int fd)
{
    srv_watch *w = srv->watch;
    watch_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL; /* unwatched: only the idle timeout applies */
    c->fd = fd;
    c->since = herd_time();
    c->receiving = true;
    pthread_mutex_lock(&w->mu);
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    pthread_mutex_unlock(&w->mu);
    return c;
}

void herd_watch_conn_close(herd_server *srv, watch_conn *c)
{
    srv_watch *w = srv->watch;
    if (!c) return;
    pthread_mutex_lock(&w->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    w->n_conns--;
    pthread_mutex_unlock(&w->mu);
    free(c);
}

void herd_watch_conn_receiving(herd_server *srv, watch_conn *c, bool receiving)
{
    srv_watch *w = srv->watch;
    if (!c) return;
    pthread_mutex_lock(&w->mu);
    c->receiving = receiving;
    c->since = herd_time();
    pthread_mutex_unlock(&w->mu);
}

void herd_watch_park(herd_server *srv, srv_park *p)
{
    srv_watch *w = srv->watch;
    p->checked = herd_time();
    pthread_mutex_lock(&w->mu);
    bool now = w->closing;
    if (!now) {
        p->next = w->parked;
        w->parked = p;
        w->n_parked++;
    }
    pthread_mutex_unlock(&w->mu);
    if (now) MHD_resume_connection(p->conn);
}

void herd_watch_stats(herd_server *srv, herd_server_stats *out)
{
    srv_watch *w = srv->watch;
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    out->conns_open = w->n_conns;
    out->conns_cut = w->n_cut;
    pthread_mutex_unlock(&w->mu);
}

void herd_watch_run_begin(herd_server *srv, srv_running *r)
{
    srv_watch *w = srv->watch;
    atomic_init(&r->cancel, false);
    r->checked = herd_time();
    r->prev = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->closing) atomic_store(&r->cancel, true);
    r->next = w->running;
    if (w->running) w->running->prev = r;
    w->running = r;
    pthread_mutex_unlock(&w->mu);
}

void herd_watch_run_end(herd_server *srv, srv_running *r)
{
    srv_watch *w = srv->watch;
    pthread_mutex_lock(&w->mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        w->running = r->next;
    if (r->next) r->next->prev = r->prev;
    pthread_mutex_unlock(&w->mu);
}
