/*
 * compare_proc.c — `herd compare`'s measuring processes (compare_proc.h).
 *
 * The parent talks to each child over two pipes. It sends one byte a
 * command: 'p' or 't' for one bench run (the child answers with a
 * bench_reply), 'q' for the quality step (the child answers with its row and
 * exits). Right after loading, the child sends its row (the file's facts and
 * the predictions) and whether it is ready for commands. A child whose parent
 * goes away sees the end of its command pipe, or is killed (PDEATHSIG), and
 * exits: nothing keeps a model in memory after the comparison.
 */
#define _GNU_SOURCE /* sched_setaffinity */
#include "compare_proc.h"
#include "util/util.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    double tps; /* < 0: the run failed, err says why */
    char err[200];
} bench_reply;

typedef struct {
    pid_t pid;
    int to, from;    /* the parent's ends: commands, replies */
    bool up;         /* loaded and waiting for commands */
    char err[256];   /* the first failed bench run's message */
    double *pp, *tg; /* [reps] tokens/s of the timed runs */
} child;

static bool read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k, n -= (size_t)k;
    }
    return true;
}

static bool write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k, n -= (size_t)k;
    }
    return true;
}

/* Each phase of a model's measurement, on the line the parent started. */
static void phase(const char *what, void *user)
{
    (void)user;
    fprintf(stderr, " %s …", what);
    fflush(stderr);
}

/* Every child on the same n of the CPUs it may use (the first n), when the
 * runs use fewer threads than there are CPUs: left to the scheduler, each
 * child stays on the core it started on, and the cores of a VM need not be
 * alike (on this 2-core Zen 4 VM one runs the tiny ladder model 40% faster
 * than the other, so two copies of one file measured 54,000 and 40,000 t/s). */
static void same_cpus(int n)
{
    cpu_set_t all, first;
    if (n <= 0 || sched_getaffinity(0, sizeof all, &all) || CPU_COUNT(&all) <= n) return;
    CPU_ZERO(&first);
    for (int c = 0, taken = 0; c < CPU_SETSIZE && taken < n; c++)
        if (CPU_ISSET(c, &all)) CPU_SET(c, &first), taken++;
    sched_setaffinity(0, sizeof first, &first);
}

/* The child: load, report, then serve commands until 'q' or the end. */
static _Noreturn void child_main(const char *path, const herd_compare_opts *o, int in, int out)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    same_cpus(o->n_threads);
    herd_compare_opts co = *o;
    co.phase = phase;
    herd_compare_row row;
    herd_compare_model *cm = NULL;
    herd_compare_open(path, &co, &row, &cm);
    const int32_t ready = cm != NULL;
    if (!write_full(out, &row, sizeof row) || !write_full(out, &ready, sizeof ready) || !cm)
        _exit(1);
    char cmd;
    while (read_full(in, &cmd, 1)) {
        if (cmd == 'q') {
            herd_compare_quality(cm, &row);
            write_full(out, &row, sizeof row);
            break;
        }
        bench_reply rep;
        memset(&rep, 0, sizeof rep);
        if (herd_compare_bench(cm, cmd == 'p', &rep.tps)) {
            rep.tps = -1;
            snprintf(rep.err, sizeof rep.err, "%s", herd_errmsg());
        }
        if (!write_full(out, &rep, sizeof rep)) break;
    }
    herd_compare_close(cm);
    _exit(0);
}

