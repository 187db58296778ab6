// pipeline/par.h — the process's own worker threads, for the work OpenBLAS does not do.
//
// The decoder's products (ops_matmul_rows) and its step attention are loops of our
// own; with --threads N they are split over N threads here: a product over its
// output columns, the attention over (source, head) pairs. Every output element is
// computed by exactly the code that computes it single-threaded, so the bits do not
// depend on the thread count (tests/unit/test_par.c, test_s2t).
//
//   par_set_threads(4);                       // once, before work (ops_set_threads calls it)
//   par_run(n_tasks, fn, ctx);                // fn(ctx, task, worker) for every task
//
// par_run returns when every task has run. The caller runs tasks too: worker ids are
// 0 (the caller) .. par_threads() - 1, so per-worker scratch is indexed by them. Tasks
// are claimed in order, one at a time; which worker runs a task is not fixed, so a
// task must not depend on it for anything but scratch. A par_run from inside a task
// runs its tasks on that thread with that task's worker id; one while another
// thread's par_run is running runs them on the calling thread as worker 0: nested
// and concurrent use is safe, only not parallel (scratch indexed by worker id must
// then not be shared between the two callers).
// Idle workers spin for a few microseconds, then sleep on a condition variable.
#pragma once
#include <stddef.h>

typedef void (*par_fn)(void *ctx, size_t task, int worker);

// Threads to use from now on (n < 1: 1). Starts or stops workers; not concurrently
// with par_run. Returns the count in effect (1 if threads could not be started).
int par_set_threads(int n);
int par_threads(void);
// Runs fn(ctx, i, worker) for i in [0, n_tasks); returns when all have returned.
void par_run(size_t n_tasks, par_fn fn, void *ctx);
