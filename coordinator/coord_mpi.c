// coordinator/coord_mpi.c — see coord_mpi.h.
#include "coordinator/coord_mpi.h"

#include <mpi.h>
#include <stdlib.h>

#include "common/exitcode.h"
#include "common/idle.h"
#include "common/log.h"

// What rank 0 knows of one worker.
typedef struct wstate {
    int hello, stopped, got_stats;
    int inflight;                       // units sent and not yet answered
    proto_buf buf[PROTO_PREFETCH];      // WORK send buffers
    unsigned char stop[PROTO_STOP_BYTES];
    MPI_Request req[PROTO_PREFETCH + 1];// WORK x PREFETCH, STOP
} wstate;

static int free_slot(wstate *w)
{
    for (int k = 0; k < PROTO_PREFETCH; k++) {
        if (w->req[k] == MPI_REQUEST_NULL)
            return k;
        int done = 0;
        MPI_Test(&w->req[k], &done, MPI_STATUS_IGNORE);
        if (done)
            return k;
    }
    return -1;
}

// Tops the worker up to PROTO_PREFETCH units; sends STOP once nothing is left for it.
static int dispatch(coord_session *s, wstate *w, int rank, sl_err *err)
{
    uint32_t wid;
    while (w->hello && !w->stopped && w->inflight < PROTO_PREFETCH) {
        int k = free_slot(w);
        if (k < 0 || !coord_session_next(s, &wid))
            break;
        int rc = coord_session_work(s, wid, &w->buf[k], err);
        if (rc)
            return rc;
        MPI_Isend(w->buf[k].p, (int)w->buf[k].len, MPI_BYTE, rank, PROTO_WORK, MPI_COMM_WORLD,
                  &w->req[k]);
        w->inflight++;
    }
    int nothing_left = coord_session_stopping(s) || coord_session_all_dispatched(s);
    if (w->hello && !w->stopped && w->inflight == 0 && nothing_left) {
        proto_stop_encode(w->stop, coord_session_all_dispatched(s) ? 0 : SL_EXIT_INTERRUPTED);
        MPI_Isend(w->stop, PROTO_STOP_BYTES, MPI_BYTE, rank, PROTO_STOP, MPI_COMM_WORLD,
                  &w->req[PROTO_PREFETCH]);
        w->stopped = 1;
    }
    return SL_OK;
}

// The worker states of a run that ended with sends pending (see coord_mpi_serve's end).
static wstate *coord_mpi_abandoned;

static int any_inflight(const wstate *ws, int size)
{
    for (int r = 1; r < size; r++)
        if (ws[r].inflight > 0)
            return 1;
    return 0;
}

// Hands one received message to the session.
static int handle(coord_session *s, wstate *w, int src, int tag, const void *msg, size_t n,
                  int *finished, sl_err *err)
{
    switch (tag) {
    case PROTO_HELLO: // a worker is ready whatever the bytes: ignoring it would hang the job
        if (proto_hello_parse(msg, n, err) != SL_OK)
            SL_LOG(WARN, "run", "rank %d: %s: taken as a HELLO", src, err->msg);
        w->hello = 1;
        return SL_OK;
    case PROTO_RESULT:
        w->inflight--;
        return coord_session_result(s, src, msg, n, err);
    case PROTO_PARTIAL: // records of a unit still in flight
        return coord_session_partial(s, src, msg, n, err);
    case PROTO_STATS:
        if (!w->got_stats) {
            w->got_stats = 1;
            (*finished)++;
        }
        return coord_session_stats(s, src, msg, n, err);
    case PROTO_CRASH:
        return coord_session_crash(s, src, msg, n, err);
    default:
        SL_LOG(WARN, "run", "unexpected message tag %d from rank %d: ignored", tag, src);
        return SL_OK;
    }
}

int coord_mpi_serve(coord_session *s, int size, sl_err *err)
{
    int n_workers = size - 1, finished = 0, rc = SL_OK, idle = 0;
    sl_idle_init();
    wstate *ws = calloc((size_t)size, sizeof *ws);
    if (!ws)
        return sl_fail(err, SL_ENOMEM, "run: out of memory");
    for (int r = 0; r < size; r++)
        for (int k = 0; k <= PROTO_PREFETCH; k++)
            ws[r].req[k] = MPI_REQUEST_NULL;
    proto_buf rbuf = {0};
    while (finished < n_workers) {
        if (coord_session_check_stop(s)) {
            if ((rc = coord_session_commit(s, err))) // SIGTERM under mpirun: SIGKILL follows
                break;
            for (int r = 1; r < size && rc == SL_OK; r++)
                rc = dispatch(s, &ws[r], r, err); // STOP the idle workers
            if (rc)
                break;
        }
        // Grace is for work in flight: once none is, the workers only owe their STATS.
        if (coord_session_grace_over(s) && any_inflight(ws, size)) {
            SL_LOG(ERROR, "run", "grace period over with work in flight: aborting the job");
            coord_session_set_abort(s, COORD_ABORTED);
            break;
        }
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            if ((rc = coord_session_commit_due(s, err)))
                break;
            // A WORK send that MPI_Test had not yet seen complete when its worker's RESULT
            // came back left that worker short of a unit (dispatch only runs on a message
            // from it): top every worker up while idle, so none can wait forever.
            for (int r = 1; r < size && rc == SL_OK; r++)
                rc = dispatch(s, &ws[r], r, err);
            if (rc)
                break;
            sl_idle_wait(&idle, 1000000L);
            continue;
        }
        idle = 0;
        int count, src = st.MPI_SOURCE;
        MPI_Get_count(&st, MPI_BYTE, &count);
        if ((rc = proto_buf_reserve(&rbuf, (size_t)count + 1, err)))
            break;
        MPI_Recv(rbuf.p, count, MPI_BYTE, src, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        rc = handle(s, &ws[src], src, st.MPI_TAG, rbuf.p, (size_t)count, &finished, err);
        if (rc == SL_OK && coord_session_abort(s) == COORD_FINISHED)
            rc = dispatch(s, &ws[src], src, err);
        if (rc || coord_session_abort(s) != COORD_FINISHED)
            break;
    }
    // Every worker answered: its sends are complete or about to be. Otherwise the job is
    // ending (the caller aborts it) and MPI may still read a pending send's buffer: those
    // buffers are kept, reachable from coord_mpi_abandoned, rather than freed under it.
    int pending = 0;
    for (int r = 1; r < size; r++)
        for (int k = 0; k <= PROTO_PREFETCH; k++) {
            if (ws[r].req[k] == MPI_REQUEST_NULL)
                continue;
            if (finished == n_workers) {
                MPI_Wait(&ws[r].req[k], MPI_STATUS_IGNORE);
            } else {
                int done = 0;
                MPI_Test(&ws[r].req[k], &done, MPI_STATUS_IGNORE);
                pending |= !done;
            }
        }
    if (pending) {
        coord_mpi_abandoned = ws;
    } else {
        for (int r = 1; r < size; r++)
            for (int k = 0; k < PROTO_PREFETCH; k++)
                proto_buf_free(&ws[r].buf[k]);
        free(ws);
    }
    proto_buf_free(&rbuf);
    return rc;
}
