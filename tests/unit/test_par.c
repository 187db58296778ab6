// tests/unit/test_par.c — pipeline/par.h: every task runs exactly once whatever the
// thread count (1, 2, 3, 8: more threads than cores too), worker ids stay in range and
// no two tasks run on one worker id at once (per-worker scratch is safe), more than
// one worker takes part when there is work for it, nested and concurrent par_run run
// their tasks (serially), and ops_matmul_rows gives the same bits at 1, 2 and 3
// threads.
#define _POSIX_C_SOURCE 200809L
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/ops.h"
#include "pipeline/par.h"
#include "tests/testutil.h"

enum { NT = 5000, MAXW = 16 };

typedef struct count_job {
    _Atomic int runs[NT];
    _Atomic int busy[MAXW];     // tasks running on each worker id now
    _Atomic int overlap;        // a worker id ran two tasks at once
    _Atomic int bad_worker;     // a worker id out of range
    _Atomic int used[MAXW];     // tasks run per worker id
    int spin;                   // busy work per task (lets other workers join)
} count_job;

static void count_task(void *ctx, size_t t, int w)
{
    count_job *j = ctx;
    if (w < 0 || w >= par_threads() || w >= MAXW) {
        atomic_fetch_add(&j->bad_worker, 1);
        return;
    }
    if (atomic_fetch_add(&j->busy[w], 1) != 0)
        atomic_fetch_add(&j->overlap, 1);
    volatile double x = 0;
    for (int i = 0; i < j->spin; i++)
        x += i;
    atomic_fetch_add(&j->runs[t], 1);
    atomic_fetch_add(&j->used[w], 1);
    atomic_fetch_sub(&j->busy[w], 1);
}

static void check_counts(count_job *j, size_t n)
{
    int bad = 0;
    for (size_t t = 0; t < NT; t++)
        bad += atomic_load(&j->runs[t]) != (t < n ? 1 : 0);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(atomic_load(&j->overlap), 0);
    CU_ASSERT_EQUAL(atomic_load(&j->bad_worker), 0);
}

static void test_every_task_once(void)
{
    static const int threads[] = {1, 2, 3, 8, 1};
    static const size_t sizes[] = {0, 1, 2, 7, 64, NT};
    for (size_t a = 0; a < sizeof threads / sizeof *threads; a++) {
        CU_ASSERT_EQUAL(par_set_threads(threads[a]), threads[a]);
        CU_ASSERT_EQUAL(par_threads(), threads[a]);
        for (size_t b = 0; b < sizeof sizes / sizeof *sizes; b++)
            for (int rep = 0; rep < 20; rep++) {
                count_job *j = calloc(1, sizeof *j);
                j->spin = rep % 4 == 0 ? 2000 : 0;
                par_run(sizes[b], count_task, j);
                check_counts(j, sizes[b]);
                free(j);
            }
    }
}

// With two threads and tasks that take a while, the second worker takes some of
// them (a pool that silently ran everything on the caller would pass the test above).
static void test_workers_take_part(void)
{
    par_set_threads(2);
    int helped = 0;
    for (int rep = 0; rep < 50 && !helped; rep++) {
        count_job *j = calloc(1, sizeof *j);
        j->spin = 200000;
        par_run(64, count_task, j);
        check_counts(j, 64);
        helped = atomic_load(&j->used[1]) > 0;
        free(j);
    }
    CU_ASSERT(helped);
    par_set_threads(1);
}

// A task that itself calls par_run: the inner tasks run on the task's thread with
// the task's worker id, all of them.
typedef struct nest_job {
    count_job *inner[8];
    _Atomic int wrong_worker;
} nest_job;

static int g_outer_worker[8];
static void nest_inner(void *ctx, size_t t, int w);
typedef struct nest_ctx {
    nest_job *j;
    size_t outer;
} nest_ctx;

static void nest_inner(void *ctx, size_t t, int w)
{
    nest_ctx *c = ctx;
    if (w != g_outer_worker[c->outer])
        atomic_fetch_add(&c->j->wrong_worker, 1);
    count_task(c->j->inner[c->outer], t, w);
}

