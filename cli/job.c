// cli/job.c — see job.h.
#include "cli/job.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/job_flags.h"
#include "common/exitcode.h"
#include "common/log.h"
#include "common/stop.h"
#include "pipeline/ops.h"
#include "worker/worker.h"

void cli_job_init(int threads, int *rank, int *size)
{
    // First of all: a USR1 from Slurm during start-up must not kill the process (its
    // default action); rank 0 sees the flag when its loop starts and stops cleanly.
    sl_stop_install();
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    sl_log_set_rank(*rank);
    ops_set_threads(ops_threads_default(threads));
}

int cli_job_open_exec(const char *cmd, const pl_params *pp, job_exec **x)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    sl_err err;
    sl_err_clear(&err);
    *x = NULL;
    int ok = exec_open(x, pp, &err) == SL_OK, all_ok = ok;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!ok && (rank == 0 || rank == 1))
        fprintf(stderr, "spearlabel %s: %s\n", cmd, err.msg);
    if (!all_ok) {
        exec_close(*x);
        *x = NULL;
    }
    return all_ok;
}

static int sched_push(void *x, const void *work, size_t n, sl_err *err)
{
    return exec_push(x, work, n, err);
}
static int sched_held(void *x) { return exec_held(x); }
static int sched_advance(void *x, proto_buf *out, int *ready, double *stats, sl_err *err)
{
    return exec_advance(x, out, ready, stats, err);
}
static uint32_t sched_next_wid(void *x) { return exec_next_wid(x); }

const coord_sched cli_job_sched = {EXEC_HELD, sched_push, sched_held, sched_advance,
                                   sched_next_wid};

int cli_job_worker(const char *cmd, int rank, job_exec *x)
{
    sl_err err;
    sl_err_clear(&err);
    uint32_t status = 0;
    if (worker_run(x, &status, &err) != SL_OK) {
        fprintf(stderr, "spearlabel %s (rank %d): %s\n", cmd, rank, err.msg);
        MPI_Abort(MPI_COMM_WORLD, SL_EXIT_FAIL);
    }
    return (int)status;
}

int cli_job_coordinate(const char *cmd, const coord_params *params)
{
    sl_err err;
    sl_err_clear(&err);
    coord_params p = *params;
    p.threads = ops_get_threads(); // every rank runs what cli_job_init set
    p.alloc_cores = job_alloc_cores(getenv("SLURM_NTASKS"), getenv("SLURM_CPUS_PER_TASK"));
    const coord_params *cp = &p;
    coord_outcome out;
    if (coord_run(cp, &out, &err) != SL_OK) {
        fprintf(stderr, "spearlabel %s: %s\n", cmd, err.msg);
        if (cp->n_ranks > 1)
            MPI_Abort(MPI_COMM_WORLD, SL_EXIT_FAIL); // workers wait for units that never come
        return SL_EXIT_FAIL;
    }
    if (out.status == COORD_ABORTED || out.status == COORD_CRASHED)
        MPI_Abort(MPI_COMM_WORLD, SL_EXIT_INTERRUPTED); // committed and recorded: resumable
    return coord_exit_code(out.status);
}
