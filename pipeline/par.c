// pipeline/par.c — see par.h. One job at a time: the caller publishes it under the
// mutex, workers and caller claim task indices under the same mutex (a job has a
// few tasks per thread, so the lock is not contended), and the caller returns
// only when the last task has returned, so no worker still runs a task of an old
// job when the next one is published.
#define _POSIX_C_SOURCE 200809L
#include "pipeline/par.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define PAR_MAX 256
#define PAR_SPIN 4000 // pauses (~0.1-0.5 ms) before an idle thread sleeps

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t th[PAR_MAX];
    int n_threads; // including the caller
    int quit, busy;
    par_fn fn;
    void *ctx;
    size_t n_tasks, next;
    _Atomic unsigned gen;      // job count; written under mu, polled without it
    _Atomic size_t remaining;  // tasks not yet returned; likewise
} P = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
       .n_threads = 1};

static _Thread_local int cur_worker = -1; // the worker id of the task this thread runs

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Claims and runs tasks of the current job until none is left (mu held on entry and
// on return).
static void run_tasks(int worker)
{
    while (P.next < P.n_tasks) {
        size_t i = P.next++;
        par_fn fn = P.fn;
        void *ctx = P.ctx;
        pthread_mutex_unlock(&P.mu);
        cur_worker = worker;
        fn(ctx, i, worker);
        cur_worker = -1;
        pthread_mutex_lock(&P.mu);
        if (atomic_fetch_sub(&P.remaining, 1) == 1)
            pthread_cond_signal(&P.done);
    }
}

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    pthread_mutex_lock(&P.mu);
    unsigned seen = atomic_load(&P.gen);
    for (;;) {
        while (!P.quit && atomic_load(&P.gen) == seen) {
            pthread_mutex_unlock(&P.mu);
            for (int k = 0; k < PAR_SPIN && atomic_load(&P.gen) == seen; k++)
                relax();
            pthread_mutex_lock(&P.mu);
            if (P.quit || atomic_load(&P.gen) != seen)
                break;
            pthread_cond_wait(&P.wake, &P.mu);
        }
        if (P.quit)
            break;
        seen = atomic_load(&P.gen);
        run_tasks(id);
    }
    pthread_mutex_unlock(&P.mu);
    return NULL;
}

static void stop_workers(void)
{
    pthread_mutex_lock(&P.mu);
    P.quit = 1;
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    for (int i = 1; i < P.n_threads; i++)
        pthread_join(P.th[i], NULL);
    P.quit = 0;
    P.n_threads = 1;
}

int par_set_threads(int n)
{
    if (n < 1)
        n = 1;
    if (n > PAR_MAX)
        n = PAR_MAX;
    if (n == P.n_threads)
        return n;
    stop_workers();
    int started = 1;
    for (; started < n; started++)
        if (pthread_create(&P.th[started], NULL, worker_main, (void *)(intptr_t)started))
            break;
    P.n_threads = started;
    return started;
}

int par_threads(void) { return P.n_threads; }

void par_run(size_t n_tasks, par_fn fn, void *ctx)
{
    int alone = P.n_threads <= 1 || cur_worker >= 0 || n_tasks <= 1;
    if (!alone) {
        pthread_mutex_lock(&P.mu);
        alone = P.busy;
        if (alone)
            pthread_mutex_unlock(&P.mu);
    }
    if (alone) {
        int w = cur_worker >= 0 ? cur_worker : 0; // nested: the task's own scratch
        for (size_t i = 0; i < n_tasks; i++)
            fn(ctx, i, w);
        return;
    }
    P.busy = 1;
    P.fn = fn;
    P.ctx = ctx;
    P.n_tasks = n_tasks;
    P.next = 0;
    atomic_store(&P.remaining, n_tasks);
    atomic_fetch_add(&P.gen, 1);
    pthread_cond_broadcast(&P.wake);
    run_tasks(0);
    while (atomic_load(&P.remaining) > 0) {
        pthread_mutex_unlock(&P.mu);
        for (int k = 0; k < PAR_SPIN && atomic_load(&P.remaining) > 0; k++)
            relax();
        pthread_mutex_lock(&P.mu);
        if (atomic_load(&P.remaining) > 0)
            pthread_cond_wait(&P.done, &P.mu);
    }
    P.busy = 0;
    pthread_mutex_unlock(&P.mu);
}