static void nest_outer(void *ctx, size_t t, int w)
{
    nest_job *j = ctx;
    // the outer count_task would mark worker w busy; the inner tasks use w too
    g_outer_worker[t] = w;
    nest_ctx c = {j, t};
    par_run(100, nest_inner, &c);
}

static void test_nested(void)
{
    par_set_threads(3);
    nest_job j = {0};
    for (int i = 0; i < 8; i++)
        j.inner[i] = calloc(1, sizeof *j.inner[i]);
    par_run(8, nest_outer, &j);
    for (int i = 0; i < 8; i++) {
        check_counts(j.inner[i], 100);
        free(j.inner[i]);
    }
    CU_ASSERT_EQUAL(atomic_load(&j.wrong_worker), 0);
    par_set_threads(1);
}

// Two threads calling par_run at once: both complete every task.
static void *concurrent_caller(void *arg)
{
    count_job *j = arg;
    for (int rep = 0; rep < 200; rep++) {
        for (size_t t = 0; t < 300; t++)
            atomic_store(&j->runs[t], 0);
        par_run(300, count_task, j);
        for (size_t t = 0; t < 300; t++)
            if (atomic_load(&j->runs[t]) != 1)
                atomic_fetch_add(&j->bad_worker, 1000);
    }
    return NULL;
}

static void test_concurrent(void)
{
    par_set_threads(2);
    // each caller has its own job; worker ids may repeat across the two callers,
    // so overlap is not checked here (par.h: their scratch must not be shared)
    count_job *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, concurrent_caller, a), 0);
    concurrent_caller(b);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(atomic_load(&a->bad_worker), 0);
    CU_ASSERT_EQUAL(atomic_load(&b->bad_worker), 0);
    free(a), free(b);
    par_set_threads(1);
}

// ops_matmul_rows split over output columns: the same bits at 1, 2 and 3 threads,
// for column counts around the split (multiples of 6) and below the threshold.
static void test_rows_threads(void)
{
    enum { M = 17, NN = 301, K = 203 };
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * NN * K);
    float *C1 = malloc(sizeof(float) * M * NN), *C = malloc(sizeof(float) * M * NN);
    unsigned x = 5;
    for (size_t i = 0; i < (size_t)M * K; i++) {
        x = x * 1103515245u + 12345u;
        A[i] = (float)((int)(x >> 8) % 2001 - 1000) / 317.0f;
    }
    for (size_t i = 0; i < (size_t)NN * K; i++) {
        x = x * 1103515245u + 12345u;
        B[i] = (float)((int)(x >> 8) % 2001 - 1000) / 911.0f;
    }
    static const size_t Ns[] = {11, 12, 13, 18, 19, 37, 300, 301};
    int diffs = 0;
    for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
        for (size_t m = 1; m <= M; m += 8) {
            size_t N = Ns[ni];
            ops_set_threads(1);
            for (size_t i = 0; i < (size_t)M * NN; i++)
                C1[i] = 0.5f * (float)(i % 97);
            ops_matmul_rows(m, N, K, 0.75f, A, K, B, K, 1.0f, C1, NN);
            for (int t = 2; t <= 3; t++) {
                ops_set_threads(t);
                for (size_t i = 0; i < (size_t)M * NN; i++)
                    C[i] = 0.5f * (float)(i % 97);
                ops_matmul_rows(m, N, K, 0.75f, A, K, B, K, 1.0f, C, NN);
                diffs += memcmp(C, C1, sizeof(float) * M * NN) != 0;
            }
        }
    CU_ASSERT_EQUAL(diffs, 0);
    ops_set_threads(1);
    free(A), free(B), free(C1), free(C);
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"every task once, 1/2/3/8 threads, worker ids private", test_every_task_once},
        {"the second worker takes part", test_workers_take_part},
        {"nested par_run: serial on the task's worker", test_nested},
        {"two callers at once", test_concurrent},
        {"ops_matmul_rows: same bits at 1, 2, 3 threads", test_rows_threads},
        {NULL, NULL},
    };
    return sl_test_main("par", cases);
}
