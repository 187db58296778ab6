// coordinator/session.h — the state of one run on rank 0, MPI-free.
//
// A session is everything coord_run() knows between opening the dataset and
// recording the run: the unit plan, what is stored, crash marks, the dispatch
// queue, the open commit batch, the long files' resume marks and the progress line. The drivers (the one-rank
// loop in coord.c and the MPI loop in coord_mpi.c) only move bytes: they ask the
// session for the next work id and its WORK message, and hand it what arrives
// (RESULT, CRASH, STATS). Because every decision is made here, a test can drive a
// session with any number of simulated workers answering in any order.
//
// Guarantees (see coord.h): a unit's records are stored in one transaction; the
// records that come back are checked against the unit they answer: a RESULT or
// CRASH naming a work id outside the plan, or a record whose id is not an item of
// its unit, is logged and ignored, never indexed (a CRASH still ends the job: its
// sender is dying). Malformed RESULT bytes are an error (SL_EFORMAT, naming the
// sender): our own workers never send them; malformed STATS are logged and left out,
// a malformed CRASH records no marks, and any HELLO counts as one.
// Single-threaded.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "coordinator/coord.h"
#include "coordinator/protocol.h"

typedef struct coord_session coord_session;

// Opens p->out (creating it), checks and records the fingerprints and p->meta,
// plans the units, merges what is stored and any crash note of a one-rank run,
// records the run as "running", stores the manifest's unusable lines as errors
// and builds the queue (crash retries first, then the units with a missing id).
// p->n_ranks goes into the run record. p must outlive the session. On failure *out is NULL.
int coord_session_open(coord_session **out, const coord_params *p, sl_err *err);

// Records the run's end ("finished", "interrupted", "crashed"; "failed" when
// rc_so_far != SL_OK, after dropping the open batch), commits, prints the final
// progress and rank 0's cost, closes the store and frees s. Fills *out.
// Returns rc_so_far, or the error of the final commit.
int coord_session_close(coord_session *s, int rc_so_far, coord_outcome *out, sl_err *err);

// Polls the stop flag (common/stop.h); on the first stop starts the grace period.
// Returns 1 from the first call that sees it, else 0.
int coord_session_check_stop(coord_session *s);
int coord_session_stopping(const coord_session *s);
// 1 when a stop was seen and its grace period is over.
int coord_session_grace_over(const coord_session *s);

// The next work id in dispatch order; 0 when nothing is left to dispatch (or a stop was seen).
int coord_session_next(coord_session *s, uint32_t *wid);
// 1 when every queued unit was handed out.
int coord_session_all_dispatched(const coord_session *s);
// The WORK message of wid into b.
int coord_session_work(coord_session *s, uint32_t wid, proto_buf *b, sl_err *err);
// The items of wid, 'A' (alone) or 'U' first, each NUL-terminated: a one-rank run's
// crash note (common/crash.h).
int coord_session_note(coord_session *s, uint32_t wid, proto_buf *b, sl_err *err);

// Stores the records of one RESULT message (commits when a batch is due): rows and
// errors under their item's id or a segment key `<id>@S-E` (storage/segkey.h), and
// marks, kept as meta seg/<id> ("done" or the decimal cut to resume at) in the same
// transaction. A long item that its unit's RESULT leaves without a done mark (its
// worker stopped at a cut) makes the run "interrupted"; the next run continues it.
int coord_session_result(coord_session *s, int rank, const void *msg, size_t n, sl_err *err);
// The same for a PARTIAL message (the unit stays in flight).
int coord_session_partial(coord_session *s, int rank, const void *msg, size_t n, sl_err *err);
// A worker crashed on the work id in msg: marks its items (meta crash/<id>), commits,
// and marks the session aborted (the job must end: the sender is dying).
int coord_session_crash(coord_session *s, int rank, const void *msg, size_t n, sl_err *err);
// Adds a worker's STATS to the totals (malformed STATS are logged and left out).
int coord_session_stats(coord_session *s, int rank, const void *msg, size_t n, sl_err *err);

// Commits the open batch now / only when one is due (rows or seconds).
int coord_session_commit(coord_session *s, sl_err *err);
int coord_session_commit_due(coord_session *s, sl_err *err);
// Ends the run with work in flight (grace over, or a crash): the caller must end the job.
void coord_session_set_abort(coord_session *s, coord_status why);
coord_status coord_session_abort(const coord_session *s);

// One-rank runs: the accumulators (PROTO_N_STATS) the in-process executor adds to,
// and the path of the crash note (DIR/crash.note).
double *coord_session_stats_acc(coord_session *s);
const char *coord_session_crash_path(const coord_session *s);
// Test access: the plan the session dispatches.
size_t coord_session_n_units(const coord_session *s);
