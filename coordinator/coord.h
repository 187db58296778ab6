// coordinator/coord.h — rank 0 of `spearlabel run` and `regenerate`: the only LMDB writer.
//
// coord_run() plans the units of the manifest, skips what the dataset already
// holds, hands units to workers (pull scheduling: each worker keeps up to
// PROTO_PREFETCH units), stores the rows and errors they return in batched
// commits, and records the run. With one rank (n_ranks == 1) it executes the
// units itself through params.exec and calls no MPI function, so one process and
// an MPI job give the same dataset, and a test can run it in a plain process.
// The run's state and every decision live in coordinator/session.h (MPI-free);
// coord_mpi.c is only the MPI message loop.
//
// Resume is exact: rows of a unit are committed in one transaction, units
// are fixed by the manifest and flags, and a unit with anything missing is
// recomputed whole (only the missing ids are stored), so a resumed dataset
// equals an uninterrupted one byte for byte.
// Stop: a stop signal (common/stop.h) ends dispatch; results in flight are
// collected for up to grace_s seconds, committed, and the run is recorded as
// interrupted. SIGTERM under mpirun is followed by SIGKILL a second later: rank 0
// commits first, then waits.
// Crashes: a unit whose processing crashed (CRASH message or crash note)
// marks its ids in meta ("crash/<id>"); the next run retries each alone;
// a second crash stores an error record "crashed the worker".
// Rank 0 never busy-waits: it polls with MPI_Iprobe and sleeps up to 1 ms.
// No function here ends the process: an outcome that needs the job ended
// (COORD_ABORTED, COORD_CRASHED) is returned to cli/, which calls MPI_Abort.
#pragma once
#include <stddef.h>

#include "common/err.h"
#include "coordinator/jobmeta.h"
#include "coordinator/manifest.h"
#include "coordinator/protocol.h"

// Executes one WORK message in-process (one-rank runs), appending RESULT bytes.
// stats receives PROTO_N_STATS accumulators. Returns SL_OK or a fatal error.
typedef int (*coord_exec_fn)(void *ctx, const void *work, size_t work_len, proto_buf *result,
                             double *stats, sl_err *err);

// A one-rank executor that holds several units at once (worker/exec.h's scheduler,
// ctx = exec_ctx): its decoding pool then takes the utterances of up to max_held
// units together, as on a worker rank. When set, a one-rank run uses it instead of
// exec: it pushes units while fewer than max_held are held (none after a stop
// signal), advances one piece of work at a time with the crash note of next_wid's
// unit armed, and stores each RESULT / PARTIAL as it comes.
typedef struct coord_sched {
    int max_held;
    int (*push)(void *ctx, const void *work, size_t work_len, sl_err *err);
    int (*held)(void *ctx);
    // *ready = PROTO_RESULT or PROTO_PARTIAL (the message in out), or 0
    int (*advance)(void *ctx, proto_buf *out, int *ready, double *stats, sl_err *err);
    uint32_t (*next_wid)(void *ctx);
} coord_sched;

// Gives a one-rank executor (ctx = exec_ctx) where to hand its PARTIAL messages
// (protocol.h proto_partial_fn: the session stores them at once); called once before
// the first unit.
typedef void (*coord_exec_partial_fn)(void *ctx, proto_partial_fn fn, void *sink);
// Payload of manifest item i for WORK messages (regenerate: the stored row),
// lent until the next call. When set, workers get payloads instead of paths.
typedef int (*coord_payload_fn)(void *ctx, size_t i, const void **bytes, size_t *n,
                                sl_err *err);

// Defaults, written once: the job flags (cli/) print and use these.
#define COORD_DEFAULT_UNIT_ITEMS 4
#define COORD_DEFAULT_UNIT_SECONDS 120
#define COORD_DEFAULT_GRACE_S 60
#define COORD_DEFAULT_PROGRESS_S 30

typedef struct coord_params {
    const char *out;            // dataset directory
    const manifest *m;
    int n_ranks;                // ranks of the job (1: execute in process, no MPI at all)
    int threads;                // threads per rank (for the audio hours per core-hour figure)
    int alloc_cores;            // cores the job holds when the launcher says (Slurm), else 0:
                                //   the audio hours per core-hour count n_ranks x threads
    size_t unit_items;          // utterances per unit (default 4)
    double unit_seconds;        // audio seconds per unit where known (default 120)
    int retry_errors;           // recompute ids that are stored as errors
    double grace_s;             // seconds to collect in-flight work after a stop signal
    double progress_s;          // seconds between progress lines in logs
    size_t commit_rows;         // commit after this many records...
    double commit_s;            // ...or this many seconds
    size_t initial_map_bytes;   // LMDB map for a new dataset (0 = default)
    const jm_fp *fps;           // fingerprints that must match on resume
    size_t n_fps;
    int argc;                   // command line, for the run record
    char **argv;
    coord_exec_fn exec;         // for one-rank runs
    void *exec_ctx;
    coord_exec_partial_fn exec_partial; // NULL: the executor never sends partial results
    const coord_sched *sched;   // NULL: one unit at a time through exec
    coord_payload_fn payload;   // NULL: items are paths
    void *payload_ctx;
    const char *const *meta;    // extra meta key, value pairs recorded at start (provenance)
    size_t n_meta;              // number of pairs
} coord_params;

coord_params coord_default_params(void);

typedef enum coord_status {
    COORD_FINISHED = 0,    // every unit done
    COORD_INTERRUPTED,     // a stop signal; in-flight work collected; resumable
    COORD_ABORTED,         // stopped, but the grace period ended with work in flight:
                           //   the job must be ended (workers still hold units); resumable
    COORD_CRASHED,         // a worker crashed on a unit (recorded): end the job; resumable
} coord_status;

typedef struct coord_outcome {
    coord_status status;
    size_t rows_added, errors_added;
    size_t rows_kept;   // of rows_added, those the default quality filter keeps (storage/quality.h)
    double audio_s;     // audio seconds of rows_added
    size_t segmented_files; // files (items) of this run cut into segments, finished
    size_t segment_rows;    // of rows_added, segment rows (keys with a segment suffix)
} coord_outcome;

// Printed at the end of a run (%s = the dataset): where to look at it.
#define COORD_REPORT_HINT "tools/report.py %s --out report.html"


// SL_OK with *out filled, or a negative sl_code with err filled (the run is
// recorded "failed" when the store still takes writes). Collective over
// MPI_COMM_WORLD with worker_run() on the other ranks when p->n_ranks > 1.
int coord_run(const coord_params *p, coord_outcome *out, sl_err *err);

// The exit code of an outcome (common/exitcode.h): 0 finished, 3 otherwise.
int coord_exit_code(coord_status s);
