/*
 * cmd_probe.c — `herd probe [--force] [--json]`: measure this machine for
 * the performance model (src/catalog/predict.h) and keep the figures in
 * $XDG_CACHE_HOME/herd/probe.json (default ~/.cache/herd/probe.json); print
 * them. A stored probe of this CPU and herd is reused unless --force.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "cmd_probe.h"
#include "tensor/tensor.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The CPUs this process may run on (taskset, cgroups), else the online
 * ones: a probe pinned to one CPU measures one thread, not two threads
 * taking turns on it. */
int cli_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) n = CPU_COUNT(&set);
    return n < 1 ? 1 : n > HERD_PROBE_MAX_THREADS ? HERD_PROBE_MAX_THREADS : (int)n;
}

#define BUSY_US 100.0

static int get_probe(herd_probe *p, bool force)
{
    char path[1024], why[256];
    if (herd_probe_path(path, sizeof path)) return cli_fail("probe");
    if (force) unlink(path);
    bool again = false;
    herd_status st = herd_probe_cached(path, cli_default_threads(), p, &again, why, sizeof why);
    if (again && why[0])
        fprintf(stderr, "herd: probe: %s: %s; measured again\n", path, why);
    else if (again)
        fprintf(stderr, "herd: probe: measured this machine in %.1f s, kept in %s\n", p->seconds,
                path);
    /* A pool dispatch takes microseconds on an idle machine; hundreds mean
     * the workers waited for a core, and every figure with more than one
     * thread says so (too slow). Say it, rather than predict from it. */
    const int t = p->max_threads;
    if (again && !st && t > 1 && p->sync_us[t] > BUSY_US)
        fprintf(stderr,
                "herd: probe: the machine was busy (a %d-thread pool dispatch took %.0f us): "
                "figures with more than one thread are too slow; herd probe --force on an idle "
                "machine\n",
                t, p->sync_us[t]);
    return st ? cli_fail("probe") : 0;
}

int cli_probe(herd_probe *p)
{
    return get_probe(p, false);
}

static void print_probe(const herd_probe *p)
{
    printf("cpu      %s\nherd     %s\n", p->cpu, p->herd);
    printf("%-22s", "threads");
    for (int t = 1; t <= p->max_threads; t++) printf(" %9d", t);
    printf("\n%-22s", "read GB/s");
    for (int t = 1; t <= p->max_threads; t++) printf(" %9.1f", p->read_gbs[t]);
    printf("\n%-22s", "product call us");
    for (int t = 1; t <= p->max_threads; t++) printf(" %9.1f", p->call_us[t]);
    printf("\n%-22s", "pool dispatch us");
    for (int t = 1; t <= p->max_threads; t++) printf(" %9.2f", p->sync_us[t]);
    printf("\n");
    for (int i = 0; i < p->n_types; i++) {
        char label[32];
        snprintf(label, sizeof label, "%s 1 token GB/s", herd_type_name(p->types[i].type));
        printf("%-22s", label);
        for (int t = 1; t <= p->max_threads; t++) printf(" %9.1f", p->types[i].gemv_gbs[t]);
        snprintf(label, sizeof label, "%s in cache GB/s", herd_type_name(p->types[i].type));
        printf("\n%-22s", label);
        for (int t = 1; t <= p->max_threads; t++) printf(" %9.1f", p->types[i].gemv_cache_gbs[t]);
        snprintf(label, sizeof label, "%s decode GB/s", herd_type_name(p->types[i].type));
        printf("\n%-22s", label);
        for (int t = 1; t <= p->max_threads; t++)
            printf(" %9.1f", herd_predict_gemv_gbs(p, p->types[i].type, t));
        snprintf(label, sizeof label, "%s 512 tok GFLOP/s", herd_type_name(p->types[i].type));
        printf("\n%-22s", label);
        for (int t = 1; t <= p->max_threads; t++) printf(" %9.1f", p->types[i].gemm_gflops[t]);
        printf("\n");
    }
    printf("attention ns per query x cached token (head size 128, 1 thread): decode %.2f, "
           "prompt %.2f\n",
           p->attn_ns_decode, p->attn_ns_prompt);
}

int cmd_probe(int argc, char **argv)
{
    bool force = false, json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force"))
            force = true;
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: herd probe [--force] [--json]\n"
                   "Measures read bandwidth, product kernels per weight type and attention\n"
                   "with 1..N threads (a few seconds); keeps them in "
                   "$XDG_CACHE_HOME/herd/probe.json\n(default ~/.cache/herd/probe.json) until "
                   "the CPU or herd changes. --force measures again.\n");
            return 0;
        } else
            return cli_error(2, "probe: unknown option %s (--force, --json)", argv[i]);
    }
    herd_probe p;
    int rc = get_probe(&p, force);
    if (rc) return rc;
    if (json) {
        char *s = herd_probe_json(&p);
        if (!s) return cli_error(1, "probe: out of memory");
        printf("%s\n", s);
        free(s);
    } else {
        print_probe(&p);
    }
    return 0;
}
