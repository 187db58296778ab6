// cli/job.h — what the MPI commands (`run`, `regenerate`, `km-fit`) share:
// starting MPI, opening the executor on every rank so a bad model is refused
// before any work is dispatched, and the worker side of a job.
#pragma once
#include "pipeline/pipeline.h"
#include "worker/exec.h"

// Stop signals first (SIGUSR1 must kill no rank, even during start-up: rank 0
// decides when to stop), then MPI_Init_thread(FUNNELED), rank and size, the log's
// rank, and OpenBLAS threads (--threads, else SLURM_CPUS_PER_TASK, else 1).
void cli_job_init(int threads, int *rank, int *size);

// Every rank opens the executor for pp; returns 1 when all ranks succeeded. A rank
// that failed prints its message (ranks 0 and 1 only, so a large job prints one or two).
int cli_job_open_exec(const char *cmd, const pl_params *pp, job_exec **x);

// Ranks >= 1: the worker loop until rank 0 says STOP. Returns the exit code rank 0
// sent; on a failure prints it and aborts the whole job.
int cli_job_worker(const char *cmd, int rank, job_exec *x);