/* Close the pipes, wait for the child, take its peak RSS. */
static void reap(child *ch, herd_compare_row *row, bool got_row)
{
    close(ch->to);
    close(ch->from);
    ch->up = false;
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(ch->pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    if (got_row)
        row->peak_rss_bytes = (double)ru.ru_maxrss * 1024.0; /* Linux: KiB */
    else if (!row->error[0])
        snprintf(row->error, sizeof row->error, "the measuring process failed (status %d)", status);
}

/* Fork the child of one model and wait until it has loaded it. */
static void start(child *ch, const char *path, const herd_compare_opts *o, const child *kids,
                  int n_kids, herd_compare_row *row)
{
    memset(row, 0, sizeof *row);
    snprintf(row->path, sizeof row->path, "%s", path);
    snprintf(row->label, sizeof row->label, "%s", path);
    int p2c[2], c2p[2];
    if (pipe(p2c) != 0) {
        snprintf(row->error, sizeof row->error, "pipe: %s", strerror(errno));
        return;
    }
    if (pipe(c2p) != 0) {
        snprintf(row->error, sizeof row->error, "pipe: %s", strerror(errno));
        close(p2c[0]);
        close(p2c[1]);
        return;
    }
    fflush(NULL);
    ch->pid = fork();
    if (ch->pid == 0) {
        /* Only this child's pipes: another child's must end when the parent's do. */
        for (int j = 0; j < n_kids; j++)
            if (kids[j].up) close(kids[j].to), close(kids[j].from);
        close(p2c[1]);
        close(c2p[0]);
        child_main(path, o, p2c[0], c2p[1]);
    }
    close(p2c[0]);
    close(c2p[1]);
    ch->to = p2c[1], ch->from = c2p[0];
    if (ch->pid < 0) {
        close(ch->to);
        close(ch->from);
        snprintf(row->error, sizeof row->error, "fork: %s", strerror(errno));
        return;
    }
    int32_t ready = 0;
    const bool got = read_full(ch->from, row, sizeof *row);
    if (got && read_full(ch->from, &ready, sizeof ready) && ready)
        ch->up = true;
    else
        reap(ch, row, got);
}

/* One bench run of a child ('p' or 't'); its tokens/s, or < 0. */
static double run(child *ch, char what, herd_compare_row *row)
{
    if (!ch->up || ch->err[0]) return -1;
    bench_reply rep;
    if (!write_full(ch->to, &what, 1) || !read_full(ch->from, &rep, sizeof rep)) {
        reap(ch, row, false);
        return -1;
    }
    if (rep.tps < 0) snprintf(ch->err, sizeof ch->err, "bench: %s", rep.err);
    return rep.tps;
}

/* Every model's pp, then every model's tg, A B C or C B A. */
static void round_of_runs(child *kids, int n, bool reverse, herd_compare_row *rows, double *pp,
                          double *tg)
{
    for (int k = 0; k < n; k++) {
        const int i = reverse ? n - 1 - k : k;
        pp[i] = run(&kids[i], 'p', &rows[i]);
    }
    for (int k = 0; k < n; k++) {
        const int i = reverse ? n - 1 - k : k;
        tg[i] = run(&kids[i], 't', &rows[i]);
    }
}

static void interleaved_bench(child *kids, int n, int reps, herd_compare_row *rows)
{
    int up = 0;
    for (int i = 0; i < n; i++) up += kids[i].up;
    if (up == 0) return; /* nothing loaded: nothing to time */
    double *pp = malloc((size_t)n * sizeof *pp), *tg = malloc((size_t)n * sizeof *tg);
    if (!pp || !tg) {
        for (int i = 0; i < n; i++) snprintf(kids[i].err, sizeof kids[i].err, "out of memory");
        reps = -1;
    }
    fprintf(stderr, "compare: speed%s: warm-up", up > 1 ? ", runs interleaved across models" : "");
    if (reps >= 0) round_of_runs(kids, n, false, rows, pp, tg); /* untimed: the warm-up */
    for (int r = 0; r < reps; r++) {
        fprintf(stderr, ", run %d/%d", r + 1, reps);
        fflush(stderr);
        round_of_runs(kids, n, r % 2 == 1, rows, pp, tg);
        for (int i = 0; i < n; i++) kids[i].pp[r] = pp[i], kids[i].tg[r] = tg[i];
    }
    fprintf(stderr, "\n");
    free(pp);
    free(tg);
}

/* The child's final row, with the bench's figures that the parent holds. */
static void finish(child *ch, int reps, int label, int n_total, const herd_compare_opts *o,
                   herd_compare_row *row)
{
    herd_compare_row fin;
    const bool asks = ch->up && (o->text_path || o->task);
    if (asks) fprintf(stderr, "compare: [%d/%d] %s:", label, n_total, row->label);
    const double t0 = herd_time();
    if (ch->up && write_full(ch->to, "q", 1) && read_full(ch->from, &fin, sizeof fin)) {
        *row = fin;
        reap(ch, row, true);
    } else if (ch->up) {
        reap(ch, row, false);
    }
    if (asks)
        fprintf(stderr, " %.1f s%s%s\n", herd_time() - t0, row->error[0] ? ": " : "", row->error);
    if (ch->err[0] && !row->error[0]) snprintf(row->error, sizeof row->error, "%s", ch->err);
    bool ok = !ch->err[0] && row->pp_n > 0;
    for (int r = 0; ok && r < reps; r++) ok = ch->pp[r] >= 0 && ch->tg[r] >= 0;
    if (!ok) return;
    herd_bench_result r;
    herd_bench_summarize(ch->pp, reps, &r);
    row->pp_ts = r.median, row->pp_sd = r.sd;
    herd_bench_summarize(ch->tg, reps, &r);
    row->tg_ts = r.median, row->tg_sd = r.sd;
    row->reps = reps;
}

void compare_group(const char *const *models, int n, int label_base, int n_total,
                   const herd_compare_opts *o, herd_compare_row *rows)
{
    signal(SIGPIPE, SIG_IGN); /* a child that died is an error on its pipe */
    const int reps = o->reps > 0 ? o->reps : 3;
    child *kids = calloc((size_t)n, sizeof *kids);
    double *runs = calloc((size_t)n * 2 * (size_t)reps, sizeof *runs);
    for (int i = 0; i < n; i++) {
        if (!kids || !runs) {
            snprintf(rows[i].error, sizeof rows[i].error, "out of memory");
            continue;
        }
        kids[i].pp = runs + (size_t)i * 2 * reps, kids[i].tg = kids[i].pp + reps;
        for (int r = 0; r < 2 * reps; r++) kids[i].pp[r] = -1; /* not run */
        fprintf(stderr, "compare: [%d/%d] %s:", label_base + i + 1, n_total, models[i]);
        const double t0 = herd_time();
        start(&kids[i], models[i], o, kids, i, &rows[i]);
        fprintf(stderr, " %.1f s%s%s\n", herd_time() - t0, rows[i].error[0] ? ": " : "",
                rows[i].error);
    }
    if (kids && runs) {
        interleaved_bench(kids, n, reps, rows);
        for (int i = 0; i < n; i++)
            finish(&kids[i], reps, label_base + i + 1, n_total, o, &rows[i]);
    }
    free(runs);
    free(kids);
}

/* MemAvailable of /proc/meminfo in bytes, or 0 if it cannot be read. */
static double mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    double kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kib) == 1) break;
    fclose(f);
    return kib * 1024.0;
}

int compare_plan(const char *const *models, int n, int *group_end)
{
    /* A model's weights are resident (read, not mapped): its file size and a
     * tenth for contexts; three quarters of what is available, for the rest. */
    const double budget = 0.75 * mem_available();
    int g = 0;
    double used = 0;
    for (int i = 0; i < n; i++) {
        struct stat sb;
        const double need = stat(models[i], &sb) == 0 ? 1.1 * (double)sb.st_size : 0;
        if (budget > 0 && i > 0 && used + need > budget) group_end[g++] = i, used = 0;
        used += need;
    }
    group_end[g++] = n;
    return g;
}
