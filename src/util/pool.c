/*
 * pool.c — the worker threads: one pool, created once, that runs a function
 * on n threads and returns when all of them are done (DESIGN.md, decision 7).
 *
 * Why not OpenMP's: libgomp's idle threads spin for a long, fixed time before
 * sleeping, and its spin policy is read from the environment before main()
 * runs. On a machine with more runnable threads than cores a spinning worker
 * holds the core the thread it waits for needs, and a decode step that takes
 * 1 ms idle took 400 ms. These workers spin briefly (a few tens of
 * microseconds, enough to bridge the gap between the matrix products of one
 * layer) and then sleep on a condition variable.
 *
 * The caller is thread 0 of every job. A job started while the pool is busy
 * (another thread of the process is using it) or from inside a job runs on
 * the calling thread alone, which is correct, only slower.
 */
#include "util/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#ifdef __x86_64__
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ITERATIONS 20000 /* ~50 µs of pause instructions */

static struct {
    pthread_mutex_t lock; /* held by the thread that owns the pool for a job */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    pthread_t threads[HERD_MAX_THREADS];
    unsigned born[HERD_MAX_THREADS + 1]; /* generation at each worker's creation */
    int n_workers;                       /* started so far (thread 0 is the caller) */
    atomic_uint generation;              /* bumped for every job */
    atomic_int pending;                  /* workers still running the current job */
    atomic_int sleeping;                 /* workers waiting on the condition variable */
    herd_task_fn fn;
    void *arg;
    int nth;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake_lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER};

static _Thread_local bool in_job;

static void *worker(void *p)
{
    const int ith = (int)(intptr_t)p;
    /* The generation when this worker was created, not when it first runs:
     * the job that created it may already have been posted by then. */
    unsigned seen = pool.born[ith];
    in_job = true; /* a job's function never starts a nested parallel job */
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ITERATIONS) {
                CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&pool.wake_lock);
            atomic_fetch_add(&pool.sleeping, 1);
            while (atomic_load(&pool.generation) == seen)
                pthread_cond_wait(&pool.wake, &pool.wake_lock);
            atomic_fetch_sub(&pool.sleeping, 1);
            pthread_mutex_unlock(&pool.wake_lock);
        }
        seen = g;
        if (ith < pool.nth) {
            pool.fn(pool.arg, ith, pool.nth);
            atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
        }
    }
    return NULL;
}

/* Start workers up to n-1 (the caller is the n-th). Called with pool.lock. */
static int grow(int n)
{
    while (pool.n_workers < n - 1 && pool.n_workers < HERD_MAX_THREADS) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pool.born[pool.n_workers + 1] = atomic_load(&pool.generation);
        int rc = pthread_create(&pool.threads[pool.n_workers], &attr, worker,
                                (void *)(intptr_t)(pool.n_workers + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.n_workers++;
    }
    return pool.n_workers + 1;
}

void herd_parallel(int n_threads, herd_task_fn fn, void *arg)
{
    if (n_threads <= 1 || in_job || pthread_mutex_trylock(&pool.lock) != 0) {
        fn(arg, 0, 1);
        return;
    }
    const int nth = grow(n_threads < HERD_MAX_THREADS ? n_threads : HERD_MAX_THREADS);
    pool.fn = fn;
    pool.arg = arg;
    pool.nth = nth;
    atomic_store(&pool.pending, nth - 1);
    atomic_fetch_add(&pool.generation, 1); /* seq_cst: pairs with the sleeping check */
    if (atomic_load(&pool.sleeping) > 0) {
        pthread_mutex_lock(&pool.wake_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.wake_lock);
    }
    in_job = true;
    fn(arg, 0, nth);
    in_job = false;
    for (int spins = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; spins++) {
        if (spins < SPIN_ITERATIONS)
            CPU_RELAX();
        else
            sched_yield();
    }
    pthread_mutex_unlock(&pool.lock);
}

int herd_parallel_next(atomic_int *counter)
{
    return atomic_fetch_add(counter, 1);
}
