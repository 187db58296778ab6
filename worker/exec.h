// worker/exec.h — what every rank that computes does with one WORK message:
// parse it, run the pipeline over its utterances, and encode each outcome as
// a storage record (row or error) into a RESULT message. MPI-free: the MPI
// worker loop (worker.h) and a one-rank run (coordinator, through a callback)
// share it, so both produce the same bytes.
//
// Test-only fault injection (environment, read at exec_open):
//   SL_TEST_CRASH_ID=ID   abort() when the utterance ID is processed
//   SL_TEST_DELAY_MS=N    sleep N ms per utterance (makes kill tests land mid-run)
#pragma once
#include <stddef.h>

#include "common/err.h"
#include "coordinator/protocol.h"
#include "pipeline/pipeline.h"

typedef struct job_exec job_exec;

int exec_open(job_exec **out, const pl_params *p, sl_err *err);
void exec_close(job_exec *x); // NULL is fine

// Matches coord_exec_fn (ctx = the job_exec). stats: PROTO_N_STATS accumulators.
int exec_unit(void *ctx, const void *work, size_t work_len, proto_buf *result, double *stats,
              sl_err *err);
