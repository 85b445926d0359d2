/*
 * pool.h — run a function on several threads of one process-wide pool.
 *
 *   herd_parallel(n, fn, arg) calls fn(arg, ith, nth) for ith = 0..nth-1, on
 *   nth <= n threads (the caller runs ith 0), and returns when every call has
 *   returned. fn must split its work by ith/nth, or take items one at a time
 *   from a shared counter with herd_parallel_next() for uneven work.
 *
 * See pool.c for why this is not OpenMP.
 */
#ifndef HERD_POOL_H
#define HERD_POOL_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define HERD_MAX_THREADS 256

typedef void (*herd_task_fn)(void *arg, int ith, int nth);

void herd_parallel(int n_threads, herd_task_fn fn, void *arg);
/* The next item of a shared counter (start it at 0): atomic fetch-and-add. */
int herd_parallel_next(atomic_int *counter);

#endif
