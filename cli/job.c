// cli/job.c — see job.h.
#include "cli/job.h"

#include <mpi.h>
#include <stdio.h>

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

int cli_job_worker(const char *cmd, int rank, job_exec *x)
{
    sl_err err;
    sl_err_clear(&err);
    int code = worker_run(x, &err);
    if (code == SL_EXIT_FAIL) {
        fprintf(stderr, "spearlabel %s (rank %d): %s\n", cmd, rank, err.msg);
        MPI_Abort(MPI_COMM_WORLD, SL_EXIT_FAIL);
    }
    return code;
}
