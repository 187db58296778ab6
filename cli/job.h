// cli/job.h — what the MPI commands (`run`, `regenerate`, `km-fit`) share:
// starting MPI, opening the executor on every rank so a bad model is refused
// before any work is dispatched, and the worker side of a job.
// The process-ending calls of a job (MPI_Abort) live here, in cli/, and nowhere below.
#pragma once
#include "coordinator/coord.h"
#include "pipeline/pipeline.h"
#include "worker/exec.h"

// Stop signals first (SIGUSR1 must kill no rank, even during start-up: rank 0
// decides when to stop), then MPI_Init_thread(FUNNELED), rank and size, the log's
// rank, and OpenBLAS threads (--threads, else SLURM_CPUS_PER_TASK, else 1).
void cli_job_init(int threads, int *rank, int *size);

// Every rank opens the executor for pp; returns 1 when all ranks succeeded. A rank
// that failed prints its message (ranks 0 and 1 only, so a large job prints one or two).
int cli_job_open_exec(const char *cmd, const pl_params *pp, job_exec **x);

// The executor's scheduler for a one-rank run (coord_params.sched, ctx = the job_exec):
// it holds EXEC_HELD units, as a worker rank does.
extern const coord_sched cli_job_sched;

// Ranks >= 1: the worker loop until rank 0 says STOP. Returns the exit code rank 0
// sent; on a failure prints it and aborts the whole job.
int cli_job_worker(const char *cmd, int rank, job_exec *x);

// Rank 0: coord_run(cp) (cp->n_ranks set by the caller; threads per rank filled in). Returns the exit code:
// 0 finished, 3 interrupted, 1 failed (message printed). When workers still wait
// or hold units (a failure, a crash, a grace period that ran out) it ends the
// whole job with MPI_Abort (exit 1 for a failure, 3 otherwise: resumable).
int cli_job_coordinate(const char *cmd, const coord_params *cp);
