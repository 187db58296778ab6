// coordinator/coord_mpi.h — the MPI side of rank 0: the only file of coordinator/
// that calls MPI. It moves bytes between the workers and a session
// (coordinator/session.h), which makes every decision.
#pragma once
#include "common/err.h"
#include "coordinator/session.h"

// Serves ranks 1..n_ranks-1 until each has been sent STOP and has answered with
// STATS, or the session is aborted (a crash, or the grace period ended with work
// in flight: then requests are left pending and the caller must end the job).
int coord_mpi_serve(coord_session *s, int n_ranks, sl_err *err);
