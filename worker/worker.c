// worker/worker.c — see worker.h.
#include "worker/worker.h"

#include <mpi.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/crash.h"
#include "common/idle.h"
#include "common/log.h"

// Called from the fatal-signal handler: one small eager send to rank 0.
static void send_crash(uint32_t wid, void *ctx)
{
    (void)ctx;
    static unsigned char msg[PROTO_CRASH_BYTES];
    alarm(5); // if MPI cannot send from here, SIGALRM ends the process anyway
    proto_crash_encode(msg, wid);
    MPI_Send(msg, PROTO_CRASH_BYTES, MPI_BYTE, 0, PROTO_CRASH, MPI_COMM_WORLD);
    struct timespec ts = {0, 200000000L}; // let the bytes leave before the process dies
    nanosleep(&ts, NULL);
}

// Receives the message st announced into b (grown to fit).
static int recv_into(proto_buf *b, const MPI_Status *st, sl_err *err)
{
    int count;
    MPI_Get_count(st, MPI_BYTE, &count);
    b->len = 0;
    int rc = proto_buf_reserve(b, (size_t)count + 1, err);
    if (rc)
        return rc;
    MPI_Recv(b->p, count, MPI_BYTE, 0, st->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    b->len = (size_t)count;
    return SL_OK;
}

int worker_run(job_exec *x, uint32_t *stop_status, sl_err *err)
{
    sl_idle_init();
    sl_crash_install();
    sl_crash_set_hook(send_crash, NULL);
    MPI_Send(NULL, 0, MPI_BYTE, 0, PROTO_HELLO, MPI_COMM_WORLD);
    int stopped = 0, idle = 0, rc = SL_OK;
    proto_buf in = {0}, result = {0};
    double stats[PROTO_N_STATS] = {0};
    while (!stopped || exec_held(x) > 0) {
        // Take every message that is here (blocking only when there is nothing to do).
        for (;;) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
            if (!flag) {
                if (exec_held(x) > 0 || stopped)
                    break;
                sl_idle_wait(&idle, 50000L);
                continue;
            }
            idle = 0;
            if (st.MPI_TAG == PROTO_WORK && exec_held(x) == EXEC_HELD)
                break; // rank 0 never sends more than we hold; leave it queued
            if ((rc = recv_into(&in, &st, err)))
                goto done;
            if (st.MPI_TAG == PROTO_STOP) {
                if ((rc = proto_stop_parse(in.p, in.len, stop_status, err)))
                    goto done;
                stopped = 1;
            } else if (st.MPI_TAG == PROTO_WORK) {
                if ((rc = exec_push(x, in.p, in.len, err)))
                    goto done;
            } else {
                SL_LOG(WARN, "worker", "unexpected tag %d from rank 0: ignored", st.MPI_TAG);
            }
        }
        if (exec_held(x) == 0)
            continue;
        // One piece of work (a front half, a decoder step or a finished unit's RESULT),
        // then the mailbox again: a new unit joins the pool as soon as it arrives.
        int ready = 0;
        sl_crash_arm(exec_next_wid(x), NULL, 0);
        rc = exec_advance(x, &result, &ready, stats, err);
        sl_crash_disarm();
        if (rc)
            goto done;
        if (ready) // PROTO_RESULT, or PROTO_PARTIAL: segments of a long item
            MPI_Send(result.p, (int)result.len, MPI_BYTE, 0, ready, MPI_COMM_WORLD);
    }
    unsigned char msg[PROTO_STATS_BYTES];
    proto_stats_encode(msg, stats);
    MPI_Send(msg, PROTO_STATS_BYTES, MPI_BYTE, 0, PROTO_STATS, MPI_COMM_WORLD);
done:
    proto_buf_free(&in);
    proto_buf_free(&result);
    return rc;
}
