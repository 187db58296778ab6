// worker/worker.h — ranks 1..N-1 of `spearlabel run`: the MPI loop around exec.
//
// The worker says HELLO, then receives WORK into the scheduler (worker/exec.h),
// advances it one piece of work at a time (a front half, a decoder step) and
// sends each unit's RESULT when all its utterances are done, until rank 0 says
// STOP; it holds up to PROTO_PREFETCH units, whose utterances decode in one
// pool, and checks the mailbox between pieces of work so a new unit joins the
// batch as soon as it arrives. A crash note names the unit being worked for
// (for a decoder step shared by several units: the oldest held one). While waiting it
// polls with MPI_Iprobe and sleeps (a blocking receive in Open MPI spins a
// core that the node's other ranks need). A stop signal (USR1 from Slurm via
// mpirun) does not stop a worker: rank 0 decides, and a worker never holds
// anything that a kill could leave half-written. If the worker crashes
// (SIGSEGV, SIGABRT, ...) while a unit is armed, its handler sends CRASH{wid}
// to rank 0 before dying, so the next run retries that unit's ids alone.
#pragma once
#include <stdint.h>

#include "common/err.h"
#include "worker/exec.h"

// Every message is built and parsed by coordinator/protocol.h; this file only moves it.
// Returns SL_OK with *stop_status = the status rank 0 sent with STOP (0 finished,
// 3 interrupted), or a negative sl_code with err filled (the caller ends the job).
int worker_run(job_exec *x, uint32_t *stop_status, sl_err *err);
