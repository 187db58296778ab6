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

typedef struct slot {
    proto_buf buf;
    uint32_t wid;
} slot;

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
    slot q[PROTO_PREFETCH];
    memset(q, 0, sizeof q);
    int head = 0, n_q = 0, stopped = 0, idle = 0, rc = SL_OK;
    proto_buf result = {0}, other = {0};
    double stats[PROTO_N_STATS] = {0};
    while (!stopped || n_q > 0) {
        // Take every message that is here (blocking only when there is nothing to do).
        for (;;) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
            if (!flag) {
                if (n_q > 0 || stopped)
                    break;
                sl_idle_wait(&idle, 50000L);
                continue;
            }
            idle = 0;
            if (st.MPI_TAG == PROTO_WORK && n_q == PROTO_PREFETCH)
                break; // rank 0 never sends more than we hold; leave it queued
            slot *s = &q[(head + n_q) % PROTO_PREFETCH];
            proto_buf *b = st.MPI_TAG == PROTO_WORK ? &s->buf : &other;
            if ((rc = recv_into(b, &st, err)))
                goto done;
            if (st.MPI_TAG == PROTO_STOP) {
                if ((rc = proto_stop_parse(b->p, b->len, stop_status, err)))
                    goto done;
                stopped = 1;
            } else if (st.MPI_TAG == PROTO_WORK) {
                uint32_t flags, n_items;
                if ((rc = proto_work_header(b->p, b->len, &s->wid, &flags, &n_items, err)))
                    goto done;
                n_q++;
            } else {
                SL_LOG(WARN, "worker", "unexpected tag %d from rank 0: ignored", st.MPI_TAG);
            }
        }
        if (n_q == 0)
            continue;
        slot *s = &q[head];
        sl_crash_arm(s->wid, NULL, 0);
        rc = exec_unit(x, s->buf.p, s->buf.len, &result, stats, err);
        sl_crash_disarm();
        if (rc)
            goto done;
        MPI_Send(result.p, (int)result.len, MPI_BYTE, 0, PROTO_RESULT, MPI_COMM_WORLD);
        head = (head + 1) % PROTO_PREFETCH;
        n_q--;
    }
    unsigned char msg[PROTO_STATS_BYTES];
    proto_stats_encode(msg, stats);
    MPI_Send(msg, PROTO_STATS_BYTES, MPI_BYTE, 0, PROTO_STATS, MPI_COMM_WORLD);
done:
    for (int k = 0; k < PROTO_PREFETCH; k++)
        proto_buf_free(&q[k].buf);
    proto_buf_free(&result);
    proto_buf_free(&other);
    return rc;
}
